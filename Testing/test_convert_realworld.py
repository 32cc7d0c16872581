"""Conversion of real scanner series (the de-identified real-world corpus) against dcm2niix.

Every series is de-identified and converted by Visceral and by dcm2niix; dcm2niix also converts the
original, whose private headers it may need (a Siemens mosaic's slice count).  Where both write volumes,
each of ours must equal one of dcm2niix's (same grid: corner voxels within 1e-3 mm; same voxels).
Where Visceral refuses, the series must be in :data:`REFUSED` with the stated reason: these are the
conversions still to build (docs/CONVENTIONS.md, "Conversion"; README).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict

import pytest

import realworld
import numpy as np
from test_convert import corners_world, dcm2niix, nibabel, oracle_volumes, run_dcm2niix  # noqa: F401 (fixture)
from visceral.convert import convert
from visceral.deid import deidentify

#: Real series Visceral refuses today, with the code it gives: what dcm2niix does instead.
REFUSED = {
    # one slice whose Slice Thickness is empty: dcm2niix assumes 1 mm; a VISCERAL volume states its true voxel size
    "tcia_ct_j2k_vr_un": "NO_SPACING",
}


#: Where grids may differ: dcm2niix takes the slice step of some series (Philips enhanced MR) from the
#: header's rounded Spacing Between Slices (3.313 for a true 3.3125 mm step); Visceral from the slice
#: positions.  Corners must agree within 1e-3 mm plus that rounding (at most 0.5e-3 mm) per slice.
HEADER_ROUNDING_MM = 0.5e-3


def same_as_oracle(ours: Path, theirs) -> bool:
    """Same grid (corners, see :data:`HEADER_ROUNDING_MM`) and the same values: ours are rescaled
    float32 or the stored integers, dcm2niix's stored integers with a slope -- equal to float32 precision."""
    a = nibabel.load(str(ours))
    if sorted(a.shape[:3]) != sorted(theirs.shape[:3]):
        return False
    slices = max(a.shape[:3])
    if np.max(np.abs(corners_world(a) - corners_world(theirs))) > 1e-3 + HEADER_ROUNDING_MM * slices:
        return False
    ca, cb = nibabel.as_closest_canonical(a), nibabel.as_closest_canonical(theirs)
    if ca.shape[:3] != cb.shape[:3]:
        return False
    x = np.asarray(ca.get_fdata(), dtype=np.float64).reshape(ca.shape[:3])
    y = cb.get_fdata().reshape(cb.shape[:3])
    return np.allclose(x, y, rtol=1e-5, atol=1e-4)


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """Corpus folder name -> a folder holding that series, de-identified."""
    base = tmp_path_factory.mktemp("convert_realworld")
    report = deidentify(realworld.REALWORLD, base / "release", jobs=2, conformance="off")
    folders: Dict[str, Path] = {}
    for f in report.files:
        if f.fate != "released":
            continue
        name = f.source.split("/")[0]
        target = base / "series" / name / Path(f.output).parent.name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(base / "release" / f.output, target / Path(f.output).name)
        folders[name] = target.parent
    return folders


def test_every_real_series_converts_as_dcm2niix_does_or_is_refused_for_a_stated_reason(series, dcm2niix: str, tmp_path: Path) -> None:  # noqa: F811
    converted, refused = [], {}
    for name, folder in sorted(series.items()):
        out = tmp_path / name
        report = convert(folder, out / "ds", jobs=1)
        ours = sorted((out / "ds").glob("*.nii.gz"))
        codes = sorted({p.code for p in report.problems if p.code in ("GANTRY_TILT", "DUPLICATE_POSITION", "NO_SPACING",
                                                                       "UNEVEN_SPACING", "MISSING_SLICE", "MOSAIC")})
        if codes:
            refused[name] = codes[0]
            continue
        if any(p.code == "TILT_CORRECTED" for p in report.problems):
            continue  # resampled: compared with dcm2niix's sheared grid in its own test below
        # dcm2niix on the same de-identified series, and on the original where it needs the private headers
        # (a Siemens mosaic's slice count; with them it would also apply Philips' private scale, without them not)
        theirs = oracle_volumes(run_dcm2niix(dcm2niix, folder, out / "oracle"))
        theirs += oracle_volumes(run_dcm2niix(dcm2niix, realworld.REALWORLD / name, out / "oracle-original"))
        assert ours, (name, report.problems)
        for our in ours:
            assert any(same_as_oracle(our, t) for t in theirs), f"{name}: no dcm2niix volume equals {our.name}"
        converted.append(name)
    assert refused == {k: v for k, v in REFUSED.items() if k in series}, refused
    assert len(converted) >= 15, converted


