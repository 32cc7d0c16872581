"""NIfTI reading and writing: geometry, voxel types, NaN, the raw header reader against nibabel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import read_with_slicer

import gallery
from visceral.imageio import read_geometry, read_nifti_header, read_nifti_voxels, read_volume, smallest_label_dtype, write_volume


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.float32, np.float64])
def test_round_trip_keeps_type_values_and_grid(tmp_path: Path, dtype) -> None:
    rng = np.random.default_rng(3)
    array = (rng.uniform(0, 200, size=tuple(reversed(gallery.GEOMETRY.shape)))).astype(dtype)
    path = write_volume(tmp_path / "v.nii.gz", array, gallery.GEOMETRY)
    values, geometry = read_volume(path)
    assert values.dtype == np.dtype(dtype) and np.array_equal(values, array)
    assert geometry.same_grid(gallery.GEOMETRY, 1e-4)
    # SimpleITK reads the same voxels in the same [k, j, i] order.
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), array)


def test_nan_survives_where_simpleitk_hides_it(tmp_path: Path) -> None:
    array = np.zeros(tuple(reversed(gallery.GEOMETRY.shape)), np.float32)
    array[1, 2, 3] = np.nan
    path = write_volume(tmp_path / "nan.nii", array, gallery.GEOMETRY)
    assert np.isnan(read_nifti_voxels(path)).sum() == 1
    assert np.isnan(read_volume(path)[0]).sum() == 1
    # The trap this guards against (SimpleITK 2.5): NaN comes back as 0.
    assert np.isnan(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).sum() == 0


def test_raw_header_matches_nibabel(tmp_path: Path) -> None:
    nibabel = pytest.importorskip("nibabel")
    path = write_volume(tmp_path / "h.nii.gz", np.zeros(tuple(reversed(gallery.GEOMETRY.shape)), np.uint16), gallery.GEOMETRY)
    ours = read_nifti_header(path)
    theirs = nibabel.load(str(path)).header
    assert ours.shape == tuple(theirs.get_data_shape())
    assert (ours.qform_code, ours.sform_code) == (int(theirs["qform_code"]), int(theirs["sform_code"]))
    assert np.allclose(ours.qform, theirs.get_qform(), atol=1e-4)
    assert np.allclose(ours.sform, theirs.get_sform(), atol=1e-4)
    assert np.allclose(ours.sform, gallery.GEOMETRY.ijk_to_ras_matrix(), atol=1e-4)
    assert ours.descrip == "" or "ITK" in ours.descrip or ours.descrip.isprintable()


def test_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    from visceral.errors import FileFormatError

    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"garbage")
    for reader in (read_geometry, read_nifti_header, read_volume):
        with pytest.raises(FileFormatError) as info:
            reader(bad)
        assert str(bad) in str(info.value)


@pytest.mark.parametrize("name", ["cut.nii.gz", "cut.nii"])
def test_a_volume_cut_short_is_refused_not_read_as_zeros(tmp_path: Path, name: str) -> None:
    """SimpleITK reads a truncated NIfTI with the missing voxels as 0; read_volume refuses it."""
    from visceral.errors import FileFormatError

    from visceral.conventions.frames import ImageGeometry

    geometry = ImageGeometry((40, 30, 20), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    values = np.random.default_rng(1).integers(0, 1000, (20, 30, 40)).astype(np.int16)
    whole = write_volume(tmp_path / ("whole" + name[3:]), values, geometry)
    cut = tmp_path / name
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(cut))).shape == values.shape  # SimpleITK reads it, zero-filled
    with pytest.raises(FileFormatError, match="truncated|cannot read the voxel data"):
        read_volume(cut)


def test_smallest_label_dtype() -> None:
    assert smallest_label_dtype(255) == np.uint8
    assert smallest_label_dtype(40358) == np.uint16
    assert smallest_label_dtype(70000) == np.uint32


def test_a_volume_compressed_in_parallel_blocks_reads_the_same_everywhere(tmp_path: Path, monkeypatch) -> None:
    """A .nii.gz of several gzip members (blocks compressed on all cores): SimpleITK (ITK's zlib, as in
    3D Slicer), nibabel, Python's gzip, our reader and Slicer's own storage node read the same voxels."""
    import gzip

    import visceral.imageio as imageio
    from visceral.conventions.frames import ImageGeometry

    monkeypatch.setattr(imageio, "GZIP_BLOCK_BYTES", 3000)  # many members even for a small volume
    rng = np.random.default_rng(7)
    array = rng.integers(-1024, 3000, size=(9, 20, 30), dtype=np.int16)
    geometry = ImageGeometry((30, 20, 9), (0.7, 0.8, 2.5), (-10.0, 5.0, 30.0), ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    path = write_volume(tmp_path / "v.nii.gz", array, geometry)
    data = path.read_bytes()
    assert data.count(b"\x1f\x8b\x08") >= 3  # several members
    flat = np.frombuffer(gzip.decompress(data)[352:], dtype="<i2").reshape(array.shape)
    np.testing.assert_array_equal(flat, array)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), array)
    nibabel = pytest.importorskip("nibabel")
    np.testing.assert_array_equal(np.asarray(nibabel.load(str(path)).dataobj).transpose(2, 1, 0), array)
    np.testing.assert_array_equal(read_nifti_voxels(path), array)


def test_runs_of_zeros_are_written_once_compressed_and_read_the_same_everywhere(tmp_path: Path, monkeypatch) -> None:
    """A label volume's background (runs of zero bytes, whatever their length and alignment) goes out as
    members compressed once per run length; every reader sees the same voxels, and a second write is
    byte-identical."""
    import gzip

    import visceral.imageio as imageio
    from visceral.conventions.frames import ImageGeometry

    monkeypatch.setattr(imageio, "GZIP_BLOCK_BYTES", 4096)
    monkeypatch.setattr(imageio, "ZERO_UNIT_BYTES", 256)
    monkeypatch.setattr(imageio, "_ZERO_MEMBERS", {})
    array = np.zeros((11, 20, 30), np.uint16)
    array[2, 3:7, 5:9] = 58
    array[5:7, 10:12, :] = 86
    array[10, 19, 29] = 29662  # the very last voxel
    geometry = ImageGeometry((30, 20, 11), (0.7, 0.8, 2.5), (-10.0, 5.0, 30.0), ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    path = write_volume(tmp_path / "labels.nii.gz", array, geometry)
    assert imageio._ZERO_MEMBERS  # zero runs were recognized
    data = path.read_bytes()
    np.testing.assert_array_equal(np.frombuffer(gzip.decompress(data)[352:], dtype="<u2").reshape(array.shape), array)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), array)
    np.testing.assert_array_equal(read_nifti_voxels(path), array)
    nibabel = pytest.importorskip("nibabel")
    np.testing.assert_array_equal(np.asarray(nibabel.load(str(path)).dataobj).transpose(2, 1, 0), array)
    assert write_volume(tmp_path / "again.nii.gz", array, geometry).read_bytes() == data
    empty = write_volume(tmp_path / "empty.nii.gz", np.zeros_like(array), geometry)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(empty))), 0)


def test_slicer_reads_a_volume_compressed_in_parallel_blocks(tmp_path: Path, monkeypatch) -> None:
    """3D Slicer's own storage node (slicer-core: the real MRML library) reads the multi-member file."""
    import visceral.imageio as imageio
    from visceral.conventions.frames import ImageGeometry

    pytest.importorskip("slicer")
    from slicer.util import arrayFromVolume

    monkeypatch.setattr(imageio, "GZIP_BLOCK_BYTES", 3000)
    array = np.random.default_rng(8).integers(-1024, 3000, size=(9, 20, 30), dtype=np.int16)
    geometry = ImageGeometry((30, 20, 9), (0.7, 0.8, 2.5), (-10.0, 5.0, 30.0), ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    path = write_volume(tmp_path / "v.nii.gz", array, geometry)

    volume = read_with_slicer(path)
    np.testing.assert_array_equal(arrayFromVolume(volume), array)


def test_an_axis_longer_than_nifti1_holds_is_refused_clearly(tmp_path: Path) -> None:
    from visceral.conventions.frames import ImageGeometry
    from visceral.errors import GeometryError

    geometry = ImageGeometry((40000, 1, 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    with pytest.raises(GeometryError, match="at most 32767 voxels"):
        write_volume(tmp_path / "long.nii.gz", np.zeros((1, 1, 40000), np.uint8), geometry)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("shape_kji, dtype", [((1, 7, 5), np.uint8), ((9, 20, 30), np.int16), ((5, 3, 1), np.uint32)])
def test_a_volume_written_slab_by_slab_reads_as_the_array_it_was_painted_from(tmp_path: Path, monkeypatch, shape_kji, dtype) -> None:
    """write_volume_slabs: slabs of two slices (a shorter last one), rows not marked written as zero members,
    the header of write_volume; gzip, SimpleITK, nibabel and our reader see the array; .nii too."""
    import gzip

    import visceral.imageio as imageio
    from visceral.conventions.frames import ImageGeometry
    from visceral.imageio import write_volume_slabs

    nk, nj, ni = shape_kji
    monkeypatch.setattr(imageio, "GZIP_BLOCK_BYTES", 2 * nj * ni * np.dtype(dtype).itemsize)
    rng = np.random.default_rng(nk)
    array = (rng.integers(1, 100, size=shape_kji) * (rng.random(shape_kji) < 0.3)).astype(dtype)
    array[:, ::3] = 0  # whole rows of zeros
    geometry = ImageGeometry((ni, nj, nk), (0.7, 0.8, 2.5), (-10.0, 5.0, 30.0), ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    calls = []

    def paint(k, out, rows):
        calls.append((k, len(out)))
        out[...] = array[k:k + len(out)]
        rows |= out.any(axis=2)
        return [(slice(None),)]

    path = write_volume_slabs(tmp_path / "v.nii.gz", geometry, dtype, paint)
    assert sorted(k for k, _ in calls) == list(range(0, nk, 2)) and sum(n for _, n in calls) == nk  # painted by worker threads, in any order
    data = path.read_bytes()
    np.testing.assert_array_equal(np.frombuffer(gzip.decompress(data)[352:], dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape_kji), array)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), array)
    np.testing.assert_array_equal(read_nifti_voxels(path), array)
    nibabel = pytest.importorskip("nibabel")
    np.testing.assert_array_equal(np.asarray(nibabel.load(str(path)).dataobj).transpose(2, 1, 0), array)
    plain = write_volume(tmp_path / "plain.nii.gz", array, geometry)
    assert gzip.decompress(plain.read_bytes())[:352] == gzip.decompress(data)[:352]  # the same header
    assert read_nifti_header(path).shape == (ni, nj, nk)
    raw = write_volume_slabs(tmp_path / "v.nii", geometry, dtype, paint)
    assert raw.read_bytes() == gzip.decompress(data)


def test_an_oblique_axial_grid_keeps_qform_and_sform_together_as_far_as_nifti_can(tmp_path: Path) -> None:
    """A real slightly oblique axial grid (a Siemens B12 EPI mosaic, neurolabusc/dcm_qa_stc
    In/Siemens/B12/2_FMRI_AX_ASC): LPS to RAS makes its rotation nearly a half turn, where the float32
    quaternion loses a = sqrt(1 - b^2 - c^2 - d^2).  nibabel reads the qform 0.0165 mm off the sform: what
    qform_storage_gap_mm predicts, so validate accepts it; a qform moved further is still refused."""
    import gzip
    import struct

    from visceral.conventions.frames import ImageGeometry
    from visceral.imageio import qform_storage_gap_mm
    from visceral.validate import QFORM_SFORM_TOLERANCE_MM, validate_dataset

    nibabel = pytest.importorskip("nibabel")
    sform = np.array([[-3.2499949932e+00, 1.9005075558e-07, -5.5850585923e-03, 1.0884054565e+02],
                      [-5.2414525999e-04, -3.2361052036e+00, 2.9558545351e-01, 1.1956490326e+02],
                      [-5.6480569765e-03, 3.0020442605e-01, 3.1863141060e+00, -2.5627079010e+01]])
    spacing = np.linalg.norm(sform[:, :3], axis=0)
    to_lps = np.diag([-1.0, -1.0, 1.0])
    geometry = ImageGeometry((64, 64, 35), tuple(spacing), tuple(to_lps @ sform[:, 3]), tuple(map(tuple, to_lps @ sform[:, :3] / spacing)))
    folder = tmp_path / "dataset"
    folder.mkdir()
    path = write_volume(folder / "subject01_1_modalityMR.nii.gz", np.zeros((35, 64, 64), np.int16), geometry)
    image = nibabel.load(str(path))
    corners = np.column_stack([np.array([[i, j, k] for i in (0, 63) for j in (0, 63) for k in (0, 34)]), np.ones(8)])
    theirs = float(np.max(np.abs(corners @ image.get_qform().T - corners @ image.get_sform().T)))
    ours = qform_storage_gap_mm(read_nifti_header(path))
    assert 0.01 < theirs < 0.03 and abs(ours - theirs) < 1e-4
    codes = [f.code for f in validate_dataset(folder).findings]
    assert "NIFTI_HEADER_INVALID" not in codes, codes
    raw = bytearray(gzip.decompress(path.read_bytes()))
    struct.pack_into("<f", raw, 268, struct.unpack_from("<f", raw, 268)[0] + ours + 2 * QFORM_SFORM_TOLERANCE_MM)
    path.write_bytes(gzip.compress(bytes(raw)))
    assert "NIFTI_HEADER_INVALID" in [f.code for f in validate_dataset(folder).findings]
