"""File names of a VISCERAL data set: the one parser and the one formatter.

Seed section 4 defines the names; its patterns and its examples disagree, so
readers accept every form the seed shows and writers emit one canonical form
(docs/CONVENTIONS.md, "File names"):

=====================  ==========================================================
style                  example
=====================  ==========================================================
canonical (written)    ``subject21_1_modalityCT_regionannotation_3.nii.gz``
seed pattern form      ``subject21_acquisition1_modalityCT_regionannotation_annotator3.nii``
seed example form      ``subject21_1[_modalityCT]_regionannotation_label32_3.nii``
benchmark layout       ``10000001_3_MRT1_wb_58_4.nii.gz`` (as VISCERAL distributed it)
=====================  ==========================================================

The canonical form is the seed's *example* form (every example in the seed
drops the ``acquisition``/``annotator`` prefixes), with a two-digit subject
number and gzip-compressed NIfTI.  The benchmark layout is the one of the
VISCERAL Anatomy data (``<patient>_<volume>_<modality>_<bodyregion>``, one
structure per file ``..._<RadLexID>_<annotator>.nii.gz``, landmarks
``..._landmarks_<annotator>.fcsv``); see for instance the ``expertAnnotation``
table of Visceral-Project/silverCorpusFramework ``database/createTables.sql``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import List, Optional, Tuple, Union

from visceral.errors import InvalidNameError

__all__ = [
    "FileKind",
    "NameStyle",
    "VisceralName",
    "parse_name",
    "format_name",
    "VOLUME_EXTENSIONS",
    "EXTENSIONS",
    "SUBJECT_PREFIX",
    "pseudonym",
    "subject_number",
]


class FileKind(str, enum.Enum):
    """What a file holds, as told by the tokens of its name (the extension aside)."""

    IMAGE = "image"
    #: Multi-label region annotation (seed 3.1): one label volume, plus a label table CSV.
    REGION = "regionannotation"
    #: One structure per volume, values in [0, 1] (seed 3.1, uncertainty) or binary (benchmark layout).
    REGION_LABEL = "regionannotation_label"
    #: Landmark annotation (seed 3.2).
    LANDMARKS = "lmannotation"


class NameStyle(str, enum.Enum):
    """The spelling a name was written in."""

    CANONICAL = "canonical"  #: the seed's example form; what this package writes
    PATTERN = "pattern"  #: the seed's pattern form with ``acquisition``/``annotator`` prefixes
    BENCHMARK = "benchmark"  #: the VISCERAL benchmark distribution layout


#: Extensions of NIfTI volumes, longest first.
VOLUME_EXTENSIONS: Tuple[str, ...] = (".nii.gz", ".nii")
#: Every extension a data-set file may have (volumes, metadata, tables, landmarks).
EXTENSIONS: Tuple[str, ...] = VOLUME_EXTENSIONS + (".txt", ".csv", ".fcsv")

#: Canonical extension of a volume (docs/CONVENTIONS.md: gzip-compressed NIfTI).
CANONICAL_VOLUME_EXTENSION = ".nii.gz"

_NUMBER = re.compile(r"[0-9]+")
_ALNUM = re.compile(r"[A-Za-z0-9]+")
# Typography of the seed's examples: "[...]" marks optional parts, the PDF
# extraction garbled one "[" into "¢", and one pattern has a stray space.
_SEED_TYPOGRAPHY = re.compile(r"[\[\]¢\s]")


@dataclass(frozen=True)
class VisceralName:
    """The tokens of a VISCERAL file name.

    Attributes:
        subject: subject number (``subject21`` -> 21; benchmark patient ID as a number).
        acquisition: number of the data item (volume) of that subject.
        modality: modality token (``CT``, ``MR``, ``MRT1``, ``CTce``...) or ``None``.
        kind: what the file holds (image, region annotation, ...).
        annotator: annotator number (annotations only).
        label: label value of a per-structure volume (``REGION_LABEL`` only).
        body_region: body-region token of the benchmark layout (``wb``, ``ThAb``), else ``None``.
        extension: ``.nii.gz``, ``.nii``, ``.txt``, ``.csv`` or ``.fcsv``.
        style: the spelling the name was parsed from (not part of equality).
    """

    subject: int
    acquisition: int
    modality: Optional[str] = None
    kind: FileKind = FileKind.IMAGE
    annotator: Optional[int] = None
    label: Optional[int] = None
    body_region: Optional[str] = None
    extension: str = CANONICAL_VOLUME_EXTENSION
    style: NameStyle = field(default=NameStyle.CANONICAL, compare=False)

    def __post_init__(self) -> None:
        text = self.describe()
        for attr in ("subject", "acquisition"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidNameError(text, f"{attr} must be a non-negative integer, not {value!r}")
        for attr in ("modality", "body_region"):
            value = getattr(self, attr)
            if value is not None and not (isinstance(value, str) and _ALNUM.fullmatch(value)):
                raise InvalidNameError(text, f"{attr} must be letters and digits only, not {value!r}")
        if self.kind is FileKind.IMAGE:
            if self.annotator is not None or self.label is not None:
                raise InvalidNameError(text, "an image name has no annotator or label")
        else:
            if not isinstance(self.annotator, int) or isinstance(self.annotator, bool) or self.annotator < 0:
                raise InvalidNameError(text, f"an annotation needs a non-negative annotator number, not {self.annotator!r}")
        if (self.kind is FileKind.REGION_LABEL) != (self.label is not None):
            raise InvalidNameError(text, "a label number is given exactly for per-structure region annotations")
        if self.label is not None and (isinstance(self.label, bool) or not isinstance(self.label, int) or self.label < 0):
            raise InvalidNameError(text, f"label must be a non-negative integer, not {self.label!r}")
        if self.extension not in EXTENSIONS:
            raise InvalidNameError(text, f"extension {self.extension!r} is not one of {', '.join(EXTENSIONS)}")

    # -- convenience ------------------------------------------------------------------
    def describe(self) -> str:
        """A short human description used in error messages."""
        return f"<subject {self.subject!r}, acquisition {self.acquisition!r}, {getattr(self.kind, 'value', self.kind)}>"

    @property
    def is_volume(self) -> bool:
        """True for a NIfTI volume (``.nii`` / ``.nii.gz``)."""
        return self.extension in VOLUME_EXTENSIONS

    def image(self) -> "VisceralName":
        """The name of the image volume an annotation (or metadata file) belongs to."""
        return replace(self, kind=FileKind.IMAGE, annotator=None, label=None, extension=CANONICAL_VOLUME_EXTENSION)

    def stem(self) -> str:
        """The name without its extension (a node or a table title: ``subject21_1_modalityCT``)."""
        text = self.format()
        return text[: -len(self.extension)] if self.extension else text

    def with_extension(self, extension: str) -> "VisceralName":
        """The same tokens with another extension (``.txt`` for the parallel metadata file)."""
        return replace(self, extension=extension)

    def annotation(self, kind: FileKind, annotator: Optional[int] = None, extension: Optional[str] = None) -> "VisceralName":
        """The ``kind`` annotation of the same image by ``annotator`` (default: this name's annotator).

        The extension defaults to ``.csv`` for landmarks and ``.nii.gz`` for region annotations.
        """
        annotator = self.annotator if annotator is None else annotator
        extension = extension or (".csv" if kind is FileKind.LANDMARKS else CANONICAL_VOLUME_EXTENSION)
        return replace(self, kind=kind, annotator=annotator, label=None, extension=extension)

    def with_label(self, label: int) -> "VisceralName":
        """The per-structure region annotation name for ``label``."""
        return replace(self, kind=FileKind.REGION_LABEL, label=label)

    def format(self, style: NameStyle = NameStyle.CANONICAL) -> str:
        """Spell the name; see :func:`format_name`."""
        return format_name(self, style)

    def __str__(self) -> str:
        return self.format()


def format_name(name: VisceralName, style: NameStyle = NameStyle.CANONICAL) -> str:
    """Spell ``name`` in ``style`` (default: the canonical form this package writes).

    The benchmark layout cannot spell a multi-label region annotation and needs
    a modality and a body region; asking for it then raises :class:`InvalidNameError`.
    """
    style = NameStyle(style)
    if style is NameStyle.BENCHMARK:
        return _format_benchmark(name)
    pattern = style is NameStyle.PATTERN
    parts = [pseudonym(name.subject), f"acquisition{name.acquisition}" if pattern else str(name.acquisition)]
    if name.modality:
        parts.append(f"modality{name.modality}")
    annotator = f"annotator{name.annotator}" if pattern else str(name.annotator)
    if name.kind is FileKind.REGION:
        parts += ["regionannotation", annotator]
    elif name.kind is FileKind.REGION_LABEL:
        parts += ["regionannotation", f"label{name.label}", annotator]
    elif name.kind is FileKind.LANDMARKS:
        parts += ["lmannotation", annotator]
    return "_".join(parts) + name.extension


#: The subject token of the conventions (seed section 4): ``subject`` and the subject number.
SUBJECT_PREFIX = "subject"
_PSEUDONYM = re.compile(rf"{SUBJECT_PREFIX}0*(\d+)", re.IGNORECASE)


def pseudonym(subject: int) -> str:
    """The subject token ``subject07`` of subject number ``subject``: also the de-identified
    Patient's Name and Patient ID (one name for a subject in DICOM and in the data set)."""
    return f"{SUBJECT_PREFIX}{subject:02d}"


def subject_number(text: str) -> Optional[int]:
    """The subject number of a pseudonym (``subject07`` -> 7), or ``None`` when ``text`` is none."""
    match = _PSEUDONYM.fullmatch(text.strip())
    return int(match.group(1)) if match else None


def _format_benchmark(name: VisceralName) -> str:
    if not name.modality or not name.body_region:
        raise InvalidNameError(name.describe(), "the benchmark layout needs a modality and a body region")
    stem = f"{name.subject}_{name.acquisition}_{name.modality}_{name.body_region}"
    if name.kind is FileKind.IMAGE:
        return stem + name.extension
    if name.kind is FileKind.REGION_LABEL:
        return f"{stem}_{name.label}_{name.annotator}{name.extension}"
    if name.kind is FileKind.LANDMARKS:
        return f"{stem}_landmarks_{name.annotator}{name.extension}"
    raise InvalidNameError(name.describe(), "the benchmark layout has no multi-label region annotation")


def parse_name(path: Union[str, PurePath]) -> VisceralName:
    """Parse a VISCERAL file name (the folder part of a path is ignored).

    Accepts the canonical, seed-pattern, seed-example (with its ``[...]``
    optional-part brackets) and benchmark spellings, ``.nii`` and ``.nii.gz``.

    Raises:
        InvalidNameError: naming the offending token and what was expected there.
    """
    raw = PurePath(path).name if not isinstance(path, str) else path.replace("\\", "/").rsplit("/", 1)[-1]
    text = _SEED_TYPOGRAPHY.sub("", raw)
    stem, extension = _split_extension(raw, text)
    tokens = stem.split("_")
    if any(t == "" for t in tokens):
        raise InvalidNameError(raw, "empty token (doubled, leading or trailing '_')")
    if tokens[0].lower().startswith("subject"):
        return _parse_seed(raw, tokens, extension)
    if _NUMBER.fullmatch(tokens[0]):
        return _parse_benchmark(raw, tokens, extension)
    raise InvalidNameError(raw, "expected 'subject<number>' (or a numeric patient ID of the benchmark layout)", tokens[0], 1)


def _split_extension(raw: str, text: str) -> Tuple[str, str]:
    lower = text.lower()
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext):
            return text[: -len(ext)], ext
    suffix = PurePath(text).suffix or "(none)"
    raise InvalidNameError(raw, f"extension {suffix!r} is not one of {', '.join(EXTENSIONS)}")


