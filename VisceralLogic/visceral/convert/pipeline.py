"""``visceral convert INPUT OUTPUT``: (de-identified) DICOM to a data set laid out by the conventions.

Steps: read every header; group and sort slices into stacks (:mod:`visceral.convert.stacks`);
number subjects and acquisitions; convert each stack (pixels, rescale, geometry) and write
``subjectNN_A_modalityXX.nii.gz`` with its parallel ``.txt`` (:func:`visceral.dataset.write_image`);
write the data-set ``README.txt``.  Every refused stack or file has a report code; the batch goes on.

Names (docs/CONVENTIONS.md, "Conversion"):

- subject number: from the de-identification pseudonym in Patient ID (``subject07`` -> 7); a
  Patient ID that is not a pseudonym gets the next free number (in Patient ID order) and a warning;
- acquisition number: per subject, stacks ordered by study date and time, series number, series
  UID, then split label (echo, temporal position), numbered from 1.  Stable for the same input.

The report (JSON) goes beside the data set, ``<OUTPUT>.convert.json``: it names input files.
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
from pydicom.errors import InvalidDicomError

from visceral import __version__, problems
from visceral.conventions.frames import ImageGeometry
from visceral.conventions.metadata import read_metadata
from visceral.conventions.names import FileKind, VisceralName, parse_name
from visceral.convert.dicomio import MosaicError, SeriesInfo, load_stack_voxels, read_header
from visceral.convert.stacks import (
    Frame,
    Stack,
    StackError,
    build_stacks,
    check_geometry,
    correct_tilt,
    direction_lps,
    equalize_spacing,
    in_plane_grid,
    split_order,
    split_repeated_positions,
)
from visceral.dataset import write_dataset_readme, write_image
from visceral.conventions.names import pseudonym, subject_number
from visceral.errors import VisceralError, one_line
from visceral.fileio import TEMP_PREFIX, atomic_write_text
from visceral.parallel import Executor, batches, isolating, running_on
from visceral.types import PathLike, Progress

__all__ = ["convert", "ConvertReport", "Problem", "PROBLEM_CODES"]

#: Every report code: what it means, and whether it refuses the stack/file (True) or only warns.
PROBLEM_CODES: Dict[str, Tuple[str, bool]] = {
    "NOT_DICOM": ("not a DICOM file; skipped", False),
    "UNREADABLE": ("a DICOM file that cannot be read", True),
    "UNSUPPORTED_OBJECT": ("not a CT/MR image object, or one this converter cannot read", True),
    "NO_SPACING": ("no usable voxel size (single slice, missing Pixel Spacing or orientation)", True),
    "DUPLICATE_POSITION": ("two slices at one position", True),
    "GANTRY_TILT": ("slices step off the slice normal (gantry tilt)", True),
    "MISSING_SLICE": ("a slice is missing from an otherwise regular stack", True),
    "UNEVEN_SPACING": ("slice spacing is not uniform", True),
    "MOSAIC": ("a Siemens mosaic (slices tiled in one image), not unpacked", True),
    "SPACING_EQUALIZED": ("uneven slice steps resampled at the smallest step (linear interpolation)", False),
    "TILT_CORRECTED": ("a gantry-tilted stack resampled onto the orthogonal grid (linear interpolation)", False),
    "SPLIT_VOLUMES": ("a 2D multi-volume series written as one volume per repetition, in acquisition order", False),
    "MOSAIC_ORDER_ASSUMED": ("a Siemens mosaic's slice order is in the private header de-identification removes: taken as "
                             "Siemens' default (ascending); a descending acquisition would be reversed along the slice axis", False),
    "NAME_TAKEN": ("a volume whose name another volume of the run has (never written over it)", True),
    "DUPLICATE_INSTANCE": ("files that repeat an image (the same SOP Instance UID) of a series: the first of each is used", False),
    "SPLIT_INTERLEAVED": ("a series split by a header value into volumes whose slices interleave: the value may change "
                          "from slice to slice rather than tell volumes apart", False),
    "PIXEL_DECODE_FAILED": ("pixel data cannot be decoded", True),
    "NOT_PSEUDONYMIZED": ("Patient ID is not a Visceral pseudonym; numbered in order", False),
    "NUMBERED_AFTER_EARLIER": ("the input has series that sort before volumes converted earlier: those keep their acquisition "
                               "numbers, the new ones are numbered after them", False),
}


#: Files per header-reading task (a header takes about a millisecond to read)
SCAN_CHUNK = 128


class Problem(problems.Problem):
    """One line of the conversion report (its codes: :data:`PROBLEM_CODES`)."""

    REFUSING = {code: refused for code, (_, refused) in PROBLEM_CODES.items()}


@dataclass
class Converted:
    """One volume written (or found from an earlier run)."""

    name: str
    series_uid: str
    label: str
    shape: Tuple[int, int, int]
    spacing_mm: Tuple[float, float, float]
    dtype: str
    slices: int
    earlier: bool = False


@dataclass
class ConvertReport:
    """What a conversion run did."""

    input: str
    output: str
    volumes: List[Converted] = field(default_factory=list)
    problems: List[Problem] = field(default_factory=list)
    #: which executor ran, its workers, tasks, retries and throughput (:meth:`visceral.parallel.Executor.summary`)
    execution: Dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing was refused."""
        return not any(p.refused for p in self.problems)

    def to_json(self) -> str:
        data = asdict(self)
        data["ok"] = self.ok
        return json.dumps(data, indent=1)


