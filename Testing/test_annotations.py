"""Region and landmark annotation I/O on oblique, anisotropic grids."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gallery
from visceral.annotations import (
    export_landmarks,
    export_region_annotation,
    export_uncertainty_volumes,
    find_overlaps,
    import_landmarks,
    mask_to_probability,
    probability_to_mask,
    read_region_annotation,
    read_uncertainty_volumes,
)
from visceral.annotations.regions import GridMismatchError, OverlapError, label_table_path
from visceral.conventions.frames import ImageGeometry, rotation_xyz
from visceral.conventions.landmarks import read_landmarks, write_landmarks
from visceral.conventions.names import parse_name
from visceral.errors import LandmarkFileError, UnknownStructureError, VisceralError
from visceral.imageio import read_nifti_header, read_volume

G = gallery.GEOMETRY
REGION = gallery.REGION


def test_label_volume_on_the_reference_grid_with_radlex_values(tmp_path: Path) -> None:
    path = tmp_path / REGION.format()
    table = export_region_annotation(gallery.structures(), G, path)
    assert table.as_dict() == {"liver": 58, "spleen": 86, "right rectus abdominis": 40357}
    assert label_table_path(path).read_text() == "structure,label\nliver,58\nspleen,86\nright rectus abdominis,40357\n"
    labels, geometry = read_volume(path)
    assert geometry.same_grid(G, 1e-4)
    assert labels.dtype == np.uint16  # RadLex IDs above 255 and above int16's 32767 survive
    masks = gallery.structures()
    for name, value in table.entries:
        assert np.array_equal(labels == value, masks[name])
    assert np.count_nonzero(labels) == sum(int(m.sum()) for m in masks.values())
    assert np.allclose(read_nifti_header(path).sform, G.ijk_to_ras_matrix(), atol=1e-4)


def test_shuffling_the_input_order_gives_identical_voxels(tmp_path: Path) -> None:
    items = list(gallery.structures().items())
    reference = None
    for n in range(4):
        random.Random(n).shuffle(items)
        path = tmp_path / f"subject01_1_modalityCT_regionannotation_{n}.nii.gz"
        export_region_annotation(dict(items), G, path)
        labels, _ = read_volume(path)
        if reference is None:
            reference = labels
        assert np.array_equal(labels, reference)
        assert label_table_path(path).read_text() == label_table_path(tmp_path / "subject01_1_modalityCT_regionannotation_0.nii.gz").read_text()


def test_compact_labels(tmp_path: Path) -> None:
    table = export_region_annotation({"spleen": gallery.structures()["spleen"], "Liver": gallery.structures()["liver"]}, G, tmp_path / REGION.format(), compact=True)
    assert table.as_dict() == {"liver": 1, "spleen": 2}
    assert read_volume(tmp_path / REGION.format())[0].dtype == np.uint8


def test_overlap_is_an_error_with_names_and_counts(tmp_path: Path) -> None:
    masks = gallery.structures()
    masks["left kidney"] = gallery.box((3, 3, 2), (7, 4, 3))  # 2x1x1 with liver (i 3-4) and 1x1x1 with spleen (i 6)
    assert find_overlaps(masks) == [("liver", "left kidney", 2), ("spleen", "left kidney", 1)]
    with pytest.raises(OverlapError) as info:
        export_region_annotation(masks, G, tmp_path / REGION.format())
    assert info.value.overlaps == [("liver", "left kidney", 2), ("spleen", "left kidney", 1)]
    assert "liver and left kidney: 2 voxels" in str(info.value)
    assert not list(tmp_path.iterdir())  # nothing written


def test_export_refuses_unknown_wrong_shape_duplicate_and_non_binary(tmp_path: Path) -> None:
    with pytest.raises(UnknownStructureError, match="did you mean 'liver'"):
        export_region_annotation({"livr": gallery.structures()["liver"]}, G, tmp_path / REGION.format())
    with pytest.raises(GridMismatchError, match="differs from the reference grid"):
        export_region_annotation({"liver": np.zeros((2, 2, 2), bool)}, G, tmp_path / REGION.format())
    with pytest.raises(VisceralError, match="same structure"):
        export_region_annotation({"liver": gallery.structures()["liver"], "Liver": gallery.structures()["liver"]}, G, tmp_path / REGION.format())
    with pytest.raises(VisceralError, match="must be binary"):
        export_region_annotation({"liver": gallery.structures()["liver"] * 0.5}, G, tmp_path / REGION.format())
    assert not list(tmp_path.iterdir())


def test_import_round_trip_and_mismatch_reports(tmp_path: Path) -> None:
    path = tmp_path / REGION.format()
    export_region_annotation(gallery.structures(), G, path)
    annotation = read_region_annotation(path, reference=G)
    for name, mask in annotation.masks().items():
        assert np.array_equal(mask, gallery.structures()[name])
    assert annotation.labels_missing_from_table == [] and annotation.structures_missing_from_volume == []
    label_table_path(path).write_text("structure,label\nliver,58\nspleen,86\naorta,480\n")
    annotation = read_region_annotation(path, reference=G)
    assert annotation.labels_missing_from_table == [40357]
    assert annotation.structures_missing_from_volume == ["aorta"]
    shifted = ImageGeometry(G.shape, G.spacing_mm, (G.origin_lps[0] + 1, *G.origin_lps[1:]), G.direction_lps)
    with pytest.raises(GridMismatchError, match="differs from its image"):
        read_region_annotation(path, reference=shifted)


def test_uncertainty_volumes_round_trip_and_range(tmp_path: Path) -> None:
    masks = gallery.structures()
    probabilities = {"liver": np.where(masks["liver"], 0.75, 0.0).astype(np.float32), "spleen": masks["spleen"]}
    written = export_uncertainty_volumes(probabilities, G, REGION, tmp_path)
    assert sorted(p.name for p in written.values()) == [
        "subject01_1_modalityCT_regionannotation_label58_2.nii.gz", "subject01_1_modalityCT_regionannotation_label86_2.nii.gz"]
    spleen, _ = read_volume(written["spleen"])
    assert spleen.dtype == np.float32 and set(np.unique(spleen)) == {0.0, 1.0}  # binary mask -> exactly 0/1
    found, grid = read_uncertainty_volumes(tmp_path, REGION, reference=G)
    assert grid.same_grid(G) and np.array_equal(found["liver"], probabilities["liver"])
    with pytest.raises(VisceralError, match=r"must lie in \[0, 1\], found \[0, 1.5\]"):
        export_uncertainty_volumes({"liver": masks["liver"] * 1.5}, G, REGION, tmp_path / "x")
    with pytest.raises(VisceralError, match="finite"):
        export_uncertainty_volumes({"liver": np.full(masks["liver"].shape, np.nan)}, G, REGION, tmp_path / "x")


def test_uncertainty_with_compact_labels_writes_the_table(tmp_path: Path) -> None:
    written = export_uncertainty_volumes({"spleen": gallery.structures()["spleen"]}, G, REGION, tmp_path, compact=True)
    assert written["spleen"].name.endswith("_label1_2.nii.gz")
    assert (tmp_path / REGION.with_extension(".csv").format()).read_text() == "structure,label\nspleen,1\n"
    found, _ = read_uncertainty_volumes(tmp_path, REGION)
    assert list(found) == ["spleen"]


def test_probability_mask_conversions() -> None:
    p = np.array([0.0, 0.49, 0.5, 1.0], np.float32)
    assert probability_to_mask(p).tolist() == [False, False, True, True]
    assert probability_to_mask(p, 0.25).tolist() == [False, True, True, True]
    assert mask_to_probability(np.array([0, 3, 1])).tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(ValueError):
        probability_to_mask(p, 0.0)


# -- landmarks -------------------------------------------------------------------------------------------


def test_landmarks_round_trip_through_the_csv_below_a_micrometre(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    points_ras = G.index_to_world(rng.uniform(0, 7, size=(6, 3)), "RAS")
    a = rng.normal(size=(6, 3, 3))
    covs = [m @ m.T for m in a]
    landmarks = export_landmarks(list(range(10, 16)), points_ras, "RAS", G, covs)
    path = tmp_path / gallery.LANDMARKS.format()
    write_landmarks(path, landmarks)
    ids, back, back_covs = import_landmarks(read_landmarks(path), G, "RAS")
    assert ids == list(range(10, 16))
    assert np.max(np.abs(back - points_ras)) < 1e-6
    for c, d in zip(covs, back_covs):
        assert np.allclose(c, d, atol=1e-9)
    # LPS callers get the same CSV.
    lps = export_landmarks(list(range(10, 16)), points_ras * [-1, -1, 1], "LPS", G, [np.diag([-1, -1, 1]) @ c @ np.diag([-1, -1, 1]) for c in covs])
    assert all(np.allclose(x.position_mm, y.position_mm, atol=1e-9) and np.allclose(x.covariance, y.covariance, atol=1e-9) for x, y in zip(lps, landmarks))


def test_landmark_frame_values_are_index_times_spacing() -> None:
    (lm,) = export_landmarks([5], G.index_to_world([[2, 3, 4]], "LPS"), "LPS", G)
    assert np.allclose(lm.position_mm, (2 * 0.8, 3 * 0.9, 4 * 2.5), atol=1e-9)


def test_landmark_export_errors() -> None:
    with pytest.raises(LandmarkFileError, match="more than once: 3"):
        export_landmarks([3, 3], np.zeros((2, 3)), "RAS", G)
    with pytest.raises(LandmarkFileError, match="landmark 4: covariance is not positive semi-definite"):
        export_landmarks([4], np.zeros((1, 3)), "RAS", G, [np.diag([1.0, -1.0, 1.0])])
    with pytest.raises(ValueError, match="world frame"):
        export_landmarks([4], np.zeros((1, 3)), "XYZ", G)


@settings(max_examples=40, deadline=None)
@given(
    st.tuples(st.floats(0.2, 4), st.floats(0.2, 4), st.floats(0.5, 6)),
    st.tuples(st.floats(-3, 3), st.floats(-3, 3), st.floats(-3, 3)),
    st.booleans(),
)
def test_landmark_round_trip_property(spacing, angles, flip) -> None:
    direction = rotation_xyz(*angles) @ np.diag([1.0, -1.0 if flip else 1.0, 1.0])
    geometry = ImageGeometry((20, 20, 20), spacing, (-120.0, 33.0, 410.0), tuple(map(tuple, direction)))
    points = geometry.index_to_world(np.random.default_rng(0).uniform(0, 19, size=(5, 3)), "RAS")
    from visceral.conventions.landmarks import landmarks_to_csv, parse_landmarks

    landmarks = parse_landmarks(landmarks_to_csv(export_landmarks([1, 2, 3, 4, 5], points, "RAS", geometry)))
    _, back, _ = import_landmarks(landmarks, geometry, "RAS")
    assert np.max(np.abs(back - points)) < 1e-6


def test_names_of_exported_files_parse(tmp_path: Path) -> None:
    export_uncertainty_volumes({"liver": gallery.structures()["liver"]}, G, REGION, tmp_path)
    (path,) = tmp_path.iterdir()
    name = parse_name(path.name)
    assert (name.label, name.annotator, name.image().format()) == (58, 2, "subject01_1_modalityCT.nii.gz")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 9), st.integers(0, 11), st.integers(1, 6), st.integers(1, 6), st.integers(1, 6),
                          st.integers(0, 2**31 - 1)), min_size=1, max_size=5))
def test_label_volume_built_box_by_box_equals_the_whole_mask_export(tmp_path_factory, boxes) -> None:
    """LabelVolumeBuilder (boxes of voxels, as a segmentation holds them) writes what
    export_region_annotation writes from whole-grid masks, and refuses the same overlaps with the same counts
    (a voxel in three structures counts for each of the three pairs)."""
    from visceral.annotations.regions import LabelVolumeBuilder, export_region_annotation

    folder = tmp_path_factory.mktemp("builder")
    geometry = ImageGeometry((12, 10, 8), (0.7, 0.8, 2.5), (-10.0, 5.0, 30.0), ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    names = ["liver", "spleen", "right kidney", "left kidney", "aorta"][:len(boxes)]
    builder = LabelVolumeBuilder(names, geometry)
    masks = {}
    for name, (k, j, i, dk, dj, di, seed) in zip(names, boxes):
        dk, dj, di = min(dk, 8 - k), min(dj, 10 - j), min(di, 12 - i)
        crop = np.random.default_rng(seed).random((dk, dj, di)) < 0.7
        whole = np.zeros((8, 10, 12), bool)
        whole[k:k + dk, j:j + dj, i:i + di] = crop
        masks[name] = whole
        assert builder.add(name, crop, (k, j, i)) == int(crop.sum())
    try:
        export_region_annotation(masks, geometry, folder / "whole.nii.gz")
        expected = None
    except OverlapError as exc:
        expected = sorted(exc.overlaps)
    if expected is None:
        builder.write(folder / "boxes.nii.gz")
        np.testing.assert_array_equal(read_volume(folder / "boxes.nii.gz")[0], read_volume(folder / "whole.nii.gz")[0])
        np.testing.assert_array_equal(builder.volume(), read_volume(folder / "whole.nii.gz")[0])
    else:
        with pytest.raises(OverlapError) as refused:
            builder.write(folder / "boxes.nii.gz")
        assert sorted(refused.value.overlaps) == expected


def test_a_voxel_in_three_structures_counts_for_each_of_the_three_pairs(tmp_path: Path) -> None:
    from visceral.annotations.regions import LabelVolumeBuilder

    geometry = ImageGeometry((12, 10, 8), (0.7, 0.8, 2.5), (-10.0, 5.0, 30.0), ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    builder = LabelVolumeBuilder(["liver", "spleen", "aorta"], geometry)
    builder.add("liver", np.ones((4, 4, 4), bool), (0, 0, 0))  # 64 voxels
    builder.add("spleen", np.ones((2, 4, 4), bool), (2, 0, 0))  # 32, all in the liver
    builder.add("aorta", np.ones((1, 1, 12), bool), (3, 3, 0))  # 12: 4 in liver and spleen
    with pytest.raises(OverlapError) as refused:
        builder.write(tmp_path / "labels.nii.gz")
    assert refused.value.overlaps == [("liver", "spleen", 32), ("liver", "aorta", 4), ("spleen", "aorta", 4)]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("shape_kji", [(1, 10, 12), (7, 5, 9), (13, 3, 4)])
def test_label_volume_written_slab_by_slab_from_layers_equals_the_plain_array(tmp_path: Path, monkeypatch, shape_kji) -> None:
    """Layers of several structures (signed, unsigned, boolean values; values with no structure are
    background), boxes touching every face of the grid, a one-slice grid; many slabs of one or more
    slices: the file holds what a plain array painted the same way holds, for every reader."""
    import gzip

    import SimpleITK as sitk

    import visceral.imageio as imageio
    from visceral.annotations.regions import LabelVolumeBuilder

    nk, nj, ni = shape_kji
    monkeypatch.setattr(imageio, "GZIP_BLOCK_BYTES", 2 * ni * nj * 2 + 1)  # slabs of two slices, a shorter last one
    monkeypatch.setattr(imageio, "_ZERO_MEMBERS", {})
    geometry = ImageGeometry((ni, nj, nk), (0.7, 0.8, 2.5), (-10.0, 5.0, 30.0), ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    rng = np.random.default_rng(nk)
    builder = LabelVolumeBuilder(["liver", "spleen", "aorta", "left rectus abdominis"], geometry)
    expected = np.zeros(shape_kji, np.uint16)
    values = {"liver": 58, "spleen": 86, "aorta": 480, "left rectus abdominis": 40358}
    # a signed layer of two structures on the first half of the grid (-3 and 5 have no structure)
    layer = rng.choice(np.array([0, 1, 2, -3, 5], np.int16), size=(nk, nj, ni // 2))
    builder.add_layer(layer, (0, 0, 0), {1: "liver", 2: "spleen"})
    expected[:, :, :ni // 2] = np.select([layer == 1, layer == 2], [58, 86], 0)
    # an unsigned layer, a view with steps, touching the last voxel of every axis
    big = rng.choice(np.array([0, 0, 7], np.uint8), size=(2 * nk, nj, ni - ni // 2))[::2]
    builder.add_layer(big, (0, 0, ni // 2), {7: "aorta"})
    expected[:, :, ni // 2:] = np.where(big == 7, 480, 0)
    builder.write(tmp_path / "labels.nii.gz")
    np.testing.assert_array_equal(builder.volume(), expected)
    data = (tmp_path / "labels.nii.gz").read_bytes()
    np.testing.assert_array_equal(np.frombuffer(gzip.decompress(data)[352:], dtype="<u2").reshape(shape_kji), expected)
    np.testing.assert_array_equal(read_volume(tmp_path / "labels.nii.gz")[0], expected)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "labels.nii.gz"))), expected)
    nibabel = pytest.importorskip("nibabel")
    np.testing.assert_array_equal(np.asarray(nibabel.load(str(tmp_path / "labels.nii.gz")).dataobj).transpose(2, 1, 0), expected)
    assert imageio.read_geometry(tmp_path / "labels.nii.gz").same_grid(geometry)
    assert builder.table.as_dict() == values and label_table_path(tmp_path / "labels.nii.gz").is_file()
    builder.write(tmp_path / "plain.nii", overwrite=True)  # uncompressed: the same voxels
    np.testing.assert_array_equal(read_volume(tmp_path / "plain.nii")[0], expected)