def test_a_real_gantry_tilt_is_resampled_onto_the_orthogonal_grid(series, tmp_path: Path) -> None:
    """The GE CT tilted 18.5 degrees: Visceral resamples it onto the orthogonal grid of its first slice.
    Oracle: the DICOM itself, read with pydicom -- every voxel of ours, placed in the world by our affine,
    lies on the plane of its scanner slice (Image Position/Orientation), between two of its rows; the
    scanner's values interpolated there must equal ours.  (dcm2niix writes these two slices with a
    sheared affine whose slice step, 4.002 mm along z, is not the 4.22 mm of their positions: no oracle.)"""
    import pydicom

    folder = series["ge_ct_tilt"]
    report = convert(folder, tmp_path / "ds", jobs=1)
    assert [p.code for p in report.problems] == ["TILT_CORRECTED"] and report.ok
    (ours,) = sorted((tmp_path / "ds").glob("*.nii.gz"))
    strict = convert(folder, tmp_path / "strict", jobs=1, strict=True)
    assert [p.code for p in strict.problems] == ["GANTRY_TILT"] and not list((tmp_path / "strict").glob("*.nii.gz"))
    from visceral.conventions.metadata import read_metadata

    meta = read_metadata(ours.with_name(ours.name.replace(".nii.gz", ".txt")))
    assert abs(float(meta.fields["gantry_tilt_deg"]) - 18.5) < 0.05 and "linear" in meta.fields["tilt_correction"]
    image = nibabel.load(str(ours))
    axes = image.affine[:3, :3]
    gram = axes.T @ axes
    assert np.allclose(gram, np.diag(np.diag(gram)), atol=1e-6)  # an orthogonal grid
    data = image.get_fdata()
    slices = sorted((pydicom.dcmread(str(p)) for p in folder.rglob("*.dcm")), key=lambda d: float(d.ImagePositionPatient[2]))
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    i, j = np.meshgrid(np.arange(100, 400, 7), np.arange(120, 380, 7), indexing="ij")
    for k, ds in enumerate(slices):
        world = lps_to_ras @ (image.affine @ np.stack([i.ravel(), j.ravel(), np.full(i.size, k), np.ones(i.size)]))[:3]  # -> LPS
        origin = np.asarray(ds.ImagePositionPatient, dtype=float)
        row, col = np.asarray(ds.ImageOrientationPatient[:3], dtype=float), np.asarray(ds.ImageOrientationPatient[3:], dtype=float)
        offset = world - origin[:, None]
        assert np.allclose(np.cross(row, col) @ offset, 0, atol=1e-3)  # on the scanner's slice plane
        si = (row @ offset) / float(ds.PixelSpacing[1])
        sj = (col @ offset) / float(ds.PixelSpacing[0])
        assert np.allclose(si, np.round(si), atol=1e-3)  # columns stay columns: the tilt shifts rows only
        values = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        j0 = np.floor(sj).astype(int)
        f = sj - j0
        ci = np.round(si).astype(int)
        expected = (1 - f) * values[j0, ci] + f * values[j0 + 1, ci]
        assert np.allclose(data[i.ravel(), j.ravel(), k], expected, atol=0.01), k
        # Nothing is cut off: the grid is enlarged to hold every pixel of every scanner slice.
        corners = np.array([[0, 0], [0, ds.Rows - 1], [ds.Columns - 1, 0], [ds.Columns - 1, ds.Rows - 1]], dtype=float)
        lps = origin[:, None] + np.outer(row, corners[:, 0] * float(ds.PixelSpacing[1])) + np.outer(col, corners[:, 1] * float(ds.PixelSpacing[0]))
        ijk = np.linalg.solve(image.affine[:3, :3], lps_to_ras @ lps - image.affine[:3, 3:])
        assert np.all(ijk > -1e-3) and np.all(ijk < np.array(image.shape)[:, None] - 1 + 1e-3), ijk
    assert image.shape[1] > slices[0].Rows  # the tilt moves the rows: more of them


