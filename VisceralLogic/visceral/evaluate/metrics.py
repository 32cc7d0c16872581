"""Scores of a result against its reference: region overlap, surface distances, fuzzy overlap, landmark errors.

Pure functions on numpy arrays (``[k, j, i]``, both on the same voxel grid) and voxel sizes in mm
(``(i, j, k)``, SimpleITK's order).  The definitions, formulas, empty cases and references are in
``docs/METRICS.md``; in short:

- overlap counts TP, FP, FN, TN over the whole grid;
- a *surface* is the set of border voxels of a mask: voxels of the mask with at least one of their
  6 face neighbours outside it (outside the image counts as outside the mask);
- a *surface distance* is the Euclidean distance in mm between voxel centres on the anisotropic grid,
  from each border voxel of one mask to the nearest border voxel of the other;
- ``hausdorff95`` is the larger of the two directed 95th percentiles, each the nearest-rank percentile
  (the smallest distance with at least 95 % of the distances at or below it), as ``surface-distance``'s
  ``compute_robust_hausdorff`` with equal weights.

Surface distances are computed once per structure, on the bounding box of reference and result together
padded by one empty voxel (exact: every border voxel of both masks lies in it), with SimpleITK's exact
Euclidean distance transform (``SignedMaurerDistanceMap``, voxel spacing in mm).
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "REGION_METRICS",
    "FUZZY_METRICS",
    "LANDMARK_METRICS",
    "HD_PERCENTILE",
    "bounding_box",
    "border",
    "overlap_metrics",
    "surface_distances",
    "distance_metrics",
    "nearest_rank_percentile",
    "region_metrics",
    "label_metrics",
    "fuzzy_metrics",
    "landmark_metrics",
]

#: Metrics of a binary region, in the order they are reported.
REGION_METRICS: Tuple[str, ...] = (
    "dice", "jaccard", "volume_similarity", "sensitivity", "specificity", "assd", "hausdorff", "hausdorff95",
)
#: Metrics of probabilistic (uncertainty) volumes in [0, 1].
FUZZY_METRICS: Tuple[str, ...] = ("fuzzy_dice", "probabilistic_distance")
#: Metrics of one landmark; the per-axis errors are signed (result - reference) along the LPS world axes.
LANDMARK_METRICS: Tuple[str, ...] = ("landmark_error", "landmark_error_x", "landmark_error_y", "landmark_error_z", "mahalanobis")

#: The percentile of ``hausdorff95``.
HD_PERCENTILE = 95

# A box of voxels: (start, stop) per numpy axis (k, j, i).
Box = Tuple[Tuple[int, int], Tuple[int, int], Tuple[int, int]]


# -- boxes and borders --------------------------------------------------------------------------------------

def bounding_box(mask: np.ndarray) -> Optional[Box]:
    """The smallest box (``(start, stop)`` per axis k, j, i) holding every non-zero voxel, or ``None`` when empty."""
    mask = np.asarray(mask)
    box = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(np.any(mask, axis=others))
        if hits.size == 0:
            return None
        box.append((int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)  # type: ignore[return-value]


def _union(a: Optional[Box], b: Optional[Box]) -> Optional[Box]:
    if a is None or b is None:
        return a or b
    return tuple((min(p[0], q[0]), max(p[1], q[1])) for p, q in zip(a, b))  # type: ignore[return-value]


def _padded_crop(mask: np.ndarray, box: Box) -> np.ndarray:
    """``mask`` inside ``box`` as booleans, with one empty voxel all around (outside the image is outside the mask)."""
    (k0, k1), (j0, j1), (i0, i1) = box
    out = np.zeros((k1 - k0 + 2, j1 - j0 + 2, i1 - i0 + 2), dtype=bool)
    out[1:-1, 1:-1, 1:-1] = mask[k0:k1, j0:j1, i0:i1]
    return out


def border(padded: np.ndarray) -> np.ndarray:
    """Border voxels of a boolean mask whose outermost layer is empty: mask voxels with a face neighbour outside it."""
    inner = padded[1:-1, 1:-1, 1:-1]
    interior = (inner & padded[:-2, 1:-1, 1:-1] & padded[2:, 1:-1, 1:-1] & padded[1:-1, :-2, 1:-1]
                & padded[1:-1, 2:, 1:-1] & padded[1:-1, 1:-1, :-2] & padded[1:-1, 1:-1, 2:])
    out = np.zeros_like(padded)
    out[1:-1, 1:-1, 1:-1] = inner & ~interior
    return out


# -- overlap ------------------------------------------------------------------------------------------------

def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def overlap_metrics(tp: int, fp: int, fn: int, tn: int) -> Dict[str, float]:
    """Dice, Jaccard, volume similarity, sensitivity and specificity from the confusion counts.

    Both masks empty: Dice, Jaccard and volume similarity are 1 (the result agrees), sensitivity is NaN
    (no reference voxel to find).  One mask empty: Dice, Jaccard and volume similarity are 0.
    """
    tp, fp, fn, tn = int(tp), int(fp), int(fn), int(tn)
    both = 2 * tp + fp + fn
    if both == 0:
        dice = jaccard = volume_similarity = 1.0
    else:
        dice = 2 * tp / both
        jaccard = tp / (tp + fp + fn)
        volume_similarity = 1.0 - abs(fn - fp) / both
    return {
        "dice": dice,
        "jaccard": jaccard,
        "volume_similarity": volume_similarity,
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
    }


# -- surface distances --------------------------------------------------------------------------------------

def _distance_to(voxels: np.ndarray, spacing_mm: Sequence[float]) -> np.ndarray:
    """Distance in mm from every voxel centre of the box to the nearest voxel centre of ``voxels``.

    SimpleITK's signed Maurer distance is exact outside the set and negative inside it; inside, the
    distance to the set is 0.
    """
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(voxels.view(np.uint8))
    image.SetSpacing(tuple(float(s) for s in spacing_mm))
    signed = sitk.SignedMaurerDistanceMap(image, insideIsPositive=False, squaredDistance=False, useImageSpacing=True)
    return np.maximum(sitk.GetArrayViewFromImage(signed), 0.0)


def surface_distances(reference: np.ndarray, result: np.ndarray, spacing_mm: Sequence[float],
                      box: Optional[Box] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Directed surface distances in mm: (from each reference border voxel to the result's surface, and back).

    Args:
        reference, result: masks ``[k, j, i]`` on the same grid.
        spacing_mm: voxel size along i, j, k.
        box: a box holding both masks (their joint bounding box when not given).

    Either array is empty when its mask is (distances to an empty surface are not defined).
    """
    reference, result = np.asarray(reference, dtype=bool), np.asarray(result, dtype=bool)
    if box is None:
        box = _union(bounding_box(reference), bounding_box(result))
    if box is None or not reference.any() or not result.any():
        return np.zeros(0), np.zeros(0)
    ref_border, res_border = border(_padded_crop(reference, box)), border(_padded_crop(result, box))
    ref_to_res = _distance_to(res_border, spacing_mm)[ref_border]
    res_to_ref = _distance_to(ref_border, spacing_mm)[res_border]
    return ref_to_res.astype(np.float64), res_to_ref.astype(np.float64)


