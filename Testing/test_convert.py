"""DICOM -> NIfTI conversion against dcm2niix as an independent oracle, and the refusal codes."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path
from typing import List

import numpy as np
import pytest

import dicom_corpus as corpus
from conftest import require_tool
from visceral.conventions.metadata import read_metadata
from visceral.convert import convert
from visceral.imageio import read_nifti_header

nibabel = pytest.importorskip("nibabel")

PATIENT = corpus.Patient("subject07", "subject07", "", "M", "045Y")  # already a pseudonym, as after deidentify
c, s = np.cos(np.radians(25)), np.sin(np.radians(25))
OBLIQUE = (1.0, 0.0, 0.0, 0.0, c, s)  # rotated about x: a double-oblique-like MR
OBLIQUE2 = (c, s, 0.0, -s * c, c * c, s)  # rotated about two axes


@pytest.fixture(scope="module")
def dcm2niix() -> str:
    return require_tool("dcm2niix")


def run_dcm2niix(tool: str, folder: Path, out: Path) -> List[Path]:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([tool, "-z", "n", "-b", "n", "-f", "%s_%e_%t", "-o", str(out), str(folder)], capture_output=True, check=True, timeout=300)
    return sorted(out.glob("*.nii"))


def corners_world(img) -> np.ndarray:
    shape = img.shape[:3]
    corners = np.array([[i, j, k, 1] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1) for k in (0, shape[2] - 1)], dtype=float)
    return np.array(sorted(map(tuple, np.round((corners @ img.affine.T)[:, :3], 4))))


def oracle_volumes(paths: List[Path]) -> list:
    """dcm2niix's volumes as 3D images (its 4D files -- echoes of an enhanced object -- split)."""
    out = []
    for path in paths:
        img = nibabel.load(str(path))
        out += nibabel.four_to_three(img) if len(img.shape) == 4 else [img]
    return out


def same_as_oracle(ours: Path, b) -> bool:
    """Same voxel grid in the world (corner voxels within 1e-3 mm) and identical values once both are
    reoriented to the closest canonical axes."""
    a = nibabel.load(str(ours))
    if sorted(a.shape[:3]) != sorted(b.shape[:3]) or np.max(np.abs(corners_world(a) - corners_world(b))) >= 1e-3:
        return False
    ca, cb = nibabel.as_closest_canonical(a), nibabel.as_closest_canonical(b)
    return ca.shape[:3] == cb.shape[:3] and np.array_equal(
        np.asarray(ca.dataobj, dtype=np.float64).reshape(ca.shape[:3]), cb.get_fdata().reshape(cb.shape[:3]))


def convert_and_compare(tmp_path: Path, dcm2niix: str, folder: Path, expected_volumes: int) -> List[Path]:
    """Convert with Visceral and dcm2niix; every volume of ours must equal one of theirs."""
    report = convert(folder, tmp_path / "ds", jobs=1)
    assert report.ok, report.problems
    ours = sorted((tmp_path / "ds").glob("*.nii.gz"))
    theirs = oracle_volumes(run_dcm2niix(dcm2niix, folder, tmp_path / "oracle"))
    assert len(ours) == len(theirs) == expected_volumes
    for our in ours:
        assert any(same_as_oracle(our, t) for t in theirs), f"no dcm2niix volume equals {our.name}"
    return ours


def test_axial_ct_shuffled_file_names(tmp_path: Path, dcm2niix: str) -> None:
    written = corpus.write_series(tmp_path / "in", PATIENT, corpus.SeriesSpec("CT", slices=6, rows=12, columns=14))
    names = list(written.paths)
    random.Random(1).shuffle(names)
    for n, path in enumerate(names):  # names no longer follow the slice order
        path.rename(path.with_name(f"x{n:03d}_{random.Random(n).randint(0, 10**6)}.dcm"))
    (ours,) = convert_and_compare(tmp_path, dcm2niix, tmp_path / "in", 1)
    assert ours.name == "subject07_1_modalityCT.nii.gz"
    img = nibabel.load(str(ours))
    assert img.get_data_dtype() == np.int16  # HU: stored int16 + intercept -1024 fits int16
    expected = written.voxels.astype(np.int32) - 1024
    assert np.array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), expected)  # [k, j, i], no clipping
    meta = read_metadata(ours.with_name("subject07_1_modalityCT.txt"))
    assert meta.voxel_size_mm == (0.8, 0.7, 2.5)
    assert np.allclose(img.header.get_zooms(), (0.8, 0.7, 2.5))
    assert dict(meta.fields)["patient_age"] == "045Y" and dict(meta.fields)["dimensions"] == "14 12 6"


