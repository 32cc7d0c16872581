"""One bad file never stops the batch; what admission refuses; what the header rules do by Type and VR.

Each test names a class of input that broke the first de-identifier (see docs/DEIDENTIFICATION.md):
it fails on that code and passes on this one.
"""

from __future__ import annotations

import json
import os
import struct
import tracemalloc
from pathlib import Path
from typing import Dict

import dicom_corpus as corpus
import pydicom
import pytest
import realworld
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from visceral.deid import deidentify
from visceral.deid.identifiers import Identifiers, clean_text, find_in_text
from visceral.deid.identity import SecretKey
from visceral.deid.pixels import fragments, lossy_code_stream
from visceral.deid.profile import default_profile
from visceral.deid.rules import (
    HeaderContext,
    deidentify_header,
    shift_datetime,
    shift_time,
)
from visceral.fileio import write_dicom

PATIENT = corpus.Patient("PID-ROBUST-0001", "Robust^Rosalind", "19590612", "F", None)
CT_FILE = realworld.REALWORLD / "philips_ct_axial" / "I140.dcm"


def run(inp: Path, out: Path) -> Dict[str, object]:
    report = deidentify(inp, out, jobs=1, conformance="off")
    written = json.loads((out.parent / f"{out.name}.private" / "deid_report.json").read_text(encoding="utf-8"))
    return {"report": report, "json": written, "by": {f.source: f for f in report.files}}


def run_one(ds: Dataset, tmp_path: Path, name: str, out: str = "out"):
    """De-identify the one data set ``ds`` (written as ``in/<name>``): its result, and its output read back
    (``None`` when not released)."""
    inp = tmp_path / "in"
    inp.mkdir(exist_ok=True)
    write_dicom(ds, str(inp / name))
    got = run(inp, tmp_path / out)["by"][name]
    return got, (pydicom.dcmread(str(tmp_path / out / got.output)) if got.output else None)


def _nested(depth: int) -> bytes:
    """A Referenced Image Sequence nested ``depth`` levels deep, every length undefined (explicit VR LE)."""
    item_start, item_end, seq_end = b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\x0d\xe0\x00\x00\x00\x00", b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    head = b"\x08\x00\x40\x11SQ\x00\x00\xff\xff\xff\xff"
    return head + item_start + (_nested(depth - 1) if depth > 1 else b"") + item_end + seq_end if depth else b""


def test_one_bad_file_is_one_refusal_and_the_batch_goes_on(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    good = corpus.write_series(inp / "good", PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=5, series_number=2))
    # deeply nested undefined-length sequences (the first version died of RecursionError)
    data = good.paths[2].read_bytes()
    pixel = data.find(b"\xe0\x7f\x10\x00")
    deep = inp / "deep.dcm"
    deep.write_bytes(data[:pixel] + _nested(400) + data[pixel:])
    good.paths[2].unlink()
    # an element with a VR the standard does not have
    data = good.paths[3].read_bytes()
    pixel = data.find(b"\xe0\x7f\x10\x00")
    odd = inp / "odd_vr.dcm"
    odd.write_bytes(data[:pixel] + b"\x08\x00\x00\x21ZZ\x04\x00abcd" + data[pixel:])
    good.paths[3].unlink()
    # a file name that is not valid UTF-8
    strange = os.fsdecode(bytes(inp) + b"/pati\xe9nt \xff.dcm")
    good.paths[4].rename(strange)
    result = run(inp, tmp_path / "out")
    fates = {s: f.fate for s, f in result["by"].items()}
    assert sum(f == "released" for f in fates.values()) >= 3, fates  # the good files, the strangely named one among them
    assert fates["deep.dcm"] in ("refused", "failed") and "\n" not in result["by"]["deep.dcm"].reason
    assert fates["odd_vr.dcm"] in ("released", "refused", "failed")
    assert any("\\xe9" in s for s in fates), fates  # the report names it, readably
    assert len(result["json"]["files"]) == len(fates)


def test_same_instance_uid_of_two_patients_both_released_and_truncated_copy_never_hides_its_twin(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    first = corpus.write_series(inp / "a", PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=1, series_number=2)).paths[0]
    other = corpus.Patient("PID-OTHER-0002", "Other^Otto", "19600101", "M", None)
    ds = pydicom.dcmread(str(first))
    ds.PatientID, ds.PatientName = other.patient_id, other.name
    write_dicom(ds, str(inp / "b.dcm"), conform=False)  # same SOP Instance UID, another patient
    intact = corpus.write_series(inp / "z", PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=1, series_number=3)).paths[0]
    (inp / "0_truncated_copy.dcm").write_bytes(intact.read_bytes()[:-40])  # sorts first
    result = run(inp, tmp_path / "out")
    by = result["by"]
    assert by["b.dcm"].fate == "released" and by[first.relative_to(inp).as_posix()].fate == "released"
    assert by["b.dcm"].subject != by[first.relative_to(inp).as_posix()].subject
    uids = {pydicom.dcmread(str(tmp_path / "out" / by[s].output)).SOPInstanceUID for s in ("b.dcm", first.relative_to(inp).as_posix())}
    assert len(uids) == 2  # two images, two UIDs in the release
    assert by[intact.relative_to(inp).as_posix()].fate == "released"
    assert by["0_truncated_copy.dcm"].fate == "skipped" and "same SOP Instance UID" in by["0_truncated_copy.dcm"].reason


def test_a_huge_non_dicom_file_is_never_read_whole(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    with open(inp / "video.bin", "wb") as handle:
        handle.truncate(1 << 30)  # 1 GiB (sparse)
    tracemalloc.start()
    try:
        result = run(inp, tmp_path / "out")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result["by"]["video.bin"].fate == "skipped"
    assert peak < 64 << 20, peak


def test_a_killed_run_leaves_nothing_inside_output(tmp_path: Path) -> None:
    """Outputs are written and checked in a staging folder beside OUTPUT; only released files enter it."""
    from visceral.deid.pipeline import staging_dir

    out = tmp_path / "out"
    staging = staging_dir(out)
    staging.mkdir(parents=True)
    (staging / "leftover.dcm").write_bytes(b"refused content of a killed run")
    inp = tmp_path / "in"
    corpus.write_series(inp, PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=1, series_number=2))
    run(inp, out)
    assert not staging.exists()
    assert all(not p.name.startswith(".") for p in out.rglob("*"))


@pytest.mark.parametrize("changes, reason", [
    ({"LossyImageCompression": "1"}, "neither 00 nor 01"),
    ({"LossyImageCompression": "YES"}, "neither 00 nor 01"),
    ({"LossyImageCompressionRatio": "10"}, "Ratio"),
    ({"LossyImageCompressionMethod": "ISO_10918_1"}, "lossy method"),
    ({"BurnedInAnnotation": "Y"}, "Burned In Annotation"),
    ({"ImageType": "SCREEN SAVE"}, "SCREEN SAVE"),
    ({"ImageType": ["DERIVED", "SECONDARY", "SCREEN SAVE"]}, "SCREEN SAVE"),
    ({"RecognizableVisualFeatures": "YES"}, "Recognizable Visual Features"),
])
def test_lossy_and_burned_in_variants_are_refused(tmp_path: Path, changes: Dict[str, object], reason: str) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    corpus.variant(CT_FILE, inp / "variant.dcm", **changes)
    result = run(inp, tmp_path / "out")
    got = result["by"]["variant.dcm"]
    assert got.fate == "refused" and reason in got.reason, got


