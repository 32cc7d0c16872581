"""The raw-layout rewrite is the pydicom de-identification, byte for byte, only faster.

Oracle: :func:`visceral.deid.rules.deidentify_header` on a whole pydicom data set (the reference
path, itself tested for zero leaks in test_deid.py).  For every test file -- planted sentinels in
every Annex E attribute, implicit and explicit VR, pydicom's own test files (compressed, odd
padding, UN elements, multi-frame) and random headers from hypothesis -- both paths must write the
same bytes and keep the same audit record (originals for the leak scan, values written, action
counts, notes), and the leak scan must say the same of both.
"""

from __future__ import annotations

import warnings
from io import BytesIO
from pathlib import Path
from typing import List, Tuple

import dicom_corpus as corpus
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.datadict import dictionary_has_tag, dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from visceral.deid.identifiers import (
    Identifiers,
    find_in_bytes,
    find_in_text,
    printable_runs,
)
from visceral.deid.identity import SecretKey
from visceral.deid.pipeline import _encode_file
from visceral.deid.profile import default_profile
from visceral.deid.rawdicom import Unsupported, parse_file
from visceral.deid.rawpath import RawRewriter
from visceral.deid.rules import HeaderContext, deidentify_header
from visceral.deid.tables import annex_e
from visceral.fileio import write_dicom

KEY = SecretKey(bytes(range(32)))
PROFILE = default_profile()
PATIENT = corpus.Patient("PID-RAW-0042", "Raw^Rita^Q", "19610203", "F", None)


def pydicom_path(data: bytes, offset: int) -> Tuple[bytes, HeaderContext, pydicom.Dataset]:
    """The reference: the whole data set through pydicom, written as the pipeline writes it."""
    ds = pydicom.dcmread(BytesIO(data))
    ctx = HeaderContext(KEY, PROFILE, "subject07", offset)
    deidentify_header(ds, ctx)
    ds.preamble = bytes(128)
    if "FileMetaInformationGroupLength" not in ds.file_meta:
        ds.file_meta.FileMetaInformationGroupLength = 0
    return _encode_file(ds), ctx, ds


def assert_same(data: bytes, rewriter: RawRewriter, tmp_path: Path, offset: int = -1234, name: str = "") -> None:
    raw = parse_file(data)
    ctx = HeaderContext(KEY, PROFILE, "subject07", offset)
    rewritten = rewriter.rewrite(raw, ctx)
    expected, ref, ds = pydicom_path(data, offset)
    meta_end = parse_file(expected).meta_end
    assert rewritten.data[meta_end:] == expected[meta_end:], f"{name}: data set bytes differ"
    ours, theirs = pydicom.dcmread(BytesIO(rewritten.data)), pydicom.dcmread(BytesIO(expected))
    assert ours.file_meta == theirs.file_meta, name
    if rewritten.data[:meta_end] != expected[:meta_end]:
        # Only a non-conformant padding of an untouched meta value (NUL instead of space) may differ:
        # pydicom copies its raw bytes, the rewrite re-encodes the meta it read.
        assert len(rewritten.data) == len(expected), name
    assert ctx.originals == ref.originals, name
    assert ctx.written == ref.written, name
    assert ctx.counts == ref.counts, name
    assert ctx.notes == ref.notes, name
    ids = Identifiers.build(ctx.originals.items(), ctx.written)
    assert ids == Identifiers.build(ref.originals.items(), ref.written), name
    assert find_in_bytes(rewritten.data, ids, header_end=rewritten.header_end) == find_in_bytes(expected, ids), name


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> List[Path]:
    base = tmp_path_factory.mktemp("raw")
    planted = corpus.write_series(base / "ct", PATIENT, corpus.SeriesSpec("CT", rows=16, columns=16, slices=3, series_number=3), plant=True)
    plain = corpus.write_series(base / "mr", PATIENT, corpus.SeriesSpec("MR", rows=16, columns=16, slices=3, series_number=4, seed=3))
    implicit = []
    for path in planted.paths[:1] + plain.paths[:2]:
        ds = pydicom.dcmread(str(path))
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        target = base / f"implicit_{path.name}"
        write_dicom(ds, str(target), implicit_vr=True)
        implicit.append(target)
    enhanced = corpus.write_enhanced_mr(base / "emr.dcm", PATIENT, corpus.SeriesSpec("MR", slices=2, rows=8, columns=8, series_number=6))
    return planted.paths + plain.paths + implicit + enhanced.paths


def test_generated_series_are_rewritten_exactly_as_pydicom_does(series: List[Path], tmp_path: Path) -> None:
    rewriter = RawRewriter(KEY.raw(), PROFILE)
    for path in series:
        assert_same(path.read_bytes(), rewriter, tmp_path, name=path.name)
    assert rewriter.hits > 0, "a series' repeated sequences come from the memo"
    # Again with everything memoized: the same answers.
    for path in series:
        assert_same(path.read_bytes(), rewriter, tmp_path, name=path.name)


