"""The header transformation: PS3.15 Annex E actions, applied recursively, with the profile's options.

For every attribute of the data set, of every item of every sequence, and of the file meta:

- private attributes (odd groups), group lengths -> removed;
- attributes the profile empties (Scan Options, Protocol Name...) -> zero length;
- attributes of Annex E Table E.1-1 -> the table's action, refined by the options:

  ====== ===============================================================================
  code   action
  ====== ===============================================================================
  K      keep
  X      remove
  Z      zero length (the attribute stays: it may be Type 2)
  D      dummy value valid for the VR (the attribute may be Type 1)
  U      new UID, the same for the same original UID everywhere (keyed hash)
  X/Z    zero length;   X/D, Z/D, X/Z/D -> dummy (safe for every IOD Type)
  X/Z/U* sequence of references: kept, the UIDs inside replaced
  ====== ===============================================================================

  Options: dates (DA, DT) of the Retain Longitudinal Temporal Information option are shifted
  by the patient's offset (times are kept); attributes of Retain Patient Characteristics listed
  in the profile are kept (age capped); descriptors of Clean Descriptors listed in the
  profile's ``descriptions`` are standardized, the rest removed as the basic profile says;
- other attributes -> kept; sequences not in the table are walked.

Every original value removed or changed is collected for the leak scan, and every action is
counted per attribute class for the audit report.  Pixel data is never touched.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, Iterable, List, Optional, Set

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.dataelem import DataElement
from pydicom.sequence import Sequence

from visceral import __version__
from visceral.deid.identity import SecretKey
from visceral.deid.profile import Profile
from visceral.deid.tables import AnnexERule, rule_for

__all__ = ["HeaderContext", "decide", "deidentify_header", "prepare_header", "transform_elements", "transform_element", "set_identity", "deidentify_meta", "follow_instance_uid", "patient_key_of", "derive_age", "cap_age", "shift_date", "shift_datetime", "DUMMY_TEXT", "DUMMY_VALUES"]

DUMMY_TEXT = "ANONYMIZED"
DUMMY_NAME = "ANONYMOUS"
#: Dummy value per VR (valid for the VR; PS3.5 6.2).
DUMMY_VALUES = _DUMMIES = {
    "PN": DUMMY_NAME, "LO": DUMMY_TEXT, "SH": DUMMY_TEXT, "LT": DUMMY_TEXT, "ST": DUMMY_TEXT, "UT": DUMMY_TEXT,
    "UC": DUMMY_TEXT, "CS": DUMMY_TEXT, "AE": DUMMY_TEXT, "DA": "19000101", "TM": "000000", "DT": "19000101000000",
    "AS": "000Y", "IS": "0", "DS": "0", "UR": "",
}
_NUMERIC_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"}
_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
_STRING_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}

#: Codes of CID 7050 "De-identification Method" (PS3.16), scheme DCM.
_METHOD_CODES = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "patient": ("113108", "Retain Patient Characteristics Option"),
    "descriptors": ("113105", "Clean Descriptors Option"),
}


@lru_cache(maxsize=4096)
def attribute_class(keyword: str, vr: str, private: bool = False) -> str:
    """The audit-report class of an attribute (how actions are grouped for a reader)."""
    if private:
        return "private"
    if vr == "UI":
        return "UIDs"
    if vr in ("DA", "DT", "TM"):
        return "dates and times"
    k = keyword.lower()
    if k.startswith("patient") or "birth" in k or "ethnic" in k or "otherpatient" in k or "medical" in k:
        return "patient"
    if any(w in k for w in ("physician", "operator", "performing", "requesting", "referring", "reviewer", "author", "person", "verifying")):
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
    #: original value -> strict (an identity value: never excused, even when a kept attribute holds it too)
    originals: Dict[str, bool] = field(default_factory=dict)
    written: Set[str] = field(default_factory=set)
    counts: Counter = field(default_factory=Counter)
    notes: List[str] = field(default_factory=list)

    def count(self, keyword: str, vr: str, action: str, private: bool = False) -> None:
        self.counts[(attribute_class(keyword, vr, private), action)] += 1

    def remember(self, value: object, keyword: str = "", vr: str = "", private: bool = False) -> None:
        """Collect an original value for the leak scan (person names also by their parts).

        Values of descriptive attributes (descriptions, device, "other") are *lenient*: the scan
        excuses them when an attribute the profile keeps holds the same whole value (a removed
        Protocol Name "ABDOMEN" is no leak when Body Part Examined says ABDOMEN).  Everything
        else -- patient, staff, dates, UIDs, private values -- is *strict*.
        """
        strict = attribute_class(keyword, vr, private) not in ("descriptions", "other", "institution and device")
        for text in ((value,) if type(value) is str else _texts(value)):
            text = text.strip()
            if not text:
                continue
            self.originals[text] = self.originals.get(text, False) or strict
            if vr == "PN":
                for part in re.split(r"[\^ =]+", text):
                    if len(part) >= 3:
                        self.originals[part] = True


def _texts(value: object) -> Iterable[str]:
    if value is None:
        return
    if isinstance(value, (bytes, bytearray)):
        for run in re.findall(rb"[\x20-\x7e]{6,}", bytes(value)):
            if re.search(rb"[A-Za-z]", run):
                yield run.decode("ascii")
        return
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        for v in value:
            yield from _texts(v)
        return
    if isinstance(value, (int, float)):
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


def _parse_date(text: str) -> Optional[_dt.date]:
    text = text.strip()[:8]
    if len(text) == 8 and text.isdigit() and text.isascii():  # the common case, without strptime (same result)
        try:
            return _dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            return None
    try:
        return _dt.datetime.strptime(text.strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def derive_age(birth: str, on: str, max_years: int = 89) -> Optional[str]:
    """Patient's Age (AS) from birth date and study date (DA strings), capped at ``090Y``."""
    b, d = _parse_date(birth or ""), _parse_date(on or "")
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