def _number(raw: str, token: str, position: int, prefix: str, what: str, prefix_optional: bool) -> Tuple[int, bool]:
    """Read ``<prefix><digits>`` (or bare digits when the prefix is optional).

    Returns the number and whether the prefix was present.
    """
    low = token.lower()
    has_prefix = bool(prefix) and low.startswith(prefix)
    digits = token[len(prefix):] if has_prefix else token
    if (has_prefix or prefix_optional) and _NUMBER.fullmatch(digits):
        return int(digits), has_prefix
    expected = f"'{prefix}<number>'" + (" or a bare number" if prefix_optional else "") if prefix else "a number"
    raise InvalidNameError(raw, f"expected {what} as {expected}", token, position)


def _parse_seed(raw: str, tokens: List[str], extension: str) -> VisceralName:
    subject, _ = _number(raw, tokens[0], 1, "subject", "the subject", prefix_optional=False)
    if len(tokens) < 2:
        raise InvalidNameError(raw, "missing the acquisition number after the subject", "", 2)
    acquisition, pattern = _number(raw, tokens[1], 2, "acquisition", "the acquisition", prefix_optional=True)
    pos = 2
    modality = None
    if len(tokens) > pos and tokens[pos].lower().startswith("modality"):
        modality = tokens[pos][len("modality"):]
        if not _ALNUM.fullmatch(modality):
            raise InvalidNameError(raw, "expected 'modality<letters/digits>'", tokens[pos], pos + 1)
        pos += 1
    kind, annotator, label = FileKind.IMAGE, None, None
    if len(tokens) > pos:
        keyword = tokens[pos].lower()
        if keyword not in ("regionannotation", "lmannotation"):
            raise InvalidNameError(
                raw, "expected 'modality<name>', 'regionannotation' or 'lmannotation'", tokens[pos], pos + 1
            )
        pos += 1
        if keyword == "regionannotation":
            kind = FileKind.REGION
            if len(tokens) > pos + 1 and tokens[pos].lower().startswith("label"):
                label, _ = _number(raw, tokens[pos], pos + 1, "label", "the structure label", prefix_optional=False)
                kind = FileKind.REGION_LABEL
                pos += 1
        else:
            kind = FileKind.LANDMARKS
        if len(tokens) <= pos:
            raise InvalidNameError(raw, "missing the annotator number at the end", "", pos + 1)
        annotator, has_prefix = _number(raw, tokens[pos], pos + 1, "annotator", "the annotator", prefix_optional=True)
        pattern = pattern or has_prefix
        pos += 1
    if len(tokens) > pos:
        raise InvalidNameError(raw, "unexpected token after the end of the name", tokens[pos], pos + 1)
    style = NameStyle.PATTERN if pattern else NameStyle.CANONICAL
    return VisceralName(subject, acquisition, modality, kind, annotator, label, None, extension, style)


