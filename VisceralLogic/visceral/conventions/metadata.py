"""Metadata ``.txt`` files and the plain-text data-set README (seed sections 2 and 4).

Seed section 4: "In case of additional Meta information, there is a parallel
txt file to each nii file"; section 2: the voxel size "has to be provided ...
(either natively or in a corresponding text file, in any case unified across
the entire data set)".  So every NIfTI volume carries its voxel size twice:
natively in its header, and in its parallel ``.txt``.

Format (docs/CONVENTIONS.md, "Metadata files"): UTF-8, one ``key: value`` per
line, keys lower-case ``snake_case``; ``#`` comments and blank lines ignored.
Mandatory: ``voxel_size_mm`` (three numbers, x y z).  Written first:
``conventions_version``.  Unknown keys are kept, in order, when a file is read
and written back (later conventions may only append keys).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from visceral.conventions.names import FileKind, VisceralName, parse_name
from visceral.conventions.textfile import format_number, is_comment_or_blank, read_text
from visceral.conventions.version import CONVENTIONS_VERSION, is_readable
from visceral.errors import InvalidNameError, MetadataError, VisceralError
from visceral.fileio import atomic_write_text
from visceral.types import PathLike

__all__ = ["Metadata", "parse_metadata", "read_metadata", "write_metadata", "dataset_readme", "normalize_key"]

VOXEL_SIZE_KEY = "voxel_size_mm"
VERSION_KEY = "conventions_version"

# Other spellings of the voxel size a reader accepts (one key with 3 values).
_VOXEL_SIZE_ALIASES = {"voxel_size", "voxel_size_mm", "voxel_dimensions", "voxel_dimensions_mm", "spacing", "spacing_mm", "pixdim"}
# ... or three keys, one per axis.
_AXIS_KEYS = {
    axis: {f"voxel_size_{axis}", f"voxel_size_{axis}_mm", f"spacing_{axis}", f"spacing_{axis}_mm"} for axis in "xyz"
}


def normalize_key(key: str) -> str:
    """Lower-case ``snake_case`` form of a metadata key (``"Voxel size (mm)"`` -> ``"voxel_size_mm"``)."""
    return "_".join(re.sub(r"[^0-9a-z]+", " ", key.lower()).split())


def _parse_triple(text: str) -> Tuple[float, float, float]:
    """Parse ``"0.7 0.7 1.5"``, ``"0.7, 0.7, 1.5"``, ``"0.7 x 0.7 x 1.5 mm"`` or ``"0,7 0,7 1,5"``."""
    cleaned = re.sub(r"\bmm\b|[()\[\]]", " ", text.strip(), flags=re.IGNORECASE)
    parts = [p for p in re.split(r"[\s;x×]+", cleaned) if p and p != ","]
    if len(parts) == 3:
        parts = [p.rstrip(",").replace(",", ".") for p in parts]
    else:
        parts = [p for p in re.split(r"[\s,;x×]+", cleaned) if p]
    if len(parts) != 3:
        raise ValueError(f"expected 3 numbers, got {text!r}")
    values = tuple(float(p) for p in parts)
    if not all(v > 0 and v < float("inf") for v in values):
        raise ValueError(f"voxel sizes must be positive finite numbers, got {text!r}")
    return values  # type: ignore[return-value]


@dataclass
class Metadata:
    """The content of a metadata ``.txt`` file.

    Attributes:
        voxel_size_mm: voxel size along x, y, z (the image's i, j, k axes) in mm.
        conventions_version: the conventions version the file follows.
        fields: every other key (normalized) -> value, in file order.
    """

    voxel_size_mm: Tuple[float, float, float]
    conventions_version: str = CONVENTIONS_VERSION
    fields: "OrderedDict[str, str]" = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.voxel_size_mm = tuple(float(v) for v in self.voxel_size_mm)  # type: ignore[assignment]
        if len(self.voxel_size_mm) != 3 or not all(0 < v < float("inf") for v in self.voxel_size_mm):
            raise MetadataError(None, f"voxel size must be 3 positive finite numbers (mm), not {self.voxel_size_mm!r}")
        clean: "OrderedDict[str, str]" = OrderedDict()
        for key, value in self.fields.items():
            norm = normalize_key(key)
            if not norm:
                raise MetadataError(None, f"metadata key {key!r} has no letters or digits")
            if norm in (VOXEL_SIZE_KEY, VERSION_KEY):
                raise MetadataError(None, f"{norm!r} is set through its attribute, not through fields")
            text = str(value)
            if "\n" in text or "\r" in text:
                raise MetadataError(None, f"value of {norm!r} must be one line")
            clean[norm] = text.strip()
        self.fields = clean

    def to_text(self) -> str:
        """The canonical file text."""
        lines = [f"{VERSION_KEY}: {self.conventions_version}", f"{VOXEL_SIZE_KEY}: " + " ".join(format_number(v) for v in self.voxel_size_mm)]
        lines += [f"{k}: {v}" for k, v in self.fields.items()]
        return "\n".join(lines) + "\n"


def parse_metadata(text: str, path: Optional[PathLike] = None) -> Metadata:
    """Parse metadata text; accepts ``key: value`` and ``key = value`` lines and several voxel-size spellings.

    Raises:
        MetadataError: naming the file and line; also when the voxel size is missing
            or the conventions version is of an unknown major version.
    """
    values: "OrderedDict[str, str]" = OrderedDict()
    lines: Dict[str, int] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if is_comment_or_blank(line):
            continue
        match = re.match(r"\s*([^:=]+?)\s*[:=]\s?(.*)$", line)
        if not match:
            raise MetadataError(path, f"expected 'key: value', got {line.strip()!r}", line_no)
        key = normalize_key(match.group(1))
        if not key:
            raise MetadataError(path, f"empty key in {line.strip()!r}", line_no)
        if key in values:
            raise MetadataError(path, f"key {key!r} already given on line {lines[key]}", line_no)
        values[key] = match.group(2).strip()
        lines[key] = line_no

    voxel: Optional[Tuple[float, float, float]] = None
    for key in list(values):
        if key in _VOXEL_SIZE_ALIASES:
            try:
                voxel = _parse_triple(values.pop(key))
            except ValueError as exc:
                raise MetadataError(path, f"bad voxel size: {exc}", lines[key]) from None
            break
    if voxel is None and all(any(k in values for k in keys) for keys in _AXIS_KEYS.values()):
        triple = []
        for axis, keys in _AXIS_KEYS.items():
            key = next(k for k in values if k in keys)
            try:
                triple.append(float(values.pop(key).replace("mm", "").replace(",", ".")))
            except ValueError:
                raise MetadataError(path, f"bad voxel size along {axis}", lines[key]) from None
        voxel = tuple(triple)  # type: ignore[assignment]
    if voxel is None:
        raise MetadataError(path, f"mandatory key {VOXEL_SIZE_KEY!r} (voxel size x y z in mm, seed section 2) is missing")

    version = values.pop(VERSION_KEY, CONVENTIONS_VERSION)
    try:
        readable = is_readable(version)
    except VisceralError as exc:
        raise MetadataError(path, str(exc), lines.get(VERSION_KEY)) from None
    if not readable:
        raise MetadataError(path, f"conventions version {version} is of an unknown major version", lines.get(VERSION_KEY))
    try:
        return Metadata(voxel, version, values)
    except MetadataError as exc:
        raise MetadataError(path, exc.reason) from None


def read_metadata(path: PathLike) -> Metadata:
    """Read a metadata ``.txt`` file."""
    return parse_metadata(read_text(path, MetadataError), path)


def write_metadata(path: PathLike, metadata: Metadata) -> None:
    """Write ``metadata`` in canonical form to ``path`` (atomically)."""
    atomic_write_text(path, metadata.to_text())


_README_INTRO = """\
VISCERAL data set{title}
=================={underline}

Conventions version: {version} (VISCERAL deliverable on data-format conventions;
see docs/CONVENTIONS.md of the Visceral toolkit for every decision taken).

File names
----------
  subjectNN_A_modalityMM.nii.gz                         image volume (NIfTI-1, gzip)
  subjectNN_A_modalityMM.txt                            its metadata (key: value), incl. voxel_size_mm
  subjectNN_A_modalityMM_regionannotation_R.nii.gz      region labels by annotator R (one volume, all structures)
  subjectNN_A_modalityMM_regionannotation_R.csv         its label table: structure,label (RadLex names)
  subjectNN_A_modalityMM_regionannotation_labelL_R.nii.gz  structure with label L alone, values in [0,1]
  subjectNN_A_modalityMM_lmannotation_R.csv             landmarks by annotator R: ID,x,y,z,uncertainty

  NN = subject number (pseudonym), A = acquisition (data item) number of that subject,
  MM = modality (CT, MR...), R = annotator number, L = label value (the structure's RadLex ID).

Coordinates and units
---------------------
  Voxel size is in each NIfTI header and in each parallel .txt (voxel_size_mm: x y z).
  Landmark coordinates are in mm with the origin at voxel [0,0,0], along the image's voxel
  axes: (x, y, z) = (i, j, k) * voxel size.  The uncertainty is the 3x3 covariance
  [c11,c12,c13,c21,c22,c23,c31,c32,c33] in mm^2 in that frame.
  Region annotations share the exact voxel grid of their image.
"""


def dataset_readme(file_names: Iterable[str], title: str = "", notes: Iterable[str] = ()) -> str:
    """The plain-text README of a data set: the naming conventions and, per image, its files.

    Args:
        file_names: names (or paths) of the data-set files; names that do not parse
            are listed under "Other files".
        title: data-set title.
        notes: extra paragraphs appended at the end.
    """
    groups: Dict[VisceralName, List[str]] = {}
    other: List[str] = []
    for raw in sorted({Path(n).name for n in file_names}):
        try:
            name = parse_name(raw)
        except InvalidNameError:
            other.append(raw)
            continue
        groups.setdefault(name.image(), []).append(raw)
    suffix = f": {title}" if title else ""
    text = _README_INTRO.format(title=suffix, underline="=" * len(suffix), version=CONVENTIONS_VERSION)
    text += "\nContents\n--------\n"
    if not groups:
        text += "  (no images)\n"
    for image in sorted(groups, key=lambda n: (n.subject, n.acquisition, n.modality or "")):
        text += f"  subject {image.subject}, acquisition {image.acquisition}, modality {image.modality or '-'}:\n"
        for raw in groups[image]:
            text += f"    {raw}{_role(parse_name(raw))}\n"
    if other:
        text += "\nOther files\n-----------\n" + "".join(f"  {n}\n" for n in other)
    for note in notes:
        text += "\n" + note.rstrip() + "\n"
    return text


def _role(name: VisceralName) -> str:
    if name.extension == ".txt":
        return "  (metadata)"
    if name.kind is FileKind.IMAGE:
        return "  (image)"
    if name.kind is FileKind.REGION:
        return f"  (label table, annotator {name.annotator})" if name.extension == ".csv" else f"  (region labels, annotator {name.annotator})"
    if name.kind is FileKind.REGION_LABEL:
        return f"  (structure {name.label}, annotator {name.annotator})"
    return f"  (landmarks, annotator {name.annotator})"


def metadata_fields(items: Mapping[str, object]) -> "OrderedDict[str, str]":
    """Convert arbitrary values to metadata field text (lists become space-separated)."""
    out: "OrderedDict[str, str]" = OrderedDict()
    for key, value in items.items():
        if isinstance(value, (list, tuple)):
            value = " ".join(format_number(v) if isinstance(v, float) else str(v) for v in value)
        elif isinstance(value, float):
            value = format_number(value)
        out[key] = str(value)
    return out
