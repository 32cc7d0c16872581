"""Whether pixels are, or once were, lossy compressed (seed section 2: "uncompressed or lossless").

The header can say so -- the transfer syntax, Lossy Image Compression (0028,2110), its method and
ratio, a derivation code "Lossy Compression" (DCM 113040) -- and the code stream itself can contradict a transfer
syntax labelled lossless: a lossy JPEG process, a JPEG lossless point transform, JPEG-LS with
NEAR > 0, JPEG 2000 with the irreversible 9-7 wavelet.  Every fragment that starts a code stream is
examined, whatever its size (markers are walked by their lengths; nothing is decoded).
"""

from __future__ import annotations

import re

from typing import Iterator, List, Optional

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
    """Walk the markers of a JPEG or JPEG-LS code stream up to its first scan."""
    i, size, process = 2, len(stream), None
    while i + 4 <= size:
        if stream[i] != 0xFF:
            return None  # not a marker where one must be: leave judging to the decoder
        marker = stream[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(stream[i + 2:i + 4], "big")
        if length < 2:
            return None
        if marker in _LOSSY_SOF:
            return f"the JPEG code stream is lossy ({_LOSSY_SOF[marker]} process) although the transfer syntax says lossless"
        if marker in (0xC3, 0xC7, 0xCB, 0xCF, 0xF7):
            process = marker
        if marker == 0xDA:  # start of scan: Ns, Ns x (Cs, Td/Ta), then Ss, Se, Ah/Al (JPEG) or NEAR, ILV, Ah/Al (JPEG-LS)
            components = stream[i + 4] if i + 4 < size else 0
            params = i + 5 + 2 * components
            if params + 2 >= size:
                return None
            if process == 0xF7 or syntax in _JPEG_LS_SYNTAXES:
                near = stream[params]
                if near:
                    return f"the JPEG-LS code stream is near-lossless (NEAR={near}) although the transfer syntax says lossless"
            elif stream[params + 2] & 0x0F:
                return f"the lossless JPEG code stream drops low bits (point transform {stream[params + 2] & 0x0F})"
            return None
        i += 2 + length
    return None


def _jpeg2000(stream: memoryview) -> Optional[str]:
    """Walk the main header of a JPEG 2000 code stream to its COD segment (a JP2 file: to its code stream box)."""
    data = bytes(stream[:4096]) if stream[:2] != b"\xff\x4f" else None
    if data is not None:  # JP2 boxes: the code stream starts after the 'jp2c' box header
        at = data.find(b"jp2c")
        if at < 0:
            return None
        stream = stream[at + 4:]
    i, size = 2, len(stream)
    while i + 4 <= size:
        if stream[i] != 0xFF:
            return None
        marker = stream[i + 1]
        if marker in (0x90, 0x93):  # start of tile / data: the main header is over
            return None
        length = int.from_bytes(stream[i + 2:i + 4], "big")
        if marker == 0x52 and i + 13 < size:  # COD: Lcod, Scod, SGcod (4), SPcod: levels, xcb, ycb, style, transform
            if stream[i + 13] == 0:
                return "the JPEG 2000 code stream uses the irreversible 9-7 wavelet (lossy) although the transfer syntax says lossless"
            return None
        if length < 2:
            return None
        i += 2 + length
    return None


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
        if jpeg >= 0 and syntax not in _J2K_SYNTAXES:
            found = _jpeg(stream[jpeg:], syntax)
        elif j2k >= 0 or jp2 >= 4:
            found = _jpeg2000(stream[j2k:] if j2k >= 0 else stream[jp2 - 4:])
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
