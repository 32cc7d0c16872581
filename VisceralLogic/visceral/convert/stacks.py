"""From DICOM files to 3D stacks: grouping, slice sorting, geometry checks (no pixel decoding).

Grouping follows dcm2niix: files of one Series Instance UID are split further by everything that
makes a stack non-3D -- image orientation, matrix size, pixel spacing, echo (number and time) and
temporal position (Acquisition Number is not read).  Enhanced (multi-frame) objects are split the
same way, frame by frame, from their per-frame and shared functional groups.

Slices are sorted along the slice normal (row x column direction) by Image Position (Patient),
never by file name or Instance Number.  Then the stack must be a regular grid:

- every slice must lie on the line through the first along the normal, within a tenth of a pixel
  (else: gantry tilt, ``GANTRY_TILT``;
  refused -- resampling would change the voxel values; Gantry/Detector Tilt (0018,1120) is never
  used, the standard says it is not for computation);
- every slice must lie on the regular grid within a tenth of the slice spacing (a step that is a
  multiple of the others: ``MISSING_SLICE``;
  otherwise ``UNEVEN_SPACING``; both refused, never silently stretched);
- two slices at one position: ``DUPLICATE_POSITION`` (a dimension the grouping could not see);
- a single slice takes its Slice Thickness as voxel size along the normal (``NO_SPACING`` without one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from visceral.errors import VisceralError

__all__ = ["Frame", "Stack", "StackError", "build_stacks", "check_geometry", "correct_tilt", "equalize_spacing", "in_plane_grid", "split_repeated_positions",
           "SPACING_TOLERANCE", "TILT_TOLERANCE"]

#: Largest deviation of a slice from the regular grid along the normal, as a fraction of the slice
#: spacing (0.1: a tenth of a voxel, over the whole stack).
SPACING_TOLERANCE = 0.1
#: Largest in-plane displacement of a slice from the line through the first slice along the normal,
#: as a fraction of the smaller pixel spacing (a tenth of a voxel, over the whole stack): what a
#: tilt or shear would misplace, not its angle.
TILT_TOLERANCE = 0.1


class StackError(VisceralError):
    """A stack that cannot become a regular 3D volume; ``code`` is the report code."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Frame:
    """One 2D image: a single-frame file, or one frame of a multi-frame file."""

    path: str
    frame_index: Optional[int]  # None for single-frame files; 0-based frame number otherwise
    position: Tuple[float, float, float]  # Image Position (Patient), LPS mm
    orientation: Tuple[float, ...]  # Image Orientation (Patient): row then column direction cosines
    pixel_spacing: Tuple[float, float]  # row spacing (between rows), column spacing (between columns), mm
    rows: int
    columns: int
    rescale: Tuple[float, float] = (1.0, 0.0)  # slope, intercept
    split_key: Tuple = ()  # echo, temporal position, ... -- frames of one stack share it
    thickness: float = 0.0  # Slice Thickness (mm): the voxel size of a single-slice stack
    order: Tuple = ()  # acquisition order: temporal position, acquisition time, instance number
    tile: Optional[Tuple[int, int]] = None  # a slice of a mosaic: the (row, column) of its top-left pixel there
    instance: str = ""  # SOP Instance UID of its file

    @property
    def axes(self) -> Tuple[np.ndarray, np.ndarray]:
        """The row and column directions (LPS, as Image Orientation gives them), each a new array."""
        return np.asarray(self.orientation[:3], dtype=float), np.asarray(self.orientation[3:], dtype=float)


@dataclass
class Stack:
    """Frames forming one 3D volume, sorted along the normal, with the grid they define."""

    series_uid: str
    frames: List[Frame]
    split_key: Tuple = ()
    label: str = ""  # e.g. "echo 2" when the series was split
    normal: np.ndarray = field(default_factory=lambda: np.zeros(3))
    slice_spacing: float = 0.0
    #: gantry tilt: each slice's in-plane displacement (mm, LPS) from the line through the first slice
    #: along the normal, when the stack is to be resampled onto the orthogonal grid; else None
    tilt_shift_mm: Optional[np.ndarray] = None
    tilt_deg: float = 0.0
    #: uneven slice steps: each slice's distance (mm) from the first along the normal, when the stack is
    #: to be resampled at its smallest step (``slice_spacing``); else None
    source_distances_mm: Optional[np.ndarray] = None


def _round(values: Sequence[float], digits: int = 4) -> Tuple[float, ...]:
    return tuple(round(float(v), digits) + 0.0 for v in values)


_NUMBER = re.compile(r"([+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)")


