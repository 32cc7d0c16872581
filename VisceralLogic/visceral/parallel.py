"""Batch work, the same way for every batch command, on one machine or on a Dask cluster.

Every batch driver (de-identification, conversion, validation) hands its per-file or per-series work
to an :class:`Executor` -- small work units (paths and plain records in, result records out) -- and
gets each item back with a way to get its outcome as soon as it is done, so that it can count
progress and report one item's failure without stopping the others.  Three executors:

* :class:`SerialExecutor` -- everything in this process, in order (debugging; Slicer's own Python);
* :class:`ProcessExecutor` -- ``--jobs N`` worker processes on this machine (the default);
* :class:`DaskExecutor` -- the workers of a Dask distributed cluster: ``--scheduler tcp://HOST:PORT``
  connects to a running scheduler, ``--scheduler local`` starts a ``LocalCluster`` in this process.
  Dask is an optional extra (``pip install visceral[dask]``), imported only here and only then.

Workers read and write the shared file system themselves; the drivers' outputs are written
atomically and are a pure function of the input and the key, so a task that Dask runs again on
another worker (after its first worker died) writes the same bytes and no half file.  What the
executor did -- which one, how many workers, tasks, retries -- and a run's throughput are in
:meth:`Executor.summary`, which each driver copies into its report.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

from visceral.errors import VisceralError, one_line

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("visceral.parallel")

__all__ = ["Executor", "SerialExecutor", "ProcessExecutor", "DaskExecutor", "Execution", "make_executor", "executor_of", "execution_line",
           "batches", "running_on", "isolating"]

#: Seconds to wait for the first worker of a Dask cluster (``VISCERAL_DASK_WAIT`` overrides it).
DASK_WORKER_WAIT_S = float(os.environ.get("VISCERAL_DASK_WAIT", "60"))


@dataclass
class Execution:
    """What an executor did, as the reports state it."""

    executor: str
    workers: int
    address: str = ""
    dashboard: str = ""
    tasks: int = 0
    #: tasks run again because the worker running them died (Dask only: its scheduler re-runs them)
    retries: int = 0

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


class Executor:
    """Runs ``fn`` on every item of a batch and yields ``(item, outcome)`` as each finishes;
    ``outcome()`` returns ``fn(item)`` or raises what it raised.  ``setup(*setup_args)`` runs once
    in each worker before its first item of the batch (or here, for the serial executor)."""

    kind = "serial"

    def __init__(self, workers: int = 1) -> None:
        self.execution = Execution(self.kind, max(1, int(workers)))

    @property
    def workers(self) -> int:
        """How many workers run the items (a Dask cluster's count as of its last batch)."""
        return self.execution.workers

    def unordered(self, fn: Callable[[T], R], items: Sequence[T], setup: Optional[Callable[..., None]] = None,
                  setup_args: tuple = ()) -> Iterator[Tuple[T, Callable[[], R]]]:
        self.execution.tasks += len(items)
        return self._unordered(fn, items, setup, setup_args)

    def _unordered(self, fn: Callable[[T], R], items: Sequence[T], setup: Optional[Callable[..., None]],
                   setup_args: tuple) -> Iterator[Tuple[T, Callable[[], R]]]:
        if setup is not None:
            setup(*setup_args)
        for item in items:
            yield item, functools.partial(fn, item)

    def mark(self) -> Execution:
        """This executor's counts now (a run's :meth:`summary` counts from its mark)."""
        return replace(self.execution)

    def summary(self, done: int, unit: str, seconds: float, since: Optional[Execution] = None) -> Dict[str, Any]:
        """The report's ``execution`` record: this executor's tasks and retries since the mark
        ``since`` and the throughput of ``done`` items (``unit``: "files", "series") in ``seconds``."""
        record = self.execution.as_dict()
        if since is not None:
            record["tasks"] -= since.tasks
            record["retries"] -= since.retries
        record.update({unit: done, "seconds": round(seconds, 3), f"{unit}_per_second": round(done / seconds, 2) if seconds > 0 else 0.0})
        return record

    def describe(self) -> str:
        """One line for a person: which executor, how many workers, where."""
        where = f" at {self.execution.address}" if self.execution.address else ""
        dashboard = f"; dashboard {self.execution.dashboard}" if self.execution.dashboard else ""
        return f"{self.kind} executor, {self.workers} worker(s){where}{dashboard}"

    def close(self) -> None:
        """Release the executor's resources (a Dask client, a local cluster)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Every item in this process, in order."""


class ProcessExecutor(Executor):
    """``workers`` worker processes on this machine (a process pool per batch); one item, or one
    worker, runs here."""

    kind = "processes"

    def _unordered(self, fn, items, setup, setup_args):
        if self.workers == 1 or len(items) <= 1:
            yield from super()._unordered(fn, items, setup, setup_args)
            return
        # A worker that dies breaks its pool (every item not finished fails with BrokenProcessPool): the
        # items not finished run again in a new pool, up to POOL_RESTARTS times; then each in a pool of its
        # own, so that an item that kills its worker every time fails alone.
        pending = dict(enumerate(items))
        for _ in range(POOL_RESTARTS + 1):
            broken = yield from self._pool(fn, items, pending, setup, setup_args, self.workers, last=False)
            if not broken:
                return
            self.execution.retries += len(pending)
            log.warning("a worker process died: %d item(s) run again in new workers", len(pending))
        for n in list(pending):
            yield from self._pool(fn, items, {n: pending.pop(n)}, setup, setup_args, 1, last=True)

    def _pool(self, fn, items, pending, setup, setup_args, workers: int, last: bool):
        """Run the ``pending`` items in one pool, yielding each finished one (and removing it from
        ``pending``); returns True when the pool broke (unless ``last``: then the break is the outcome)."""
        broken = False
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, initializer=_worker_start, initargs=(setup, setup_args)) as pool:
            futures = {pool.submit(fn, item): n for n, item in pending.items()}
            try:
                for future in concurrent.futures.as_completed(futures):
                    n = futures[future]
                    if not last and isinstance(future.exception(), concurrent.futures.process.BrokenProcessPool):
                        broken = True
                        continue
                    pending.pop(n, None)
                    yield items[n], future.result
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return broken