@pytest.mark.parametrize("orientation", [OBLIQUE, OBLIQUE2], ids=["oblique", "double-oblique"])
def test_oblique_anisotropic_mr(tmp_path: Path, dcm2niix: str, orientation) -> None:
    spec = corpus.SeriesSpec("MR", slices=5, rows=10, columns=16, pixel_spacing=(0.9, 0.45), slice_spacing=3.3, orientation=orientation, origin=(12.5, -40.0, 7.0))
    corpus.write_series(tmp_path / "in", PATIENT, spec)
    (ours,) = convert_and_compare(tmp_path, dcm2niix, tmp_path / "in", 1)
    assert np.allclose(read_nifti_header(ours).sform, read_nifti_header(ours).qform, atol=1e-4)
    assert read_nifti_header(ours).sform_code > 0 and read_nifti_header(ours).qform_code > 0


def test_two_series_in_one_folder_and_acquisition_order(tmp_path: Path, dcm2niix: str) -> None:
    corpus.write_series(tmp_path / "in", PATIENT, corpus.SeriesSpec("MR", slices=3, series_number=9, study_date="20200105", seed=3), name_prefix="A")
    corpus.write_series(tmp_path / "in", PATIENT, corpus.SeriesSpec("CT", slices=4, series_number=2, study_date="20200101"), name_prefix="B")
    ours = convert_and_compare(tmp_path, dcm2niix, tmp_path / "in", 2)
    assert [p.name for p in ours] == ["subject07_1_modalityCT.nii.gz", "subject07_2_modalityMR.nii.gz"]  # by study date


def test_mr_with_two_echoes_becomes_two_volumes(tmp_path: Path, dcm2niix: str) -> None:
    common = dict(slices=4, series_number=4, series_uid="1.2.826.0.1.3680043.10.543.77", study_uid="1.2.826.0.1.3680043.10.543.78",
                  frame_uid="1.2.826.0.1.3680043.10.543.79")
    corpus.write_series(tmp_path / "in", PATIENT, corpus.SeriesSpec("MR", echo_time=15, seed=1, **common), name_prefix="E1")
    corpus.write_series(tmp_path / "in", PATIENT, corpus.SeriesSpec("MR", echo_time=90, seed=2, **common), name_prefix="E2")
    for path in (tmp_path / "in").glob("E2*.dcm"):  # second echo: EchoNumbers 2
        import pydicom

        ds = pydicom.dcmread(str(path))
        ds.EchoNumbers = 2
        ds.save_as(str(path))
    ours = convert_and_compare(tmp_path, dcm2niix, tmp_path / "in", 2)
    fields = [dict(read_metadata(p.with_name(p.name.replace(".nii.gz", ".txt"))).fields) for p in ours]
    assert sorted(f.get("echo", "") for f in fields) == ["15", "2"]  # echo number 2; the first has none, so its echo time


def test_enhanced_multiframe_mr(tmp_path: Path, dcm2niix: str) -> None:
    spec = corpus.SeriesSpec("MR", slices=5, rows=8, columns=10, orientation=OBLIQUE, slice_spacing=2.0)
    corpus.write_enhanced_mr(tmp_path / "in" / "enhanced.dcm", PATIENT, spec)
    (ours,) = convert_and_compare(tmp_path, dcm2niix, tmp_path / "in", 1)
    assert nibabel.load(str(ours)).shape == (10, 8, 5)


def test_enhanced_multiframe_mr_with_two_echoes_is_split(tmp_path: Path) -> None:
    """dcm2niix keeps this object as one 10-slice stack; Visceral splits it by Effective Echo Time."""
    spec = corpus.SeriesSpec("MR", slices=5, rows=8, columns=10, orientation=OBLIQUE, slice_spacing=2.0)
    written = corpus.write_enhanced_mr(tmp_path / "in" / "enhanced.dcm", PATIENT, spec, echo_times=(20.0, 80.0))
    report = convert(tmp_path / "in", tmp_path / "ds")
    assert report.ok and len(report.volumes) == 2
    for echo, volume in enumerate(sorted((tmp_path / "ds").glob("*.nii.gz"))):
        img = nibabel.load(str(volume))
        assert np.array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), written.voxels[echo * 5:(echo + 1) * 5])
        fields = dict(read_metadata(volume.with_name(volume.name.replace(".nii.gz", ".txt"))).fields)
        assert fields["echo_time"] == ("20.0" if echo == 0 else "80.0")


