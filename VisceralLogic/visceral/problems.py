"""One line of a batch report: a code, what it concerns, why -- refused or a warning by its code.

Each batch (conversion, scoring) has its own table of codes; its ``Problem`` says which of them
refuse the item they concern.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

__all__ = ["Problem"]


@dataclass(frozen=True)
class Problem:
    """Something about one file, series or image pair that was refused or needs saying, with its code."""

    code: str
    where: str
    message: str

    #: code -> whether the item it concerns was refused (set by each batch's subclass from its code table)
    REFUSING: ClassVar[Mapping[str, bool]] = {}

    @property
    def refused(self) -> bool:
        """True when the item was refused (not written, not scored); else a warning."""
        return self.REFUSING[self.code]

    def to_text(self) -> str:
        """One line: ``refused CODE: where: message`` (or ``warning ...``)."""
        return f"{'refused' if self.refused else 'warning'} {self.code}: {self.where}: {self.message}"
