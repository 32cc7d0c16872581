"""``visceral validate``: check a data-set folder against the conventions.

Like the BIDS validator, for this format: every problem is a :class:`Finding`
with a stable issue code (:data:`ISSUE_CODES`), the file and the reason.
Errors make the run fail; warnings do not.  A JSON config file may change the
severity of any code (``{"severity": {"ORPHAN_FILE": "ignore"}}``); a wrong
config is itself an error (:class:`ConfigError`).

Voxel values are read straight from the file (:func:`visceral.imageio.read_nifti_voxels`):
SimpleITK 2.5's NIfTI reader turns NaN into 0 and would hide them.

Speed and memory: file names, metadata and NIfTI headers are checked first,
header-only; voxel data is read only for the checks that need it (label values,
uncertainty range, every image read whole and NaN-free where float), one volume per task, in parallel
worker processes when ``jobs > 1``.
"""

from __future__ import annotations

import enum
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from visceral.conventions.frames import ImageGeometry, corner_indices
from visceral.conventions.labels import LabelTable, default_registry, read_label_table
from visceral.conventions.landmarks import RegisteredLandmark, landmark_registry, read_landmark_registry, check_covariance, read_fcsv, read_landmarks
from visceral.conventions.metadata import read_metadata
from visceral.conventions.names import FileKind, VisceralName, parse_name
from visceral.conventions.textfile import read_json_object
from visceral.conventions.version import is_known
from visceral.dataset import README_NAME, orientation_code
from visceral.errors import FileFormatError, InvalidNameError, UnknownStructureError, VisceralError, one_line
from visceral.fileio import TEMP_PREFIX
from visceral.imageio import qform_storage_gap_mm, read_geometry, read_nifti_header, read_nifti_voxels
from visceral.parallel import Executor, execution_line, running_on
from visceral.types import PathLike, Progress

__all__ = ["Severity", "Finding", "ValidationReport", "ValidatorConfig", "ConfigError", "ISSUE_CODES", "load_config", "validate_dataset"]


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    IGNORE = "ignore"


#: Every issue code, its default severity and what it means.  Codes are stable: never rename one.
ISSUE_CODES: Dict[str, Tuple[Severity, str]] = {
    "DATASET_README_MISSING": (Severity.ERROR, "the data set has no README.txt explaining names and contents (seed section 4)"),
    "NAME_INVALID": (Severity.ERROR, "a data file's name does not follow the naming conventions"),
    "ORPHAN_FILE": (Severity.WARNING, "a file that belongs to no image or annotation"),
    "TEMP_FILE_LEFT": (Severity.WARNING, "a temporary file of an interrupted write"),
    "IMAGE_METADATA_MISSING": (Severity.ERROR, "an image has no parallel .txt metadata file"),
    "METADATA_INVALID": (Severity.ERROR, "a metadata .txt file cannot be read or lacks the voxel size"),
    "VOXEL_SIZE_MISMATCH": (Severity.ERROR, "the voxel size in the .txt differs from the NIfTI header"),
    "METADATA_MISMATCH": (Severity.ERROR, "the dimensions or orientation in the .txt differ from the NIfTI header"),
    "CONVENTIONS_VERSION_UNKNOWN": (Severity.WARNING, "written with a later, unknown minor conventions version"),
    "NIFTI_UNREADABLE": (Severity.ERROR, "a NIfTI file cannot be read"),
    "NIFTI_HEADER_INVALID": (Severity.ERROR, "a NIfTI header is not sane (dimensions, voxel size, qform/sform)"),
    "NIFTI_NAN": (Severity.ERROR, "a volume holds NaN or infinite values"),
    "ANNOTATION_IMAGE_MISSING": (Severity.ERROR, "an annotation has no image"),
    "GRID_MISMATCH": (Severity.ERROR, "an annotation volume is not on its image's voxel grid"),
    "LABEL_TABLE_MISSING": (Severity.ERROR, "a region annotation has no label table CSV"),
    "LABEL_TABLE_INVALID": (Severity.ERROR, "a label table cannot be read"),
    "STRUCTURE_UNKNOWN": (Severity.ERROR, "a label table names a structure that is not in the RadLex registry"),
    "LABEL_NOT_IN_TABLE": (Severity.ERROR, "a label volume holds a value that its table does not list"),
    "LABEL_NOT_IN_VOLUME": (Severity.WARNING, "a label table lists a structure absent from the volume"),
    "LABEL_VOLUME_NOT_INTEGER": (Severity.ERROR, "a label volume holds non-integer values"),
    "UNCERTAINTY_OUT_OF_RANGE": (Severity.ERROR, "an uncertainty volume has values outside [0, 1]"),
    "UNCERTAINTY_LABEL_UNKNOWN": (Severity.ERROR, "a per-structure volume's label maps to no known structure"),
    "LANDMARK_FILE_INVALID": (Severity.ERROR, "a landmark file cannot be read"),
    "LANDMARK_ID_DUPLICATE": (Severity.ERROR, "a landmark ID occurs twice in one file"),
    "LANDMARK_COVARIANCE_INVALID": (Severity.ERROR, "a landmark covariance is not symmetric positive semi-definite"),
    "LANDMARK_OUTSIDE_IMAGE": (Severity.ERROR, "a landmark lies outside its image"),
    "LANDMARK_ID_UNREGISTERED": (Severity.WARNING, "a landmark ID is not in the landmark registry"),
}

