"""The header transformation: an allowlist per IOD, PS3.15 Annex E actions resolved by Type, and
rules by value representation -- one decision per element, at every nesting level.

For every attribute of the data set, of every item of every sequence, and of the file meta, the
first rule that applies decides (:func:`plan`):

1. private attributes (odd groups) and group lengths -> removed, undecoded;
2. attributes the object's IOD does not allow at that place (``Resources/iod_tables.json``,
   generated from the standard) -> removed: unknown, retired and foreign attributes never reach
   the release;
3. attributes the profile empties (Scan Options, Protocol Name...) -> zero length, or removed when
   Type 3 (a zero-item sequence is no valid Type 3 value);
4. attributes of Annex E Table E.1-1 -> the table's action, refined by the profile's options; the
   codes that depend on the IOD resolve by the attribute's Type at that place:

   ============ =========== =========== ======================
   code         Type 1(C)   Type 2(C)   Type 3 / not listed
   ============ =========== =========== ======================
   X            dummy       empty       remove
   Z            dummy       empty       remove
   D, X/D       dummy       dummy       remove
   X/Z, Z/D,    dummy       empty       remove
   X/Z/D
   ============ =========== =========== ======================

   A dummy sequence is one item holding its Type 1 attributes (dummy values) and Type 2 ones
   (empty); ``U`` -> a keyed new UID; ``X/Z/U*`` -> references kept, UIDs inside replaced;
5. rules by value representation for what Annex E does not list: every PN value is a person ->
   as ``Z/D``; every UID that is not a DICOM-registered one -> a keyed new UID; every date, time
   and date-time -> shifted with the patient's offset;
6. everything else is kept (sequences walked).

Dates move by the patient's offset in days, times of day by the patient's offset in seconds, and a
date with its time (``StudyDate`` + ``StudyTime``, any ``...Date`` + ``...Time`` pair in the same
item) as one instant; date-times move as instants and lose their time-zone suffix.  Patient's Age and
Sex are kept only when their values are valid for their VR.

Every original value of an identifying attribute is recorded (:class:`HeaderContext.remember`) for
the identity search of :mod:`visceral.deid.identifiers`; every action is counted per attribute class
for the audit report.  Pixel data is never touched.
"""

from __future__ import annotations

import datetime as _dt
import enum
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, Iterable, List, Optional, Set, Tuple, Union

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from visceral import __version__
from visceral.deid.identifiers import Identifiers, identifier_kind
from visceral.deid.identity import SecretKey
from visceral.deid.iod import IOD, AttributeSpec, iod_for
from visceral.deid.profile import Profile
from visceral.deid.tables import BINARY_VRS, DATE_TIME_VRS, NUMERIC_VRS, AnnexERule, rule_for, vr_text

__all__ = ["HeaderContext", "decide", "plan", "Plan", "Action", "deidentify_header", "prepare_header", "transform_elements", "transform_element",
           "set_identity", "deidentify_meta", "follow_instance_uid", "patient_key_of", "derive_age", "cap_age", "shift_date",
           "shift_datetime", "shift_time", "DUMMY_TEXT", "DUMMY_VALUES", "is_registered_uid", "valid_age", "valid_sex"]

DUMMY_TEXT = "ANONYMIZED"
DUMMY_NAME = "ANONYMOUS"
#: Dummy value per VR (valid for the VR; PS3.5 6.2).
DUMMY_VALUES = {
    "PN": DUMMY_NAME, "LO": DUMMY_TEXT, "SH": DUMMY_TEXT, "LT": DUMMY_TEXT, "ST": DUMMY_TEXT, "UT": DUMMY_TEXT,
    "UC": DUMMY_TEXT, "CS": DUMMY_TEXT, "AE": DUMMY_TEXT, "DA": "19000101", "TM": "000000", "DT": "19000101000000",
    "AS": "000Y", "IS": "0", "DS": "0", "UR": "https://example.invalid/",
}