def test_a_lossy_code_stream_inside_a_lossless_transfer_syntax_is_refused(tmp_path: Path) -> None:
    baseline = pydicom.dcmread(str(corpus.pydicom_test_file("SC_rgb_jpeg_dcmtk.dcm")))
    stream = pydicom.encaps.generate_pixel_data_frame(baseline.PixelData).__next__() if hasattr(pydicom.encaps, "generate_pixel_data_frame") \
        else next(pydicom.encaps.generate_frames(baseline.PixelData))
    assert lossy_code_stream(stream, "1.2.840.10008.1.2.4.70") is not None  # baseline process labelled lossless
    lossless = pydicom.dcmread(str(realworld.REALWORLD / "siemens_ct_jpegll" / "bad_sequence.dcm"))
    frame = next(pydicom.encaps.generate_frames(lossless.PixelData)) if hasattr(pydicom.encaps, "generate_frames") else \
        pydicom.encaps.generate_pixel_data_frame(lossless.PixelData).__next__()
    assert lossy_code_stream(frame, "1.2.840.10008.1.2.4.70") is None  # process 14: lossless
    # the same check inside a batch: a CT whose JPEG lossless stream is swapped for a baseline one
    inp = tmp_path / "in"
    inp.mkdir()
    lossless.PixelData = pydicom.encaps.encapsulate([stream])
    write_dicom(lossless, str(inp / "relabelled.dcm"), conform=False)
    got = run(inp, tmp_path / "out")["by"]["relabelled.dcm"]
    assert got.fate == "refused" and "baseline" in got.reason, got


def _deidentify(ds: Dataset) -> HeaderContext:
    ctx = HeaderContext(SecretKey(bytes(range(32))), default_profile(), "subject01", -400, 3600, str(ds.SOPClassUID))
    deidentify_header(ds, ctx)
    return ctx


def test_annex_e_codes_resolve_by_the_type_in_the_iod() -> None:
    ds = pydicom.dcmread(str(CT_FILE))
    reference = Dataset()
    reference.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    reference.ReferencedSOPInstanceUID = "1.2.3.4.5"
    ds.ReferencedStudySequence = Sequence([reference])  # X/Z, Type 3 in General Study: removed, not zero items
    ds.ReferringPhysicianName = "Doctor^Who"  # Z, Type 2: present, empty
    ds.AccessionNumber = "A123456"  # Z, Type 2
    ds.OperatorsName = "Op^Olga"  # X/Z/D, Type 3: removed
    ds.add_new(0x00181000, "LO", "SN-4711")  # Device Serial Number: X/Z/D, Type 3 in General Equipment
    ds.add_new(0x00091010, "LO", "private")
    ds.add_new(0x00211001, "SQ", Sequence([Dataset()]))
    ds.add_new(0x00189999, "LO", "not a standard attribute of this IOD")  # unknown: removed
    _deidentify(ds)
    assert "ReferencedStudySequence" not in ds
    assert "ReferringPhysicianName" in ds and not ds.ReferringPhysicianName
    assert "AccessionNumber" in ds and not ds.AccessionNumber
    assert "OperatorsName" not in ds and "DeviceSerialNumber" not in ds
    assert 0x00091010 not in ds and 0x00211001 not in ds and 0x00189999 not in ds


def test_names_uids_dates_and_invalid_characteristics_follow_their_vr_rules() -> None:
    ds = pydicom.dcmread(str(CT_FILE))
    ds.PatientAge = "45"  # not an AS value: removed
    ds.PatientSex = "X"  # not M, F or O: emptied
    ds.StudyTime = "101500"
    ds.StudyDate = "20200101"
    ds.AcquisitionDateTime = "20200101233000.5+0100"
    ds.add_new(0x00080017, "UI", "1.2.3.4.99")  # Acquisition UID: not in Annex E, an instance UID: replaced
    ctx = _deidentify(ds)
    assert "PatientAge" not in ds and ds.PatientSex in ("", None)
    assert ds.StudyTime == "111500" and ds.StudyDate == "20181127"  # +1 h, -400 days
    assert ds.AcquisitionDateTime == "20181128003000.5"  # one instant: the date rolls over, the zone goes
    assert 0x00080017 not in ds or not str(ds[0x00080017].value).startswith("1.2.3.4")
    assert "PatientAge: not a valid AS value; removed" in ctx.notes
    ds = pydicom.dcmread(str(CT_FILE))
    ds.PatientAge, ds.PatientSex = "7 w", "f"  # an age and a sex in other forms: written in theirs
    _deidentify(ds)
    assert (ds.PatientAge, ds.PatientSex) == ("007W", "F")


def test_shifts_keep_the_precision_of_the_value() -> None:
    assert shift_time("1015", 90) == ("1016", 0)
    assert shift_time("10:15:30", 3600) == ("11:15:30", 0)
    assert shift_time("233000.123456", 3600) == ("003000.123456", 1)
    assert shift_time("25", 0) is None
    assert shift_datetime("2020", -400) == "2019"
    assert shift_datetime("20200101", -1) == "20191231"


@pytest.mark.parametrize("text", [
    "Kowalski, Annemarie", "annemarie kowalski", "KOWALSKI^ANNEMARIE", "Annemarie", "Kowalski-Nowak", "kowalski_a",
    "ID 12345678", "0012345678", "born 03.02.1965", "3 Feb 1965", "February 3, 1965", "1965-02-03", "19650203", "2/3/1965",
])
def test_identifiers_are_found_in_every_form(text: str) -> None:
    ids = Identifiers.build([("Kowalski^Annemarie", "name"), ("0012345678", "id"), ("19650203", "date")])
    hits = find_in_text(text, ids)
    assert hits, text
    assert "X" in clean_text(text, hits) and len(clean_text(text, hits)) == len(text)


@pytest.mark.parametrize("text", ["Annotation", "KOWALSKIS"[:3], "1.2.840.10008.1.2", "20190203", "Kowalsky", "LIVER", "123456789"])
def test_identifiers_do_not_match_other_words(text: str) -> None:
    ids = Identifiers.build([("Kowalski^Annemarie", "name"), ("0012345678", "id"), ("19650203", "date"), ("Li^Wu", "name")])
    assert find_in_text(text, ids) == [], text


def test_names_in_declared_character_sets_are_found_and_bytes_searched() -> None:
    for who, _codec in realworld.SCRIPTS:
        ids = Identifiers.build([(who.pn, "name")])
        assert find_in_text(f"note on {who.family} {who.given}", ids), who
        assert find_in_text(who.family, ids), who


