"""``visceral evaluate``: pair every result file with its reference by identity tokens, score, aggregate, report.

Pairing (docs/METRICS.md, "Pairing"): files of both data sets are grouped by image -- subject, acquisition,
modality and body region of their names, whatever folder they are in; the annotator is not part of the
identity (the reference and the results are by different annotators).  Within an image, structures pair
by their registry name (so ``Liver`` in one label table and ``liver`` in the other, or a per-structure
volume ``..._label58_...``, are the same structure) and landmarks by their ID.

One image is one unit of work (in a worker process with ``jobs > 1``); everything wrong with it is a
:class:`Problem` with a stable code (:data:`PROBLEM_CODES`) and a one-line reason, and the run goes on.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from visceral.annotations.regions import label_volume_structure, probability_to_mask, read_region_annotation, read_uncertainty_volume
from visceral.conventions.frames import ImageGeometry
from visceral.conventions.labels import default_registry, normalize_structure_name
from visceral.conventions.landmarks import check_covariance, landmark_id_of_label, read_fcsv, read_landmarks
from visceral.conventions.names import FileKind, VisceralName, parse_name
from visceral.errors import InvalidNameError, UnknownStructureError, VisceralError, one_line
from visceral import problems
from visceral.evaluate.metrics import FUZZY_METRICS, LANDMARK_METRICS, REGION_METRICS, fuzzy_metrics, label_metrics, landmark_metrics, region_metrics
from visceral.fileio import TEMP_PREFIX
from visceral.imageio import read_geometry
from visceral.parallel import Executor, running_on
from visceral.types import PathLike, Progress

__all__ = ["Score", "Problem", "EvaluationReport", "PROBLEM_CODES", "SCORE_COLUMNS", "evaluate", "structure_key"]

#: Columns of the long-format score table.
SCORE_COLUMNS = ("subject", "acquisition", "modality", "structure", "landmark", "metric", "value")

#: Every problem code: (refused, meaning).  A refused item is not scored; a warning is scored as described.
PROBLEM_CODES: Dict[str, Tuple[bool, str]] = {
    "GRID_MISMATCH": (True, "the result volume is not on the reference's voxel grid (see --resample)"),
    "RESAMPLED": (False, "the result volume was resampled with nearest neighbour onto the reference grid (--resample)"),
    "UNREADABLE": (True, "a file of the pair cannot be read"),
    "ANNOTATOR_AMBIGUOUS": (True, "several annotators annotated the image; choose one"),
    "NO_GEOMETRY": (True, "landmarks in the seed's landmark frame, but no image to place them in the world"),
    "NO_RESULT": (False, "the reference annotates the image, the results do not: scored as an empty result (every structure "
                         "and landmark missing)"),
    "NO_REFERENCE": (False, "a result for an image (or of a kind) the reference does not annotate: not scored"),
    "MISSING_STRUCTURE": (False, "a reference structure is absent from the result annotation: scored as an empty result"),
    "EXTRA_STRUCTURE": (False, "a result structure the reference annotation does not have: not scored"),
    "UNLISTED_LABELS": (False, "label values of a label volume missing from its label table: their voxels count for no structure"),
    "LANDMARKS_MISSING": (False, "reference landmark IDs absent from the result (counted in landmarks_missing)"),
    "LANDMARKS_EXTRA": (False, "result landmark IDs absent from the reference (counted in landmarks_extra)"),
    "COVARIANCE_INVALID": (False, "a landmark's covariance is not 9 finite numbers of a symmetric positive semi-definite matrix: "
                                  "its Mahalanobis distance is not computed"),
    "DUPLICATE_FILE": (False, "two files with the same identity (e.g. .nii and .nii.gz): the first in sorted order is used"),
    "FAILED": (True, "scoring the image failed unexpectedly"),
}

ImageKey = Tuple[int, int, Optional[str], Optional[str]]  # subject, acquisition, modality, body region


@dataclass(frozen=True)
class Score:
    """One row of the long-format table: one metric of one structure or landmark of one image."""

    subject: int
    acquisition: int
    modality: str
    structure: str
    landmark: str
    metric: str
    value: float


class Problem(problems.Problem):
    """Something about one image pair (or file) that was refused (not scored) or needs saying (its codes:
    :data:`PROBLEM_CODES`)."""

    REFUSING = {code: refused for code, (refused, _) in PROBLEM_CODES.items()}


@dataclass
class EvaluationReport:
    """Everything one evaluation found."""

    reference: Path
    results: Path
    scores: List[Score] = field(default_factory=list)
    problems: List[Problem] = field(default_factory=list)
    images: int = 0
    seconds: float = 0.0
    settings: Dict[str, Any] = field(default_factory=dict)
    #: which executor ran, its workers, tasks, retries and throughput (:meth:`visceral.parallel.Executor.summary`)
    execution: Dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing was refused."""
        return not any(p.refused for p in self.problems)

    def structures(self) -> List[str]:
        """The structures scored, sorted."""
        return sorted({s.structure for s in self.scores if s.structure})

    def landmarks(self) -> List[str]:
        """The landmark IDs scored, in numeric order where numeric."""
        return sorted({s.landmark for s in self.scores if s.landmark}, key=lambda t: (not t.isdigit(), int(t) if t.isdigit() else 0, t))


