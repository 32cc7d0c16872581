"""The exceptions of the Visceral package.

One base class, :class:`VisceralError`, and one subclass per kind of failure.
Every message names the file (where there is one) and the reason, so that the
command line can print it as one line and the Slicer widget can show it as is.
The classes also derive from :class:`ValueError`, as Slicer's scripted-module
logic conventionally raises ``ValueError`` for bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from visceral.types import PathLike


class VisceralError(ValueError):
    """Base class of every error raised on purpose by this package."""


def one_line(exc: BaseException, limit: Optional[int] = None) -> str:
    """The message of ``exc`` as one line of a report (its white space collapsed), cut after ``limit``
    characters (with "...") when given."""
    text = " ".join(str(exc).split())
    return text[:limit] + "..." if limit is not None and len(text) > limit else text


class InvalidNameError(VisceralError):
    """A file name does not follow the VISCERAL naming conventions.

    Attributes:
        name: the file name that was parsed.
        token: the offending ``_``-separated token (or ``""`` when missing).
        position: 1-based position of that token in the name (0 if not applicable).
        reason: what was expected there.
    """

    def __init__(self, name: str, reason: str, token: str = "", position: int = 0) -> None:
        self.name = name
        self.token = token
        self.position = position
        self.reason = reason
        where = f" token {position} {token!r}:" if position else ""
        super().__init__(f"{name}:{where} {reason}")


class UnknownStructureError(VisceralError):
    """A structure name or RadLex ID is not in the structure registry."""

    def __init__(self, query: str, suggestions: Sequence[str] = ()) -> None:
        self.query = query
        self.suggestions = list(suggestions)
        hint = f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown structure {query!r}{hint}")


class FileFormatError(VisceralError):
    """A data file (CSV, metadata text, ...) cannot be read.

    Attributes:
        path: the file (may be ``None`` for in-memory text).
        line: 1-based line number, or ``None``.
        reason: what is wrong.
    """

    def __init__(self, path: Optional[PathLike], reason: str, line: Optional[int] = None) -> None:
        self.path = None if path is None else Path(path)
        self.line = line
        self.reason = reason
        where = str(path) if path is not None else "<text>"
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {reason}")


class LabelTableError(FileFormatError):
    """A region label table (``structure,label`` CSV) is malformed."""


class LandmarkFileError(FileFormatError):
    """A landmark CSV file is malformed or holds an invalid covariance."""


class MetadataError(FileFormatError):
    """A metadata ``.txt`` file is malformed or lacks a mandatory key."""


class GeometryError(VisceralError):
    """Image geometry is unusable (singular direction, non-positive spacing, an unknown frame, ...)."""


class RegistryError(VisceralError):
    """A structure or landmark registry is inconsistent (duplicate IDs, ambiguous names)."""


class Cancelled(VisceralError):
    """The user stopped a long operation (a progress callback raised it); what was finished stays."""