def split_order(split_key: Tuple) -> Tuple:
    """The order of the volumes a series is split into: by their split values (echo, temporal position,
    b-value, volume, ...) with the numbers in them compared as numbers, so volume 10 follows volume 9
    and echo time 10.0 follows 2.3 (as text they would not).  Not by gradient direction: the directions
    of one b-value keep their acquisition order (the stacks' order where this one ties)."""
    return tuple((name, tuple((0, float(part), "") if n % 2 else (1, 0.0, part) for n, part in enumerate(_NUMBER.split(str(value or "")))))
                 for name, value in split_key if name != "gradient")


#: Gradient directions closer than this (per component) are one direction of a series.
DIRECTION_TOLERANCE = 2e-3


def _one_direction_each(frames: Sequence[Frame]) -> List[Frame]:
    """The frames with every gradient direction within :data:`DIRECTION_TOLERANCE` of one seen before
    written as that one (3-decimal text still differs across a rounding edge: 0.7065 and 0.7064)."""
    seen: List[Tuple[np.ndarray, str]] = []
    out = []
    for frame in frames:
        keys = dict(frame.split_key)
        text = keys.get("gradient")
        if text:
            vector = np.array(text.split(), dtype=float)
            same = next((t for v, t in seen if float(np.max(np.abs(v - vector))) <= DIRECTION_TOLERANCE), None)
            if same is None:
                seen.append((vector, text))
            elif same != text:
                frame = replace(frame, split_key=tuple((k, same if k == "gradient" else v) for k, v in frame.split_key))
        out.append(frame)
    return out


def build_stacks(series_uid: str, frames: Sequence[Frame]) -> List[Stack]:
    """Split the frames of one series into stacks (see the module docstring)."""
    groups: Dict[Tuple, List[Frame]] = {}
    for frame in _one_direction_each(frames):
        key = (_round(frame.orientation), frame.rows, frame.columns, _round(frame.pixel_spacing, 5), frame.split_key)
        groups.setdefault(key, []).append(frame)
    keys = sorted(groups, key=lambda k: (split_order(k[4]), min(f.order for f in groups[k]), k[1], k[2], k[0]))
    labels = [""] * len(keys)
    if len(keys) > 1:
        labels = [", ".join(f"{name} {value}" for name, value in key[4] if value not in (None, "")) for key in keys]
        # Stacks told apart by orientation or matrix alone (a 3-plane localizer) share their split values:
        # each is named by its place too, so no two get one name (and one file).
        labels = [f"{label}, stack {n}" if label and labels.count(label) > 1 else label or f"stack {n}"
                  for n, label in enumerate(labels, start=1)]
    return [Stack(series_uid, list(groups[key]), key[4], label) for key, label in zip(keys, labels)]


def split_repeated_positions(stack: Stack) -> Optional[List[Stack]]:
    """A 2D multi-volume series (time points, b-values, repetitions with nothing in the header to tell
    them apart): every slice position occurs the same number of times N > 1.  The frames at each
    position are ranked by acquisition order (temporal position, acquisition time, instance number) and
    volume k takes the k-th of every position; ``None`` when the positions do not repeat evenly."""
    first = stack.frames[0]
    normal = np.cross(*first.axes)
    if np.linalg.norm(normal) < 1e-6:
        return None
    normal /= np.linalg.norm(normal)
    by_position: Dict[float, List[Frame]] = {}
    for frame in stack.frames:
        by_position.setdefault(round(float(np.dot(frame.position, normal)), 3), []).append(frame)
    counts = {len(v) for v in by_position.values()}
    if len(counts) != 1 or counts == {1} or len(by_position) < 1:
        return None
    volumes = counts.pop()
    ranked = [sorted(frames, key=lambda f: (f.order, f.path, f.frame_index or 0)) for frames in by_position.values()]
    return [Stack(stack.series_uid, [frames[k] for frames in ranked], stack.split_key + (("volume", str(k + 1)),),
                  (stack.label + ", " if stack.label else "") + f"volume {k + 1} of {volumes}") for k in range(volumes)]