#: Codes of CID 7050 "De-identification Method" (PS3.16), scheme DCM.
_METHOD_CODES = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "patient": ("113108", "Retain Patient Characteristics Option"),
    "descriptors": ("113105", "Clean Descriptors Option"),
}
#: Attributes the de-identification itself writes (Patient Identification and SOP Common modules).
_WRITTEN_TAGS = frozenset((0x00100010, 0x00100020, 0x00120062, 0x00120063, 0x00120064, 0x00280303, 0x00080005))
#: Attributes kept although the object's IOD does not list them: what converters (dcm2niix, this
#: package's) read to get voxel values and volumes right in real classic MR exports -- rescaling
#: (Philips, Canon), diffusion and temporal indices.  None of them can hold identity (numbers, codes).
KEPT_OUTSIDE_IOD = frozenset(tag_for_keyword(k) for k in (
    "RescaleSlope", "RescaleIntercept", "RescaleType", "DiffusionBValue", "DiffusionGradientOrientation", "DiffusionDirectionality",
    "TemporalPositionIndex", "InStackPositionNumber", "AcquisitionDuration", "NumberOfTemporalPositions", "TemporalPositionIdentifier",
    "TemporalResolution", "EffectiveEchoTime", "SpacingBetweenSlices", "ImagesInAcquisition", "MRAcquisitionType",
))
#: The modules of the subject's identity: of their attributes Annex E does not list, only these stay.
_PATIENT_MODULES = frozenset(("patient", "clinical-trial-subject"))
PATIENT_KEPT = frozenset((
    "PatientName", "PatientID", "PatientSex", "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
    "PatientSpeciesDescription", "PatientSpeciesCodeSequence", "PatientBreedDescription", "PatientBreedCodeSequence",
    "QualityControlSubject", "StrainDescription", "StrainNomenclature", "StrainCodeSequence", "PatientSexNeutered", "CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning",
))
#: Long free text (LT, ST, UT) Annex E does not list: it can hold anything (a third person, a date in any
#: calendar, an encoded name) and no research use needs it: removed, or emptied by its Type.
FREE_TEXT_VRS = frozenset(("LT", "ST", "UT"))
#: Who issued an identifier, which device or site wrote the data: removed or emptied by Type.
_ISSUER_LIKE = re.compile(r"Issuer|EntityID|^TimeSource$|^DeviceID$|^StationName$|^DeviceSerialNumber$")
#: Roots of registered UIDs (kept): DICOM's own, and HL7's registered coding systems (SNOMED, LOINC, UCUM...).
_REGISTERED_UID_ROOTS = ("1.2.840.10008.", "2.16.840.1.113883.6.")


@lru_cache(maxsize=4096)
def attribute_class(keyword: str, vr: str, private: bool = False) -> str:
    """The audit-report class of an attribute (how actions are grouped for a reader)."""
    if private:
        return "private"
    if vr == "UI":
        return "UIDs"
    if vr in DATE_TIME_VRS:
        return "dates and times"
    k = keyword.lower()
    if k.startswith("patient") or "birth" in k or "ethnic" in k or "otherpatient" in k or "medical" in k:
        return "patient"
    if vr == "PN" or any(w in k for w in ("physician", "operator", "performing", "requesting", "referring", "reviewer", "author", "person", "verifying")):
        return "staff"
    if any(w in k for w in ("institution", "station", "device", "manufacturer", "serial", "address", "department")):
        return "institution and device"
    if any(w in k for w in ("description", "comment", "protocol", "scanoptions", "reason", "text", "label")):
        return "descriptions"
    return "other"


@dataclass
class HeaderContext:
    """What the header transformation of one file needs and records."""

    key: SecretKey
    profile: Profile
    pseudonym: str
    date_offset_days: int
    #: the patient's time-of-day offset (seconds, 0..86399): times move with their dates
    time_offset_s: int = 0
    #: the object's SOP Class UID: selects the IOD of the allowlist
    sop_class: str = ""
    #: original identifying value -> its identifier kind (see :func:`visceral.deid.identifiers.identifier_kind`)
    originals: Dict[str, str] = field(default_factory=dict)
    written: Set[str] = field(default_factory=set)
    counts: Counter = field(default_factory=Counter)
    notes: List[str] = field(default_factory=list)
    #: the subject's identity from its other files: (value, kind), searched in this file too
    subject_identifiers: Tuple[Tuple[str, str], ...] = ()
    _identifiers: Optional[Tuple[Tuple[int, int], Identifiers]] = field(default=None, repr=False, compare=False)

    def identifiers(self) -> Identifiers:
        """Everything this file's subject can be recognized by, ready for the search (built once
        for the record as it stands)."""
        state = (len(self.originals), len(self.written))
        if self._identifiers is None or self._identifiers[0] != state:
            self._identifiers = (state, Identifiers.build(list(self.originals.items()) + list(self.subject_identifiers), self.written))
        return self._identifiers[1]

    def count(self, keyword: str, vr: str, action: str, private: bool = False) -> None:
        self.counts[(attribute_class(keyword, vr, private), action)] += 1

    def remember(self, value: object, keyword: str = "", vr: str = "") -> None:
        """Record the original value of an identifying attribute for the identity search (names
        are split into their parts there); values of other attributes are not identifiers."""
        kind = identifier_kind(keyword, vr)
        if kind is None:
            return
        for text in _texts(value):
            text = text.strip()
            if text:
                self.originals.setdefault(text, kind)


def _texts(value: object) -> Iterable[str]:
    if value is None or isinstance(value, (bytes, bytearray, int, float)):
        return
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        for v in value:
            yield from _texts(v)
        return
    if isinstance(value, Dataset):
        return
    yield str(value)