def test_a_sequence_stored_as_binary_is_removed_not_kept() -> None:
    ds = pydicom.dcmread(str(CT_FILE))
    inner = Dataset()
    inner.PatientName = "Hidden^Harry"
    ds.add_new(0x00081140, "OB", b"\xfe\xff\x00\xe0\x10\x00\x00\x00" + struct.pack("<HH", 0x10, 0x10) + b"\x0c\x00\x00\x00Hidden^Harry")
    ctx = _deidentify(ds)
    assert 0x00081140 not in ds and any("binary VR" in n for n in ctx.notes)


def _relabel(src: Path, dst: Path, syntax: str, pad_com: int = 0) -> Path:
    """A real lossy file relabelled lossless (its lossy flags dropped); ``pad_com`` bytes of JPEG 2000
    comment inserted before the COD segment push it past any fixed-size window."""
    ds = pydicom.dcmread(str(src))
    ds.file_meta.TransferSyntaxUID = syntax
    for keyword in ("LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod", "DerivationCodeSequence",
                    "DerivationDescription", "SourceImageSequence"):
        if keyword in ds:
            del ds[keyword]
    if pad_com:
        frames = [bytes(f) for f in fragments(ds.PixelData)]
        first = frames[0]
        cod = first.find(b"\xff\x52")
        com = b"\xff\x64" + (pad_com + 4).to_bytes(2, "big") + b"\x00\x01" + b"A" * pad_com
        frames[0] = first[:cod] + com + first[cod:]
        ds.PixelData = pydicom.encaps.encapsulate(frames)
    write_dicom(ds, str(dst))
    return dst


@pytest.mark.parametrize("name, src, syntax, pad, reason", [
    ("j2k97.dcm", "lossy_philips_ct_j2k/MAROTECH_CT_JP2Lossy.dcm", "1.2.840.10008.1.2.4.90", 0, "9-7 wavelet"),
    ("j2k97_padded.dcm", "lossy_philips_ct_j2k/MAROTECH_CT_JP2Lossy.dcm", "1.2.840.10008.1.2.4.90", 65000, "9-7 wavelet"),
    ("jls_near.dcm", "lossy_ge_ct_jpegls_near/CT1_JLSN.dcm", "1.2.840.10008.1.2.4.80", 0, "NEAR="),
])
def test_real_lossy_code_streams_relabelled_lossless_are_refused(tmp_path: Path, name: str, src: str, syntax: str, pad: int,
                                                                reason: str) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    _relabel(realworld.REALWORLD / src, inp / name, syntax, pad)
    got = run(inp, tmp_path / "out")["by"][name]
    assert got.fate == "refused" and reason in got.reason, got


def test_jpeg_2000_under_its_lossy_or_lossless_syntax_is_refused_even_when_flagged_00(tmp_path: Path) -> None:
    """A real reversible (5-3) JPEG 2000 stream stored under 1.2.840.10008.1.2.4.91 with Lossy Image Compression 00
    (as some archives store lossless files): refused.  No header proves it lossless: an encoder reaches a ratio
    with the 5-3 wavelet too, by cutting bit planes, and tile-part headers or component overrides may say 9-7."""
    inp = tmp_path / "in"
    inp.mkdir()
    path = _relabel(realworld.REALWORLD / "ts_siemens_mr_j2k_lossless" / "9.dcm", inp / "j2k.dcm", "1.2.840.10008.1.2.4.91")
    ds = pydicom.dcmread(str(path))
    ds.LossyImageCompression = "00"
    write_dicom(ds, str(path))
    got = run(inp, tmp_path / "out")["by"]["j2k.dcm"]
    assert got.fate == "refused" and "1.2.840.10008.1.2.4.91 is not uncompressed or lossless" in got.reason, got


def _with_segment_after(stream: bytes, marker: bytes, segment: bytes) -> bytes:
    """``stream`` with ``segment`` inserted after the first marker segment ``marker`` (its length field read)."""
    at = stream.find(marker)
    end = at + 2 + int.from_bytes(stream[at + 2:at + 4], "big")
    return stream[:end] + segment + stream[end:]


def test_lossy_coding_hidden_past_a_lossless_main_header_is_found() -> None:
    """A real reversible JPEG 2000 stream (Siemens MR) and a real JPEG-LS one, labelled lossless, edited where
    decoders look but a main-header reader does not: a tile-part header's COD, a component's COC, a JP2 box
    whose text holds 'jp2c' before the real one, a second JPEG-LS scan with NEAR > 0."""
    j2k = pydicom.dcmread(str(realworld.REALWORLD / "ts_siemens_mr_j2k_lossless" / "9.dcm"))
    stream = bytes(next(fragments(j2k.PixelData)))
    assert lossy_code_stream(stream, "1.2.840.10008.1.2.4.90") is None
    cod_97 = bytes.fromhex("ff52000c00000001000504040000")  # the stream's own COD, transform 0 (9-7)
    sot = stream.find(b"\xff\x90")
    psot = int.from_bytes(stream[sot + 6:sot + 10], "big")
    tile_part = stream[:sot + 6] + (psot + len(cod_97)).to_bytes(4, "big") + stream[sot + 10:sot + 12] + cod_97 + stream[sot + 12:]
    coc_97 = bytes.fromhex("ff53000a00000504040000")  # component 0: Scoc 0, 5 levels, 64x64 blocks, style 0, transform 0
    coc = _with_segment_after(stream, b"\xff\x52", coc_97)
    decoy = b"".join((8 + len(body)).to_bytes(4, "big") + kind + body for kind, body in ((b"jP  ", b"\r\n\x87\n"), (b"ftyp", b"jp2 \0\0\0\0jp2 "), (b"xml ", b"jp2c" + stream[:200])))
    decoy += (8 + len(tile_part)).to_bytes(4, "big") + b"jp2c" + tile_part
    for edited in (tile_part, coc, decoy):
        encapsulated = pydicom.encaps.encapsulate([edited])  # as Pixel Data holds it
        assert "irreversible 9-7" in (lossy_code_stream(encapsulated, "1.2.840.10008.1.2.4.90") or ""), edited[:16]
    jls = pydicom.dcmread(str(realworld.REALWORLD / "ts_siemens_mr_jpegls" / "7.dcm"))
    stream = bytes(next(fragments(jls.PixelData)))
    assert lossy_code_stream(stream, "1.2.840.10008.1.2.4.80") is None
    sos = stream.find(b"\xff\xda")
    second = bytearray(stream[sos:sos + 2 + int.from_bytes(stream[sos + 2:sos + 4], "big")])
    second[5 + 2 * second[4]] = 3  # NEAR = 3 in a second scan
    two_scans = stream[:-2] + bytes(second) + b"\x00" * 16 + stream[-2:]
    assert "NEAR=3" in (lossy_code_stream(two_scans, "1.2.840.10008.1.2.4.80") or "")