def cap_age(text: str, max_years: int) -> str:
    match = re.fullmatch(r"(\d{3})([DWMY])", text.strip())
    if match and match.group(2) == "Y" and int(match.group(1)) > max_years:
        return "090Y"
    return text


def shift_date(text: str, days: int) -> Optional[str]:
    """Shift a DA value (or range ``A-B``) by ``days``; ``None`` when it is not a date."""
    parts = text.strip().split("-")
    out = []
    for part in parts:
        if not part:
            out.append("")
            continue
        date = _parse_date(part)
        if date is None or len(part.strip()) != 8:
            return None
        try:
            out.append((date + _dt.timedelta(days=days)).strftime("%Y%m%d"))
        except OverflowError:
            return None
    return "-".join(out)


def shift_datetime(text: str, days: int) -> Optional[str]:
    """Shift a DT value by ``days`` (time of day and time-zone suffix kept)."""
    text = text.strip()
    if len(text) < 8:
        if re.fullmatch(r"\d{4}(\d{2})?", text):  # year or year+month precision
            year = int(text[:4]) + round(days / 365.25)
            return f"{year:04d}{text[4:]}"
        return None
    shifted = shift_date(text[:8], days)
    return None if shifted is None else shifted + text[8:]


def _vr_of(ds: Dataset, tag) -> str:
    """The VR of an element without decoding its value (implicit VR: from the dictionary)."""
    raw = ds.get_item(tag)
    vr = getattr(raw, "VR", None)
    if vr:
        return str(vr)
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def decide(keyword: str, vr: str, rule: AnnexERule, profile: Profile) -> str:
    """Which of the profile's options decides the action on an attribute Annex E lists:
    ``characteristic`` (Retain Patient Characteristics), ``shift`` (a date or date-time of Retain
    Longitudinal Temporal Information), ``time`` (a time of day under that option: kept),
    ``standardize`` (Clean Descriptors; the basic action when no controlled value applies) or
    ``basic`` (the basic profile's code)."""
    if keyword in profile.keep_patient_characteristics and rule.option("rtnPatCharsOpt"):
        return "characteristic"
    if profile.dates == "shift" and rule.option("rtnLongModifDatesOpt"):
        if vr in ("DA", "DT"):
            return "shift"
        if vr == "TM":
            return "time"
    if rule.option("cleanDescOpt") and keyword in profile.descriptions and vr != "SQ":
        return "standardize"
    return "basic"