def test_ten_or_more_volumes_are_numbered_in_acquisition_order(tmp_path: Path) -> None:
    """A real GE fMRI series grown to 12 time points (2 slices each, pixel value = time point): volume 10
    follows volume 9 in the acquisition numbers and the .txt (their text order put 10 after 1)."""
    import pydicom
    from pydicom.uid import generate_uid
    from visceral.conventions.metadata import read_metadata
    from visceral.fileio import write_dicom

    inp = tmp_path / "in"
    inp.mkdir()
    for slice_index, name in enumerate(("0025.dcm", "0026.dcm")):
        ds = pydicom.dcmread(str(realworld.REALWORLD / "ge_mr_fmri_multivol" / name))
        for t in range(12):
            ds.InstanceNumber = 25 + slice_index + 48 * t
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.PixelData = np.full((ds.Rows, ds.Columns), t + 1, dtype="<i2").tobytes()
            write_dicom(ds, str(inp / f"{slice_index}_{t:02d}.dcm"))
    report = convert(inp, tmp_path / "dataset")
    assert len(report.volumes) == 12, report.problems
    for acquisition in range(1, 13):
        volume = tmp_path / "dataset" / f"subject01_{acquisition}_modalityMR.nii.gz"
        fields = dict(read_metadata(volume.with_name(volume.name.replace(".nii.gz", ".txt"))).fields)
        assert fields["source_volume"] == f"volume {acquisition} of 12"
        assert set(np.unique(np.asarray(nibabel.load(str(volume)).dataobj)).tolist()) == {acquisition}


def test_the_files_of_one_folder_refused_alike_are_one_report_line(tmp_path: Path) -> None:
    """UIH writes DTI series whose files lack Image Position (Patient) (neurolabusc/dcm_qa_stc
    In/UIH/R002/12_dti_tra_dir16_PA_rot): 17 files, one line, not 17; another folder keeps its own line."""
    import pydicom
    from visceral.fileio import write_dicom

    for folder, count in (("a", 3), ("b", 1)):
        (tmp_path / "in" / folder).mkdir(parents=True)
        for n in range(count):
            ds = pydicom.dcmread(str(realworld.REALWORLD / "hitachi_mr_implicit" / f"00{n + 1}.dcm"))
            del ds.ImagePositionPatient
            write_dicom(ds, str(tmp_path / "in" / folder / f"{n}.dcm"))
    report = convert(tmp_path / "in", tmp_path / "dataset", jobs=1)
    lines = [(p.code, p.where) for p in report.problems if p.code == "UNSUPPORTED_OBJECT"]
    assert lines == [("UNSUPPORTED_OBJECT", "3 files in a/ (0.dcm ...)"), ("UNSUPPORTED_OBJECT", "b/0.dcm")], report.problems


