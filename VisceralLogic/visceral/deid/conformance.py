"""In-process IOD conformance check of a dataset against ``Resources/iod_tables.json`` (see :mod:`.iod`).

:func:`check` returns :class:`Finding` s -- never raises, whatever the dataset holds:

- **presence** -- every Type 1 and Type 2 attribute of a Mandatory module (or mandatory functional group) is
  present, and those of a User-optional or Conditional module when the module is present (one of its own
  attributes -- one no Mandatory module also holds -- is present), at every nesting level present in the
  dataset: each item of a present sequence is checked against the attributes of that sequence's items.  A
  mandatory functional group macro must be in the Shared Functional Groups item or in every Per-frame item, and
  no macro in both (PS3.3 C.7.6.16.1.1).
  Types 1C and 2C are not required (their conditions are not evaluated).
- **emptiness** -- a present Type 1 or 1C attribute has a value (a sequence at least one Item); Type 2 may be
  empty.
- **number of Items** -- a present sequence holds as many Items as PS3.3 says ("Only a single Item shall be
  included", "One or more Items ...").  An empty Type 3 sequence is an *error*, as dciodvfy reports it
  ("Bad Sequence number of Items 0 (1-n Required by Module definition)"): PS3.3 asks for at least one Item
  whenever nearly any sequence is present.  Type 2/2C sequences may have zero Items.
- **values** -- every present (public) element's value fits its VR (PS3.5 Table 6.2-1: DA, TM, DT, AS, CS,
  UI, DS, IS, AE, PN, LO, SH, ST, LT, UT, UC; lengths, characters) and its VM fits pydicom's dictionary; an
  explicit VR other than the dictionary's is an error (UN a warning).  ST, LT and UT may hold backslashes
  (they are single-valued), the other strings are split on them -- a backslash in an attribute of VM 1 is a
  VM error.
- **not in IOD** -- a warning for every public attribute the IOD does not allow at its place (private
  attributes, file meta, group lengths excluded); below such an attribute only values are checked.

A SOP class without a table gives one error.  Paths read ``(5200,9229)[0]>(0018,9112)>(0018,0080)``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Callable, Dict, FrozenSet, Iterable, List, Optional, Pattern, Tuple

from pydicom.datadict import dictionary_VM, dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset

from visceral.deid.iod import IOD, PER_FRAME_FG, SHARED_FG, TYPE_RANK, iod_for, normalize_tag
from visceral.deid.tables import vr_text

__all__ = ["Finding", "check", "errors", "vr_problem", "vm_problem"]


@dataclass(frozen=True)
class Finding:
    """One conformance problem: ``severity`` is ``"error"`` or ``"warning"``; ``path`` reads like
    ``(5200,9229)[0]>(0018,9112)``."""

    severity: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


# --------------------------------------------------------------------------------------------- values

_NO_CONTROL = r"[^\x00-\x1a\x1c-\x1f\x7f]*"  # ESC (code extensions) allowed
_TEXT = r"[^\x00-\x09\x0b\x0e-\x1a\x1c-\x1f\x7f]*"  # also CR, LF, FF (PS3.5 6.1.3)


def _valid_date(value: str) -> bool:
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return False
    return True


def _valid_time(value: str) -> bool:
    hh, mm, ss = value[:2], value[2:4] or "00", value[4:6] or "00"
    return int(hh) < 24 and int(mm) < 60 and int(ss) <= 60


def _valid_datetime(value: str) -> bool:
    body = re.split(r"[+-]", value, maxsplit=1)
    digits = body[0].split(".")[0]
    year, month, day = digits[:4], digits[4:6] or "01", digits[6:8] or "01"
    if not _valid_date(year + month + day):
        return False
    if len(digits) > 8 and not _valid_time(digits[8:]):
        return False
    if len(body) > 1:
        offset = body[1]
        return int(offset[:2]) <= 14 and int(offset[2:]) < 60
    return True


def _valid_is(value: str) -> bool:
    return -(2 ** 31) <= int(value) <= 2 ** 31 - 1


def _valid_uid(value: str) -> bool:
    return all(part == "0" or not part.startswith("0") for part in value.split("."))


def _valid_pn(value: str) -> bool:
    groups = value.split("=")
    return len(groups) <= 3 and all(len(g) <= 64 and g.count("^") <= 4 for g in groups)


#: PS3.5 Table 6.2-1: VR -> (max characters of one value, pattern of one value, extra test, what it should be).
_VR_RULES: Dict[str, Tuple[Optional[int], Pattern[str], Optional[Callable[[str], bool]], str]] = {
    "AE": (16, re.compile(_NO_CONTROL), None, "text without control characters"),
    "AS": (4, re.compile(r"\d{3}[DWMY]"), None, "nnnD, nnnW, nnnM or nnnY"),
    "CS": (16, re.compile(r"[A-Z0-9_ ]*"), None, "made of A-Z, 0-9, space, underscore"),
    "DA": (8, re.compile(r"\d{8}"), _valid_date, "a date YYYYMMDD"),
    "DS": (16, re.compile(r" *[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)? *"), None, "a decimal number"),
    "DT": (26, re.compile(r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?"), _valid_datetime,
           "YYYYMMDDHHMMSS.FFFFFF&ZZXX"),
    "IS": (12, re.compile(r" *[+-]?\d+ *"), lambda v: _valid_is(v.strip()), "an integer from -2^31 to 2^31-1"),
    "LO": (64, re.compile(_NO_CONTROL), None, "text without control characters"),
    "LT": (10240, re.compile(_TEXT), None, "text without control characters but CR, LF, FF, ESC"),
    "PN": (None, re.compile(_NO_CONTROL), _valid_pn, "a name of at most 3 groups of 64 characters, 5 components each"),
    "SH": (16, re.compile(_NO_CONTROL), None, "text without control characters"),
    "ST": (1024, re.compile(_TEXT), None, "text without control characters but CR, LF, FF, ESC"),
    "TM": (14, re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?"), _valid_time, "a time HHMMSS.FFFFFF"),
    "UC": (None, re.compile(_NO_CONTROL), None, "text without control characters"),
    "UI": (64, re.compile(r"\d+(\.\d+)*"), _valid_uid, "digits and dots without empty components or leading zeros"),
    "UR": (None, re.compile(r"\S*"), None, "a URI without spaces"),
    "UT": (None, re.compile(_TEXT), None, "text without control characters but CR, LF, FF, ESC"),
}
#: Single-valued string VRs: a backslash is a character, not a separator.
_SINGLE_VALUED = frozenset({"ST", "LT", "UT", "UR"})
#: VRs whose values are ASCII (read straight from the raw bytes, no character set decoding).
_ASCII = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"})
#: VRs whose leading spaces are padding too (PS3.5 Table 6.2-1).
_LEADING_SPACE_INSIGNIFICANT = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"})
_BINARY_SIZE = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "UV": 8, "SV": 8}


def vr_problem(vr: str, value: str) -> Optional[str]:
    """What is wrong with one (unpadded) value for ``vr``, or ``None``.  VRs without a text rule pass."""
    rule = _VR_RULES.get(vr)
    if rule is None or value == "":
        return None
    limit, pattern, extra, expected = rule
    if limit is not None and len(value) > limit:
        return f"{vr} value {_show(value)} is {len(value)} characters long; {vr} allows {limit}"
    if not pattern.fullmatch(value):
        return f"{vr} value {_show(value)} is not {expected}"
    try:
        if extra is not None and not extra(value):
            return f"{vr} value {_show(value)} is not {expected}"
    except ValueError:
        return f"{vr} value {_show(value)} is not {expected}"
    return None


@lru_cache(maxsize=4096)
def _vm_spec(tag: int) -> Optional[Tuple[int, Optional[int], int]]:
    """pydicom's VM of ``tag`` as (min, max or None, step), ``None`` when unknown."""
    try:
        text = dictionary_VM(tag)
    except KeyError:
        return None
    match = re.fullmatch(r"(\d+)(?:-(\d*)(n)?)?", text.strip())
    if not match:
        return None
    low = int(match.group(1))
    if match.group(2) is None and match.group(3) is None:
        return low, low, 1
    if match.group(3):  # "1-n", "2-2n", "3-3n"
        step = int(match.group(2)) if match.group(2) else 1
        return low, None, step
    return low, int(match.group(2)), 1