@dataclass(frozen=True)
class _Job:
    output: str
    name: VisceralName
    stack: Stack
    fields: Tuple[Tuple[str, str], ...]


def _read_one(path: Path, rel: str) -> Union[Problem, Tuple[SeriesInfo, List[Frame]]]:
    """A file's series and frames, or the problem that makes it unusable (one report line)."""
    try:
        return read_header(str(path))
    except InvalidDicomError:
        return Problem("NOT_DICOM", rel, "no DICM preamble and file meta")
    except MosaicError as exc:
        return Problem("MOSAIC", rel, str(exc))
    except ValueError as exc:
        return Problem("UNSUPPORTED_OBJECT", rel, str(exc))
    except Exception as exc:  # noqa: BLE001 - a broken file is one report line
        return Problem("UNREADABLE", rel, f"{type(exc).__name__}: {exc}")


def _read_chunk(chunk: List[Tuple[Path, str]]) -> List[Union[Problem, Tuple[SeriesInfo, List[Frame]]]]:
    return [_read_one(path, rel) for path, rel in chunk]


def _scan(paths: List[Path], root: Path, problems: List[Problem], executor: Executor,
          progress: Optional[Progress]) -> Tuple[Dict[str, SeriesInfo], Dict[str, List[Frame]]]:
    """Every file's header (on the executor's workers), gathered in path order."""
    named = [(path, path.relative_to(root).as_posix()) for path in paths]
    found: Dict[Path, Union[Problem, Tuple[SeriesInfo, List[Frame]]]] = {}
    for chunk, outcome in isolating(executor, _read_chunk, batches(named, executor.workers, SCAN_CHUNK)):
        try:
            found.update(zip((path for path, _ in chunk), outcome()))
        except Exception as exc:  # noqa: BLE001 - reading this file killed its worker, alone
            found[chunk[0][0]] = Problem("UNREADABLE", chunk[0][1], f"reading it, its worker was lost: {_one_line(exc)}")
        if progress:
            progress(len(found), len(paths), "reading headers")
    infos: Dict[str, SeriesInfo] = {}
    frames: Dict[str, List[Frame]] = defaultdict(list)
    refused: Dict[Tuple[str, str, str], List[str]] = {}  # the files of one folder refused alike are one line
    seen: Dict[Tuple[str, str], str] = {}  # (series, SOP Instance UID) -> the file that brought it first
    repeated: Dict[str, List[str]] = defaultdict(list)
    for path, rel in named:
        read = found[path]
        if isinstance(read, Problem):
            folder = read.where.rpartition("/")[0]
            refused.setdefault((folder, read.code, read.message), []).append(read.where)
        else:
            info, file_frames = read
            instance = file_frames[0].instance if file_frames else ""
            if instance and (info.series_uid, instance) in seen:  # the same image again (a second export): used once
                repeated[info.series_uid].append(rel)
                continue
            seen[(info.series_uid, instance)] = rel
            infos.setdefault(info.series_uid, info)
            frames[info.series_uid].extend(file_frames)
    for series_uid, files in repeated.items():
        problems.append(Problem("DUPLICATE_INSTANCE", f"series {infos[series_uid].series_number} ({series_uid})",
                                f"{len(files)} file(s) repeat an image of the series ({files[0]}{' ...' if len(files) > 1 else ''}): "
                                "the first file of each image is used"))
    for (folder, code, message), files in refused.items():
        where = files[0] if len(files) == 1 else f"{len(files)} files in {folder or '.'}/ ({files[0].rpartition('/')[2]} ...)"
        problems.append(Problem(code, where, message))
    return infos, frames