# -- the files of a data set ---------------------------------------------------------------------------------

@dataclass
class _Files:
    """The files of one image in one data set, by annotator."""

    image: Optional[Path] = None
    regions: Dict[int, Path] = field(default_factory=dict)  # multi-label volumes
    label_volumes: Dict[int, List[Path]] = field(default_factory=dict)  # per-structure volumes
    landmarks: Dict[int, Path] = field(default_factory=dict)

    def annotated(self) -> bool:
        return bool(self.regions or self.label_volumes or self.landmarks)


def _image_key(name: VisceralName) -> ImageKey:
    """The identity an image pairs by (the modality token in upper case: ``modalityct`` is ``modalityCT``)."""
    return (name.subject, name.acquisition, name.modality.upper() if name.modality else name.modality, name.body_region)


def _describe(key: ImageKey) -> str:
    """The canonical image name of ``key`` (``subject01_1_modalityCT``)."""
    return VisceralName(key[0], key[1], key[2], body_region=key[3]).stem()


def catalogue(root: PathLike, problems: Optional[List[Problem]] = None) -> Dict[ImageKey, _Files]:
    """The files of a data-set folder (and its sub-folders) grouped by image; files of other names are ignored
    (``visceral validate`` reports them); the first of two files with the same identity (in sorted order) counts,
    the other is said (DUPLICATE_FILE) in ``problems``."""
    out: Dict[ImageKey, _Files] = {}

    def first(held: Optional[Path], path: Path) -> Path:
        if held is not None and held != path and problems is not None:
            problems.append(Problem("DUPLICATE_FILE", str(path), f"the same image and annotator as {held.name}, which is used"))
        return held or path

    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file_name in sorted(files):
            if file_name.startswith((TEMP_PREFIX, ".")):
                continue
            try:
                name = parse_name(file_name)
            except InvalidNameError:
                continue
            path = Path(folder) / file_name
            entry = out.setdefault(_image_key(name), _Files())
            if name.kind is FileKind.IMAGE and name.is_volume:
                entry.image = first(entry.image, path)
            elif name.kind is FileKind.REGION and name.is_volume:
                entry.regions[name.annotator] = first(entry.regions.get(name.annotator), path)
            elif name.kind is FileKind.REGION_LABEL and name.is_volume:
                entry.label_volumes.setdefault(name.annotator, []).append(path)
            elif name.kind is FileKind.LANDMARKS and name.extension in (".csv", ".fcsv", ".nii"):  # ".nii": the seed's typo
                entry.landmarks[name.annotator] = first(entry.landmarks.get(name.annotator), path)
    return out


def structure_key(name: str) -> str:
    """The name a structure is paired by: its registry name, else its normalized spelling."""
    try:
        return default_registry().lookup(name).name
    except UnknownStructureError:
        return normalize_structure_name(name)


# -- one image ------------------------------------------------------------------------------------------------

@dataclass
class _Pair:
    """One unit of work: an image's reference and result files (one annotator each)."""

    key: ImageKey
    reference_image: Optional[Path]
    result_image: Optional[Path]
    reference_region: Optional[Path] = None
    result_region: Optional[Path] = None
    reference_label_volumes: List[Path] = field(default_factory=list)
    result_label_volumes: List[Path] = field(default_factory=list)
    reference_landmarks: Optional[Path] = None
    result_landmarks: Optional[Path] = None
    resample: bool = False
    #: no result annotation of this kind: the reference is scored against an empty result
    empty_regions: bool = False
    empty_landmarks: bool = False


