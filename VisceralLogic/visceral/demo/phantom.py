"""An anatomical phantom: smooth organ shapes in world coordinates, sampled on any image grid.

Organs are ellipsoids and cylinders placed roughly where a trunk CT shows them (DICOM LPS, mm,
origin near the body centre): lungs, liver, spleen, kidneys, aorta, first lumbar vertebra.
Intensities are realistic CT numbers (HU) or relative MR T1 signal; edges are smooth (partial
volume), so pictures look like anatomy.  Labels use the RadLex IDs of the structure registry, and
each structure also has a probability map (uncertainty) that falls off over a few millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from visceral.conventions.frames import ImageGeometry

__all__ = ["Organ", "phantom_organs", "sample", "PhantomSample"]


@dataclass(frozen=True)
class Organ:
    """One structure: registry name, shape (ellipsoid or z-cylinder) in LPS mm, intensities."""

    name: str
    centre: Tuple[float, float, float]
    semi_axes: Tuple[float, float, float]  # z semi-axis <= 0: infinite along z (cylinder)
    hu: float
    mr: float
    priority: int  # higher wins where shapes touch


def phantom_organs(subject: int) -> List[Organ]:
    """The organs of a subject (small, deterministic variations between subjects)."""
    s = 1.0 + 0.06 * ((subject * 37) % 5 - 2) / 2  # size factor 0.94..1.06
    d = 4.0 * ((subject * 11) % 3 - 1)  # shift, mm
    return [
        Organ("right lung", (-78 * s, 5, 85 + d), (52 * s, 68 * s, 85 * s), -850, 25, 1),
        Organ("left lung", (78 * s, 5, 85 + d), (50 * s, 66 * s, 82 * s), -850, 25, 1),
        Organ("liver", (-62 * s + d, -8, -30 + d), (74 * s, 62 * s, 58 * s), 62, 460, 2),
        Organ("spleen", (82 * s, 38, -22 + d), (32 * s, 26 * s, 44 * s), 48, 330, 3),
        Organ("right kidney", (-58 * s, 58, -95 + d), (24 * s, 24 * s, 48 * s), 34, 380, 4),
        Organ("left kidney", (60 * s, 58, -88 + d), (24 * s, 24 * s, 48 * s), 34, 380, 4),
        Organ("aorta", (14, 36, 0), (11 * s, 11 * s, 0.0), 180, 140, 6),
        Organ("first lumbar vertebra", (0, 72, -110 + d), (19 * s, 17 * s, 13 * s), 650, 240, 5),
    ]


#: Body outline (elliptic cylinder) and its intensities.
BODY_SEMI_AXES = (168.0, 118.0)
BODY_CENTRE = (0.0, 12.0)
BODY_HU, BODY_MR, AIR_HU, AIR_MR = 30.0, 300.0, -1000.0, 0.0
EDGE_MM = 1.2  # partial-volume width of edges
UNCERTAINTY_MM = 2.5  # width of the probability fall-off


def _signed_distance(points: np.ndarray, organ: Organ) -> np.ndarray:
    """Approximate signed distance (mm, negative inside) of points ``(..., 3)`` to an organ's surface."""
    offset = points - np.asarray(organ.centre)
    axes = np.asarray(organ.semi_axes, dtype=float)
    if axes[2] <= 0:  # cylinder along z
        r = np.sqrt((offset[..., 0] / axes[0]) ** 2 + (offset[..., 1] / axes[1]) ** 2)
        return (r - 1.0) * min(axes[0], axes[1])
    r = np.sqrt(((offset / axes) ** 2).sum(axis=-1))
    return (r - 1.0) * axes.min()


@dataclass
class PhantomSample:
    """The phantom on one grid: intensities, label volume and per-structure probabilities (``[k, j, i]``)."""

    image: np.ndarray
    labels: Dict[str, np.ndarray]  # structure -> boolean mask (disjoint)
    probabilities: Dict[str, np.ndarray]  # structure -> float32 in [0, 1]
    organs: List[Organ]


def sample(geometry: ImageGeometry, subject: int, modality: str, seed: int = 0) -> PhantomSample:
    """Sample the subject's phantom on ``geometry`` for ``modality`` (``"CT"``: HU int16; ``"MR"``: uint16)."""
    organs = phantom_organs(subject)
    shape = tuple(reversed(geometry.shape))
    k, j, i = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    points = geometry.index_to_world(np.stack([i, j, k], axis=-1), "LPS").astype(np.float32)
    body_r = np.sqrt(((points[..., 0] - BODY_CENTRE[0]) / BODY_SEMI_AXES[0]) ** 2 + ((points[..., 1] - BODY_CENTRE[1]) / BODY_SEMI_AXES[1]) ** 2)
    body_weight = 1.0 / (1.0 + np.exp(np.clip((body_r - 1.0) * min(BODY_SEMI_AXES) / EDGE_MM, -50, 50)))
    ct = modality.upper() == "CT"
    value = (AIR_HU if ct else AIR_MR) + body_weight * ((BODY_HU - AIR_HU) if ct else (BODY_MR - AIR_MR))
    owner = np.zeros(shape, dtype=np.int16)
    owner_priority = np.zeros(shape, dtype=np.int16)
    probabilities: Dict[str, np.ndarray] = {}
    for index, organ in enumerate(organs, start=1):
        distance = _signed_distance(points, organ)
        weight = 1.0 / (1.0 + np.exp(np.clip(distance / EDGE_MM, -50, 50)))
        target = organ.hu if ct else organ.mr
        value = value + weight * (target - (BODY_HU if ct else BODY_MR)) * body_weight
        probabilities[organ.name] = (1.0 / (1.0 + np.exp(np.clip(distance / UNCERTAINTY_MM * 2.2, -50, 50)))).astype(np.float32)
        inside = (distance <= 0) & (organ.priority >= owner_priority)
        owner[inside] = index
        owner_priority[inside] = organ.priority
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 9.0 if ct else 12.0, size=shape)
    if ct:
        image = np.clip(np.rint(value + noise), -1024, 3071).astype(np.int16)
    else:
        image = np.clip(np.rint(value + noise), 0, 4095).astype(np.uint16)
    labels = {organ.name: owner == n for n, organ in enumerate(organs, start=1) if np.any(owner == n)}
    return PhantomSample(image, labels, {n: p for n, p in probabilities.items() if n in labels}, organs)