#: Volumes may sit this far (mm) from their image grid and still match.
GRID_TOLERANCE_MM = 1e-3
#: How far qform and sform may disagree beyond what the qform's float32 quaternion cannot hold (mm).
QFORM_SFORM_TOLERANCE_MM = 1e-2
#: Relative tolerance between the .txt voxel size and the header's.
VOXEL_SIZE_TOLERANCE = 1e-4
#: Landmarks may lie this many voxels beyond the outermost voxel centres (half a voxel = the image's edge).
LANDMARK_MARGIN_VOXELS = 0.5


class ConfigError(VisceralError):
    """The validator configuration file is wrong."""


@dataclass(frozen=True)
class Finding:
    """One problem: stable code, severity, file (relative to the data set) and reason."""

    code: str
    severity: Severity
    file: str
    message: str

    def to_text(self) -> str:
        return f"{self.severity.value.upper():7} {self.code}: {self.file}: {self.message}"


@dataclass
class ValidationReport:
    """All findings of a run, and what was checked."""

    root: str
    findings: List[Finding] = field(default_factory=list)
    files: int = 0
    images: int = 0
    annotations: int = 0
    #: which executor ran the voxel checks, its workers, tasks, retries and throughput
    execution: Dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> List[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> List[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def codes(self) -> List[str]:
        """The codes found, sorted (handy in tests)."""
        return sorted(f.code for f in self.findings)

    def to_json(self) -> str:
        return json.dumps(
            {
                "dataset": self.root,
                "summary": {"files": self.files, "images": self.images, "annotations": self.annotations,
                            "errors": len(self.errors), "warnings": len(self.warnings)},
                "findings": [{**asdict(f), "severity": f.severity.value} for f in self.findings],
                "execution": self.execution,
            },
            indent=2,
        )

    def to_text(self) -> str:
        lines = [f.to_text() for f in self.findings]
        lines.append(
            f"{self.root}: {self.files} files, {self.images} images, {self.annotations} annotations: "
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        )
        if self.execution:
            lines.append(execution_line(self.execution, "checks"))
        return "\n".join(lines)


@dataclass
class ValidatorConfig:
    """What a config file may set.

    Attributes:
        severity: issue code -> severity override.
        landmark_registry: landmark IDs that count as registered (default: the shipped registry).
    """

    severity: Dict[str, Severity] = field(default_factory=dict)
    landmark_registry: Optional[Dict[int, RegisteredLandmark]] = None


def load_config(path: PathLike) -> ValidatorConfig:
    """Read a validator config (JSON)::

        {"severity": {"ORPHAN_FILE": "ignore", "LANDMARK_ID_UNREGISTERED": "error"},
         "landmark_registry": "my_landmarks.csv"}

    ``landmark_registry`` (optional) is a CSV ``id,name,description,source``, relative to the config file.

    Raises:
        ConfigError: unreadable JSON, unknown keys, unknown codes or severities, bad registry.
    """
    data = read_json_object(path, "config", ConfigError)
    unknown = sorted(set(data) - {"severity", "landmark_registry"})
    if unknown:
        raise ConfigError(f"{path}: unknown config key(s) {', '.join(map(repr, unknown))}; expected 'severity', 'landmark_registry'")
    severity = data.get("severity", {})
    if not isinstance(severity, dict):
        raise ConfigError(f"{path}: 'severity' must map issue codes to error/warning/ignore")
    config = ValidatorConfig()
    for code, value in severity.items():
        if code not in ISSUE_CODES:
            raise ConfigError(f"{path}: unknown issue code {code!r}")
        try:
            config.severity[code] = Severity(str(value).lower())
        except ValueError:
            raise ConfigError(f"{path}: severity of {code} must be error, warning or ignore, not {value!r}") from None
    if "landmark_registry" in data:
        registry_path = Path(path).parent / str(data["landmark_registry"])
        try:
            config.landmark_registry = read_landmark_registry(registry_path)
        except FileFormatError as exc:
            raise ConfigError(f"{path}: landmark_registry: {exc}") from None
    return config


# -- scanning -------------------------------------------------------------------------------------------

_DATA_EXTENSIONS = (".nii.gz", ".nii", ".csv", ".txt", ".fcsv")


@dataclass
class _Group:
    """The files of one image (same folder, subject, acquisition, modality, body region)."""

    image: Optional[Path] = None
    image_name: Optional[VisceralName] = None
    metadata: Optional[Path] = None
    regions: Dict[int, Path] = field(default_factory=dict)  # annotator -> label volume
    tables: Dict[int, Path] = field(default_factory=dict)  # annotator -> label table
    label_volumes: List[Tuple[VisceralName, Path]] = field(default_factory=list)
    landmarks: List[Tuple[VisceralName, Path]] = field(default_factory=list)
    others: List[Path] = field(default_factory=list)  # files named for this image but of no role


def _scan(root: Path, emit: Callable[[str, Path, str], None]) -> Tuple[Dict[tuple, _Group], int]:
    groups: Dict[tuple, _Group] = {}
    count = 0
    readme = False
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file_name in sorted(files):
            path = Path(folder) / file_name
            count += 1
            if file_name.startswith(TEMP_PREFIX):
                emit("TEMP_FILE_LEFT", path, "left by an interrupted write; delete it and re-run the step that made it")
                continue
            if file_name.startswith("."):
                count -= 1
                continue
            if file_name.lower() == README_NAME.lower():
                readme = readme or Path(folder) == root
                continue
            if not file_name.lower().endswith(_DATA_EXTENSIONS):
                emit("ORPHAN_FILE", path, "not a data-set file type (.nii.gz, .nii, .txt, .csv, .fcsv)")
                continue
            try:
                name = parse_name(file_name)
            except InvalidNameError as exc:
                emit("NAME_INVALID", path, str(exc).split(": ", 1)[-1])
                continue
            key = (folder, name.subject, name.acquisition, name.modality, name.body_region)
            group = groups.setdefault(key, _Group())
            _assign(group, name, path)
    if not readme:
        emit("DATASET_README_MISSING", root / README_NAME, "add a plain-text README.txt (visceral writes one with the data set)")
    return groups, count


def _assign(group: _Group, name: VisceralName, path: Path) -> None:
    ext = name.extension
    if name.kind is FileKind.IMAGE:
        if name.is_volume:
            group.image, group.image_name = path, name
        elif ext == ".txt":
            group.metadata = path
        else:
            group.others.append(path)
    elif name.kind is FileKind.REGION:
        if name.is_volume:
            group.regions[name.annotator] = path
        elif ext == ".csv":
            group.tables[name.annotator] = path
        else:
            group.others.append(path)
    elif name.kind is FileKind.REGION_LABEL:
        if name.is_volume:
            group.label_volumes.append((name, path))
        else:
            group.others.append(path)
    elif ext in (".csv", ".fcsv", ".nii"):  # ".nii" for the seed's typo; read as CSV
        group.landmarks.append((name, path))
    else:
        group.others.append(path)


# -- data checks (run in worker processes; plain arguments, findings as tuples) -----------------------------


def _check_label_volume(path: str, table_entries: Optional[Tuple[Tuple[str, int], ...]]) -> List[Tuple[str, str, str]]:
    out: List[Tuple[str, str, str]] = []
    try:
        labels = read_nifti_voxels(path)
    except FileFormatError as exc:
        return [("NIFTI_UNREADABLE", path, exc.reason)]
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)):
            return [("NIFTI_NAN", path, "label volume holds NaN or infinite values")]
        if not np.all(labels == np.round(labels)):
            return [("LABEL_VOLUME_NOT_INTEGER", path, "label volume holds non-integer values")]
    present = {int(v) for v in np.unique(labels) if v != 0}
    if table_entries is not None:
        listed = {v: n for n, v in table_entries}
        missing = sorted(present - set(listed))
        if missing:
            out.append(("LABEL_NOT_IN_TABLE", path, f"label value(s) {', '.join(map(str, missing))} are in the volume but not in the label table"))
        absent = [f"{listed[v]} ({v})" for v in sorted(set(listed) - present)]
        if absent:
            out.append(("LABEL_NOT_IN_VOLUME", path, f"listed but absent from the volume: {', '.join(absent)}"))
    return out


