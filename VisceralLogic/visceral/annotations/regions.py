"""Region annotations (seed section 3.1): label volumes + label tables, and uncertainty volumes.

- A *region annotation* is one NIfTI label volume on the image's exact grid plus
  a CSV ``structure,label`` beside it (same name, ``.csv``).  Label values come
  from the structure registry (default: the RadLex ID), never from the order in
  which structures are given.  Overlapping structures cannot share one label
  volume: that is an error naming the pairs and voxel counts (write per-structure
  volumes instead).
- With uncertainty, each structure is its own float32 volume
  ``..._regionannotation_label<L>_<A>.nii.gz`` with values in [0, 1].

Arrays are ``[k, j, i]`` (see :mod:`visceral.imageio`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from visceral.conventions.frames import ImageGeometry
from visceral.conventions.labels import LabelTable, Structure, StructureRegistry, default_registry, read_label_table, write_label_table
from visceral.conventions.names import FileKind, VisceralName, parse_name
from visceral.errors import InvalidNameError, VisceralError
from visceral.fileio import check_new_files
from visceral.imageio import read_geometry, read_volume, smallest_label_dtype, write_volume, write_volume_slabs
from visceral.types import PathLike

__all__ = [
    "OverlapError",
    "GridMismatchError",
    "RegionAnnotation",
    "find_overlaps",
    "export_region_annotation",
    "LabelVolumeBuilder",
    "export_uncertainty_volumes",
    "read_region_annotation",
    "read_uncertainty_volumes",
    "probability_to_mask",
    "mask_to_probability",
    "label_table_path",
    "label_volume_structure",
    "PROBABILITY_THRESHOLD",
]

#: A voxel belongs to the structure when its probability is at least this (as likely present as absent).
PROBABILITY_THRESHOLD = 0.5


class OverlapError(VisceralError):
    """Structures overlap, so they cannot share one label volume.

    Attributes:
        overlaps: ``(structure a, structure b, voxel count)`` for every overlapping pair.
    """

    def __init__(self, overlaps: Sequence[Tuple[str, str, int]]) -> None:
        self.overlaps = list(overlaps)
        pairs = "; ".join(f"{a} and {b}: {n} voxels" for a, b, n in self.overlaps)
        super().__init__(f"structures overlap ({pairs}); a label volume holds one structure per voxel, export per-structure volumes instead")


class GridMismatchError(VisceralError):
    """An annotation volume is not on its image's voxel grid."""


def label_table_path(volume_path: PathLike) -> Path:
    """The label table CSV beside a region annotation volume (same name, ``.csv``)."""
    path = Path(volume_path)
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return path.with_name(name[: -len(ext)] + ".csv")
    raise InvalidNameError(name, "a region annotation volume ends in .nii.gz or .nii")


def _resolve(masks: Mapping[str, np.ndarray], registry: StructureRegistry) -> Dict[Structure, np.ndarray]:
    """Map input names to registry structures; two names for one structure are an error."""
    out: Dict[Structure, np.ndarray] = {}
    given: Dict[Structure, str] = {}
    for name, mask in masks.items():
        structure = registry.lookup(name)
        if structure in out:
            raise VisceralError(f"{given[structure]!r} and {name!r} are the same structure ({structure.name})")
        out[structure] = np.asarray(mask)
        given[structure] = name
    return out


def _check_shape(name: str, array: np.ndarray, geometry: ImageGeometry) -> None:
    expected = tuple(reversed(geometry.shape))
    if array.shape != expected:
        raise GridMismatchError(f"{name}: array shape {array.shape} (k, j, i) differs from the reference grid {expected}")


def find_overlaps(masks: Mapping[str, np.ndarray]) -> List[Tuple[str, str, int]]:
    """Every pair of masks sharing voxels, with the shared voxel count (pairs in input order).

    Costs one pass per mask over the volume; pairs are then counted on the shared voxels only.
    """
    names = list(masks)
    if len(names) < 2:
        return []
    coverage = np.zeros(np.asarray(masks[names[0]]).shape, dtype=np.uint16)
    for name in names:
        coverage += np.asarray(masks[name]).astype(bool, copy=False)
    shared = np.flatnonzero(coverage >= 2)
    if shared.size == 0:
        return []
    on_shared = [np.asarray(masks[name]).astype(bool, copy=False).ravel()[shared] for name in names]
    result = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            n = int(np.count_nonzero(on_shared[a] & on_shared[b]))
            if n:
                result.append((names[a], names[b], n))
    return result