def test_pydicom_single_slice_files(tmp_path: Path, dcm2niix: str) -> None:
    for name in ("CT_small.dcm", "MR_small.dcm"):
        folder = tmp_path / name / "in"
        folder.mkdir(parents=True)
        shutil.copy(corpus.pydicom_test_file(name), folder / name)
        (ours,) = convert_and_compare(tmp_path / name, dcm2niix, folder, 1)
        assert nibabel.load(str(ours)).shape[2] == 1


@pytest.mark.parametrize(
    "code, positions",
    [
        ("MISSING_SLICE", [(0, 0, z) for z in (0.0, 2.5, 5.0, 10.0, 12.5)]),
        ("UNEVEN_SPACING", [(0, 0, z) for z in (0.0, 2.5, 5.0, 8.1, 10.6)]),
        ("GANTRY_TILT", [(0, 0.9 * k, 2.5 * k) for k in range(5)]),  # slices slide along y: a tilted gantry
        ("DUPLICATE_POSITION", [(0, 0, z) for z in (0.0, 2.5, 2.5, 5.0)]),
    ],
)
def test_irregular_stacks_are_refused_with_their_code(tmp_path: Path, code: str, positions) -> None:
    corpus.write_series(tmp_path / "in", PATIENT, corpus.SeriesSpec("CT", slice_positions=positions))
    corpus.write_series(tmp_path / "in", PATIENT, corpus.SeriesSpec("CT", slices=3, series_number=8, seed=4), name_prefix="OK")
    report = convert(tmp_path / "in", tmp_path / "ds", strict=True)  # strict: a tilt is refused, not resampled
    assert [p.code for p in report.problems] == [code]
    assert not report.ok
    assert [v.name for v in report.volumes] == ["subject07_1_modalityCT.nii.gz"]  # the rest of the batch goes on


def test_bad_files_are_reported_and_resume_keeps_finished_volumes(tmp_path: Path) -> None:
    corpus.write_series(tmp_path / "in", PATIENT, corpus.SeriesSpec("CT", slices=3))
    (tmp_path / "in" / "notes.txt").write_text("hello")
    shutil.copy(corpus.pydicom_test_file("test-SR.dcm"), tmp_path / "in" / "sr.dcm")
    first = convert(tmp_path / "in", tmp_path / "ds")
    assert sorted(p.code for p in first.problems) == ["NOT_DICOM", "UNSUPPORTED_OBJECT"]
    assert not first.ok  # the SR is refused (a non-DICOM file alone would only be skipped)
    assert [p.refused for p in sorted(first.problems, key=lambda p: p.code)] == [False, True]
    second = convert(tmp_path / "in", tmp_path / "ds")
    assert [v.earlier for v in second.volumes] == [True]
    assert (tmp_path / "ds" / "README.txt").read_text().count("subject07_1_modalityCT.nii.gz") == 1
    assert (tmp_path / "ds.convert.json").is_file()


def test_nifti_and_metadata_carry_nothing_identifying(tmp_path: Path) -> None:
    from visceral.deid import deidentify

    patient = corpus.Patient("PID-IDENT-1", "Secret^Person", "19600101")
    written = corpus.write_series(tmp_path / "raw", patient, corpus.SeriesSpec("CT", slices=3), plant=True)
    deidentify(tmp_path / "raw", tmp_path / "release", conformance="off")
    convert(tmp_path / "release", tmp_path / "ds")
    for path in (tmp_path / "ds").iterdir():
        data = path.read_bytes() if path.suffix != ".gz" else __import__("gzip").decompress(path.read_bytes())
        for value in written.sentinels:
            assert value.encode() not in data, (value, path.name)
    (volume,) = (tmp_path / "ds").glob("*.nii.gz")
    header = read_nifti_header(volume)
    assert header.descrip == header.aux_file == header.intent_name == ""
    keys = set(read_metadata(volume.with_name(volume.name.replace(".nii.gz", ".txt"))).fields)
    assert keys <= {"dimensions", "orientation", "modality", "patient_age", "patient_sex", "study_description", "series_description",
                    "series_number", "source_series_uid", "slices", "converted_by", "echo", "echo_time", "temporal_position", "stack"}