def vm_problem(tag: int, count: int) -> Optional[str]:
    """What is wrong with ``count`` values of ``tag`` against the dictionary VM, or ``None`` (empty passes)."""
    spec = _vm_spec(tag)
    if spec is None or count == 0:
        return None
    low, high, step = spec
    if count < low or (high is not None and count > high) or (high is None and count % step):
        return f"{count} values; the dictionary's VM is {dictionary_VM(tag)}"
    return None


def _show(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:37] + "...")


@lru_cache(maxsize=4096)
def _dictionary_vrs(tag: int) -> Tuple[str, ...]:
    try:
        return tuple(dictionary_VR(tag).split(" or "))
    except KeyError:
        return ()


@lru_cache(maxsize=4096)
def _name(tag: int) -> str:
    try:
        return keyword_for_tag(tag) or "unknown attribute"
    except Exception:  # noqa: BLE001 -- a dictionary oddity must not stop the check
        return "unknown attribute"


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


# ---------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class _Level:
    """Requirements of a level whose attributes belong to modules (the top level, a functional group item)."""

    always: Tuple[Tuple[int, str, str], ...]  # (tag, type, module name) required by Mandatory modules
    own: Tuple[Tuple[int, FrozenSet[int]], ...]  # other modules (all macros): (index, tags that show it present)
    required: Dict[int, Tuple[Tuple[int, str], ...]]  # module index -> its Type 1/2 (tag, type)
    types: Dict[int, Tuple[Tuple[int, str], ...]]  # tag -> ((module index, type in it), ...)
    mandatory: FrozenSet[int]  # module indices of usage M (not used for functional group items)