@dataclass
class _Side:
    """The region annotation of one side on the reference grid: label volume and/or per-structure volumes."""

    labels: Optional[np.ndarray] = None
    values: Dict[str, int] = field(default_factory=dict)  # structure -> label value in ``labels``
    volumes: Dict[str, Path] = field(default_factory=dict)  # structure -> per-structure volume

    def structures(self) -> List[str]:
        return sorted(set(self.values) | set(self.volumes))


def _to_sitk(array: np.ndarray, geometry: ImageGeometry) -> Any:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(geometry.spacing_mm)
    image.SetOrigin(geometry.origin_lps)
    image.SetDirection(tuple(np.asarray(geometry.direction_lps).ravel()))
    return image


def _on_grid(array: np.ndarray, geometry: ImageGeometry, grid: ImageGeometry, pair: _Pair, path: Path, problems: List[Problem]) -> Optional[np.ndarray]:
    """``array`` (on ``geometry``) on the reference ``grid``: as is, re-indexed when the same voxels are stored in
    another axis order, resampled (nearest neighbour) when asked to, else ``None`` with GRID_MISMATCH."""
    if geometry.same_grid(grid):
        return array
    if grid.axis_map(geometry) is not None:
        return grid.array_from(array, geometry)
    where = str(path)
    if not pair.resample:
        problems.append(Problem("GRID_MISMATCH", where, f"grid {_grid_text(geometry)} differs from the reference's {_grid_text(grid)}"))
        return None
    import SimpleITK as sitk

    reference = sitk.Image(*grid.shape, sitk.sitkUInt8)
    reference.SetSpacing(grid.spacing_mm)
    reference.SetOrigin(grid.origin_lps)
    reference.SetDirection(tuple(np.asarray(grid.direction_lps).ravel()))
    resampled = sitk.Resample(_to_sitk(array, geometry), reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0.0)
    problems.append(Problem("RESAMPLED", where, f"resampled with nearest neighbour from {geometry.shape} voxels of {_mm(geometry.spacing_mm)} mm "
                            f"onto the reference grid {grid.shape} of {_mm(grid.spacing_mm)} mm"))
    return sitk.GetArrayFromImage(resampled)


def _mm(values: Sequence[float]) -> str:
    return "x".join(f"{v + 0.0:.4g}" for v in values)  # + 0.0: no "-0"


def _grid_text(grid: ImageGeometry) -> str:
    """A grid in one line: shape, voxel size, origin and direction (its columns, the voxel axes in LPS)."""
    axes = np.asarray(grid.direction_lps, dtype=float)
    return (f"{grid.shape} voxels of {_mm(grid.spacing_mm)} mm at {_mm(grid.origin_lps)} mm, axes "
            + " ".join(f"({_mm(np.round(axes[:, n], 4))})" for n in range(3)))


def _read_side(region: Optional[Path], label_volumes: Sequence[Path], grid: Optional[ImageGeometry], pair: _Pair,
               problems: List[Problem], is_result: bool) -> Tuple[Optional[_Side], Optional[ImageGeometry]]:
    """Read one side's region annotation onto ``grid`` (the reference's; ``None``: this side sets it)."""
    side = _Side()
    if region is not None:
        annotation = read_region_annotation(region)
        grid = grid or annotation.geometry
        labels = _on_grid(annotation.labels, annotation.geometry, grid, pair, region, problems) if is_result else annotation.labels
        if labels is None:
            return None, grid
        side.labels = labels
        for structure_name, value in annotation.table.entries:
            key = structure_key(structure_name)
            if key in side.values:
                raise VisceralError(f"{region}: the label table names {key!r} twice (labels {side.values[key]} and {value})")
            side.values[key] = value
        if annotation.labels_missing_from_table:
            problems.append(Problem("UNLISTED_LABELS", str(region), f"label value(s) {', '.join(map(str, annotation.labels_missing_from_table))} "
                                    "are not in the label table: their voxels count for no structure"))
    for path in label_volumes:
        side.volumes[structure_key(label_volume_structure(path))] = path
        if grid is None:
            grid = read_geometry(path)
    return side, grid