def test_magnitude_phase_and_diffusion_directions_are_split_and_named(tmp_path: Path) -> None:
    """Real Philips MR slices written as Philips writes a susceptibility series (Image Type ...\\SW_M /
    ...\\SW_P) and as diffusion images (b-value and gradient direction per image): one volume each,
    its .txt naming what it is (the split said only "volume 1 of 2")."""
    import pydicom
    from pydicom.uid import generate_uid
    from visceral.conventions.metadata import read_metadata
    from visceral.fileio import write_dicom

    names = ("201_EPI_asc_CLEAR_0001_10.dcm", "201_EPI_asc_CLEAR_0001_13.dcm", "201_EPI_asc_CLEAR_0001_16.dcm")
    variants = {"mag": (["ORIGINAL", "PRIMARY", "SW_M_FFE", "SW_M", "FFE"], None, None),
                "phase": (["ORIGINAL", "PRIMARY", "SW_P_FFE", "SW_P", "FFE"], None, None)}
    diffusion = {"b0": (0, [0.0, 0.0, 0.0]), "x": (1000, [1.0, 0.0, 0.0]), "y": (1000, [0.0, 1.0, 0.0])}
    for case, cases in (("swi", variants), ("dwi", diffusion)):
        inp = tmp_path / case
        inp.mkdir()
        series = generate_uid()
        for n, name in enumerate(names):
            for value, (label, setting) in enumerate(cases.items()):
                ds = pydicom.dcmread(str(realworld.REALWORLD / "philips_mr_fmri" / name))
                ds.SeriesInstanceUID = series
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
                ds.InstanceNumber = 1 + n + 3 * value
                if case == "swi":
                    ds.ImageType = setting[0]
                else:
                    ds.DiffusionBValue, ds.DiffusionGradientOrientation = setting
                ds.RescaleSlope, ds.RescaleIntercept = 1, 0
                ds.PixelData = np.full((ds.Rows, ds.Columns), value + 1, dtype="<u2").tobytes()
                write_dicom(ds, str(inp / f"{label}_{n}.dcm"))
    for case, expected in (("swi", [("image_type", "magnitude"), ("image_type", "phase")]),
                           ("dwi", [("b_value", "0.0"), ("gradient", "1 0 0"), ("gradient", "0 1 0")])):
        report = convert(tmp_path / case, tmp_path / f"{case}_dataset", jobs=1)
        assert len(report.volumes) == len(expected), report.problems
        for acquisition, (key, value) in enumerate(expected, start=1):
            volume = tmp_path / f"{case}_dataset" / f"subject01_{acquisition}_modalityMR.nii.gz"
            fields = dict(read_metadata(volume.with_name(volume.name.replace(".nii.gz", ".txt"))).fields)
            assert fields[key] == value, fields
            assert set(np.unique(np.asarray(nibabel.load(str(volume)).dataobj)).tolist()) == {acquisition}


def test_noise_in_a_gradient_direction_does_not_split_a_volume(tmp_path: Path) -> None:
    """One diffusion volume whose slices carry the direction with scanner noise in the last digits
    (-1.1e-17, -0, 0.70655 and 0.70645 across a rounding edge): one volume of every slice, not fragments."""
    noisy = ([-1.1e-17, 0.70655, 0.70766], [-0.0, 0.70645, 0.70766], [2.3e-17, 0.7065, 0.70766])
    report = convert(_diffusion_slices(tmp_path / "in", noisy), tmp_path / "dataset", jobs=1)
    assert [v.shape[2] for v in report.volumes] == [3], (report.volumes, report.problems)


def _diffusion_slices(folder: Path, directions) -> Path:
    """The three real Philips EPI slices as one b = 1000 series, slice n with gradient ``directions[n]``."""
    import pydicom
    from pydicom.uid import generate_uid
    from visceral.fileio import write_dicom

    names = ("201_EPI_asc_CLEAR_0001_10.dcm", "201_EPI_asc_CLEAR_0001_13.dcm", "201_EPI_asc_CLEAR_0001_16.dcm")
    folder.mkdir()
    series = generate_uid()
    for n, (name, direction) in enumerate(zip(names, directions)):
        ds = pydicom.dcmread(str(realworld.REALWORLD / "philips_mr_fmri" / name))
        ds.SeriesInstanceUID, ds.DiffusionBValue, ds.DiffusionGradientOrientation = series, 1000, direction
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        write_dicom(ds, str(folder / f"{n}.dcm"))
    return folder


@pytest.mark.parametrize("directions, warned", [
    ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], True),  # a value that changes slice to slice: three one-slice pieces
    ([[1, 0, 0], [0, 1, 0], [1, 0, 0]], True),  # two pieces whose slices interleave
    ([[1, 0, 0], [1, 0, 0], [1, 0, 0]], False),
])
def test_a_series_split_into_interleaved_pieces_is_said(tmp_path: Path, directions, warned) -> None:
    """Real Philips slices whose gradient direction changes from slice to slice: the split is made (the
    header says so) and a warning says the pieces interleave."""
    report = convert(_diffusion_slices(tmp_path / "in", directions), tmp_path / "dataset", jobs=1)
    assert ("SPLIT_INTERLEAVED" in [p.code for p in report.problems]) == warned, report.problems


