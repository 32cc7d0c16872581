"""Pictures for reports: orthogonal slices with label overlay and landmarks, encoded as PNG.

Pure numpy (and zlib for PNG): no plotting library is needed, so the pictures can be made
anywhere the package runs, including inside Slicer.  Views are in voxel axes, resampled (nearest)
to square display pixels: axial (i right, j down), coronal and sagittal (superior up).
"""

from __future__ import annotations

import struct
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from visceral.conventions.frames import ImageGeometry

__all__ = ["png_bytes", "orthogonal_views", "label_color", "PALETTE"]

#: Display colours of the registry structures (RGB), close to 3D Slicer's General Anatomy colours.
PALETTE: Dict[int, Tuple[int, int, int]] = {
    58: (221, 130, 101), 86: (157, 108, 162), 170: (249, 180, 111), 187: (139, 150, 98), 237: (216, 132, 105),
    480: (224, 97, 76), 1247: (182, 228, 255), 1302: (197, 165, 145), 1326: (172, 138, 115), 2473: (241, 213, 144),
    7578: (255, 186, 100), 29193: (241, 214, 145), 29662: (185, 102, 83), 29663: (185, 102, 83), 30324: (249, 186, 150),
    30325: (249, 186, 150), 32248: (192, 104, 88), 32249: (192, 104, 88), 40357: (177, 122, 101), 40358: (177, 122, 101),
}


def label_color(label: int) -> Tuple[int, int, int]:
    """Colour of a label value (registry palette, else a stable pseudo-random colour)."""
    if label in PALETTE:
        return PALETTE[label]
    rng = np.random.default_rng(label)
    return tuple(int(v) for v in rng.integers(60, 255, size=3))  # type: ignore[return-value]


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG encoding of an ``(rows, columns, 3)`` uint8 image."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(rgb.shape[0]))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", rgb.shape[1], rgb.shape[0], 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def _window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    low = center - width / 2
    return np.clip((values.astype(np.float32) - low) / width * 255.0, 0, 255).astype(np.uint8)


def _resample(view: np.ndarray, row_mm: float, col_mm: float, pixel_mm: float) -> np.ndarray:
    rows = max(1, int(round(view.shape[0] * row_mm / pixel_mm)))
    cols = max(1, int(round(view.shape[1] * col_mm / pixel_mm)))
    r = np.minimum((np.arange(rows) * pixel_mm / row_mm).astype(int), view.shape[0] - 1)
    c = np.minimum((np.arange(cols) * pixel_mm / col_mm).astype(int), view.shape[1] - 1)
    return view[r][:, c]


def _draw_point(rgb: np.ndarray, row: float, col: float, color: Tuple[int, int, int], size: int = 4) -> None:
    r, c = int(round(row)), int(round(col))
    for d in range(-size, size + 1):
        for rr, cc in ((r + d, c), (r, c + d)):
            if 0 <= rr < rgb.shape[0] and 0 <= cc < rgb.shape[1]:
                rgb[rr, cc] = color


def _draw_ellipse(rgb: np.ndarray, row: float, col: float, cov: np.ndarray, color: Tuple[int, int, int], sigmas: float = 2.0) -> None:
    """Outline of the ``sigmas``-sigma ellipse of a 2x2 covariance (in display pixels^2)."""
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    values = np.clip(values, 0, None)
    t = np.linspace(0, 2 * np.pi, 180)
    circle = np.stack([np.cos(t), np.sin(t)])
    pts = vectors @ (np.sqrt(values)[:, None] * sigmas * circle)
    for dr, dc in pts.T:
        rr, cc = int(round(row + dr)), int(round(col + dc))
        if 0 <= rr < rgb.shape[0] and 0 <= cc < rgb.shape[1]:
            rgb[rr, cc] = color


def orthogonal_views(
    image: np.ndarray,
    geometry: ImageGeometry,
    labels: Optional[np.ndarray] = None,
    landmarks_ijk: Sequence[Sequence[float]] = (),
    covariances_ijk: Sequence[Optional[np.ndarray]] = (),
    window: Tuple[float, float] = (40.0, 400.0),
    pixel_mm: Optional[float] = None,
    alpha: float = 0.45,
) -> np.ndarray:
    """Axial, coronal and sagittal slices through the image centre (or the landmarks' centroid), side by side.

    Args:
        image: ``[k, j, i]`` intensities; labels: ``[k, j, i]`` label values (0 = background).
        landmarks_ijk: landmark positions as voxel indices; covariances_ijk: their 3x3 covariances in voxel^2.
        window: (centre, width) of the grey-value window.
    """
    sx, sy, sz = geometry.spacing_mm
    pixel_mm = pixel_mm or min(geometry.spacing_mm)
    nk, nj, ni = image.shape
    centre = np.array([ni // 2, nj // 2, nk // 2])
    gray = _window(image, *window)
    views: List[np.ndarray] = []
    # (name, slicer of the 3D array, row axis (ijk index), column axis, row mm, column mm, flip rows)
    specs = [
        ("axial", lambda a: a[centre[2], :, :], 1, 0, sy, sx, False),
        ("coronal", lambda a: a[:, centre[1], :], 2, 0, sz, sx, True),
        ("sagittal", lambda a: a[:, :, centre[0]], 2, 1, sz, sy, True),
    ]
    for _, cut, row_axis, col_axis, row_mm, col_mm, flip in specs:
        g = cut(gray)
        rgb = np.repeat(g[..., None], 3, axis=2).astype(np.float32)
        if labels is not None:
            lab = cut(labels)
            for value in np.unique(lab):
                if value == 0:
                    continue
                mask = lab == value
                rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.array(label_color(int(value)), dtype=np.float32)
        rgb = rgb.astype(np.uint8)
        if flip:
            rgb = rgb[::-1]
        rgb = _resample(rgb, row_mm, col_mm, pixel_mm)
        scale = np.array([row_mm, col_mm]) / pixel_mm
        rows_total = rgb.shape[0]
        for point, cov in zip(landmarks_ijk, list(covariances_ijk) + [None] * (len(landmarks_ijk) - len(covariances_ijk))):
            r = point[row_axis] * scale[0]
            c = point[col_axis] * scale[1]
            if flip:
                r = rows_total - 1 - r
            if cov is not None:
                sub = np.asarray(cov)[np.ix_([row_axis, col_axis], [row_axis, col_axis])] * np.outer(scale, scale)
                if flip:
                    sub = sub * np.array([[1, -1], [-1, 1]])
                _draw_ellipse(rgb, r, c, sub, (255, 255, 0))
            _draw_point(rgb, r, c, (0, 255, 255))
        views.append(rgb)
    height = max(v.shape[0] for v in views)
    padded = [np.pad(v, ((0, height - v.shape[0]), (0, 6), (0, 0))) for v in views]
    return np.concatenate(padded, axis=1)