def test_deidentification_keeps_what_conversion_needs(tmp_path: Path) -> None:
    from visceral.deid import deidentify

    patient = corpus.Patient("PID-GEOM-1", "Geo^Metry", "19700101")
    spec = corpus.SeriesSpec("MR", slices=4, orientation=OBLIQUE2, pixel_spacing=(0.9, 0.6), slice_spacing=4.0)
    corpus.write_series(tmp_path / "raw", patient, spec, plant=True)
    deidentify(tmp_path / "raw", tmp_path / "release", conformance="off")
    convert(tmp_path / "raw", tmp_path / "before")
    convert(tmp_path / "release", tmp_path / "after")
    (before,), (after,) = list((tmp_path / "before").glob("*.nii.gz")), list((tmp_path / "after").glob("*.nii.gz"))
    a, b = nibabel.load(str(before)), nibabel.load(str(after))
    assert np.array_equal(a.affine, b.affine)
    assert np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))


def test_dixon_images_and_repeated_positions_become_volumes_of_their_own(tmp_path: Path) -> None:
    """Abdominal MR: a Dixon series holds water and fat images at the same positions (told apart by
    Image Type); a 2D multi-volume series repeats every position (told apart by acquisition order)."""
    import pydicom

    from visceral.fileio import write_dicom

    study, series = "1.2.826.0.1.3680043.10.543.77.1", "1.2.826.0.1.3680043.10.543.77.2"
    for kind, seed in (("WATER", 1), ("FAT", 2)):
        written = corpus.write_series(tmp_path / "dixon" / kind, PATIENT, corpus.SeriesSpec(
            "MR", slices=3, series_number=4, study_uid=study, series_uid=series, seed=seed), name_prefix=kind)
        for path in written.paths:
            ds = pydicom.dcmread(str(path))
            ds.ImageType = ["DERIVED", "PRIMARY", "DIXON", kind]
            write_dicom(ds, str(path))
    report = convert(tmp_path / "dixon", tmp_path / "ds", jobs=1)
    assert report.ok and len(report.volumes) == 2, report.problems
    kinds = {read_metadata(tmp_path / "ds" / v.name.replace(".nii.gz", ".txt")).fields.get("image_type") for v in report.volumes}
    assert kinds == {"WATER", "FAT"}
    # the same positions twice, nothing in the header but the order: two volumes, first acquired first
    repeated = corpus.write_series(tmp_path / "fmri" / "a", PATIENT, corpus.SeriesSpec("MR", slices=3, series_number=5, study_uid=study,
                                                                                        series_uid=series + ".5", seed=3), name_prefix="A")
    later = corpus.write_series(tmp_path / "fmri" / "b", PATIENT, corpus.SeriesSpec("MR", slices=3, series_number=5, study_uid=study,
                                                                                     series_uid=series + ".5", seed=4), name_prefix="B")
    for n, path in enumerate(repeated.paths + later.paths):
        ds = pydicom.dcmread(str(path))
        ds.InstanceNumber, ds.AcquisitionTime = n + 1, f"1000{n // 3:02d}"
        write_dicom(ds, str(path))
    report = convert(tmp_path / "fmri", tmp_path / "ds2", jobs=1)
    assert [p.code for p in report.problems] == ["SPLIT_VOLUMES"] and len(report.volumes) == 2
    import SimpleITK as sitk

    volumes = {read_metadata(tmp_path / "ds2" / v.name.replace(".nii.gz", ".txt")).fields.get("volume"): v.name for v in report.volumes}
    assert set(volumes) == {"1", "2"}
    first = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "ds2" / volumes["1"])))
    stored = [pydicom.dcmread(str(p)) for p in repeated.paths]
    expected = np.stack([ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
                         for ds in sorted(stored, key=lambda d: float(d.ImagePositionPatient[2]))])
    np.testing.assert_array_equal(first.astype(float), expected)  # the volume acquired first