def test_a_lossless_jpeg_point_transform_is_lossy(tmp_path: Path) -> None:
    ds = pydicom.dcmread(str(realworld.REALWORLD / "ts_siemens_mr_jpegll_sv1" / "5.dcm"))
    frame = bytearray(next(fragments(ds.PixelData)))
    sos = frame.find(b"\xff\xda")
    components = frame[sos + 4]
    assert lossy_code_stream(bytes(frame), "1.2.840.10008.1.2.4.70") is None
    frame[sos + 5 + 2 * components + 2] |= 0x02  # Al = 2: two low bits dropped
    assert "point transform 2" in lossy_code_stream(bytes(frame), "1.2.840.10008.1.2.4.70")
    ds.DerivationCodeSequence = Sequence([Dataset()])
    ds.DerivationCodeSequence[0].CodeValue = "113040"
    ds.DerivationCodeSequence[0].CodingSchemeDesignator = "DCM"
    ds.DerivationCodeSequence[0].CodeMeaning = "Lossy Compression"
    inp = tmp_path / "in"
    inp.mkdir()
    write_dicom(ds, str(inp / "derived.dcm"))
    got = run(inp, tmp_path / "out")["by"]["derived.dcm"]
    assert got.fate == "refused" and "113040" in got.reason


def test_an_uncompressed_predecessor_reference_does_not_make_a_lossless_image_lossy(tmp_path: Path) -> None:
    """DCM 121320 "Uncompressed predecessor" is set by lossless encoders too (as on pydicom's JPEG 2000
    reversible MR2_J2KR): with Lossy Image Compression 00 and a lossless code stream the image is released."""
    ds = pydicom.dcmread(str(realworld.REALWORLD / "ts_siemens_mr_j2k_lossless" / "9.dcm"))
    source = Dataset()
    source.ReferencedSOPClassUID = ds.SOPClassUID
    source.ReferencedSOPInstanceUID = pydicom.uid.generate_uid()
    source.PurposeOfReferenceCodeSequence = Sequence([Dataset()])
    source.PurposeOfReferenceCodeSequence[0].CodeValue = "121320"
    source.PurposeOfReferenceCodeSequence[0].CodingSchemeDesignator = "DCM"
    source.PurposeOfReferenceCodeSequence[0].CodeMeaning = "Uncompressed predecessor"
    ds.SourceImageSequence = Sequence([source])
    ds.LossyImageCompression = "00"
    ds.DerivationDescription = "JPEG 2000 reversible (lossless)"
    inp = tmp_path / "in"
    inp.mkdir()
    write_dicom(ds, str(inp / "j2kr.dcm"))
    del ds.LossyImageCompression  # nothing says lossless: the reference is the only word on it, and it may be lossy
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    write_dicom(ds, str(inp / "unflagged.dcm"))
    ds.LossyImageCompression, ds.DerivationDescription = "00", "JPEG 2000 irreversible 18:1"  # a flag the description contradicts
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    write_dicom(ds, str(inp / "irreversible.dcm"))
    by = run(inp, tmp_path / "out")["by"]
    assert by["j2kr.dcm"].fate == "released", by["j2kr.dcm"]
    assert by["unflagged.dcm"].fate == "refused" and "121320" in by["unflagged.dcm"].reason
    assert by["irreversible.dcm"].fate == "refused" and "irreversible" in by["irreversible.dcm"].reason.lower()


@pytest.mark.parametrize("description, lossy", [
    ("JPEG 2000 irreversible 18:1", "irreversible"), ("irreversibly compressed", "irreversibly"), ("LossyCompression", "lossycompression"),
    ("JPEG baseline compression", "baseline"), ("compressed at a ratio of 10:1", "10:1"),
    ("JPEG 2000 reversible (lossless) 2.1:1", ""), ("Lossless JPEG compression", ""), ("MPR 3:1 slab", ""), ("JPEG 1:1", ""),
])
def test_a_derivation_description_says_lossy_in_words_or_ratios(description: str, lossy: str) -> None:
    from visceral.deid.pixels import _lossy_words

    assert _lossy_words(description).lower() == lossy


def test_a_sequence_error_the_input_had_is_not_new_however_often_its_bytes_were_seen(tmp_path: Path) -> None:
    """A real Canon Enhanced MR has an empty Type 1 Anatomic Region Sequence in its shared functional
    groups: the error is the input's, so the file is released.  (The findings of a sequence's undecoded
    bytes were memoized without the paths inside it: the second check put the error at another path,
    and input and output no longer matched.)"""
    from visceral.deid.conformance import check

    ds = pydicom.dcmread(str(realworld.REALWORLD / "siemens_mr_enh_xa10" / "6_1.dcm"))
    ds.SharedFunctionalGroupsSequence[0].FrameAnatomySequence[0].AnatomicRegionSequence = Sequence()

    def defined_lengths(dataset: Dataset) -> None:  # as the Canon file has them (undecoded until read)
        for element in dataset:
            if element.VR == "SQ":
                element.is_undefined_length = False
                for item in element.value:
                    item.is_undefined_length_sequence_item = False
                    defined_lengths(item)

    defined_lengths(ds)
    inp = tmp_path / "in"
    inp.mkdir()
    write_dicom(ds, str(inp / "enh.dcm"))
    found = [[(f.path, f.message) for f in check(pydicom.dcmread(str(inp / "enh.dcm"), stop_before_pixels=True)) if f.severity == "error"]
             for _ in range(3)]
    assert found[0] == found[1] == found[2]
    assert ("(5200,9229)[0]>(0020,9071)[0]>(0008,2218)", "Type 1 sequence AnatomicRegionSequence has no Items") in found[0]
    got = run(inp, tmp_path / "out")["by"]["enh.dcm"]
    assert got.fate == "released", got


def test_words_of_medicine_in_an_institution_name_do_not_blank_the_anatomy(tmp_path: Path) -> None:
    """A real Siemens XA60 phantom (neurolabusc/dcm_qa_xa60) came from the "ICM Institute for Brain and
    Spinal Cord": its code meaning "Brain" stays; the institution's distinctive word is still cleaned
    wherever it is written."""
    ds = pydicom.dcmread(str(realworld.REALWORLD / "siemens_mr_enh_xa10" / "6_1.dcm"))
    ds.InstitutionName = "Salpetriere Institute for Brain and Spinal Cord"
    region = ds.SharedFunctionalGroupsSequence[0].FrameAnatomySequence[0].AnatomicRegionSequence
    region[0].CodeMeaning = "Brain (Salpetriere)"
    got, out = run_one(ds, tmp_path, "brain.dcm")
    assert got.fate == "released", got
    assert out.SharedFunctionalGroupsSequence[0].FrameAnatomySequence[0].AnatomicRegionSequence[0].CodeMeaning == "Brain (XXXXXXXXXXX)"
    # A name without a word of its own beside its field's words: those words are all that tell it apart.
    ds.InstitutionName = "Heart and Vascular Institute"
    region[0].CodeMeaning = "Heart Vascular CT"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    got, out = run_one(ds, tmp_path, "brain.dcm", out="out2")
    assert out.SharedFunctionalGroupsSequence[0].FrameAnatomySequence[0].AnatomicRegionSequence[0].CodeMeaning == "XXXXX XXXXXXXX CT"