def check_geometry(stack: Stack, correct_tilt: bool = False, equalize: bool = False) -> Stack:
    """Sort ``stack`` along its normal and check it is a regular grid; sets ``normal`` and ``slice_spacing``.

    With ``correct_tilt``, a gantry tilt -- every slice displaced in plane by the same step per slice,
    within a tenth of a pixel -- is accepted and recorded in ``tilt_shift_mm`` and ``tilt_deg`` for
    :func:`correct_tilt` to resample; any other in-plane drift is refused all the same.  With
    ``equalize``, uneven slice steps (not a missing slice) are accepted and recorded in
    ``source_distances_mm`` for :func:`equalize_spacing` to resample at the smallest step.

    Raises:
        StackError: with code ``NO_SPACING``, ``DUPLICATE_POSITION``, ``GANTRY_TILT``,
            ``MISSING_SLICE`` or ``UNEVEN_SPACING``.
    """
    first = stack.frames[0]
    row, col = first.axes
    normal = np.cross(row, col)
    norm = np.linalg.norm(normal)
    if norm < 1e-6 or not all(s > 0 for s in first.pixel_spacing):
        raise StackError("NO_SPACING", "Image Orientation or Pixel Spacing is missing or degenerate")
    normal /= norm
    frames = sorted(stack.frames, key=lambda f: float(np.dot(f.position, normal)))
    if len(frames) < 2:
        if first.thickness > 0:  # one slice: its thickness is its extent along the normal (as dcm2niix does)
            stack.frames, stack.normal, stack.slice_spacing = frames, normal, float(first.thickness)
            return stack
        raise StackError("NO_SPACING", "a single slice without Slice Thickness has no voxel size along the normal (seed section 2)")
    positions = np.array([f.position for f in frames], dtype=float)
    steps = np.diff(positions, axis=0)
    along = steps @ normal
    if np.any(along < 1e-4):
        index = int(np.argmin(along))
        raise StackError("DUPLICATE_POSITION", f"slices {index + 1} and {index + 2} (of {len(frames)}) share one position; "
                                               "a dimension (echo, time, phase) is mixed in")
    # In-plane displacement of every slice from the line through the first one along the normal (mm).
    offsets = positions - positions[0]
    in_plane = offsets - np.outer(offsets @ normal, normal)
    shift = float(np.max(np.linalg.norm(in_plane, axis=1)))
    tilt_limit = TILT_TOLERANCE * min(first.pixel_spacing)
    angle = float(np.degrees(np.arctan2(shift, float(offsets[-1] @ normal))))
    linear = False
    if shift > tilt_limit and correct_tilt:  # a tilt: the displacement grows by one step per slice
        distance = offsets @ normal
        per_mm = in_plane[-1] / distance[-1]
        linear = bool(np.max(np.linalg.norm(in_plane - np.outer(distance, per_mm), axis=1)) <= tilt_limit)
    if shift > tilt_limit and not linear:
        raise StackError("GANTRY_TILT", f"slices drift {shift:.3g} mm in plane over the stack ({angle:.2f} degrees off the slice normal; "
                                        f"tolerance {tilt_limit:.3g} mm, a tenth of a pixel): gantry tilt or sheared stack; "
                                        "refused: resampling to an orthogonal grid would change voxel values")
    spacing = float(np.median(along))
    tolerance = SPACING_TOLERANCE * spacing
    grid = (offsets @ normal) - np.arange(len(frames)) * float((offsets[-1] @ normal) / (len(frames) - 1))
    off = np.abs(along - spacing) > tolerance
    if np.any(off) or float(np.max(np.abs(grid))) > tolerance:
        index = int(np.argmax(np.abs(along - spacing)))
        ratio = along[index] / spacing
        if abs(ratio - round(ratio)) * spacing <= tolerance and round(ratio) >= 2:
            missing = int(sum(round(a / spacing) - 1 for a in along if round(a / spacing) >= 2))
            gap = positions[index] + normal * spacing  # where the first missing slice should be (LPS mm)
            raise StackError("MISSING_SLICE", f"{missing} slice(s) missing: step {along[index]:.4g} mm after slice {index + 1} "
                                              f"where the others are {spacing:.4g} mm; the first missing one at LPS "
                                              f"({gap[0]:.2f}, {gap[1]:.2f}, {gap[2]:.2f}) mm")
        if not equalize:
            raise StackError("UNEVEN_SPACING", f"slice steps range from {float(along.min()):.4g} to {float(along.max()):.4g} mm "
                                               f"(tolerance {tolerance:.2g} mm)")
        stack.source_distances_mm = np.concatenate(([0.0], np.cumsum(along)))
    stack.frames = frames
    stack.normal = normal
    stack.slice_spacing = float(np.min(along)) if stack.source_distances_mm is not None else float(np.mean(along))
    if linear:
        stack.tilt_shift_mm, stack.tilt_deg = in_plane, angle
    return stack


def _tilt_pixels(stack: Stack) -> np.ndarray:
    """Each slice's in-plane displacement in pixels, ``[k, (j, i)]``: how far its content lies from the
    first slice's rows and columns on the orthogonal grid."""
    first = stack.frames[0]
    row, col = first.axes
    shifts = np.asarray(stack.tilt_shift_mm, dtype=float)
    return np.column_stack([shifts @ col / first.pixel_spacing[0], shifts @ row / first.pixel_spacing[1]])