def _probabilities(path: Path, grid: ImageGeometry, pair: _Pair, problems: List[Problem], is_result: bool) -> Optional[np.ndarray]:
    """A per-structure volume's values in [0, 1] on ``grid`` (``None``: refused, with the problem said)."""
    _structure, values, geometry = read_uncertainty_volume(path)
    if not is_result:
        if not geometry.same_grid(grid) and grid.axis_map(geometry) is None:
            problems.append(Problem("GRID_MISMATCH", str(path), "the reference's per-structure volume is not on the grid of its image's other annotation"))
            return None
        return values if geometry.same_grid(grid) else grid.array_from(values, geometry)
    return _on_grid(values, geometry, grid, pair, path, problems)


def _mask(side: _Side, structure: str, grid: ImageGeometry, pair: _Pair, problems: List[Problem],
          is_result: bool) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """(binary mask, probabilities or ``None``) of a structure on one side: the label volume gives the mask when it
    has the structure, else the per-structure volume at :data:`~visceral.annotations.regions.PROBABILITY_THRESHOLD`."""
    probabilities = None
    in_labels = side.labels is not None and structure in side.values
    if structure in side.volumes:
        path = side.volumes[structure]
        try:
            probabilities = _probabilities(path, grid, pair, problems, is_result)
        except VisceralError as exc:
            then = "its fuzzy metrics not scored (its mask from the label volume is)" if in_labels else f"{structure!r} not scored"
            problems.append(Problem("UNREADABLE", str(path), f"{one_line(exc)}: {then}"))
        if probabilities is None and not in_labels:
            return None, None
    if in_labels:
        return side.labels == side.values[structure], probabilities
    if probabilities is not None:
        return probability_to_mask(probabilities), probabilities
    return np.zeros(tuple(reversed(grid.shape)), dtype=bool), None


def _score_regions(pair: _Pair, name: str, scores: List[Score], problems: List[Problem]) -> Optional[ImageGeometry]:
    """Score the region annotations of one image; returns the reference grid (``None`` without one)."""
    subject, acquisition, modality, _ = pair.key
    reference, grid = _read_side(pair.reference_region, pair.reference_label_volumes, None, pair, problems, False)
    if reference is None or grid is None:
        return grid
    has_result = pair.result_region is not None or pair.result_label_volumes
    if not has_result and not pair.empty_regions:
        return grid
    result, _ = _read_side(pair.result_region, pair.result_label_volumes, grid, pair, problems, True) if has_result else (_Side(), grid)
    if result is None:
        return grid
    wanted = reference.structures()
    for structure in result.structures():
        if structure not in wanted:
            problems.append(Problem("EXTRA_STRUCTURE", name, f"{structure!r} is not in the reference annotation"))
    for structure in wanted:
        if structure not in result.structures() and has_result:  # a result missing whole is said once (NO_RESULT)
            problems.append(Problem("MISSING_STRUCTURE", name, f"{structure!r} is not in the result annotation: scored as empty"))

    def add(structure: str, values: Dict[str, float], metrics: Sequence[str]) -> None:
        for metric in metrics:
            scores.append(Score(subject, acquisition, modality or "", structure, "", metric, float(values[metric])))

    spacing = grid.spacing_mm
    binary_only = [s for s in wanted if s not in reference.volumes and s not in result.volumes]
    if reference.labels is not None and result.labels is not None and binary_only:
        # both label volumes: every structure from one pass over each volume
        pairs = {s: (reference.values.get(s), result.values.get(s)) for s in binary_only}
        for structure, values in label_metrics(reference.labels, result.labels, spacing, pairs).items():
            add(structure, values, REGION_METRICS)
    else:
        binary_only = []
    for structure in wanted:
        if structure in binary_only:
            continue
        ref_mask, ref_probability = _mask(reference, structure, grid, pair, problems, False)
        res_mask, res_probability = _mask(result, structure, grid, pair, problems, True)
        if ref_mask is None or res_mask is None:
            continue
        add(structure, region_metrics(ref_mask, res_mask, spacing), REGION_METRICS)
        if ref_probability is not None or res_probability is not None:
            a = ref_probability if ref_probability is not None else ref_mask.astype(np.float32)
            b = res_probability if res_probability is not None else res_mask.astype(np.float32)
            add(structure, fuzzy_metrics(a, b), FUZZY_METRICS)
    return grid