def patient_key_of(ds: Dataset) -> str:
    """The key of the original patient: Patient ID (with its issuer), else name and birth date."""
    pid = str(ds.get("PatientID", "") or "").strip()
    issuer = str(ds.get("IssuerOfPatientID", "") or "").strip()
    if pid:
        return f"id:{issuer}:{pid}" if issuer else f"id:{pid}"
    name = str(ds.get("PatientName", "") or "").strip()
    birth = str(ds.get("PatientBirthDate", "") or "").strip()
    if name or birth:
        return f"name:{name}:{birth}"
    return f"study:{ds.get('StudyInstanceUID', '')}"


# -- values -----------------------------------------------------------------------------------------------
def _parse_date(text: str) -> Optional[_dt.date]:
    text = text.strip()
    if len(text) == 8 and text.isdigit() and text.isascii():
        try:
            return _dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            return None
    return None


def derive_age(birth: str, on: str, max_years: int = 89) -> Optional[str]:
    """Patient's Age (AS) from birth date and study date (DA strings), capped at ``090Y``."""
    b, d = _parse_date((birth or "")[:8]), _parse_date((on or "")[:8])
    if b is None or d is None or d < b:
        return None
    years = d.year - b.year - ((d.month, d.day) < (b.month, b.day))
    if years > max_years:
        return "090Y"
    if years >= 2:
        return f"{years:03d}Y"
    days = (d - b).days
    if days >= 60:
        months = (d.year - b.year) * 12 + d.month - b.month - (d.day < b.day)
        return f"{months:03d}M"
    if days >= 14:
        return f"{days // 7:03d}W"
    return f"{days:03d}D"


_AGE = re.compile(r"\d{3}[DWMY]")


def valid_age(text: str) -> bool:
    """A valid AS value (PS3.5 6.2): ``nnnD``, ``nnnW``, ``nnnM`` or ``nnnY``."""
    return _AGE.fullmatch(text.strip()) is not None


def normalized_age(text: str) -> Optional[str]:
    """An age written with fewer digits, a space or a lower-case unit (``0Y``, ``45 y``) in the AS form
    (``000Y``, ``045Y``); ``None`` when it is no age (``***``, ``45``: no unit)."""
    match = re.fullmatch(r"(\d{1,3})\s*([DWMYdwmy])", text.strip())
    return None if match is None else f"{int(match.group(1)):03d}{match.group(2).upper()}"


def valid_sex(text: str) -> bool:
    """A valid Patient's Sex (PS3.3 C.7.1.1): ``M``, ``F``, ``O`` or empty."""
    return text.strip() in ("", "M", "F", "O")


def cap_age(text: str, max_years: int) -> str:
    match = re.fullmatch(r"(\d{3})([DWMY])", text.strip())
    if match and match.group(2) == "Y" and int(match.group(1)) > max_years:
        return "090Y"
    return text


def shift_date(text: str, days: int) -> Optional[str]:
    """Shift a DA value (or range ``A-B``) by ``days``; ``None`` when it is not a date."""
    out = []
    for part in text.strip().split("-"):
        if not part:
            out.append("")
            continue
        date = _parse_date(part)
        if date is None:
            return None
        try:
            out.append((date + _dt.timedelta(days=days)).strftime("%Y%m%d"))
        except OverflowError:
            return None
    return "-".join(out)


_TIME = re.compile(r"(\d{2})(?::?(\d{2})(?::?(\d{2})(\.\d{1,6})?)?)?")


def shift_time(text: str, seconds: int) -> Optional[Tuple[str, int]]:
    """Shift a TM value by ``seconds``: (the new value in the same precision, days carried), or
    ``None`` when it is not a time."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        return None
    hh, mm, ss, frac = match.groups()
    if int(hh) > 23 or (mm and int(mm) > 59) or (ss and int(ss) > 60):
        return None
    total = int(hh) * 3600 + int(mm or 0) * 60 + min(int(ss or 0), 59) + seconds
    carry, total = divmod(total, 86400)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    colon = ":" if ":" in text else ""
    out = f"{h:02d}"
    if mm is not None:
        out += f"{colon}{m:02d}"
    if ss is not None:
        out += f"{colon}{s:02d}" + (frac or "")
    return out, carry


def shift_datetime(text: str, days: int, seconds: int = 0) -> Optional[str]:
    """Shift a DT value by ``days`` and ``seconds`` as one instant; a time-zone suffix is removed
    (it tells where the scanner stood)."""
    text = re.sub(r"[+\-]\d{4}$", "", text.strip())
    if len(text) < 8:
        if re.fullmatch(r"\d{4}(\d{2})?", text):  # year or year+month precision
            return f"{int(text[:4]) + round(days / 365.25):04d}{text[4:]}"
        return None
    date = _parse_date(text[:8])
    if date is None:
        return None
    carry = 0
    time_part = text[8:]
    if time_part:
        shifted = shift_time(time_part, seconds)
        if shifted is None:
            return None
        time_part, carry = shifted
    try:
        return (date + _dt.timedelta(days=days + carry)).strftime("%Y%m%d") + time_part
    except OverflowError:
        return None


def is_registered_uid(uid: str, keyword: str = "") -> bool:
    """A UID that names no instance and no institution: DICOM's own (``1.2.840.10008...``: SOP
    classes, transfer syntaxes, DICOM coding schemes) or an HL7-registered coding system's."""
    return uid.startswith(_REGISTERED_UID_ROOTS)