@dataclass(frozen=True)
class _Plan:
    iod: IOD
    top: _Level
    fg: Optional[_Level]
    fg_mandatory: Tuple[Tuple[str, Tuple[Tuple[int, str], ...]], ...]  # mandatory macros: (name, required)
    nested: Dict[int, Tuple[Tuple[int, str], ...]]  # content index -> required (tag, type)


def _level(iod: IOD, content: Dict[int, tuple], fg: bool) -> _Level:
    by_module: Dict[int, List[Tuple[int, str]]] = {}
    types: Dict[int, Tuple[Tuple[int, str], ...]] = {}
    for tag, entry in content.items():
        types[tag] = entry[4]
        for module, type_ in entry[4]:
            by_module.setdefault(module, []).append((tag, type_))
    mandatory = frozenset(m for m in by_module if iod.usage_of(m) == "M")
    mandatory_tags = {tag for m in mandatory for tag, _ in by_module[m]} if not fg else set()
    always: Dict[int, Tuple[str, str]] = {}
    own = []
    required: Dict[int, Tuple[Tuple[int, str], ...]] = {}
    for module, rows in sorted(by_module.items()):
        needed = tuple((tag, t) for tag, t in rows if t in ("1", "2"))
        required[module] = needed
        if module in mandatory and not fg:
            for tag, t in needed:
                if tag not in always or TYPE_RANK[t] < TYPE_RANK[always[tag][0]]:
                    always[tag] = (t, iod.module(module).name)
        else:
            own.append((module, frozenset(tag for tag, _ in rows if tag not in mandatory_tags)))
    return _Level(tuple((tag, t, name) for tag, (t, name) in sorted(always.items())), tuple(own), required, types,
                  mandatory if not fg else frozenset())


@lru_cache(maxsize=16)
def _plan(uid: str) -> Optional[_Plan]:
    """Everything :func:`check` needs of an IOD, computed once."""
    iod = iod_for(uid)
    if iod is None:
        return None
    top = _level(iod, iod.content(iod.root), fg=False)
    fg = None
    fg_mandatory: List[Tuple[str, Tuple[Tuple[int, str], ...]]] = []
    if iod.fg_content >= 0:
        fg = _level(iod, iod.content(iod.fg_content), fg=True)
        for module, rows in sorted(fg.required.items()):
            if iod.usage_of(module) == "M" and rows:
                fg_mandatory.append((iod.module(module).name, rows))
    nested: Dict[int, Tuple[Tuple[int, str], ...]] = {}
    seen = set()
    stack = [iod.root]
    while stack:
        index = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        content = iod.content(index)
        if index not in (iod.root, iod.fg_content):
            nested[index] = tuple(sorted((tag, e[0]) for tag, e in content.items() if e[0] in ("1", "2")))
        stack.extend(e[3] for e in content.values() if e[3] >= 0)
    return _Plan(iod, top, fg, tuple(fg_mandatory), nested)


def missing_type2(sop_class: str, present: Iterable[int]) -> Tuple[int, ...]:
    """The top-level Type 2 attributes of the IOD's Mandatory modules that ``present`` lacks: an
    output may carry them empty (a conformance repair that adds no information)."""
    plan = _plan(sop_class)
    if plan is None:
        return ()
    keys = frozenset(normalize_tag(t) for t in present)
    return tuple(sorted({tag for tag, type_, _ in plan.top.always if type_ == "2" and tag not in keys and tag >> 24 not in (0x50, 0x60)}))


