"""The header rewrite on a file's raw layout: the same de-identification, without decoding it all.

:func:`visceral.deid.rules.deidentify_header` decodes and re-encodes every element with pydicom;
most of a clinical header (geometry, acquisition parameters) and all of the pixel data are left as
they are, so decoding them is wasted work.  :class:`RawRewriter` instead reads the element layout
with :mod:`visceral.deid.rawdicom` (no value decoded) and gives each top-level element the
treatment :func:`visceral.deid.rules.plan` -- the one decision both executors use -- calls for:

1. **copied** as bytes: ``keep`` (pixel data included);
2. **dropped** undecoded: private attributes, group lengths, attributes the IOD does not allow;
3. **through pydicom**: everything else (Annex E actions, names, UIDs, dates and times, sequences,
   standard elements stored as UN), in one batch per file, by the very walk of the reference path
   (:func:`~visceral.deid.rules.transform_element`, one element at a time, each with its own record).

An element's outcome depends only on its bytes, the character set, the SOP class and the
patient's offsets (the key and the profile are fixed per rewriter), so outcomes are memoized: a
series repeats its patient, study, institution and device values in every file.  Dates are not
memoized (a date moves with the time of its date/time pair).  The memo keeps what the step
remembered for the identity search and counted for the report, so every file's audit record is
whole.  ``Testing/test_deid_rawpath.py`` proves that the rewrite writes the bytes, and keeps the
record, of the pydicom path.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from typing import Dict, List, Optional, Tuple

from pydicom.datadict import dictionary_has_tag, dictionary_keyword, dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.tag import Tag

from visceral.deid.identifiers import identifier_kind
from visceral.deid.iod import iod_for
from visceral.deid.tables import STRING_VRS
from visceral.deid.profile import Profile
from visceral.deid.qa import decoded_values
from visceral.deid.rawdicom import MEDIA_STORAGE_SOP_INSTANCE_UID, PIXEL_DATA, SOP_INSTANCE_UID, Element, RawFile, parse_elements
from visceral.deid.rules import (
    PREPARE_KEYWORDS,
    Action,
    HeaderContext,
    deidentify_meta,
    plan,
    prepare_header,
    set_identity,
    transform_element,
    type2_additions,
)

__all__ = ["RawRewriter", "Rewritten"]

_CHARSET = 0x00080005
_SOP_CLASS_UID = 0x00080016
_PATIENT_AGE = 0x00101010
_SHORT = struct.Struct("<HH2sH")  # explicit VR, 2-byte length
_PREPARE_TAGS = frozenset(tag_for_keyword(k) for k in PREPARE_KEYWORDS)
_SINGLE_VALUED = frozenset(("LT", "ST", "UT", "UR"))  # never split at backslashes
_NUMBERS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
#: Memo entries kept per process before the memo starts over (a few MiB).
MEMO_LIMIT = 50_000

Decoded = Tuple[str, int, str]
#: A new top-level element: its bytes and its decoded values (nested ones included).
Piece = Tuple[bytes, Tuple[Decoded, ...]]


class _Outcome:
    """What one step did to one element: its new bytes and its audit record (ready to merge)."""

    __slots__ = ("out", "originals", "written", "counts", "notes")

    def __init__(self, out: Dict[int, Piece], sub: HeaderContext) -> None:
        self.out = out  # top-level tag -> (encoded element, its decoded values)
        self.originals = tuple(sub.originals.items())
        self.written = tuple(sub.written)
        self.counts = dict(sub.counts)
        self.notes = tuple(sub.notes)

    def merge_into(self, ctx: HeaderContext) -> None:
        """Add this record to the file's (as the step would have on the file's own context)."""
        originals = ctx.originals
        for text, kind in self.originals:
            originals.setdefault(text, kind)
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


def _read(chunks: bytes, implicit: bool) -> Dataset:
    return read_dataset(BytesIO(chunks), implicit, True)


def _decode_untouched(data: bytes, element: Element, vr: str, utf8: bool) -> Tuple[Decoded, ...]:
    """The values pydicom would decode for an element the rewrite copies (for the leak scan's index)."""
    if vr not in STRING_VRS and vr not in _NUMBERS:
        return ()
    return _decode_value(element.tag, vr, utf8, data[element.value:element.end])


@lru_cache(maxsize=65536)
def _decode_value(tag: int, vr: str, utf8: bool, raw: bytes) -> Tuple[Decoded, ...]:
    if not raw:
        return ()
    name = _keyword(tag)
    if vr in STRING_VRS:
        text = raw.decode("utf-8" if utf8 else "latin-1", errors="replace").rstrip("\0 ")
        values = [text] if vr in _SINGLE_VALUED else text.split("\\")
        return tuple((name, tag, v.strip()) for v in values)
    code = _NUMBERS[vr]
    count = len(raw) // struct.calcsize(code)
    return tuple((name, tag, str(v)) for v in struct.unpack_from(f"<{count}{code}", raw))


def _sub(ctx: HeaderContext) -> HeaderContext:
    """An empty record for one step, with the file's key, profile, offsets and SOP class."""
    return HeaderContext(ctx.key, ctx.profile, ctx.pseudonym, ctx.date_offset_days, ctx.time_offset_s, ctx.sop_class)


class RawRewriter:
    """Rewrites files of one run (one key, one profile) through their raw layout; holds the memo."""

    def __init__(self, key_raw: bytes, profile: Profile) -> None:
        self.key_raw = key_raw
        self.profile = profile
        self._memo: Dict[tuple, _Outcome] = {}
        self._treatments: Dict[Tuple[str, int, str], Tuple[str, str, str]] = {}
        self.hits = self.misses = 0  # memo hits and misses

    def treatment(self, sop_class: str, tag: int, vr: str) -> Tuple[str, str, str]:
        """(``copy`` | ``drop`` | ``work``, keyword, count label) of a top-level element: the
        decision is :func:`~visceral.deid.rules.plan`'s; ``work`` hands it to the pydicom walk."""
        key = (sop_class, tag, vr)
        found = self._treatments.get(key)
        if found is not None:
            return found
        keyword = keyword_for_tag(tag) or ""  # as the walk names it (repeating groups included)
        known = vr
        if vr in ("UN", "OB", "OW") and keyword:
            dictionary = dictionary_VR(tag).split(" or ")
            known = vr if vr in dictionary else dictionary[0]
        if known != vr:
            found = ("work", keyword, "")  # a standard element stored as UN or binary: pydicom decides
        else:
            iod = iod_for(sop_class) if sop_class else None
            spec = iod.node((tag,)) if iod is not None else None
            decision = plan(tag, vr, keyword, spec, iod is not None, self.profile)
            if decision.action is Action.KEEP:
                found = ("copy", keyword, "")
            elif decision.action is Action.REMOVE and (decision.why in ("private", "group length", "overlay or curve") or (
                    decision.why == "not in the IOD" and vr != "SQ" and identifier_kind(keyword, vr) is None)):
                # (an identifying value goes through the walk: it is remembered for the identity search)
                found = ("drop", keyword, "removed (not in the IOD)" if decision.why == "not in the IOD" else "removed")
            else:
                found = ("work", keyword, "")
        self._treatments[key] = found
        return found

    # -- memoized steps ---------------------------------------------------------------------------
    def _outcome(self, memo_key: tuple, ctx: HeaderContext, step) -> _Outcome:
        found = self._memo.get(memo_key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        sub = _sub(ctx)
        outcome = _Outcome(step(sub), sub)
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        self._memo[memo_key] = outcome
        return outcome

    def _elements(self, work: List[Tuple[bytes, Element]], charset: bytes, implicit: bool, ctx: HeaderContext,
                  dates_times: Dict[str, str]) -> Dict[int, Piece]:
        """The new top-level elements for these (``chunk`` holds the element, ``element`` its layout
        in ``chunk``): from the memo when the same element was met before (a series repeats most of
        its identifying values), else in one pydicom pass for all the rest (one read, one walk per
        element with its own record, one write).  A date is never memoized: it moves with the time
        of its date/time pair."""
        pieces: Dict[int, Piece] = {}
        slow: List[Tuple[Optional[tuple], bytes, int]] = []
        memo = self._memo
        if len(memo) > MEMO_LIMIT:
            memo.clear()
        for chunk, element in work:
            key = None if element.vr == "DA" else (ctx.sop_class, ctx.pseudonym, ctx.date_offset_days, ctx.time_offset_s, implicit, charset, chunk)
            outcome = memo.get(key) if key is not None else None
            if outcome is not None:
                self.hits += 1
                outcome.merge_into(ctx)
                pieces.update(outcome.out)
                continue
            slow.append((key, chunk, element.tag))
        if slow:
            self.misses += len(slow)
            ds = _read(charset + b"".join(chunk for _, chunk, _ in slow), implicit)
            records = []
            for key, _, tag in slow:
                sub = _sub(ctx)
                transform_element(ds, tag, sub, dates_times)
                records.append((key, tag, sub))
            encoded = _encode(ds, implicit)
            for key, tag, sub in records:
                outcome = _Outcome({tag: encoded[tag]} if tag in encoded else {}, sub)
                if key is not None:
                    memo[key] = outcome
                outcome.merge_into(ctx)
                pieces.update(outcome.out)
        return pieces

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

    def _completion(self, present: Tuple[int, ...], implicit: bool, ctx: HeaderContext) -> _Outcome:
        """:func:`~visceral.deid.rules.type2_additions`, encoded (memoized per SOP class and the tags present)."""
        def step(sub: HeaderContext):
            added = type2_additions(present, sub)
            return _encode(added, implicit) if len(added) else {}
        return self._outcome(("type 2", ctx.sop_class, present, implicit), ctx, step)

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
        if not ctx.sop_class:
            ctx.sop_class = next((raw.text(e) for e in raw.elements if e.tag == _SOP_CLASS_UID), "")
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
        sop_class = ctx.sop_class
        for element in elements:
            treatment, keyword, label = self.treatment(sop_class, element.tag, element.vr)
            if treatment == "copy":
                pieces[element.tag] = (view[element.start:element.end], _decode_untouched(data, element, element.vr, utf8))
            elif treatment == "drop":
                ctx.count(keyword, element.vr, label, private=bool(element.tag >> 16 & 1))
            elif element.tag == _PATIENT_AGE and age is not None:
                work.append(age)
            else:
                start = element.start
                work.append((data[start:element.end], Element(element.tag, element.vr, 0, element.value - start, element.end - start)))
        if age is not None and all(e.tag != _PATIENT_AGE for e in elements):
            work.append(age)
        # The dates and times of the whole file (not only of those handed over: a memoized time is the
        # partner of a date all the same).
        dates_times = {}
        for element in elements:
            if element.vr in ("DA", "TM") and not element.tag >> 16 & 1:
                keyword, text = keyword_for_tag(element.tag), raw.text(element)
                if keyword and text and "\\" not in text:
                    dates_times[keyword] = text
        pieces.update(self._elements(work, charset, implicit, ctx, dates_times))
        identity = self._identity(implicit, ctx)
        identity.merge_into(ctx)
        pieces.update(identity.out)
        completion = self._completion(tuple(sorted(pieces)), implicit, ctx)
        completion.merge_into(ctx)
        pieces.update(completion.out)

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
