"""Coordinate frames: every transform between them, written once and named.

Frames (all lengths in mm):

``LPS``
    DICOM patient coordinates: +x towards the patient's Left, +y Posterior,
    +z Superior (DICOM PS3.3 C.7.6.2.1.1).  ITK/SimpleITK use it too.
``RAS``
    NIfTI world coordinates (qform/sform) and 3D Slicer's world frame: +x Right,
    +y Anterior, +z Superior.  ``RAS = diag(-1, -1, 1) * LPS``.
``IJK``
    Continuous voxel index (i fastest, then j, then k), voxel centres at
    integers; the same index in NIfTI, SimpleITK and Slicer (Slicer's array
    from ``arrayFromVolume`` is ``[k, j, i]``).
``landmark``
    The seed's landmark frame (section 3.2): "the origin in [0,0,0] voxel
    space", units mm, axes along the image's voxel axes.  So a point is its
    voxel index scaled by the voxel size: ``p_landmark = IJK * spacing``
    (docs/CONVENTIONS.md, "Landmark frame").

Geometry follows ITK: ``p_LPS = origin + D @ diag(spacing) @ IJK`` where the
columns of the direction matrix ``D`` are the voxel axes as unit vectors in LPS.
Covariances transform like ``C' = A C A^T`` with ``A`` the linear part.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from visceral.errors import GeometryError

__all__ = [
    "ImageGeometry",
    "LPS_TO_RAS",
    "lps_to_ras",
    "ras_to_lps",
    "covariance_lps_to_ras",
    "FRAMES",
]

#: World frames a caller may name.
FRAMES = ("LPS", "RAS")

#: Linear map between LPS and RAS (its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def lps_to_ras(points_lps: Any) -> np.ndarray:
    """Convert points (``(..., 3)``) from DICOM LPS to NIfTI/Slicer RAS."""
    return np.asarray(points_lps, dtype=float) * np.array([-1.0, -1.0, 1.0])


def ras_to_lps(points_ras: Any) -> np.ndarray:
    """Convert points (``(..., 3)``) from NIfTI/Slicer RAS to DICOM LPS."""
    return np.asarray(points_ras, dtype=float) * np.array([-1.0, -1.0, 1.0])


def covariance_lps_to_ras(cov_lps: Any) -> np.ndarray:
    """Convert 3x3 covariances (``(..., 3, 3)``) from LPS to RAS: ``F C F`` with ``F = diag(-1,-1,1)``."""
    return LPS_TO_RAS @ np.asarray(cov_lps, dtype=float) @ LPS_TO_RAS


def corner_indices(shape: Sequence[int]) -> np.ndarray:
    """The 8 corner voxel indices ``(8, 3)`` of a grid of ``shape`` (i, j, k)."""
    ni, nj, nk = (int(n) for n in shape[:3])
    return np.array([[i, j, k] for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)], dtype=float)


def rotation_xyz(ax: float, ay: float, az: float) -> np.ndarray:
    """Rotation matrix of rotations about x, then y, then z (radians): ``Rz @ Ry @ Rx``."""
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _check_frame(frame: str) -> str:
    frame = frame.upper()
    if frame not in FRAMES:
        raise GeometryError(f"world frame must be one of {FRAMES}, not {frame!r}")
    return frame


@dataclass(frozen=True)
class ImageGeometry:
    """The voxel grid of an image, in DICOM LPS like ITK.

    Attributes:
        shape: voxel counts along i, j, k.
        spacing_mm: voxel size along i, j, k in mm.
        origin_lps: LPS position (mm) of the centre of voxel [0, 0, 0].
        direction_lps: 3x3 direction matrix (row-major tuple of tuples); column n
            is voxel axis n as a unit vector in LPS.
    """

    shape: Tuple[int, int, int]
    spacing_mm: Tuple[float, float, float]
    origin_lps: Tuple[float, float, float]
    direction_lps: Tuple[Tuple[float, float, float], Tuple[float, float, float], Tuple[float, float, float]] = (
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 0.0, 1.0),
    )

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in self.shape)
        spacing = tuple(float(s) for s in self.spacing_mm)
        origin = tuple(float(o) for o in self.origin_lps)
        direction = np.asarray(self.direction_lps, dtype=float).reshape(3, 3)
        if len(shape) != 3 or any(n < 1 for n in shape):
            raise GeometryError(f"image shape must be 3 positive voxel counts, not {self.shape!r}")
        if len(spacing) != 3 or not all(np.isfinite(spacing)) or any(s <= 0 for s in spacing):
            raise GeometryError(f"voxel size must be 3 positive finite numbers (mm), not {self.spacing_mm!r}")
        if len(origin) != 3 or not all(np.isfinite(origin)):
            raise GeometryError(f"origin must be 3 finite numbers (mm), not {self.origin_lps!r}")
        if not np.all(np.isfinite(direction)) or abs(np.linalg.det(direction)) < 1e-6:
            raise GeometryError(f"direction matrix is singular or not finite: {direction.tolist()!r}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "spacing_mm", spacing)
        object.__setattr__(self, "origin_lps", origin)
        object.__setattr__(self, "direction_lps", tuple(tuple(float(x) for x in row) for row in direction))

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_sitk(cls, image: Any) -> "ImageGeometry":
        """The geometry of a SimpleITK image (SimpleITK works in LPS)."""
        direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
        return cls(tuple(image.GetSize()), tuple(image.GetSpacing()), tuple(image.GetOrigin()), tuple(map(tuple, direction)))

    @classmethod
    def from_ijk_to_ras(cls, matrix: Any, shape: Sequence[int]) -> "ImageGeometry":
        """The geometry of a 4x4 IJK->RAS matrix (a NIfTI sform, Slicer's ``IJKToRAS``)."""
        m = np.asarray(matrix, dtype=float).reshape(4, 4)
        linear_lps = LPS_TO_RAS @ m[:3, :3]
        spacing = np.linalg.norm(linear_lps, axis=0)
        if np.any(spacing <= 0):
            raise GeometryError(f"IJK->RAS matrix has a zero-length axis: {m.tolist()!r}")
        direction = linear_lps / spacing
        origin = LPS_TO_RAS @ m[:3, 3]
        return cls(tuple(shape), tuple(spacing), tuple(origin), tuple(map(tuple, direction)))

    # -- matrices -----------------------------------------------------------------------
    @property
    def direction(self) -> np.ndarray:
        """The direction matrix as a 3x3 array (LPS)."""
        return np.asarray(self.direction_lps, dtype=float)

    def ijk_to_lps_matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix from IJK to LPS."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing_mm)
        m[:3, 3] = self.origin_lps
        return m

    def ijk_to_ras_matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix from IJK to RAS: the NIfTI sform/qform affine, Slicer's ``IJKToRAS``."""
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        return flip @ self.ijk_to_lps_matrix()

    def _frame_matrix(self, frame: str) -> np.ndarray:
        return self.ijk_to_lps_matrix() if _check_frame(frame) == "LPS" else self.ijk_to_ras_matrix()

    # -- points ---------------------------------------------------------------------------
    def index_to_world(self, ijk: Any, frame: str) -> np.ndarray:
        """Continuous voxel indices (``(..., 3)``) to world points in ``frame`` (``"LPS"`` or ``"RAS"``)."""
        m = self._frame_matrix(frame)
        return np.asarray(ijk, dtype=float) @ m[:3, :3].T + m[:3, 3]

    def world_to_index(self, points: Any, frame: str) -> np.ndarray:
        """World points in ``frame`` to continuous voxel indices."""
        m = self._frame_matrix(frame)
        return (np.asarray(points, dtype=float) - m[:3, 3]) @ np.linalg.inv(m[:3, :3]).T

    def world_to_landmark(self, points: Any, frame: str) -> np.ndarray:
        """World points in ``frame`` to the seed's landmark frame: ``IJK * spacing`` (mm)."""
        return self.world_to_index(points, frame) * np.asarray(self.spacing_mm)

    def landmark_to_world(self, points_mm: Any, frame: str) -> np.ndarray:
        """Points of the seed's landmark frame (mm from voxel [0,0,0] along the voxel axes) to ``frame``."""
        return self.index_to_world(np.asarray(points_mm, dtype=float) / np.asarray(self.spacing_mm), frame)

    # -- covariances ----------------------------------------------------------------------
    def _world_to_landmark_linear(self, frame: str) -> np.ndarray:
        m = self._frame_matrix(frame)
        return np.diag(self.spacing_mm) @ np.linalg.inv(m[:3, :3])

    def covariance_world_to_landmark(self, cov: Any, frame: str) -> np.ndarray:
        """3x3 covariances (``(..., 3, 3)``, mm^2) from world ``frame`` to the landmark frame."""
        a = self._world_to_landmark_linear(frame)
        return a @ np.asarray(cov, dtype=float) @ a.T

    def covariance_landmark_to_world(self, cov_mm: Any, frame: str) -> np.ndarray:
        """3x3 covariances (mm^2) from the landmark frame to world ``frame``."""
        a = np.linalg.inv(self._world_to_landmark_linear(frame))
        return a @ np.asarray(cov_mm, dtype=float) @ a.T

    # -- extent ---------------------------------------------------------------------------
    def contains_index(self, ijk: Any, tolerance_voxels: float = 0.5) -> np.ndarray:
        """True where a continuous index lies inside the image (voxel edges at -0.5 and n-0.5)."""
        ijk = np.asarray(ijk, dtype=float)
        upper = np.asarray(self.shape, dtype=float) - 1 + tolerance_voxels
        return np.all((ijk >= -tolerance_voxels) & (ijk <= upper), axis=-1)

    def axis_map(self, other: "ImageGeometry", tolerance_mm: float = 1e-3) -> Optional[Tuple[Tuple[int, bool], ...]]:
        """How ``other`` indexes this grid's voxels, when both are the same voxels in the world.

        Returns, for each axis of this grid, ``(axis of other, reversed)``, or ``None`` when the
        grids differ (not just by the order or direction of their axes).  3D Slicer, for example,
        reverses the k axis of a left-handed NIfTI grid when it reads it.
        """
        mapping = []
        for n, axis in enumerate(self.direction.T):
            dots = other.direction.T @ axis
            m = int(np.argmax(np.abs(dots)))
            if abs(abs(dots[m]) - 1.0) > 1e-6 or abs(self.spacing_mm[n] - other.spacing_mm[m]) > 1e-6 * max(1.0, self.spacing_mm[n]):
                return None
            if self.shape[n] != other.shape[m]:
                return None
            mapping.append((m, bool(dots[m] < 0)))
        if len({m for m, _ in mapping}) != 3:
            return None
        mine = self.index_to_world(corner_indices(self.shape), "LPS")
        indices = other.world_to_index(mine, "LPS")
        theirs = other.index_to_world(indices.round(), "LPS")
        if np.max(np.abs(mine - theirs)) > tolerance_mm or np.max(np.abs(indices - indices.round())) > 1e-3:
            return None
        # The same lattice is not enough: my corners must be corners of ``other`` (a grid mirrored about
        # its origin lies on the same lattice, on the other side).
        if np.any(indices.round() < 0) or np.any(indices.round() > np.asarray(other.shape) - 1):
            return None
        return tuple(mapping)

    def _same_voxels(self, other: "ImageGeometry", tolerance_mm: float):
        """:meth:`axis_map` of ``other`` (worked out once per pair of grids: an export re-indexes every
        box of a segmentation between the same two), or GeometryError when the grids are not the same voxels."""
        mapping = _axis_map(self, other, tolerance_mm)
        if mapping is None:
            raise GeometryError(f"grids differ: {other.shape} at {other.origin_lps} vs {self.shape} at {self.origin_lps}")
        return mapping

    def array_from(self, array: Any, other: "ImageGeometry", tolerance_mm: float = 1e-3) -> np.ndarray:
        """``array`` (``[k, j, i]`` on grid ``other``) re-indexed onto this grid (axes flipped/permuted, no resampling).

        Raises:
            GeometryError: the grids are not the same voxels.
        """
        mapping = self._same_voxels(other, tolerance_mm)
        arr = np.asarray(array)
        # numpy axes are reversed (k, j, i): axis n of a grid is numpy axis 2 - n
        order = [2 - mapping[2 - a][0] for a in range(3)]
        out = np.transpose(arr, order)
        flips = [a for a in range(3) if mapping[2 - a][1]]
        return np.flip(out, axis=flips) if flips else out

    def crop_from(self, crop: Any, start_kji: Sequence[int], other: "ImageGeometry",
                  tolerance_mm: float = 1e-3) -> Tuple[np.ndarray, Tuple[int, int, int]]:
        """A box of voxels of grid ``other`` (``crop``, ``[k, j, i]``, whose first voxel is ``start_kji``
        of ``other``) as the same box of this grid: (the crop re-indexed, its first voxel's ``[k, j, i]``
        here).  The crop's own way of :meth:`array_from`, without a whole-grid array.

        Raises:
            GeometryError: the grids are not the same voxels.
        """
        mapping = self._same_voxels(other, tolerance_mm)
        crop = np.asarray(crop)
        other_start_ijk = tuple(reversed([int(v) for v in start_kji]))
        other_size_ijk = tuple(reversed(crop.shape))
        start_ijk = []
        for n, (m, reversed_) in enumerate(mapping):
            lo = other_start_ijk[m]
            start_ijk.append(self.shape[n] - (lo + other_size_ijk[m]) if reversed_ else lo)
        order = [2 - mapping[2 - a][0] for a in range(3)]
        out = np.transpose(crop, order)
        flips = [a for a in range(3) if mapping[2 - a][1]]
        return (np.flip(out, axis=flips) if flips else out), tuple(reversed(start_ijk))

    def same_grid(self, other: "ImageGeometry", tolerance_mm: float = 1e-3) -> bool:
        """True when both grids have the same shape and place every voxel within ``tolerance_mm``.

        Compares the positions of the grid corners, so it also catches direction and spacing differences.
        """
        if self.shape != other.shape:
            return False
        corners = corner_indices(self.shape)
        a = self.index_to_world(corners, "LPS")
        b = other.index_to_world(corners, "LPS")
        return bool(np.all(np.abs(a - b) <= tolerance_mm))


@lru_cache(maxsize=64)
def _axis_map(grid: ImageGeometry, other: ImageGeometry, tolerance_mm: float) -> Optional[Tuple[Tuple[int, bool], ...]]:
    """:meth:`ImageGeometry.axis_map`, remembered for the last pairs of grids (both immutable)."""
    return grid.axis_map(other, tolerance_mm)