def test_uneven_slice_steps_are_resampled_at_the_smallest_step(tmp_path: Path) -> None:
    """Steps of 2.5 and 3.1 mm: written at 2.5 mm from the first slice, each new slice interpolated
    linearly between its two neighbours (checked voxel by voxel against numpy's interp); --strict refuses."""
    import pydicom
    import SimpleITK as sitk

    z = (0.0, 2.5, 5.0, 8.1, 10.6)
    written = corpus.write_series(tmp_path / "in", PATIENT, corpus.SeriesSpec("CT", slice_positions=[(0, 0, v) for v in z]))
    report = convert(tmp_path / "in", tmp_path / "ds", jobs=1)
    assert [p.code for p in report.problems] == ["SPACING_EQUALIZED"] and report.ok
    (volume,) = report.volumes
    image = sitk.ReadImage(str(tmp_path / "ds" / volume.name))
    assert image.GetSpacing()[2] == pytest.approx(2.5) and image.GetSize()[2] == 5  # 0, 2.5, 5, 7.5, 10
    ours = sitk.GetArrayFromImage(image)
    slices = sorted((pydicom.dcmread(str(p)) for p in written.paths), key=lambda d: float(d.ImagePositionPatient[2]))
    source = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in slices])
    targets = np.arange(5) * 2.5
    expected = np.apply_along_axis(lambda column: np.interp(targets, z, column), 0, source)
    np.testing.assert_allclose(ours, expected, atol=1e-3)
    meta = read_metadata(tmp_path / "ds" / volume.name.replace(".nii.gz", ".txt"))
    assert "linear interpolation" in meta.fields["slice_spacing_equalized"]
    strict = convert(tmp_path / "in", tmp_path / "strict", jobs=1, strict=True)
    assert [p.code for p in strict.problems] == ["UNEVEN_SPACING"]


def test_tolerances_are_displacements_in_millimetres(tmp_path: Path) -> None:
    """A stack drifting a micrometre in plane over its length (an Enhanced MR's rounding) is a regular
    grid; a drift of a fifth of a pixel is a tilt or shear (refused under --strict)."""
    spacing = corpus.SeriesSpec().pixel_spacing
    micro = [(0.0, 0.001 * k / 9, 2.5 * k) for k in range(10)]
    report = convert(corpus.write_series(tmp_path / "micro", PATIENT, corpus.SeriesSpec("CT", slice_positions=micro)).paths[0].parent,
                     tmp_path / "ds1", strict=True)
    assert report.ok and not report.problems and len(report.volumes) == 1
    drift = [(0.0, 0.2 * min(spacing) * k / 9, 2.5 * k) for k in range(10)]
    report = convert(corpus.write_series(tmp_path / "drift", PATIENT, corpus.SeriesSpec("CT", slice_positions=drift, series_number=4)).paths[0].parent,
                     tmp_path / "ds2", strict=True)
    assert [p.code for p in report.problems] == ["GANTRY_TILT"] and "mm in plane" in report.problems[0].message


def test_a_data_set_extended_with_an_earlier_series_keeps_the_numbers_it_gave(tmp_path: Path) -> None:
    """Converted once, then again with a series that sorts before the first (a new export of the same subject):
    the volume written keeps its name and holds the same series; the new one is numbered after it, and said.
    An interrupted run resumed over the same input keeps the numbering of one run over all of it."""
    corpus.write_series(tmp_path / "in" / "late", PATIENT, corpus.SeriesSpec("CT", slices=3, series_number=5))
    first = convert(tmp_path / "in" / "late", tmp_path / "ds")
    assert [v.name for v in first.volumes] == ["subject07_1_modalityCT.nii.gz"]
    uid = read_metadata(tmp_path / "ds" / "subject07_1_modalityCT.txt").fields["source_series_uid"]
    corpus.write_series(tmp_path / "in" / "early", PATIENT, corpus.SeriesSpec("CT", slices=3, series_number=2))
    second = convert(tmp_path / "in", tmp_path / "ds")
    assert sorted((v.name, v.earlier) for v in second.volumes) == [("subject07_1_modalityCT.nii.gz", True), ("subject07_2_modalityCT.nii.gz", False)]
    assert read_metadata(tmp_path / "ds" / "subject07_1_modalityCT.txt").fields["source_series_uid"] == uid
    assert read_metadata(tmp_path / "ds" / "subject07_2_modalityCT.txt").fields["source_series_uid"] != uid
    assert [p.code for p in second.problems] == ["NUMBERED_AFTER_EARLIER"]
    # One run over both, interrupted after the later series' volume (acquisition 2) was written, then resumed.
    fresh = convert(tmp_path / "in", tmp_path / "ds2")
    (tmp_path / "ds2" / "subject07_1_modalityCT.nii.gz").unlink()
    resumed = convert(tmp_path / "in", tmp_path / "ds2")
    assert sorted((v.name, v.earlier) for v in resumed.volumes) == [("subject07_1_modalityCT.nii.gz", False), ("subject07_2_modalityCT.nii.gz", True)]
    assert not resumed.problems and [v.name for v in fresh.volumes] == [v.name for v in resumed.volumes]