def _check_uncertainty_volume(path: str) -> List[Tuple[str, str, str]]:
    try:
        values = read_nifti_voxels(path)
    except FileFormatError as exc:
        return [("NIFTI_UNREADABLE", path, exc.reason)]
    values = values.astype(np.float64, copy=False)
    if not np.all(np.isfinite(values)):
        return [("NIFTI_NAN", path, "uncertainty volume holds NaN or infinite values")]
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if low < 0.0 or high > 1.0:
        return [("UNCERTAINTY_OUT_OF_RANGE", path, f"values span [{low:g}, {high:g}], expected [0, 1]")]
    return []


def _check_image_voxels(path: str) -> List[Tuple[str, str, str]]:
    """An image's voxel data: all there (a file cut short is unreadable), and finite where it is float."""
    try:
        values = read_nifti_voxels(path)
    except FileFormatError as exc:
        return [("NIFTI_UNREADABLE", path, exc.reason)]
    if values.dtype.kind != "f":
        return []
    bad = int(np.count_nonzero(~np.isfinite(values)))
    return [("NIFTI_NAN", path, f"{bad} voxel(s) are NaN or infinite")] if bad else []


# -- the validator ------------------------------------------------------------------------------------------


class _Validator:
    def __init__(self, root: Path, config: ValidatorConfig) -> None:
        self.root = root
        self.config = config.severity
        self.landmark_ids = config.landmark_registry if config.landmark_registry is not None else landmark_registry()
        self.report = ValidationReport(str(root))
        self.tasks: List[Tuple[Callable, tuple]] = []
        self.geometry_cache: Dict[Path, Optional[ImageGeometry]] = {}
        self._annotation_paths: set = set()

    def emit(self, code: str, path: Union[Path, str], message: str) -> None:
        severity = self.config.get(code, ISSUE_CODES[code][0])
        if severity is Severity.IGNORE:
            return
        try:
            rel = Path(path).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            rel = str(path)
        self.report.findings.append(Finding(code, severity, rel, message))

    # header-level checks of one NIfTI file; returns its grid or None
    def header(self, path: Path) -> Optional[ImageGeometry]:
        if path in self.geometry_cache:
            return self.geometry_cache[path]
        geometry = None
        try:
            hdr = read_nifti_header(path)
        except FileFormatError as exc:
            self.emit("NIFTI_UNREADABLE", path, exc.reason)
        else:
            problems = []
            if hdr.dim[0] != 3 and not (hdr.dim[0] in (4, 5) and all(d == 1 for d in hdr.dim[4 : hdr.dim[0] + 1])):
                problems.append(f"expected a 3D volume, dim = {list(hdr.dim[: hdr.dim[0] + 1])}")
            if any(not (p > 0 and np.isfinite(p)) for p in hdr.pixdim[1:4]):
                problems.append(f"voxel size (pixdim) must be positive, is {list(hdr.pixdim[1:4])}")
            if hdr.qform_code <= 0 and hdr.sform_code <= 0:
                problems.append("neither qform nor sform is set (qform_code = sform_code = 0)")
            for name, code, matrix in (("qform", hdr.qform_code, hdr.qform), ("sform", hdr.sform_code, hdr.sform)):
                if code not in range(0, 5):
                    problems.append(f"{name}_code {code} is not a NIfTI-1 code (0 to 4)")
                elif code > 0 and not np.all(np.isfinite(matrix)):
                    problems.append(f"the {name} is not finite")
            if hdr.qform_code > 0 and hdr.sform_code > 0 and not problems:
                corners = np.column_stack([corner_indices(hdr.shape), np.ones(8)])
                gap = float(np.max(np.abs(corners @ hdr.qform.T - corners @ hdr.sform.T)))
                allowed = QFORM_SFORM_TOLERANCE_MM + qform_storage_gap_mm(hdr)  # what the float32 quaternion cannot hold
                if gap > allowed:
                    problems.append(f"qform and sform disagree by up to {gap:.3g} mm (their storage explains {allowed:.3g} mm)")
            for problem in problems:
                self.emit("NIFTI_HEADER_INVALID", path, problem)
            if not problems:
                try:
                    geometry = read_geometry(path)
                except FileFormatError as exc:
                    self.emit("NIFTI_UNREADABLE", path, exc.reason)
                if geometry is not None and path not in self._annotation_paths:
                    self.tasks.append((_check_image_voxels, (str(path),)))
        self.geometry_cache[path] = geometry
        return geometry

    def grid_matches(self, path: Path, image_geometry: Optional[ImageGeometry]) -> bool:
        geometry = self.header(path)
        if geometry is None or image_geometry is None:
            return False
        if not geometry.same_grid(image_geometry, GRID_TOLERANCE_MM):
            self.emit("GRID_MISMATCH", path, f"grid {geometry.shape} at {tuple(round(o, 3) for o in geometry.origin_lps)} "
                      f"spacing {tuple(round(s, 4) for s in geometry.spacing_mm)} differs from the image's "
                      f"{image_geometry.shape} at {tuple(round(o, 3) for o in image_geometry.origin_lps)} "
                      f"spacing {tuple(round(s, 4) for s in image_geometry.spacing_mm)}")
            return False
        return True

    def check_group(self, group: _Group) -> None:
        self._annotation_paths = set(group.regions.values()) | {p for _, p in group.label_volumes}
        image_geometry = None
        if group.image is not None:
            self.report.images += 1
            image_geometry = self.header(group.image)
            self.check_metadata(group, image_geometry)
        elif group.metadata is not None:
            self.emit("ORPHAN_FILE", group.metadata, "metadata file without its image volume")
        annotations = list(group.regions.values()) + [p for _, p in group.label_volumes] + [p for _, p in group.landmarks]
        self.report.annotations += len(group.regions) + len({n.annotator for n, _ in group.label_volumes}) + len(group.landmarks)
        if group.image is None:
            for path in annotations:
                self.emit("ANNOTATION_IMAGE_MISSING", path, "no image volume with the same subject, acquisition and modality in this folder")
        for path in group.others:
            self.emit("ORPHAN_FILE", path, "a file type this kind of data-set file does not have")
        registry = default_registry()
        tables: Dict[int, Optional[LabelTable]] = {}
        for annotator, path in sorted(group.tables.items()):
            try:
                table = read_label_table(path)
            except FileFormatError as exc:
                self.emit("LABEL_TABLE_INVALID", path, str(exc).split(": ", 1)[-1])
                tables[annotator] = None
                continue
            tables[annotator] = table
            for structure in table.names():
                try:
                    registry.lookup(structure)
                except UnknownStructureError as exc:
                    self.emit("STRUCTURE_UNKNOWN", path, str(exc))
        uses_table = set(group.regions) | {n.annotator for n, _ in group.label_volumes}
        for annotator, path in group.tables.items():
            if annotator not in uses_table:
                self.emit("ORPHAN_FILE", path, "label table without a region annotation volume")
        for annotator, path in sorted(group.regions.items()):
            if annotator not in group.tables:
                self.emit("LABEL_TABLE_MISSING", path, f"expected {parse_name(path).with_extension('.csv').format()} beside it")
            matches = self.grid_matches(path, image_geometry) if group.image is not None else self.header(path) is not None
            if matches:
                table = tables.get(annotator)
                self.tasks.append((_check_label_volume, (str(path), table.entries if table is not None else None)))
        for name, path in sorted(group.label_volumes, key=lambda e: str(e[1])):
            table = tables.get(name.annotator)
            known = name.label in table.labels() if table is not None else name.label in {s.radlex_id for s in registry}
            if not known:
                where = "its label table" if table is not None else "the RadLex registry (as a RadLex ID)"
                self.emit("UNCERTAINTY_LABEL_UNKNOWN", path, f"label {name.label} is not in {where}")
            matches = self.grid_matches(path, image_geometry) if group.image is not None else self.header(path) is not None
            if matches:
                self.tasks.append((_check_uncertainty_volume, (str(path),)))
        for name, path in group.landmarks:
            self.check_landmarks(name, path, image_geometry)

    def check_metadata(self, group: _Group, geometry: Optional[ImageGeometry]) -> None:
        if group.metadata is None:
            self.emit("IMAGE_METADATA_MISSING", group.image, f"expected {group.image_name.with_extension('.txt').format()} beside it")
            return
        try:
            meta = read_metadata(group.metadata)
        except FileFormatError as exc:
            self.emit("METADATA_INVALID", group.metadata, str(exc).split(": ", 1)[-1])
            return
        if not is_known(meta.conventions_version):
            self.emit("CONVENTIONS_VERSION_UNKNOWN", group.metadata, f"conventions version {meta.conventions_version} is newer than this validator knows; unknown keys were not checked")
        if geometry is not None and not np.allclose(meta.voxel_size_mm, geometry.spacing_mm, rtol=VOXEL_SIZE_TOLERANCE, atol=0):
            self.emit("VOXEL_SIZE_MISMATCH", group.metadata, f"voxel_size_mm {list(meta.voxel_size_mm)} but the NIfTI header says {[round(s, 6) for s in geometry.spacing_mm]}")
        if geometry is not None:
            header = {"dimensions": " ".join(str(n) for n in geometry.shape), "orientation": orientation_code(geometry)}
            for key, value in header.items():
                written = " ".join(str(meta.fields.get(key, "")).split())
                if written and written.upper() != value:
                    self.emit("METADATA_MISMATCH", group.metadata, f"{key} {written} but the NIfTI header says {value}")

    def check_landmarks(self, name: VisceralName, path: Path, geometry: Optional[ImageGeometry]) -> None:
        if name.extension == ".fcsv":
            try:
                frame, points = read_fcsv(path)
            except FileFormatError as exc:
                self.emit("LANDMARK_FILE_INVALID", path, str(exc).split(": ", 1)[-1])
                return
            if geometry is not None:
                for point in points:
                    ijk = geometry.world_to_index(point.position, frame)
                    if not geometry.contains_index(ijk, LANDMARK_MARGIN_VOXELS):
                        self.emit("LANDMARK_OUTSIDE_IMAGE", path, f"landmark {point.label!r} at {frame} {point.position} is outside the image")
            return
        try:
            landmarks = read_landmarks(path, strict=False)
        except FileFormatError as exc:
            self.emit("LANDMARK_FILE_INVALID", path, str(exc).split(": ", 1)[-1])
            return
        seen = set()
        registered = self.landmark_ids
        for lm in landmarks:
            if lm.landmark_id in seen:
                self.emit("LANDMARK_ID_DUPLICATE", path, f"landmark ID {lm.landmark_id} occurs more than once")
            seen.add(lm.landmark_id)
            if lm.covariance is not None:
                problem = check_covariance(lm.covariance)
                if problem:
                    self.emit("LANDMARK_COVARIANCE_INVALID", path, f"landmark {lm.landmark_id}: {problem}")
            if lm.landmark_id not in registered:
                self.emit("LANDMARK_ID_UNREGISTERED", path, f"landmark ID {lm.landmark_id} is not in the landmark registry")
            if geometry is not None:
                ijk = np.asarray(lm.position_mm) / np.asarray(geometry.spacing_mm)
                if not geometry.contains_index(ijk, LANDMARK_MARGIN_VOXELS):
                    self.emit("LANDMARK_OUTSIDE_IMAGE", path, f"landmark {lm.landmark_id} at {lm.position_mm} mm is outside the image extent "
                              f"{tuple(round((n - 0.5) * s, 3) for n, s in zip(geometry.shape, geometry.spacing_mm))} mm")

    def run_tasks(self, executor: Executor, progress: Optional[Progress]) -> None:
        for done, (task, outcome) in enumerate(executor.unordered(_run_check, self.tasks), start=1):
            try:
                found = outcome()
            except Exception as exc:  # noqa: BLE001 - its worker was lost (killed, out of memory): one finding, the run goes on
                found = [("NIFTI_UNREADABLE", task[1][0], f"its voxel data could not be checked: {type(exc).__name__}: {one_line(exc)[:300]}")]
            for code, path, message in found:
                self.emit(code, path, message)
            if progress:
                progress(done, len(self.tasks), "voxel checks")