@dataclass
class RegionAnnotation:
    """A region annotation read back: grid, label table, label volume and what did not match.

    Attributes:
        geometry: the volume's voxel grid.
        table: the label table (structure names as written in the CSV).
        labels: label volume ``[k, j, i]``.
        labels_missing_from_table: values present in the volume but not in the CSV.
        structures_missing_from_volume: CSV structures whose label does not occur in the volume.
    """

    geometry: ImageGeometry
    table: LabelTable
    labels: np.ndarray
    labels_missing_from_table: List[int] = field(default_factory=list)
    structures_missing_from_volume: List[str] = field(default_factory=list)

    def masks(self) -> Dict[str, np.ndarray]:
        """One boolean mask per structure of the table."""
        return {name: self.labels == value for name, value in self.table.entries}


def export_region_annotation(
    masks: Mapping[str, np.ndarray],
    geometry: ImageGeometry,
    volume_path: PathLike,
    registry: Optional[StructureRegistry] = None,
    compact: bool = False,
    overwrite: bool = True,
) -> LabelTable:
    """Write a multi-label region annotation and its label table (their folder made; existing files
    replaced only with ``overwrite``, else ``FileExistsError`` before anything is written).

    Args:
        masks: structure name (any registry spelling) -> binary mask ``[k, j, i]`` on ``geometry``.
        geometry: the image's grid; the volume is written on exactly this grid.
        volume_path: ``..._regionannotation_<A>.nii.gz``; the table goes to the same name with ``.csv``.
        registry: structure registry (default: the shipped one).
        compact: label values 1..N instead of RadLex IDs.

    Returns:
        The label table written (canonical registry names).

    Raises:
        UnknownStructureError, GridMismatchError, OverlapError: nothing is written then.
    """
    registry = registry or default_registry()
    resolved = _resolve(masks, registry)
    for structure, mask in resolved.items():
        _check_shape(structure.name, mask, geometry)
        if mask.dtype != np.bool_ and not np.isin(np.unique(mask), (0, 1)).all():
            raise VisceralError(f"{structure.name}: a label-volume mask must be binary (0/1); use uncertainty volumes for probabilities")
    by_name = {s.name: m.astype(bool, copy=False) for s, m in resolved.items()}
    overlaps = find_overlaps(by_name)
    if overlaps:
        raise OverlapError(overlaps)
    table = LabelTable.for_structures(list(resolved), registry, compact=compact)
    values = table.as_dict()
    labels = np.zeros(tuple(reversed(geometry.shape)), dtype=smallest_label_dtype(max(values.values(), default=0)))
    for name, mask in by_name.items():
        labels[mask] = values[name]
    volume_path = Path(volume_path)
    check_new_files([volume_path, label_table_path(volume_path)], overwrite)
    write_volume(volume_path, labels, geometry)
    write_label_table(label_table_path(volume_path), table)
    return table