def _interleaved(stacks: List[Stack]) -> bool:
    """Whether a series' stacks share one orientation, have no slice position in common, and interleave
    along the normal or are one slice each (volumes told apart by echo, b-value... share their positions;
    a value that changes from slice to slice splits one volume into interleaved pieces)."""
    if len(stacks) < 2 or len({(s.frames[0].orientation, s.frames[0].rows, s.frames[0].columns) for s in stacks}) != 1:
        return False
    first = stacks[0].frames[0]
    normal = np.cross(*first.axes)
    positions = [sorted({round(float(np.dot(f.position, normal)), 3) for f in s.frames}) for s in stacks]
    every = [p for each in positions for p in each]
    if len(every) != len(set(every)):
        return False
    ranges = sorted((each[0], each[-1]) for each in positions)
    return all(len(each) == 1 for each in positions) or any(later[0] < earlier[1] for earlier, later in zip(ranges, ranges[1:]))


def _subjects(infos: Dict[str, SeriesInfo], problems: List[Problem]) -> Dict[str, int]:
    numbers: Dict[str, int] = {}
    others = set()
    for info in infos.values():
        number = subject_number(info.patient_id)
        if number is not None:
            numbers[info.patient_id] = number
        else:
            others.add(info.patient_id)
    next_free = max(numbers.values(), default=0) + 1
    for patient_id in sorted(others):
        numbers[patient_id] = next_free
        problems.append(Problem("NOT_PSEUDONYMIZED", pseudonym(next_free), "Patient ID is not a Visceral pseudonym (run visceral deidentify first); "
                                                                           f"numbered {pseudonym(next_free)}"))
        next_free += 1
    return numbers


def _written_volumes(output_dir: Path) -> Dict[int, Dict[Tuple[str, str], int]]:
    """The volumes an earlier run wrote: subject -> (source series UID, volume label) -> acquisition number."""
    found: Dict[int, Dict[Tuple[str, str], int]] = defaultdict(dict)
    for path in sorted(output_dir.glob("subject*.txt")):
        try:
            name = parse_name(path.name)
            fields = read_metadata(path).fields
        except VisceralError:
            continue
        if name.kind is FileKind.IMAGE and fields.get("source_series_uid"):
            found[name.subject][(fields["source_series_uid"], fields.get("source_volume", ""))] = name.acquisition
    return found


def _acquisitions(subject: int, volumes: List[Tuple[str, str]], written: Dict[Tuple[str, str], int],
                  problems: List[Problem]) -> Dict[Tuple[str, str], int]:
    """Acquisition numbers of a subject's ``volumes`` (series UID, volume label; in acquisition order): 1, 2, ...
    in that order -- unless volumes written earlier (``written``) would get other numbers (the input grew with
    series that sort before them): those keep theirs, and the new ones are numbered after them."""
    fresh = {volume: n for n, volume in enumerate(volumes, start=1)}
    if all(fresh.get(volume) == number for volume, number in written.items()):
        return fresh
    numbers = dict(written)
    following = max(written.values()) + 1
    for volume in volumes:
        if volume not in numbers:
            numbers[volume] = following
            following += 1
    problems.append(Problem("NUMBERED_AFTER_EARLIER", pseudonym(subject), f"{len(written)} volume(s) converted earlier keep their "
                                                                          f"acquisition numbers; {following - max(written.values()) - 1} new one(s) "
                                                                          "numbered after them"))
    return numbers


def _convert_one(job: _Job) -> Converted:
    stack = job.stack
    voxels = equalize_spacing(correct_tilt(load_stack_voxels(stack), stack), stack)
    first = stack.frames[0]
    (columns, rows), _, origin = in_plane_grid(stack)
    geometry = ImageGeometry((columns, rows, voxels.shape[0]), (first.pixel_spacing[1], first.pixel_spacing[0], stack.slice_spacing), origin,
                             direction_lps(stack))
    write_image(Path(job.output), job.name, voxels, geometry, OrderedDict(job.fields))
    return Converted(job.name.format(), stack.series_uid, stack.label, geometry.shape, geometry.spacing_mm, str(voxels.dtype), len(stack.frames))