class _Transformer:
    def __init__(self, ctx: HeaderContext) -> None:
        self.ctx = ctx
        self.profile = ctx.profile
        self.empty_tags = ctx.profile.empty_tags

    # -- helpers ----------------------------------------------------------------------------------
    def _remove(self, ds: Dataset, elem: DataElement, keyword: str, private: bool = False) -> None:
        self._remember_all(elem, keyword)
        del ds[elem.tag]
        self.ctx.count(keyword, elem.VR, "removed", private)

    def _remember_all(self, elem: DataElement, keyword: str) -> None:
        if elem.VR == "SQ":
            for item in elem.value or []:
                for sub in item.iterall():
                    if sub.VR != "SQ":
                        self.ctx.remember(sub.value, sub.keyword or keyword, sub.VR, sub.tag.is_private)
        else:
            self.ctx.remember(elem.value, keyword, elem.VR)

    def _empty(self, elem: DataElement, keyword: str) -> None:
        self._remember_all(elem, keyword)
        elem.value = Sequence([]) if elem.VR == "SQ" else (b"" if elem.VR in _BINARY_VRS else None)
        self.ctx.count(keyword, elem.VR, "emptied")

    def _dummy(self, ds: Dataset, elem: DataElement, keyword: str) -> None:
        vr = elem.VR
        if vr == "SQ":
            self.walk(elem.value)
            return
        if vr == "UI":
            self._uid(elem, keyword)
            return
        if elem.value in (None, "", b"") or (not isinstance(elem.value, (str, bytes)) and hasattr(elem.value, "__len__") and len(elem.value) == 0):
            self.ctx.count(keyword, vr, "emptied")  # nothing to hide; stays empty
            return
        self.ctx.remember(elem.value, keyword, vr)
        if vr in _NUMERIC_VRS:
            elem.value = 0
        elif vr in _BINARY_VRS:
            elem.value = b""
        else:
            elem.value = _DUMMIES.get(vr, DUMMY_TEXT)
            self.ctx.written.add(str(elem.value))
        self.ctx.count(keyword, vr, "dummy value")

    def _uid(self, elem: DataElement, keyword: str) -> None:
        if elem.VR != "UI" or elem.value in (None, ""):
            if elem.VR == "SQ":
                self.walk(elem.value)
            elif elem.value not in (None, ""):
                self._dummy_non_uid(elem, keyword)
            return
        values = list(elem.value) if type(elem.value).__name__ == "MultiValue" else [elem.value]
        new = [self.ctx.key.uid(str(v), self.profile.uid_root) for v in values]
        for old in values:
            self.ctx.remember(str(old), keyword, "UI")
        elem.value = new if len(new) > 1 else new[0]
        self.ctx.written.update(new)
        self.ctx.count(keyword, "UI", "UID replaced")

    def _dummy_non_uid(self, elem: DataElement, keyword: str) -> None:
        self.ctx.remember(elem.value, keyword, elem.VR)
        elem.value = None
        self.ctx.count(keyword, elem.VR, "emptied")

    def _shift(self, ds: Dataset, elem: DataElement, keyword: str, rule: AnnexERule) -> None:
        if elem.value in (None, ""):
            return
        shifter = shift_date if elem.VR == "DA" else shift_datetime
        values = list(elem.value) if type(elem.value).__name__ == "MultiValue" else [elem.value]
        shifted = [shifter(str(v), self.ctx.date_offset_days) for v in values]
        for v in values:
            self.ctx.remember(str(v), keyword, elem.VR)
        if any(s is None for s in shifted):
            self._apply_basic(ds, elem, keyword, rule, shift_failed=True)
            self.ctx.notes.append(f"{keyword or elem.tag}: value is not a valid {elem.VR}; handled as the basic profile says")
            return
        elem.value = shifted if len(shifted) > 1 else shifted[0]
        self.ctx.written.update(shifted)
        self.ctx.count(keyword, elem.VR, "date shifted")

    # -- the walk ---------------------------------------------------------------------------------
    def walk(self, ds: Dataset) -> None:
        if isinstance(ds, Sequence):
            for item in ds:
                self.walk(item)
            return
        for tag in list(ds.keys()):
            self.walk_one(ds, tag)

    def walk_one(self, ds: Dataset, tag) -> None:
        """The action on the element ``tag`` of ``ds`` (depends on that element alone)."""
        tag = Tag(tag)
        if tag.is_private:
            # Removed without decoding: a malformed private creator or odd private block
            # must never stop the file; its raw bytes still feed the leak scan.
            raw = ds.get_item(tag)
            try:
                self.ctx.remember(raw.value if isinstance(raw.value, (bytes, bytearray)) else ds[tag].value, private=True)
            except Exception:  # noqa: BLE001 - any decoding problem: the bytes are dropped anyway
                self.ctx.notes.append(f"malformed private element {tag} removed")
            del ds[tag]
            self.ctx.count(f"private {tag}", "", "removed", private=True)
            return
        if tag.element == 0:  # group length (retired)
            del ds[tag]
            return
        rule = rule_for(int(tag))
        if rule is None and tag not in self.empty_tags:
            # Not an identifying attribute: left as read (not even decoded), unless a sequence to walk.
            if _vr_of(ds, tag) == "SQ":
                self.walk(ds[tag].value)
            return
        elem = ds[tag]
        keyword = elem.keyword or ""
        if tag in self.empty_tags:
            if elem.value not in (None, "", b""):
                self._empty(elem, keyword)
            return
        self._apply(ds, elem, keyword, rule)

    def _apply(self, ds: Dataset, elem: DataElement, keyword: str, rule: AnnexERule) -> None:
        profile = self.profile
        decision = decide(keyword, elem.VR, rule, profile)
        if decision == "characteristic":
            if keyword == "PatientAge" and elem.value:
                capped = cap_age(str(elem.value), profile.max_age_years)
                if capped != str(elem.value):
                    self.ctx.remember(elem.value, keyword, elem.VR)
                    elem.value = capped
                    self.ctx.count(keyword, elem.VR, "age capped")
                    return
            self.ctx.count(keyword, elem.VR, "kept (patient characteristic)")
            return
        if decision == "shift":
            self._shift(ds, elem, keyword, rule)
            return
        if decision == "time":
            self.ctx.count(keyword, elem.VR, "kept (time of day)")
            return
        if decision == "standardize":
            if elem.value not in (None, ""):
                value = profile.standardize(keyword, str(elem.value))
                if value is not None:
                    self.ctx.remember(elem.value, keyword, elem.VR)
                    elem.value = value
                    self.ctx.written.add(value)
                    self.ctx.count(keyword, elem.VR, "standardized")
                    return
        self._apply_basic(ds, elem, keyword, rule)

    def _apply_basic(self, ds: Dataset, elem: DataElement, keyword: str, rule: AnnexERule, shift_failed: bool = False) -> None:
        code = rule.basic
        if code == "K":
            return
        if code == "U":
            self._uid(elem, keyword)
        elif code == "X/Z/U*":
            if elem.VR == "SQ":
                self.walk(elem.value)
            else:
                self._uid(elem, keyword)
        elif code == "X":
            self._remove(ds, elem, keyword)
        elif code in ("Z", "X/Z"):
            if elem.value not in (None, "", b"") or elem.VR == "SQ":
                self._empty(elem, keyword)
        elif code in ("D", "X/D", "Z/D", "X/Z/D"):
            if shift_failed and elem.VR in ("DA", "DT"):
                elem.value = _DUMMIES[elem.VR]
                self.ctx.written.add(elem.value)
                self.ctx.count(keyword, elem.VR, "dummy value")
            else:
                self._dummy(ds, elem, keyword)
        else:  # an unknown code: the safest action that keeps the IOD valid
            self._empty(elem, keyword)


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
    prepare_header(ds, ctx)
    transform_elements(ds, ctx)
    set_identity(ds, ctx)
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


