"""A minimal reader of a DICOM file's element layout (PS3.10 file, PS3.5 7.1 encoding).

It does not decode values: it finds where every top-level element of the file meta and of the
data set starts and ends, so that the de-identification can copy the bytes of the elements it
leaves alone (most of a header, and the pixel data) and hand only the others to pydicom.  This
is what makes the header rewrite cost proportional to the identifying elements, not to the file.

Supported: Explicit and Implicit VR Little Endian data sets, with or without encapsulated pixel
data (the data set of every lossless compressed transfer syntax is Explicit VR Little Endian),
sequences and items of defined and undefined length.  Anything else (big endian, deflated data
sets, a UN element of undefined length, an element running past the end of the file) raises
:class:`Unsupported`, and the caller uses pydicom for the whole file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Tuple

from pydicom.datadict import dictionary_VR

__all__ = ["Unsupported", "Element", "RawFile", "parse_file", "parse_elements", "with_file_meta", "IMPLICIT_LE", "EXPLICIT_LE",
           "PIXEL_DATA", "SOP_INSTANCE_UID", "MEDIA_STORAGE_SOP_INSTANCE_UID"]

#: Tags both the layout's users look for.
PIXEL_DATA = 0x7FE00010
SOP_INSTANCE_UID = 0x00080018
MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020003

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")

#: VRs with a 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 Table 7.1-1).
_LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"))
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_HEADER = struct.Struct("<HH2sH")
_TAG_LENGTH = struct.Struct("<HHL")
_LENGTH = struct.Struct("<L")


class Unsupported(Exception):
    """The file uses an encoding this reader leaves to pydicom (the message says which)."""


class Element(NamedTuple):
    """One top-level element: ``data[start:end]`` is the whole encoded element, ``data[value:end]``
    its value (for undefined length, items and delimiter included)."""

    tag: int
    vr: str
    start: int
    value: int
    end: int


@dataclass
class RawFile:
    """The layout of a DICOM file: preamble and file meta, then the data set's elements."""

    data: bytes
    meta: List[Element]
    elements: List[Element]
    transfer_syntax: str
    implicit: bool

    @property
    def meta_end(self) -> int:
        return self.meta[-1].end if self.meta else 132

    def text(self, element: Element) -> str:
        """A short string value (UIDs, codes, dates), without padding; for the few the driver reads."""
        return self.data[element.value:element.end].decode("latin-1").rstrip("\0 ").lstrip(" ")


_VR_CACHE: Dict[int, str] = {}


def _implicit_vr(tag: int) -> str:
    vr = _VR_CACHE.get(tag)
    if vr is None:
        if tag >> 16 & 1:
            vr = "UN"
        else:
            try:
                vr = dictionary_VR(tag)[:2]  # "US or SS" -> "US": only SQ matters to the caller
            except KeyError:
                vr = "UN"
        _VR_CACHE[tag] = vr
    return vr


def _skip_items(data: bytes, pos: int, implicit: bool) -> int:
    """Position after the sequence delimiter of an undefined-length value starting at ``pos``."""
    size = len(data)
    while pos + 8 <= size:
        group, elem, length = _TAG_LENGTH.unpack_from(data, pos)
        tag = group << 16 | elem
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise Unsupported(f"unexpected tag ({group:04X},{elem:04X}) inside a sequence at byte {pos - 8}")
        if length == _UNDEFINED:
            pos = _skip_item(data, pos, implicit)
        else:
            pos += length
    raise Unsupported("a sequence runs past the end of the file")


def _skip_item(data: bytes, pos: int, implicit: bool) -> int:
    """Position after the item delimiter of an undefined-length item whose elements start at ``pos``."""
    while True:
        if pos + 8 > len(data):
            raise Unsupported("an item runs past the end of the file")
        group, elem, length = _TAG_LENGTH.unpack_from(data, pos)
        if (group << 16 | elem) == _ITEM_END:
            return pos + 8
        pos = _next_element(data, pos, implicit)[4]


def _next_element(data: bytes, pos: int, implicit: bool) -> Tuple[int, str, int, int, int]:
    """(tag, vr, start, value start, end) of the element at ``pos``."""
    size = len(data)
    if pos + 8 > size:
        raise Unsupported(f"a truncated element header at byte {pos}")
    if implicit:
        group, elem, length = _TAG_LENGTH.unpack_from(data, pos)
        tag = group << 16 | elem
        vr = _implicit_vr(tag)
        value = pos + 8
        if length == _UNDEFINED:
            return tag, "SQ", pos, value, _skip_items(data, value, True)
    else:
        group, elem, vr_bytes, short = _HEADER.unpack_from(data, pos)
        tag = group << 16 | elem
        if vr_bytes in _LONG_VRS:
            if pos + 12 > size:
                raise Unsupported(f"a truncated element header at byte {pos}")
            (length,) = _LENGTH.unpack_from(data, pos + 8)
            value = pos + 12
        elif vr_bytes.isalpha() and vr_bytes.isupper():
            length, value = short, pos + 8
        else:
            raise Unsupported(f"({group:04X},{elem:04X}) has no valid explicit VR at byte {pos}")
        vr = vr_bytes.decode("ascii")
        if length == _UNDEFINED:
            if vr == "UN":
                raise Unsupported(f"({group:04X},{elem:04X}) is UN of undefined length (a sequence in implicit VR)")
            return tag, vr, pos, value, _skip_items(data, value, False)
    end = value + length
    if end > size:
        raise Unsupported(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) runs past the end of the file ({end - size} bytes missing)")
    return tag, vr, pos, value, end