def _run_check(task: Tuple[Callable, tuple]) -> List[Tuple[str, str, str]]:
    check, args = task
    return check(*args)


def validate_dataset(
    root: PathLike,
    config: Optional[ValidatorConfig] = None,
    jobs: Union[int, Executor] = 1,
    progress: Optional[Progress] = None,
) -> ValidationReport:
    """Validate the data set in folder ``root``; see the module docstring.

    Args:
        root: data-set folder.
        config: severity overrides and landmark registry (see :func:`load_config`).
        jobs: worker processes for the voxel-data checks, or the executor to run them on
            (:mod:`visceral.parallel`).
        progress: called as ``progress(done, total, stage)``.
    """
    root = Path(root)
    if not root.is_dir():
        raise VisceralError(f"{root}: not a folder")
    validator = _Validator(root, config or ValidatorConfig())
    groups, count = _scan(root, validator.emit)
    validator.report.files = count
    for n, key in enumerate(sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3] or "", k[4] or "")), start=1):
        validator.check_group(groups[key])
        if progress:
            progress(n, len(groups), "headers")
    started = time.perf_counter()
    with running_on(jobs) as executor:
        mark = executor.mark()
        validator.run_tasks(executor, progress)
        validator.report.execution = executor.summary(len(validator.tasks), "checks", time.perf_counter() - started, mark)
    order = {code: i for i, code in enumerate(ISSUE_CODES)}
    validator.report.findings.sort(key=lambda f: (f.file, order[f.code], f.message))
    return validator.report