#: How often a batch's process pool is started again after a worker died.
POOL_RESTARTS = 2


def _worker_start(setup: Optional[Callable[..., None]], setup_args: tuple) -> None:
    """A worker process's start: it dies with the command that started it (Linux), then the batch's setup."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass  # no prctl: the worker ends when its work queue closes
    if setup is not None:
        setup(*setup_args)


PR_SET_PDEATHSIG = 1


# --- Dask -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Setup:
    """A batch's worker setup: one task's result, which every worker fetches once and runs before its first item."""

    token: str
    function: Callable[..., None]
    args: tuple


#: In a Dask worker process: the token of the setup that ran last, and the lock that runs one
#: Visceral task at a time (the drivers' per-process state -- the run, the memo -- is not shared
#: between threads; Python work holds the GIL anyway, so processes, not threads, give parallelism).
_WORKER_SETUP: Dict[str, str] = {}
_WORKER_LOCK = threading.Lock()


def _dask_task(fn: Callable[[T], R], setup: Optional[_Setup], item: T) -> R:
    """One item on a Dask worker: the batch's setup first when this process has not run it yet."""
    with _WORKER_LOCK:
        if setup is not None and _WORKER_SETUP.get("token") != setup.token:
            setup.function(*setup.args)
            _WORKER_SETUP["token"] = setup.token
        return fn(item)


def _identity(value: T) -> T:
    return value


