"""Annotation I/O (seed section 3): region annotations with label tables, uncertainty volumes, landmarks.

Pure logic on numpy arrays (``[k, j, i]``) and :class:`~visceral.conventions.frames.ImageGeometry`;
the Slicer module's export widgets are thin callers of these functions.
"""

from visceral.annotations.points import export_landmarks, import_landmarks
from visceral.conventions.landmarks import landmark_registry
from visceral.annotations.regions import (
    RegionAnnotation,
    export_region_annotation,
    export_uncertainty_volumes,
    find_overlaps,
    mask_to_probability,
    probability_to_mask,
    read_region_annotation,
    read_uncertainty_volumes,
)

__all__ = [
    "RegionAnnotation",
    "export_landmarks",
    "export_region_annotation",
    "export_uncertainty_volumes",
    "find_overlaps",
    "import_landmarks",
    "landmark_registry",
    "mask_to_probability",
    "probability_to_mask",
    "read_region_annotation",
    "read_uncertainty_volumes",
]
