"""The header rewrite on a file's raw layout: the same de-identification, without decoding it all.

:func:`visceral.deid.rules.deidentify_header` decodes and re-encodes every element with pydicom;
most of a clinical header (geometry, acquisition parameters) and all of the pixel data are left as
they are, so decoding them is wasted work.  :class:`RawRewriter` instead reads the element layout
with :mod:`visceral.deid.rawdicom` (no value decoded) and gives each top-level element one of
three treatments:

1. **copied** as bytes: every element no rule touches (not private, not in Annex E, not emptied by
   the profile, not a sequence, not a standard element stored as UN) -- pixel data included;
2. **on bytes** (:meth:`RawRewriter._fast`): private elements of defined length, and Annex E or
   emptied attributes with a string VR and a printable ASCII value -- the walk's decision
   (:func:`~visceral.deid.rules.decide`) and the rules' own value operations, on the text;
3. **through pydicom**: everything else (sequences, non-ASCII text, numbers, invalid dates...), in
   one batch per file, by the very walk of the reference path
   (:func:`~visceral.deid.rules.transform_element`, one element at a time, each with its own record).

An element's outcome depends only on its bytes, the character set and the patient's date offset
(the key and the profile are fixed per rewriter), so outcomes are memoized: a series repeats its
patient, study, institution and device values in every file, and from the third sighting of an
element on it costs a dictionary look-up.  The memo keeps what the step remembered for the leak
scan and counted for the report, so every file's audit record is whole.  ``Testing/test_deid_rawpath.py``
proves that the rewrite writes the bytes, and keeps the record, of the pydicom path.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from typing import Dict, List, Optional, Tuple

from pydicom.datadict import dictionary_has_tag, dictionary_keyword, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.tag import Tag

from visceral.deid.profile import Profile
from visceral.deid.qa import decoded_values
from visceral.deid.rawdicom import MEDIA_STORAGE_SOP_INSTANCE_UID, PIXEL_DATA, SOP_INSTANCE_UID, Element, RawFile, parse_elements
from visceral.deid.rules import (
    DUMMY_TEXT, DUMMY_VALUES, PREPARE_KEYWORDS, HeaderContext, cap_age, decide, deidentify_meta, prepare_header, set_identity,
    shift_date, shift_datetime, transform_element,
)
from visceral.deid.tables import rule_for

__all__ = ["RawRewriter", "Rewritten"]

_CHARSET = 0x00080005
_PATIENT_AGE = 0x00101010
_SHORT = struct.Struct("<HH2sH")  # explicit VR, 2-byte length
_LONG = struct.Struct("<HH2sHL")  # explicit VR, reserved, 4-byte length
_IMPLICIT = struct.Struct("<HHL")
#: String VRs :meth:`RawRewriter._fast` handles on bytes (a printable ASCII value means the same in
#: every character set: ISO 2022 escapes are control bytes).
_FAST_VRS = frozenset(("AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"))
_LONG_STRING_VRS = frozenset(("UC", "UR", "UT"))
_PRINTABLE = bytes(range(0x20, 0x7F))
_TEXT_BYTES = _PRINTABLE + b"\t\n\f\r"  # LT, ST, UT may hold line breaks
_PREPARE_TAGS = frozenset(tag_for_keyword(k) for k in PREPARE_KEYWORDS)
_STRING_VRS = frozenset(("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"))
_SINGLE_VALUED = frozenset(("LT", "ST", "UT", "UR"))  # never split at backslashes
_NUMBERS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
#: Memo entries kept per process before the memo starts over (a few MiB).
MEMO_LIMIT = 50_000

Decoded = Tuple[str, int, str]
#: A new top-level element: its bytes and its decoded values (nested ones included).
Piece = Tuple[bytes, Tuple[Decoded, ...]]


class _Outcome:
    """What one step did to one element: its new bytes and its audit record (ready to merge)."""

    __slots__ = ("out", "strict", "lenient", "written", "counts", "notes")

    def __init__(self, out: Dict[int, Piece], sub: HeaderContext) -> None:
        self.out = out  # top-level tag -> (encoded element, its decoded values)
        self.strict = {text: True for text, strict in sub.originals.items() if strict}
        self.lenient = tuple(text for text, strict in sub.originals.items() if not strict)
        self.written = tuple(sub.written)
        self.counts = dict(sub.counts)
        self.notes = tuple(sub.notes)

    def merge_into(self, ctx: HeaderContext) -> None:
        """Add this record to the file's (as the step would have on the file's own context)."""
        ctx.originals.update(self.strict)  # strict wins over lenient
        for text in self.lenient:
            ctx.originals.setdefault(text, False)
        if self.written:
            ctx.written.update(self.written)
        counts = ctx.counts
        for key, n in self.counts.items():
            counts[key] += n
        if self.notes:
            ctx.notes.extend(self.notes)


@dataclass
class Rewritten:
    """The de-identified file: its bytes, where its header ends, its decoded values (for the leak scan)."""

    data: bytes
    header_end: int
    decoded: List[Decoded]


@lru_cache(maxsize=None)
def _element_keyword(tag: int) -> str:
    """``DataElement.keyword``: the dictionary keyword, '' for private, unknown and repeating-group tags."""
    return dictionary_keyword(tag) if dictionary_has_tag(tag) else ""


@lru_cache(maxsize=None)
def _keyword(tag: int) -> str:
    """The name :func:`~visceral.deid.qa.decoded_values` gives an element's values."""
    return _element_keyword(tag) or str(Tag(tag))


