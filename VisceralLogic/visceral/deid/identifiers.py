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
    UID = "uid"
    TEXT = "text"


#: Attributes whose values identify a person or a place (besides every PN, DA/DT and UI value).
IDENTIFYING_KEYWORDS = frozenset((
    "PatientID", "OtherPatientIDs", "AccessionNumber", "MedicalRecordLocator", "PatientAddress", "PatientTelephoneNumbers",
    "PatientTelecomInformation", "RegionOfResidence", "MilitaryRank", "BranchOfService", "PatientInsurancePlanCodeSequence",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "PersonAddress", "PersonTelephoneNumbers",
    "PersonTelecomInformation", "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers", "ReferringPhysicianTelecomInformation",
    "RequestedProcedureID", "PerformedProcedureStepID", "ScheduledProcedureStepID", "FillerOrderNumberImagingServiceRequest",
    "PlacerOrderNumberImagingServiceRequest", "AdmissionID", "ServiceEpisodeID", "ResponsibleOrganization", "IssuerOfAdmissionID",
    "StudyID", "OtherPatientIDsSequence", "PatientPrimaryLanguageCodeSequence", "ConfidentialityConstraintOnPatientDataDescription",
    "OperatorIdentificationSequence", "PersonIdentificationCodeSequence", "InstitutionCodeSequence",
    "PatientBirthDateInAlternativeCalendar", "PatientDeathDateInAlternativeCalendar",
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
    if vr == "UI":
        return IdentifierKind.UID
    if keyword in _TEXT_KEYWORDS:
        return IdentifierKind.TEXT
    if keyword in IDENTIFYING_KEYWORDS:
        return IdentifierKind.ID
    return None


# -- forms ------------------------------------------------------------------------------------------------
_NAME_SPLIT = re.compile(r"[\^=,;/\\\s.\-_'()]+")
#: Shortest name part searched: ASCII parts of 1-2 letters (initials, "Li") occur in every text;
#: parts in other alphabets from two letters; CJK parts from one character (a family name often is one).
MIN_ASCII_PART = 3
MIN_OTHER_PART = 2
#: Shortest ID searched as a token (a one-character ID is any digit of any number).
MIN_ID = 2
#: Shortest identifier searched in the raw bytes (shorter runs occur in pixel data by chance).
MIN_BYTES = 4


def _fold(text: str) -> str:
    """Case- and compatibility-folded text (``ß`` -> ``ss``, full-width -> ASCII)."""
    return unicodedata.normalize("NFKC", text).casefold()


def _name_parts(name: str) -> List[str]:
    parts = []
    for part in _NAME_SPLIT.split(name):
        part = part.strip()
        if not part:
            continue
        if len(part) >= (MIN_ASCII_PART if part.isascii() else MIN_OTHER_PART if _has_spaces_script(part) else 1):
            parts.append(part)
    return parts


def _id_forms(value: str) -> List[str]:
    value = value.strip()
    forms = [value] if len(value) >= MIN_ID else []
    stripped = value.lstrip("0")
    if value.isdigit() and stripped != value and len(stripped) >= 3:
        forms.append(stripped)
    digits = re.sub(r"[\s\-./]", "", value)
    if digits != value and digits.isdigit() and len(digits) >= 5:
        forms.append(digits)
    return forms


def _parse_da(text: str) -> Optional[_dt.date]:
    text = text.strip()[:8]
    if len(text) == 8 and text.isdigit():
        try:
            return _dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class Identifiers:
    """The identifiers of one file's subject, staff and institution, ready to search."""

    #: folded words and phrases searched with letter boundaries (names, their parts, IDs, texts)
    words: FrozenSet[str] = frozenset()
    #: folded parts in scripts without word spaces (CJK), searched as plain substrings
    substrings: FrozenSet[str] = frozenset()
    dates: FrozenSet[_dt.date] = frozenset()
    uids: FrozenSet[str] = frozenset()

    @classmethod
    def build(cls, originals: Iterable[Tuple[str, str]], written: Iterable[str] = ()) -> "Identifiers":
        """From (value, kind) pairs (see :func:`identifier_kind`).  Values the de-identification
        wrote itself (pseudonym, dummies) are not identifiers, whatever the input held."""
        skip = {_fold(w) for w in written if w}
        words: Set[str] = set()
        subs: Set[str] = set()
        dates: Set[_dt.date] = set()
        uids: Set[str] = set()
        for value, kind in originals:
            value = str(value).strip()
            if not value:
                continue
            if kind == IdentifierKind.DATE:
                found = _parse_da(value)
                if found is not None:
                    dates.add(found)
                continue
            if kind == IdentifierKind.UID:
                if len(value) >= 8 and not value.startswith("1.2.840.10008."):
                    uids.add(value)
                continue
            if kind == IdentifierKind.NAME:
                for component in value.split("="):
                    whole = " ".join(p for p in _NAME_SPLIT.split(component) if p)
                    if len(whole) >= MIN_ASCII_PART:
                        words.add(_fold(whole))
                    for part in _name_parts(component):
                        (words if part.isascii() or _has_spaces_script(part) else subs).add(_fold(part))
            elif kind == IdentifierKind.ID:
                for form in _id_forms(value):
                    words.add(_fold(form))
            elif len(value) >= MIN_BYTES:
                words.add(_fold(" ".join(value.split())))
        words -= skip
        subs -= skip
        return cls(frozenset(words), frozenset(subs), frozenset(dates), frozenset(uids))

    def __bool__(self) -> bool:
        return bool(self.words or self.substrings or self.dates or self.uids)


def _has_spaces_script(text: str) -> bool:
    """True for scripts that separate words by spaces (Latin, Greek, Cyrillic, Arabic, Hebrew...)."""
    return not any(unicodedata.name(c, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")) for c in text)


@dataclass(frozen=True)
class Hit:
    """One identifier found: where in the text, and what kind (the value itself is not kept)."""

    start: int
    end: int
    kind: str


_LETTER_OR_DIGIT = r"[^\W_]"


@lru_cache(maxsize=256)
def _word_pattern(words: FrozenSet[str], subs: FrozenSet[str]) -> Optional["re.Pattern[str]"]:
    """One expression for the words and substrings of a subject (the same for every file of a
    series: compiled once); UIDs, different in every file, are searched as plain substrings."""
    alternatives = []
    if words:
        body = "|".join(re.escape(w).replace(r"\ ", r"[\s\^,;./\\_\-]*") for w in sorted(words, key=len, reverse=True))
        alternatives.append(rf"(?<!{_LETTER_OR_DIGIT})(?:{body})(?!{_LETTER_OR_DIGIT})")
    if subs:
        alternatives.append("|".join(re.escape(s) for s in sorted(subs, key=len, reverse=True)))
    if not alternatives:
        return None
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.IGNORECASE)


_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "mär": 3, "maer": 3, "apr": 4, "may": 5, "mai": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "oct": 10, "okt": 10, "nov": 11, "dec": 12, "dez": 12,
}
_MONTH = r"(jan|feb|mär|maer|mar|apr|may|mai|jun|jul|aug|sep|oct|okt|nov|dec|dez)[a-zä]*\.?"
_DATE_PATTERNS = (
    # 19650203, 1965-02-03, 1965.02.03, 1965/02/03 (year first)
    (re.compile(r"(?<!\d)(\d{4})([-./]?)(\d{1,2})\2(\d{1,2})(?!\d)"), ("y", "m", "d")),
    # 03.02.1965, 3-2-1965, 02/03/1965 (day or month first)
    (re.compile(r"(?<!\d)(\d{1,2})([-./])(\d{1,2})\2(\d{4})(?!\d)"), ("a", "b", "y")),
    # 3 Feb 1965, 03-Feb-1965, 3. Februar 1965
    (re.compile(rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th)?[\s.\-/]*{_MONTH}[\s.,\-/]*(\d{{4}})(?!\d)", re.IGNORECASE), ("d", "M", "y")),
    # Feb 3, 1965, February 03 1965
    (re.compile(rf"(?<![a-z]){_MONTH}[\s.\-/]*(\d{{1,2}})(?:st|nd|rd|th)?[\s.,\-/]*(\d{{4}})(?!\d)", re.IGNORECASE), ("M", "d", "y")),
)


def _dates_in(text: str) -> Iterable[Tuple[int, int, List[_dt.date]]]:
    """(start, end, candidate dates) of every date-like run in ``text``."""
    for pattern, order in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            groups = [g for i, g in enumerate(match.groups()) if not (order[0] in "ya" and i == 1)]  # drop the separator group
            if order == ("y", "m", "d"):
                y, m, d = int(groups[0]), int(groups[1]), int(groups[2])
                candidates = [(y, m, d)]
            elif order == ("a", "b", "y"):
                a, b, y = int(groups[0]), int(groups[1]), int(groups[2])
                candidates = [(y, b, a), (y, a, b)]
            elif order == ("d", "M", "y"):
                candidates = [(int(groups[2]), _MONTHS.get(groups[1][:3].lower(), 0) or _MONTHS.get(groups[1][:4].lower(), 0), int(groups[0]))]
            else:
                candidates = [(int(groups[2]), _MONTHS.get(groups[0][:3].lower(), 0) or _MONTHS.get(groups[0][:4].lower(), 0), int(groups[1]))]
            dates = []
            for y, m, d in candidates:
                try:
                    dates.append(_dt.date(y, m, d))
                except ValueError:
                    continue
            if dates:
                yield match.start(), match.end(), dates


def find_in_text(text: str, ids: Identifiers) -> List[Hit]:
    """Every identifier of ``ids`` in ``text`` (decoded), in any of the forms the module lists."""
    if not text or not ids:
        return []
    hits: List[Hit] = []
    folded = _fold(text)
    # NFKC case folding may change the length (ß -> ss): search the folded text and map back only
    # when lengths agree; otherwise report the whole value.
    same_length = len(folded) == len(text)
    pattern = _word_pattern(ids.words, ids.substrings)
    if pattern is not None:
        for match in pattern.finditer(folded):
            if same_length:
                hits.append(Hit(match.start(), match.end(), "identifier"))
            else:
                return [Hit(0, len(text), "identifier")]
    for uid in ids.uids:
        start = text.find(uid)
        while start >= 0:
            end = start + len(uid)
            if not text[end:end + 1].isdigit() and not (start and (text[start - 1].isdigit() or text[start - 1] == ".")):
                hits.append(Hit(start, end, IdentifierKind.UID))
            start = text.find(uid, start + 1)
    if ids.dates and any(c.isdigit() for c in text):
        for start, end, candidates in _dates_in(text):
            if any(d in ids.dates for d in candidates):
                hits.append(Hit(start, end, IdentifierKind.DATE))
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
def _byte_forms(ids: Identifiers, encodings: Tuple[str, ...]) -> Tuple[List[bytes], List[bytes]]:
    """(ASCII forms, searched case-insensitively in printable runs; other encoded forms, searched exactly)."""
    ascii_forms: Set[bytes] = set()
    other: Set[bytes] = set()
    texts = set(ids.words) | set(ids.substrings)
    for d in ids.dates:
        texts.add(d.strftime("%Y%m%d"))
    for text in texts:
        if len(text) < MIN_BYTES:
            continue
        if text.isascii():
            ascii_forms.add(text.lower().encode("ascii"))
            for variant in {text, text.upper(), text.lower(), text.title()}:
                other.add(variant.encode("utf-16-le"))
                other.add(variant.encode("utf-16-be"))
        else:
            for variant in {text, text.upper(), text.lower(), text.title()}:
                for encoding in encodings + ("utf-8", "utf-16-le", "utf-16-be"):
                    try:
                        encoded = variant.encode(encoding)
                    except (UnicodeEncodeError, LookupError):
                        continue
                    if len(encoded) >= MIN_BYTES:
                        other.add(encoded)
    return sorted(ascii_forms), sorted(other)


@lru_cache(maxsize=256)
def _bytes_pattern(forms: Tuple[bytes, ...]) -> "re.Pattern[bytes]":
    """ASCII forms as one expression over lower-cased printable runs: a word or number only when
    no letter or digit touches it (as in :func:`find_in_text`)."""
    body = b"|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.compile(rb"(?<![a-z0-9])(?:" + body + rb")(?![a-z0-9])")


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
                  header_end: Optional[int] = None) -> List[str]:
    """Where identifiers of ``ids`` occur in the raw bytes of an output file: ``["pixel data", ...]``.

    ASCII forms are searched case-insensitively in the printable runs of every byte (pixel data
    included: a JPEG comment, burned-in text stored as bytes); other encodings (the declared
    character set, UTF-8, UTF-16) and UTF-16 forms of ASCII text in the header bytes.
    """
    if not ids:
        return []
    header_end = len(data) if header_end is None else header_end
    ascii_forms, other_forms = _byte_forms(ids, encodings)
    where: List[str] = []
    header_runs = printable_runs(data[:header_end])
    pixel_runs = printable_runs(data[header_end:]) if header_end < len(data) else b""
    if ascii_forms:
        pattern = _bytes_pattern(tuple(ascii_forms))
        if pattern.search(header_runs.lower()):
            where.append("header bytes")
        if pixel_runs and pattern.search(pixel_runs.lower()):
            where.append("pixel data")
    for uid in sorted(ids.uids):
        needle = uid.encode("ascii", "ignore")
        for runs, place in ((header_runs, "header bytes"), (pixel_runs, "pixel data")):
            if place not in where and re.search(rb"(?<![0-9.])" + re.escape(needle) + rb"(?![0-9])", runs):
                where.append(place)
    header = data[:header_end]
    for form in other_forms:
        if form in header:
            where.append("header bytes (non-ASCII or UTF-16 text)")
            break
    return where


#: Value representations of kept text that is searched and cleaned (numbers, dates, times and UIDs
#: are not free text: the header rules shift or replace them).
TEXT_VRS = frozenset(("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"))


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
    texts = [text for _, tag, text in decoded if not tag >> 16 & 1 and _dictionary_vr(tag) in TEXT_VRS]
    return bool(find_in_text("\n".join(texts), ids))  # one pass; a newline is no letter: words stay apart


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
            hits = find_in_text(text, ids)
            if hits:
                values[i] = clean_text(text, hits)
                kinds.update(h.kind for h in hits)
                changed = True
        if changed:
            elem.value = values if multi else values[0]
            cleaned.append(f"{elem.keyword or elem.tag} ({', '.join(sorted(kinds))})")
    return cleaned