@pytest.mark.parametrize("institution, kept, cleaned", [
    ("ICM Institute for Brain and Spinal Cord", "Brain ICM", "Brain XXX"),  # its own word (an acronym) beside: Brain stays
    ("Heart Center Bonn", "HEART CTR BONN cardiac", "XXXXX CTR BONN cardiac"),  # "Bonn" too short to search: Heart is cleaned
    ("Heart and Vascular Institute", "Heart Vascular CT", "XXXXX XXXXXXXX CT"),
    ("Royal Children's Hospital", "MRI BRAIN ROYAL CHILDRENS", "MRI BRAIN XXXXX CHILDRENS"),
    ("UCLA Medical Center", "UCLA brain MRI", "XXXX brain MRI"),
    ("MRI Zentrum Nord", "MRI Zentrum Nord", "XXX XXXXXXX XXXX"),  # the whole name
])
def test_an_institutions_words_of_medicine_are_cleaned_unless_it_has_a_word_of_its_own(institution: str, kept: str, cleaned: str) -> None:
    ids = Identifiers.build([(institution, "text")])
    assert clean_text(kept, find_in_text(kept, ids)) == cleaned


def test_the_released_files_name_visceral_as_their_implementation(tmp_path: Path) -> None:
    """The file meta's Implementation Class UID and Version Name name the writer of the file (PS3.10 7.1):
    the scanner's ("SYNGO_MR_XA60A") is replaced, so a patient name part that happens to be in it
    ("XA60") neither garbles it nor stays."""
    from visceral.deid.rules import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

    ds = pydicom.dcmread(str(realworld.REALWORLD / "siemens_mr_enh_xa10" / "6_1.dcm"))
    ds.PatientName = "phantom_check_TerraX_XA60"
    ds.file_meta.ImplementationVersionName = "SYNGO_MR_XA60A"
    got, out = run_one(ds, tmp_path, "meta.dcm")
    assert got.fate == "released", got
    meta = out.file_meta
    assert (meta.ImplementationClassUID, meta.ImplementationVersionName) == (IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME)
    assert pydicom.uid.UID(IMPLEMENTATION_CLASS_UID).is_valid and len(IMPLEMENTATION_VERSION_NAME) <= 16


def test_a_data_set_stored_without_preamble_and_file_meta_is_released_as_its_part10_file_is(tmp_path: Path) -> None:
    """Real CT (explicit VR) and MR (implicit VR) slices written bare, as older systems export them: read
    as what their first bytes say, given a file meta, released byte for byte as their Part 10 originals
    are.  pydicom's bare RT objects are dropped by class; a bare big-endian data set is one line."""
    import shutil

    import pydicom.data

    from visceral.deid.rawdicom import parse_file

    key = tmp_path / "key.hex"
    SecretKey.load_or_create(key)
    originals, bare = tmp_path / "part10", tmp_path / "bare"
    for folder in (originals, bare):
        folder.mkdir()
    for name in ("philips_ct_axial/I140.dcm", "philips_ct_axial/I150.dcm", "hitachi_mr_implicit/001.dcm", "hitachi_mr_implicit/002.dcm"):
        data = (realworld.REALWORLD / name).read_bytes()
        (originals / name.replace("/", "_")).write_bytes(data)
        (bare / name.replace("/", "_")).write_bytes(data[parse_file(data).meta_end:])
    for name in ("ExplVR_LitEndNoMeta.dcm", "rtstruct.dcm", "ExplVR_BigEndNoMeta.dcm"):
        shutil.copy(pydicom.data.get_testdata_file(name), bare / name)
    extra = tmp_path / "extra"  # other patients: a run of their own (they would shift the subject numbers)
    extra.mkdir()
    # compressed pixel data without the file meta that names its codec: refused, never taken as uncompressed
    compressed = (realworld.REALWORLD / "siemens_ct_jpegll" / "bad_sequence.dcm").read_bytes()
    (extra / "jpeg.dcm").write_bytes(compressed[parse_file(compressed).meta_end:])
    # a header longer than the pre-pass reads (a 70 KB private value): read whole all the same
    big = pydicom.dcmread(str(realworld.REALWORLD / "philips_ct_axial" / "I140.dcm"))
    big.add_new(0x00190010, "LO", "BIG CREATOR")
    big.add_new(0x00191001, "OB", bytes(70_000))
    buffer = pydicom.filebase.DicomBytesIO()
    write_dicom(big, buffer)
    data = buffer.getvalue()
    (extra / "big_header.dcm").write_bytes(data[parse_file(data).meta_end:])
    # its file meta, but no preamble and DICM before it
    (extra / "headless.dcm").write_bytes((realworld.REALWORLD / "hitachi_mr_implicit" / "003.dcm").read_bytes()[132:])
    expected = deidentify(originals, tmp_path / "expected", jobs=1, key_file=key)
    got = deidentify(bare, tmp_path / "out", jobs=1, key_file=key)
    fates = {f.source: (f.fate, f.reason) for f in got.files}
    for f in expected.files:
        assert f.fate == "released" and fates[f.source][0] == "released", fates
        assert (tmp_path / "out" / f.output).read_bytes() == (tmp_path / "expected" / f.output).read_bytes()
    notes = {f.source: f.notes for f in got.files}
    assert "stored without preamble and file meta: read as Implicit VR Little Endian, a file meta written" in notes["hitachi_mr_implicit_001.dcm"]
    assert fates["ExplVR_LitEndNoMeta.dcm"] == ("dropped", "RT Ion Plan Storage: not a CT/MR image object")
    assert fates["rtstruct.dcm"] == ("dropped", "RT Structure Set Storage: not a CT/MR image object")
    assert fates["ExplVR_BigEndNoMeta.dcm"][0] == "skipped" and "big-endian" in fates["ExplVR_BigEndNoMeta.dcm"][1]
    fates = {f.source: (f.fate, f.reason) for f in deidentify(extra, tmp_path / "extra_out", jobs=1, key_file=key).files}
    assert fates["jpeg.dcm"] == ("refused", "stored without file meta, with compressed (encapsulated) Pixel Data: its transfer syntax is unknown")
    assert fates["big_header.dcm"][0] == "released", fates["big_header.dcm"]
    assert fates["headless.dcm"][0] == "released", fates["headless.dcm"]
    age = pydicom.dcmread(str(tmp_path / "out" / next(f.output for f in got.files if f.source == "hitachi_mr_implicit_001.dcm"))).PatientAge
    assert age == "000Y"  # the scanner wrote "0Y": an age in the AS form, kept