def transform_elements(ds: Dataset, ctx: HeaderContext) -> None:
    """The Annex E actions on every element of ``ds`` (recursively)."""
    _Transformer(ctx).walk(ds)


def transform_element(ds: Dataset, tag: int, ctx: HeaderContext) -> None:
    """The Annex E action on the top-level element ``tag`` of ``ds`` alone.  Its outcome depends
    only on that element and on the context's key, profile and date offset."""
    _Transformer(ctx).walk_one(ds, tag)


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


def deidentify_meta(meta: FileMetaDataset, ds: Dataset, ctx: HeaderContext) -> None:
    """File meta (PS3.10): instance UID follows the data set; AE titles and private information go."""
    for keyword in META_REMOVED:
        if keyword in meta:
            ctx.remember(meta[keyword].value, keyword, "AE")
            del meta[keyword]
            ctx.count(keyword, "AE", "removed")
    if "SOPInstanceUID" in ds:
        follow_instance_uid(meta, str(ds.SOPInstanceUID), ctx)


def follow_instance_uid(meta: FileMetaDataset, uid: str, ctx: HeaderContext) -> None:
    """Media Storage SOP Instance UID := the data set's (new) SOP Instance UID."""
    if "MediaStorageSOPInstanceUID" in meta:
        ctx.remember(meta.MediaStorageSOPInstanceUID, "MediaStorageSOPInstanceUID", "UI")
    meta.MediaStorageSOPInstanceUID = uid