def _one_line(exc: BaseException) -> str:
    """An error as one report line, the same from any process: no memory addresses (ITK names its objects by them)."""
    text = re.sub(r"0x[0-9a-fA-F]{6,}", "0x...", one_line(exc))
    return f"{type(exc).__name__}: {text[:400]}"


def convert(input_dir: PathLike, output_dir: PathLike, jobs: Union[int, Executor] = 1, progress: Optional[Progress] = None, report_path: Optional[PathLike] = None,
            strict: bool = False) -> ConvertReport:
    """Convert the DICOM tree ``input_dir`` into a data set in ``output_dir`` (see the module docstring).

    Volumes already in ``output_dir`` (with their ``.txt``) are kept, so an interrupted run resumes.
    ``strict`` refuses a gantry-tilted stack (``GANTRY_TILT``) instead of resampling it (original voxels only).
    ``jobs`` is a number of worker processes or the executor to run on (:mod:`visceral.parallel`).
    """
    started = time.perf_counter()
    input_dir, output_dir = Path(input_dir).resolve(), Path(output_dir).resolve()
    if not input_dir.is_dir():
        raise VisceralError(f"{input_dir}: input folder does not exist")
    output_dir.mkdir(parents=True, exist_ok=True)
    for leftover in output_dir.glob(f"{TEMP_PREFIX}*"):
        leftover.unlink()
    report = ConvertReport(str(input_dir), str(output_dir))
    paths = sorted(p for p in input_dir.rglob("*") if p.is_file())
    with running_on(jobs) as executor:
        return _convert(input_dir, output_dir, paths, report, executor, progress, report_path, strict, started)


