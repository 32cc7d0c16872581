"""The scoring metrics cross-checked against independent, well-known implementations: ``seg-metrics`` (SimpleITK
contours and distance maps), DeepMind's ``surface-distance`` (``compute_robust_hausdorff``), and SciPy
(6-connected erosion and a k-d tree).

These packages are test dependencies of the main stack only (``pyproject.toml``'s ``test`` extra); the
Makefile's Slicer-stack run ignores this file.  The stack-independent checks (analytic shapes, brute force,
SimpleITK's filters) are in ``test_evaluate_metrics.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from scipy.spatial import cKDTree
from seg_metrics.seg_metrics import computeQualityMeasures
from surface_distance import metrics as deepmind

from visceral.evaluate.metrics import region_metrics, surface_distances

SPACING = (0.7, 1.1, 2.5)  # i, j, k (mm)

# surface-distance 0.1 imports SciPy's deprecated sub-module paths
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def blobs(seed: int, shape=(24, 30, 36)) -> np.ndarray:
    """A few random ellipsoids, kept one voxel away from the image edge (seg-metrics counts the edge as inside)."""
    rng = np.random.default_rng(seed)
    k, j, i = np.indices(shape, dtype=float)
    mask = np.zeros(shape, dtype=bool)
    for _ in range(rng.integers(1, 4)):
        centre = rng.uniform(0.3, 0.7, 3) * np.array(shape)
        radii = rng.uniform(2.0, 8.0, 3)
        mask |= ((k - centre[0]) / radii[0] * 2.5 / 1.5) ** 2 + ((j - centre[1]) / radii[1]) ** 2 + ((i - centre[2]) / radii[2] * 0.7) ** 2 <= 1
    mask[[0, -1], :, :] = mask[:, [0, -1], :] = mask[:, :, [0, -1]] = False
    if not mask.any():
        mask[shape[0] // 2, shape[1] // 2, shape[2] // 2] = True
    return mask


def scipy_directed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Directed distances from the border voxels of ``a`` to those of ``b``: SciPy's 6-connected erosion (the image
    edge outside) and a k-d tree over voxel centres in mm."""
    six = ndimage.generate_binary_structure(3, 1)
    def border(mask):
        return mask & ~ndimage.binary_erosion(mask, structure=six, border_value=0)
    scale = np.array(SPACING[::-1])
    distances, _ = cKDTree(np.argwhere(border(b)) * scale).query(np.argwhere(border(a)) * scale)
    return distances


def seg_metrics(reference: np.ndarray, result: np.ndarray) -> dict:
    # arrays [k, j, i] go through sitk.GetImageFromArray, so the spacing is given in SimpleITK's (i, j, k) order;
    # fullyConnected=False: 6-neighbourhood contours, as ours
    return computeQualityMeasures(result.astype(np.uint8), reference.astype(np.uint8), np.array(SPACING), fullyConnected=False)


@settings(max_examples=6)
@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))
def test_overlap_against_seg_metrics(seed_a: int, seed_b: int) -> None:
    reference, result = blobs(seed_a), blobs(seed_b)
    ours, theirs = region_metrics(reference, result, SPACING), seg_metrics(reference, result)
    assert ours["dice"] == pytest.approx(theirs["dice"], rel=1e-12)
    assert ours["jaccard"] == pytest.approx(theirs["jaccard"], rel=1e-12)
    assert ours["sensitivity"] == pytest.approx(theirs["recall"], rel=1e-12)
    assert ours["specificity"] == pytest.approx(1 - theirs["fpr"], rel=1e-12)
    assert ours["volume_similarity"] == pytest.approx(1 - abs(theirs["vs"]) / 2, rel=1e-12)  # theirs is the signed 2(|S|-|R|)/(|S|+|R|)


@settings(max_examples=6)
@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))
def test_surface_distances_against_seg_metrics_on_disjoint_shapes(seed_a: int, seed_b: int) -> None:
    # seg-metrics takes a border voxel lying inside the other mask at SimpleITK's inside distance (to the other mask's
    # background), not at the distance to its nearest border voxel; outside the other mask both are the distance to
    # the nearest voxel of it, so on disjoint shapes every surface distance must agree
    reference = blobs(seed_a)
    result = blobs(seed_b) & ~reference
    if not result.any():
        result[1, 1, 1] = True
    ours, theirs = region_metrics(reference, result, SPACING), seg_metrics(reference, result)
    assert ours["hausdorff"] == pytest.approx(theirs["hd"], rel=1e-5)
    assert ours["assd"] == pytest.approx(theirs["msd"], rel=1e-5)  # the mean over both directed sets together
    assert ours["dice"] == theirs["dice"] == 0.0


@settings(max_examples=15)
@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))
def test_directed_distances_and_hd95_against_scipy_and_surface_distance(seed_a: int, seed_b: int) -> None:
    reference, result = blobs(seed_a), blobs(seed_b)
    ref_to_res, res_to_ref = surface_distances(reference, result, SPACING)
    expected_ref, expected_res = scipy_directed(reference, result), scipy_directed(result, reference)
    assert np.allclose(np.sort(ref_to_res), np.sort(expected_ref), rtol=1e-6, atol=1e-5)
    assert np.allclose(np.sort(res_to_ref), np.sort(expected_res), rtol=1e-6, atol=1e-5)
    ours = region_metrics(reference, result, SPACING)
    # HD95 is surface-distance's robust Hausdorff distance (the larger directed percentile) with one unit of area per border voxel
    deepmind_input = {"distances_gt_to_pred": np.sort(expected_ref), "distances_pred_to_gt": np.sort(expected_res),
                      "surfel_areas_gt": np.ones(expected_ref.size), "surfel_areas_pred": np.ones(expected_res.size)}
    assert ours["hausdorff95"] == pytest.approx(deepmind.compute_robust_hausdorff(deepmind_input, 95), rel=1e-6)
    assert ours["hausdorff"] == pytest.approx(deepmind.compute_robust_hausdorff(deepmind_input, 100), rel=1e-6)


@pytest.mark.parametrize("shift", [1, 4])
def test_shifted_boxes_on_an_anisotropic_grid_against_surface_distance(shift: int) -> None:
    # surface-distance measures between surface elements (voxel faces), we between border voxel centres: for a box
    # shifted along one axis both give the shift as the Hausdorff distance, and the same Dice
    shape = (20, 24, 28)
    reference = np.zeros(shape, dtype=bool)
    reference[5:15, 6:18, 7:21] = True
    for axis in range(3):
        result = np.roll(reference, shift, axis=axis)
        ours = region_metrics(reference, result, SPACING)
        distances = deepmind.compute_surface_distances(reference, result, SPACING[::-1])
        assert ours["hausdorff"] == pytest.approx(deepmind.compute_robust_hausdorff(distances, 100), rel=1e-6)
        assert ours["hausdorff"] == pytest.approx(shift * SPACING[2 - axis], rel=1e-6)
        assert ours["dice"] == pytest.approx(deepmind.compute_dice_coefficient(reference, result), rel=1e-12)