def nearest_rank_percentile(values: Any, percent: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``percent`` % of the values at or below it.

    Deterministic, never interpolated (numpy's ``method="inverted_cdf"``); NaN for no values.
    """
    values = np.sort(np.asarray(values, dtype=float).ravel())
    if values.size == 0:
        return math.nan
    rank = max(1, math.ceil(round(percent * values.size, 9) / 100.0))
    return float(values[min(rank, values.size) - 1])


def distance_metrics(ref_to_res: np.ndarray, res_to_ref: np.ndarray, reference_empty: bool, result_empty: bool) -> Dict[str, float]:
    """ASSD, Hausdorff distance and its 95th percentile (mm) from the directed surface distances.

    Both masks empty: all 0.  One empty: all infinite (no surface to measure to).
    """
    if reference_empty and result_empty:
        return {"assd": 0.0, "hausdorff": 0.0, "hausdorff95": 0.0}
    if reference_empty or result_empty:
        return {"assd": math.inf, "hausdorff": math.inf, "hausdorff95": math.inf}
    total = ref_to_res.size + res_to_ref.size
    return {
        "assd": float((ref_to_res.sum() + res_to_ref.sum()) / total),
        "hausdorff": float(max(ref_to_res.max(), res_to_ref.max())),
        "hausdorff95": max(nearest_rank_percentile(ref_to_res, HD_PERCENTILE), nearest_rank_percentile(res_to_ref, HD_PERCENTILE)),
    }


# -- binary regions -----------------------------------------------------------------------------------------

def _score_box(reference: np.ndarray, result: np.ndarray, box: Optional[Box], spacing_mm: Sequence[float],
               total_voxels: int) -> Dict[str, float]:
    """Every region metric of two masks (``reference``/``result`` are boolean crops exactly of ``box``)."""
    if box is None:
        counts = (0, 0, 0, total_voxels)
        distances: Tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))
        ref_n = res_n = 0
    else:
        tp = int(np.count_nonzero(reference & result))
        ref_n, res_n = int(np.count_nonzero(reference)), int(np.count_nonzero(result))
        counts = (tp, res_n - tp, ref_n - tp, total_voxels - ref_n - res_n + tp)
        whole = tuple((0, n) for n in reference.shape)
        distances = surface_distances(reference, result, spacing_mm, whole)  # type: ignore[arg-type]
    scores = overlap_metrics(*counts)
    scores.update(distance_metrics(*distances, reference_empty=ref_n == 0, result_empty=res_n == 0))
    return {name: scores[name] for name in REGION_METRICS}


def _crop(array: np.ndarray, box: Box) -> np.ndarray:
    (k0, k1), (j0, j1), (i0, i1) = box
    return array[k0:k1, j0:j1, i0:i1]


def region_metrics(reference: np.ndarray, result: np.ndarray, spacing_mm: Sequence[float]) -> Dict[str, float]:
    """Every binary region metric (:data:`REGION_METRICS`) of two masks ``[k, j, i]`` on the same grid."""
    reference, result = np.asarray(reference, dtype=bool), np.asarray(result, dtype=bool)
    if reference.shape != result.shape:
        raise ValueError(f"masks of different shapes: {reference.shape} and {result.shape}")
    box = _union(bounding_box(reference), bounding_box(result))
    crops = (None, None) if box is None else (_crop(reference, box), _crop(result, box))
    return _score_box(crops[0], crops[1], box, spacing_mm, reference.size)


def _label_boxes(labels: np.ndarray, wanted: Iterable[int]) -> Dict[int, Box]:
    """Bounding boxes of the wanted label values of a label volume, in one multithreaded pass (SimpleITK's
    run-length label statistics, shape features off)."""
    import SimpleITK as sitk

    wanted = {int(v) for v in wanted if int(v) > 0}
    if not wanted:
        return {}
    array = np.asarray(labels)
    if array.dtype.kind not in "ui" or array.dtype.itemsize > 4:
        array = array.astype(np.uint32)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.ComputePerimeterOff()
    stats.ComputeFeretDiameterOff()
    stats.ComputeOrientedBoundingBoxOff()
    stats.Execute(sitk.GetImageFromArray(array))
    boxes = {}
    for value in wanted & set(stats.GetLabels()):
        x, y, z, nx, ny, nz = stats.GetBoundingBox(value)
        boxes[value] = ((z, z + nz), (y, y + ny), (x, x + nx))
    return boxes


def label_metrics(reference: np.ndarray, result: np.ndarray, spacing_mm: Sequence[float],
                  pairs: Mapping[str, Tuple[Optional[int], Optional[int]]]) -> Dict[str, Dict[str, float]]:
    """Region metrics of every structure of two label volumes ``[k, j, i]`` on the same grid.

    Args:
        reference, result: label volumes.
        spacing_mm: voxel size along i, j, k.
        pairs: structure -> (its label value in ``reference``, its label value in ``result``); ``None``
            where a volume does not have the structure (an empty mask).

    Each structure is scored on the bounding box of its voxels in both volumes; the boxes of all labels
    come from one pass over each volume.
    """
    reference, result = np.asarray(reference), np.asarray(result)
    if reference.shape != result.shape:
        raise ValueError(f"label volumes of different shapes: {reference.shape} and {result.shape}")
    ref_boxes = _label_boxes(reference, [v for v, _ in pairs.values() if v is not None])
    res_boxes = _label_boxes(result, [v for _, v in pairs.values() if v is not None])
    out = {}
    for structure, (ref_value, res_value) in pairs.items():
        box = _union(ref_boxes.get(ref_value) if ref_value else None, res_boxes.get(res_value) if res_value else None)
        if box is None:
            out[structure] = _score_box(None, None, None, spacing_mm, reference.size)  # type: ignore[arg-type]
            continue
        ref_crop, res_crop = _crop(reference, box), _crop(result, box)
        ref_mask = ref_crop == ref_value if ref_value else np.zeros(ref_crop.shape, dtype=bool)
        res_mask = res_crop == res_value if res_value else np.zeros(res_crop.shape, dtype=bool)
        out[structure] = _score_box(ref_mask, res_mask, box, spacing_mm, reference.size)
    return out


# -- probabilistic regions ----------------------------------------------------------------------------------

def fuzzy_metrics(reference: np.ndarray, result: np.ndarray) -> Dict[str, float]:
    """Fuzzy Dice and probabilistic distance of two probability volumes in [0, 1] on the same grid.

    ``fuzzy_dice = 2 sum(min(a, b)) / (sum(a) + sum(b))`` (1 when both are all 0);
    ``probabilistic_distance = sum(|a - b|) / (2 sum(a b))`` (0 when identical, infinite when the
    joint probability is 0 and they differ).
    """
    a, b = np.asarray(reference), np.asarray(result)
    if a.shape != b.shape:
        raise ValueError(f"probability volumes of different shapes: {a.shape} and {b.shape}")
    box = _union(bounding_box(a), bounding_box(b))  # every sum is 0 outside the non-zero voxels of both
    if box is None:
        return {"fuzzy_dice": 1.0, "probabilistic_distance": 0.0}
    a, b = _crop(a, box).astype(np.float64), _crop(b, box).astype(np.float64)
    total = float(a.sum() + b.sum())
    fuzzy_dice = 1.0 if total == 0 else 2.0 * float(np.minimum(a, b).sum()) / total
    difference = float(np.abs(a - b).sum())
    joint = float((a * b).sum())  # numpy's own summation: BLAS's dot sums in an order that depends on its thread count
    if difference == 0:
        distance = 0.0
    else:
        distance = math.inf if joint == 0 else difference / (2.0 * joint)
    return {"fuzzy_dice": fuzzy_dice, "probabilistic_distance": distance}


# -- landmarks ----------------------------------------------------------------------------------------------

def landmark_metrics(reference_lps: Sequence[float], result_lps: Sequence[float],
                     reference_covariance_lps: Optional[Any] = None, result_covariance_lps: Optional[Any] = None) -> Dict[str, float]:
    """Error of one landmark in the LPS world frame (mm).

    ``landmark_error`` is the Euclidean distance; ``landmark_error_x/y/z`` are the signed differences
    result - reference along L, P and S; ``mahalanobis`` is ``sqrt(e^T C^-1 e)`` with ``C`` the sum of the
    covariances given (mm^2, LPS; errors of reference and result independent), NaN without any covariance
    or when ``C`` is singular.
    """
    error = np.asarray(result_lps, dtype=float).reshape(3) - np.asarray(reference_lps, dtype=float).reshape(3)
    given = [np.asarray(c, dtype=float).reshape(3, 3) for c in (reference_covariance_lps, result_covariance_lps) if c is not None]
    mahalanobis = math.nan
    if given:
        covariance = sum(given[1:], given[0])
        eigenvalues = np.linalg.eigvalsh(covariance)
        if eigenvalues.min() > 1e-12 * max(1.0, float(eigenvalues.max())):
            mahalanobis = float(math.sqrt(max(0.0, float(error @ np.linalg.solve(covariance, error)))))
    return {
        "landmark_error": float(np.linalg.norm(error)),
        "landmark_error_x": float(error[0]),
        "landmark_error_y": float(error[1]),
        "landmark_error_z": float(error[2]),
        "mahalanobis": mahalanobis,
    }