@dataclass
class _Box:
    """A box of label values ``[k, j, i]`` whose first voxel is ``start`` of the grid; ``table[v]`` is the
    label value a value ``v`` stands for (0: background), values past the table's end are background
    (the table ends at the largest value standing for a structure, then 0).  ``neighbours``: the other
    boxes it meets (set by :meth:`LabelVolumeBuilder.write`)."""

    values: np.ndarray
    start: Tuple[int, int, int]
    table: np.ndarray
    single: bool  # one value stands for a structure: the table's last but one
    neighbours: List["_Box"] = field(default_factory=list)

    @property
    def stop(self) -> Tuple[int, int, int]:
        return (self.start[0] + self.values.shape[0], self.start[1] + self.values.shape[1], self.start[2] + self.values.shape[2])

    def meets(self, other: "_Box") -> Optional[Tuple[Tuple[int, int], ...]]:
        """Where the two boxes meet (grid ``[k, j, i]`` bounds), ``None`` when they do not."""
        region = tuple((max(a, b), min(c, d)) for a, b, c, d in zip(self.start, other.start, self.stop, other.stop))
        return None if any(lo >= hi for lo, hi in region) else region

    def labels(self, region: Tuple[Tuple[int, int], ...], out: Optional[np.ndarray] = None, rows: Optional[np.ndarray] = None) -> np.ndarray:
        """The label values of the part of the box in ``region`` (grid ``[k, j, i]`` bounds, inside the box),
        written into ``out`` when given; the rows ``[k, j]`` holding a label marked in ``rows`` when given."""
        part = self.values[tuple(slice(lo - s, hi - s) for (lo, hi), s in zip(region, self.start))]
        if self.single:  # one structure: a comparison and a product, several times faster than a lookup
            key = len(self.table) - 2
            mask = part == key
            if rows is not None:
                rows |= mask.any(axis=2)
            return np.multiply(mask, self.table[key], out=out, dtype=self.table.dtype)
        labels = np.take(self.table, part, out=out, mode="clip")  # clip: values past the table read its last entry, 0
        if rows is not None:
            rows |= (labels != 0).any(axis=2)
        return labels