def _world_landmarks(path: Path, geometry: Optional[ImageGeometry],
                     invalid: Dict[str, str]) -> Dict[str, Tuple[np.ndarray, Optional[np.ndarray]]]:
    """Landmark ID -> (LPS position, LPS covariance or ``None``) of a landmark file.

    A ``.csv`` holds the seed's landmark frame (mm from voxel [0,0,0] along the voxel axes) of its image
    grid ``geometry``; a ``.fcsv`` holds world points (its own RAS or LPS) without covariance, each ID the
    number in its label (``L321`` is 321).  A landmark ID twice refuses the file; a covariance that is not
    one (:func:`~visceral.conventions.landmarks.check_covariance`) is left out, with why in ``invalid``.
    """
    from visceral.annotations.points import import_landmarks

    if path.name.lower().endswith(".fcsv"):
        frame, points = read_fcsv(path)
        out = {}
        for point in points:
            lps = np.asarray(point.position, dtype=float) * (np.array([-1.0, -1.0, 1.0]) if frame == "RAS" else 1.0)
            landmark_id = str(landmark_id_of_label(point.label))
            if landmark_id in out:
                raise VisceralError(f"{path}: landmark ID {landmark_id} twice")
            out[landmark_id] = (lps, None)
        return out
    landmarks = read_landmarks(path, strict=False)
    seen: set = set()
    for n, landmark in enumerate(landmarks):
        if landmark.landmark_id in seen:
            raise VisceralError(f"{path}: landmark ID {landmark.landmark_id} twice")
        seen.add(landmark.landmark_id)
        why = check_covariance(landmark.covariance) if landmark.covariance is not None else None
        if why:
            invalid[str(landmark.landmark_id)] = why
            landmarks[n] = replace(landmark, covariance=None)
    if geometry is None:
        raise _NoGeometry(f"{path}: no image (or region annotation) of this subject to place the landmark frame in the world")
    ids, points, covariances = import_landmarks(landmarks, geometry, "LPS")
    return {str(i): (p, c) for i, p, c in zip(ids, points, covariances)}


class _NoGeometry(VisceralError):
    pass


def _score_landmarks(pair: _Pair, name: str, grid: Optional[ImageGeometry], scores: List[Score], problems: List[Problem]) -> None:
    subject, acquisition, modality, _ = pair.key
    modality = modality or ""
    reference_geometry = read_geometry(pair.reference_image) if pair.reference_image else grid
    result_geometry = read_geometry(pair.result_image) if pair.result_image else reference_geometry
    invalid: Dict[str, Dict[str, str]] = {"reference": {}, "result": {}}
    try:
        reference = _world_landmarks(pair.reference_landmarks, reference_geometry, invalid["reference"])  # type: ignore[arg-type]
        result = _world_landmarks(pair.result_landmarks, result_geometry, invalid["result"]) if pair.result_landmarks else {}
    except _NoGeometry as exc:
        problems.append(Problem("NO_GEOMETRY", name, str(exc)))
        return
    for side, found in invalid.items():
        for landmark_id, why in found.items():
            problems.append(Problem("COVARIANCE_INVALID", name, f"{side} landmark {landmark_id}: {why}: its Mahalanobis distance is not computed"))
    missing = [i for i in reference if i not in result]
    extra = [i for i in result if i not in reference]
    for landmark_id, (ref_point, ref_cov) in reference.items():
        if landmark_id not in result:
            continue
        res_point, res_cov = result[landmark_id]
        values = landmark_metrics(ref_point, res_point, ref_cov, res_cov)
        for metric in LANDMARK_METRICS:
            if metric == "mahalanobis" and ref_cov is None and res_cov is None:
                continue
            scores.append(Score(subject, acquisition, modality, "", landmark_id, metric, values[metric]))
    scores.append(Score(subject, acquisition, modality, "", "", "landmarks_missing", float(len(missing))))
    scores.append(Score(subject, acquisition, modality, "", "", "landmarks_extra", float(len(extra))))
    if missing and pair.result_landmarks:  # a result missing whole is said once (NO_RESULT)
        problems.append(Problem("LANDMARKS_MISSING", name, f"reference landmark ID(s) {', '.join(missing)} not in the result"))
    if extra:
        problems.append(Problem("LANDMARKS_EXTRA", name, f"result landmark ID(s) {', '.join(extra)} not in the reference"))


