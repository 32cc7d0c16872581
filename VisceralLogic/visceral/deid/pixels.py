"""Whether pixels are, or once were, lossy compressed (seed section 2: "uncompressed or lossless").

The header can say so -- the transfer syntax, Lossy Image Compression (0028,2110), its method and
ratio, a derivation code "Lossy Compression" (DCM 113040) -- and the code stream itself can contradict a transfer
syntax labelled lossless: a lossy JPEG process, a JPEG lossless point transform, JPEG-LS with
NEAR > 0, JPEG 2000 with the irreversible 9-7 wavelet.  Every fragment that starts a code stream is
examined, whatever its size (markers are walked by their lengths; nothing is decoded).
"""

from __future__ import annotations

import re

from typing import Iterator, List, Optional, Tuple

__all__ = ["lossy_reason", "lossy_code_stream", "fragments", "values_of", "LOSSY_METHODS"]

#: Lossless transfer syntaxes whose pixel data is a code stream (encapsulated).
_JPEG_SYNTAXES = ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70")
_JPEG_LS_SYNTAXES = ("1.2.840.10008.1.2.4.80",)
_J2K_SYNTAXES = ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202")

#: Methods of Lossy Image Compression Method (0028,2114) that are lossy (PS3.3 C.7.6.1.1.5.1).
LOSSY_METHODS = ("ISO_10918_1", "ISO_14495_1", "ISO_15444_1", "ISO_15444_15", "ISO_13818_2", "ISO_14496_10", "ISO_23008_2", "ISO_18181_1")

_LOSSY_SOF = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive", 0xC5: "differential sequential",
              0xC6: "differential progressive", 0xC9: "extended (arithmetic)", 0xCA: "progressive (arithmetic)",
              0xCD: "differential sequential (arithmetic)", 0xCE: "differential progressive (arithmetic)"}
_ITEM = b"\xfe\xff\x00\xe0"
_SEQUENCE_END = b"\xfe\xff\xdd\xe0"


def fragments(value: bytes) -> Iterator[memoryview]:
    """The fragments of encapsulated Pixel Data (the value of the element: items; the Basic Offset
    Table, the first item, is skipped)."""
    view = memoryview(value)
    position, first = 0, True
    while position + 8 <= len(view):
        tag = bytes(view[position:position + 4])
        length = int.from_bytes(view[position + 4:position + 8], "little")
        if tag == _SEQUENCE_END or tag != _ITEM:
            return
        body = view[position + 8:position + 8 + length]
        if not first:
            yield body
        first = False
        position += 8 + length


def _jpeg(stream: memoryview, syntax: str) -> Optional[str]:
    """Walk the markers of a JPEG or JPEG-LS code stream, every scan to its end (a later scan may be the
    near-lossless one: one scan per component)."""
    i, size, process = 2, len(stream), None
    data = bytes(stream)
    while i + 4 <= size:
        if data[i] != 0xFF:
            return None  # not a marker where one must be: leave judging to the decoder
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker == 0xD9:  # end of image
            return None
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2:
            return None
        if marker in _LOSSY_SOF:
            return f"the JPEG code stream is lossy ({_LOSSY_SOF[marker]} process) although the transfer syntax says lossless"
        if marker in (0xC3, 0xC7, 0xCB, 0xCF, 0xF7):
            process = marker
        if marker == 0xDA:  # start of scan: Ns, Ns x (Cs, Td/Ta), then Ss, Se, Ah/Al (JPEG) or NEAR, ILV, Ah/Al (JPEG-LS)
            components = data[i + 4] if i + 4 < size else 0
            params = i + 5 + 2 * components
            if params + 2 >= size:
                return None
            jpeg_ls = process == 0xF7 or syntax in _JPEG_LS_SYNTAXES
            if jpeg_ls and data[params]:
                return f"the JPEG-LS code stream is near-lossless (NEAR={data[params]}) although the transfer syntax says lossless"
            if not jpeg_ls and data[params + 2] & 0x0F:
                return f"the lossless JPEG code stream drops low bits (point transform {data[params + 2] & 0x0F})"
            i = _after_scan(data, i + 2 + length, jpeg_ls)
            continue
        i += 2 + length
    return None


def _after_scan(data: bytes, i: int, jpeg_ls: bool) -> int:
    """The position of the marker that ends the entropy-coded data starting at ``i``: 0xFF followed by a
    byte with its high bit set (JPEG-LS stuffs a 0 bit after 0xFF) or by anything but 0x00 and a restart
    marker (JPEG stuffs 0x00)."""
    while True:
        i = data.find(b"\xff", i)
        if i < 0 or i + 1 >= len(data):
            return len(data)
        following = data[i + 1]
        if (following >= 0x80 if jpeg_ls else following != 0x00) and not 0xD0 <= following <= 0xD7:
            return i
        i += 1


