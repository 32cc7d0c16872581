"""Batch work in worker processes, the same way for every batch command.

:func:`unordered` runs ``fn`` on every item -- in ``jobs`` worker processes, or in this process
for one job or one item -- and yields each item with a way to get its outcome as soon as it is
done, so that callers can count progress and report one item's failure without stopping the
others.  An interrupt (Ctrl-C) cancels the work not yet started.
"""

from __future__ import annotations

import concurrent.futures
import functools
from typing import Callable, Iterator, Optional, Sequence, Tuple, TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["unordered"]


def unordered(fn: Callable[[T], R], items: Sequence[T], jobs: int, initializer: Optional[Callable[..., None]] = None,
              initargs: tuple = ()) -> Iterator[Tuple[T, Callable[[], R]]]:
    """``(item, outcome)`` for every item as it finishes; ``outcome()`` returns ``fn(item)`` or raises
    what it raised.  ``initializer(*initargs)`` runs once in each worker process (or here)."""
    if jobs > 1 and len(items) > 1:
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, initializer=initializer, initargs=initargs) as pool:
            futures = {pool.submit(fn, item): item for item in items}
            try:
                for future in concurrent.futures.as_completed(futures):
                    yield futures[future], future.result
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return
    if initializer is not None:
        initializer(*initargs)
    for item in items:
        yield item, functools.partial(fn, item)
