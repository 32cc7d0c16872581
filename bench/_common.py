"""Helpers shared by the benchmarks: timing, peak memory of a child process, the result table."""

from __future__ import annotations

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


_MEASURE = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "sys.stderr.write(r.stderr[-2000:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(r.returncode)\n"
)


def run_command(cmd: Sequence[str]) -> Tuple[float, float]:
    """Run ``cmd`` under a fresh wrapper process; return (seconds, the command's own peak RSS in MiB)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 1):  # visceral exits 1 when something was refused
        raise RuntimeError(f"{cmd[0]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return seconds, float(result.stdout.strip().splitlines()[-1]) / 1024.0


def print_table(title: str, header: List[str], rows: List[List[object]]) -> None:
    """Print a Markdown table."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{c:.3g}" if isinstance(c, float) else str(c) for c in row) + " |")
    sys.stdout.flush()