def _partner(keyword: str) -> Optional[str]:
    """The other half of a date/time pair: ``StudyDate`` <-> ``StudyTime``."""
    if keyword.endswith("Date"):
        return keyword[:-4] + "Time"
    if keyword.endswith("Time"):
        return keyword[:-4] + "Date"
    return None


# -- the decision -----------------------------------------------------------------------------------------
def decide(keyword: str, vr: str, rule: AnnexERule, profile: Profile) -> Union[Action, str]:
    """Which of the profile's options decides the action on an attribute Annex E lists:
    ``characteristic`` (Retain Patient Characteristics), ``shift`` (a date, time or date-time of
    Retain Longitudinal Temporal Information), ``standardize`` (Clean Descriptors; the basic action
    when no controlled value applies) or ``basic`` (the basic profile's code)."""
    if keyword in profile.keep_patient_characteristics and rule.option("rtnPatCharsOpt"):
        return Action.CHARACTERISTIC
    if profile.dates == "shift" and vr in DATE_TIME_VRS and rule.option("rtnLongModifDatesOpt"):
        return Action.SHIFT
    if rule.option("cleanDescOpt") and keyword in profile.descriptions and vr != "SQ":
        return Action.STANDARDIZE
    return BASIC


class Action(str, enum.Enum):
    """What happens to one element (see the module docstring)."""

    KEEP = "keep"
    WALK = "walk"  # a kept sequence: its items are walked
    REMOVE = "remove"
    EMPTY = "empty"
    DUMMY = "dummy"
    UID = "uid"
    SHIFT = "shift"
    CHARACTERISTIC = "characteristic"  # Retain Patient Characteristics: kept when valid for its VR
    STANDARDIZE = "standardize"  # Clean Descriptors: a controlled value, else the basic action

    def __str__(self) -> str:
        return self.value


#: decide()'s answer when no option applies: the basic profile's code decides.
BASIC = "basic"


@dataclass(frozen=True)
class Plan:
    """What happens to one element, and which rule decided (``why``, for the audit report)."""

    action: Action
    why: str


def _by_type(code: str, type_: Optional[str]) -> Action:
    """An Annex E code that depends on the IOD, resolved by the attribute's Type at its place."""
    level = (type_ or "3")[0]
    if level == "1":
        return Action.DUMMY
    if level == "2":
        return Action.DUMMY if code in ("D", "X/D") else Action.EMPTY
    return Action.REMOVE


def plan(tag: int, vr: str, keyword: str, spec: Optional[AttributeSpec], iod_known: bool, profile: Profile) -> Plan:
    """The one decision on an element (see the module docstring); both executors call it.

    Args:
        spec: what the object's IOD says of the attribute at its place (None: not allowed there).
        iod_known: False when the object's IOD is not in the table (nothing is then removed for it).
    """
    type_ = spec.type if spec is not None else None
    allowed = spec is not None or not iod_known
    if tag >> 16 & 1:
        return Plan(Action.REMOVE, "private")
    if tag & 0xFFFF == 0:
        return Plan(Action.REMOVE, "group length")
    if tag >> 24 in (0x50, 0x60):  # overlays (60xx) and curves (50xx): graphics may spell out identity
        return Plan(Action.REMOVE, "overlay or curve")
    if not allowed and tag not in _WRITTEN_TAGS and tag not in KEPT_OUTSIDE_IOD:
        return Plan(Action.REMOVE, "not in the IOD")
    if tag in profile.empty_tags:
        return Plan(Action.REMOVE if (type_ or "3")[0] == "3" else Action.EMPTY, "profile: emptied")
    rule = rule_for(tag)
    if rule is not None:
        decision = decide(keyword, vr, rule, profile)
        if decision != BASIC:
            return Plan(Action(decision), f"Annex E option ({decision})")
        code = rule.basic
        if code == "K":
            return Plan(Action.WALK if vr == "SQ" else Action.KEEP, "Annex E K")
        if code == "U":
            return Plan(Action.UID, "Annex E U")
        if code == "X/Z/U*":
            return Plan(Action.WALK if vr == "SQ" else Action.UID, "Annex E X/Z/U*")
        if vr == "UI" and code in ("D", "X/D", "Z/D", "X/Z/D"):
            return Plan(Action.UID, f"Annex E {code} (UID)")
        return Plan(_by_type(code, type_), f"Annex E {code}, Type {type_ or '3'}")
    if spec is not None and set(spec.modules) & _PATIENT_MODULES and keyword not in PATIENT_KEPT:
        return Plan(_by_type("Z/D", type_), "patient module: only what the profile keeps")
    if vr in ("PN", "UR"):
        return Plan(_by_type("Z/D", type_), "a person's name" if vr == "PN" else "an address (URL)")
    if vr in FREE_TEXT_VRS:
        return Plan(_by_type("Z/D", type_), "free text")
    if _ISSUER_LIKE.search(keyword):
        return Plan(_by_type("Z/D", type_), "an issuer, a device or a site")
    if vr == "UI":
        return Plan(Action.UID, "an instance UID")
    if vr in DATE_TIME_VRS:
        return Plan(Action.SHIFT if profile.dates == "shift" else _by_type("Z/D", type_), "a date or time")
    if vr == "SQ":
        return Plan(Action.WALK, "kept sequence")
    return Plan(Action.KEEP, "kept")