def test_one_patient_id_with_two_names_is_one_subject_and_a_warning_without_the_names(tmp_path: Path) -> None:
    """Real slices of two people exported under one Patient ID (a reused test account, as dcm_qa's "crlab"):
    one subject, as a PACS would have it, and one warning line naming the subject, not the people."""
    inp = tmp_path / "in"
    inp.mkdir()
    for n, (name, birth) in enumerate((("Kowalski^Anna", "19650203"), ("Nowak^Jan", "19700101"))):
        ds = pydicom.dcmread(str(realworld.REALWORLD / "philips_ct_axial" / ("I140.dcm", "I150.dcm")[n]))
        ds.PatientID, ds.PatientName, ds.PatientBirthDate = "TESTACCOUNT", name, birth
        write_dicom(ds, str(inp / f"{n}.dcm"))
    result = run(inp, tmp_path / "out")
    report = result["report"]
    assert [f.subject for f in report.files] == ["subject01", "subject01"]
    assert report.warnings == ["subject01: one Patient ID with 2 name(s) and 2 birth date(s) in the input: released as one subject; "
                               "check it is one person"]
    assert "warning: subject01: one Patient ID" in report.to_text() and result["json"]["warnings"] == report.warnings


def test_a_code_stream_under_an_uncompressed_transfer_syntax_is_refused(tmp_path: Path) -> None:
    """A real JPEG code stream (Siemens CT, pydicom-data bad_sequence.dcm) stored as native Pixel Data of an
    8x8 image under Explicit VR Little Endian: longer than the image, starting with JPEG's SOI: refused."""
    ds = pydicom.dcmread(str(realworld.REALWORLD / "siemens_ct_jpegll" / "bad_sequence.dcm"))
    stream = bytes(next(fragments(ds.PixelData)))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.Rows = ds.Columns = 8
    ds.PixelData = stream + b"\0" * (len(stream) % 2)
    ds["PixelData"].VR = "OW"
    ds["PixelData"].is_undefined_length = False
    got, _ = run_one(ds, tmp_path, "jpeg_as_native.dcm")
    assert got.fate == "refused" and "holds a JPEG code stream" in got.reason, got


def test_overlays_are_removed_not_refused(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    path = corpus.write_series(inp, PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=1, series_number=2)).paths[0]
    ds = pydicom.dcmread(str(path))
    for tag, vr, value in ((0x60000010, "US", 8), (0x60000011, "US", 8), (0x60000040, "CS", "G"), (0x60000050, "SS", [1, 1]),
                           (0x60000100, "US", 1), (0x60000102, "US", 0), (0x60000022, "LO", "Robust Rosalind's marker"),
                           (0x60003000, "OW", b"\xff" * 8)):
        ds.add_new(tag, vr, value)  # an overlay plane (Overlay Data: X in Annex E, but Type 1 in its module)
    write_dicom(ds, str(path))
    path.rename(inp / "overlay.dcm")
    result = run(inp, tmp_path / "out")
    got = result["by"]["overlay.dcm"]
    assert got.fate == "released", got
    out = pydicom.dcmread(str(tmp_path / "out" / got.output))
    assert not [e for e in out if e.tag.group >> 8 == 0x60]


def test_a_refused_larger_copy_does_not_hide_its_intact_twin(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    intact = corpus.write_series(inp, PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=1, series_number=2)).paths[0]
    ds = pydicom.dcmread(str(intact))
    ds.LossyImageCompression = "01"
    ds.ImageComments = "x" * 4000  # larger
    write_dicom(ds, str(inp / "bigger_lossy_copy.dcm"))
    by = run(inp, tmp_path / "out")["by"]
    assert by["bigger_lossy_copy.dcm"].fate == "refused"
    assert by[intact.relative_to(inp).as_posix()].fate == "released"


def test_identity_is_pooled_over_the_patients_files(tmp_path: Path) -> None:
    """A file without the patient's name or birth date still gets them cleaned from its free text:
    the pre-pass pools each patient's identity over all its files."""
    inp = tmp_path / "in"
    first, second = corpus.write_series(inp, PATIENT, corpus.SeriesSpec("MR", rows=8, columns=8, slices=2, series_number=2)).paths
    ds = pydicom.dcmread(str(second))
    ds.PatientName = ""
    ds.PatientBirthDate = ""
    ds.ReceiveCoilName = "ROSALIND"
    ds.ManufacturerModelName = "DOB 1959-06-12"
    write_dicom(ds, str(second))
    by = run(inp, tmp_path / "out")["by"]
    out = pydicom.dcmread(str(tmp_path / "out" / by[second.relative_to(inp).as_posix()].output))
    assert "ROSALIND" not in str(out.ReceiveCoilName) and "1959" not in str(out.ManufacturerModelName)


@pytest.mark.parametrize("planted, keyword", [
    ("OBRIEN HEAD", "ReceiveCoilName"), ("VANDERBERG", "TransmitCoilName"), ("JohnDoeScanner", "ManufacturerModelName"),
    ("MRN00123456", "SoftwareVersions"), ("AB7", "SoftwareVersions"), ("03021965", "ManufacturerModelName"),
    ("03.02.65", "ManufacturerModelName"), ("1965 Feb 03", "ManufacturerModelName"), ("scan 14:32:12", "ManufacturerModelName"),
    ("Neuenheimer", "TransmitCoilName"), ("06221 567890", "SoftwareVersions"), ("MUELLER", "ReceiveCoilName"),
])
def test_adversarial_forms_in_kept_text_are_cleaned(tmp_path: Path, planted: str, keyword: str) -> None:
    """Forms an independent review found surviving (names, IDs, dates and times, addresses)."""
    ds = pydicom.dcmread(str(corpus.pydicom_test_file("MR_small.dcm")))
    ds.PatientName = "O'Brien-Smith^John=" if planted.startswith("OBRIEN") else "van der Berg^Doe" if planted == "VANDERBERG" else \
        "Müller^Doe" if planted == "MUELLER" else "Doe^John"
    ds.PatientID = "AB-0000007" if planted == "AB7" else "00123456"
    ds.PatientBirthDate = "19650203"
    ds.StudyTime = "143212"
    ds.PatientAddress = "Neuenheimer Str 5, Heidelberg"
    ds.PatientTelephoneNumbers = "+49 6221 567890"
    setattr(ds, keyword, planted)
    got, out = run_one(ds, tmp_path, "planted.dcm")
    assert got.fate == "released", got
    assert str(out.get(keyword, "")) != planted and "X" in str(out.get(keyword, "X")), (keyword, out.get(keyword))