# ---------------------------------------------------------------------------------------- the check


class _Checker:
    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.iod = plan.iod
        self.findings: List[Finding] = []

    def error(self, path: str, message: str) -> None:
        self.findings.append(Finding("error", path, message))

    def warning(self, path: str, message: str) -> None:
        self.findings.append(Finding("warning", path, message))

    # -- presence ---------------------------------------------------------------------------------
    def require(self, keys: FrozenSet[int], level: _Level, prefix: str, fg: bool) -> Dict[int, str]:
        """Report the missing Type 1/2 attributes of the active modules (Mandatory or present) of ``level``;
        returns tag -> the type that counts for each present attribute (strictest of its active modules)."""
        present = keys if fg else frozenset(normalize_tag(k) for k in keys)  # overlays: any 60xx group
        keys = present
        for tag, type_, module in level.always:
            if tag not in keys:
                self.error(prefix + _tag_text(tag), f"Type {type_} attribute {_name(tag)} is missing (module {module})")
        active = set(level.mandatory)
        kind = "functional group" if fg else "module"
        for module, own in level.own:
            if keys.isdisjoint(own):
                continue
            active.add(module)
            for tag, type_ in level.required[module]:
                if tag not in keys:
                    name = self.iod.module(module).name
                    self.error(prefix + _tag_text(tag), f"Type {type_} attribute {_name(tag)} is missing ({kind} {name} is present)")
        effective: Dict[int, str] = {}
        for tag in keys:
            mods = level.types.get(tag)
            if mods:
                chosen = [t for m, t in mods if m in active] or [t for _, t in mods]
                effective[tag] = min(chosen, key=TYPE_RANK.__getitem__)
        return effective

    def functional_groups(self, ds: Dataset) -> None:
        """Where the macros are: a mandatory one in the Shared item or in every Per-frame item; none in both
        (PS3.3 C.7.6.16.1.1; an optional one may be in some Per-frame items only)."""
        shared = _items(ds, SHARED_FG)
        per_frame = _items(ds, PER_FRAME_FG)
        shared_keys = _keys(shared[0]) if shared else frozenset()
        frame_keys = [_keys(item) for item in per_frame]
        for name, required in self.plan.fg_mandatory:
            for tag, type_ in required:
                if tag in shared_keys:
                    continue
                missing = [i for i, keys in enumerate(frame_keys) if tag not in keys]
                if not frame_keys:
                    self.error(f"{_tag_text(SHARED_FG)}[0]>{_tag_text(tag)}",
                               f"Type {type_} attribute {_name(tag)} is missing (mandatory functional group {name})")
                elif missing:
                    self.error(f"{_tag_text(PER_FRAME_FG)}[{missing[0]}]>{_tag_text(tag)}",
                               f"Type {type_} attribute {_name(tag)} is missing (mandatory functional group {name}): "
                               f"in neither the Shared item nor {len(missing)} of {len(frame_keys)} Per-frame items")
        if self.plan.fg is None or not frame_keys or not shared_keys:
            return
        for module, own in self.plan.fg.own:  # PS3.3 C.7.6.16.1.1: "not ... in both"
            if shared_keys.isdisjoint(own):
                continue
            holding = [i for i, keys in enumerate(frame_keys) if not keys.isdisjoint(own)]
            if holding:
                self.error(f"{_tag_text(PER_FRAME_FG)}[{holding[0]}]>{_tag_text(min(own & frame_keys[holding[0]]))}",
                           f"functional group {self.iod.module(module).name} is in the Shared item and in "
                           f"{len(holding)} Per-frame items")

    # -- walking ----------------------------------------------------------------------------------
    def walk(self, ds: Dataset, content: int, prefix: str, level: Optional[_Level], fg: bool = False) -> None:
        """Check the elements of ``ds``, an item of table content ``content`` (-1: not in the IOD, values only)."""
        keys = _keys(ds)
        effective: Dict[int, str] = {}
        allowed = None
        if content >= 0:
            allowed = self.iod.content(content)
            if level is not None:
                effective = self.require(keys, level, prefix, fg)
            else:
                for tag, type_ in self.plan.nested.get(content, ()):
                    if tag not in keys:
                        self.error(prefix + _tag_text(tag), f"Type {type_} attribute {_name(tag)} is missing")
        for tag in sorted(keys):
            group = tag >> 16
            if group & 1 or group < 8 or not tag & 0xFFFF or tag == 0xFFFCFFFC:
                continue  # private, file meta / command, group length, trailing padding
            path = prefix + _tag_text(tag)
            entry = allowed.get(normalize_tag(tag)) if allowed is not None else None
            if allowed is not None and entry is None:
                self.warning(path, f"{_name(tag)} is not in the {self.iod.iod_name} IOD here")
            try:
                type_ = effective.get(normalize_tag(tag)) or (entry[0] if entry is not None else "3")
                self.element(ds, tag, path, entry, type_)
            except Exception as exc:  # noqa: BLE001 -- a malformed element becomes a finding
                self.error(path, f"could not check {_name(tag)}: {type(exc).__name__}: {exc}")

    def element(self, ds: Dataset, tag: int, path: str, entry: Optional[tuple], type_: str) -> None:
        raw = ds.get_item(tag)
        data = getattr(raw, "value", None)
        if (type(raw).__name__ == "RawDataElement" and isinstance(data, (bytes, bytearray)) and len(data) <= _MEMO_VALUE_BYTES
                and raw.VR and raw.VR not in ("UN", "SQ") and len(_dictionary_vrs(tag)) == 1):  # findings that depend on the value alone
            # A series repeats most values file after file: the findings of an undecoded value are memoized.
            # Not a sequence's: its findings lie at paths inside it and depend on where it is (its items' module).
            key = (tag, raw.VR, type_, entry is None, str(getattr(ds, "_character_set", "")), bytes(data))
            found = _VALUE_MEMO.get(key)
            if found is None:
                start = len(self.findings)
                self._element(ds, tag, path, entry, type_, raw)
                found = tuple((f.severity, f.message) for f in self.findings[start:])
                if len(_VALUE_MEMO) > 100_000:
                    _VALUE_MEMO.clear()
                _VALUE_MEMO[key] = found
                return
            self.findings.extend(Finding(severity, path, message) for severity, message in found)
            return
        self._element(ds, tag, path, entry, type_, raw)

    def _element(self, ds: Dataset, tag: int, path: str, entry: Optional[tuple], type_: str, raw: object) -> None:
        vr = vr_text(getattr(raw, "VR", None))
        dictionary = _dictionary_vrs(tag)
        if not vr:
            vr = dictionary[0] if len(dictionary) == 1 else vr_text(ds[tag].VR)
        if vr == "SQ":
            self.sequence(ds, tag, path, entry, type_)
            return
        if dictionary and vr not in dictionary and vr != " or ".join(dictionary):
            report = self.warning if vr == "UN" else self.error
            report(path, f"VR {vr}; the dictionary's VR of {_name(tag)} is {' or '.join(dictionary)}")
        values, count = self.values(ds, tag, raw, vr, path)
        if count == 0:
            if type_ == "1":
                self.error(path, f"Type 1 attribute {_name(tag)} is empty")
            elif type_ == "1C":
                self.error(path, f"Type 1C attribute {_name(tag)} is present but empty")
            return
        if vr not in _NO_VM:
            problem = vm_problem(tag, count)
            if problem:
                self.error(path, f"{_name(tag)}: {problem}")
        for value in values:
            problem = vr_problem(vr, value)
            if problem:
                self.error(path, f"{_name(tag)}: {problem}")
                break

    def values(self, ds: Dataset, tag: int, raw: object, vr: str, path: str) -> Tuple[List[str], int]:
        """The values of an element as strings (text VRs only) and their number."""
        data = getattr(raw, "value", None)
        if type(raw).__name__ == "RawDataElement" and isinstance(data, (bytes, bytearray)):
            size = _BINARY_SIZE.get(vr)
            if size is not None:
                if len(data) % size:
                    self.error(path, f"{_name(tag)}: {vr} value of {len(data)} bytes is not a multiple of {size}")
                return [], len(data) // size
            if vr in _ASCII:  # no character set: read the bytes as they are
                return _split(vr, data.decode("latin-1"))
        value = ds[tag].value
        if vr in _VR_RULES:
            return _split(vr, value)
        if value is None:
            return [], 0
        if isinstance(value, (bytes, bytearray, str)):
            return [], 1 if len(value) else 0
        try:
            return [], len(value)
        except TypeError:
            return [], 1

    def sequence(self, ds: Dataset, tag: int, path: str, entry: Optional[tuple], type_: str) -> None:
        items = ds[tag].value
        count = len(items) if items is not None else 0
        if count == 0:
            if type_ == "1":
                self.error(path, f"Type 1 sequence {_name(tag)} has no Items")
            elif type_ == "1C":
                self.error(path, f"Type 1C sequence {_name(tag)} is present but has no Items")
            elif type_ == "3" and entry is not None and entry[1] > 0:
                self.error(path, f"Type 3 sequence {_name(tag)} has no Items; when present it needs "
                                 f"{_count_text(entry[1], entry[2])} (dciodvfy: Bad Sequence number of Items)")
            return
        if entry is not None and entry[1] >= 0 and (count < entry[1] or (entry[2] is not None and count > entry[2])):
            self.error(path, f"{_name(tag)} has {count} Items; the standard allows {_count_text(entry[1], entry[2])}")
        child = entry[3] if entry is not None else -1
        fg = child >= 0 and child == self.iod.fg_content
        for index, item in enumerate(items):
            if not isinstance(item, Dataset):
                self.error(f"{path}[{index}]", "sequence item is not a dataset")
                continue
            self.walk(item, child, f"{path}[{index}]>", self.plan.fg if fg else None, fg)