class _Transformer:
    def __init__(self, ctx: HeaderContext) -> None:
        self.ctx = ctx
        self.profile = ctx.profile
        self.iod: Optional[IOD] = iod_for(ctx.sop_class) if ctx.sop_class else None
        self.depth = 0

    # -- the walk ---------------------------------------------------------------------------------
    def walk(self, ds: Dataset, path: Tuple[int, ...] = ()) -> None:
        if isinstance(ds, Sequence):
            for item in ds:
                self.walk(item, path)
            return
        self.depth += 1
        if self.depth > 32:
            raise ValueError("sequences nested more than 32 levels deep")
        try:
            originals = self._date_time_originals(ds)
            for tag in list(ds.keys()):
                self.walk_one(ds, tag, path, originals)
        finally:
            self.depth -= 1

    @staticmethod
    def _date_time_originals(ds: Dataset) -> Dict[str, str]:
        """keyword -> original value of the dates and times of this item (for date/time pairs)."""
        out = {}
        for elem in ds.values():
            if not elem.tag.is_private and _vr_of(ds, elem.tag) in ("DA", "TM"):
                keyword = keyword_for_tag(elem.tag)
                if keyword:
                    value = ds[elem.tag].value
                    if isinstance(value, str) and value.strip():
                        out[keyword] = value.strip()
        return out

    def walk_one(self, ds: Dataset, tag, path: Tuple[int, ...] = (), originals: Optional[Dict[str, str]] = None) -> None:
        """The action on the element ``tag`` of ``ds`` (at ``path`` in the data set)."""
        tag = Tag(tag)
        if tag.is_private:
            del ds[tag]
            self.ctx.count("", "", "removed", private=True)
            return
        if tag.element == 0:  # group length (retired): dropped, not counted
            del ds[tag]
            return
        vr = _vr_of(ds, tag)
        keyword = keyword_for_tag(tag) or ""
        if _sequence_in_binary(ds, tag):
            del ds[tag]
            self.ctx.count(keyword, "SQ", "removed (a sequence stored as binary)")
            self.ctx.notes.append(f"{keyword or tag}: a sequence stored with a binary VR; removed")
            return
        here = path + (int(tag),)
        spec = self.iod.node(here) if self.iod is not None else None
        decision = plan(int(tag), vr, keyword, spec, self.iod is not None, self.profile)
        action = decision.action
        if action is Action.KEEP:
            return
        if action is Action.WALK:
            self.walk(ds[tag].value, here)
            return
        elem = ds[tag]
        if action is Action.REMOVE:
            self._remember_all(elem, keyword)
            del ds[tag]
            self.ctx.count(keyword, vr, "removed (not in the IOD)" if decision.why == "not in the IOD" else "removed")
        elif action is Action.EMPTY:
            if elem.value in (None, "", b"") or (vr == "SQ" and len(elem.value) == 0):
                return
            self._remember_all(elem, keyword)
            elem.value = Sequence([]) if vr == "SQ" else (b"" if vr in BINARY_VRS else None)
            self.ctx.count(keyword, vr, "emptied")
        elif action is Action.DUMMY:
            self._dummy(elem, keyword, here)
        elif action is Action.UID:
            self._uid(elem, keyword, here)
        elif action is Action.SHIFT:
            self._shift(ds, elem, keyword, originals or {}, spec.type if spec is not None else None)
        elif action is Action.CHARACTERISTIC:
            self._characteristic(ds, elem, keyword)
        elif action is Action.STANDARDIZE:
            self._standardize(ds, elem, keyword, spec.type if spec is not None else None)

    # -- actions ----------------------------------------------------------------------------------
    def _remember_all(self, elem: DataElement, keyword: str) -> None:
        if elem.VR == "SQ":
            for item in elem.value or []:
                for sub in item.iterall():
                    if sub.VR != "SQ" and not sub.tag.is_private:
                        self.ctx.remember(sub.value, sub.keyword or "", sub.VR)
        else:
            self.ctx.remember(elem.value, keyword, elem.VR)

    def _dummy(self, elem: DataElement, keyword: str, here: Tuple[int, ...]) -> None:
        vr = vr_text(elem.VR)
        if vr == "SQ":
            self._remember_all(elem, keyword)
            elem.value = Sequence([self._dummy_item(here)])
            self.ctx.count(keyword, vr, "dummy value")
            return
        if elem.value in (None, "", b""):
            elem.value = DUMMY_VALUES.get(vr, DUMMY_TEXT) if vr in DUMMY_VALUES and DUMMY_VALUES[vr] else elem.value
            self.ctx.count(keyword, vr, "dummy value")
            return
        self.ctx.remember(elem.value, keyword, vr)
        if vr in NUMERIC_VRS:
            elem.value = 0
        elif vr in BINARY_VRS:
            elem.value = b""
        else:
            elem.value = DUMMY_VALUES.get(vr, DUMMY_TEXT)
            self.ctx.written.add(str(elem.value))
        self.ctx.count(keyword, vr, "dummy value")

    def _dummy_item(self, here: Tuple[int, ...]) -> Dataset:
        """One item of a dummy sequence: its Type 1 attributes with dummy values, Type 2 empty."""
        item = Dataset()
        spec = self.iod.node(here) if self.iod is not None else None
        for child_tag, child in sorted((spec.children or {}).items()) if spec is not None else ():
            level = child.type[0]
            if level not in "12" or child.type.endswith("C"):
                continue
            try:
                vr = dictionary_VR(child_tag)
            except KeyError:
                continue
            if vr == "SQ":
                item.add_new(child_tag, vr, Sequence([self._dummy_item(here + (child_tag,))]) if level == "1" else Sequence([]))
            elif level == "1":
                value = self.ctx.key.uid("dummy", self.profile.uid_root, self.ctx.pseudonym) if vr == "UI" else DUMMY_VALUES.get(vr, 0 if vr in NUMERIC_VRS else DUMMY_TEXT)
                item.add_new(child_tag, vr, value)
                self.ctx.written.add(str(value))
            else:
                item.add_new(child_tag, vr, None)
        return item

    def _uid(self, elem: DataElement, keyword: str, here: Tuple[int, ...]) -> None:
        vr = vr_text(elem.VR)
        if vr == "SQ":
            self.walk(elem.value, here)
            return
        if elem.value in (None, "", b""):
            return
        if vr != "UI":  # a UID action on another VR: nothing to map, the value goes
            self.ctx.remember(elem.value, keyword, vr)
            elem.value = None
            self.ctx.count(keyword, vr, "emptied")
            return
        values = [str(v) for v in (elem.value if type(elem.value).__name__ == "MultiValue" else [elem.value])]
        if all(is_registered_uid(v, keyword) for v in values):
            return
        new = [v if is_registered_uid(v, keyword) else self.ctx.key.uid(v, self.profile.uid_root, self.ctx.pseudonym) for v in values]
        for old in values:
            self.ctx.remember(old, keyword, "UI")
        elem.value = new if len(new) > 1 else new[0]
        self.ctx.written.update(new)
        self.ctx.count(keyword, "UI", "UID replaced")

    def _shift(self, ds: Dataset, elem: DataElement, keyword: str, originals: Dict[str, str], type_: Optional[str]) -> None:
        vr = vr_text(elem.VR)
        if elem.value in (None, ""):
            return
        values = [str(v) for v in (elem.value if type(elem.value).__name__ == "MultiValue" else [elem.value])]
        days, seconds = self.ctx.date_offset_days, self.ctx.time_offset_s
        partner = originals.get(_partner(keyword) or "", "") if len(values) == 1 else ""
        shifted: List[Optional[str]] = []
        for value in values:
            if vr == "DA":
                carry = 0
                if partner:  # the date of a date+time pair moves with the time's carry
                    moved = shift_time(partner, seconds)
                    carry = moved[1] if moved is not None else 0
                shifted.append(shift_date(value, days + carry))
            elif vr == "TM":
                moved = shift_time(value, seconds)
                shifted.append(None if moved is None else moved[0])
            else:
                shifted.append(shift_datetime(value, days, seconds))
        for v in values:
            self.ctx.remember(v, keyword, vr)
        if any(s is None for s in shifted):
            self.ctx.notes.append(f"{keyword or elem.tag}: value is not a valid {vr}; removed or replaced by its Type")
            action = _by_type("Z/D", type_)
            if action is Action.REMOVE:
                del ds[elem.tag]
            else:
                elem.value = DUMMY_VALUES[vr] if action is Action.DUMMY else None
            self.ctx.count(keyword, vr, "invalid date or time " + ("removed" if action is Action.REMOVE else "replaced"))
            return
        elem.value = shifted if len(shifted) > 1 else shifted[0]
        self.ctx.written.update(s for s in shifted if s)
        self.ctx.count(keyword, vr, "time shifted" if vr == "TM" else "date shifted")

    def _characteristic(self, ds: Dataset, elem: DataElement, keyword: str) -> None:
        text = str(elem.value or "").strip()
        if keyword == "PatientAge" and text:
            written = None if valid_age(text) else normalized_age(text)
            if written is not None:
                text = elem.value = written
                self.ctx.written.add(text)
                self.ctx.notes.append("PatientAge: written in the AS form nnnD/W/M/Y")
            if not valid_age(text):
                del ds[elem.tag]
                self.ctx.count(keyword, elem.VR, "invalid value removed")
                self.ctx.notes.append("PatientAge: not a valid AS value; removed")
                return
            capped = cap_age(text, self.profile.max_age_years)
            if capped != text:
                elem.value = capped
                self.ctx.count(keyword, elem.VR, "age capped")
                return
        if keyword == "PatientSex" and not valid_sex(text) and valid_sex(text.upper()):
            elem.value = text.upper()  # "m" -> "M"
            self.ctx.count(keyword, elem.VR, "kept (patient characteristic, upper case)")
            return
        if keyword == "PatientSex" and not valid_sex(text):
            elem.value = None
            self.ctx.count(keyword, elem.VR, "invalid value emptied")
            self.ctx.notes.append("PatientSex: not M, F or O; emptied")
            return
        self.ctx.count(keyword, elem.VR, "kept (patient characteristic)")

    def _standardize(self, ds: Dataset, elem: DataElement, keyword: str, type_: Optional[str]) -> None:
        if elem.value not in (None, ""):
            value = self.profile.standardize(keyword, str(elem.value))
            if value is not None:
                elem.value = value
                self.ctx.written.add(value)
                self.ctx.count(keyword, elem.VR, "standardized")
                return
        rule = rule_for(int(elem.tag))
        action = _by_type(rule.basic if rule is not None else "X", type_)
        if action is Action.REMOVE:
            del ds[elem.tag]
            self.ctx.count(keyword, elem.VR, "removed")
        elif elem.value not in (None, ""):
            elem.value = DUMMY_VALUES.get(elem.VR, DUMMY_TEXT) if action is Action.DUMMY else None
            self.ctx.count(keyword, elem.VR, "emptied" if action is Action.EMPTY else "dummy value")


