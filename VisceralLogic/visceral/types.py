"""Type aliases shared by the package."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Union

__all__ = ["PathLike", "Progress"]

#: A file or folder path.
PathLike = Union[str, Path]
#: A progress callback: ``progress(done, total, stage)``; the CLI draws it as a bar, Slicer as a dialog.
Progress = Callable[[int, int, str], None]