def dask_setup(worker: Any = None) -> None:
    """Dask's preload hook, run in each worker process of ``--scheduler local`` (and of its restarts) on
    the process's main thread: Ctrl-C at the terminal reaches the whole process group, and the command
    itself stops the cluster, so its workers ignore SIGINT instead of dying with a traceback each."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


#: Finished Dask tasks are let go together: this many, or after this many seconds.
RELEASE_GROUP, RELEASE_AFTER_S = 32, 0.5
#: Loggers of Dask's that its configuration sets itself.
DASK_LOGGERS = ("distributed.client", "distributed.scheduler", "distributed.worker", "distributed.nanny", "distributed.core",
                "distributed.deploy", "distributed.comm", "distributed.batched", "distributed.http.proxy")


def _suspicious(keys: Sequence[str], dask_scheduler: Any = None) -> int:
    """On the scheduler: how often the tasks ``keys`` were lost with a dying worker (and re-run)."""
    tasks = dask_scheduler.tasks
    return sum(tasks[key].suspicious for key in keys if key in tasks)


class DaskExecutor(Executor):
    """The workers of a Dask distributed cluster.

    ``scheduler`` is a scheduler address (``tcp://HOST:PORT``: the workers are whoever joined it; they
    must see the same file system paths and have Visceral installed), or ``"local"`` to start a
    ``LocalCluster`` of ``workers`` single-threaded worker processes in this process.
    """

    kind = "dask"

    def __init__(self, scheduler: str, workers: Optional[int] = None) -> None:
        try:
            import distributed
        except ImportError:
            raise VisceralError("--scheduler needs Dask: install it with  pip install 'visceral[dask]'") from None
        self._distributed = distributed
        self._cluster = None
        if not logging.getLogger().isEnabledFor(logging.INFO):
            # Its start-up, rescheduling and lost-worker messages only with --verbose: what matters reaches the
            # report as one line per file (Dask's own configuration sets some of its loggers' levels itself).
            for name in ("distributed", *DASK_LOGGERS):
                logging.getLogger(name).setLevel(logging.CRITICAL)
        if workers is not None and workers < 1:
            raise VisceralError(f"a local Dask cluster needs at least one worker, not {workers}")
        try:
            if scheduler == "local":
                self._cluster = distributed.LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                                         dashboard_address=":0", silence_logs=logging.ERROR, preload=[__name__])
                self._client = distributed.Client(self._cluster)
            else:
                self._client = distributed.Client(scheduler, timeout=f"{min(20.0, DASK_WORKER_WAIT_S)}s")
            self._client.wait_for_workers(1, timeout=DASK_WORKER_WAIT_S)
        except Exception as exc:  # noqa: BLE001 - refused, unreachable, no worker, a TLS address without TLS settings...
            self.close()
            raise VisceralError(f"{scheduler}: no Dask cluster with a worker to run on ({type(exc).__name__}: {one_line(exc)})") from None
        info = self._client.scheduler_info()
        super().__init__(len(info.get("workers", {})))
        self.execution.address = str(info.get("address", scheduler))
        self.execution.dashboard = str(self._client.dashboard_link or "")

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` of this executor."""
        return self._client

    def _unordered(self, fn, items, setup, setup_args):
        client = self._client
        self.execution.workers = max(self.workers, len(client.scheduler_info().get("workers", {})))
        batch = uuid.uuid4().hex[:12]
        name = getattr(fn, "__name__", "task")
        shared = None
        if setup is not None:
            # A task, not scattered data: when every worker holding it dies, the scheduler makes it again.
            shared = client.submit(_identity, _Setup(batch, setup, setup_args), key=f"visceral-setup-{batch}", pure=False)
        futures = {client.submit(_dask_task, fn, shared, item, key=f"visceral-{name}-{batch}-{n}", pure=False): item
                   for n, item in enumerate(items)}
        finished: list = []
        released = time.monotonic()
        try:
            for future in self._distributed.as_completed(futures):
                yield futures.pop(future), future.result
                # Results taken are let go (in groups: one question to the scheduler each): a worker that
                # dies later loses nothing the scheduler would compute again.
                finished.append(future)
                if len(finished) >= RELEASE_GROUP or not futures or time.monotonic() - released >= RELEASE_AFTER_S:
                    self._release(finished)
                    released = time.monotonic()
        except (OSError, TimeoutError) as exc:  # the scheduler is gone (a task's own errors come from outcome())
            raise VisceralError(f"{self.execution.address}: lost the Dask scheduler ({type(exc).__name__}: {one_line(exc)}); "
                                "finished files are complete, run again to resume") from None
        except BaseException:
            client.cancel(list(futures))
            raise
        finally:
            futures.clear()
            if shared is not None:
                shared.release()

    def _release(self, finished: list) -> None:
        """Count the re-runs of the ``finished`` tasks (the scheduler forgets them once let go), let them go."""
        self.execution.retries += self._client.run_on_scheduler(_suspicious, [f.key for f in finished])
        for future in finished:
            future.release()
        finished.clear()

    def close(self) -> None:
        client, cluster = getattr(self, "_client", None), self._cluster
        self._client = self._cluster = None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def isolating(executor: Executor, fn: Callable[[list], list], chunks: List[list], setup: Optional[Callable[..., None]] = None,
               setup_args: tuple = ()) -> Iterator[Tuple[list, Callable[[], list]]]:
    """``executor.unordered`` over ``chunks`` (runs of items); a run whose worker was lost runs again one item
    per task, so that an item that kills its worker is the one that fails (a run of one item as it is)."""
    again: List[list] = []
    for chunk, outcome in executor.unordered(fn, chunks, setup, setup_args):
        if len(chunk) > 1:
            try:
                done = outcome()
            except Exception:  # noqa: BLE001 - its worker was lost: each of its items on its own
                again += [[item] for item in chunk]
                continue
            yield chunk, lambda done=done: done
        else:
            yield chunk, outcome
    if again:
        yield from executor.unordered(fn, again, setup, setup_args)


