"""The scoring metrics against analytic answers, a brute-force reading of their definitions, and SimpleITK's filters.

Runs on every stack (Slicer 5.8 and 5.10 included): only numpy and SimpleITK.  The cross-checks against
``seg-metrics`` and ``surface-distance`` are in ``test_evaluate_oracles.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from visceral.evaluate.metrics import (
    REGION_METRICS,
    border,
    bounding_box,
    fuzzy_metrics,
    label_metrics,
    landmark_metrics,
    nearest_rank_percentile,
    region_metrics,
    surface_distances,
)

SPACING = (0.7, 1.1, 2.5)  # i, j, k in mm: anisotropic, as most CT and MR


def box_mask(shape, start, size) -> np.ndarray:
    """A box of ``size`` voxels (k, j, i) from ``start`` in a volume of ``shape``."""
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(s, s + n) for s, n in zip(start, size))] = True
    return mask


def ball(shape, centre_kji, radius_mm, spacing=SPACING) -> np.ndarray:
    """Voxels whose centre is within ``radius_mm`` of ``centre_kji`` on the anisotropic grid."""
    k, j, i = np.indices(shape, dtype=float)
    d2 = ((i - centre_kji[2]) * spacing[0]) ** 2 + ((j - centre_kji[1]) * spacing[1]) ** 2 + ((k - centre_kji[0]) * spacing[2]) ** 2
    return d2 <= radius_mm ** 2


def image(mask: np.ndarray, spacing=SPACING) -> sitk.Image:
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    img.SetSpacing(spacing)
    return img


def brute_force_directed(a: np.ndarray, b: np.ndarray, spacing=SPACING) -> np.ndarray:
    """The definition read literally: border voxels by 6-neighbourhood (the image edge outside), and from each
    border voxel of ``a`` the smallest distance in mm between voxel centres to a border voxel of ``b``."""
    def border_points(mask):
        padded = np.pad(mask, 1)
        out = []
        for kji in np.argwhere(mask):
            k, j, i = kji + 1
            neighbours = [padded[k - 1, j, i], padded[k + 1, j, i], padded[k, j - 1, i], padded[k, j + 1, i], padded[k, j, i - 1], padded[k, j, i + 1]]
            if not all(neighbours):
                out.append(kji)
        return np.array(out, dtype=float) * np.array(spacing[::-1])

    pa, pb = border_points(a), border_points(b)
    return np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1)).min(axis=1)


def sitk_overlap(reference: np.ndarray, result: np.ndarray) -> sitk.LabelOverlapMeasuresImageFilter:
    f = sitk.LabelOverlapMeasuresImageFilter()
    f.Execute(image(result), image(reference))  # (source, target): errors are relative to the target, the reference
    return f


def sitk_hausdorff(reference: np.ndarray, result: np.ndarray) -> float:
    f = sitk.HausdorffDistanceImageFilter()
    f.Execute(image(reference), image(result))
    return f.GetHausdorffDistance()


# -- overlap ------------------------------------------------------------------------------------------------

def test_shifted_cube_overlap_has_the_analytic_values_and_matches_simpleitk() -> None:
    shape = (30, 40, 50)
    reference = box_mask(shape, (5, 5, 5), (10, 20, 20))
    result = box_mask(shape, (5, 5, 9), (10, 20, 20))  # shifted by 4 voxels along i
    scores = region_metrics(reference, result, SPACING)
    assert scores["dice"] == pytest.approx(16 / 20)  # analytic: 16 of 20 columns shared
    assert scores["jaccard"] == pytest.approx(16 / 24)
    assert scores["volume_similarity"] == 1.0
    assert scores["sensitivity"] == pytest.approx(16 / 20)
    assert scores["specificity"] == pytest.approx(1 - 4 * 200 / (reference.size - 4000))
    oracle = sitk_overlap(reference, result)
    assert scores["dice"] == pytest.approx(oracle.GetDiceCoefficient(), rel=1e-12)
    assert scores["jaccard"] == pytest.approx(oracle.GetJaccardCoefficient(), rel=1e-12)
    assert scores["sensitivity"] == pytest.approx(1 - oracle.GetFalseNegativeError(), rel=1e-12)
    # analytic Hausdorff distance: the shift, 4 voxels of 0.7 mm; SimpleITK's filter agrees
    assert scores["hausdorff"] == pytest.approx(4 * 0.7, rel=1e-6)
    assert scores["hausdorff"] == pytest.approx(sitk_hausdorff(reference, result), rel=1e-6)


@settings(max_examples=25)
@given(st.integers(0, 2**31 - 1))
def test_overlap_measures_match_simpleitk_on_random_shapes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (12, 14, 16)
    reference = rng.random(shape) < rng.uniform(0.05, 0.6)
    result = rng.random(shape) < rng.uniform(0.05, 0.6)
    scores = region_metrics(reference, result, SPACING)
    oracle = sitk_overlap(reference, result)
    assert scores["dice"] == pytest.approx(oracle.GetDiceCoefficient(), rel=1e-12)
    assert scores["jaccard"] == pytest.approx(oracle.GetJaccardCoefficient(), rel=1e-12)
    # SimpleITK's volume similarity is signed, 2(|S| - |R|) / (|S| + |R|); ours is Taha and Hanbury's 1 - |FN - FP| / (2TP + FP + FN)
    assert scores["volume_similarity"] == pytest.approx(1 - abs(oracle.GetVolumeSimilarity()) / 2, rel=1e-12)
    assert scores["sensitivity"] == pytest.approx(1 - oracle.GetFalseNegativeError(), rel=1e-12)
    fp = np.count_nonzero(result & ~reference)
    assert scores["specificity"] == pytest.approx(1 - fp / np.count_nonzero(~reference), rel=1e-12)


# -- surfaces and distances ---------------------------------------------------------------------------------

def test_border_is_the_six_neighbourhood_border_and_simpleitk_label_contour_agrees() -> None:
    mask = ball((20, 24, 28), (10, 12, 14), 9.0)
    mask[0:3, 0:3, 0:3] = True  # touches the image edge: the edge counts as outside
    padded = np.pad(mask, 1)
    ours = border(padded)[1:-1, 1:-1, 1:-1]
    # SimpleITK's contour counts the image edge as inside: it agrees with one empty voxel around the image
    contour = sitk.GetArrayFromImage(sitk.LabelContour(image(padded), fullyConnected=False)).astype(bool)[1:-1, 1:-1, 1:-1]
    assert np.array_equal(ours, contour)
    unpadded = sitk.GetArrayFromImage(sitk.LabelContour(image(mask), fullyConnected=False)).astype(bool)
    assert np.array_equal(ours[3:], unpadded[3:]) and not np.array_equal(ours, unpadded)


@settings(max_examples=20)
@given(st.integers(0, 2**31 - 1))
def test_surface_distances_are_the_brute_force_distances_between_border_voxel_centres(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (9, 11, 13)
    a = rng.random(shape) < 0.3
    b = rng.random(shape) < 0.3
    a[0, 0, 0] = b[-1, -1, -1] = True
    ref_to_res, res_to_ref = surface_distances(a, b, SPACING)
    assert np.allclose(np.sort(ref_to_res), np.sort(brute_force_directed(a, b)), rtol=1e-6, atol=1e-6)
    assert np.allclose(np.sort(res_to_ref), np.sort(brute_force_directed(b, a)), rtol=1e-6, atol=1e-6)
    scores = region_metrics(a, b, SPACING)
    both = np.concatenate([ref_to_res, res_to_ref])
    assert scores["assd"] == pytest.approx(both.mean(), rel=1e-9)
    assert scores["hausdorff"] == pytest.approx(both.max(), rel=1e-9)
    assert scores["hausdorff95"] == max(np.percentile(ref_to_res, 95, method="inverted_cdf"), np.percentile(res_to_ref, 95, method="inverted_cdf"))


def test_two_far_apart_blobs_are_scored_exactly_on_their_joint_bounding_box() -> None:
    # the distance transform runs on the box of both masks only: two small blobs far apart in a long volume
    shape = (6, 8, 200)
    a = box_mask(shape, (1, 1, 2), (3, 4, 5))
    b = box_mask(shape, (2, 3, 180), (3, 4, 6))
    ref_to_res, res_to_ref = surface_distances(a, b, SPACING)
    assert np.allclose(np.sort(ref_to_res), np.sort(brute_force_directed(a, b)), rtol=1e-6)
    assert np.allclose(np.sort(res_to_ref), np.sort(brute_force_directed(b, a)), rtol=1e-6)
    assert region_metrics(a, b, SPACING)["hausdorff"] == pytest.approx(sitk_hausdorff(a, b), rel=1e-6)


def test_concentric_spheres_hausdorff_is_the_radius_gap_and_matches_simpleitk() -> None:
    shape = (40, 60, 80)
    centre = (19.5, 29.5, 39.5)
    inner = ball(shape, centre, 15.0)
    outer = ball(shape, centre, 21.0)
    scores = region_metrics(inner, outer, SPACING)
    assert scores["hausdorff"] == pytest.approx(sitk_hausdorff(inner, outer), rel=1e-6)
    # analytic: 6 mm between the spheres, within the voxel discretisation of the surfaces (the largest voxel side)
    for name in ("assd", "hausdorff95", "hausdorff"):
        assert abs(scores[name] - 6.0) <= 2.5, name
    assert scores["assd"] <= scores["hausdorff95"] <= scores["hausdorff"]
    assert scores["dice"] == pytest.approx(2 * inner.sum() / (inner.sum() + outer.sum()))
    # analytic volumes: the ratio of the ball volumes within 5 %
    assert scores["dice"] == pytest.approx(2 * 15**3 / (15**3 + 21**3), rel=0.05)


@pytest.mark.parametrize("shift", [1, 3, 7])
def test_shifted_cube_along_each_axis_on_an_anisotropic_grid(shift: int) -> None:
    shape = (30, 30, 30)
    reference = box_mask(shape, (8, 8, 8), (10, 10, 10))
    for axis in range(3):
        start = [8, 8, 8]
        start[axis] += shift
        result = box_mask(shape, tuple(start), (10, 10, 10))
        scores = region_metrics(reference, result, SPACING)
        step_mm = SPACING[2 - axis]  # numpy axis k, j, i -> spacing i, j, k
        assert scores["hausdorff"] == pytest.approx(shift * step_mm, rel=1e-6)
        assert scores["hausdorff"] == pytest.approx(sitk_hausdorff(reference, result), rel=1e-6)
        assert scores["dice"] == pytest.approx((10 - shift) / 10)


def test_nearest_rank_percentile_definition() -> None:
    values = np.arange(1, 21, dtype=float)  # 1..20
    assert nearest_rank_percentile(values, 95) == 19.0  # ceil(0.95 * 20) = 19th value
    assert nearest_rank_percentile(np.arange(1, 22, dtype=float), 95) == 20.0  # ceil(19.95) = 20
    assert nearest_rank_percentile([5.0], 95) == 5.0
    assert nearest_rank_percentile(values[::-1], 100) == 20.0
    assert math.isnan(nearest_rank_percentile([], 95))
    rng = np.random.default_rng(1)
    for n in (1, 2, 19, 20, 21, 99, 100, 101, 1000):
        sample = rng.random(n)
        assert nearest_rank_percentile(sample, 95) == np.percentile(sample, 95, method="inverted_cdf")


def test_hausdorff95_is_the_larger_directed_percentile_not_the_percentile_of_the_union() -> None:
    shape = (20, 20, 40)
    reference = box_mask(shape, (5, 5, 5), (10, 10, 10))
    result = reference.copy()
    result[8:12, 8:12, 15:30] = True  # a spike: far from the reference only for a few result border voxels
    ref_to_res, res_to_ref = surface_distances(reference, result, SPACING)
    scores = region_metrics(reference, result, SPACING)
    directed = max(nearest_rank_percentile(ref_to_res, 95), nearest_rank_percentile(res_to_ref, 95))
    assert scores["hausdorff95"] == directed
    assert scores["hausdorff95"] != nearest_rank_percentile(np.concatenate([ref_to_res, res_to_ref]), 95)


def test_a_single_voxel_structure_is_its_own_border() -> None:
    shape = (5, 5, 5)
    a = box_mask(shape, (2, 2, 2), (1, 1, 1))
    b = box_mask(shape, (2, 2, 4), (1, 1, 1))
    scores = region_metrics(a, b, SPACING)
    assert scores["hausdorff"] == scores["hausdorff95"] == scores["assd"] == pytest.approx(2 * 0.7, rel=1e-6)


# -- empty cases --------------------------------------------------------------------------------------------

def test_both_empty_is_a_perfect_score_with_undefined_sensitivity() -> None:
    empty = np.zeros((4, 5, 6), dtype=bool)
    scores = region_metrics(empty, empty, SPACING)
    assert (scores["dice"], scores["jaccard"], scores["volume_similarity"], scores["specificity"]) == (1.0, 1.0, 1.0, 1.0)
    assert math.isnan(scores["sensitivity"])
    assert (scores["assd"], scores["hausdorff"], scores["hausdorff95"]) == (0.0, 0.0, 0.0)


def test_empty_result_scores_zero_overlap_and_infinite_distances() -> None:
    reference = box_mask((4, 5, 6), (1, 1, 1), (2, 2, 2))
    scores = region_metrics(reference, np.zeros_like(reference), SPACING)
    assert (scores["dice"], scores["jaccard"], scores["volume_similarity"], scores["sensitivity"], scores["specificity"]) == (0.0, 0.0, 0.0, 0.0, 1.0)
    assert scores["assd"] == scores["hausdorff"] == scores["hausdorff95"] == math.inf


def test_empty_reference_scores_zero_overlap_undefined_sensitivity_and_infinite_distances() -> None:
    result = box_mask((4, 5, 6), (1, 1, 1), (2, 2, 2))
    scores = region_metrics(np.zeros_like(result), result, SPACING)
    assert (scores["dice"], scores["jaccard"], scores["volume_similarity"]) == (0.0, 0.0, 0.0)
    assert math.isnan(scores["sensitivity"])
    assert scores["specificity"] == pytest.approx(1 - 8 / 120)
    assert scores["hausdorff"] == math.inf


# -- label volumes ------------------------------------------------------------------------------------------

def test_label_volume_scores_equal_the_scores_of_each_mask() -> None:
    shape = (24, 30, 36)
    reference = np.zeros(shape, dtype=np.uint16)
    result = np.zeros(shape, dtype=np.uint8)
    reference[ball(shape, (8, 10, 12), 7.0)] = 58
    reference[box_mask(shape, (14, 15, 20), (6, 10, 12))] = 40357
    result[ball(shape, (9, 10, 13), 7.5)] = 1  # the result's own label values (a compact table)
    result[box_mask(shape, (15, 15, 21), (6, 9, 12))] = 2
    pairs = {"liver": (58, 1), "right rectus abdominis": (40357, 2), "spleen": (86, None), "aorta": (None, None)}
    scores = label_metrics(reference, result, SPACING, pairs)
    assert set(scores) == set(pairs)
    for name, (ref_value, res_value) in pairs.items():
        expected = region_metrics(reference == ref_value if ref_value else np.zeros(shape, bool),
                                  result == res_value if res_value else np.zeros(shape, bool), SPACING)
        for metric in REGION_METRICS:
            assert scores[name][metric] == pytest.approx(expected[metric], rel=1e-12, nan_ok=True), (name, metric)
    assert scores["aorta"]["dice"] == 1.0 and scores["spleen"]["dice"] == 1.0  # absent from both volumes


def test_bounding_box() -> None:
    mask = box_mask((10, 11, 12), (2, 3, 4), (5, 1, 7))
    assert bounding_box(mask) == ((2, 7), (3, 4), (4, 11))
    assert bounding_box(np.zeros((3, 3, 3))) is None


# -- fuzzy --------------------------------------------------------------------------------------------------

def test_fuzzy_metrics_on_constant_probabilities_have_the_analytic_values() -> None:
    a = np.full((4, 4, 4), 0.8, dtype=np.float32)
    b = np.full((4, 4, 4), 0.4, dtype=np.float32)
    scores = fuzzy_metrics(a, b)
    assert scores["fuzzy_dice"] == pytest.approx(2 * 0.4 / 1.2, rel=1e-6)
    assert scores["probabilistic_distance"] == pytest.approx(0.4 / (2 * 0.32), rel=1e-6)


def test_fuzzy_metrics_of_binary_masks_are_dice_and_its_distance() -> None:
    shape = (10, 12, 14)
    a = box_mask(shape, (2, 2, 2), (5, 6, 7))
    b = box_mask(shape, (3, 2, 2), (5, 6, 7))
    scores = fuzzy_metrics(a.astype(np.float32), b.astype(np.float32))
    dice = region_metrics(a, b, SPACING)["dice"]
    assert scores["fuzzy_dice"] == pytest.approx(dice, rel=1e-12)
    tp, fp_fn = np.count_nonzero(a & b), np.count_nonzero(a ^ b)
    assert scores["probabilistic_distance"] == pytest.approx(fp_fn / (2 * tp), rel=1e-12)


def test_fuzzy_empty_cases() -> None:
    zero = np.zeros((3, 3, 3), dtype=np.float32)
    some = zero.copy()
    some[1, 1, 1] = 0.7
    assert fuzzy_metrics(zero, zero) == {"fuzzy_dice": 1.0, "probabilistic_distance": 0.0}
    assert fuzzy_metrics(some, zero) == {"fuzzy_dice": 0.0, "probabilistic_distance": math.inf}


# -- landmarks ----------------------------------------------------------------------------------------------

def test_landmark_error_axes_and_mahalanobis() -> None:
    scores = landmark_metrics((10.0, 20.0, 30.0), (13.0, 24.0, 30.0))
    assert scores["landmark_error"] == pytest.approx(5.0)
    assert (scores["landmark_error_x"], scores["landmark_error_y"], scores["landmark_error_z"]) == (3.0, 4.0, 0.0)
    assert math.isnan(scores["mahalanobis"])
    covariance = np.diag([9.0, 4.0, 1.0])
    assert landmark_metrics((0, 0, 0), (3, 4, 0), covariance)["mahalanobis"] == pytest.approx(math.sqrt(1 + 4))
    # both covariances: they add (independent errors)
    assert landmark_metrics((0, 0, 0), (3, 4, 0), covariance, covariance)["mahalanobis"] == pytest.approx(math.sqrt(9 / 18 + 16 / 8))
    # a rotated covariance: the distance is the same in the rotated frame
    angle = 0.4
    rotation = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
    error = rotation @ np.array([3.0, 4.0, 0.0])
    assert landmark_metrics((0, 0, 0), error, rotation @ covariance @ rotation.T)["mahalanobis"] == pytest.approx(math.sqrt(5))
    assert math.isnan(landmark_metrics((0, 0, 0), (1, 0, 0), np.diag([1.0, 1.0, 0.0]))["mahalanobis"])  # singular