def pydicom_files() -> List[Path]:
    """pydicom's test files, and its character set files (Latin, Greek, Cyrillic, Arabic, Hebrew,
    Japanese, Korean and Chinese names, ISO 2022 escapes, UTF-8, sequences in other character sets)."""
    folder = corpus.pydicom_test_file("CT_small.dcm").parent
    return sorted(folder.glob("*.dcm")) + sorted((folder.parent / "charset_files").glob("*.dcm"))


def test_every_pydicom_test_file_is_rewritten_exactly_or_left_to_pydicom(tmp_path: Path) -> None:
    rewriter = RawRewriter(KEY.raw(), PROFILE)
    done, left = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in pydicom_files():
            data = path.read_bytes()
            try:
                parse_file(data)
            except Unsupported:
                left.append(path.name)
                continue
            try:
                pydicom_path(data, 500)
            except Exception:  # noqa: BLE001 - files pydicom itself cannot de-identify are not compared
                continue
            assert_same(data, rewriter, tmp_path, offset=500, name=path.name)
            done.append(path.name)
    assert len(done) >= 65, done
    assert {"chrH31.dcm", "chrX1.dcm", "chrSQEncoding.dcm", "chrGerm.dcm"} <= set(done)
    # Big endian, deflated, truncated, no preamble, UN sequences: the pipeline uses pydicom for these.
    assert {"MR_small_bigendian.dcm", "image_dfl.dcm", "MR_truncated.dcm", "no_meta.dcm", "UN_sequence.dcm"} <= set(left)


def test_layout_matches_pydicom_top_level_elements() -> None:
    for name in ("CT_small.dcm", "MR_small_RLE.dcm", "liver_1frame.dcm", "MR_small_implicit.dcm", "JPEG2000.dcm"):
        data = corpus.pydicom_test_file(name).read_bytes()
        raw = parse_file(data)
        ds = pydicom.dcmread(BytesIO(data))
        assert [e.tag for e in raw.elements] == [int(t) for t in ds.keys()], name
        assert [e.tag for e in raw.meta] == [int(t) for t in ds.file_meta.keys()], name
        pixels = next(e for e in raw.elements if e.tag == 0x7FE00010)
        if not ds.file_meta.TransferSyntaxUID.is_compressed:
            assert data[pixels.value:pixels.end] == ds.PixelData, name


@pytest.mark.parametrize("cut", [200, 1000, -7])
def test_truncated_files_are_left_to_pydicom(cut: int) -> None:
    data = corpus.pydicom_test_file("CT_small.dcm").read_bytes()
    with pytest.raises(Unsupported):
        parse_file(data[:cut])


_STRING_ATTRIBUTES = sorted(
    (tag, rule.keyword) for tag, rule in annex_e()[0].items()
    if rule.keyword and dictionary_has_tag(tag) and tag >> 16 not in (0x0000, 0x0002, 0x0004, 0x0008) and dictionary_VR(tag) in ("LO", "SH", "PN", "CS", "DA", "DT", "TM", "UI", "AS", "LT", "ST")
)
_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\"), max_size=12)


def _value(vr: str) -> st.SearchStrategy:
    if vr == "DA":
        return st.sampled_from(["", "20190415", "19000101", "2019041", "20190415-20190501", "notadate"])
    if vr == "DT":
        return st.sampled_from(["", "20190415101010", "2019", "201904", "20190415101010.5+0100", "x"])
    if vr == "UI":
        return st.lists(st.from_regex(r"1\.2\.[1-9][0-9]{0,8}(\.[1-9][0-9]{0,5}){0,3}", fullmatch=True), min_size=0, max_size=3)
    if vr == "AS":
        return st.sampled_from(["", "045Y", "095Y", "012M", "003W"])
    if vr in ("LT", "ST"):
        return _TEXT
    return st.lists(_TEXT, min_size=0, max_size=3)


@st.composite
def headers(draw) -> Tuple[Dataset, bool]:
    ds = Dataset()
    for tag, keyword in draw(st.lists(st.sampled_from(_STRING_ATTRIBUTES), min_size=1, max_size=12, unique=True)):
        value = draw(_value(dictionary_VR(tag)))
        setattr(ds, keyword, value if not isinstance(value, list) or len(value) != 1 else value[0])
    ds.PatientID = draw(st.sampled_from(["", "PID-1", "X"]))
    ds.ProtocolName = draw(_TEXT)  # emptied by the profile
    ds.add_new(0x00291010, "LO", draw(_TEXT))  # a private element without its creator
    return ds, draw(st.booleans())