def _vr_of(ds: Dataset, tag) -> str:
    """The VR of an element without decoding its value: as stored, or from the dictionary when
    the file does not say (implicit VR) or says UN (pydicom decodes such an element by its
    dictionary VR)."""
    vr = vr_text(getattr(ds.get_item(tag), "VR", None))
    if vr and vr != "UN":
        return vr
    try:
        known = dictionary_VR(tag)
    except KeyError:
        return vr or "UN"
    return known.split(" or ")[0]


def _sequence_in_binary(ds: Dataset, tag) -> bool:
    """A standard sequence stored with VR OB or OW: its items cannot be walked."""
    vr = vr_text(getattr(ds.get_item(tag), "VR", None))
    if vr not in ("OB", "OW"):
        return False
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False


def _code_item(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def deidentify_header(ds: Dataset, ctx: HeaderContext) -> None:
    """De-identify ``ds`` (and its file meta) in place.  Pixel data is not touched.

    The steps are public so that the raw-layout rewriter (:mod:`visceral.deid.rawpath`), which
    hands pydicom only the elements that need work, applies exactly the same ones.
    """
    if not ctx.sop_class:
        ctx.sop_class = str(ds.get("SOPClassUID", "") or "")
    prepare_header(ds, ctx)
    transform_elements(ds, ctx)
    set_identity(ds, ctx)
    ds.update(type2_additions([int(t) for t in ds.keys()], ctx))
    if getattr(ds, "file_meta", None) is not None:
        deidentify_meta(ds.file_meta, ds, ctx)


#: The attributes :func:`prepare_header` reads (the raw rewriter gives it just these).
PREPARE_KEYWORDS = ("PatientName", "PatientID", "PatientAge", "PatientBirthDate", "StudyDate", "AcquisitionDate", "ContentDate", "SeriesDate")


def prepare_header(ds: Dataset, ctx: HeaderContext) -> None:
    """Before the walk: derive a missing Patient's Age; remember the patient's name and ID."""
    profile = ctx.profile
    if "PatientAge" in profile.keep_patient_characteristics and not str(ds.get("PatientAge", "") or "").strip():
        on = next((str(ds.get(k, "") or "") for k in ("StudyDate", "AcquisitionDate", "ContentDate", "SeriesDate") if ds.get(k)), "")
        age = derive_age(str(ds.get("PatientBirthDate", "") or ""), on, profile.max_age_years)
        if age:
            ds.PatientAge = age
            ctx.count("PatientAge", "AS", "age derived from birth and study dates")
    ctx.remember(ds.get("PatientName"), "PatientName", "PN")
    ctx.remember(ds.get("PatientID"), "PatientID", "LO")
    ctx.remember(ds.get("PatientBirthDate"), "PatientBirthDate", "DA")


def transform_elements(ds: Dataset, ctx: HeaderContext) -> None:
    """The actions on every element of ``ds`` (recursively)."""
    _Transformer(ctx).walk(ds)


def transform_element(ds: Dataset, tag: int, ctx: HeaderContext, originals: Optional[Dict[str, str]] = None) -> None:
    """The action on the top-level element ``tag`` of ``ds`` alone.  Its outcome depends only on
    that element, its date/time partner in ``originals`` and the context's key, profile, offsets
    and SOP class."""
    _Transformer(ctx).walk_one(ds, tag, (), originals)


def date_time_originals(ds: Dataset) -> Dict[str, str]:
    """keyword -> value of the top-level dates and times of ``ds`` (the partners of date/time pairs)."""
    return _Transformer._date_time_originals(ds)


def type2_additions(present: Iterable[int], ctx: HeaderContext) -> Dataset:
    """The Type 2 attributes of the IOD's Mandatory modules the output lacks, empty (the input lacked
    them: an output carries them, one conformance error less and no information more)."""
    from visceral.deid.conformance import missing_type2

    added = Dataset()
    for tag in missing_type2(ctx.sop_class, present) if ctx.sop_class else ():
        try:
            vr = dictionary_VR(tag).split(" or ")[0]
        except KeyError:
            continue
        added.add_new(tag, vr, Sequence([]) if vr == "SQ" else None)
        ctx.count(keyword_for_tag(tag) or "", vr, "added empty (Type 2 in this IOD)")
    return added


def set_identity(ds: Dataset, ctx: HeaderContext) -> None:
    """After the walk: pseudonym, Patient Identity Removed and the de-identification method."""
    profile = ctx.profile
    # Identity: the pseudonym is the dummy value of Patient's Name and Patient ID (both Type 2).
    ds.PatientName = ctx.pseudonym
    ds.PatientID = ctx.pseudonym
    ctx.written.add(ctx.pseudonym)
    ds.PatientIdentityRemoved = "YES"
    options = ["basic"]
    if profile.dates == "shift":
        options.append("dates")
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
    if profile.keep_patient_characteristics:
        options.append("patient")
    if profile.descriptions:
        options.append("descriptors")
    ds.DeidentificationMethod = f"Visceral {__version__}; profile {profile.name}"[:64]
    ds.DeidentificationMethodCodeSequence = Sequence([_code_item(*_METHOD_CODES[o]) for o in options])
    ctx.written.update({str(ds.DeidentificationMethod), profile.name})


#: File meta attributes that name the sending and receiving systems (removed).
META_REMOVED = ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle", "ReceivingApplicationEntityTitle",
                "PrivateInformationCreatorUID", "PrivateInformation", "SourcePresentationAddress",
                "SendingPresentationAddress", "ReceivingPresentationAddress")