def _encode(ds: Dataset, implicit: bool) -> Dict[int, Piece]:
    """The encoded top-level elements of ``ds`` with their decoded values (nested ones included),
    by tag; Specific Character Set is left out (the file's own is copied)."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, implicit
    write_dataset(fp, ds)
    data = fp.getvalue()
    out = {}
    for e in parse_elements(data, 0, implicit):
        if e.tag != _CHARSET:
            out[e.tag] = (data[e.start:e.end], tuple((k, t, text.strip()) for k, t, text in decoded_values(_single(ds, e.tag))))
    return out


def _undefined(chunk: bytes, element: Element) -> bool:
    """The element was stored with undefined length (its value holds items and a delimiter): its
    4-byte length field, just before the value, is FFFFFFFFH (implicit VR and the long explicit form)."""
    return element.value >= 8 and chunk[element.value - 4:element.value] == b"\xff\xff\xff\xff"


def _read(chunks: bytes, implicit: bool) -> Dataset:
    return read_dataset(BytesIO(chunks), implicit, True)


def _decode_untouched(data: bytes, element: Element, vr: str, utf8: bool) -> Tuple[Decoded, ...]:
    """The values pydicom would decode for an element the rewrite copies (for the leak scan's index)."""
    if vr not in _STRING_VRS and vr not in _NUMBERS:
        return ()
    return _decode_value(element.tag, vr, utf8, data[element.value:element.end])


@lru_cache(maxsize=65536)
def _decode_value(tag: int, vr: str, utf8: bool, raw: bytes) -> Tuple[Decoded, ...]:
    if not raw:
        return ()
    name = _keyword(tag)
    if vr in _STRING_VRS:
        text = raw.decode("utf-8" if utf8 else "latin-1", errors="replace").rstrip("\0 ")
        values = [text] if vr in _SINGLE_VALUED else text.split("\\")
        return tuple((name, tag, v.strip()) for v in values)
    code = _NUMBERS[vr]
    count = len(raw) // struct.calcsize(code)
    return tuple((name, tag, str(v)) for v in struct.unpack_from(f"<{count}{code}", raw))


class RawRewriter:
    """Rewrites files of one run (one key, one profile) through their raw layout; holds the memo."""

    def __init__(self, key_raw: bytes, profile: Profile) -> None:
        self.key_raw = key_raw
        self.profile = profile
        self.empty_tags = profile.empty_tags
        self._memo: Dict[tuple, _Outcome] = {}
        self._seen: set = set()  # elements _fast did once, without a record
        self._work: Dict[Tuple[int, str], bool] = {}
        self._plans: Dict[Tuple[int, str], tuple] = {}  # (tag, VR) -> (keyword, Annex E rule, decision)
        self.hits = self.misses = self.on_bytes = 0  # memo hits, misses, misses done by _fast

    def needs_work(self, tag: int, vr: str) -> bool:
        """True for the elements the de-identification may change (the rest is copied as bytes)."""
        answer = self._work.get((tag, vr))
        if answer is None:
            # A standard element stored as UN is handed over too: pydicom writes it with its dictionary VR.
            answer = bool(tag >> 16 & 1) or tag in self.empty_tags or vr in ("SQ", "UN") or rule_for(tag) is not None
            self._work[(tag, vr)] = answer
        return answer

    # -- memoized steps ---------------------------------------------------------------------------
    def _outcome(self, memo_key: tuple, ctx: HeaderContext, step) -> _Outcome:
        found = self._memo.get(memo_key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        sub = HeaderContext(ctx.key, ctx.profile, ctx.pseudonym, ctx.date_offset_days)
        outcome = _Outcome(step(sub), sub)
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        self._memo[memo_key] = outcome
        return outcome

    def _elements(self, work: List[Tuple[bytes, Element]], charset: bytes, implicit: bool, ctx: HeaderContext) -> Dict[int, Piece]:
        """The new top-level elements for these (``chunk`` holds the element, ``element`` its layout
        in ``chunk``): from the memo when the same element was seen twice before (a series repeats
        most of its identifying values); else :meth:`_fast` when it can -- straight into ``ctx`` the
        first time, through a record kept in the memo the second; else one pydicom pass for all the
        rest (one read, one walk per element with its own record, one write), memoized too."""
        pieces: Dict[int, Piece] = {}
        slow: List[Tuple[tuple, bytes, int]] = []
        memo, seen = self._memo, self._seen
        if len(memo) + len(seen) > MEMO_LIMIT:
            memo.clear()
            seen.clear()
        for chunk, element in work:
            key = (ctx.date_offset_days, implicit, charset, chunk)
            outcome = memo.get(key)
            if outcome is not None:
                self.hits += 1
                outcome.merge_into(ctx)
                pieces.update(outcome.out)
                continue
            if key not in seen:
                done = self._fast(chunk, element, implicit, ctx)
                if done is not None:
                    seen.add(key)
                    self.on_bytes += 1
                    pieces.update(done)
                    continue
            else:
                sub = HeaderContext(ctx.key, ctx.profile, ctx.pseudonym, ctx.date_offset_days)
                done = self._fast(chunk, element, implicit, sub)
                if done is not None:
                    outcome = memo[key] = _Outcome(done, sub)
                    self.on_bytes += 1
                    outcome.merge_into(ctx)
                    pieces.update(done)
                    continue
            slow.append((key, chunk, element.tag))
        if slow:
            self.misses += len(slow)
            ds = _read(charset + b"".join(chunk for _, chunk, _ in slow), implicit)
            records = []
            for key, _, tag in slow:
                sub = HeaderContext(ctx.key, ctx.profile, ctx.pseudonym, ctx.date_offset_days)
                transform_element(ds, tag, sub)
                records.append((key, tag, sub))
            encoded = _encode(ds, implicit)
            for key, tag, sub in records:
                outcome = memo[key] = _Outcome({tag: encoded[tag]} if tag in encoded else {}, sub)
                outcome.merge_into(ctx)
                pieces.update(outcome.out)
        return pieces

    def _fast(self, chunk: bytes, element: Element, implicit: bool, ctx: HeaderContext) -> Optional[Dict[int, Piece]]:
        """The walk's action on one element, on its bytes, for the common case: a private element of
        defined length, or an Annex E / emptied attribute with a string VR and a printable ASCII
        value: its record goes straight into ``ctx``, its new bytes are returned (``{}``: removed).
        ``None`` -- before anything is recorded -- for anything else.  Every decision is
        :func:`~visceral.deid.rules.decide`'s and every value operation the rules' own; the
        equivalence with the pydicom walk, byte for byte, is tested on every test file."""
        tag, vr = element.tag, element.vr
        raw = chunk[element.value:element.end]
        if tag >> 16 & 1:
            if vr == "SQ" or _undefined(chunk, element):
                return None
            ctx.remember(raw, private=True)  # removed undecoded; the bytes feed the leak scan
            ctx.count("", "", "removed", private=True)
            return {}
        if vr not in _FAST_VRS or raw.rstrip(b"\0").translate(None, _TEXT_BYTES if vr in _SINGLE_VALUED else _PRINTABLE):
            return None
        text = raw.decode("ascii").rstrip(" \0")
        values = [text] if vr in _SINGLE_VALUED else text.split("\\")
        value: object = values[0] if len(values) == 1 else values
        empty = len(values) == 1 and not text
        profile = self.profile
        plan = self._plans.get((tag, vr))
        if plan is None:
            rule = rule_for(tag)
            keyword = _element_keyword(tag)
            plan = self._plans[(tag, vr)] = (keyword, rule, None if rule is None else decide(keyword, vr, rule, profile))
        keyword, rule, decision = plan

        def changed(action: str, replacement: Optional[List[str]]) -> Dict[int, Piece]:
            """The original goes to the leak scan; ``replacement`` (None: zero length, []: removed) is written."""
            ctx.remember(value, keyword, vr)
            ctx.count(keyword, vr, action)
            return self._done(tag, vr, replacement, implicit)

        def kept(action: str = "") -> Dict[int, Piece]:
            if action:
                ctx.count(keyword, vr, action)
            return self._done(tag, vr, values, implicit)

        if tag in self.empty_tags:
            return kept() if empty else changed("emptied", None)
        if rule is None:
            return None
        if decision == "characteristic":
            if keyword == "PatientAge" and not empty:
                if len(values) > 1:
                    return None
                capped = cap_age(text, profile.max_age_years)
                if capped != text:
                    return changed("age capped", [capped])
            return kept("kept (patient characteristic)")
        if decision == "shift":
            if empty:
                return kept()
            shifter = shift_date if vr == "DA" else shift_datetime
            shifted = [shifter(v, ctx.date_offset_days) for v in values]
            if any(v is None for v in shifted):
                return None  # the basic profile's action and a note: pydicom's walk
            ctx.written.update(shifted)
            return changed("date shifted", shifted)
        if decision == "time":
            return kept("kept (time of day)")
        if decision == "standardize" and not empty:
            if len(values) > 1:
                return None
            standard = profile.standardize(keyword, text)
            if standard is not None and not standard.isascii():
                return None  # pydicom encodes it in the data set's character set
            if standard is not None:
                ctx.written.add(standard)
                return changed("standardized", [standard])
        code = rule.basic
        if code == "K":
            return kept()
        if code in ("U", "X/Z/U*") or (code in ("D", "X/D", "Z/D", "X/Z/D") and vr == "UI"):
            if len(values) * 45 > 0xFFFF:
                return None  # new UIDs would not fit a short length field
            if vr != "UI" or empty:  # nothing to replace, or a UID action on a non-UID value: emptied
                return kept() if empty else changed("emptied", None)
            uids = [ctx.key.uid(v, profile.uid_root) for v in values]
            ctx.written.update(uids)
            return changed("UID replaced", uids)
        if code == "X":
            return changed("removed", [])
        if code in ("Z", "X/Z"):
            return kept() if empty else changed("emptied", None)
        if code in ("D", "X/D", "Z/D", "X/Z/D"):
            if empty:
                return kept("emptied")  # nothing to hide; stays empty
            dummy = DUMMY_VALUES.get(vr, DUMMY_TEXT)
            ctx.written.add(dummy)
            return changed("dummy value", [dummy])
        return None  # an unknown code: pydicom's walk

    @staticmethod
    def _done(tag: int, vr: str, values: Optional[List[str]], implicit: bool) -> Dict[int, Piece]:
        """The element encoded as pydicom would: values joined by backslashes, padded to even
        length (UI with NUL, text with a space); ``None`` -> zero length; ``[]`` -> removed.
        (:meth:`_fast` only gets here with ASCII values that fit the length field.)"""
        if values is not None and not values:
            return {}
        value = b"" if values is None else "\\".join(values).encode("ascii")
        if len(value) % 2:
            value += b"\0" if vr == "UI" else b" "
        if implicit:
            head = _IMPLICIT.pack(tag >> 16, tag & 0xFFFF, len(value))
        elif vr in _LONG_STRING_VRS:
            head = _LONG.pack(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), 0, len(value))
        else:
            head = _SHORT.pack(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), len(value))
        name = _keyword(tag)
        return {tag: (head + value, () if values is None else tuple((name, tag, v.strip()) for v in values))}

    def _prepare(self, chunk: bytes, charset: bytes, implicit: bool, ctx: HeaderContext) -> _Outcome:
        """prepare_header on the few elements it reads; ``out`` holds a derived Patient's Age."""
        def step(sub: HeaderContext):
            ds = _read(charset + chunk, implicit)
            had = str(ds.get("PatientAge", "") or "")
            prepare_header(ds, sub)
            if str(ds.get("PatientAge", "") or "") == had:
                return {}
            age = Dataset()
            age.PatientAge = ds.PatientAge
            return _encode(age, implicit)
        return self._outcome(("prepare", ctx.date_offset_days, implicit, charset, chunk), ctx, step)

    def _identity(self, implicit: bool, ctx: HeaderContext) -> _Outcome:
        def step(sub: HeaderContext):
            ds = Dataset()
            set_identity(ds, sub)
            return _encode(ds, implicit)
        return self._outcome(("identity", ctx.pseudonym, implicit), ctx, step)

    # -- the file ---------------------------------------------------------------------------------
    def rewrite(self, raw: RawFile, ctx: HeaderContext) -> Rewritten:
        """The de-identified bytes of ``raw`` (zero preamble, new file meta, data set in the same
        transfer syntax); ``ctx`` receives the originals, written values, counts and notes."""
        data, implicit = raw.data, raw.implicit
        elements = [e for e in raw.elements if e.tag & 0xFFFF or e.tag >> 16 & 1]  # group lengths go
        charset_element = next((e for e in elements if e.tag == _CHARSET), None)
        charset = data[charset_element.start:charset_element.end] if charset_element else b""
        utf8 = b"192" in charset

        prepared = self._prepare(b"".join(data[e.start:e.end] for e in elements if e.tag in _PREPARE_TAGS), charset, implicit, ctx)
        prepared.merge_into(ctx)
        age = None
        if _PATIENT_AGE in prepared.out:
            chunk = prepared.out[_PATIENT_AGE][0]
            age = (chunk, parse_elements(chunk, 0, implicit)[0])

        pieces: Dict[int, Tuple[object, Tuple[Decoded, ...]]] = {}  # bytes, or a memoryview of the input
        view = memoryview(data)
        work: List[Tuple[bytes, Element]] = []
        for element in elements:
            if not self.needs_work(element.tag, element.vr):
                pieces[element.tag] = (view[element.start:element.end], _decode_untouched(data, element, element.vr, utf8))
            elif element.tag == _PATIENT_AGE and age is not None:
                work.append(age)
            else:
                start = element.start
                work.append((data[start:element.end], Element(element.tag, element.vr, 0, element.value - start, element.end - start)))
        if age is not None and all(e.tag != _PATIENT_AGE for e in elements):
            work.append(age)
        pieces.update(self._elements(work, charset, implicit, ctx))
        identity = self._identity(implicit, ctx)
        identity.merge_into(ctx)
        pieces.update(identity.out)

        sop = pieces.get(SOP_INSTANCE_UID)
        sop_uid = next((text for _, tag, text in sop[1] if tag == SOP_INSTANCE_UID), "") if sop is not None else None
        meta_bytes, meta_decoded = self._meta(raw, sop_uid, ctx)
        out: List[object] = [bytes(128), b"DICM", meta_bytes]
        decoded: List[Decoded] = list(meta_decoded)
        position = 132 + len(meta_bytes)
        header_end: Optional[int] = None
        for tag in sorted(pieces):
            chunk, values = pieces[tag]
            if tag == PIXEL_DATA and header_end is None:
                header_end = position
            out.append(chunk)
            decoded.extend(values)
            position += len(chunk)
        return Rewritten(b"".join(out), header_end if header_end is not None else position, decoded)

    def _meta(self, raw: RawFile, sop_uid: Optional[str], ctx: HeaderContext) -> Tuple[bytes, List[Decoded]]:
        """The file meta: :func:`deidentify_meta`'s removals (memoized), then Media Storage SOP
        Instance UID follows the data set's new SOP Instance UID (per file)."""
        data = raw.data
        rest = b"".join(data[e.start:e.end] for e in raw.meta if e.tag not in (0x00020000, MEDIA_STORAGE_SOP_INSTANCE_UID))
        old = next((e for e in raw.meta if e.tag == MEDIA_STORAGE_SOP_INSTANCE_UID), None)

        def step(sub: HeaderContext):
            meta = FileMetaDataset(_read(rest, False))
            deidentify_meta(meta, Dataset(), sub)  # no SOP Instance UID here: it follows below
            return _encode_meta(meta)

        outcome = self._outcome(("meta", rest), ctx, step)
        outcome.merge_into(ctx)
        elements = dict(outcome.out)
        if sop_uid is not None:
            # follow_instance_uid, on bytes: the original is remembered, the new UID encoded (UI, even length)
            if old is not None:
                ctx.remember(raw.text(old), "MediaStorageSOPInstanceUID", "UI")
            value = sop_uid.encode("ascii")
            value += b"\0" * (len(value) % 2)
            elements[MEDIA_STORAGE_SOP_INSTANCE_UID] = (_SHORT.pack(0x0002, 0x0003, b"UI", len(value)) + value,
                                         (("MediaStorageSOPInstanceUID", MEDIA_STORAGE_SOP_INSTANCE_UID, sop_uid),))
        elif old is not None:
            elements[MEDIA_STORAGE_SOP_INSTANCE_UID] = (data[old.start:old.end], (("MediaStorageSOPInstanceUID", MEDIA_STORAGE_SOP_INSTANCE_UID, raw.text(old)),))
        body = b"".join(elements[tag][0] for tag in sorted(elements))
        decoded = [("FileMetaInformationGroupLength", 0x00020000, str(len(body)))]
        for tag in sorted(elements):
            decoded.extend(elements[tag][1])
        return _SHORT.pack(0x0002, 0x0000, b"UL", 4) + len(body).to_bytes(4, "little") + body, decoded  # group length: Type 1 (PS3.10 7.1)


def _encode_meta(meta: FileMetaDataset) -> Dict[int, Piece]:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_file_meta_info(fp, meta, enforce_standard=False)
    data = fp.getvalue()
    return {e.tag: (data[e.start:e.end], tuple((_keyword(e.tag), e.tag, text.strip()) for _, _, text in decoded_values(_single(meta, e.tag))))
            for e in parse_elements(data, 0, False)}


def _single(ds: Dataset, tag: int) -> Dataset:
    single = Dataset()
    single.add(ds[tag])
    return single
