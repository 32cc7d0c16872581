"""Helpers shared by the benchmarks: timing, peak memory of a child process, the result table."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from typing import Callable, List, Sequence, Tuple


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    """Best wall-clock seconds of ``repeat`` runs of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_command(cmd: Sequence[str]) -> Tuple[float, float]:
    """Run ``cmd``; return (seconds, peak RSS of the child in MiB). Raises on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({result.returncode}): {result.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024.0


def print_table(title: str, header: List[str], rows: List[List[object]]) -> None:
    """Print a Markdown table."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{c:.3g}" if isinstance(c, float) else str(c) for c in row) + " |")
    sys.stdout.flush()