def _parse_benchmark(raw: str, tokens: List[str], extension: str) -> VisceralName:
    names = ("patient ID", "volume number", "modality", "body region")
    if len(tokens) < 4:
        raise InvalidNameError(
            raw, f"the benchmark layout needs <patient>_<volume>_<modality>_<region>; missing the {names[len(tokens)]}",
            "", len(tokens) + 1,
        )
    subject, _ = _number(raw, tokens[0], 1, "", "the patient ID", prefix_optional=True)
    acquisition, _ = _number(raw, tokens[1], 2, "", "the volume number", prefix_optional=True)
    for pos in (2, 3):
        if not _ALNUM.fullmatch(tokens[pos]):
            raise InvalidNameError(raw, f"expected the {names[pos]} as letters and digits", tokens[pos], pos + 1)
    modality, region = tokens[2], tokens[3]
    rest = tokens[4:]
    kind, annotator, label = FileKind.IMAGE, None, None
    if rest:
        if len(rest) != 2:
            raise InvalidNameError(
                raw, "expected '_<RadLexID>_<annotator>' or '_landmarks_<annotator>' after the body region",
                rest[0] if len(rest) < 2 else rest[2], 5 if len(rest) < 2 else 7,
            )
        annotator, _ = _number(raw, rest[1], 6, "", "the annotator", prefix_optional=True)
        if rest[0].lower() == "landmarks":
            kind = FileKind.LANDMARKS
        else:
            label, _ = _number(raw, rest[0], 5, "", "the RadLex ID or 'landmarks'", prefix_optional=True)
            kind = FileKind.REGION_LABEL
    return VisceralName(subject, acquisition, modality, kind, annotator, label, region, extension, NameStyle.BENCHMARK)