def batches(items: Sequence[T], workers: int, largest: int) -> List[List[T]]:
    """``items`` in runs of consecutive items, about four per worker and at most ``largest`` each
    (small enough to keep every worker and the progress bar busy, large enough to pay for a task);
    one item each for a single worker."""
    size = max(1, min(largest, len(items) // (4 * workers))) if workers > 1 else 1
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def make_executor(jobs: Optional[int] = None, scheduler: Optional[str] = None) -> Executor:
    """The executor a command line asks for: Dask with ``scheduler`` (``"local"`` starts a cluster of
    ``jobs`` workers), else ``jobs`` worker processes (one: serial)."""
    if scheduler is not None:
        if not scheduler.strip():
            raise VisceralError("--scheduler needs the address of a Dask scheduler (tcp://HOST:PORT) or 'local'")
        return DaskExecutor(scheduler.strip(), jobs)
    jobs = os.cpu_count() or 1 if jobs is None else int(jobs)
    return ProcessExecutor(jobs) if jobs > 1 else SerialExecutor()


def executor_of(jobs: Union[int, Executor]) -> Executor:
    """``jobs`` as an executor: an executor as it is, a number of worker processes as a new one."""
    return jobs if isinstance(jobs, Executor) else make_executor(max(1, int(jobs)))


@contextlib.contextmanager
def running_on(jobs: Union[int, Executor]) -> Iterator[Executor]:
    """``jobs`` as an executor for the length of a ``with`` block: an executor as it is (its owner
    closes it), a number of worker processes as a new one, closed at the end."""
    executor = executor_of(jobs)
    try:
        yield executor
    finally:
        if executor is not jobs:
            executor.close()


def execution_line(record: Dict[str, Any], unit: str) -> str:
    """A report's ``execution`` record as one line for a person."""
    if not record:
        return "executor: (not run)"
    where = f" at {record['address']}" if record.get("address") else ""
    return (f"executor: {record['executor']}, {record['workers']} worker(s){where}; {record.get(unit, 0)} {unit} in "
            f"{record.get('seconds', 0):.1f} s ({record.get(f'{unit}_per_second', 0):.1f} {unit}/s); "
            f"{record.get('retries', 0)} task(s) re-run after their worker was lost")