def test_a_series_exported_twice_is_converted_once(tmp_path: Path) -> None:
    """The real Philips CT slices in two folders (one export repeated): one volume of two slices, and a
    warning, not two volumes of a "split" series."""
    import shutil

    for copy in ("export1", "export2"):
        shutil.copytree(realworld.REALWORLD / "philips_ct_axial", tmp_path / "in" / copy)
    report = convert(tmp_path / "in", tmp_path / "dataset", jobs=1)
    assert [v.shape[2] for v in report.volumes] == [2], report.problems
    assert [p.code for p in report.problems if p.code != "NOT_PSEUDONYMIZED"] == ["DUPLICATE_INSTANCE"], report.problems


def test_every_stack_of_a_localizer_series_is_its_own_volume(tmp_path: Path) -> None:
    """A 3-plane localizer (one series, one echo, slices in three orientations; GE writes them so): three
    volumes under three names.  Their labels were all "echo 12", so all three were written to one file."""
    import pydicom
    from pydicom.uid import generate_uid
    from visceral.fileio import write_dicom

    inp = tmp_path / "in"
    inp.mkdir()
    series = generate_uid()
    planes = [[1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, -1], [1, 0, 0, 0, 0, -1]]
    for p, orientation in enumerate(planes):
        normal = np.cross(orientation[:3], orientation[3:])
        for n in range(1, 3):
            ds = pydicom.dcmread(str(realworld.REALWORLD / "hitachi_mr_implicit" / f"00{n}.dcm"))
            ds.SeriesInstanceUID, ds.ImageOrientationPatient = series, orientation
            ds.ImagePositionPatient = [float(v) for v in 5.0 * n * normal]
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            write_dicom(ds, str(inp / f"{p}_{n}.dcm"))
    report = convert(inp, tmp_path / "dataset", jobs=1)
    names = sorted(v.name for v in report.volumes)
    assert len(names) == 3 == len(set(names)) == len(list((tmp_path / "dataset").glob("*.nii.gz"))), report.volumes


@pytest.mark.parametrize("orientation, position, location, expected", [
    ([0, 1, 0, 0, 0, -1], [-63.0, -618.6, 590.9], -63.0, [1, 0, 0]),  # a real sagittal Siemens fMRI (dcm_qa_sag): to the left
    ([0, 1, 0, 0, 0, -1], [-63.0, -618.6, 590.9], None, [1, 0, 0]),  # no Slice Location: the positive main component
    ([1, 0, 0, 0, 1, 0], [-324.0, -324.0, 16.0], 16.0, [0, 0, 1]),  # the real axial one of the corpus
    ([1, 0, 0, 0, 1, 0], [-324.0, -324.0, 16.0], -16.0, [0, 0, -1]),  # a Slice Location that says the other way
])
def test_a_mosaics_slices_follow_its_true_normal(tmp_path: Path, orientation, position, location, expected) -> None:
    """The real Siemens mosaic of the corpus, its header set to another plane: the slices follow the normal
    Slice Location gives (the CSA header that said it is gone); a sagittal one was mirrored and 127 mm off."""
    import pydicom
    from visceral.fileio import write_dicom

    ds = pydicom.dcmread(str(realworld.REALWORLD / "siemens_mr_mosaic" / "epi_pe_ap-00001.dcm"))
    ds.ImageOrientationPatient, ds.ImagePositionPatient = orientation, position
    if location is None:
        del ds.SliceLocation
    else:
        ds.SliceLocation = location
    (tmp_path / "in").mkdir()
    write_dicom(ds, str(tmp_path / "in" / "mosaic.dcm"))
    report = convert(tmp_path / "in", tmp_path / "dataset", jobs=1)
    (volume,) = report.volumes
    assert "MOSAIC_ORDER_ASSUMED" in [p.code for p in report.problems]  # ascending: the order is not in a standard attribute
    image = nibabel.load(str(tmp_path / "dataset" / volume.name))
    slices = image.shape[2]
    ends = [np.diag([-1.0, -1.0, 1.0]) @ (image.affine @ [0, 0, k, 1])[:3] for k in (0, slices - 1)]  # LPS
    along = sorted(float(end @ np.asarray(expected, dtype=float)) for end in ends)
    start = float(np.asarray(position) @ np.asarray(expected, dtype=float))  # the first slice, the mosaic's position
    step = float(ds.SpacingBetweenSlices or ds.SliceThickness)
    assert slices > 1 and np.allclose(along, [start, start + (slices - 1) * step], atol=1e-3), (along, start, step)
