"""Progress reporting: library functions take a ``progress(done, total, stage)`` callback.

The command line renders it with :class:`ProgressBar` on standard error; the
Slicer module renders it with Slicer's progress dialog; both also log.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO

Progress = Callable[[int, int, str], None]

__all__ = ["Progress", "ProgressBar"]


class ProgressBar:
    """A one-line text progress bar (redrawn in place on a terminal, a line every few seconds otherwise)."""

    def __init__(self, stream: Optional[TextIO] = None, width: int = 30, interval_s: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.interval_s = interval_s
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0
        self._stage = ""
        self._start = time.monotonic()

    def __call__(self, done: int, total: int, stage: str) -> None:
        now = time.monotonic()
        finished = total > 0 and done >= total
        if stage != self._stage:
            self._stage, self._start, self._last = stage, now, 0.0
        if not self.tty and not finished and now - self._last < self.interval_s:
            return
        self._last = now
        fraction = done / total if total else 1.0
        filled = int(round(self.width * fraction))
        elapsed = now - self._start
        rate = f" ({done / elapsed:.1f}/s)" if elapsed > 0.5 else ""
        line = f"{stage:16} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}{rate}"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
