"""The subject's identifiers in every form, found and cleaned in what the release keeps.

The header rules remove or replace every attribute that *is* identifying (Annex E, the IOD
allowlist, the VR rules for names, UIDs and dates).  Identity also hides in attributes that are
kept: a name in a Code Meaning, a birth date written ``03.02.1965`` in a comment-like field, a
Patient ID in a Sequence Name.  This module

1. builds an :class:`Identifiers` set from the *identifying* attributes' original values only
   (names and each of their parts, IDs with and without leading zeros, dates, original UIDs,
   institution names and addresses) -- never from descriptions, device names or private values,
   which are generic words;
2. finds them in kept text in any form: name parts in any order, separator or case, IDs as whole
   tokens, dates in any common notation (``19650203``, ``1965-02-03``, ``03.02.1965``,
   ``3 Feb 1965``, ``February 3, 1965``...), in the decoded text of the file's character set;
3. cleans a kept text value by overwriting each occurrence with ``X`` of the same length (valid for
   every text VR, CS included, and within its maximum length);
4. searches the bytes of the output for what decoding cannot reach (binary values, pixel data,
   UTF-16 text): a hit there cannot be cleaned and refuses the file.

The policy is in ``docs/DEIDENTIFICATION.md`` ("Identity in kept attributes").
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import FrozenSet, Iterable, List, Optional, Set, Tuple

import numpy as np

__all__ = ["Identifiers", "IdentifierKind", "identifier_kind", "find_in_text", "clean_text", "find_in_bytes", "Hit", "clean_dataset",
           "found_in_kept_text", "printable_runs", "TEXT_VRS"]


class IdentifierKind:
    """What an original value is, for the search (plain string constants, stable in reports)."""

    NAME = "name"
    ID = "id"
    DATE = "date"
    TIME = "time"
    UID = "uid"
    TEXT = "text"


#: Attributes whose values identify a person or a place (besides every PN, DA/DT, TM and UI value).
IDENTIFYING_KEYWORDS = frozenset((
    "PatientID", "OtherPatientIDs", "AccessionNumber", "MedicalRecordLocator", "PatientTelephoneNumbers",
    "PatientTelecomInformation", "MilitaryRank", "BranchOfService", "PersonTelephoneNumbers", "PersonTelecomInformation",
    "ReferringPhysicianTelephoneNumbers", "ReferringPhysicianTelecomInformation", "RequestedProcedureID", "PerformedProcedureStepID",
    "ScheduledProcedureStepID", "FillerOrderNumberImagingServiceRequest", "PlacerOrderNumberImagingServiceRequest", "AdmissionID",
    "ServiceEpisodeID", "IssuerOfAdmissionID", "StudyID", "PatientBirthDateInAlternativeCalendar",
    "PatientDeathDateInAlternativeCalendar", "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID",
))
_TEXT_KEYWORDS = frozenset(("InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "PatientAddress", "PersonAddress",
                            "ReferringPhysicianAddress", "ResponsibleOrganization", "RegionOfResidence"))


def identifier_kind(keyword: str, vr: str) -> Optional[str]:
    """The kind of identifier an original value of attribute ``keyword`` (VR ``vr``) is, or
    ``None`` when the value is not identifying (descriptions, device and technical values)."""
    if vr == "PN":
        return IdentifierKind.NAME
    if vr in ("DA", "DT"):
        return IdentifierKind.DATE
    if vr == "TM":
        return IdentifierKind.TIME
    if vr == "UI":
        return IdentifierKind.UID
    if keyword in _TEXT_KEYWORDS:
        return IdentifierKind.TEXT
    if keyword in IDENTIFYING_KEYWORDS:
        return IdentifierKind.ID
    return None


# -- forms ------------------------------------------------------------------------------------------------
_NAME_SPLIT = re.compile(r"[\^=,;/\\\s.\-_'()\u2019`]+")
#: Shortest name part searched: ASCII parts of 1-2 letters (initials, "Li") occur in every text;
#: parts in other alphabets from two letters; CJK parts from one character (a family name often is one).
MIN_ASCII_PART = 3
MIN_OTHER_PART = 2
#: Shortest ID searched as a token (a one-character ID is any digit of any number).
MIN_ID = 2
#: Shortest identifier searched in pixel data (shorter runs occur in 8-bit pixels by chance).
MIN_BYTES = 4
#: Words of institution names and addresses that identify nothing by themselves.
_GENERIC_WORDS = frozenset((
    "university", "universitat", "universitaet", "universitatsklinikum", "universitaetsklinikum", "hospital", "hopital", "ospedale",
    "hospitals", "klinikum", "klinik", "kliniken", "clinic", "clinics", "clinica", "clinique", "medical", "medicine", "medizin",
    "center", "centre", "centrum", "zentrum", "radiology", "radiologie", "radiologia", "imaging", "institute", "institut", "instituto",
    "department", "abteilung", "general", "national", "regional", "street", "strasse", "straße", "road", "avenue", "health",
    "healthcare", "research", "foundation", "sciences", "science", "school", "college", "faculty", "diagnostic", "diagnostics",
    "private", "public", "group", "services", "service", "system", "systems", "saint", "sankt",
    # modalities written as acronyms ("MRI Zentrum"): not an institution's own word
    "mri", "mrt", "nmr", "pet", "spect", "irm", "rmn", "tac",
    # manufacturers: an institution named after its scanner vendor must not blank the Manufacturer
    "siemens", "philips", "toshiba", "canon", "hitachi", "fujifilm", "agfa", "esaote", "healthineers", "electric", "samsung",
    "neusoft", "mindray", "shimadzu", "carestream", "hologic", "bruker", "hyperfine", "united", "imaging",
))
#: Words of medicine and anatomy: not identifiers in the name of an institution that has a word of its own
#: beside them (the "ICM Institute for Brain and Spinal Cord" must not blank the study's code meaning "Brain");
#: in a name of such words alone ("Heart and Vascular Institute") they are all that tells it apart, and stay.
_FIELD_WORDS = frozenset((
    "brain", "spine", "spinal", "heart", "cancer", "cardiac", "cardiology", "cardiovascular", "neurology", "neurological",
    "neuroscience", "neurosciences", "neurosurgery", "orthopaedic", "orthopedic", "orthopaedics", "orthopedics", "oncology",
    "pediatric", "paediatric", "pediatrics", "paediatrics", "surgery", "surgical", "rehabilitation", "psychiatric", "psychiatry",
    "chest", "thorax", "abdomen", "pelvis", "breast", "kidney", "liver", "lungs", "prostate", "shoulder", "vascular", "stroke",
    "trauma", "emergency", "nuclear", "molecular", "magnetic", "resonance", "tomography", "scanner", "scanning",
))
#: Words that join the words of a name.
_JOINING_WORDS = frozenset(("and", "for", "the", "of", "de", "du", "des", "la", "le", "les", "der", "die", "das", "und", "fur", "für",
                            "van", "von", "del", "della", "di", "da", "do", "at", "in", "on", "et", "y", "e"))
_TRANSLITERATION = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "æ": "ae", "ø": "oe", "å": "aa"})
#: Letters that Unicode decomposition leaves alone, as an ASCII keyboard writes them.
_PLAIN_LETTERS = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ı": "i", "ħ": "h", "Ħ": "H", "ŧ": "t",
                                "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D"})


def _fold(text: str) -> str:
    """Case- and compatibility-folded text (``ß`` -> ``ss``, full-width -> ASCII)."""
    return unicodedata.normalize("NFKC", text).casefold()


def _ascii_forms(text: str) -> Set[str]:
    """Latin text as a search would meet it typed on an ASCII keyboard: accents dropped
    (``Müller`` -> ``Muller``) and German transliteration (``Mueller``)."""
    forms = {text.translate(_TRANSLITERATION)}
    forms.add("".join(c for c in unicodedata.normalize("NFKD", text.translate(_PLAIN_LETTERS)) if not unicodedata.combining(c)))
    return {f for f in forms if f != text}


def _long_enough(part: str) -> bool:
    return len(part) >= (MIN_ASCII_PART if part.isascii() else MIN_OTHER_PART if _has_spaces_script(part) else 1)


def _name_forms(component: str) -> Tuple[Set[str], Set[str]]:
    """A name component (``O'Brien-Smith^Siobhan``): (whole forms: the whole in the order written and
    given name first, separators free; parts: every part and every run of adjacent parts written
    together -- ``OBrien``, ``vanderBerg``, ``OBrienSmith``)."""
    tokens = [t for t in _NAME_SPLIT.split(component) if t]
    whole: Set[str] = set()
    if len(" ".join(tokens)) >= MIN_ASCII_PART:
        whole.add(" ".join(tokens))
        groups = [[t for t in _NAME_SPLIT.split(g) if t] for g in component.split("^")]
        if len(groups) >= 2 and all(groups[:2]):  # family^given -> given family (ANNAKOWALSKI)
            whole.add(" ".join(groups[1] + groups[0]))
    forms: Set[str] = set()
    for i in range(len(tokens)):
        for j in range(i + 1, len(tokens) + 1):
            joined = "".join(tokens[i:j])
            if j - i == 1 and not _long_enough(joined):
                continue
            if j - i > 1 and len(joined) < 4:
                continue
            forms.add(joined)
    for form in list(forms):
        forms |= _ascii_forms(form)
    for form in list(whole):
        whole |= _ascii_forms(form)
    return whole, forms - whole


def _id_forms(value: str) -> Set[str]:
    """An ID as written, without separators, without leading zeros, and each group of 5+ digits
    (``AB-0000007`` -> ``AB0000007``; ``+49 6221 567890`` -> ``496221567890``, ``567890``)."""
    value = value.strip()
    forms = {value} if len(value) >= MIN_ID else set()
    compact = re.sub(r"[\s\-./()+_]", "", value)
    if compact != value and len(compact) >= 4:
        forms.add(compact)
    if re.fullmatch(r"[\d\s\-./()+]+", value):  # a number written in groups (a telephone number): each group
        for number in re.findall(r"\d+", value):
            if len(number) >= 5:
                forms.add(number)
    if value.isdigit() and len(value.lstrip("0")) >= 3 and value.lstrip("0") != value:
        forms.add(value.lstrip("0"))
    prefix_digits = re.fullmatch(r"([A-Za-z]*)[\s\-./_]*0*(\d+)", value)
    if prefix_digits and len(prefix_digits.group(1) + prefix_digits.group(2)) >= 3:
        forms.add(prefix_digits.group(1) + prefix_digits.group(2))
    return forms


def _text_forms(value: str) -> Tuple[Set[str], Set[str]]:
    """An institution name or address: (the whole, unless it is one generic word such as a vendor's
    name; each distinctive word: 5+ letters, not a generic word such as *hospital* or *street*, nor a word
    of medicine or anatomy when the name has a word of its own beside them)."""
    whole = " ".join(value.split())
    strong = {whole} if len(whole) >= MIN_BYTES and _fold(whole) not in _GENERIC_WORDS else set()

    def generic(word: str, within: FrozenSet[str]) -> bool:
        return _fold(word) in within or _fold(word.translate(_TRANSLITERATION)) in within

    words = re.findall(r"[^\W\d_]+", value)
    # Its own words: 5+ letters, or an acronym of 3+ capitals (ICM, UCLA), not generic: they are searched and
    # cleaned.  Beside one of them its field's words are not; a name without one keeps them (in "Heart Center
    # Bonn" the words "Heart" is all that a search can hold on to: "Bonn" is too short to search for).
    own = [w for w in words if (len(w) >= 5 or (len(w) >= 3 and w.isupper())) and not generic(w, _GENERIC_WORDS | _FIELD_WORDS | _JOINING_WORDS)]
    parts: Set[str] = set()
    for word in own + ([w for w in words if len(w) >= 5 and generic(w, _FIELD_WORDS)] if not own else []):
        parts.add(word)
        parts |= _ascii_forms(word)
    return strong, parts - strong


def _parse_da(text: str) -> Optional[_dt.date]:
    """A DA value (``YYYYMMDD``), or a date written in any notation :func:`_dates_in` knows."""
    text = text.strip()
    if len(text) >= 8 and text[:8].isdigit():
        try:
            return _dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except ValueError:
            pass
    candidates = [dates for _, _, dates in _dates_in(text)]
    return candidates[0][0] if candidates and len(candidates[0]) == 1 else None


@dataclass(frozen=True)
class Identifiers:
    """The identifiers of one subject (with its staff and institution), ready to search."""

    #: folded whole names, IDs and texts, searched where no letter or digit of the same kind touches them
    words: FrozenSet[str] = frozenset()
    #: folded name parts and institution words: searched likewise, but not in the scanner's own
    #: identity (Manufacturer, model, software: a surname may be a scanner's name, "Vida", "Galan")
    parts: FrozenSet[str] = frozenset()
    #: folded parts in scripts without word spaces (CJK), searched as plain substrings
    substrings: FrozenSet[str] = frozenset()
    dates: FrozenSet[_dt.date] = frozenset()
    #: original times of day with seconds (``HHMMSS``)
    times: FrozenSet[str] = frozenset()
    uids: FrozenSet[str] = frozenset()

    @classmethod
    def build(cls, originals: Iterable[Tuple[str, str]], written: Iterable[str] = ()) -> "Identifiers":
        """From (value, kind) pairs (see :func:`identifier_kind`).  Values the de-identification
        wrote itself (pseudonym, dummies, shifted dates and times) are not identifiers, whatever the
        input held."""
        written = {w.strip() for w in written if w}
        skip = {_fold(w) for w in written}
        words: Set[str] = set()
        parts: Set[str] = set()
        subs: Set[str] = set()
        dates: Set[_dt.date] = set()
        times: Set[str] = set()
        uids: Set[str] = set()
        for value, kind in originals:
            value = str(value).strip()
            if not value or value in written:
                continue
            if kind == IdentifierKind.DATE:
                found = _parse_da(value)
                if found is not None:
                    dates.add(found)
                if len(value) > 8 and value[:8].isdigit():  # a date-time: its time too
                    kind, value = IdentifierKind.TIME, value[8:]
                else:
                    continue
            if kind == IdentifierKind.TIME:
                digits = value.replace(":", "").split(".")[0]
                if len(digits) >= 6 and digits[:6].isdigit() and digits[:6] not in _PLACEHOLDER_TIMES:
                    times.add(digits[:6])
                continue
            if kind == IdentifierKind.UID:
                if len(value) >= 8 and not value.startswith("1.2.840.10008."):
                    uids.add(value)
                continue
            if kind == IdentifierKind.NAME:
                strong, weak = set(), set()
                for component in value.split("="):
                    whole, pieces = _name_forms(component)
                    strong |= whole
                    weak |= pieces
            elif kind == IdentifierKind.ID:
                strong, weak = _id_forms(value), set()
            else:
                strong, weak = _text_forms(value)
            for form in strong:
                (words if _has_spaces_script(form) else subs).add(_fold(form))
            for form in weak:
                (parts if _has_spaces_script(form) else subs).add(_fold(form))
        dates = {d for d in dates if d.strftime("%Y%m%d") not in written}
        times -= written
        return cls(frozenset(words - skip), frozenset(parts - skip - words), frozenset(subs - skip), frozenset(dates), frozenset(times),
                   frozenset(uids))

    def __bool__(self) -> bool:
        return bool(self.words or self.parts or self.substrings or self.dates or self.times or self.uids)


def _has_spaces_script(text: str) -> bool:
    """True for scripts that separate words by spaces (Latin, Greek, Cyrillic, Arabic, Hebrew...)."""
    return not any(unicodedata.name(c, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")) for c in text)


@dataclass(frozen=True)
class Hit:
    """One identifier found: where in the text, and what kind (the value itself is not kept)."""

    start: int
    end: int
    kind: str


@lru_cache(maxsize=256)
def _word_pattern(words: FrozenSet[str], subs: FrozenSet[str]) -> Optional["re.Pattern[str]"]:
    """One expression for the words and substrings of a subject (the same for every file of a
    series: compiled once); where a match may stand is decided by :func:`_bounded`."""
    alternatives = [re.escape(w).replace(r"\ ", r"[\s\^,;./\\_\-]*") for w in sorted(words | subs, key=len, reverse=True)]
    if not alternatives:
        return None
    return re.compile("|".join(alternatives))


def _kind(c: str) -> str:
    return "digit" if c.isdigit() else "letter" if c.isalpha() else "other"


def _bounded(text: str, folded: str, start: int, end: int, substring: bool) -> bool:
    """A match stands on its own: the character before and after is not of the same kind (a letter
    next to a letter, a digit next to a digit), or a case change marks a word (``JohnDoe``)."""
    if substring:
        return True
    first, last = _kind(folded[start]), _kind(folded[end - 1])
    left = (start == 0 or first == "other" or _kind(folded[start - 1]) != first
            or (text[start - 1].islower() and text[start].isupper()))
    right = (end == len(folded) or last == "other" or _kind(folded[end]) != last
             or (text[end - 1].islower() and text[end].isupper()))
    return left and right


_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "mär": 3, "maer": 3, "apr": 4, "may": 5, "mai": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "oct": 10, "okt": 10, "nov": 11, "dec": 12, "dez": 12,
}
_MONTH = r"(jan|feb|mär|maer|mar|apr|may|mai|jun|jul|aug|sep|oct|okt|nov|dec|dez)[a-zä]*\.?"
_DATE_PATTERNS = (
    # 19650203, 1965-02-03, 1965.02.03, 1965/02/03 (year first)
    (re.compile(r"(?<!\d)(\d{4})([-./ ]?)(\d{1,2})\2(\d{1,2})(?!\d)"), "ymd"),
    # 03.02.1965, 3-2-1965, 02/03/1965, 03021965 (day or month first)
    (re.compile(r"(?<!\d)(\d{1,2})([-./ ]?)(\d{1,2})\2(\d{4})(?!\d)"), "dmy"),
    # 03.02.65, 650203, 030265 (two-digit years)
    (re.compile(r"(?<!\d)(\d{2})([-./]?)(\d{2})\2(\d{2})(?!\d)"), "short"),
    # 3 Feb 1965, 03-Feb-1965, 3. Februar 1965
    (re.compile(rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th)?[\s.\-/]*{_MONTH}[\s.,\-/]*(\d{{4}})(?!\d)", re.IGNORECASE), "dMy"),
    # Feb 3, 1965, February 03 1965
    (re.compile(rf"(?<![a-z]){_MONTH}[\s.\-/]*(\d{{1,2}})(?:st|nd|rd|th)?[\s.,\-/]*(\d{{4}})(?!\d)", re.IGNORECASE), "Mdy"),
    # 1965 Feb 03, 1965-Feb-3
    (re.compile(rf"(?<!\d)(\d{{4}})[\s.,\-/]*{_MONTH}[\s.\-/]*(\d{{1,2}})(?!\d)", re.IGNORECASE), "yMd"),
)


def _month(name: str) -> int:
    return _MONTHS.get(name[:3].lower(), 0) or _MONTHS.get(name[:4].lower(), 0)


def _dates_in(text: str) -> Iterable[Tuple[int, int, List[_dt.date]]]:
    """(start, end, candidate dates) of every date-like run in ``text``."""
    for pattern, order in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            g = match.groups()
            if order == "ymd":
                candidates = [(int(g[0]), int(g[2]), int(g[3]))]
            elif order == "dmy":
                candidates = [(int(g[3]), int(g[2]), int(g[0])), (int(g[3]), int(g[0]), int(g[2]))]
            elif order == "short":
                a, b, c = int(g[0]), int(g[2]), int(g[3])
                candidates = [(century + y, m, d) for century in (1900, 2000) for y, m, d in ((a, b, c), (c, b, a), (c, a, b))]
            elif order == "dMy":
                candidates = [(int(g[2]), _month(g[1]), int(g[0]))]
            elif order == "Mdy":
                candidates = [(int(g[2]), _month(g[0]), int(g[1]))]
            else:
                candidates = [(int(g[0]), _month(g[1]), int(g[2]))]
            dates = []
            for y, m, d in candidates:
                try:
                    dates.append(_dt.date(y, m, d))
                except ValueError:
                    continue
            if dates:
                yield match.start(), match.end(), dates


_TIME_IN_TEXT = re.compile(r"(?<![\d.])(\d{2})([:.h]?)(\d{2})\2(\d{2})(?!\d)")
#: Times that are placeholders, not instants (midnight, noon).
_PLACEHOLDER_TIMES = frozenset(("000000", "120000", "235959"))


#: Shortest number searched in raw bytes: binary values and numbers rendered as text hold short ones by chance.
MIN_BYTES_NUMBER = 5


#: Attributes naming the scanner: name parts and institution words are not searched there.
DEVICE_ATTRIBUTES = frozenset(("Manufacturer", "ManufacturerModelName", "SoftwareVersions"))


def find_in_text(text: str, ids: Identifiers, min_length: int = 1, min_number: int = 3, parts: bool = True) -> List[Hit]:
    """Every identifier of ``ids`` in ``text`` (decoded), in any of the forms the module lists
    (hits shorter than ``min_length`` characters, numbers shorter than ``min_number`` digits, and
    name parts when not ``parts``, are not reported)."""
    if not text or not ids:
        return []
    hits: List[Hit] = []
    folded = _fold(text)
    # NFKC case folding may change the length (ß -> ss): search the folded text and map back only
    # when lengths agree; otherwise report the whole value.
    same_length = len(folded) == len(text)
    pattern = _word_pattern(ids.words | ids.parts if parts else ids.words, ids.substrings if parts else frozenset())
    if pattern is not None:
        base = text if same_length else folded
        for match in pattern.finditer(folded):
            found = match.group(0)
            if len(found) < min_length or (found.isdigit() and len(found) < min_number):
                continue
            if _bounded(base, folded, match.start(), match.end(), match.group(0) in ids.substrings):
                if not same_length:
                    return [Hit(0, len(text), "identifier")]
                hits.append(Hit(match.start(), match.end(), "identifier"))
    for uid in ids.uids:
        start = text.find(uid)
        while start >= 0:
            end = start + len(uid)
            if not text[end:end + 1].isdigit() and not (start and (text[start - 1].isdigit() or text[start - 1] == ".")):
                hits.append(Hit(start, end, IdentifierKind.UID))
            start = text.find(uid, start + 1)
    if (ids.dates or ids.times) and any(c.isdigit() for c in text):
        if ids.dates:
            for start, end, candidates in _dates_in(text):
                if any(d in ids.dates for d in candidates):
                    hits.append(Hit(start, end, IdentifierKind.DATE))
        for match in _TIME_IN_TEXT.finditer(text) if ids.times else ():
            if match.group(1) + match.group(3) + match.group(4) in ids.times:
                hits.append(Hit(match.start(), match.end(), IdentifierKind.TIME))
    return hits


def clean_text(text: str, hits: List[Hit]) -> str:
    """``text`` with every hit overwritten by ``X`` (the same length: valid for every text VR)."""
    chars = list(text)
    for hit in hits:
        for i in range(hit.start, min(hit.end, len(chars))):
            if not chars[i].isspace():
                chars[i] = "X"
    return "".join(chars)


# -- bytes ------------------------------------------------------------------------------------------------
def _encoded_forms(ids: Identifiers, encodings: Tuple[str, ...]) -> List[bytes]:
    """Non-ASCII identifiers encoded in the declared character sets, UTF-8 and UTF-16 (searched
    exactly in the header bytes: decoding cannot reach a binary value)."""
    forms: Set[bytes] = set()
    for text in set(ids.words) | set(ids.parts) | set(ids.substrings):
        if text.isascii():
            continue
        for variant in {text, text.upper(), text.title()}:
            for encoding in encodings + ("utf-8", "utf-16-le", "utf-16-be"):
                try:
                    encoded = variant.encode(encoding)
                except (UnicodeEncodeError, LookupError):
                    continue
                if encoding == "iso2022_jp":  # the escapes around a run are not part of the name
                    encoded = encoded.replace(b"\x1b$B", b"").replace(b"\x1b(B", b"")
                if len(encoded) >= MIN_BYTES:
                    forms.add(encoded)
    return sorted(forms)


_UTF16_LE = re.compile(rb"(?:[\x20-\x7e]\x00){4,}")
_UTF16_BE = re.compile(rb"(?:\x00[\x20-\x7e]){4,}")


def _utf16_text(data: bytes) -> str:
    """The UTF-16 runs of ASCII characters in ``data`` (either byte order), as text, one per line."""
    runs = [m.group(0).decode("utf-16-le") for m in _UTF16_LE.finditer(data)]
    runs += [m.group(0).decode("utf-16-be") for m in _UTF16_BE.finditer(data)]
    return "\n".join(runs)


def printable_runs(data: bytes, min_length: int = MIN_BYTES) -> bytes:
    """Every run of at least ``min_length`` printable ASCII bytes of ``data``, joined by NUL.

    Pixel data rarely holds such runs: a run of 4 or more bytes holds two odd-offset printable bytes
    two apart, so only the bytes up to the last such pair are searched (for 16-bit images below
    8192, just the header): ~0.2 ms for a 512x512 CT slice.
    """
    size = len(data)
    if min_length >= 4 and size > 8192:
        words = np.frombuffer(data, dtype=np.uint16, count=size // 2)
        high = (words - np.uint16(0x2000)) < np.uint16(0x5F00)  # the odd-offset byte is printable
        pairs = np.flatnonzero(high[:-1] & high[1:])
        # every run holds such a pair (odd bytes 2j+1, 2j+3) and ends before byte 2j+5 of the last pair j
        size = min(size, 2 * int(pairs[-1]) + 5) if pairs.size else 0
    arr = np.frombuffer(data, dtype=np.uint8, count=size)
    if arr.size < min_length:
        return b""
    printable = (arr - np.uint8(0x20)) < np.uint8(0x5F)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], printable.view(np.int8), [0]))))
    starts, ends = edges[0::2], edges[1::2]
    keep = (ends - starts) >= min_length
    return b"\0".join(data[a:b] for a, b in zip(starts[keep].tolist(), ends[keep].tolist()))


def find_in_bytes(data: bytes, ids: Identifiers, encodings: Tuple[str, ...] = ("latin-1",),
                  header_end: Optional[int] = None, decoded: Iterable[str] = ()) -> List[str]:
    """Where identifiers of ``ids`` occur in the raw bytes of an output file: ``["pixel data", ...]``.

    The printable runs of every byte, read as text, get the search of :func:`find_in_text` (every
    form, any case; in pixel data only hits of 4+ characters); UTF-16 runs of the header likewise;
    non-ASCII identifiers encoded in the declared character sets, UTF-8 and UTF-16 are searched
    exactly in the header bytes.
    """
    if not ids:
        return []
    header_end = len(data) if header_end is None else header_end
    header = _masked(data[:header_end], decoded)
    where: List[str] = []
    if find_in_text(printable_runs(header, 3).decode("latin-1").replace("\0", "\n"), ids, min_number=MIN_BYTES_NUMBER):
        where.append("header bytes")
    if find_in_text(_utf16_text(header), ids, min_number=MIN_BYTES_NUMBER):
        where.append("header bytes (UTF-16 text)")
    if any(form in header for form in _encoded_forms(ids, encodings)):
        where.append("header bytes (non-ASCII text)")
    if header_end < len(data):
        pixels = printable_runs(data[header_end:]).decode("latin-1").replace("\0", "\n")
        if find_in_text(pixels, ids, min_length=MIN_BYTES, min_number=MIN_BYTES_NUMBER):
            where.append("pixel data")
    return where


def _masked(header: bytes, decoded: Iterable[str]) -> bytes:
    """``header`` with the bytes of every decoded value blanked: a value read as text was searched as
    text (or is a number, a code, a date, a UID: no identifier by its VR); the byte search is for what
    decoding cannot reach (binary values, text in other encodings)."""
    masked = bytearray(header)
    for value in sorted({v for v in decoded if len(v) >= 3 and v.isascii()}, key=len, reverse=True):
        encoded = value.encode("ascii")
        start = masked.find(encoded)
        while start >= 0:
            masked[start:start + len(encoded)] = bytes(len(encoded))
            start = masked.find(encoded, start + len(encoded))
    return bytes(masked)


#: Value representations of kept text that is searched and cleaned.  Not: numbers, dates, times and
#: UIDs (the header rules shift or replace them) and code strings (CS: controlled terms such as a body
#: part, a patient position, a character set -- a surname that is also a term stays a term there).
TEXT_VRS = frozenset(("AE", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"))


@lru_cache(maxsize=None)
def _dictionary_vr(tag: int) -> str:
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag)
    except KeyError:
        return ""


def found_in_kept_text(decoded: Iterable[Tuple[str, int, str]], ids: Identifiers) -> bool:
    """True when an identifier occurs in one of the (keyword, tag, text) values of a text VR."""
    if not ids:
        return False
    texts = [text for keyword, tag, text in decoded if not tag >> 16 & 1 and _dictionary_vr(tag) in TEXT_VRS and keyword not in DEVICE_ATTRIBUTES]
    device = [text for keyword, tag, text in decoded if keyword in DEVICE_ATTRIBUTES]
    # one pass each; a newline is no letter: words stay apart
    return bool(find_in_text("\n".join(texts), ids)) or bool(find_in_text("\n".join(device), ids, parts=False))


def clean_dataset(ds: object, ids: Identifiers) -> List[str]:
    """Overwrite every identifier of ``ids`` in the kept text of ``ds`` (nested items included);
    returns ``"Keyword (kind)"`` for each value cleaned."""
    if not ids:
        return []
    cleaned: List[str] = []
    meta = getattr(ds, "file_meta", None)
    elements = list(ds.iterall()) + (list(meta.iterall()) if meta is not None else [])  # type: ignore[attr-defined]
    for elem in elements:
        if elem.tag.is_private or elem.VR not in TEXT_VRS or elem.value in (None, ""):
            continue
        multi = isinstance(elem.value, (list, tuple)) or type(elem.value).__name__ == "MultiValue"
        values = [str(v) for v in (elem.value if multi else [elem.value])]
        changed = False
        kinds = set()
        for i, text in enumerate(values):
            hits = find_in_text(text, ids, parts=elem.keyword not in DEVICE_ATTRIBUTES)
            if hits:
                values[i] = clean_text(text, hits)
                kinds.update(h.kind for h in hits)
                changed = True
        if changed:
            elem.value = values if multi else values[0]
            cleaned.append(f"{elem.keyword or elem.tag} ({', '.join(sorted(kinds))})")
    return cleaned