@settings(max_examples=60, deadline=None)
@given(header=headers())
def test_random_headers_are_rewritten_exactly_as_pydicom_does(header: Tuple[Dataset, bool], tmp_path_factory: pytest.TempPathFactory) -> None:
    ds, implicit = header
    ds.SOPClassUID = corpus.CT_STORAGE
    ds.SOPInstanceUID = "1.2.3.4"
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated, ds.PixelRepresentation = 16, 0
    ds.PixelData = b"\0" * 8
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = corpus.CT_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    out = BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_dicom(ds, out, conform=True, implicit_vr=implicit)
        assert_same(out.getvalue(), RawRewriter(KEY.raw(), PROFILE), tmp_path_factory.mktemp("h"), offset=-400, name=str(ds))


def test_preamble_never_reaches_the_release_on_either_path(tmp_path: Path) -> None:
    """A dual-format file's preamble (a TIFF header, or any bytes) may carry identifying text:
    every released file starts with 128 zero bytes, whichever path wrote it."""
    from visceral.deid import deidentify

    inp = tmp_path / "in"
    written = corpus.write_series(inp, PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=1, series_number=2))
    data = bytearray(written.paths[0].read_bytes())
    data[:128] = b"Raw^Rita^Q PID-RAW-0042".ljust(128, b"\0")
    written.paths[0].write_bytes(bytes(data))
    big_endian = inp / "big_endian.dcm"  # an encoding the raw reader leaves to pydicom
    big_endian.write_bytes(b"Raw^Rita^Q".ljust(128, b"\0") + corpus.pydicom_test_file("MR_small_bigendian.dcm").read_bytes()[128:])
    report = deidentify(inp, tmp_path / "out", jobs=1, conformance="off")
    released = [f for f in report.files if f.fate == "released"]
    assert len(released) == 2, report.to_text()
    for result in released:
        assert (tmp_path / "out" / result.output).read_bytes()[:132] == bytes(128) + b"DICM"


def test_numbers_match_only_whole_in_bytes_and_text() -> None:
    """A new UID's 39 random digits may contain an original 8-digit date: no hit.  The date as a
    whole value is one, in the bytes and in kept text."""
    ids = Identifiers.build([("20190415", "date")])
    uid = "2.25.1234201904155678"
    data = bytes(132) + b"\x08\x00\x18\x00UI" + len(uid).to_bytes(2, "little") + uid.encode()
    assert find_in_bytes(data, ids) == []
    dated = data + b"\x08\x00\x20\x00DA\x08\x0020190415"
    assert find_in_bytes(dated, ids) == ["header bytes"]
    assert find_in_text(uid, ids) == [] and find_in_text("20190415", ids) != []


_PIXELS = st.binary(min_size=9000, max_size=9000) | st.builds(lambda n, t: bytes(n) + t, st.integers(8200, 9000), st.binary(max_size=40))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300) | _PIXELS, min_length=st.integers(1, 8))
def test_printable_runs_match_a_regular_expression(data: bytes, min_length: int) -> None:
    import re

    assert printable_runs(data, min_length) == b"\0".join(re.findall(rb"[\x20-\x7e]{%d,}" % min_length, data))


def test_the_same_dciodvfy_error_with_other_values_is_not_new() -> None:
    """A shifted invalid date gives the error its input had, quoting other characters: not new.
    The same error on another attribute is."""
    from visceral.deid.qa import added_errors

    before = ["Error - Value invalid for this VR - (0x0008,0x0012) DA Instance Creation Date  DA [1] = <40000102> - "
              "Character invalid for this VR = '4' (0x34)"]
    after = ["Error - Value invalid for this VR - (0x0008,0x0012) DA Instance Creation Date  DA [1] = <39980411> - "
             "Character invalid for this VR = '3' (0x33)"]
    assert added_errors(before, after) == []
    other = [after[0].replace("(0x0008,0x0012) DA Instance Creation Date", "(0x0008,0x0024) DA Overlay Date")]
    assert added_errors(before, other) == other


def test_a_header_longer_than_the_pre_pass_read_is_read_whole(tmp_path: Path) -> None:
    """A private block before the patient's group ending exactly where the pre-pass stops reading
    (64 KiB): the pre-pass must see that its groups go on, not take the patient as missing."""
    from visceral.deid import deidentify
    from visceral.deid.pipeline import PREPASS_BYTES

    inp = tmp_path / "in"
    path = corpus.write_series(inp, PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=1, series_number=2)).paths[0]
    ds = pydicom.dcmread(str(path))
    block = ds.private_block(0x0009, "BIG VENDOR", create=True)
    block.add_new(0x01, "OB", b"")
    write_dicom(ds, str(path), conform=False)
    start = next(e for e in parse_file(path.read_bytes()).elements if e.tag == 0x00091001).value
    ds[0x00091001].value = b"\x01" * (PREPASS_BYTES - start)
    write_dicom(ds, str(path), conform=False)
    assert next(e for e in parse_file(path.read_bytes()).elements if e.tag == 0x00091001).end == PREPASS_BYTES
    report = deidentify(inp, tmp_path / "out", jobs=1, conformance="off")
    assert [f.fate for f in report.files] == ["released"], report.to_text()