def score_pair(pair: _Pair) -> Tuple[List[Score], List[Problem]]:
    """Every score of one image, and its problems; a file that cannot be read refuses the image's regions or
    landmarks with UNREADABLE (one line), never a traceback."""
    name = _describe(pair.key)
    scores: List[Score] = []
    problems: List[Problem] = []
    grid = None
    if pair.reference_region is not None or pair.reference_label_volumes:
        part: List[Score] = []
        try:
            grid = _score_regions(pair, name, part, problems)
            scores += part
        except Exception as exc:  # noqa: BLE001 - the regions refused in one line; the landmarks are still scored
            problems.append(Problem("UNREADABLE" if isinstance(exc, VisceralError) else "FAILED", name,
                                    f"regions not scored: {one_line(exc) or type(exc).__name__}"))
    if pair.reference_landmarks is not None:
        part = []
        try:
            _score_landmarks(pair, name, grid, part, problems)
            scores += part
        except Exception as exc:  # noqa: BLE001 - the landmarks refused in one line; the regions stay scored
            problems.append(Problem("UNREADABLE" if isinstance(exc, VisceralError) else "FAILED", name,
                                    f"landmarks not scored: {one_line(exc) or type(exc).__name__}"))
    return scores, problems


# -- the whole run ----------------------------------------------------------------------------------------------

def _one_annotator(files: Dict[int, Any], chosen: Optional[int], what: str, name: str, problems: List[Problem]) -> Tuple[bool, Optional[int]]:
    """(go on, the annotator to use) among the annotators of one kind of annotation of an image."""
    if not files:
        return True, None
    if chosen is not None:
        return True, chosen if chosen in files else None
    if len(files) == 1:
        return True, next(iter(files))
    problems.append(Problem("ANNOTATOR_AMBIGUOUS", name, f"{what} by annotators {', '.join(map(str, sorted(files)))}; choose one"))
    return False, None


#: How NO_RESULT ends, with and without scoring a missing result as an empty one.
_AS_EMPTY = {True: ": scored as an empty result", False: ": not scored"}


def plan(reference: PathLike, results: PathLike, resample: bool = False, reference_annotator: Optional[int] = None,
         result_annotator: Optional[int] = None, images: Optional[Sequence[ImageKey]] = None,
         missing_as_empty: bool = True) -> Tuple[List[_Pair], List[Problem]]:
    """The image pairs to score, and the problems found while pairing.  ``missing_as_empty``: an image the
    reference annotates and the results do not is scored against an empty result (a benchmark's missing
    answer scores as a wrong one), else only said."""
    pairs: List[_Pair] = []
    problems: List[Problem] = []
    ref_files, res_files = catalogue(reference, problems), catalogue(results, problems)
    wanted = {(s, a, m.upper() if m else m, b) for s, a, m, b in images} if images is not None else None
    for key in sorted(set(ref_files) | set(res_files), key=lambda k: tuple("" if v is None else str(v).zfill(12) for v in k)):
        if wanted is not None and key not in wanted:
            continue
        name = _describe(key)
        ref, res = ref_files.get(key, _Files()), res_files.get(key, _Files())
        if not ref.annotated():
            if res.annotated():
                problems.append(Problem("NO_REFERENCE", name, "the results annotate an image the reference does not"))
            continue
        if not res.annotated() and not missing_as_empty:
            problems.append(Problem("NO_RESULT", name, "no result annotation for this image: not scored"))
            continue
        pair = _Pair(key, ref.image, res.image, resample=resample)
        region_annotators = dict.fromkeys([*ref.label_volumes, *ref.regions], 1)
        result_region_annotators = dict.fromkeys([*res.label_volumes, *res.regions], 1)
        go_ref, a_ref = _one_annotator(region_annotators, reference_annotator, "reference regions", name, problems)
        go_res, a_res = _one_annotator(result_region_annotators, result_annotator, "result regions", name, problems)
        if go_ref and go_res and a_ref is not None:
            if a_res is None:
                problems.append(Problem("NO_RESULT", name, "no result region annotation for this image" + _AS_EMPTY[missing_as_empty]))
            if a_res is not None or missing_as_empty:
                pair.reference_region, pair.reference_label_volumes = ref.regions.get(a_ref), ref.label_volumes.get(a_ref, [])
                pair.result_region, pair.result_label_volumes = res.regions.get(a_res), res.label_volumes.get(a_res, [])
                pair.empty_regions = a_res is None
        elif go_res and a_res is not None and a_ref is None and go_ref:
            problems.append(Problem("NO_REFERENCE", name, "result regions, but no reference region annotation"))
        go_ref, l_ref = _one_annotator(ref.landmarks, reference_annotator, "reference landmarks", name, problems)
        go_res, l_res = _one_annotator(res.landmarks, result_annotator, "result landmarks", name, problems)
        if go_ref and go_res and l_ref is not None:
            if l_res is None:
                problems.append(Problem("NO_RESULT", name, "no result landmarks for this image" + _AS_EMPTY[missing_as_empty]))
            if l_res is not None or missing_as_empty:
                pair.reference_landmarks, pair.result_landmarks = ref.landmarks[l_ref], res.landmarks.get(l_res)  # type: ignore[arg-type]
                pair.empty_landmarks = l_res is None
        elif go_res and l_res is not None and l_ref is None and go_ref:
            problems.append(Problem("NO_REFERENCE", name, "result landmarks, but no reference landmarks"))
        if pair.reference_region or pair.reference_label_volumes or pair.reference_landmarks:
            pairs.append(pair)
    return pairs, problems


