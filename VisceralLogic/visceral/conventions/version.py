"""Version of the data-format conventions written by this package.

Seed section 5 (Conclusion): conventions are *appended* over the project's
lifetime, only in backward-compatible ways, and "any processing pipeline built
for the current convention has to be operable for any future versions".

Rule used here (docs/CONVENTIONS.md, "Versioning"):

- The version is ``MAJOR.MINOR``.  A MINOR step may only *add* (new metadata
  keys, new trailing CSV columns, new file kinds); readers ignore what they do
  not know and keep it when they rewrite a file.  A MAJOR step would break old
  readers and is therefore not allowed by the seed; readers refuse a MAJOR they
  do not know.
- Every metadata file and data-set README states the version it was written
  with; golden files of each released version live in ``Testing/data/golden``.
"""

from __future__ import annotations

from typing import Tuple

from visceral.errors import VisceralError

#: The version this package writes.
CONVENTIONS_VERSION = "1.0"

#: Every version released so far (oldest first).  Append only.
KNOWN_VERSIONS: Tuple[str, ...] = ("1.0",)


def parse_version(text: str) -> Tuple[int, int]:
    """Parse ``"MAJOR.MINOR"`` (a bare ``"1"`` means ``1.0``) into integers."""
    parts = text.strip().split(".")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise VisceralError(f"conventions version {text!r} is not of the form MAJOR.MINOR") from None
    if not 1 <= len(numbers) <= 2 or any(n < 0 for n in numbers):
        raise VisceralError(f"conventions version {text!r} is not of the form MAJOR.MINOR")
    return (numbers[0], numbers[1] if len(numbers) == 2 else 0)


def is_readable(text: str) -> bool:
    """True when a file written with conventions version ``text`` can be read.

    Any MINOR of a known MAJOR is readable (later minors only append).
    """
    major, _ = parse_version(text)
    return major in {parse_version(v)[0] for v in KNOWN_VERSIONS}


def is_known(text: str) -> bool:
    """True when ``text`` is a released version (a later MINOR is readable but unknown)."""
    return parse_version(text) in {parse_version(v) for v in KNOWN_VERSIONS}
