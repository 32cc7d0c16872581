"""Landmark CSV files (seed section 3.2, Table 2).

Columns: landmark ID, x, y, z (mm, in the landmark frame of
:mod:`visceral.conventions.frames`), and an optional uncertainty given as the
nine coefficients of the 3x3 covariance matrix ``[c11,c12,c13,c21,...,c33]``.

Writer (canonical): header ``ID,x,y,z,uncertainty``, comma separator, decimal
point, the bracket field quoted, an empty field when there is no covariance.

Reader (tolerant, docs/CONVENTIONS.md "Landmark CSV"): header or none;
separator comma, semicolon, tab or blanks; with a semicolon, tab or blank
separator a decimal comma (the seed's ``134,5``) is accepted; inside the
brackets the nine numbers are separated by commas, or -- when decimal commas
are used -- by semicolons or blanks; columns after the fifth are ignored; ``#``
comment lines and blank lines are skipped.  Slicer's fiducial list (``.fcsv``)
of the benchmark layout is read by :func:`read_fcsv`.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from visceral.conventions.textfile import format_number, csv_text, is_comment_or_blank, read_text
from visceral.errors import LandmarkFileError
from visceral.fileio import atomic_write_text, check_new_files
from visceral.types import PathLike

__all__ = [
    "Landmark",
    "parse_landmarks",
    "read_landmarks",
    "write_landmarks",
    "landmarks_to_csv",
    "check_covariance",
    "read_fcsv",
    "COVARIANCE_TOLERANCE",
    "RegisteredLandmark",
    "read_landmark_registry",
    "landmark_registry",
]

#: Relative tolerance for symmetry and positive semi-definiteness of a covariance.
COVARIANCE_TOLERANCE = 1e-6

CANONICAL_HEADER = ["ID", "x", "y", "z", "uncertainty"]


@dataclass(frozen=True)
class Landmark:
    """One landmark: ID, position (mm, landmark frame) and optional 3x3 covariance (mm^2).

    Attributes:
        landmark_id: numeric landmark ID (the same ID means the same landmark in every subject).
        position_mm: ``(x, y, z)`` in the landmark frame (mm from voxel [0,0,0] along the voxel axes).
        covariance: row-major 9-tuple ``(c11, c12, ..., c33)`` in mm^2, or ``None``.
    """

    landmark_id: int
    position_mm: Tuple[float, float, float]
    covariance: Optional[Tuple[float, ...]] = None

    def __post_init__(self) -> None:
        if isinstance(self.landmark_id, bool) or not isinstance(self.landmark_id, int) or self.landmark_id < 0:
            raise LandmarkFileError(None, f"landmark ID must be a non-negative integer, not {self.landmark_id!r}")
        position = tuple(float(v) for v in self.position_mm)
        if len(position) != 3 or not all(math.isfinite(v) for v in position):
            raise LandmarkFileError(None, f"landmark {self.landmark_id}: position must be 3 finite numbers, not {self.position_mm!r}")
        object.__setattr__(self, "position_mm", position)
        if self.covariance is not None:
            cov = tuple(float(v) for v in np.asarray(self.covariance, dtype=float).ravel())
            problem = check_covariance(cov)
            if problem:
                raise LandmarkFileError(None, f"landmark {self.landmark_id}: {problem}")
            object.__setattr__(self, "covariance", cov)

    @property
    def covariance_matrix(self) -> Optional[np.ndarray]:
        """The covariance as a 3x3 array, or ``None``."""
        return None if self.covariance is None else np.asarray(self.covariance).reshape(3, 3)


def check_covariance(values: Sequence[float], tolerance: float = COVARIANCE_TOLERANCE) -> Optional[str]:
    """Return why ``values`` is not a valid covariance (9 finite numbers, symmetric, PSD), or ``None``."""
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size != 9:
        return f"covariance needs 9 coefficients c11..c33, got {arr.size}"
    if not np.all(np.isfinite(arr)):
        return "covariance has a non-finite coefficient"
    m = arr.reshape(3, 3)
    scale = max(float(np.max(np.abs(m))), 1e-300)
    if np.max(np.abs(m - m.T)) > tolerance * scale:
        return "covariance is not symmetric"
    if float(np.min(np.linalg.eigvalsh((m + m.T) / 2))) < -tolerance * scale:
        return "covariance is not positive semi-definite"
    return None


def landmarks_to_csv(landmarks: Sequence[Landmark]) -> str:
    """Canonical CSV text of ``landmarks``."""
    rows = [CANONICAL_HEADER]
    for lm in landmarks:
        cov = "" if lm.covariance is None else "[" + ",".join(format_number(c) for c in lm.covariance) + "]"
        rows.append([str(lm.landmark_id), *(format_number(v) for v in lm.position_mm), cov])
    return csv_text(rows)


def write_landmarks(path: PathLike, landmarks: Sequence[Landmark], overwrite: bool = True) -> None:
    """Write ``landmarks`` as canonical CSV (atomically; its folder made).  Duplicate IDs are refused,
    and an existing file unless ``overwrite`` (``FileExistsError``)."""
    ids = [lm.landmark_id for lm in landmarks]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        raise LandmarkFileError(path, f"landmark ID used more than once: {', '.join(map(str, dups))}")
    check_new_files([path], overwrite)
    atomic_write_text(path, landmarks_to_csv(landmarks))


_BRACKETS = re.compile(r"\[[^\]]*\]")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+(,\d+)?([eE][+-]?\d+)?")


def _split_fields(line: str) -> Tuple[List[str], bool]:
    """Split a landmark line into fields; also tell whether decimal commas are in use."""
    masked = _BRACKETS.sub(lambda m: "\0" * len(m.group()), line)
    if "\t" in masked:
        sep = "\t"
    elif ";" in masked:
        sep = ";"
    elif "," in masked:
        sep = ","
    else:
        sep = None
    if sep == ",":
        # The seed's own table: blank-separated fields with decimal commas ("321 134,5 423,5 262,5").
        blank_fields = masked.split()
        if len(blank_fields) >= 4 and all(_DECIMAL_COMMA.fullmatch(f) for f in blank_fields[:4]):
            sep = None
    # Split on the separator outside brackets and quotes (the bracket field may be unquoted).
    fields, start, depth, quote = [], 0, 0, False
    for i, ch in enumerate(line):
        if ch == '"':
            quote = not quote
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif not quote and depth == 0 and ((sep is None and ch in " \t") or ch == sep):
            fields.append(line[start:i])
            start = i + 1
    fields.append(line[start:])
    fields = [f.strip().strip('"').strip() for f in fields]
    if sep is None:
        fields = [f for f in fields if f]
    return fields, sep != ","


def _number(text: str, decimal_comma: bool) -> float:
    if decimal_comma:
        text = text.replace(",", ".")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _parse_covariance(text: str, decimal_comma: bool) -> Tuple[float, ...]:
    inner = text.strip()
    if not (inner.startswith("[") and inner.endswith("]")):
        raise ValueError("uncertainty must be written as [c11,c12,c13,c21,c22,c23,c31,c32,c33]")
    inner = inner[1:-1].strip()
    if decimal_comma and (";" in inner or re.search(r"\d\s+[-+\d]", inner)):
        parts = re.split(r"[;\s]+", inner)
        values = [_number(p, True) for p in parts if p]
    else:
        values = [_number(p.strip(), False) for p in inner.split(",") if p.strip()]
    return tuple(values)


def parse_landmarks(text: str, path: Optional[PathLike] = None, strict: bool = True) -> List[Landmark]:
    """Parse landmark CSV text (see the module docstring for what is accepted).

    Args:
        strict: refuse duplicate IDs and invalid covariances.  The validator passes
            ``False`` to report those problems under their own issue codes.

    Raises:
        LandmarkFileError: naming the file and line of the first problem.
    """
    landmarks: List[Landmark] = []
    seen = {}
    first = True
    for line_no, line in enumerate(text.splitlines(), start=1):
        if is_comment_or_blank(line):
            continue
        fields, decimal_comma = _split_fields(line)
        if first:
            first = False
            if fields and not re.fullmatch(r"[+-]?\d+", fields[0]):
                if fields[0].strip().lower() not in ("id", "landmark", "landmark id", "id of the landmark", "label"):
                    raise LandmarkFileError(path, f"expected a header starting with 'ID' or a numeric landmark ID, got {fields[0]!r}", line_no)
                continue  # header line
        if len(fields) < 4:
            raise LandmarkFileError(path, f"expected ID, x, y, z[, uncertainty], got {len(fields)} field(s)", line_no)
        try:
            landmark_id = int(fields[0])
        except ValueError:
            raise LandmarkFileError(path, f"landmark ID {fields[0]!r} is not an integer", line_no) from None
        try:
            position = tuple(_number(f, decimal_comma) for f in fields[1:4])
        except ValueError:
            raise LandmarkFileError(path, f"coordinates {fields[1:4]!r} are not 3 finite numbers", line_no) from None
        covariance = None
        if len(fields) > 4 and fields[4]:
            try:
                covariance = _parse_covariance(fields[4], decimal_comma)
            except ValueError as exc:
                raise LandmarkFileError(path, f"bad uncertainty {fields[4]!r}: {exc}", line_no) from None
            problem = check_covariance(covariance)
            if problem and strict:
                raise LandmarkFileError(path, f"landmark {landmark_id}: {problem}", line_no)
        if landmark_id in seen and strict:
            raise LandmarkFileError(path, f"landmark ID {landmark_id} already given on line {seen[landmark_id]}", line_no)
        seen.setdefault(landmark_id, line_no)
        if strict:
            try:
                landmarks.append(Landmark(landmark_id, position, covariance))
            except LandmarkFileError as exc:
                raise LandmarkFileError(path, exc.reason, line_no) from None
        else:
            landmarks.append(_unchecked_landmark(landmark_id, position, covariance))
    return landmarks


def _unchecked_landmark(landmark_id: int, position: Tuple[float, float, float], covariance: Optional[Tuple[float, ...]]) -> Landmark:
    """A landmark whose covariance is kept as read, even when invalid (for the validator)."""
    landmark = Landmark(landmark_id, position)
    if covariance is not None:
        object.__setattr__(landmark, "covariance", tuple(covariance))
    return landmark


def read_landmarks(path: PathLike, strict: bool = True) -> List[Landmark]:
    """Read a landmark CSV file (see :func:`parse_landmarks`)."""
    return parse_landmarks(read_text(path, LandmarkFileError), path, strict)


def landmark_id_of_label(label: str) -> int:
    """The landmark ID of a point label: its first number (``"321"``, ``"L321"``, ``"321 apex"``).

    Raises:
        LandmarkFileError: the label holds no number.
    """
    digits = "".join(ch if ch.isdigit() else " " for ch in label).split()
    if not digits:
        raise LandmarkFileError(None, f"point {label!r} has no landmark ID (name points by their numeric ID)")
    return int(digits[0])


@dataclass(frozen=True)
class FiducialPoint:
    """One point of a Slicer fiducial list (``.fcsv``): label and world position."""

    label: str
    position: Tuple[float, float, float]
    description: str = ""


def read_fcsv(path: PathLike) -> Tuple[str, List[FiducialPoint]]:
    """Read a 3D Slicer fiducial CSV (``.fcsv``) as distributed by the VISCERAL benchmarks.

    Returns the world frame (``"RAS"`` or ``"LPS"``, from the ``# CoordinateSystem``
    header: ``0``/``RAS`` or ``1``/``LPS``; RAS when absent, as in Slicer 4) and the points.
    Columns are ``id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID``.
    """
    text = read_text(path, LandmarkFileError)
    frame = "RAS"
    columns = ["id", "x", "y", "z", "ow", "ox", "oy", "oz", "vis", "sel", "lock", "label", "desc", "associatedNodeID"]
    points: List[FiducialPoint] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            if body.lower().startswith("coordinatesystem"):
                value = body.split("=", 1)[-1].strip().upper()
                frame = {"0": "RAS", "RAS": "RAS", "1": "LPS", "LPS": "LPS"}.get(value, "")
                if not frame:
                    raise LandmarkFileError(path, f"unknown coordinate system {value!r}", line_no)
            elif body.lower().startswith("columns"):
                columns = [c.strip() for c in body.split("=", 1)[-1].split(",")]
            continue
        row = dict(zip(columns, next(csv.reader(io.StringIO(line)))))
        try:
            position = (float(row["x"]), float(row["y"]), float(row["z"]))
        except (KeyError, ValueError):
            raise LandmarkFileError(path, "expected numeric x, y, z columns", line_no) from None
        points.append(FiducialPoint(row.get("label", ""), position, row.get("desc", "")))
    return frame, points


@dataclass(frozen=True)
class RegisteredLandmark:
    """A landmark ID of the registry ``Resources/landmarks.csv``."""

    landmark_id: int
    name: str
    description: str
    source: str


def read_landmark_registry(path: PathLike) -> Dict[int, RegisteredLandmark]:
    """Read a landmark registry CSV (``id,name,description,source``; ``#`` comments allowed)."""
    lines = [line for line in read_text(path, LandmarkFileError).splitlines() if not is_comment_or_blank(line)]
    out: Dict[int, RegisteredLandmark] = {}
    for row in csv.DictReader(lines):
        try:
            entry = RegisteredLandmark(int(row["id"]), row["name"].strip(), (row.get("description") or "").strip(), (row.get("source") or "").strip())
        except (KeyError, ValueError, AttributeError):
            raise LandmarkFileError(path, f"bad registry row {row!r}") from None
        if entry.landmark_id in out:
            raise LandmarkFileError(path, f"landmark ID {entry.landmark_id} registered twice")
        out[entry.landmark_id] = entry
    return out


@lru_cache(maxsize=1)
def landmark_registry() -> Dict[int, RegisteredLandmark]:
    """The landmark registry shipped in ``Resources/landmarks.csv`` (ID -> entry)."""
    from visceral.resources import resource_path

    return read_landmark_registry(resource_path("landmarks.csv"))
