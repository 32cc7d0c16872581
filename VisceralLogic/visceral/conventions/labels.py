"""Structures and region label tables (seed section 3.1, Table 1).

A region annotation is a NIfTI label volume plus a CSV table mapping the
name of each structure ("consistent with RadLex") to its label value.

- :class:`StructureRegistry` -- the RadLex structures this project knows
  (``Resources/radlex_structures.csv``), with lookup by name, synonym and ID,
  and the mapping to and from 3D Slicer terminology (SNOMED CT codes).
- :class:`LabelTable` -- the ``structure,label`` CSV, reader and writer.

Label values (docs/CONVENTIONS.md, "Label values"): by default a structure's
label is its RadLex ID number (liver = RID58 -> 58), the same in every subject
and every annotation; ``compact=True`` numbers the structures 1..N in RadLex-ID
order instead.  Labels never depend on the order in which structures are given.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

from visceral.conventions.textfile import csv_text, is_comment_or_blank, read_text
from visceral.errors import LabelTableError, RegistryError, UnknownStructureError
from visceral.fileio import atomic_write_text
from visceral.types import PathLike

__all__ = [
    "Structure",
    "StructureRegistry",
    "default_registry",
    "LabelTable",
    "read_label_table",
    "write_label_table",
    "normalize_structure_name",
]

#: SNOMED CT category of every registry structure in Slicer's terminology.
ANATOMICAL_STRUCTURE = ("SCT", "123037004", "Anatomical Structure")
#: Name of the Slicer terminology context the codes come from.
SLICER_TERMINOLOGY_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
#: Slicer's anatomic-region context (left empty in the entries we write).
SLICER_REGION_CONTEXT = "Anatomic codes - DICOM master list"

_LATERALITY = {"r": "right", "rt": "right", "right": "right", "l": "left", "lt": "left", "left": "left"}


def normalize_structure_name(text: str) -> str:
    """Normalize a structure name for lookup.

    Lower case, any run of non-alphanumerics becomes one space, laterality
    abbreviations (``R``, ``Rt``, ``L``, ``Lt``) are spelled out and the
    laterality word moves to the front: ``"Kidney_R"``, ``"kidney right"``,
    ``"R kidney"`` and ``"Right Kidney"`` all give ``"right kidney"``.
    """
    words = re.sub(r"[^0-9a-z]+", " ", text.lower()).split()
    sides = [_LATERALITY[w] for w in words if w in _LATERALITY]
    rest = [w for w in words if w not in _LATERALITY]
    if len(sides) == 1 and rest:
        return " ".join(sides + rest)
    return " ".join(words)


@dataclass(frozen=True)
class Structure:
    """One anatomical structure of the registry.

    Attributes:
        name: the RadLex-consistent name written in label tables (``"right kidney"``).
        radlex_id: RadLex ID number (RID29662 -> 29662); the default label value.
        radlex_label: RadLex preferred label.
        synonyms: further names accepted on lookup.
        snomed_type: SNOMED CT (code, meaning) of the structure type, as in Slicer's terminology.
        snomed_modifier: SNOMED CT (code, meaning) of the laterality modifier, or ``None``.
    """

    name: str
    radlex_id: int
    radlex_label: str
    synonyms: Tuple[str, ...] = ()
    snomed_type: Tuple[str, str] = ("", "")
    snomed_modifier: Optional[Tuple[str, str]] = None

    @property
    def rid(self) -> str:
        """The RadLex identifier as written by RadLex (``"RID58"``)."""
        return f"RID{self.radlex_id}"

    def slicer_terminology(self) -> str:
        """The structure as a serialized 3D Slicer terminology entry.

        Format (``vtkSlicerTerminologiesModuleLogic::SerializeTerminologyEntry``):
        ``context~category~type~typeModifier~regionContext~region~regionModifier``,
        each code as ``scheme^value^meaning``.
        """
        code, meaning = self.snomed_type
        modifier = "SCT^{}^{}".format(*self.snomed_modifier) if self.snomed_modifier else "^^"
        return "~".join(
            [
                SLICER_TERMINOLOGY_CONTEXT,
                "^".join(ANATOMICAL_STRUCTURE),
                f"SCT^{code}^{meaning}",
                modifier,
                SLICER_REGION_CONTEXT,
                "^^",
                "^^",
            ]
        )


class StructureRegistry:
    """The structures a data set may annotate, looked up by name, synonym or ID."""

    def __init__(self, structures: Iterable[Structure]) -> None:
        self._structures: List[Structure] = list(structures)
        self._by_id: Dict[int, Structure] = {}
        self._by_key: Dict[str, Structure] = {}
        self._by_snomed: Dict[Tuple[str, str], Structure] = {}
        for s in self._structures:
            if s.radlex_id in self._by_id:
                raise RegistryError(f"duplicate RadLex ID {s.radlex_id} in the structure registry")
            self._by_id[s.radlex_id] = s
            for text in (s.name, s.radlex_label, *s.synonyms):
                key = normalize_structure_name(text)
                other = self._by_key.setdefault(key, s)
                if other is not s:
                    raise RegistryError(f"structure name {text!r} is ambiguous: {other.name} and {s.name}")
            snomed = (s.snomed_type[0], s.snomed_modifier[0] if s.snomed_modifier else "")
            self._by_snomed.setdefault(snomed, s)

    @classmethod
    def from_csv(cls, path: PathLike) -> "StructureRegistry":
        """Read a registry CSV (``#`` comment lines allowed; columns as in ``radlex_structures.csv``)."""
        text = read_text(path, LabelTableError)
        lines = [line for line in text.splitlines() if not is_comment_or_blank(line)]
        structures = []
        for row in csv.DictReader(lines):
            try:
                modifier = row.get("snomed_modifier_code") or ""
                structures.append(
                    Structure(
                        name=row["name"].strip(),
                        radlex_id=int(row["radlex_id"]),
                        radlex_label=row["radlex_label"].strip(),
                        synonyms=tuple(s.strip() for s in (row.get("synonyms") or "").split("|") if s.strip()),
                        snomed_type=(row["snomed_type_code"].strip(), row["snomed_type_meaning"].strip()),
                        snomed_modifier=(modifier.strip(), row["snomed_modifier_meaning"].strip()) if modifier else None,
                    )
                )
            except (KeyError, ValueError, AttributeError) as exc:
                raise LabelTableError(path, f"bad registry row {row!r}: {exc}") from None
        return cls(structures)

    def __iter__(self) -> Iterator[Structure]:
        return iter(self._structures)

    def __len__(self) -> int:
        return len(self._structures)

    def __contains__(self, query: object) -> bool:
        try:
            self.lookup(query)  # type: ignore[arg-type]
        except UnknownStructureError:
            return False
        return True

    def lookup(self, query: Union[str, int]) -> Structure:
        """Find a structure by name, synonym, RadLex ID (``58``, ``"58"``, ``"RID58"``).

        Raises:
            UnknownStructureError: with close matches as suggestions.
        """
        if isinstance(query, int) and not isinstance(query, bool):
            return self.by_radlex_id(query)
        text = str(query)
        match = re.fullmatch(r"\s*(?:rid\s*)?(\d+)\s*", text, re.IGNORECASE)
        if match:
            return self.by_radlex_id(int(match.group(1)))
        key = normalize_structure_name(text)
        if key in self._by_key:
            return self._by_key[key]
        close = difflib.get_close_matches(key, list(self._by_key), n=3, cutoff=0.6)
        suggestions: List[str] = []
        for k in close:
            name = self._by_key[k].name
            if name not in suggestions:
                suggestions.append(name)
        raise UnknownStructureError(text, suggestions)

    def by_radlex_id(self, radlex_id: int) -> Structure:
        """Find a structure by its RadLex ID number."""
        try:
            return self._by_id[int(radlex_id)]
        except KeyError:
            raise UnknownStructureError(f"RID{radlex_id}") from None

    def by_snomed(self, type_code: str, modifier_code: str = "") -> Structure:
        """Find the structure of a Slicer terminology entry (SNOMED CT type + laterality modifier)."""
        try:
            return self._by_snomed[(str(type_code), str(modifier_code or ""))]
        except KeyError:
            raise UnknownStructureError(f"SCT {type_code}" + (f" + {modifier_code}" if modifier_code else "")) from None

    def from_slicer_terminology(self, entry: str) -> Structure:
        """Map a serialized Slicer terminology entry (see :meth:`Structure.slicer_terminology`) to a structure."""
        fields = entry.split("~")
        if len(fields) < 3:
            raise UnknownStructureError(entry)
        type_code = fields[2].split("^")
        modifier = fields[3].split("^") if len(fields) > 3 else [""]
        if len(type_code) < 2 or not type_code[1]:
            raise UnknownStructureError(entry)
        return self.by_snomed(type_code[1], modifier[1] if len(modifier) > 1 else "")

    def label_values(self, structures: Iterable[Union[str, int, Structure]], compact: bool = False) -> Dict[str, int]:
        """Label value of each structure: its RadLex ID, or 1..N in RadLex-ID order when ``compact``.

        The result never depends on the order of ``structures``.
        """
        found = {s.name: s for s in (q if isinstance(q, Structure) else self.lookup(q) for q in structures)}
        if not compact:
            return {name: s.radlex_id for name, s in sorted(found.items(), key=lambda kv: kv[1].radlex_id)}
        ordered = sorted(found.values(), key=lambda s: s.radlex_id)
        return {s.name: i for i, s in enumerate(ordered, start=1)}


@lru_cache(maxsize=1)
def default_registry() -> StructureRegistry:
    """The registry shipped in ``Resources/radlex_structures.csv``."""
    from visceral.resources import resource_path

    return StructureRegistry.from_csv(resource_path("radlex_structures.csv"))


@dataclass(frozen=True)
class LabelTable:
    """A region label table: ordered ``(structure name, label value)`` pairs.

    Structure names and label values are each unique; label 0 is background
    and cannot name a structure.
    """

    entries: Tuple[Tuple[str, int], ...]

    def __post_init__(self) -> None:
        names = [n for n, _ in self.entries]
        labels = [v for _, v in self.entries]
        for name, value in self.entries:
            if not name.strip():
                raise LabelTableError(None, "empty structure name")
            if any(c in name for c in "\r\n"):
                raise LabelTableError(None, f"structure name {name!r} contains a line break")
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise LabelTableError(None, f"label of {name!r} must be a positive integer, not {value!r}")
        dup_names = sorted({n for n in names if names.count(n) > 1})
        dup_labels = sorted({v for v in labels if labels.count(v) > 1})
        if dup_names:
            raise LabelTableError(None, f"structure listed more than once: {', '.join(dup_names)}")
        if dup_labels:
            raise LabelTableError(None, f"label value used more than once: {', '.join(map(str, dup_labels))}")

    @classmethod
    def from_mapping(cls, mapping: Dict[str, int]) -> "LabelTable":
        """Build a table sorted by label value."""
        return cls(tuple(sorted(((str(k), int(v)) for k, v in mapping.items()), key=lambda e: e[1])))

    @classmethod
    def for_structures(
        cls,
        structures: Iterable[Union[str, int, Structure]],
        registry: Optional[StructureRegistry] = None,
        compact: bool = False,
    ) -> "LabelTable":
        """The table for ``structures`` with registry label values (see :meth:`StructureRegistry.label_values`)."""
        return cls.from_mapping((registry or default_registry()).label_values(structures, compact=compact))

    def as_dict(self) -> Dict[str, int]:
        """``{structure: label}``."""
        return dict(self.entries)

    def names(self) -> List[str]:
        return [n for n, _ in self.entries]

    def labels(self) -> List[int]:
        return [v for _, v in self.entries]

    def to_csv(self) -> str:
        """The canonical CSV text: header ``structure,label``, one row per structure, by label value."""
        rows = [["structure", "label"]] + [[n, str(v)] for n, v in sorted(self.entries, key=lambda e: e[1])]
        return csv_text(rows)


def write_label_table(path: PathLike, table: LabelTable) -> None:
    """Write ``table`` as canonical CSV to ``path`` (atomically)."""
    atomic_write_text(path, table.to_csv())


# Header names accepted for the two columns (lower case): ours, the seed's Table 1,
# and Slicer's "<segmentation>.labels.csv" / colour tables.
_NAME_HEADERS = {"structure", "name", "name of the structure", "structure name", "organ", "label name"}
_VALUE_HEADERS = {"label", "labelvalue", "label value", "value", "index"}


def _is_name_header(header: str) -> bool:
    # "Name of the structure (consistent with RadLex)" is the seed's Table 1 header.
    return header in _NAME_HEADERS or "structure" in header


def parse_label_table(text: str, path: Optional[PathLike] = None) -> LabelTable:
    """Parse label-table text.

    Tolerant reader (docs/CONVENTIONS.md, "Label tables"): a header or none;
    separator comma, semicolon or tab; columns in either order when there is a
    header (``structure``/``name`` and ``label``/``LabelValue``...), extra
    columns ignored (so Slicer's ``.labels.csv`` reads too); ``#`` comments and
    blank lines skipped; without a header, the seed's ``Liver 32`` layout
    (name, then value, possibly separated by spaces) is accepted.
    """
    numbered = [(i, line) for i, line in enumerate(text.splitlines(), start=1) if not is_comment_or_blank(line)]
    if not numbered:
        raise LabelTableError(path, "the label table is empty")
    sample = numbered[0][1]
    delimiter = "\t" if "\t" in sample else ";" if ";" in sample else ","
    rows = [(i, next(csv.reader(io.StringIO(line), delimiter=delimiter))) for i, line in numbered]
    header = [c.strip().lower() for c in rows[0][1]]
    name_col, value_col = 0, 1
    if any(_is_name_header(h) or h in _VALUE_HEADERS for h in header):
        try:
            name_col = next(i for i, h in enumerate(header) if _is_name_header(h))
            value_col = next(i for i, h in enumerate(header) if h in _VALUE_HEADERS)
        except StopIteration:
            raise LabelTableError(path, f"header {rows[0][1]!r} lacks a structure or a label column", rows[0][0]) from None
        rows = rows[1:]
    entries: List[Tuple[str, int]] = []
    for line_no, cells in rows:
        if len(cells) == 1:  # "Liver 32": name and value separated by spaces
            cells = cells[0].rsplit(None, 1)
        if len(cells) <= max(name_col, value_col):
            raise LabelTableError(path, f"expected a structure name and a label value, got {cells!r}", line_no)
        name, value_text = cells[name_col].strip(), cells[value_col].strip()
        try:
            value = int(value_text)
        except ValueError:
            raise LabelTableError(path, f"label value {value_text!r} of {name!r} is not an integer", line_no) from None
        if value == 0:
            if normalize_structure_name(name) not in BACKGROUND_NAMES:
                raise LabelTableError(path, f"label 0 is the background: {name!r} cannot have it", line_no)
            continue  # background rows (Slicer writes them) carry no structure
        entries.append((name, value))
    try:
        return LabelTable(tuple(entries))
    except LabelTableError as exc:
        raise LabelTableError(path, exc.reason) from None


#: Names a label table may give label 0 (the background row some tools write), normalized.
BACKGROUND_NAMES = frozenset({"", "background", "clear label", "unlabeled", "unlabelled", "none", "outside"})


def read_label_table(path: PathLike) -> LabelTable:
    """Read a label table CSV file (see :func:`parse_label_table` for what is accepted)."""
    return parse_label_table(read_text(path, LabelTableError), path)
