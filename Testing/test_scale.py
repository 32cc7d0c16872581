"""The batch drivers on every executor: serial, local worker processes, a Dask ``LocalCluster``, and a
real Dask cluster (``dask scheduler`` + two ``dask worker`` processes started here, the way a cluster
is run).  Outputs are byte-identical and the audit reports identical (apart from their execution
record) whichever executor ran; pseudonyms, UIDs and subject numbers too, also when a run is extended
later on another executor; a worker killed during a run loses nothing.

The corpus: the real scanner files of ``Testing/data/realworld`` and the demo's clinical study.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator

import pytest

from visceral.convert import convert
from visceral.deid import deidentify
from visceral.deid.identity import SecretKey
from visceral.demo.study import write_study
from visceral.parallel import DaskExecutor, ProcessExecutor, SerialExecutor
from visceral.validate import validate_dataset

REALWORLD = Path(__file__).resolve().parent / "data" / "realworld"
DASK = Path(sys.executable).parent / "dask"


def tree(folder: Path) -> Dict[str, bytes]:
    """Every file below ``folder``: relative path -> bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def normalized(report_json: str, *folders: Path) -> dict:
    """A JSON report without its execution record, with the run's own folders replaced by names."""
    text = report_json
    for n, folder in enumerate(folders):
        text = text.replace(str(folder.resolve()), f"<folder{n}>")
    data = json.loads(text)
    assert data.pop("execution"), "the report states the execution"
    return data


