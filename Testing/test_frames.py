"""Coordinate frames against independent oracles: SimpleITK (LPS), nibabel (NIfTI RAS), Slicer MRML (Slicer RAS)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import read_with_slicer
from hypothesis import given, settings
from hypothesis import strategies as st

from visceral.conventions.frames import ImageGeometry, covariance_lps_to_ras, lps_to_ras, ras_to_lps, rotation_xyz
from visceral.errors import GeometryError


def oblique_image(flip: bool = False) -> sitk.Image:
    """An oblique (about 20 degrees on two axes), anisotropic, optionally left-handed image."""
    image = sitk.Image(7, 5, 4, sitk.sitkInt16)
    image.SetSpacing((0.6, 0.85, 3.0))
    image.SetOrigin((-101.25, 37.5, 512.0))
    direction = rotation_xyz(0.35, -0.2, 0.1)
    if flip:
        direction = direction @ np.diag([1.0, -1.0, 1.0])
    image.SetDirection(tuple(direction.ravel()))
    arr = np.arange(7 * 5 * 4, dtype=np.int16).reshape(4, 5, 7)
    filled = sitk.GetImageFromArray(arr)
    filled.CopyInformation(image)
    return filled


def test_lps_ras_flip() -> None:
    p = np.array([[1.0, -2.0, 3.0]])
    assert lps_to_ras(p).tolist() == [[-1.0, 2.0, 3.0]]
    assert ras_to_lps(lps_to_ras(p)).tolist() == p.tolist()
    c = np.arange(9.0).reshape(3, 3)
    assert covariance_lps_to_ras(c).tolist() == (np.diag([-1, -1, 1]) @ c @ np.diag([-1, -1, 1])).tolist()


@pytest.mark.parametrize("flip", [False, True])
def test_index_to_lps_matches_simpleitk(flip: bool) -> None:
    image = oblique_image(flip)
    geometry = ImageGeometry.from_sitk(image)
    rng = np.random.default_rng(0)
    for ijk in rng.uniform(-1, 8, size=(20, 3)):
        expected = image.TransformContinuousIndexToPhysicalPoint(tuple(ijk))
        assert np.allclose(geometry.index_to_world(ijk, "LPS"), expected, atol=1e-9)
        assert np.allclose(geometry.world_to_index(expected, "LPS"), ijk, atol=1e-9)
        assert np.allclose(geometry.index_to_world(ijk, "RAS"), lps_to_ras(expected), atol=1e-9)


@pytest.mark.parametrize("flip", [False, True])
def test_ijk_to_ras_matches_nibabel_affine_of_the_written_nifti(tmp_path: Path, flip: bool) -> None:
    nibabel = pytest.importorskip("nibabel")
    image = oblique_image(flip)
    path = tmp_path / "img.nii.gz"
    sitk.WriteImage(image, str(path))
    nii = nibabel.load(str(path))
    geometry = ImageGeometry.from_sitk(image)
    assert np.allclose(geometry.ijk_to_ras_matrix(), nii.affine, atol=1e-4)  # NIfTI stores float32
    back = ImageGeometry.from_ijk_to_ras(nii.affine, nii.shape)
    assert back.same_grid(geometry, tolerance_mm=1e-3)


def test_landmark_frame_is_voxel_index_times_spacing() -> None:
    image = oblique_image()
    geometry = ImageGeometry.from_sitk(image)
    spacing = np.array(image.GetSpacing())
    # Voxel [0,0,0] is the origin of the landmark frame.
    assert np.allclose(geometry.world_to_landmark(image.GetOrigin(), "LPS"), 0, atol=1e-9)
    for ijk in [(1, 0, 0), (0, 1, 0), (0, 0, 1), (3.5, 2.25, 1.75)]:
        world = image.TransformContinuousIndexToPhysicalPoint(ijk)
        assert np.allclose(geometry.world_to_landmark(world, "LPS"), np.array(ijk) * spacing, atol=1e-9)
        assert np.allclose(geometry.world_to_landmark(lps_to_ras(world), "RAS"), np.array(ijk) * spacing, atol=1e-9)
    # Not the same as "world minus origin" on an oblique image (a classic mistake).
    world = np.array(image.TransformContinuousIndexToPhysicalPoint((3, 2, 1)))
    assert not np.allclose(geometry.world_to_landmark(world, "LPS"), world - np.array(image.GetOrigin()), atol=1e-3)


@pytest.mark.parametrize("frame", ["LPS", "RAS"])
def test_covariance_rotation_matches_the_jacobian_of_simpleitk(frame: str) -> None:
    image = oblique_image(flip=True)
    geometry = ImageGeometry.from_sitk(image)
    spacing = np.array(image.GetSpacing())
    p = np.array(image.TransformContinuousIndexToPhysicalPoint((2, 2, 2)))

    def to_landmark(world_lps: np.ndarray) -> np.ndarray:  # independent: SimpleITK's inverse mapping
        return np.array(image.TransformPhysicalPointToContinuousIndex(tuple(world_lps))) * spacing

    jacobian_lps = np.column_stack([to_landmark(p + e) - to_landmark(p) for e in np.eye(3)])
    a = np.random.default_rng(1).normal(size=(3, 3))
    cov_world = a @ a.T + np.eye(3)
    cov_lps = cov_world if frame == "LPS" else covariance_lps_to_ras(cov_world)
    expected = jacobian_lps @ cov_lps @ jacobian_lps.T
    ours = geometry.covariance_world_to_landmark(cov_world, frame)
    assert np.allclose(ours, expected, atol=1e-9)
    assert np.allclose(np.linalg.eigvalsh(ours), np.linalg.eigvalsh(cov_world), atol=1e-9)  # a pure rotation
    assert np.allclose(geometry.covariance_landmark_to_world(ours, frame), cov_world, atol=1e-9)


FINITE = st.floats(-1e3, 1e3, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(st.floats(0.1, 5), st.floats(0.1, 5), st.floats(0.1, 5)),
    st.tuples(FINITE, FINITE, FINITE),
    st.tuples(st.floats(-3.2, 3.2), st.floats(-3.2, 3.2), st.floats(-3.2, 3.2)),
    st.tuples(FINITE, FINITE, FINITE),
    st.sampled_from(["LPS", "RAS"]),
)
def test_landmark_round_trip_below_a_micrometre(spacing, origin, angles, point, frame) -> None:
    geometry = ImageGeometry((10, 10, 10), spacing, origin, tuple(map(tuple, rotation_xyz(*angles))))
    back = geometry.landmark_to_world(geometry.world_to_landmark(point, frame), frame)
    assert np.max(np.abs(back - np.array(point))) < 1e-6


def test_invalid_geometry_is_refused() -> None:
    with pytest.raises(GeometryError, match="voxel size"):
        ImageGeometry((2, 2, 2), (1, 0, 1), (0, 0, 0))
    with pytest.raises(GeometryError, match="singular"):
        ImageGeometry((2, 2, 2), (1, 1, 1), (0, 0, 0), ((1, 0, 0), (1, 0, 0), (0, 0, 1)))
    with pytest.raises(GeometryError, match="shape"):
        ImageGeometry((2, 0, 2), (1, 1, 1), (0, 0, 0))


@pytest.mark.parametrize("flip", [False, True])
def test_slicer_ras_places_every_voxel_where_we_do(tmp_path: Path, flip: bool) -> None:
    """Oracle for Slicer RAS: a NIfTI read by Slicer's MRML storage node puts each voxel value where we say.

    Trap found here (slicer-core 5.13): for a left-handed grid Slicer's reader reverses the k axis, so
    Slicer's IJK is *not* the NIfTI index; only world (RAS) positions agree.  Code that moves voxels
    between Slicer and files must therefore go through world coordinates or the IJKToRAS matrix.
    """
    pytest.importorskip("slicer")
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    image = oblique_image(flip)
    path = tmp_path / "img.nii.gz"
    sitk.WriteImage(image, str(path))
    volume = read_with_slicer(path)
    m = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(m)
    slicer_ijk_to_ras = np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
    dims = volume.GetImageData().GetDimensions()
    slicer_values = vtk_to_numpy(volume.GetImageData().GetPointData().GetScalars()).reshape(dims[::-1])

    geometry = ImageGeometry.from_sitk(image)
    ours = sitk.GetArrayFromImage(image)  # [k, j, i]
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in dims], indexing="ij"), axis=-1).reshape(-1, 3)
    ras = grid @ slicer_ijk_to_ras[:3, :3].T + slicer_ijk_to_ras[:3, 3]
    our_ijk = geometry.world_to_index(ras, "RAS")
    assert np.max(np.abs(our_ijk - np.round(our_ijk))) < 1e-3
    our_ijk = np.round(our_ijk).astype(int)
    assert np.array_equal(slicer_values[grid[:, 2], grid[:, 1], grid[:, 0]], ours[our_ijk[:, 2], our_ijk[:, 1], our_ijk[:, 0]])
    if not flip:  # right-handed: Slicer's IJKToRAS is exactly our NIfTI affine
        assert np.allclose(slicer_ijk_to_ras, geometry.ijk_to_ras_matrix(), atol=1e-4)


@pytest.mark.parametrize("flips, permutation", [((0, 0, 1), (0, 1, 2)), ((1, 0, 0), (0, 1, 2)), ((0, 1, 1), (1, 0, 2)), ((0, 0, 0), (2, 0, 1))])
def test_array_from_reindexes_the_same_voxels(flips, permutation) -> None:
    """A grid with reversed/permuted axes (as Slicer makes of a left-handed NIfTI) holds the same voxels."""
    image = oblique_image(flip=True)
    geometry = ImageGeometry.from_sitk(image)
    values = sitk.GetArrayFromImage(image)  # [k, j, i]
    # Build the other grid: axis n of the new grid = permuted axis of the old one, maybe reversed.
    d, sp, sh = geometry.direction, np.array(geometry.spacing_mm), np.array(geometry.shape)
    cols, spacing, shape = [], [], []
    origin_ijk = np.zeros(3)
    for n in range(3):
        old = permutation[n]
        sign = -1.0 if flips[n] else 1.0
        cols.append(sign * d[:, old])
        spacing.append(sp[old])
        shape.append(sh[old])
        if flips[n]:
            origin_ijk[old] = sh[old] - 1
    other = ImageGeometry(tuple(shape), tuple(spacing), tuple(geometry.index_to_world(origin_ijk, "LPS")), tuple(map(tuple, np.column_stack(cols))))
    # the other grid's array: value at its index = value at the same world point in ours
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    ours = np.rint(geometry.world_to_index(other.index_to_world(grid, "LPS"), "LPS")).astype(int)
    other_values = np.empty(tuple(reversed(shape)), values.dtype)
    other_values[grid[:, 2], grid[:, 1], grid[:, 0]] = values[ours[:, 2], ours[:, 1], ours[:, 0]]
    assert np.array_equal(geometry.array_from(other_values, other), values)
    assert geometry.axis_map(other) is not None
    shifted = ImageGeometry(other.shape, other.spacing_mm, tuple(np.array(other.origin_lps) + 0.3), other.direction_lps)
    with pytest.raises(GeometryError):
        geometry.array_from(other_values, shifted)
    # A grid mirrored about its origin lies on the same lattice, on the other side: not the same voxels.
    mirrored = ImageGeometry(geometry.shape, geometry.spacing_mm, geometry.origin_lps, tuple(map(tuple, -np.asarray(geometry.direction_lps))))
    assert geometry.axis_map(mirrored) is None and mirrored.axis_map(geometry) is None
    with pytest.raises(GeometryError):
        geometry.array_from(values, mirrored)


def test_a_crop_lands_where_the_whole_array_would() -> None:
    """crop_from (a box of one grid as the same box of another) agrees with array_from on the whole
    array, for a grid whose k axis another reader reverses."""
    from visceral.conventions.frames import ImageGeometry

    file_grid = ImageGeometry((6, 5, 4), (0.7, 0.9, 2.5), (10.0, -3.0, 7.0), ((1, 0, 0), (0, -1, 0), (0, 0, 1)))
    flipped = ImageGeometry(file_grid.shape, file_grid.spacing_mm, tuple(file_grid.index_to_world([[0, 0, 3]], "LPS")[0]),
                            ((1, 0, 0), (0, -1, 0), (0, 0, -1)))
    whole = np.zeros((4, 5, 6), np.int16)
    whole[1:3, 2:5, 0:4] = np.arange(24).reshape(2, 3, 4) + 1
    crop, start = file_grid.crop_from(whole[1:3, 2:5, 0:4], (1, 2, 0), flipped)
    expected = file_grid.array_from(whole, flipped)
    rebuilt = np.zeros_like(expected)
    rebuilt[start[0]:start[0] + crop.shape[0], start[1]:start[1] + crop.shape[1], start[2]:start[2] + crop.shape[2]] = crop
    np.testing.assert_array_equal(rebuilt, expected)