def in_plane_grid(stack: Stack) -> Tuple[Tuple[int, int], Tuple[int, int], Tuple[float, float, float]]:
    """The in-plane grid of a stack's volume: (columns, rows), the first voxel's (i, j) on the first
    slice's pixel grid, and its LPS position.  The first slice's own grid -- enlarged, for a gantry tilt,
    to hold every slice's content once shifted onto the orthogonal grid (nothing is cut off; as dcm2niix)."""
    first = stack.frames[0]
    if stack.tilt_shift_mm is None:
        return (first.columns, first.rows), (0, 0), tuple(first.position)
    pixels = _tilt_pixels(stack)
    low = np.floor(np.minimum(pixels.min(axis=0), 0.0) + 1e-6).astype(int)  # (j, i)
    high = np.ceil(np.maximum(pixels.max(axis=0), 0.0) - 1e-6).astype(int)
    row, col = first.axes
    origin = np.asarray(first.position, dtype=float) + low[0] * first.pixel_spacing[0] * col + low[1] * first.pixel_spacing[1] * row
    return ((first.columns + int(high[1] - low[1]), first.rows + int(high[0] - low[0])), (int(low[1]), int(low[0])),
            tuple(float(v) for v in origin))


def correct_tilt(voxels: np.ndarray, stack: Stack) -> np.ndarray:
    """Resample a gantry-tilted stack (``voxels`` ``[k, j, i]``) onto the orthogonal grid of its first
    slice, enlarged to hold every slice (:func:`in_plane_grid`): slice k is shifted back in plane by its
    displacement, with linear interpolation (as dcm2niix does); voxels no slice reaches take the stack's
    smallest value (air).  float32."""
    if stack.tilt_shift_mm is None:
        return voxels
    (columns, rows), (low_i, low_j), _ = in_plane_grid(stack)
    fill = float(voxels.min())
    out = np.empty((voxels.shape[0], rows, columns), dtype=np.float32)
    for k, (by_j, by_i) in enumerate(_tilt_pixels(stack)):
        canvas = np.full((rows, columns), fill, dtype=np.float32)
        canvas[-low_j:-low_j + voxels.shape[1], -low_i:-low_i + voxels.shape[2]] = voxels[k]
        out[k] = _shift(_shift(canvas, by_j, 0, fill), by_i, 1, fill)  # along j (rows), then i (columns)
    return out


def equalize_spacing(voxels: np.ndarray, stack: Stack) -> np.ndarray:
    """Resample a stack of uneven slice steps (``voxels`` ``[k, j, i]``) at equal steps of
    ``stack.slice_spacing`` (its smallest step) from its first slice, interpolating linearly between
    the two nearest slices (as dcm2niix's equidistant volumes); float32.  The last output slice is the
    last one at or before the last input slice."""
    distances = stack.source_distances_mm
    if distances is None:
        return voxels
    count = int(np.floor(distances[-1] / stack.slice_spacing + 1e-6)) + 1
    out = np.empty((count,) + voxels.shape[1:], dtype=np.float32)
    for m in range(count):
        z = m * stack.slice_spacing
        upper = int(min(np.searchsorted(distances, z - 1e-6), len(distances) - 1))
        lower = max(upper - 1, 0)
        if upper == lower or distances[upper] - z < 1e-6:
            out[m] = voxels[upper]
            continue
        f = (z - distances[lower]) / (distances[upper] - distances[lower])
        out[m] = (1 - f) * voxels[lower].astype(np.float32) + f * voxels[upper].astype(np.float32)
    return out


def _shift(image: np.ndarray, by: float, axis: int, fill: float) -> np.ndarray:
    """``out[x] = image[x - by]`` along ``axis``, linearly interpolated; ``fill`` outside."""
    whole = int(np.floor(by))
    fraction = by - whole
    padded = np.full((image.shape[0] + 2 * (abs(whole) + 2), image.shape[1]) if axis == 0 else
                     (image.shape[0], image.shape[1] + 2 * (abs(whole) + 2)), fill, dtype=np.float32)
    pad = abs(whole) + 2
    if axis == 0:
        padded[pad:pad + image.shape[0]] = image
        at = np.arange(image.shape[0]) + pad - whole
        return (1 - fraction) * padded[at] + fraction * padded[at - 1]
    padded[:, pad:pad + image.shape[1]] = image
    at = np.arange(image.shape[1]) + pad - whole
    return (1 - fraction) * padded[:, at] + fraction * padded[:, at - 1]


def direction_lps(stack: Stack) -> Tuple[Tuple[float, float, float], ...]:
    """Direction matrix (rows of a row-major 3x3; columns = voxel axes i, j, k in LPS)."""
    first = stack.frames[0]
    row, col = first.axes
    row /= np.linalg.norm(row)
    col /= np.linalg.norm(col)
    m = np.column_stack([row, col, stack.normal])
    return tuple(tuple(float(x) for x in r) for r in m)