def test_a_huge_file_with_a_bogus_dicom_header_is_not_walked(tmp_path: Path) -> None:
    import time

    inp = tmp_path / "in"
    inp.mkdir()
    with open(inp / "bogus.dcm", "wb") as handle:
        handle.write(bytes(128) + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00\xff\xff\xff\x7f")
        handle.truncate(200 << 20)
    start = time.monotonic()
    got = run(inp, tmp_path / "out")["by"]["bogus.dcm"]
    assert got.fate in ("failed", "skipped") and time.monotonic() - start < 30


def test_a_patient_name_equal_to_a_kept_value_is_cleaned_not_refused(tmp_path: Path) -> None:
    """A public 'anonymized' set whose Patient Name equals its Sequence Name (a real case): the
    first version refused the file; the value is overwritten in the kept attribute instead."""
    src = realworld.REALWORLD / "siemens_mr_decubitus_sag"
    path = sorted(src.glob("*.dcm"))[0]
    ds = pydicom.dcmread(str(path))
    ds.PatientName = str(ds.SequenceName)
    inp = tmp_path / "in"
    inp.mkdir()
    write_dicom(ds, str(inp / "named.dcm"))
    got = run(inp, tmp_path / "out")["by"]["named.dcm"]
    assert got.fate == "released" and any(c.startswith("SequenceName") for c in got.cleaned), got
    out = pydicom.dcmread(str(tmp_path / "out" / got.output))
    assert set(str(out.SequenceName).strip()) <= set("X*_0123456789") or "X" in str(out.SequenceName)


def test_a_date_moves_with_its_time_in_every_file_of_a_series(tmp_path: Path) -> None:
    """Study Date + Study Time move as one instant; when the shifted time crosses midnight, every file
    of the series gets the same next-day date -- whichever executor and memo handled its time (a
    memoized time once left its date unshifted by the carry: dcm2niix then split the series)."""
    inp = tmp_path / "in"
    written = corpus.write_series(inp, PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=6, series_number=2))
    key = SecretKey(bytes(range(40, 72)))
    (tmp_path / "key.hex").write_text(key.raw().hex())
    patient_key = f"id:{PATIENT.patient_id}"
    offset = key.time_offset_seconds(patient_key)
    start = (86400 - offset + 120) % 86400  # shifted, the study time lands two minutes after midnight
    study_time = f"{start // 3600:02d}{start % 3600 // 60:02d}{start % 60:02d}"
    for path in written.paths:
        ds = pydicom.dcmread(str(path))
        ds.StudyTime = study_time
        write_dicom(ds, str(path))
    report = deidentify(inp, tmp_path / "out", key_file=tmp_path / "key.hex", jobs=1, conformance="off")
    dates = {pydicom.dcmread(str(tmp_path / "out" / f.output)).StudyDate for f in report.files}
    times = {pydicom.dcmread(str(tmp_path / "out" / f.output)).StudyTime for f in report.files}
    assert len(dates) == 1 and times == {"000200"}, (dates, times)
    import datetime as dt

    original = dt.datetime.strptime(pydicom.dcmread(str(written.paths[0])).StudyDate, "%Y%m%d").date()
    days = key.date_offset_days(patient_key, *default_profile().date_shift_days)
    assert dates == {(original + dt.timedelta(days=days + 1)).strftime("%Y%m%d")}


def _one(tmp_path: Path, ds, name: str = "x.dcm"):
    inp = tmp_path / "in"
    inp.mkdir(exist_ok=True)
    write_dicom(ds, str(inp / name))
    got = run(inp, tmp_path / "out")["by"][name]
    return got, (pydicom.dcmread(str(tmp_path / "out" / got.output)) if got.fate == "released" else None)


def test_codes_numbers_and_the_scanners_name_are_not_cleaned_as_identity(tmp_path: Path) -> None:
    """Second review: Patient ID 100 blanked Specific Character Set 'ISO_IR 100'; a 6-digit run of a
    Pixel Spacing read as the birth date refused the file; surnames equal to a body part or a scanner
    model blanked them; an institution named after its vendor blanked Manufacturer."""
    ds = pydicom.dcmread(str(CT_FILE))
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientID = "100"
    ds.PatientName = "Foot^Vida"
    ds.PatientBirthDate = "19390625"
    ds.PixelSpacing = ["0.390625", "0.390625"]
    ds.BodyPartExamined = "FOOT"
    ds.ManufacturerModelName = "MAGNETOM Vida"
    ds.InstitutionName = str(ds.Manufacturer)
    got, out = _one(tmp_path, ds)
    assert got.fate == "released", got
    assert out.SpecificCharacterSet == "ISO_IR 100" and out.BodyPartExamined == "FOOT" and out.ManufacturerModelName == "MAGNETOM Vida"
    assert out.Manufacturer == ds.Manufacturer and [float(v) for v in out.PixelSpacing] == [0.390625, 0.390625]


def test_free_text_issuers_and_institution_uids_do_not_reach_the_release(tmp_path: Path) -> None:
    ds = pydicom.dcmread(str(CT_FILE))
    ds.PatientName = "Kowalski^Anna"
    ds.PatientID = "P-42"
    ds.add_new(0x01000424, "LT", "Dr. Ernst Meierhofer, Tel. 09131-85-36000")  # SOP Authorization Comment
    ds.add_new(0x00400556, "ST", "born 1965-W05-3")  # Acquisition Context Description
    issuer = Dataset()
    issuer.LocalNamespaceEntityID = "UKER"
    ds.IssuerOfAccessionNumberSequence = Sequence([issuer])
    ds.TimeSource = "ntp.uk-erlangen.de"
    ds.ReceiveCoilName = "ANNAKOWALSKI"
    ds.TransmitCoilName = "LUKASZ"
    ds.OperatorsName = "Łukasz^Nowak"
    got, out = _one(tmp_path, ds)
    assert got.fate == "released", got
    text = (tmp_path / "out" / got.output).read_bytes()
    for leaked in (b"Meierhofer", b"36000", b"1965-W05", b"UKER", b"erlangen", b"ANNAKOWALSKI", b"LUKASZ"):
        assert not realworld.contains(text, leaked), leaked


def test_a_patient_id_with_and_without_its_issuer_is_one_subject(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    a, b = corpus.write_series(inp, PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=2, series_number=2)).paths
    ds = pydicom.dcmread(str(b))
    ds.IssuerOfPatientID = "VIZYON"
    write_dicom(ds, str(b))
    by = run(inp, tmp_path / "out")["by"]
    assert {by[p.relative_to(inp).as_posix()].subject for p in (a, b)} == {"subject01"}