#: Undecoded values up to this size have their findings memoized (:meth:`_Checker.element`).
_MEMO_VALUE_BYTES = 256
_VALUE_MEMO: Dict[tuple, Tuple[Tuple[str, str], ...]] = {}

_NO_VM = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ", "ST", "LT", "UT", "UR"})


def _count_text(low: int, high: Optional[int]) -> str:
    if high is None:
        return f"{low} or more Items"
    if low == high:
        return f"exactly {low} Item{'s' if low != 1 else ''}"
    return f"{low} to {high} Items"


def _split(vr: str, value: object) -> Tuple[List[str], int]:
    """Values of a text element (raw text or pydicom value) without padding, and their number."""
    if value is None:
        return [], 0
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("latin-1")
    if isinstance(value, str):
        if vr in _SINGLE_VALUED:
            text = value.rstrip(" \x00")
            return ([text], 1) if text else ([], 0)
        parts = value.split("\\")
    elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        parts = [_text(v) for v in value]
    else:
        parts = [_text(value)]
    if vr in _LEADING_SPACE_INSIGNIFICANT:
        parts = [p.strip(" \x00") for p in parts]
    else:
        parts = [p.rstrip(" \x00") for p in parts]
    if len(parts) == 1 and parts[0] == "":
        return [], 0
    return parts, len(parts)