class LabelVolumeBuilder:
    """A multi-label region annotation built from boxes of voxels (what a segmentation holds: each
    labelmap layer only where it is, the segments of a layer told apart by their values), without a
    whole-grid array: the label volume is painted slab by slab as it is written
    (:func:`visceral.imageio.write_volume_slabs`).

    Label values come from the registry for the whole set of structures (known up front, so the
    label type is chosen once).  Overlaps are counted exactly, for every pair of structures of two
    boxes, where the boxes meet (a voxel of three structures counts once for each of the three pairs),
    and refuse the volume at :meth:`write`, as :func:`export_region_annotation` does.  Memory: the
    boxes as given (kept, not copied), one slab buffer per writer thread.
    """

    def __init__(self, structures: Sequence[str], geometry: ImageGeometry, registry: Optional[StructureRegistry] = None,
                 compact: bool = False) -> None:
        self.registry = registry or default_registry()
        self.geometry = geometry
        self.table = LabelTable.for_structures(list(structures), self.registry, compact=compact)
        self._values = self.table.as_dict()
        self._names = {v: n for n, v in self._values.items()}
        self._order = {self.registry.lookup(n).name: index for index, n in enumerate(structures)}
        self.dtype = smallest_label_dtype(max(self._values.values(), default=0))
        self.shape = tuple(reversed(geometry.shape))
        self._boxes: List[_Box] = []

    def add(self, structure: str, crop: np.ndarray, start_kji: Sequence[int]) -> int:
        """Add a box of one structure (boolean ``crop`` ``[k, j, i]`` whose first voxel is ``start_kji``
        of the grid); returns its voxel count."""
        mask = np.asarray(crop, dtype=bool)
        self.add_layer(mask.view(np.uint8), start_kji, {1: structure})
        return int(np.count_nonzero(mask))

    def add_layer(self, values: np.ndarray, start_kji: Sequence[int], structures: Mapping[int, str]) -> None:
        """Add a box of label values (integers ``[k, j, i]``, first voxel at ``start_kji`` of the grid; kept,
        not copied) where value ``v`` is the voxels of ``structures[v]``; other values are background."""
        values = np.asarray(values)
        if values.dtype == np.bool_:
            values = values.view(np.uint8)
        if values.dtype.kind not in "iu":
            raise VisceralError(f"label values of a box must be integers, not {values.dtype}")
        start = tuple(int(v) for v in start_kji)
        if min(start) < 0 or any(s + n > limit for s, n, limit in zip(start, values.shape, self.shape)):
            raise GridMismatchError(f"a box at {start} of {values.shape} voxels leaves the grid {self.shape}")
        keys = [int(v) for v in structures]
        if keys and min(keys) <= 0:
            raise VisceralError("label value 0 is the background of a box")
        table = np.zeros(max(keys, default=0) + 2, dtype=self.dtype)
        for value, structure in structures.items():
            table[int(value)] = self._values[self.registry.lookup(structure).name]
        if values.dtype.kind == "i":  # negative values past the table's end, as background
            values = values.view(values.dtype.str.replace("i", "u"))
        self._boxes.append(_Box(values, start, table, len(structures) == 1))  # type: ignore[arg-type]

    def overlaps(self) -> List[Tuple[str, str, int]]:
        """Every pair of structures sharing voxels, with the shared voxel count (each pair in the order
        the structures were given)."""
        counts: Dict[Tuple[str, str], int] = {}
        for n, m in zip(*np.nonzero(np.triu(self._meeting(), 1))):
            first, second = self._boxes[n], self._boxes[m]
            region = first.meets(second)
            if region is not None:
                a, b = first.labels(region), second.labels(region)
                both = (a != 0) & (b != 0)
                pairs, number = np.unique(a[both].astype(np.uint64) << np.uint64(32) | b[both].astype(np.uint64), return_counts=True)
                for pair, count in zip(pairs.tolist(), number.tolist()):
                    names = sorted((self._names[pair >> 32], self._names[pair & 0xFFFFFFFF]), key=self._order.__getitem__)
                    if names[0] != names[1]:
                        counts[(names[0], names[1])] = counts.get((names[0], names[1]), 0) + count
        return [(a, b, n) for (a, b), n in sorted(counts.items(), key=lambda item: (self._order[item[0][0]], self._order[item[0][1]]))]

    def _find_neighbours(self) -> None:
        meeting = self._meeting()
        for n, box in enumerate(self._boxes):
            box.neighbours = [self._boxes[m] for m in np.flatnonzero(meeting[n]).tolist() if m != n]

    def _meeting(self) -> np.ndarray:
        """Which boxes meet which (each meets itself unless empty), as a matrix."""
        starts = np.array([box.start for box in self._boxes], dtype=np.int64).reshape(-1, 1, 3)
        stops = np.array([box.stop for box in self._boxes], dtype=np.int64).reshape(-1, 1, 3)
        return np.all(np.maximum(starts, starts.transpose(1, 0, 2)) < np.minimum(stops, stops.transpose(1, 0, 2)), axis=2)

    def paint(self, k: int, out: np.ndarray, rows: Optional[np.ndarray] = None) -> List[Tuple[slice, ...]]:
        """Write slices ``k .. k + len(out) - 1`` of the label volume into ``out`` (all zero when given),
        mark the rows ``[k, j]`` holding a label in ``rows`` (when given); returns the places written.  Boxes must not overlap (:meth:`write` checks first), and their
        neighbours must be known (:meth:`write` and :meth:`volume` find them).  A box alone in these slices is written
        as it is, one meeting others is or-ed in."""
        painted = []
        for box in self._boxes:
            lo, hi = max(k, box.start[0]), min(k + len(out), box.stop[0])
            if lo >= hi:
                continue
            region = ((lo, hi), (box.start[1], box.stop[1]), (box.start[2], box.stop[2]))
            place = (slice(lo - k, hi - k), slice(box.start[1], box.stop[1]), slice(box.start[2], box.stop[2]))
            marks = None if rows is None else rows[place[:2]]
            if all(max(lo, other.start[0]) >= min(hi, other.stop[0]) for other in box.neighbours):  # alone in these slices
                box.labels(region, out=out[place], rows=marks)
            else:
                out[place] |= box.labels(region, rows=marks)  # the boxes' voxels are disjoint: or-ing them in is painting them
            painted.append(place)
        return painted

    def volume(self) -> np.ndarray:
        """The whole label volume ``[k, j, i]`` as one array (what :meth:`write` writes slab by slab)."""
        labels = np.zeros(self.shape, dtype=self.dtype)
        self._find_neighbours()
        self.paint(0, labels)
        return labels

    def write(self, volume_path: PathLike, overwrite: bool = True) -> LabelTable:
        """Write the label volume and its label table (refused with :class:`OverlapError` first)."""
        overlaps = self.overlaps()
        if overlaps:
            raise OverlapError(overlaps)
        self._find_neighbours()
        volume_path = Path(volume_path)
        check_new_files([volume_path, label_table_path(volume_path)], overwrite)
        write_volume_slabs(volume_path, self.geometry, self.dtype, self.paint)
        write_label_table(label_table_path(volume_path), self.table)
        return self.table


