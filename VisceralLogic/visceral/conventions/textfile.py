"""Reading the small text files of a data set (CSV tables, metadata): one helper.

Every reader goes through :func:`read_text` so that a missing file, a
directory or undecodable bytes give the same kind of clear error naming the
file, never a traceback.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable, List, Type

from visceral.errors import FileFormatError
from visceral.types import PathLike


def read_text(path: PathLike, error: Type[FileFormatError] = FileFormatError) -> str:
    """Return the text of ``path`` (UTF-8, a byte-order mark is dropped).

    Raises:
        error: (a :class:`FileFormatError` subclass) when the file cannot be read.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise error(path, f"cannot read the file ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise error(path, f"not a text file ({exc.reason} at byte {exc.start})") from None


def csv_text(rows: List[List[str]]) -> str:
    """Format ``rows`` as canonical CSV: comma separator, minimal quoting, ``\\n`` line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue()


def is_comment_or_blank(line: str) -> bool:
    """True for an empty line or a ``#`` comment line (both are skipped by readers)."""
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def read_json_object(path: PathLike, what: str, error: Callable[[str], Exception]) -> dict:
    """The JSON object in ``path``; ``error(message)`` is raised when it is unreadable or not an object.

    Args:
        what: what the file is, for the message ("profile", "config").
    """
    try:
        data = json.loads(read_text(path))
    except (FileFormatError, json.JSONDecodeError) as exc:
        raise error(f"{path}: not a readable JSON {what} ({exc})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: a {what} is a JSON object")
    return data


def format_number(value: float) -> str:
    """The shortest text that reads back to the same float (``2.5``, ``3``, ``0.1``)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text