def _jpeg2000(stream: memoryview) -> Optional[str]:
    """Whether a JPEG 2000 code stream (a JP2 file: the code stream of its 'jp2c' box, found by walking the
    boxes) says lossy anywhere its coding style can be set: the main header and every tile-part header
    (COD and COC: the irreversible 9-7 wavelet; QCD and QCC: quantization)."""
    if bytes(stream[:2]) != b"\xff\x4f":
        stream = _jp2_code_stream(stream)
        if stream is None:
            return None
    data = bytes(stream)
    size, components = len(data), 1
    i = 2
    while i + 4 <= size and data[i] == 0xFF and data[i + 1] != 0x90:  # the main header, to the first tile-part
        if data[i + 1] == 0x51 and i + 40 <= size:  # SIZ: Csiz at its end
            components = int.from_bytes(data[i + 38:i + 40], "big")
        found, i = _coding_segment(data, i, components)
        if found or i < 0:
            return found
    while i + 12 <= size and data[i:i + 2] == b"\xff\x90":  # tile-parts: SOT (Psot: this tile-part's length)
        tile_part = int.from_bytes(data[i + 6:i + 10], "big")
        j = i + 12
        while j + 4 <= size and data[j] == 0xFF and data[j + 1] != 0x93:  # its header, to SOD
            found, j = _coding_segment(data, j, components)
            if found or j < 0:
                return found
        if tile_part < 12:  # 0: the last tile-part, to the end of the code stream
            break
        i += tile_part
    return None


_IRREVERSIBLE = "the JPEG 2000 code stream uses the irreversible 9-7 wavelet (lossy) although the transfer syntax says lossless"
_QUANTIZED = "the JPEG 2000 code stream is quantized (lossy) although the transfer syntax says lossless"


def _coding_segment(data: bytes, i: int, components: int) -> Tuple[Optional[str], int]:
    """(why the marker segment at ``i`` says lossy, or None; the position after it, -1 when malformed)."""
    marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
    if length < 2:
        return None, -1
    index = 1 if components < 257 else 2  # the component index of COC and QCC: one byte, or two
    if marker == 0x52 and i + 13 < len(data) and data[i + 13] == 0:  # COD: ... SPcod's last byte, the transform
        return _IRREVERSIBLE, i
    if marker == 0x53 and i + 9 + index < len(data) and data[i + 9 + index] == 0:  # COC: Ccoc, Scoc, then as COD's SPcod
        return _IRREVERSIBLE, i
    if marker == 0x5C and i + 4 < len(data) and data[i + 4] & 0x1F:  # QCD: quantization style (0: none)
        return _QUANTIZED, i
    if marker == 0x5D and i + 4 + index < len(data) and data[i + 4 + index] & 0x1F:  # QCC: Cqcc, then Sqcc
        return _QUANTIZED, i
    return None, i + 2 + length


def _jp2_code_stream(stream: memoryview) -> Optional[memoryview]:
    """The contents of a JP2 file's code stream box ('jp2c'), walking the boxes by their lengths."""
    i, size = 0, len(stream)
    while i + 8 <= size:
        length, kind = int.from_bytes(stream[i:i + 4], "big"), bytes(stream[i + 4:i + 8])
        header = 8
        if length == 1 and i + 16 <= size:
            length, header = int.from_bytes(stream[i + 8:i + 16], "big"), 16
        if kind == b"jp2c":
            return stream[i + header:] if length == 0 else stream[i + header:i + length]
        if length < header:
            return None
        i += length
    return None