@pytest.mark.parametrize("first", ["bare", "qualified"])
def test_a_run_extended_with_the_other_form_of_a_patient_id_keeps_its_subject(tmp_path: Path, first: str) -> None:
    """A first run sees a patient's ID in one form only (without its issuer, or with it); a later run with the
    same key and linkage table brings files in the other form: they join the subject of the first run, whose
    files stay released once (the same as one run over all the files)."""
    inp = tmp_path / "in"
    paths = corpus.write_series(inp / "both", PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=4, series_number=2)).paths
    for path in paths[2:]:
        ds = pydicom.dcmread(str(path))
        ds.IssuerOfPatientID = "VIZYON"
        write_dicom(ds, str(path))
    early, late = (paths[:2], paths[2:]) if first == "bare" else (paths[2:], paths[:2])
    (inp / "early").mkdir()
    for path in early:
        path.rename(inp / "early" / path.name)
    key = tmp_path / "key.hex"
    one = deidentify(inp / "early", tmp_path / "out", key_file=key, jobs=1, conformance="off")
    assert {f.subject for f in one.files} == {"subject01"}
    for path in early:
        (inp / "early" / path.name).rename(path)
    two = deidentify(inp / "both", tmp_path / "out", key_file=key, jobs=1, conformance="off")
    assert {f.subject for f in two.files} == {"subject01"} and two.new_subjects == 0
    assert sorted(f.fate for f in two.files) == ["released"] * 2 + ["released earlier"] * 2
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 4
    rows = (tmp_path / "out.private" / "linkage.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 and {row.rsplit(",", 1)[1] for row in rows} == {"1"}  # both forms of the ID, one subject


def test_a_patient_id_aliased_once_stays_aliased_when_another_issuer_appears(tmp_path: Path) -> None:
    """Run 1 sees a Patient ID bare and with issuer A (one patient); run 2 adds the same ID with issuer B: a
    different patient (another hospital's), while the bare ID stays with A's subject (the linkage table
    remembers the alias), so run 1's files are not released again."""
    inp = tmp_path / "in"
    paths = corpus.write_series(inp / "one", PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=3, series_number=2)).paths
    ds = pydicom.dcmread(str(paths[1]))
    ds.IssuerOfPatientID = "HOSP_A"
    write_dicom(ds, str(paths[1]))
    key = tmp_path / "key.hex"
    one = deidentify(inp / "one", tmp_path / "out", key_file=key, jobs=1, conformance="off")
    assert {f.subject for f in one.files} == {"subject01"}
    other = corpus.write_series(inp / "two", PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=1, series_number=3)).paths[0]
    ds = pydicom.dcmread(str(other))
    ds.IssuerOfPatientID = "HOSP_B"
    write_dicom(ds, str(other))
    two = deidentify(inp, tmp_path / "out", key_file=key, jobs=1, conformance="off")
    by = {f.source: f for f in two.files}
    assert {by[f"one/{p.name}"].subject for p in paths} == {"subject01"}
    assert [by[f"one/{p.name}"].fate for p in paths] == ["released earlier"] * 3
    assert by[f"two/{other.name}"].subject == "subject02" and two.new_subjects == 1


def test_a_new_file_at_the_path_of_an_earlier_one_is_checked_as_itself(tmp_path: Path) -> None:
    """One long-lived process (Slicer's Python, a Dask worker) runs twice on an input folder whose file was
    replaced by a new export: the QA gate compares the output with the new input, not with what it
    remembers of the old one at that path."""
    series = corpus.write_series(tmp_path / "series", PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=2, series_number=2)).paths
    inp = tmp_path / "in"
    inp.mkdir()
    for n, (source, drop) in enumerate(((series[0], ["PixelSpacing"]), (series[1], ["PixelSpacing", "RescaleSlope"]))):
        ds = pydicom.dcmread(str(source))
        for keyword in drop:
            del ds[keyword]
        write_dicom(ds, str(inp / "IM0001"))
        report = deidentify(inp, tmp_path / f"out{n}", key_file=tmp_path / "key.hex", jobs=1, conformance="off")
        assert report.files[0].fate == "released", report.files[0].reason  # its errors were the input's


def test_cancel_from_the_progress_callback_keeps_what_is_done_and_resumes(tmp_path: Path) -> None:
    """Slicer's Cancel raises from the progress callback: the run stops after the file in hand, the
    report is written, nothing half-done is left, and the next run goes on where it stopped."""
    from visceral.errors import Cancelled

    inp = tmp_path / "in"
    corpus.write_series(inp, PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=5, series_number=2))

    def progress(done: int, total: int, stage: str) -> None:
        if stage == "de-identifying" and done >= 2:
            raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        deidentify(inp, tmp_path / "out", jobs=1, conformance="off", progress=progress)
    released = list((tmp_path / "out").rglob("*.dcm"))
    assert len(released) == 2 and (tmp_path / "out.private" / "deid_report.json").is_file()
    report = deidentify(inp, tmp_path / "out", jobs=1, conformance="off")
    assert sorted(f.fate for f in report.files) == ["released"] * 3 + ["released earlier"] * 2
    assert report.finished and json.loads((tmp_path / "out.private" / "deid_report.json").read_text())["finished"]
    # Each run keeps its own report: what was done to the files of the first is not overwritten by the second.
    runs = [json.loads(path.read_text()) for path in sorted((tmp_path / "out.private" / "runs").glob("deid_report-*.json"))]
    assert [(r["finished"], sorted(f["fate"] for f in r["files"])) for r in runs] == [
        (False, ["released"] * 2), (True, ["released"] * 3 + ["released earlier"] * 2)]
    assert all(f["counts"] for f in runs[0]["files"])


def test_the_audit_report_is_written_while_the_run_goes_on(tmp_path: Path, monkeypatch) -> None:
    """Results stream into the report as they come: read mid-run it lists the files done so far and
    says the run goes on; at the end it lists all and says it is finished."""
    from visceral.deid import pipeline

    monkeypatch.setattr(pipeline, "LIVE_REPORT_S", 0.0)
    inp = tmp_path / "in"
    corpus.write_series(inp, PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=4, series_number=2))
    seen = []

    def progress(done: int, total: int, stage: str) -> None:
        path = tmp_path / "out.private" / "deid_report.json"
        if stage == "de-identifying" and path.exists():
            data = json.loads(path.read_text())
            seen.append((len(data["files"]), data["finished"], data["execution"]["files"]))

    report = deidentify(inp, tmp_path / "out", jobs=1, conformance="off", progress=progress)
    assert seen and seen[0] == (1, False, 1) and all(not finished for _, finished, _ in seen)
    assert [n for n, _, _ in seen] == sorted(n for n, _, _ in seen)
    final = json.loads((tmp_path / "out.private" / "deid_report.json").read_text())
    assert final["finished"] and len(final["files"]) == len(report.files) == 4
    assert (tmp_path / "out.private" / "deid_report.txt").read_text().splitlines()[0] == "Visceral de-identification report"


def test_a_release_folder_its_staged_files_cannot_be_renamed_into_is_refused_up_front(tmp_path: Path, monkeypatch) -> None:
    """OUTPUT a mount point (or a bind mount) of another file system: the staged files could not be renamed
    into it, so the run is refused before it starts, in one line."""
    import errno

    from visceral.errors import VisceralError

    real = os.replace

    def across_file_systems(src, dst):
        if Path(src).name.startswith(".visceral-partial-probe"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(src, dst)

    corpus.write_series(tmp_path / "in", PATIENT, corpus.SeriesSpec("CT", rows=8, columns=8, slices=1, series_number=2))
    monkeypatch.setattr(os, "replace", across_file_systems)
    with pytest.raises(VisceralError, match="cannot be renamed into it"):
        deidentify(tmp_path / "in", tmp_path / "out", jobs=1, conformance="off")
    assert not list((tmp_path / "out").rglob("*"))