def text_without_execution(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("executor: "))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    shutil.copytree(REALWORLD, root / "input" / "real", ignore=shutil.ignore_patterns("*.md", "*.json"))
    write_study(root / "input" / "demo")
    SecretKey.load_or_create(root / "key.hex")
    return root


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[str]:
    """A Dask scheduler and two single-threaded workers (each under its nanny), as separate processes."""
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    logs = [open(folder / f"{name}.log", "w") for name in ("scheduler", "worker1", "worker2")]
    processes = [subprocess.Popen([str(DASK), "scheduler", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1", "--port", "0",
                                   "--dashboard-address", ":0", "--no-show"], stdout=logs[0], stderr=subprocess.STDOUT, cwd=folder)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline and processes[0].poll() is None, (folder / "scheduler.log").read_text()
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole, then read
        for n in (1, 2):
            processes.append(subprocess.Popen([str(DASK), "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                                               "--nworkers", "1", "--local-directory", str(folder / f"worker{n}"), "--no-dashboard"],
                                              stdout=logs[n], stderr=subprocess.STDOUT, cwd=folder))
        address = json.loads(scheduler_file.read_text())["address"]
        _wait_for_workers(address, 2)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


def _wait_for_workers(address: str, n: int) -> None:
    import distributed

    with distributed.Client(address, timeout="30s") as client:
        client.wait_for_workers(n, timeout=90)


def _executors(kind: str, address: str):
    if kind == "serial":
        return SerialExecutor()
    if kind == "processes":
        return ProcessExecutor(2)
    if kind == "local cluster":
        return DaskExecutor("local", 2)
    return DaskExecutor(address)


KINDS = ("serial", "processes", "local cluster", "cluster")


def _deidentify(corpus: Path, out: Path, executor, **kwargs):
    return deidentify(corpus / "input", out, key_file=corpus / "key.hex", jobs=executor, **kwargs)


def test_every_executor_releases_the_same_bytes_and_reports_the_same(corpus, cluster, tmp_path):
    results = {}
    for kind in KINDS:
        out = tmp_path / kind.replace(" ", "_") / "release"
        with _executors(kind, cluster) as executor:
            report = _deidentify(corpus, out, executor)
            assert report.execution["executor"] == executor.kind
            assert report.execution["workers"] == (1 if kind == "serial" else 2)
            assert report.execution["files"] == len(report.files) and report.execution["files_per_second"] > 0
            assert report.execution["tasks"] >= 2 and report.execution["retries"] == 0
            released = out.parent / "dataset"
            converted = convert(out, released, jobs=executor)
            validation = validate_dataset(released, jobs=executor)
            assert validation.execution["tasks"] == validation.execution["checks"], "a run counts its own tasks only"
        private = out.parent / "release.private"
        results[kind] = {
            "release": tree(out),
            "dataset": tree(released),
            "linkage": (private / "linkage.csv").read_text(),
            "deid": normalized(report.to_json(), out, private, corpus / "input"),
            "deid text": text_without_execution((private / "deid_report.txt").read_text().replace(str(out.parent), "<run>")),
            "convert": normalized(converted.to_json(), out, released),
            "validate": normalized(validation.to_json(), released),
        }
        assert report.fates()["released"] > 50 and not report.leak_count()
        assert converted.volumes and validation.ok, validation.to_text()
    serial = results.pop("serial")
    for kind, result in results.items():
        for what in serial:
            assert result[what] == serial[what], f"{kind}: {what} differs from the serial run's"


def test_a_run_extended_later_on_another_executor_continues_the_same_numbering(corpus, cluster, tmp_path):
    """Part of the corpus first (local processes), all of it later (the Dask cluster), with the same
    key and linkage table: the same release, pseudonyms and numbering as the same two runs serially."""
    trees = {}
    for first, later, name in ((ProcessExecutor(2), DaskExecutor(cluster), "mixed"), (SerialExecutor(), SerialExecutor(), "serial")):
        out, linkage = tmp_path / name / "release", tmp_path / name / "linkage.csv"
        with first:
            part = deidentify(corpus / "input" / "real", out, key_file=corpus / "key.hex", linkage_file=linkage, jobs=first)
        numbers_before = linkage.read_text().splitlines()[1:]
        with later:
            whole = deidentify(corpus / "input", out, key_file=corpus / "key.hex", linkage_file=linkage, jobs=later)
        rows = linkage.read_text().splitlines()[1:]
        assert rows[:len(numbers_before)] == numbers_before, "subjects numbered before keep their numbers"
        assert [int(r.rsplit(",", 1)[1]) for r in rows] == list(range(1, len(rows) + 1)), "new subjects continue the numbering"
        assert len(rows) == part.subjects + whole.new_subjects and whole.new_subjects == 2
        assert whole.fates()["released earlier"] == part.fates()["released"]
        trees[name] = (tree(out), rows)
    assert trees["mixed"] == trees["serial"]


def test_a_worker_killed_during_a_run_loses_nothing(corpus, cluster, tmp_path):
    """SIGKILL to one worker process in the middle of a run: its tasks run again on a worker (its
    nanny starts a new one), and the release is the serial run's, byte for byte."""
    reference = _deidentify(corpus, tmp_path / "serial" / "release", SerialExecutor())
    killed = []

    def kill_one_worker(done: int, total: int, stage: str) -> None:
        if stage == "de-identifying" and not killed and done < total // 2:
            pids = executor.client.run(os.getpid)
            pid = sorted(pids.values())[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    out = tmp_path / "cluster" / "release"
    with DaskExecutor(cluster) as executor:
        report = _deidentify(corpus, out, executor, conformance="all", progress=kill_one_worker)
    try:
        assert killed, "a worker was killed during the run"
        assert report.execution["retries"] >= 1, report.execution
        assert [(f.source, f.fate, f.output) for f in report.files] == [(f.source, f.fate, f.output) for f in reference.files]
        assert tree(out) == tree(tmp_path / "serial" / "release")
        assert not any(p.name.startswith(".visceral-partial-") for p in out.rglob("*"))
    finally:
        _wait_for_workers(cluster, 2)


def test_an_unreachable_scheduler_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    from visceral.cli import main

    monkeypatch.setattr("visceral.parallel.DASK_WORKER_WAIT_S", 2)
    status = main(["deidentify", str(REALWORLD), str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9", "-q"])
    err = capsys.readouterr().err
    assert status != 0 and err.startswith("error: tcp://127.0.0.1:9: no Dask cluster") and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_cli_announces_the_cluster_and_its_dashboard(corpus, tmp_path, capsys):
    from visceral.cli import main

    status = main(["convert", str(corpus / "input" / "demo"), str(tmp_path / "dataset"), "--scheduler", "local", "--jobs", "2", "-q"])
    out, err = capsys.readouterr()
    assert "running on a dask executor, 2 worker(s) at tcp://" in err and "dashboard http" in err
    assert "distributed" not in err, "Dask's own log stays quiet without --verbose"
    assert status == 1 and "NOT_PSEUDONYMIZED" in out  # the demo study is not de-identified: converted, with a warning each
    assert len(list((tmp_path / "dataset").glob("*.nii.gz"))) == 5  # CT and MR of each patient, and the once-lossy CT slice


def test_ctrl_c_stops_a_local_cluster_run_with_one_line(corpus, tmp_path):
    """Ctrl-C reaches the terminal's whole process group: the command says one line and stops its cluster;
    its worker processes ignore it (no traceback from each), and none is left running."""
    command = [sys.executable, "-m", "visceral", "deidentify", str(corpus / "input"), str(tmp_path / "out"), "--scheduler", "local",
               "--jobs", "2", "--key-file", str(corpus / "key.hex")]
    err = tmp_path / "err.txt"
    with open(err, "w") as handle:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=handle, start_new_session=True)
    deadline = time.monotonic() + 120
    while "running on a dask executor" not in err.read_text() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=120) == 130
    lines = err.read_text().splitlines()
    assert lines[-1] == "interrupted; finished files are complete, run again to resume"
    assert not any("Traceback" in line or "KeyboardInterrupt" in line for line in lines), "\n".join(lines)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)  # a process of the group still running
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("worker processes left running after Ctrl-C")


def test_dask_is_imported_only_when_asked_for(tmp_path):
    """The core runs without Dask: a serial and a --jobs run never import it; --scheduler without it
    installed is one line."""
    script = f"""
import sys
from visceral.cli import main
assert main(["deidentify", {str(REALWORLD / "ge_ct_tilt")!r}, {str(tmp_path / "a")!r}, "--jobs", "1", "-q"]) == 0
assert main(["deidentify", {str(REALWORLD / "ge_ct_tilt")!r}, {str(tmp_path / "b")!r}, "--jobs", "2", "-q"]) == 0
assert not {{"dask", "distributed"}} & set(sys.modules), "Dask imported"
sys.modules["distributed"] = None  # as if it were not installed
assert main(["deidentify", {str(REALWORLD / "ge_ct_tilt")!r}, {str(tmp_path / "c")!r}, "--scheduler", "local", "-q"]) == 1
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: --scheduler needs Dask: install it with  pip install 'visceral[dask]'"
    assert not (tmp_path / "c").exists()


def test_scoring_gives_the_same_scores_on_every_executor(cluster, tmp_path):
    from test_evaluate_pipeline import write_annotated

    from visceral.evaluate import evaluate

    for subject in (15, 16, 17):
        write_annotated(tmp_path / "ref", subject, annotator=1, uncertainty=subject == 15)
        write_annotated(tmp_path / "res", subject, annotator=2, uncertainty=subject == 15, shift_voxels=subject % 2)
    scores = {}
    for kind in KINDS:
        with _executors(kind, cluster) as executor:
            report = evaluate(tmp_path / "ref", tmp_path / "res", jobs=executor)
        assert report.execution["executor"] == executor.kind and report.execution["images"] == 3
        scores[kind] = (report.scores, report.problems)
    for kind, found in scores.items():
        assert found[1] == scores["serial"][1], kind
        assert [repr(s) for s in found[0]] == [repr(s) for s in scores["serial"][0]], kind  # repr: NaN equals NaN


def test_every_worker_killed_at_once_loses_nothing(corpus, cluster, tmp_path):
    """Both workers of the cluster killed in the middle of a run: their nannies start new ones, which make
    the run's setup again (a task, not data held by the dead workers) and finish the run."""
    reference = _deidentify(corpus, tmp_path / "serial" / "release", SerialExecutor())
    killed = []

    def kill_every_worker(done: int, total: int, stage: str) -> None:
        if stage == "de-identifying" and not killed and done < total // 2:
            for pid in executor.client.run(os.getpid).values():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    out = tmp_path / "cluster" / "release"
    try:
        with DaskExecutor(cluster) as executor:
            report = _deidentify(corpus, out, executor, progress=kill_every_worker)
        assert len(killed) == 2
        assert [(f.source, f.fate, f.output) for f in report.files] == [(f.source, f.fate, f.output) for f in reference.files]
        assert tree(out) == tree(tmp_path / "serial" / "release")
    finally:
        _wait_for_workers(cluster, 2)


def test_a_local_worker_process_killed_during_a_run_loses_nothing(corpus, tmp_path):
    """--jobs N: a worker process that dies breaks its pool; the files not finished run again in a new one."""
    import multiprocessing

    reference = _deidentify(corpus, tmp_path / "serial" / "release", SerialExecutor())
    killed = []

    def kill_a_worker(done: int, total: int, stage: str) -> None:
        if stage == "de-identifying" and not killed and done < total // 2:
            workers = multiprocessing.active_children()
            if workers:
                os.kill(workers[0].pid, signal.SIGKILL)
                killed.append(workers[0].pid)

    out = tmp_path / "processes" / "release"
    with ProcessExecutor(2) as executor:
        report = _deidentify(corpus, out, executor, progress=kill_a_worker)
    assert killed and report.execution["retries"] >= 1
    assert [(f.source, f.fate, f.output) for f in report.files] == [(f.source, f.fate, f.output) for f in reference.files]
    assert tree(out) == tree(tmp_path / "serial" / "release")


def test_two_runs_never_write_one_release_or_linkage_table_at_once(corpus, tmp_path, monkeypatch):
    from visceral.errors import VisceralError
    from visceral.fileio import exclusive_lock

    monkeypatch.setattr("visceral.fileio.LOCK_WAIT_S", 0.3)

    out = tmp_path / "release"
    with exclusive_lock(tmp_path / ".release.lock", "the release folder"):
        with pytest.raises(VisceralError, match="is in use by another run"):
            _deidentify(corpus, out, SerialExecutor())
    with exclusive_lock(tmp_path / "linkage.csv.lock", "the linkage table"):
        with pytest.raises(VisceralError, match="linkage table .* is in use by another run"):
            deidentify(corpus / "input" / "demo", tmp_path / "other", key_file=corpus / "key.hex", linkage_file=tmp_path / "linkage.csv")
    assert not list(out.rglob("*.dcm"))
    report = _deidentify(corpus, out, SerialExecutor())  # the lock went with its holder
    assert report.fates()["released"] > 50


def _die(*args: object) -> None:
    """A voxel check that kills its worker process."""
    os._exit(3)


def test_a_voxel_check_whose_worker_dies_is_one_finding(tmp_path, monkeypatch):
    """validate: a check that kills its worker process every time is reported as one finding naming the
    file, and the other checks run."""
    import gallery

    import visceral.validate as validate

    dataset = tmp_path / "dataset"
    gallery.build_clean_dataset(dataset)
    monkeypatch.setattr(validate, "_check_uncertainty_volume", _die)
    report = validate_dataset(dataset, jobs=ProcessExecutor(2))
    lost = [f for f in report.findings if "could not be checked" in f.message]
    assert lost and all(f.code == "NIFTI_UNREADABLE" and "label" in f.file for f in lost), report.to_text()
    assert len(lost) < report.execution["checks"] and report.execution["retries"] >= 1


def _dies_on_poison(real):
    """``real``, but the worker process dies on the file named POISON (as if its reader crashed)."""

    def wrapped(item):
        path = getattr(item, "path", item)
        if Path(str(path)).name == POISON:
            os._exit(9)
        return real(item)

    return wrapped


POISON = "IM0003"


@pytest.mark.parametrize("stage", ["_prepass", "_process"])
def test_a_file_that_kills_its_worker_fails_alone(corpus, tmp_path, monkeypatch, stage):
    """--jobs 2: a file whose header reading (pre-pass) or de-identification kills the worker process fails
    alone, with one line; every other file is released as in a serial run."""
    from visceral.deid import pipeline

    inp = corpus / "input" / "demo"
    reference = deidentify(inp, tmp_path / "serial", key_file=corpus / "key.hex", jobs=1)
    monkeypatch.setattr(pipeline, stage, _dies_on_poison(getattr(pipeline, stage)))  # inherited by the forked workers
    report = deidentify(inp, tmp_path / "jobs", key_file=corpus / "key.hex", jobs=ProcessExecutor(2))
    failed = [f for f in report.files if f.fate == "failed"]
    assert [Path(f.source).name for f in failed] == [POISON] * len(failed) and failed, [(f.source, f.reason) for f in failed]
    assert all("its worker was lost" in f.reason for f in failed)
    poisoned = {f.source for f in failed}
    assert [(f.source, f.fate, f.output) for f in report.files if f.source not in poisoned] == \
           [(f.source, f.fate, f.output) for f in reference.files if f.source not in poisoned]