def code_stream_kind(pixels: memoryview) -> str:
    """The kind of compressed code stream ``pixels`` start with (JPEG's SOI and a marker, JPEG 2000's SOC
    and SIZ, the JP2 signature box), or ''."""
    start = bytes(pixels[:12])
    if start[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if start[:4] == b"\xff\x4f\xff\x51":
        return "JPEG 2000"
    if start == b"\x00\x00\x00\x0cjP  \r\n\x87\n":
        return "JP2"
    return ""


def lossy_code_stream(value: bytes, syntax: str) -> Optional[str]:
    """Why the encapsulated pixel data ``value`` (items, or one bare code stream) is lossy although
    ``syntax`` is labelled lossless, or ``None``."""
    if syntax not in _JPEG_SYNTAXES + _JPEG_LS_SYNTAXES + _J2K_SYNTAXES:
        return None
    view = memoryview(value)
    streams: List[memoryview] = [view] if bytes(view[:2]) in (b"\xff\xd8", b"\xff\x4f") else list(fragments(value))
    for stream in streams:
        start = bytes(stream[:64])  # a code stream may follow a few padding bytes
        jpeg, j2k, jp2 = start.find(b"\xff\xd8"), start.find(b"\xff\x4f\xff\x51"), start.find(b"jP  ")
        if jp2 >= 4 and syntax in _J2K_SYNTAXES and (j2k < 0 or jp2 < j2k):  # a JP2 file: its boxes lead to the code stream
            found = _jpeg2000(stream[jp2 - 4:])
        elif jpeg >= 0 and syntax not in _J2K_SYNTAXES:
            found = _jpeg(stream[jpeg:], syntax)
        elif j2k >= 0:
            found = _jpeg2000(stream[j2k:])
        else:
            continue  # a continuation fragment of a frame
        if found:
            return found
    return None


def values_of(value: object) -> List[str]:
    """The values of an element's value, upper case and stripped (a single string is one value)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v).strip().upper() for v in value]
    return [v.strip().upper() for v in str(value).split("\\")]


def _codes(sequence: object) -> List[str]:
    return [str(item.get("CodeValue", "") or "").strip() for item in (sequence or [])]


def lossy_reason(head: object, syntax: str) -> Optional[str]:
    """Why the header says the pixels are, or once were, lossy compressed, or ``None``."""
    from visceral.deid.tables import LOSSLESS_TRANSFER_SYNTAXES

    if syntax not in LOSSLESS_TRANSFER_SYNTAXES:
        return f"transfer syntax {syntax or '(none)'} is not uncompressed or lossless"
    flag = "\\".join(values_of(head.get("LossyImageCompression")))  # type: ignore[attr-defined]
    if flag == "01":
        return "Lossy Image Compression (0028,2110) is 01: the pixels were lossy compressed once"
    if flag not in ("", "00"):
        return f"Lossy Image Compression (0028,2110) is {flag!r}, neither 00 nor 01: the pixels may have been lossy compressed"
    methods = values_of(head.get("LossyImageCompressionMethod"))  # type: ignore[attr-defined]
    if any(m in LOSSY_METHODS for m in methods):
        return f"Lossy Image Compression Method (0028,2114) names a lossy method ({methods[0]})"
    ratios = [r for r in values_of(head.get("LossyImageCompressionRatio")) if r]  # type: ignore[attr-defined]
    if ratios:
        return f"Lossy Image Compression Ratio (0028,2112) is {ratios[0]}: the pixels were lossy compressed once"
    if "113040" in _codes(head.get("DerivationCodeSequence")):  # type: ignore[attr-defined]
        return "Derivation Code Sequence says Lossy Compression (DCM 113040)"
    said = _lossy_words(" ".join(values_of(head.get("DerivationDescription"))))  # type: ignore[attr-defined]
    if said:
        return f"Derivation Description says the image was lossy compressed ({said})"
    # A source image referenced as its "Uncompressed predecessor" (DCM 121320): the image was compressed.
    # Encoders set it for lossless compression too (DCMTK's JPEG 2000 reversible codec, pydicom's MR2_J2KR),
    # so it counts only where Lossy Image Compression does not say 00.
    if flag != "00":
        for item in head.get("SourceImageSequence") or []:  # type: ignore[attr-defined]
            if "121320" in _codes(item.get("PurposeOfReferenceCodeSequence")):
                return ("a source image is its Uncompressed predecessor (DCM 121320) and Lossy Image Compression (0028,2110) "
                        "does not say 00: it may be a lossy copy")
    return None


_LOSSY_WORD = re.compile(r"\w*(?:LOSSY|IRREVERSIBL)\w*", re.IGNORECASE)
_LOSSLESS_WORD = re.compile(r"LOSSLESS|(?<!IR)REVERSIBL", re.IGNORECASE)
_COMPRESSION = re.compile(r"COMPRESS|JPEG|J2K|JP2|WAVELET", re.IGNORECASE)
_RATIO = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*:\s*1(?![\d.])")


def _lossy_words(description: str) -> str:
    """What in a Derivation Description says lossy: the words *lossy* or *irreversible*, or, where it
    speaks of compression (compress, JPEG, J2K, wavelet) and not of lossless or reversible compression, a
    JPEG baseline or a ratio above 1:1."""
    found = _LOSSY_WORD.search(description)
    if found:
        return found.group(0)
    if _COMPRESSION.search(description) and not _LOSSLESS_WORD.search(description):
        if re.search(r"\bBASELINE\b", description, re.IGNORECASE):
            return "baseline"
        for ratio in _RATIO.finditer(description):
            if float(ratio.group(1)) > 1:
                return ratio.group(0)
    return ""