def _convert(input_dir: Path, output_dir: Path, paths: List[Path], report: ConvertReport, executor: Executor, progress: Optional[Progress],
             report_path: Optional[PathLike], strict: bool, started: float) -> ConvertReport:
    mark = executor.mark()
    infos, frames = _scan(paths, input_dir, report.problems, executor, progress)
    subjects = _subjects(infos, report.problems)

    stacks: List[Tuple[SeriesInfo, Stack]] = []
    for uid, info in infos.items():
        if any(frame.tile is not None for frame in frames[uid]):
            report.problems.append(Problem("MOSAIC_ORDER_ASSUMED", f"series {info.series_number} ({uid})",
                                           "mosaic slices placed from the first tile along the normal Slice Location gives, in ascending "
                                           "order (Siemens' default); the private header that said so is gone: check the slice order "
                                           "of descending (H>>F) acquisitions"))
        split = build_stacks(uid, frames[uid])
        if _interleaved(split):
            report.problems.append(Problem("SPLIT_INTERLEAVED", f"series {info.series_number} ({uid})",
                                           f"split into {len(split)} volumes ({', '.join(s.label for s in split[:3])}{', ...' if len(split) > 3 else ''}) "
                                           "whose slices interleave along the normal, none at another's position: check that header value"))
        for stack in split:
            where = f"series {info.series_number} ({uid})" + (f" [{stack.label}]" if stack.label else "")
            try:
                stacks.append((info, check_geometry(stack, correct_tilt=not strict, equalize=not strict)))
            except StackError as exc:
                volumes = split_repeated_positions(stack) if exc.code == "DUPLICATE_POSITION" else None
                if not volumes:
                    report.problems.append(Problem(exc.code, where, str(exc)))
                    continue
                report.problems.append(Problem("SPLIT_VOLUMES", where, f"every slice position occurs {len(volumes)} times: "
                                                                       f"{len(volumes)} volumes in acquisition order"))
                for volume in volumes:
                    try:
                        stacks.append((info, check_geometry(volume, correct_tilt=not strict, equalize=not strict)))
                    except StackError as inner:
                        report.problems.append(Problem(inner.code, f"{where} [{volume.label}]", str(inner)))
    for info, stack in stacks:
        if stack.source_distances_mm is not None:
            steps = np.diff(stack.source_distances_mm)
            report.problems.append(Problem("SPACING_EQUALIZED", f"series {info.series_number} ({info.series_uid})",
                                           f"slice steps {steps.min():.4g} to {steps.max():.4g} mm: resampled at {stack.slice_spacing:.4g} mm "
                                           "along the stack (linear interpolation); --strict refuses instead"))
        if stack.tilt_shift_mm is not None:
            report.problems.append(Problem("TILT_CORRECTED", f"series {info.series_number} ({info.series_uid})",
                                           f"gantry tilt of {stack.tilt_deg:.2f} degrees: slices resampled in plane onto the "
                                           "orthogonal grid (linear interpolation); --strict refuses instead"))
    by_subject: Dict[int, List[Tuple[SeriesInfo, Stack]]] = defaultdict(list)
    for info, stack in stacks:
        by_subject[subjects[info.patient_id]].append((info, stack))
    work: List[_Job] = []
    written = _written_volumes(output_dir)
    for subject, items in sorted(by_subject.items()):
        items.sort(key=lambda it: (it[0].study_date, it[0].study_time, it[0].series_number, it[0].series_uid, split_order(it[1].split_key)))
        numbers = _acquisitions(subject, [(info.series_uid, stack.label) for info, stack in items], written.get(subject, {}), report.problems)
        named: set = set()
        for info, stack in items:
            acquisition = numbers[(info.series_uid, stack.label)]
            if acquisition in named:  # two volumes that would be one file: the second is refused, never written over the first
                report.problems.append(Problem("NAME_TAKEN", f"series {info.series_number} ({info.series_uid}) [{stack.label}]",
                                               f"its name, acquisition {acquisition}, is another volume's of this run"))
                continue
            named.add(acquisition)
            name = VisceralName(subject, acquisition, info.modality)
            fields = [("modality", info.modality), ("patient_age", info.patient_age), ("patient_sex", info.patient_sex),
                      ("study_description", info.study_description), ("series_description", info.series_description),
                      ("series_number", str(info.series_number)), ("source_series_uid", info.series_uid), ("source_volume", stack.label)]
            fields += [(k.replace(" ", "_"), v) for k, v in stack.split_key if v not in (None, "")]
            if stack.source_distances_mm is not None:
                steps = np.diff(stack.source_distances_mm)
                fields += [("slice_spacing_equalized", f"uneven steps {steps.min():.4g} to {steps.max():.4g} mm resampled at "
                                                       f"{stack.slice_spacing:.4g} mm, linear interpolation along the stack")]
            if stack.tilt_shift_mm is not None:
                fields += [("gantry_tilt_deg", f"{stack.tilt_deg:.3f}"),
                           ("tilt_correction", "slices resampled in plane onto the orthogonal grid, linear interpolation")]
            fields += [("slices", str(len(stack.frames))), ("converted_by", f"visceral {__version__}")]
            volume = output_dir / name.format()
            if volume.exists() and (output_dir / name.with_extension(".txt").format()).exists():
                first = stack.frames[0]
                (columns, rows), _, _ = in_plane_grid(stack)
                report.volumes.append(Converted(name.format(), info.series_uid, stack.label, (columns, rows, len(stack.frames)),
                                                (first.pixel_spacing[1], first.pixel_spacing[0], stack.slice_spacing), "", len(stack.frames), True))
                continue
            work.append(_Job(str(output_dir), name, stack, tuple((k, v) for k, v in fields if v)))

    failed: List[Problem] = []
    for n, (job, outcome) in enumerate(executor.unordered(_convert_one, work), start=1):
        try:
            report.volumes.append(outcome())
        except Exception as exc:  # noqa: BLE001 - reported per series
            failed.append(Problem("PIXEL_DECODE_FAILED", f"series {job.stack.series_uid}" + (f" [{job.stack.label}]" if job.stack.label else ""),
                                  _one_line(exc)))
        if progress:
            progress(n, len(work), "converting")
    report.execution = executor.summary(len(work), "series", time.perf_counter() - started, mark)
    for leftover in output_dir.glob(f"{TEMP_PREFIX}*"):  # of an attempt whose worker was lost (its series was written again)
        leftover.unlink()
    # In series order, whichever worker finished first.
    report.problems += sorted(failed, key=lambda p: p.where)
    report.volumes.sort(key=lambda v: v.name)
    write_dataset_readme(output_dir, title=output_dir.name, notes=[f"Converted by Visceral {__version__} from DICOM."])
    target = Path(report_path) if report_path else output_dir.parent / f"{output_dir.name}.convert.json"
    atomic_write_text(target, report.to_json())
    return report