def parse_elements(data: bytes, pos: int, implicit: bool, stop_group: int = -1, before: int = 0x100000000) -> List[Element]:
    """The elements from ``pos`` to the end of ``data`` (or to the first of a group other than
    ``stop_group``, or to the first whose tag is not below ``before``)."""
    out: List[Element] = []
    size = len(data)
    append = out.append
    while pos < size:
        if stop_group >= 0 and (pos + 2 > size or struct.unpack_from("<H", data, pos)[0] != stop_group):
            break
        if before < 0x100000000 and pos + 4 <= size:
            group, number = struct.unpack_from("<HH", data, pos)
            if (group << 16 | number) >= before:
                break
        element = Element._make(_next_element(data, pos, implicit if stop_group < 0 else False))
        append(element)
        pos = element.end
    return out


def parse_file(data: bytes, before: int = 0x100000000) -> RawFile:
    """The layout of a Part 10 file (of its data set's elements with tags below ``before``: then
    ``data`` may be just the beginning of the file).

    Raises:
        Unsupported: no preamble and ``DICM``, a transfer syntax this reader leaves to pydicom, or
            a malformed element (the caller then reads the file with pydicom, which reports it).
    """
    if len(data) < 132 or data[128:132] != b"DICM":
        raise Unsupported("no DICOM preamble")
    meta = parse_elements(data, 132, False, stop_group=0x0002)
    syntax = ""
    for element in meta:
        if element.tag == 0x00020010:
            syntax = data[element.value:element.end].decode("latin-1").rstrip("\0 ")
    if not syntax:
        raise Unsupported("no Transfer Syntax UID in the file meta")
    if syntax == _BIG_ENDIAN or syntax in _DEFLATED:
        raise Unsupported(f"transfer syntax {syntax}")
    implicit = syntax == IMPLICIT_LE
    start = meta[-1].end if meta else 132
    return RawFile(data, meta, parse_elements(data, start, implicit, before=before), syntax, implicit)


def with_file_meta(data: bytes) -> Tuple[bytes, str]:
    """A data set stored bare -- without preamble, ``DICM`` and file meta, as older systems and some
    archive exports write it -- as the Part 10 file it stands for, and its transfer syntax: a zero
    preamble, ``DICM`` and a file meta naming its SOP Class, SOP Instance and transfer syntax (implicit
    or explicit VR little endian, told by the first element's bytes), then the data set's bytes as they
    are.  A file meta without the preamble and ``DICM`` before it gets them (and ``""``).  ``(data, "")``
    for a Part 10 file, and for anything that does not start as a little-endian data set of group 0008 with
    both SOP UIDs (the caller reads it as before, and says why it cannot)."""
    if len(data) < 16 or data[128:132] == b"DICM":
        return data, ""
    if data[:2] == b"\x02\x00" and data[4:6] == b"UL":  # its file meta, without the preamble and DICM before it
        return bytes(128) + b"DICM" + data, ""
    if struct.unpack_from("<H", data, 0)[0] != 0x0008:
        return data, ""
    explicit = data[4:6].isalpha() and data[4:6].isupper()
    try:
        elements = parse_elements(data, 0, not explicit, before=0x00080019)
    except Unsupported:
        return data, ""
    uids = {e.tag: data[e.value:e.end].decode("latin-1").rstrip("\0 ") for e in elements if e.tag in (0x00080016, SOP_INSTANCE_UID)}
    if len(uids) != 2 or not all(uids.values()):
        return data, ""
    syntax = EXPLICIT_LE if explicit else IMPLICIT_LE

    def element(number: int, vr: bytes, value: bytes) -> bytes:
        value += b"\0" * (len(value) % 2)
        if vr in _LONG_VRS:
            return struct.pack("<HH2sHL", 0x0002, number, vr, 0, len(value)) + value
        return _HEADER.pack(0x0002, number, vr, len(value)) + value

    body = b"".join((element(0x0001, b"OB", b"\0\1"), element(0x0002, b"UI", uids[0x00080016].encode("ascii")),
                     element(0x0003, b"UI", uids[SOP_INSTANCE_UID].encode("ascii")), element(0x0010, b"UI", syntax.encode("ascii"))))
    return bytes(128) + b"DICM" + element(0x0000, b"UL", struct.pack("<L", len(body))) + body + data, syntax
