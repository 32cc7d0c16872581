"""Landmark annotations (seed section 3.2): world points <-> the seed's landmark frame.

Callers state the world frame of their points explicitly (``"RAS"`` for Slicer
and NIfTI, ``"LPS"`` for DICOM and ITK); covariances are given in the same
frame.  The CSV holds positions in the landmark frame (mm from voxel [0,0,0]
along the voxel axes) and covariances rotated into it, see
:mod:`visceral.conventions.frames`.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from visceral.conventions.frames import ImageGeometry
from visceral.conventions.landmarks import Landmark
from visceral.errors import LandmarkFileError

__all__ = ["export_landmarks", "import_landmarks"]


def export_landmarks(
    ids: Sequence[int],
    points_world: Any,
    frame: str,
    geometry: ImageGeometry,
    covariances_world: Optional[Sequence[Optional[Any]]] = None,
) -> List[Landmark]:
    """Landmarks in the seed's frame from world points.

    Args:
        ids: landmark ID per point.
        points_world: ``(N, 3)`` positions in ``frame`` (mm).
        frame: ``"RAS"`` or ``"LPS"`` -- the frame of the points and of the covariances.
        geometry: the grid of the image the landmarks belong to.
        covariances_world: per point a 3x3 covariance (mm^2) in ``frame``, or ``None``.

    Raises:
        LandmarkFileError: duplicate IDs, or an invalid covariance (names the landmark).
    """
    points = np.asarray(points_world, dtype=float).reshape(-1, 3)
    if len(ids) != len(points):
        raise ValueError(f"{len(ids)} IDs for {len(points)} points")
    duplicates = sorted({i for i in ids if list(ids).count(i) > 1})
    if duplicates:
        raise LandmarkFileError(None, f"landmark ID used more than once: {', '.join(map(str, duplicates))}")
    if covariances_world is not None and len(covariances_world) != len(points):
        raise ValueError(f"{len(covariances_world)} covariances for {len(points)} points")
    positions = geometry.world_to_landmark(points, frame)
    out = []
    for n, landmark_id in enumerate(ids):
        cov = None if covariances_world is None else covariances_world[n]
        if cov is not None:
            cov = tuple(geometry.covariance_world_to_landmark(np.asarray(cov, dtype=float).reshape(3, 3), frame).ravel())
        out.append(Landmark(int(landmark_id), tuple(positions[n]), cov))
    return out


def import_landmarks(
    landmarks: Sequence[Landmark], geometry: ImageGeometry, frame: str
) -> Tuple[List[int], np.ndarray, List[Optional[np.ndarray]]]:
    """World points from landmarks of the seed's frame: the exact inverse of :func:`export_landmarks`.

    Returns:
        IDs, ``(N, 3)`` positions in ``frame``, and per point its 3x3 covariance in ``frame`` or ``None``.
    """
    ids = [lm.landmark_id for lm in landmarks]
    positions = np.array([lm.position_mm for lm in landmarks], dtype=float).reshape(-1, 3)
    points = geometry.landmark_to_world(positions, frame)
    covariances = [
        None if lm.covariance is None else geometry.covariance_landmark_to_world(np.asarray(lm.covariance).reshape(3, 3), frame)
        for lm in landmarks
    ]
    return ids, points, covariances