#: The implementation that writes the released files (PS3.10 7.1: Implementation Class UID and Version
#: Name name the writer of the file, not the scanner that wrote the input).
IMPLEMENTATION_CLASS_UID = "2.25.176072622033569051240395089011931702810"
IMPLEMENTATION_VERSION_NAME = f"VISCERAL_{__version__}"[:16]


def deidentify_meta(meta: FileMetaDataset, ds: Dataset, ctx: HeaderContext) -> None:
    """File meta (PS3.10): instance UID follows the data set; AE titles and private information go;
    the implementation is Visceral's."""
    for keyword in META_REMOVED:
        if keyword in meta:
            del meta[keyword]
            ctx.count(keyword, "AE", "removed")
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ctx.written.update({IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME})
    for tag in [t for t in meta.keys() if Tag(t).is_private]:
        del meta[tag]
        ctx.count("", "", "removed", private=True)
    if "SOPInstanceUID" in ds:
        follow_instance_uid(meta, str(ds.SOPInstanceUID), ctx)


def follow_instance_uid(meta: FileMetaDataset, uid: str, ctx: HeaderContext) -> None:
    """Media Storage SOP Instance UID := the data set's (new) SOP Instance UID."""
    if "MediaStorageSOPInstanceUID" in meta:
        ctx.remember(str(meta.MediaStorageSOPInstanceUID), "MediaStorageSOPInstanceUID", "UI")
    meta.MediaStorageSOPInstanceUID = uid