def _worker_threads(threads: int) -> None:
    """Share the cores between worker processes: SimpleITK's filters use ``threads`` threads each."""
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(max(1, threads))


def evaluate(reference: PathLike, results: PathLike, jobs: Union[int, Executor] = 1, resample: bool = False, reference_annotator: Optional[int] = None,
             result_annotator: Optional[int] = None, images: Optional[Sequence[ImageKey]] = None,
             progress: Optional[Progress] = None, missing_as_empty: bool = True) -> EvaluationReport:
    """Score every result of data set ``results`` against its reference in data set ``reference``.

    Args:
        reference, results: data-set folders.
        jobs: worker processes (one image each), or the executor to run on (:mod:`visceral.parallel`).
        resample: put a result on another grid onto the reference grid (nearest neighbour) instead of refusing it.
        reference_annotator, result_annotator: the annotator to use where an image has several.
        images: only these images (subject, acquisition, modality, body region).
        progress: ``progress(done, total, stage)`` callback.
        missing_as_empty: score an image (or a kind of annotation) the reference has and the results do not
            against an empty result (the default: a missing answer scores as a wrong one), else only say it.
    """
    start = time.perf_counter()
    report = EvaluationReport(Path(reference), Path(results), settings={
        "resample": resample, "reference_annotator": reference_annotator, "result_annotator": result_annotator,
        "missing_as_empty": missing_as_empty})
    for folder in (report.reference, report.results):
        if not folder.is_dir():
            raise VisceralError(f"{folder}: not a folder")
    pairs, problems = plan(reference, results, resample, reference_annotator, result_annotator, images, missing_as_empty)
    report.problems.extend(problems)
    report.images = len(pairs)
    outcomes: Dict[ImageKey, Tuple[List[Score], List[Problem]]] = {}
    with running_on(jobs) as executor:
        mark = executor.mark()
        report.settings["jobs"] = executor.workers
        threads = max(1, (os.cpu_count() or 1) // max(1, min(executor.workers, len(pairs) or 1)))
        for done, (pair, outcome) in enumerate(executor.unordered(score_pair, pairs, _worker_threads, (threads,)), start=1):
            try:
                outcomes[pair.key] = outcome()
            except Exception as exc:  # one image's failure is one line of the report; the run goes on (Ctrl-C still stops it)
                outcomes[pair.key] = ([], [Problem("FAILED", _describe(pair.key), f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")])
            if progress:
                progress(done, len(pairs), "evaluate")
        report.execution = executor.summary(len(pairs), "images", time.perf_counter() - start, mark)
    for pair in pairs:  # the order of the pairs, whatever order the workers finished in
        scores, found = outcomes[pair.key]
        report.scores.extend(scores)
        report.problems.extend(found)
    report.seconds = time.perf_counter() - start
    return report
