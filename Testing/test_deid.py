"""De-identification: zero leaks, kept attributes kept, pixels identical, classes dropped, QA gate, resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unittest.mock
from pathlib import Path
from typing import Dict

import pydicom
import pytest

import dicom_corpus as corpus
from conftest import require_tool
from visceral.deid import deidentify, load_profile
from visceral.deid.identity import SecretKey
from visceral.deid.qa import added_errors, conformance_errors
from visceral.deid.rules import derive_age
from visceral.errors import VisceralError

ALICE = corpus.Patient("PID-ALICE-7731", "Doe^Alice^Marie", "19580301", "F", "061Y")
BOB = corpus.Patient("PID-BOB-5522", "Roe^Robert", "19470615", "M", None)  # no age: derived from birth date


@pytest.fixture(scope="module")
def dciodvfy() -> str:
    return require_tool("dciodvfy")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, dciodvfy: str) -> Dict[str, object]:
    """A clinical folder (planted sentinels, pydicom's files, bad files) and one de-identified release."""
    base = tmp_path_factory.mktemp("deid")
    inp = base / "in" / "Doe_Alice_PID-ALICE-7731"  # identifying folder names, as in real exports
    ct = corpus.write_series(inp / "ct", ALICE, corpus.SeriesSpec("CT", slices=3, series_number=3), plant=True)
    mr = corpus.write_series(inp / "mr", ALICE, corpus.SeriesSpec("MR", slices=2, series_number=5, study_date="20190415", seed=1), plant=True)
    bob = corpus.write_series(base / "in" / "bob", BOB, corpus.SeriesSpec("CT", slices=2, series_number=2, seed=2, study_date="20200102"))
    other = base / "in" / "other"
    other.mkdir()
    corpus.write_enhanced_mr(other / "enhanced_mr.dcm", ALICE, corpus.SeriesSpec("MR", slices=3, rows=8, columns=10, series_number=6))
    corpus.write_secondary_capture(other / "sc.dcm", ALICE)
    for name in ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "test-SR.dcm", "liver_1frame.dcm", "JPEG-lossy.dcm", "MR_small_jpeg_ls_lossless.dcm", "rtplan.dcm"):
        shutil.copy(corpus.pydicom_test_file(name), other / name)
    corpus.variant(corpus.pydicom_test_file("MR_truncated.dcm"), other / "truncated.dcm")  # own instance UID
    corpus.variant(ct.paths[0], other / "lossy_flag.dcm", LossyImageCompression="01")
    corpus.variant(ct.paths[0], other / "burned.dcm", BurnedInAnnotation="YES")
    (other / "notes.txt").write_text("not dicom")
    (other / "garbage.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    before = {p: p.read_bytes() for p in (base / "in").rglob("*") if p.is_file()}
    out = base / "release"
    # The key the release creates is fixed: the sentinel tests search every byte for every planted
    # date, and new UIDs of a random key hold some 8-digit date among their ~9500 digit windows in
    # about 3% of runs (the leak scan itself counts numbers only as whole numbers).
    with unittest.mock.patch("visceral.deid.identity.secrets.token_bytes", return_value=bytes(range(100, 132))):
        report = deidentify(base / "in", out, jobs=2)
    return {"base": base, "in": base / "in", "out": out, "report": report, "ct": ct, "mr": mr, "bob": bob, "before": before}


def fates(report) -> Dict[str, str]:
    return {f.source: f.fate for f in report.files}


def test_every_file_has_the_expected_fate(study) -> None:
    got = fates(study["report"])
    released = [s for s, f in got.items() if f == "released"]
    assert len(released) == 3 + 2 + 2 + 2 + 1, study["report"].to_text()  # generated series + CT_small, MR_small + enhanced MR
    assert got["other/enhanced_mr.dcm"] == "released"  # a multi-frame object with functional groups
    assert got["other/MR_small_RLE.dcm"] == got["other/MR_small_jpeg_ls_lossless.dcm"] == "skipped"  # same instance as MR_small
    for name in ("sc.dcm", "test-SR.dcm", "liver_1frame.dcm", "JPEG-lossy.dcm", "rtplan.dcm"):
        assert got[f"other/{name}"] == "dropped", name
    for name in ("lossy_flag.dcm", "burned.dcm"):
        assert got[f"other/{name}"] == "refused", name
    assert got["other/truncated.dcm"] == "failed"
    assert got["other/garbage.dcm"] == "failed"
    assert got["other/notes.txt"] == "skipped"
    reasons = {f.source: f.reason for f in study["report"].files}
    assert reasons["other/sc.dcm"] == "Secondary Capture Image Storage: on the seed's list of removable objects"
    assert reasons["other/rtplan.dcm"] == "RT Plan Storage: not a CT/MR image object"
    assert reasons["other/lossy_flag.dcm"].startswith("Lossy Image Compression (0028,2110) is 01")
    assert reasons["other/truncated.dcm"].startswith("truncated: Pixel Data has 8130 of 8192 bytes")
    assert not study["report"].ok  # something was refused: the exit code says so


def test_input_is_never_modified(study) -> None:
    for path, data in study["before"].items():
        assert path.read_bytes() == data


def test_zero_leaks_of_planted_sentinels_anywhere(study) -> None:
    sentinels = corpus.sentinel_values([study["ct"], study["mr"], study["bob"]])
    assert len(sentinels) > 250
    outputs = sorted(study["out"].rglob("*"))
    assert outputs
    for path in outputs:
        assert "ALICE" not in str(path).upper() and "Doe" not in str(path)
        if not path.is_file():
            continue
        data = path.read_bytes()
        for value in sentinels:
            assert value.encode() not in data, f"{value!r} leaked into {path.name}"
        ds = pydicom.dcmread(str(path))
        for elem in ds.iterall():
            assert not elem.tag.is_private
            text = str(elem.value)
            assert not any(v in text for v in sentinels if len(v) >= 6)
    assert study["report"].leak_count() == 0


def test_kept_attributes_and_pixels(study) -> None:
    by_source = {f.source: f for f in study["report"].files}
    for series in (study["ct"], study["bob"], study["mr"]):
        for src in series.paths:
            result = by_source[src.relative_to(study["in"]).as_posix()]
            original = pydicom.dcmread(str(src))
            output = pydicom.dcmread(str(study["out"] / result.output))
            assert output.PixelData == original.PixelData  # bytes identical: never decoded
            for keyword in ("Rows", "Columns", "PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient", "SliceThickness",
                            "Modality", "PatientSex", "BitsStored", "PixelRepresentation", "SeriesNumber", "InstanceNumber"):
                assert output.get(keyword) == original.get(keyword), keyword
            assert output.PatientIdentityRemoved == "YES"
            assert [c.CodeValue for c in output.DeidentificationMethodCodeSequence] == ["113100", "113107", "113108", "113105"]
            assert output.PatientName == output.PatientID == result.subject
            assert "ScanOptions" not in output or not output.ScanOptions
            assert "ProtocolName" not in output or not output.ProtocolName
            assert "PatientWeight" not in output and "PatientSize" not in output and "PatientBirthDate" not in output or not output.get("PatientBirthDate")
            assert output.file_meta.MediaStorageSOPInstanceUID == output.SOPInstanceUID
            assert "SourceApplicationEntityTitle" not in output.file_meta
            if series is study["bob"]:  # not planted: its descriptions are the realistic ones
                assert output.StudyDescription == "CT/MR thorax abdomen"  # standardized by the profile
                assert output.SeriesDescription == "contrast-enhanced"
            else:  # a planted sentinel matches no pattern: removed
                assert "StudyDescription" not in output


def test_age_is_kept_or_derived_and_dates_shift_consistently(study) -> None:
    outputs = {f.source: pydicom.dcmread(str(study["out"] / f.output)) for f in study["report"].files if f.fate == "released"}
    alice_ct = [ds for s, ds in outputs.items() if s.startswith("Doe_Alice_PID-ALICE-7731/ct/")]
    alice_mr = [ds for s, ds in outputs.items() if s.startswith("Doe_Alice_PID-ALICE-7731/mr/")]
    bob = [ds for s, ds in outputs.items() if s.startswith("bob/")]
    assert alice_ct[0].PatientAge == "061Y"
    assert bob[0].PatientAge == "072Y"  # 1947-06-15 to 2020-01-02
    assert alice_ct[0].PatientID == alice_mr[0].PatientID != bob[0].PatientID
    import datetime as dt

    def day(text: str) -> dt.date:
        return dt.datetime.strptime(text, "%Y%m%d").date()

    def instant(ds, prefix: str) -> dt.datetime:
        return dt.datetime.strptime(ds.get(prefix + "Date") + ds.get(prefix + "Time")[:6], "%Y%m%d%H%M%S")

    # One offset per patient: the interval between Alice's CT and MR studies survives, to the second.
    originals = {s: pydicom.dcmread(str(study["in"] / s)) for s in outputs}
    ct_source = next(s for s in outputs if s.startswith("Doe_Alice_PID-ALICE-7731/ct/"))
    mr_source = next(s for s in outputs if s.startswith("Doe_Alice_PID-ALICE-7731/mr/"))
    assert instant(outputs[mr_source], "Study") - instant(outputs[ct_source], "Study") == \
        instant(originals[mr_source], "Study") - instant(originals[ct_source], "Study")
    assert alice_ct[0].StudyDate != "20190412"
    assert alice_ct[0].StudyTime != "101500"  # times of day move with their dates
    shift = instant(outputs[ct_source], "Study") - instant(originals[ct_source], "Study")
    for prefix in ("Series", "Content", "Acquisition"):
        if prefix + "Time" in originals[ct_source] and prefix + "Date" in originals[ct_source]:
            assert instant(outputs[ct_source], prefix) - instant(originals[ct_source], prefix) == shift
    assert alice_ct[0].LongitudinalTemporalInformationModified == "MODIFIED"


def test_uids_are_valid_consistent_and_references_remapped(study) -> None:
    outputs = [pydicom.dcmread(str(p)) for p in study["out"].rglob("*.dcm")]
    for ds in outputs:
        for elem in ds.iterall():
            if elem.VR == "UI" and elem.value:
                for uid in (elem.value if isinstance(elem.value, list) else [elem.value]):
                    assert len(uid) <= 64 and all(c.isdigit() or c == "." for c in uid)
                    assert not any(part.startswith("0") and part != "0" for part in uid.split("."))
    ct = [ds for ds in outputs if ds.get("SeriesNumber") == 3 and ds.Modality == "CT" and ds.PatientAge == "061Y"]
    assert len({ds.StudyInstanceUID for ds in ct}) == 1 and len({ds.SeriesInstanceUID for ds in ct}) == 1
    assert all(ds.StudyInstanceUID.startswith("2.25.") for ds in ct)
    assert len({ds.FrameOfReferenceUID for ds in ct}) == 1
    assert ct[0].ReferencedImageSequence[0].ReferencedSOPClassUID == corpus.CT_STORAGE  # class UIDs kept


def test_no_new_dciodvfy_errors(study, dciodvfy: str) -> None:
    by_source = {f.source: f for f in study["report"].files}
    for series in (study["ct"], study["mr"]):
        src = series.paths[0]
        result = by_source[src.relative_to(study["in"]).as_posix()]
        assert "dciodvfy: checked" in result.conformance and result.new_errors == []
        before = conformance_errors(src)
        after = conformance_errors(study["out"] / result.output)
        assert set(after) <= set(before)


def test_private_files_are_outside_the_release(study) -> None:
    private = Path(study["report"].private_dir)
    assert private.parent == study["out"].parent
    assert (private / "key.hex").is_file() and oct((private / "key.hex").stat().st_mode)[-3:] == "600"
    linkage = (private / "linkage.csv").read_text()
    assert "PID-ALICE-7731" in linkage and "PID-BOB-5522" in linkage
    report = json.loads((private / "deid_report.json").read_text())
    assert report["summary"]["leaks"] == 0
    assert "Actions per attribute class" in (private / "deid_report.txt").read_text()
    names = {p.name for p in study["out"].rglob("*")}
    assert not names & {"key.hex", "linkage.csv", "deid_report.json", "deid_report.txt"}


def test_rerun_resumes_and_is_deterministic(study, tmp_path: Path) -> None:
    out = study["out"]
    released = sorted(p.relative_to(out) for p in out.rglob("*.dcm"))
    victim = out / released[0]
    victim.unlink()  # as if the run had stopped before this file
    partial = victim.parent / ".visceral-partial-crash.dcm"
    partial.write_bytes(b"half a file")
    report = deidentify(study["in"], out, jobs=1)
    got = fates(report)
    assert sorted(p.relative_to(out) for p in out.rglob("*.dcm")) == released  # same names: same pseudonyms and UIDs
    assert list(got.values()).count("released") == 1
    assert list(got.values()).count("released earlier") == len(released) - 1
    assert not partial.exists()


def test_new_patient_later_gets_the_next_subject_number(study, tmp_path: Path) -> None:
    carol = corpus.Patient("PID-CAROL-1", "Poe^Carol", "19800101")
    folder = tmp_path / "carol"
    corpus.write_series(folder, carol, corpus.SeriesSpec("MR", slices=1, seed=5))
    private = Path(study["report"].private_dir)
    out = tmp_path / "release2"
    report = deidentify(folder, out, key_file=private / "key.hex", linkage_file=private / "linkage.csv", report_dir=tmp_path / "r", conformance="off")
    assert study["report"].subjects == 4  # Alice, Bob, and the patients of pydicom's CT and MR files
    assert report.files[0].subject == "subject05"
    assert report.new_subjects == 1 and report.subjects == 5


def test_private_files_inside_output_or_input_are_refused(study, tmp_path: Path) -> None:
    out = tmp_path / "rel"
    with pytest.raises(VisceralError, match="must not be inside the release folder"):
        deidentify(study["in"], out, key_file=out / "key.hex")
    with pytest.raises(VisceralError, match="must not be inside the release folder"):
        deidentify(study["in"], out, linkage_file=out / "sub" / "linkage.csv")
    with pytest.raises(VisceralError, match="must not be inside the input folder"):
        deidentify(study["in"], out, key_file=study["in"] / "key.hex")
    with pytest.raises(VisceralError, match="outside the input folder"):
        deidentify(study["in"], study["in"] / "release")


def test_cli_refuses_key_in_output_and_reports_in_one_line(study, tmp_path: Path) -> None:
    out = tmp_path / "cli-release"
    bad = subprocess.run([sys.executable, "-m", "visceral", "deidentify", str(study["in"]), str(out), "--key-file", str(out / "k")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "must not be inside the release folder" in bad.stderr and "Traceback" not in bad.stderr
    run = subprocess.run([sys.executable, "-m", "visceral", "deidentify", str(study["in"]), str(out), "-q", "--jobs", "2", "--conformance", "sample"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stderr  # lossy and burned-in files were refused
    assert "refused: other/burned.dcm: Burned In Annotation is 'YES'" in run.stdout
    assert "identifiers in uncleanable bytes: 0 file(s)" in run.stdout


def test_profile_errors_are_clear(tmp_path: Path) -> None:
    from visceral.deid import ProfileError

    path = tmp_path / "p.json"
    for text, reason in [("{", "not a readable JSON"), ('{"dates": "keep"}', "'dates' must be"), ('{"empty": ["NoSuchKeyword"]}', "not a DICOM keyword"),
                         ('{"colour": 1}', "unknown profile key"), ('{"descriptions": {"StudyDescription": {"(": "x"}}}', "bad pattern")]:
        path.write_text(text)
        with pytest.raises(ProfileError, match=reason):
            load_profile(path)


def test_uid_and_age_helpers() -> None:
    key = SecretKey(b"0123456789abcdef0123456789abcdef")
    assert key.uid("1.2.3") == key.uid("1.2.3 ") != key.uid("1.2.4")
    assert len(key.uid("1.2.3")) <= 44
    assert derive_age("19470615", "20200102") == "072Y"
    assert derive_age("20191201", "20200102") == "004W"
    assert derive_age("19200101", "20200102") == "090Y"
    assert derive_age("bad", "20200102") is None


def test_identity_check_of_a_folder(study) -> None:
    from visceral.deid.check import identity_findings

    assert identity_findings(study["out"]) == []
    raw = identity_findings(study["in"] / "bob")
    assert raw and "Patient Identity Removed is not YES" in raw[0] and "InstitutionName has a value" in raw[0]


def test_killed_run_leaves_no_half_file_and_resumes(tmp_path: Path, dciodvfy: str) -> None:
    """SIGKILL in the middle of a batch: every file in the release is complete; a re-run finishes the rest."""
    import signal
    import time

    corpus.write_series(tmp_path / "in", ALICE, corpus.SeriesSpec("CT", slices=40, rows=64, columns=64))
    out = tmp_path / "release"
    cmd = [sys.executable, "-m", "visceral", "deidentify", str(tmp_path / "in"), str(out), "-q", "--jobs", "1", "--conformance", "all"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len([p for p in out.rglob("*.dcm") if not p.name.startswith(".")]) < 5:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = [p for p in out.rglob("*.dcm") if not p.name.startswith(".")]
    assert 5 <= len(finished) < 40, len(finished)
    for path in finished:  # whatever looks complete is complete
        ds = pydicom.dcmread(str(path))
        assert len(ds.PixelData) == 64 * 64 * 2
    report = deidentify(tmp_path / "in", out, jobs=1)
    got = [f.fate for f in report.files]
    assert got.count("released earlier") == len(finished) and got.count("released") == 40 - len(finished)
    assert not list(out.rglob(".visceral-partial-*"))


def test_sample_conformance_checks_one_file_per_series(tmp_path: Path, dciodvfy: str) -> None:
    """--conformance sample checks one file per series with dciodvfy (every file with the in-process
    check); no released file has a new dciodvfy error."""
    inp = tmp_path / "in"
    written = corpus.write_series(inp / "ct", ALICE, corpus.SeriesSpec("CT", rows=8, columns=8, slices=3, series_number=3), plant=True)
    report = deidentify(inp, tmp_path / "out", jobs=2, conformance="sample")
    by_source = {f.source: f for f in report.files}
    sample, *rest = [by_source[p.relative_to(inp).as_posix()] for p in written.paths]
    assert sample.fate == "released" and "dciodvfy: checked" in sample.conformance
    for result in [sample, *rest]:
        assert result.fate == "released" and result.conformance.startswith("in-process: checked")
        source = inp / result.source
        assert not added_errors(conformance_errors(source), conformance_errors(tmp_path / "out" / result.output)), result.source
    assert all("dciodvfy: checked" not in r.conformance for r in rest)