def _check_probability(name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype == np.bool_:
        return values.astype(np.float32)
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise VisceralError(f"{name}: uncertainty values must be finite")
    low, high = float(arr.min(initial=0.0)), float(arr.max(initial=0.0))
    if low < 0.0 or high > 1.0:
        raise VisceralError(f"{name}: uncertainty values must lie in [0, 1], found [{low:g}, {high:g}]")
    return arr.astype(np.float32)


def export_uncertainty_volumes(
    probabilities: Mapping[str, np.ndarray],
    geometry: ImageGeometry,
    annotation: VisceralName,
    folder: PathLike,
    registry: Optional[StructureRegistry] = None,
    compact: bool = False,
    overwrite: bool = True,
) -> Dict[str, Path]:
    """Write one float32 volume per structure with values in [0, 1] (seed 3.1, uncertainty); the
    folder made, existing files replaced only with ``overwrite`` (else ``FileExistsError`` first).

    Args:
        probabilities: structure name -> probability (or binary mask, written as exactly 0/1) ``[k, j, i]``.
        geometry: the image's grid.
        annotation: the region annotation's name (``..._regionannotation_<A>``); each file is
            ``annotation.with_label(<label>)``.
        folder: output folder.
        compact: label values 1..N instead of RadLex IDs; then the label table is written too
            (``annotation`` with ``.csv``) since the file names alone no longer identify structures.

    Returns:
        structure name -> written path.  All values are checked before anything is written.
    """
    if annotation.kind not in (FileKind.REGION, FileKind.REGION_LABEL):
        raise InvalidNameError(annotation.format(), "uncertainty volumes belong to a region annotation")
    registry = registry or default_registry()
    resolved = _resolve(probabilities, registry)
    checked = {}
    for structure, values in resolved.items():
        _check_shape(structure.name, values, geometry)
        checked[structure.name] = _check_probability(structure.name, values)
    table = LabelTable.for_structures(list(resolved), registry, compact=compact)
    base = annotation.annotation(FileKind.REGION)
    folder = Path(folder)
    targets = [folder / base.with_label(value).format() for _, value in table.entries]
    check_new_files(targets + ([folder / base.with_extension(".csv").format()] if compact else []), overwrite)
    written: Dict[str, Path] = {}
    for name, value in table.entries:
        path = folder / base.with_label(value).format()
        write_volume(path, checked[name], geometry)
        written[name] = path
    if compact:
        write_label_table(folder / base.with_extension(".csv").format(), table)
    return written


def _check_grid(path: PathLike, geometry: ImageGeometry, reference: Optional[ImageGeometry], tolerance_mm: float) -> None:
    if reference is not None and not geometry.same_grid(reference, tolerance_mm):
        raise GridMismatchError(
            f"{path}: voxel grid differs from its image (shape {geometry.shape} vs {reference.shape}, "
            f"spacing {tuple(round(s, 6) for s in geometry.spacing_mm)} vs {tuple(round(s, 6) for s in reference.spacing_mm)}, "
            f"origin {tuple(round(o, 4) for o in geometry.origin_lps)} vs {tuple(round(o, 4) for o in reference.origin_lps)})"
        )


def read_region_annotation(
    volume_path: PathLike,
    table_path: Optional[PathLike] = None,
    reference: Optional[ImageGeometry] = None,
    tolerance_mm: float = 1e-3,
) -> RegionAnnotation:
    """Read a multi-label region annotation and its label table.

    Args:
        volume_path: the label volume.
        table_path: its CSV (default: beside it, same name ``.csv``).
        reference: the image grid; a volume on another grid is refused.
        tolerance_mm: how far a voxel may be from its place on the reference grid.

    Raises:
        GridMismatchError: the grid differs from ``reference``.
        FileFormatError, LabelTableError: unreadable files.
    """
    table = read_label_table(table_path or label_table_path(volume_path))
    _check_grid(volume_path, read_geometry(volume_path), reference, tolerance_mm)
    labels, geometry = read_volume(volume_path)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise VisceralError(f"{volume_path}: a label volume must hold integer values")
        labels = labels.astype(np.int64)
    present = {int(v) for v in np.unique(labels) if v != 0}
    listed = set(table.labels())
    return RegionAnnotation(
        geometry,
        table,
        labels,
        labels_missing_from_table=sorted(present - listed),
        structures_missing_from_volume=[n for n, v in table.entries if v not in present],
    )


def read_uncertainty_volumes(
    folder: PathLike,
    annotation: VisceralName,
    reference: Optional[ImageGeometry] = None,
    registry: Optional[StructureRegistry] = None,
    tolerance_mm: float = 1e-3,
) -> Tuple[Dict[str, np.ndarray], Optional[ImageGeometry]]:
    """Read every per-structure volume of ``annotation`` found in ``folder``.

    The label in each file name is mapped to a structure through the annotation's
    label table when there is one (``..._regionannotation_<A>.csv``), else as a RadLex ID.

    Returns:
        structure name -> float32 values, and the common grid (``None`` when nothing was found).

    Raises:
        GridMismatchError: a volume is off ``reference`` or off the others' grid.
        VisceralError: values outside [0, 1].
    """
    registry = registry or default_registry()
    folder = Path(folder)
    table_file = folder / annotation.annotation(FileKind.REGION, extension=".csv").format()
    by_label: Dict[int, str] = {}
    if table_file.is_file():
        by_label = {v: n for n, v in read_label_table(table_file).entries}
    found: Dict[str, np.ndarray] = {}
    grid = reference
    for path in sorted(folder.iterdir()):
        try:
            name = parse_name(path.name)
        except InvalidNameError:
            continue
        same = (name.subject, name.acquisition, name.modality, name.annotator) == (
            annotation.subject, annotation.acquisition, annotation.modality, annotation.annotator)
        if not (same and name.kind is FileKind.REGION_LABEL and name.is_volume):
            continue
        structure, values, geometry = read_uncertainty_volume(path, grid, registry, by_label, tolerance_mm)
        grid = grid or geometry
        found[structure] = values
    return found, grid


def label_volume_structure(path: PathLike, registry: Optional[StructureRegistry] = None, by_label: Optional[Dict[int, str]] = None) -> str:
    """The structure of a per-structure volume (``..._regionannotation_label58_3.nii.gz``): its label through
    ``by_label`` -- the annotation's label table, read from beside the file when not given and present --
    else the label as a RadLex ID.

    Raises:
        VisceralError: a label not in the label table; UnknownStructureError: no structure has that RadLex ID.
    """
    registry = registry or default_registry()
    path = Path(path)
    name = parse_name(path.name)
    if by_label is None:
        table_file = path.parent / name.annotation(FileKind.REGION, extension=".csv").format()
        by_label = {v: n for n, v in read_label_table(table_file).entries} if table_file.is_file() else {}
    structure = by_label.get(name.label) if by_label else registry.by_radlex_id(name.label).name
    if structure is None:
        raise VisceralError(f"{path}: label {name.label} is not in its label table")
    return structure


def read_uncertainty_volume(
    path: PathLike,
    reference: Optional[ImageGeometry] = None,
    registry: Optional[StructureRegistry] = None,
    by_label: Optional[Dict[int, str]] = None,
    tolerance_mm: float = 1e-3,
) -> Tuple[str, np.ndarray, ImageGeometry]:
    """One per-structure volume (``..._regionannotation_label58_3.nii.gz``): its structure (through
    ``by_label`` -- the annotation's label table, read from beside the file when not given and present
    -- else the label as a RadLex ID), its float32 values in [0, 1] and its grid.

    Raises:
        GridMismatchError: off ``reference``.  VisceralError: a label of no structure, values outside [0, 1].
    """
    path = Path(path)
    structure = label_volume_structure(path, registry, by_label)
    geometry = read_geometry(path)
    _check_grid(path, geometry, reference, tolerance_mm)
    values, _ = read_volume(path)
    return structure, _check_probability(str(path), values), geometry


def probability_to_mask(probability: np.ndarray, threshold: float = PROBABILITY_THRESHOLD) -> np.ndarray:
    """Binary mask of a probability volume: ``probability >= threshold`` (default 0.5)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")
    return np.asarray(probability) >= threshold


def mask_to_probability(mask: np.ndarray) -> np.ndarray:
    """Probability volume of a binary mask: exactly 0.0 and 1.0, float32."""
    return np.asarray(mask).astype(bool).astype(np.float32)
