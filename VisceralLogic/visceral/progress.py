"""Progress reporting: library functions take a ``progress(done, total, stage)`` callback.

The command line renders it with :class:`ProgressBar` on standard error; the
Slicer module renders it with Slicer's progress dialog; both also log.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

from visceral.types import Progress

__all__ = ["Progress", "ProgressBar"]


class ProgressBar:
    """A one-line text progress bar redrawn in place on a terminal; elsewhere (a log, CI) one summary
    line per finished stage, as tqdm-like tools do."""

    def __init__(self, stream: Optional[TextIO] = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._stage = ""
        self._start = time.monotonic()

    def __call__(self, done: int, total: int, stage: str) -> None:
        now = time.monotonic()
        finished = total > 0 and done >= total
        if stage != self._stage:
            self._stage, self._start = stage, now
        elapsed = now - self._start
        rate = f" ({done / elapsed:.1f}/s)" if elapsed > 0.5 else ""
        if not self.tty:
            if finished:
                self.stream.write(f"{stage}: {done}/{total} in {elapsed:.1f} s{rate}\n")
                self.stream.flush()
            return
        fraction = done / total if total else 1.0
        filled = int(round(self.width * fraction))
        line = f"{stage:16} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}{rate}"
        self.stream.write("\r" + line + ("\n" if finished else ""))
        self.stream.flush()