def _text(value: object) -> str:
    if type(value).__name__ == "PersonName":
        return str(value)
    original = getattr(value, "original_string", None)
    if isinstance(original, str):
        return original
    if isinstance(original, bytes):
        return original.decode("latin-1")
    return "" if value is None else str(value)


def _keys(ds: Dataset) -> FrozenSet[int]:
    return frozenset(ds.keys())


def _items(ds: Dataset, tag: int) -> List[Dataset]:
    try:
        if tag not in ds:
            return []
        value = ds[tag].value
        return [item for item in (value or []) if isinstance(item, Dataset)]
    except Exception:  # noqa: BLE001
        return []


def check(ds: Dataset) -> List[Finding]:
    """Conformance findings of ``ds`` against the IOD of its SOP Class UID (see the module docstring)."""
    try:
        uid = str(ds.get("SOPClassUID", "") or "").strip().rstrip("\x00")
    except Exception as exc:  # noqa: BLE001
        return [Finding("error", "(0008,0016)", f"SOP Class UID unreadable: {type(exc).__name__}: {exc}")]
    if not uid:
        return [Finding("error", "(0008,0016)", "SOP Class UID is missing: no IOD to check against")]
    plan = _plan(uid)
    if plan is None:
        return [Finding("error", "(0008,0016)", f"SOP Class {uid} is not in the IOD table: not checked")]
    checker = _Checker(plan)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            checker.walk(ds, plan.iod.root, "", plan.top)
            if plan.fg is not None:
                checker.functional_groups(ds)
    except Exception as exc:  # noqa: BLE001 -- the check must report, not raise
        checker.error("", f"check stopped: {type(exc).__name__}: {exc}")
    return checker.findings


def errors(findings: Iterable[Finding]) -> List[Finding]:
    """The findings of severity ``error``."""
    return [f for f in findings if f.severity == "error"]
