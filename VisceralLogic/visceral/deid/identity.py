"""Identity: the secret key, pseudonymous subject numbers, UID remapping and date offsets.

Everything derived here is a keyed hash (HMAC-SHA256) of the original value, so
re-running, resuming or adding a batch later gives the same UIDs and offsets, and
nobody without the key can link them back.  Subject numbers cannot be hashes (they
must be small and sequential), so they live in the *linkage table*, which -- like the
key -- is written only outside the release folder.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from visceral.conventions.names import pseudonym
from visceral.conventions.textfile import read_text
from visceral.errors import FileFormatError, VisceralError
from visceral.fileio import atomic_write_text
from visceral.types import PathLike

__all__ = ["SecretKey", "Linkage", "LinkageEntry", "check_private_location"]

class SecretKey:
    """The project's secret: 32 random bytes, stored as hex in a file readable by its owner only."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise VisceralError("the de-identification key must have at least 16 bytes")
        self._key = key

    @classmethod
    def load_or_create(cls, path: PathLike) -> Tuple["SecretKey", bool]:
        """Read the key file, or create it (mode 0600) when missing.  Returns (key, created)."""
        path = Path(path)
        if path.exists():
            text = read_text(path).strip()
            try:
                return cls(bytes.fromhex(text)), False
            except ValueError:
                raise FileFormatError(path, "not a Visceral key file (expected hexadecimal digits)") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex() + "\n")
        return cls(key), True

    def raw(self) -> bytes:
        """The key bytes (to hand to worker processes; never log or write them)."""
        return self._key

    def digest(self, purpose: str, value: str) -> bytes:
        """HMAC-SHA256 of ``value`` for ``purpose`` (purposes never share digests)."""
        return hmac.new(self._key, f"{purpose}\0{value}".encode("utf-8"), hashlib.sha256).digest()

    def uid(self, original: str, root: str = "2.25", subject: str = "") -> str:
        """The new UID of ``original`` for ``subject``: ``<root>.<decimal of 128 keyed-hash bits>``.

        Valid by PS3.5 9.1: digits and dots, no component with a leading zero, at most 64
        characters (root 2.25: at most 44).  The same original of the same subject always gives the
        same UID; two subjects' objects that share a UID (it happens in real exports) get two.
        """
        if len(root) > 24:
            raise VisceralError(f"UID root {root!r} is longer than 24 characters")
        scoped = f"{subject}\0{original.strip()}" if subject else original.strip()
        number = int.from_bytes(self.digest("uid", scoped)[:16], "big")  # at most 39 digits
        return f"{root}.{number}"

    def date_offset_days(self, patient_key: str, low: int, high: int) -> int:
        """The patient's date offset in days, in ``[low, high]`` (one per patient, stable)."""
        span = high - low + 1
        return low + int.from_bytes(self.digest("dates", patient_key)[:8], "big") % span

    def time_offset_seconds(self, patient_key: str) -> int:
        """The patient's time-of-day offset in seconds, in ``[0, 86399]`` (times move with their dates)."""
        return int.from_bytes(self.digest("times", patient_key)[:8], "big") % 86400


@dataclass(frozen=True)
class LinkageEntry:
    """One row of the linkage table."""

    patient_key: str
    subject: int

    @property
    def pseudonym(self) -> str:
        return pseudonym(self.subject)


class Linkage:
    """Original patient -> subject number, persisted in a CSV kept outside the release."""

    HEADER = ["original_patient", "subject"]

    def __init__(self, path: Optional[PathLike] = None) -> None:
        self.path = Path(path) if path is not None else None
        self._by_key: Dict[str, LinkageEntry] = {}
        if self.path is not None and self.path.exists():
            self._read()

    def _read(self) -> None:
        text = read_text(self.path)
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or rows[0] != self.HEADER:
            raise FileFormatError(self.path, f"not a Visceral linkage table (expected header {','.join(self.HEADER)})")
        for line_no, row in enumerate(rows[1:], start=2):
            if len(row) != 2 or not row[1].isdigit():
                raise FileFormatError(self.path, f"bad linkage row {row!r}", line_no)
            self._by_key[row[0]] = LinkageEntry(row[0], int(row[1]))

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, patient_key: str) -> Optional[LinkageEntry]:
        return self._by_key.get(patient_key)

    def keys(self) -> List[str]:
        """The patient keys numbered so far."""
        return list(self._by_key)

    def canonical(self, patient_key: str) -> str:
        """The key whose subject ``patient_key`` shares, numbered first: one patient's keys (a Patient ID
        with and without its issuer) are rows of one subject, the first of them the patient's own."""
        subject = self._by_key[patient_key].subject
        return next(k for k, e in self._by_key.items() if e.subject == subject)

    def add_alias(self, alias: str, patient_key: str) -> None:
        """Record ``alias`` as another key of the patient ``patient_key`` (its subject), once."""
        if alias not in self._by_key:
            self._by_key[alias] = LinkageEntry(alias, self._by_key[patient_key].subject)

    def assign(self, patient_keys: Iterable[str], key: SecretKey) -> List[LinkageEntry]:
        """Give subject numbers to the patients not seen before; returns the new entries.

        New patients are numbered after the existing ones, in the order of their keyed
        hash (not of their IDs or names, which would leak alphabetical order).
        """
        new = sorted({k for k in patient_keys if k not in self._by_key}, key=lambda k: key.digest("order", k))
        start = max((e.subject for e in self._by_key.values()), default=0) + 1
        entries = []
        for n, patient_key in enumerate(new):
            entry = LinkageEntry(patient_key, start + n)
            self._by_key[patient_key] = entry
            entries.append(entry)
        return entries

    def save(self) -> None:
        """Write the table atomically (readable by its owner only)."""
        if self.path is None:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.HEADER)
        for entry in sorted(self._by_key.values(), key=lambda e: e.subject):
            writer.writerow([entry.patient_key, entry.subject])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, buffer.getvalue())
        os.chmod(self.path, 0o600)


def is_inside(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or lies below it (both resolved)."""
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def check_private_location(path: PathLike, what: str, output: PathLike, input_: PathLike) -> Path:
    """Refuse to put a private file (key, linkage, full report) inside the release or the input.

    Raises:
        VisceralError: naming the file and the folder it must not be in.
    """
    path = Path(path)
    if is_inside(path, Path(output)):
        raise VisceralError(f"{what} {path} must not be inside the release folder {output}: it would leak identity")
    if is_inside(path, Path(input_)):
        raise VisceralError(f"{what} {path} must not be inside the input folder {input_}: the input is never modified")
    return path
