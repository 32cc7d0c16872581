"""``visceral deidentify INPUT OUTPUT``: the batch driver.

For every file of the input tree (any names; the input is never modified):

1. read it (not DICOM -> *skipped*; unreadable or truncated -> *failed*; DICOMDIR -> *skipped*);
2. keep only CT, Enhanced CT, MR and Enhanced MR image objects (others -> *dropped*, with the reason);
3. accept only uncompressed or lossless transfer syntaxes and no Lossy Image Compression = 01
   (else -> *refused*); apply the burned-in-annotation policy;
4. de-identify the header (:mod:`visceral.deid.rules`), pseudonym from the linkage table;
5. write it to a temporary file beside its final place, run the QA gate (:mod:`visceral.deid.qa`):
   conformance with ``dciodvfy`` (no error its input did not have) and the leak scan; only a file
   that passes is renamed into ``OUTPUT/subjectNN/<study UID>/<series UID>/<instance UID>.dcm``
   (*released*); otherwise it is deleted (*refused*).

Files already released by an earlier run are not redone (*released earlier*), so an interrupted run
resumes.  The secret key, the linkage table and the full reports (which name input files) go to a
private folder outside OUTPUT, by default ``<OUTPUT>.private/`` beside it.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any, Callable, Collection, Dict, Iterator, List, Optional, Tuple, Union

import pydicom
import pydicom.sequence
from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset

from visceral.deid.conformance import check as conformance_check
from visceral.deid.identifiers import (
    clean_dataset,
    find_in_bytes,
    found_in_kept_text,
)
from visceral.deid.identity import Linkage, SecretKey, check_private_location, is_inside
from visceral.deid.pixels import code_stream_kind, lossy_code_stream, lossy_reason, values_of
from visceral.deid.profile import Profile, load_profile
from visceral.deid.qa import (
    added_errors,
    conformance_errors,
    dciodvfy_path,
    decoded_values,
    repair_targets,
)
from visceral.deid.rawdicom import (
    MEDIA_STORAGE_SOP_INSTANCE_UID,
    PIXEL_DATA,
    SOP_INSTANCE_UID,
    RawFile,
    Unsupported,
    parse_file,
    with_file_meta,
)
from visceral.deid.rawpath import RawRewriter, Rewritten
from visceral.deid.rules import (
    DUMMY_TEXT,
    DUMMY_VALUES,
    HeaderContext,
    deidentify_header,
    patient_key_of,
)
from visceral.deid.tables import (
    KEPT_SOP_CLASSES,
    SEED_REMOVABLE_SOP_CLASSES,
    sop_class_name,
)
from visceral.errors import VisceralError, one_line
from visceral.fileio import TEMP_PREFIX, atomic_write_text, exclusive_lock, publish, write_dicom
from visceral.parallel import Execution, Executor, batches, execution_line, isolating, running_on
from visceral.types import PathLike, Progress

log = logging.getLogger("visceral.deid")

__all__ = ["deidentify", "DeidReport", "FileResult", "Fate", "FATES", "default_private_dir"]

class Fate(str, enum.Enum):
    """What can happen to an input file (the values are the report's words)."""

    RELEASED = "released"
    RELEASED_EARLIER = "released earlier"
    DROPPED = "dropped"
    REFUSED = "refused"
    SKIPPED = "skipped"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


#: Every fate, in report order.
FATES = tuple(Fate)
CONFORMANCE_MODES = ("all", "sample", "off")
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_NATIVE_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99")
#: What admission reads of a file (the raw path decodes just these).
_HEAD_TAGS = frozenset(tag_for_keyword(k) for k in (
    "SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID", "PatientName", "PatientID", "IssuerOfPatientID",
    "PatientBirthDate", "BurnedInAnnotation", "StudyInstanceUID", "SeriesInstanceUID", "SamplesPerPixel", "NumberOfFrames",
    "Rows", "Columns", "BitsAllocated", "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod",
    "RecognizableVisualFeatures", "DerivationDescription", "DerivationCodeSequence", "SourceImageSequence"))
_PREPASS_TAGS = ["PatientID", "IssuerOfPatientID", "PatientName", "PatientBirthDate", "StudyInstanceUID", "SeriesInstanceUID",
                 "SOPClassUID", "SOPInstanceUID"]


@dataclass
class FileResult:
    """The fate of one input file and everything done to it."""

    source: str
    fate: str
    reason: str = ""
    output: str = ""
    sop_class: str = ""
    transfer_syntax: str = ""
    subject: str = ""
    counts: Dict[str, Dict[str, int]] = field(default_factory=dict)
    conformance: str = ""
    new_errors: List[str] = field(default_factory=list)
    leaks: List[Dict[str, str]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    #: dciodvfy error lines that drove IOD repairs of this file
    repairs: List[str] = field(default_factory=list)
    #: kept attributes in which an identifier of the subject was overwritten ("Keyword (kind)")
    cleaned: List[str] = field(default_factory=list)


@dataclass
class DeidReport:
    """The audit report of one run (written as JSON and text to the private folder)."""

    input: str
    output: str
    profile: str
    private_dir: str
    conformance_mode: str
    files: List[FileResult] = field(default_factory=list)
    new_subjects: int = 0
    subjects: int = 0
    key_created: bool = False
    #: which executor ran, its workers, tasks, retries and throughput (:meth:`visceral.parallel.Executor.summary`)
    execution: Dict[str, Any] = field(default_factory=dict)
    #: False while the run goes on (the report is rewritten as results come in), True at its end
    finished: bool = False
    #: what a person should check though nothing was refused (one line each, no identifier in them)
    warnings: List[str] = field(default_factory=list)

    def fates(self) -> Counter:
        return Counter(f.fate for f in self.files)

    @property
    def ok(self) -> bool:
        """True when nothing was refused or failed (dropped and skipped files are by design)."""
        fates = self.fates()
        return fates[Fate.REFUSED] == 0 and fates[Fate.FAILED] == 0

    def action_totals(self) -> Dict[str, Dict[str, int]]:
        totals: Dict[str, Counter] = defaultdict(Counter)
        for f in self.files:
            for cls, actions in f.counts.items():
                totals[cls].update(actions)
        return {cls: dict(sorted(c.items())) for cls, c in sorted(totals.items())}

    def leak_count(self) -> int:
        """Files in which an identifier remained where it could not be cleaned (each was refused)."""
        return sum(1 for f in self.files if f.leaks)

    def cleaned_count(self) -> int:
        """Files released after an identifier was overwritten in a kept attribute."""
        return sum(1 for f in self.files if f.cleaned and f.fate == Fate.RELEASED)

    def to_json(self) -> str:
        # Shallow copies: every field holds JSON values already (dataclasses.asdict deep-copies them all).
        data = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "files"}
        data["files"] = [dict(vars(f)) for f in self.files]
        data["summary"] = {"fates": dict(self.fates()), "actions": self.action_totals(), "leaks": self.leak_count(), "cleaned": self.cleaned_count(), "ok": self.ok}
        return json.dumps(data, indent=1)

    def to_text(self) -> str:
        fates = self.fates()
        lines = [
            "Visceral de-identification report" + ("" if self.finished else " (the run goes on: files done so far)"),
            f"input:  {self.input}",
            f"output: {self.output}",
            f"profile: {self.profile}; conformance check: {self.conformance_mode}; private folder: {self.private_dir}",
            f"subjects: {self.subjects} ({self.new_subjects} new in this run)",
            "files: " + ", ".join(f"{n} {fate}" for fate in FATES if (n := fates[fate])),
            f"identity: cleaned in kept text of {self.cleaned_count()} released file(s); left in uncleanable bytes of "
            f"{self.leak_count()} file(s), all refused",
            execution_line(self.execution, "files"),
            *(f"warning: {w}" for w in self.warnings),
            "",
            "Actions per attribute class:",
        ]
        for cls, actions in self.action_totals().items():
            lines.append(f"  {cls}: " + ", ".join(f"{a} {n}" for a, n in actions.items()))
        lines += ["", "Files:"]
        for f in self.files:
            extra = f" -> {f.output}" if f.output else ""
            reason = f" ({f.reason})" if f.reason else ""
            lines.append(f"  {f.fate:16} {f.source}{extra}{reason}")
        return "\n".join(lines) + "\n"


def default_private_dir(output: PathLike) -> Path:
    """``<OUTPUT>.private`` beside the release folder."""
    output = Path(output).resolve()
    return output.parent / f"{output.name}.private"


@dataclass(frozen=True)
class _Run:
    """What every file of a run shares (sent to each worker process once)."""

    output_root: str
    staging_root: str
    profile: Profile
    key: bytes
    #: original patient key -> (pseudonym, date offset in days, time offset in seconds, identity pooled over its files)
    patients: Dict[str, Tuple[str, int, int, Tuple[Tuple[str, str], ...]]]
    #: a patient key -> the key it is the same patient as (a Patient ID with and without its issuer)
    aliases: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Task:
    path: str
    source: str
    check_conformance: bool
    #: dciodvfy error lines that drove the IOD repairs of this file's series sample (``--conformance sample``)
    repairs: Tuple[str, ...] = ()


_RUN: Optional[_Run] = None


def _start_run(run: _Run) -> None:
    """Worker initializer (and the in-process run's setup)."""
    global _RUN
    _RUN = run
    _MADE.clear()


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """pydicom's warnings about the input's invalid values stay out of the log: the report names
    what was done about them."""
    pydicom_log = logging.getLogger("pydicom")
    level = pydicom_log.level
    pydicom_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        pydicom_log.setLevel(level)


def _process_chunk(tasks: List[_Task]) -> List[FileResult]:
    with _quiet_pydicom():
        return [_process(task) for task in tasks]


def _run_tasks(tasks: List[_Task], run: _Run, heads: Dict[Path, "_Head"], executor: Executor, results: Dict[str, FileResult],
               progress: Optional[Progress], done: int, total: int, checkpoint: Optional[Callable[[], None]] = None) -> None:
    """Process ``tasks`` (on the executor's workers, or in this process) into ``results``;
    ``checkpoint()`` after each run of files."""
    # Chunks of consecutive files: mostly one series, which the worker's memo serves whole.
    chunks = batches(tasks, executor.workers, 16)
    for chunk, outcome in isolating(executor, _process_chunk, chunks, _start_run, (run,)):
        try:
            chunk_results = outcome()
        except Exception as exc:  # noqa: BLE001 - a lost worker fails its file (run alone), never the batch
            chunk_results = _lost(chunk, heads, run, f"its worker was lost ({type(exc).__name__}: {one_line(exc, 300)})")
        for result in chunk_results:
            results[result.source] = result
        done += len(chunk_results)
        if progress:
            progress(done, total, "de-identifying")
        if checkpoint:
            checkpoint()


class _LiveReport:
    """The audit report, written as results come in (every few seconds, and never for more than a
    tenth of the run's time) and at the end: it can be watched, and a driver killed mid-run leaves the
    record of every file done so far."""

    def __init__(self, report: DeidReport, results: Dict[str, FileResult], files: List[Path], names: Dict[Path, str],
                 executor: Executor, mark: Execution, started: float, folder: Path) -> None:
        self.report, self.results, self.files, self.names = report, results, files, names
        self.executor, self.started, self.folder = executor, started, folder
        self.last, self.cost = time.monotonic(), 0.0
        self.mark = mark
        #: this run's own copy: a later run (which finds these files released earlier) keeps what was done to them
        now = time.time()
        stamp = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}.{int(now % 1 * 1e6):06d}Z"
        self.archive = folder / "runs" / f"deid_report-{stamp}-{os.getpid()}.json"

    def write(self, finished: bool = False) -> None:
        start = time.monotonic()
        report = self.report
        report.files = [self.results[self.names[p]] for p in self.files if self.names[p] in self.results]
        report.execution = self.executor.summary(len(report.files), "files", time.perf_counter() - self.started, self.mark)
        report.finished = finished
        self.folder.mkdir(parents=True, exist_ok=True)
        text = report.to_json()
        atomic_write_text(self.folder / "deid_report.json", text)
        atomic_write_text(self.folder / "deid_report.txt", report.to_text())
        self.archive.parent.mkdir(exist_ok=True)
        atomic_write_text(self.archive, text)
        self.last, self.cost = time.monotonic(), time.monotonic() - start

    def checkpoint(self) -> None:
        if time.monotonic() - self.last >= max(LIVE_REPORT_S, 10 * self.cost):
            self.write()


#: Seconds between two writes of the report while a run goes on.
LIVE_REPORT_S = 5.0


def _in_release(task: _Task, head: "_Head", run: _Run, key: SecretKey, fate: "Fate", notes: Optional[List[str]] = None) -> Optional[FileResult]:
    """``task``'s file as ``fate`` when its output is in the release (found by the UIDs of its header), else ``None``
    (``None`` too for a header without its UIDs: the worker refuses it, naming the missing UID)."""
    if not (head.study_uid and head.series_uid and head.instance_uid):
        return None
    pseudonym = run.patients[head.patient_key][0]
    relative = release_path(key, run.profile.uid_root, pseudonym, head.study_uid, head.series_uid, head.instance_uid)
    if not (Path(run.output_root) / relative).exists():
        return None
    return FileResult(task.source, fate, output=relative.as_posix(), sop_class=head.sop_class, transfer_syntax=head.transfer_syntax,
                      subject=pseudonym, notes=list(notes or []))


def _lost(tasks: List[_Task], heads: Dict[Path, "_Head"], run: _Run, cause: str) -> List[FileResult]:
    """The fates of files whose worker did not report (``cause``): released where the file is in the release
    (it is published only once checked), else failed (a rerun resumes them)."""
    key = SecretKey(run.key)
    note = [f"released, but {cause} before it reported: what was done to it is not recorded"]
    return [_in_release(task, heads[Path(task.path)], run, key, Fate.RELEASED, note) or FileResult(task.source, Fate.FAILED, f"{cause}; run again to resume")
            for task in tasks]


def release_path(key: SecretKey, uid_root: str, pseudonym: str, study_uid: str, series_uid: str, instance_uid: str) -> Path:
    """Where a released file goes, relative to OUTPUT: ``subjectNN/<study>/<series>/<instance>.dcm``
    with the replaced UIDs (derived from the key: the same on every worker and in every run)."""
    return Path(pseudonym, key.uid(study_uid, uid_root, pseudonym), key.uid(series_uid, uid_root, pseudonym),
                key.uid(instance_uid, uid_root, pseudonym) + ".dcm")


def _released_earlier(tasks: List[_Task], heads: Dict[Path, "_Head"], run: _Run, key: SecretKey) -> Dict[str, FileResult]:
    """The files of ``tasks`` whose output an earlier run released (they are not redone)."""
    found = (_in_release(task, heads[Path(task.path)], run, key, Fate.RELEASED_EARLIER) for task in tasks)
    return {result.source: result for result in found if result is not None}


def _expected_pixel_bytes(ds: pydicom.Dataset) -> Optional[int]:
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        return int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * int(ds.BitsAllocated) // 8 * frames
    except (AttributeError, TypeError, ValueError):
        return None


def _counts(counter: Counter) -> Dict[str, Dict[str, int]]:
    out: Dict[str, Dict[str, int]] = defaultdict(dict)
    for (cls, action), n in sorted(counter.items()):
        out[cls][action] = n
    return dict(out)


_REWRITER: Optional[RawRewriter] = None
_MADE: set = set()  # output folders this process made (one mkdir per series, not per file)


def _rewriter(run: _Run) -> RawRewriter:
    """The process's raw rewriter for this run (its memo is only valid for one key and profile)."""
    global _REWRITER
    if _REWRITER is None or _REWRITER.key_raw != run.key or _REWRITER.profile != run.profile:
        _REWRITER = RawRewriter(run.key, run.profile)
    return _REWRITER


class _RawHead:
    """What admission reads of a file, from its raw layout: the attributes a series shares are
    decoded once by pydicom (memoized), the SOP Instance UID per file."""

    _memo: Dict[bytes, Tuple[pydicom.Dataset, pydicom.dataset.FileMetaDataset]] = {}

    def __init__(self, raw: RawFile) -> None:
        data = raw.data
        shared = b"".join(data[e.start:e.end] for e in raw.elements if e.tag in _HEAD_TAGS and e.tag != SOP_INSTANCE_UID)
        meta = b"".join(data[e.start:e.end] for e in raw.meta if e.tag != MEDIA_STORAGE_SOP_INSTANCE_UID)
        key = bytes([raw.implicit]) + len(meta).to_bytes(4, "little") + meta + shared
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) > 1000:
                self._memo.clear()
            found = self._memo[key] = (read_dataset(BytesIO(shared), raw.implicit, True),
                                       pydicom.dataset.FileMetaDataset(read_dataset(BytesIO(meta), False, True)))
        self._shared, self.file_meta = found
        self._sop = next((raw.text(e) for e in raw.elements if e.tag == SOP_INSTANCE_UID), None)

    def get(self, keyword: str, default: object = None) -> object:
        if keyword == "SOPInstanceUID":
            return default if self._sop is None else self._sop
        return self._shared.get(keyword, default)

    def __getattr__(self, keyword: str) -> object:
        if keyword.startswith("_"):  # its own attributes (before __init__ set them): no attribute lookups
            raise AttributeError(keyword)
        value = self.get(keyword, _MISSING)
        if value is _MISSING:
            raise AttributeError(f"no {keyword}")
        return value


_MISSING = object()


def _read_head(data: bytes, result: FileResult) -> Tuple[Optional[RawFile], object]:
    """The file's raw layout and a data set of what admission needs; (None, None) with the result's
    fate and reason set when the file cannot be read.  Without a raw layout (an encoding the raw
    reader leaves to pydicom, or a malformed file) the data set is the whole file, read by pydicom."""
    try:
        raw = parse_file(data)
    except Unsupported:
        raw = None
    if raw is not None:
        try:
            return raw, _RawHead(raw)
        except Exception:  # noqa: BLE001 - let pydicom read the whole file and say what is wrong
            raw = None
    try:
        return None, pydicom.dcmread(BytesIO(data))  # one read; pixel data is carried, never decoded
    except InvalidDicomError:
        result.fate, result.reason = Fate.SKIPPED, "not a DICOM file (no DICM preamble and file meta)"
    except Exception as exc:  # noqa: BLE001 - any reader failure is a clear per-file report
        result.reason = f"unreadable DICOM: {exc}"
    return None, None


def _process(task: _Task) -> FileResult:
    """De-identify one file (runs in a worker process, or in the driver's for one job).  Whatever
    goes wrong with this file is this file's refusal, with a one-line reason: never the batch's."""
    result = FileResult(task.source, Fate.FAILED)
    try:
        _process_file(task, result)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        result.fate = Fate.FAILED
        result.reason = f"could not be processed: {type(exc).__name__}: {one_line(exc, 300)}"
    # In one order whatever this process's memo held (the report is the same on every executor).
    result.notes.sort()
    return result


def _admit(head: object, meta: object, run: _Run, result: FileResult) -> bool:
    """Admission: a kept SOP class, a lossless transfer syntax, never-lossy pixels, no burned-in
    text or recognizable face; False (with the result's fate and reason set) otherwise."""
    sop = str(head.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta else ""))  # type: ignore[attr-defined]
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta else ""  # type: ignore[attr-defined]
    result.sop_class, result.transfer_syntax = sop, syntax
    if not sop:
        result.reason = "not a readable DICOM object (no SOP Class UID)"
        return False
    if sop == DICOMDIR_CLASS or (meta is not None and str(meta.get("MediaStorageSOPClassUID", "")) == DICOMDIR_CLASS):  # type: ignore[attr-defined]
        result.fate, result.reason = Fate.SKIPPED, "DICOMDIR ignored (the output tree is indexed by its own names)"
        return False
    if sop not in KEPT_SOP_CLASSES:
        why = "on the seed's list of removable objects" if sop in SEED_REMOVABLE_SOP_CLASSES else "not a CT/MR image object"
        result.fate, result.reason = Fate.DROPPED, f"{sop_class_name(sop)}: {why}"
        return False
    refusal = lossy_reason(head, syntax) or _burned_in(head, run.profile, result)
    if refusal:
        result.fate, result.reason = Fate.REFUSED, refusal
        return False
    return True


def _burned_in(head: object, profile: Profile, result: FileResult) -> Optional[str]:
    """The burned-in-annotation policy: Burned In Annotation not NO, a screen save, or
    Recognizable Visual Features not NO (a face can be rebuilt)."""
    reasons = []
    burned = _text(head.get("BurnedInAnnotation"))  # type: ignore[attr-defined]
    if burned and burned != "NO":
        reasons.append(f"Burned In Annotation is {burned!r}: pixels may show identifying text")
    if any("SCREEN SAVE" in v for v in values_of(head.get("ImageType"))):  # type: ignore[attr-defined]
        reasons.append("Image Type says SCREEN SAVE: a screen capture may show identifying text")
    visual = _text(head.get("RecognizableVisualFeatures"))  # type: ignore[attr-defined]
    if visual and visual != "NO":
        reasons.append(f"Recognizable Visual Features is {visual!r}: a face may be recognizable")
    if not reasons or profile.burned_in_annotation == "allow":
        return None
    if profile.burned_in_annotation == "warn":
        result.notes.extend(f"{r} (released under the 'warn' policy)" for r in reasons)
        return None
    return reasons[0]


def _text(value: object) -> str:
    """A code string as compared: upper case, without padding; multiple values joined by backslashes."""
    return "\\".join(values_of(value))


def _process_file(task: _Task, result: FileResult) -> None:
    """admit -> rewrite -> gate -> release, for one file (the result says what happened)."""
    run = _RUN
    assert run is not None, "_start_run first"
    path = Path(task.path)
    try:
        data, bare = with_file_meta(path.read_bytes())
    except OSError as exc:
        result.reason = f"unreadable: {exc.strerror or exc}"
        return
    if bare:
        result.notes.append(f"stored without preamble and file meta: read as {pydicom.uid.UID(bare).name}, a file meta written")
    raw, head = _read_head(data, result)
    if head is None:
        return
    if bare and _encapsulated(raw, head):
        result.fate, result.reason = Fate.REFUSED, "stored without file meta, with compressed (encapsulated) Pixel Data: its transfer syntax is unknown"
        return
    meta = getattr(head, "file_meta", None)
    if not _admit(head, meta, run, result):
        return
    syntax = result.transfer_syntax

    key = SecretKey(run.key)
    patient_key = run.aliases.get(patient_key_of(head), patient_key_of(head))
    if patient_key not in run.patients:
        result.reason = "the patient could not be identified when the headers were first read"
        return
    pseudonym, offset_days, offset_s, known = run.patients[patient_key]
    result.subject = pseudonym
    try:
        relative = release_path(key, run.profile.uid_root, pseudonym, str(head.StudyInstanceUID), str(head.SeriesInstanceUID),  # type: ignore[attr-defined]
                                str(head.SOPInstanceUID))  # type: ignore[attr-defined]
    except AttributeError:
        missing = [k for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID") if not str(head.get(k, "") or "").strip()]  # type: ignore[attr-defined]
        result.fate, result.reason = Fate.REFUSED, f"missing a Type 1 UID: {', '.join(missing) or 'unreadable'}"
        return
    # A file already there is released again with the same bytes: the driver kept back the files an
    # earlier run released, so this is an earlier attempt of this run (its worker was lost).
    final = Path(run.output_root) / relative

    pixels = _pixel_bytes(raw, head, data)
    if pixels is None:
        result.fate, result.reason = Fate.REFUSED, "no Pixel Data"
        return
    expected = _expected_pixel_bytes(head)
    if syntax in _NATIVE_SYNTAXES and expected and len(pixels) < expected:
        result.reason = f"truncated: Pixel Data has {len(pixels)} of {expected} bytes"
        return
    stream = code_stream_kind(pixels) if syntax in _NATIVE_SYNTAXES and expected and len(pixels) > expected + 1 else ""
    if stream:
        result.fate, result.reason = Fate.REFUSED, (f"Pixel Data of {len(pixels)} bytes where {expected} are uncompressed holds a "
                                                    f"{stream} code stream under an uncompressed transfer syntax")
        return
    if syntax not in _NATIVE_SYNTAXES:
        refusal = lossy_code_stream(pixels, syntax)
        if refusal:
            result.fate, result.reason = Fate.REFUSED, refusal
            return

    def context() -> HeaderContext:
        return HeaderContext(key, run.profile, pseudonym, offset_days, offset_s, result.sop_class, subject_identifiers=known)

    def whole_data_set() -> Tuple[pydicom.Dataset, HeaderContext]:
        """The pydicom executor: the whole data set de-identified, identity in kept text cleaned."""
        whole = head if raw is None else pydicom.dcmread(BytesIO(data))
        record = context()
        deidentify_header(whole, record)
        cleaned = clean_dataset(whole, record.identifiers())
        result.cleaned = cleaned
        for where in cleaned:
            record.count(where.split(" ")[0], "", "identifier cleaned in a kept attribute")
        return whole, record

    ds: Optional[pydicom.Dataset] = None
    rewritten: Optional[Rewritten] = None
    try:
        if raw is not None and not task.repairs:
            ctx = context()
            rewritten = _rewriter(run).rewrite(raw, ctx)
            if found_in_kept_text(rewritten.decoded, ctx.identifiers()):
                (ds, ctx), rewritten = whole_data_set(), None  # kept text holds identity: clean it the pydicom way
        else:  # another encoding, or its series' sample needed IOD repairs: they are made here too
            ds, ctx = whole_data_set()
    except Exception as exc:  # noqa: BLE001 - a malformed header is one clear report line
        result.fate, result.reason = Fate.REFUSED, f"malformed header: {one_line(exc, 300)}"
        return
    _gate_and_release(task, result, run, path, final, relative, ds, rewritten, ctx, whole_data_set)


def _encapsulated(raw: Optional[RawFile], head: object) -> bool:
    """Whether the Pixel Data is encapsulated (of undefined length: compressed fragments)."""
    if raw is not None:
        pixels = next((e for e in raw.elements if e.tag == PIXEL_DATA), None)
        return pixels is not None and raw.data[pixels.value - 4:pixels.value] == b"\xff\xff\xff\xff"
    element = head.get("PixelData")  # type: ignore[attr-defined]
    return element is not None and bool(getattr(head["PixelData"], "is_undefined_length", False))  # type: ignore[index]


def _pixel_bytes(raw: Optional[RawFile], head: object, data: bytes) -> Optional[memoryview]:
    """The Pixel Data value's bytes (undecoded), or ``None`` when there is none."""
    if raw is not None:
        pixels = next((e for e in raw.elements if e.tag == PIXEL_DATA), None)
        return None if pixels is None else memoryview(data)[pixels.value:pixels.end]
    value = head.get("PixelData")  # type: ignore[attr-defined]
    return None if value is None else memoryview(value)


def _gate_and_release(task: _Task, result: FileResult, run: _Run, path: Path, final: Path, relative: Path,
                      ds: Optional[pydicom.Dataset], rewritten: Optional[Rewritten], ctx: HeaderContext, whole_data_set) -> None:
    """Write the output to the staging folder, run the QA gate, and release it (rename) or refuse it."""
    staging = Path(run.staging_root) / relative
    if staging.parent not in _MADE:
        staging.parent.mkdir(parents=True, exist_ok=True)
        _MADE.add(staging.parent)
    tmp = staging.parent / f"{TEMP_PREFIX}{staging.name}"
    try:
        if task.repairs and ds is not None:
            _repair(ds, list(task.repairs), ctx, result)
        data = rewritten.data if rewritten is not None else _encode_file(ds)
        header_end = rewritten.header_end if rewritten is not None else None
        new_errors = _conformance(task, path, data, ds, result)
        if new_errors and rewritten is not None:
            # The IOD repairs work on a whole data set: redo this file the pydicom way.
            (ds, ctx), rewritten = whole_data_set(), None
            data, header_end = _encode_file(ds), None
            new_errors = _conformance(task, path, data, ds, result)
        for _ in range(MAX_REPAIRS):
            if not new_errors or ds is None or not _repair(ds, new_errors, ctx, result):
                break
            data = _encode_file(ds)
            new_errors = _conformance(task, path, data, ds, result)
        result.new_errors = new_errors
        if task.check_conformance:
            result.conformance += "; dciodvfy: checked" if dciodvfy_path() else "; dciodvfy: not installed"
        elif task.repairs:
            result.conformance += "; dciodvfy: not sampled, the repairs of its series' sample applied"
        charsets = _encodings(ds, rewritten)
        texts = [t for _, _, t in (rewritten.decoded if rewritten is not None else decoded_values(ds))]
        places = find_in_bytes(data, ctx.identifiers(), charsets, header_end, texts)
        result.counts = _counts(ctx.counts)
        result.notes += ctx.notes
        result.leaks = [{"where": where} for where in places]
        if new_errors or places:
            reasons = []
            if new_errors:
                reasons.append(f"{len(new_errors)} new conformance error(s): {new_errors[0]}")
            if places:
                reasons.append(f"an identifier of the subject remains in the {places[0]}, where it cannot be cleaned")
            result.fate, result.reason = Fate.REFUSED, "QA gate: " + "; ".join(reasons)
            return
        publish(data, tmp, final)
        result.output = relative.as_posix()
        result.fate = Fate.RELEASED
    finally:
        if tmp.exists():
            tmp.unlink()


def _conformance(task: _Task, source: Path, data: bytes, ds: Optional[pydicom.Dataset], result: FileResult) -> List[str]:
    """New conformance errors of the output ``data`` against its input: the in-process IOD check
    always, ``dciodvfy`` too where the task asks for it and it is installed."""
    output = ds if ds is not None else pydicom.dcmread(BytesIO(data), stop_before_pixels=True, force=True)
    found = _findings(output)
    errors = added_errors(_input_findings(*_file_version(source)), found) if found else []  # the input is read only when needed
    result.conformance = "in-process: checked"
    frames = int(getattr(output, "NumberOfFrames", 1) or 1) if ds is None else int(ds.get("NumberOfFrames", 1) or 1)
    if task.check_conformance and dciodvfy_path():
        if frames > DCIODVFY_MAX_FRAMES:
            result.conformance += f"; dciodvfy: skipped ({frames} frames: it takes minutes on such files)"
            return errors
        with tempfile.TemporaryDirectory(prefix="visceral-check-") as folder:
            tmp = Path(folder, "output.dcm")
            tmp.write_bytes(data)
            try:
                errors += added_errors(conformance_errors(source), conformance_errors(tmp))
            except subprocess.TimeoutExpired:
                result.conformance += "; dciodvfy: no answer within its time limit (the in-process check stands)"
    return errors


#: dciodvfy's time grows with the square of the frames: on larger files only the in-process check runs.
DCIODVFY_MAX_FRAMES = 2000


def _findings(ds: pydicom.Dataset) -> List[str]:
    """The in-process conformance errors of a data set, as comparable lines."""
    return [f"{f.path}: {f.message}" for f in conformance_check(ds) if f.severity == "error"]


def _file_version(path: Path) -> Tuple[str, int, int, int]:
    """A file's path with what tells its versions apart (a new export at the same path is another file)."""
    status = path.stat()
    return str(path), status.st_ino, status.st_size, status.st_mtime_ns


@lru_cache(maxsize=64)
def _input_findings(source: str, inode: int, size: int, mtime_ns: int) -> List[str]:
    """The in-process conformance errors the input ``source`` (in the version the other arguments
    name) already had: not the de-identification's doing.  Cached for the repair rounds of one file."""
    try:
        return _findings(pydicom.dcmread(source, stop_before_pixels=True, force=True))
    except Exception:  # noqa: BLE001 - an input pydicom cannot read whole: every output error counts
        return []


def _encode_file(ds: pydicom.Dataset) -> bytes:
    """A data set de-identified by pydicom, encoded as a file: the preamble is zeroed like the raw
    path's (a preamble may hold a TIFF header or any other bytes a dual-format file put there);
    the transfer syntax is the input's."""
    ds.preamble = bytes(128)
    if "FileMetaInformationGroupLength" not in ds.file_meta:
        ds.file_meta.FileMetaInformationGroupLength = 0  # Type 1 (PS3.10 7.1); pydicom writes the real length
    buffer = DicomBytesIO()
    write_dicom(ds, buffer)
    return buffer.getvalue()


def _encodings(ds: Optional[pydicom.Dataset], rewritten: Optional[Rewritten]) -> Tuple[str, ...]:
    """The Python codecs of the output's Specific Character Set (for the byte search)."""
    if ds is not None:
        values = ds.get("SpecificCharacterSet", "") or ""
    else:
        values = [t for k, _, t in rewritten.decoded if k == "SpecificCharacterSet"] if rewritten is not None else []
    if isinstance(values, str):
        values = [values]
    try:
        return tuple(dict.fromkeys(convert_encodings([str(v) for v in values] or ["ISO_IR 6"])))
    except Exception:  # noqa: BLE001 - an unknown character set: the defaults
        return ("latin-1",)


@dataclass(frozen=True)
class _Head:
    patient_key: str
    study_uid: str
    series_uid: str
    instance_uid: str
    sop_class: str
    transfer_syntax: str
    size: int
    identity: Tuple[Tuple[str, str], ...] = ()

    @property
    def kept(self) -> bool:
        return self.sop_class in KEPT_SOP_CLASSES


#: Rounds of IOD repair guided by dciodvfy (see :func:`visceral.deid.qa.repair_targets`).
MAX_REPAIRS = 2


def _repair(ds: pydicom.Dataset, errors: List[str], ctx: HeaderContext, result: FileResult) -> bool:
    """Apply the repairs dciodvfy's new errors call for; True when something changed."""
    delete, restore = repair_targets(errors)
    changed = False
    result.repairs.extend(line for line in errors if line not in result.repairs)
    for keyword in delete:
        if keyword in ds:
            ctx.remember(ds.data_element(keyword).value, keyword, ds.data_element(keyword).VR)
            del ds[keyword]
            result.notes.append(f"{keyword} removed: present although its IOD condition no longer holds")
            changed = True
    for keyword, kind in restore:
        tag = tag_for_keyword(keyword)
        if tag is None or keyword in ds and ds[keyword].value not in (None, "", b""):
            continue
        vr = dictionary_VR(tag)
        value = DUMMY_VALUES.get(vr, DUMMY_TEXT) if kind == 1 else None
        if vr == "SQ":
            value = pydicom.sequence.Sequence([])
        ds.add_new(tag, vr, value)
        if value:
            ctx.written.add(str(value))
        result.notes.append(f"{keyword} restored ({'dummy value' if kind == 1 else 'empty'}): Type {kind} in this IOD")
        changed = True
    return changed


#: Bytes the pre-pass reads of a file: its groups 0008-0020 are nearly always within them.
PREPASS_BYTES = 64 * 1024
#: Bytes pydicom may read when the raw layout cannot say (another encoding, a malformed start): a
#: header beyond them is refused as unreadable rather than walked element by element for minutes.
PREPASS_FALLBACK_BYTES = 4 * 1024 * 1024
#: Files per pre-pass task (a head takes well under a millisecond to read)
PREPASS_CHUNK = 256


def _prepass(path: Path) -> Optional[_Head]:
    """What the driver needs of a DICOM file before the batch, or ``None`` when it cannot be read.
    The file's first bytes through the raw layout (the same decoding as the worker's admission);
    pydicom for anything else (it stops before the pixel data: no file is read whole here)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            window = handle.read(PREPASS_BYTES)
        data = with_file_meta(window)[0]
        raw = parse_file(data, before=0x00210000)
        if len(window) == PREPASS_BYTES and (not raw.elements or raw.elements[-1].end >= len(data)):
            raise Unsupported("groups 0008-0020 go on past the bytes read")  # stopped by the buffer, not by the tag
        head: object = _RawHead(raw)
    except Exception:  # noqa: BLE001 - not in the first bytes, or not the raw layout: pydicom decides
        try:
            with open(path, "rb") as handle:  # a header is within its first MiBs: never walk a whole huge file
                window = with_file_meta(handle.read(PREPASS_FALLBACK_BYTES))[0]
            head = pydicom.dcmread(BytesIO(window), stop_before_pixels=True, specific_tags=_PREPASS_TAGS)
        except Exception:  # noqa: BLE001 - reported by _unread
            return None
    meta = getattr(head, "file_meta", None)
    sop = str(head.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta is not None else ""))  # type: ignore[attr-defined]
    identity = tuple((str(head.get(k, "") or ""), kind) for k, kind in _POOLED if str(head.get(k, "") or "").strip())  # type: ignore[attr-defined]
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    return _Head(patient_key_of(head), str(head.get("StudyInstanceUID", "")), str(head.get("SeriesInstanceUID", "")),  # type: ignore[attr-defined]
                 str(head.get("SOPInstanceUID", "")), sop, syntax, size, identity)  # type: ignore[attr-defined]


#: What the pre-pass pools of each patient's identity over all its files (a file may lack its name
#: or birth date and still carry them in free text).
_POOLED = (("PatientName", "name"), ("PatientID", "id"), ("PatientBirthDate", "date"))


def _patient_aliases(keys: set, known: Collection[str] = ()) -> Dict[str, str]:
    """A Patient ID exported once with its issuer and once without is one patient (one subject, one
    date offset): the bare key of this run's ``keys`` is an alias of the qualified one when exactly one
    issuer has that ID.  Patients the linkage table numbered before (``known``) keep their number: a
    bare key numbered first (by a run that saw no issuer) is the one the qualified key is an alias of,
    and a bare key is an alias of a qualified one numbered before though this run sees no issuer; two
    keys both numbered before stay apart (their files are released under those numbers)."""
    pool = set(keys) | set(known)
    qualified: Dict[str, List[str]] = defaultdict(list)
    for key in pool:
        parts = key.split(":", 2)
        if key.startswith("id:") and len(parts) == 3:
            qualified[parts[2]].append(key)
    aliases: Dict[str, str] = {}
    for pid, found in qualified.items():
        bare = f"id:{pid}"
        if len(found) != 1 or bare not in pool or not ({bare, found[0]} & keys) or {bare, found[0]} <= set(known):
            continue
        if bare in known:
            aliases[found[0]] = bare
        else:
            aliases[bare] = found[0]
    return aliases


def _unread(path: Path, source: str) -> FileResult:
    """The fate of a file the pre-pass could not read (only its first bytes are looked at)."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(132)
    except OSError as exc:
        return FileResult(source, Fate.FAILED, f"unreadable: {exc.strerror or exc}")
    if start[128:132] != b"DICM":
        if start[:2] == b"\x00\x08":
            return FileResult(source, Fate.SKIPPED, "a data set without preamble and file meta in big-endian byte order (retired): not read")
        return FileResult(source, Fate.SKIPPED, "not a DICOM file (no DICM preamble and file meta)")
    return FileResult(source, Fate.FAILED, "unreadable DICOM: its header could not be read")


def _not_kept(head: _Head, source: str) -> FileResult:
    """The fate of a DICOM file of a class the release does not keep (decided on its header alone)."""
    if head.sop_class == DICOMDIR_CLASS:
        return FileResult(source, Fate.SKIPPED, "DICOMDIR ignored (the output tree is indexed by its own names)", sop_class=head.sop_class)
    if not head.sop_class:
        return FileResult(source, Fate.FAILED, "not a readable DICOM object (no SOP Class UID)")
    why = "on the seed's list of removable objects" if head.sop_class in SEED_REMOVABLE_SOP_CLASSES else "not a CT/MR image object"
    return FileResult(source, Fate.DROPPED, f"{sop_class_name(head.sop_class)}: {why}", sop_class=head.sop_class)


def _release_copies(copies: Dict[Tuple[str, str], List[Path]], names: Dict[Path, str], heads: Dict[Path, _Head], run: _Run,
                    executor: Executor, results: Dict[str, FileResult]) -> None:
    """Copies of one instance: while the one tried was not released, the next largest is tried;
    the rest are skipped, naming the copy released."""
    _RELEASED = (Fate.RELEASED, Fate.RELEASED_EARLIER)
    pending = {key: group for key, group in copies.items() if len(group) > 1}
    while pending:
        tasks = []
        for key, group in list(pending.items()):
            tried = [p for p in group if names[p] in results]
            if results[names[tried[-1]]].fate in _RELEASED or len(tried) == len(group):
                done = next((p for p in tried if results[names[p]].fate in _RELEASED), None)
                for path in group[len(tried):]:
                    results[names[path]] = FileResult(names[path], Fate.SKIPPED, f"the same SOP Instance UID as {names[done]}, which is released instead")
                del pending[key]
            else:
                tasks.append(_Task(str(group[len(tried)]), names[group[len(tried)]], False))
        results.update(_released_earlier(tasks, heads, run, SecretKey(run.key)))
        tasks = [t for t in tasks if t.source not in results]
        if tasks:
            _run_tasks(tasks, run, heads, executor, results, None, 0, len(tasks))


def display_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as report text: bytes of a name that are not valid in the file
    system's encoding are shown as ``\\xNN`` (a report is UTF-8)."""
    name = path.relative_to(root).as_posix()
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def staging_dir(output: PathLike) -> Path:
    """``.<OUTPUT>.staging`` beside the release folder: outputs are written and checked there, and
    only moved into OUTPUT once released (a killed run leaves nothing unchecked inside OUTPUT)."""
    output = Path(output).resolve()
    return output.parent / f".{output.name}.staging"


def _check_rename(staging: Path, output_dir: Path) -> None:
    """Refuse a release folder that files staged beside it cannot be renamed into (a mount point, a bind mount:
    another file system, where a rename is no atomic publication)."""
    staging.mkdir(parents=True, exist_ok=True)
    probe = staging / f"{TEMP_PREFIX}probe-{os.getpid()}"
    probe.write_bytes(b"")
    try:
        os.replace(probe, output_dir / probe.name)
    except OSError as exc:
        probe.unlink()
        raise VisceralError(f"{output_dir}: files staged beside the release folder cannot be renamed into it ({exc.strerror}: "
                            f"it is a mount point of another file system); give a folder inside it, e.g. {output_dir / 'release'}") from None
    (output_dir / probe.name).unlink()


def _clean_partials(*folders: Path) -> int:
    """Remove what an interrupted run left: partial files of older versions inside OUTPUT, and the
    staging folder."""
    removed = 0
    for folder in folders:
        for parent, _, files in os.walk(folder):
            for name in files:
                if name.startswith(TEMP_PREFIX) or folder.name.endswith(".staging"):
                    Path(parent, name).unlink()
                    removed += 1
    return removed


def _prepass_chunk(paths: List[Path]) -> List[Optional[_Head]]:
    with _quiet_pydicom():
        return [_prepass(path) for path in paths]


def _read_inputs(files: List[Path], names: Dict[Path, str], executor: Executor,
                 progress: Optional[Progress]) -> Tuple[Dict[Path, _Head], Dict[str, FileResult]]:
    """The pre-pass (on the executor's workers): the head of every DICOM file of a kept class; the
    fate of every other file."""
    found: Dict[Path, Optional[_Head]] = {}
    lost: Dict[Path, str] = {}
    for chunk, outcome in isolating(executor, _prepass_chunk, batches(files, executor.workers, PREPASS_CHUNK)):
        try:
            found.update(zip(chunk, outcome()))
        except Exception as exc:  # noqa: BLE001 - reading this file's header killed its worker, alone
            found[chunk[0]], lost[chunk[0]] = None, f"reading its header, its worker was lost ({type(exc).__name__}: {one_line(exc, 300)})"
        if progress:
            progress(len(found), len(files), "reading headers")
    heads: Dict[Path, _Head] = {}
    results: Dict[str, FileResult] = {}
    for path in files:
        head = found[path]
        if path in lost:
            results[names[path]] = FileResult(names[path], Fate.FAILED, lost[path])
        elif head is None:
            results[names[path]] = _unread(path, names[path])
        elif not head.kept:
            results[names[path]] = _not_kept(head, names[path])
        else:
            heads[path] = head
    return heads, results


def _assign_subjects(heads: Dict[Path, _Head], linkage: Linkage, key: SecretKey, profile: Profile):
    """Subjects for the patients of ``heads`` (the linkage table extended and saved), with their date and
    time offsets and their identity pooled over all their files; returns (heads with aliased patient
    keys, patients, aliases, new linkage entries)."""
    keys = {h.patient_key for h in heads.values()}
    known = set(linkage.keys())
    # Keys the table holds are their patient's (an alias recorded by an earlier run included); the others
    # may be aliases of each other or of a key the table holds.
    aliases = {k: linkage.canonical(k) for k in keys & known if linkage.canonical(k) != k}
    aliases.update(_patient_aliases(keys - known, {linkage.canonical(k) for k in known}))
    heads = {p: replace(h, patient_key=aliases.get(h.patient_key, h.patient_key)) for p, h in heads.items()}
    new = linkage.assign({h.patient_key for h in heads.values()}, key)
    for alias, patient_key in aliases.items():
        linkage.add_alias(alias, patient_key)  # a later run knows them as one patient whatever it sees
    linkage.save()
    low, high = profile.date_shift_days
    pooled: Dict[str, set] = defaultdict(set)
    for h in heads.values():
        pooled[h.patient_key].update(h.identity)
    patients = {h.patient_key: (linkage.get(h.patient_key).pseudonym, key.date_offset_days(h.patient_key, low, high),
                                key.time_offset_seconds(h.patient_key), tuple(sorted(pooled[h.patient_key]))) for h in heads.values()}
    return heads, patients, aliases, new


def _shared_patient_ids(patients: Dict[str, Tuple[str, int, int, Tuple]]) -> List[str]:
    """One line per subject whose Patient ID (with its issuer) came with more than one name or birth date:
    one Patient ID is one patient here (as in a PACS), but a reused ID (a phantom's, a test account) or a
    mix-up merges people.  The lines name the subject, not the values."""
    lines = []
    for pseudonym, _, _, identity in sorted(patients.values()):
        names = {" ".join(v.replace("^", " ").split()).casefold() for v, kind in identity if kind == "name"}
        births = {v.strip() for v, kind in identity if kind == "date"}
        if len(names) > 1 or len(births) > 1:
            lines.append(f"{pseudonym}: one Patient ID with {len(names)} name(s) and {len(births)} birth date(s) in the input: "
                         "released as one subject; check it is one person")
    return lines


def _copies_of_instances(heads: Dict[Path, _Head], names: Dict[Path, str]) -> Dict[Tuple[str, str], List[Path]]:
    """The files of each instance (patient, SOP Instance UID), largest first: the same instance twice
    (copies, or one image in two transfer syntaxes) is released once, from its largest file (a truncated
    copy never hides its intact twin; when the largest is not released the next is tried).  Two
    patients' instances that share a UID are different images: both are released."""
    copies: Dict[Tuple[str, str], List[Path]] = defaultdict(list)
    for path, head in sorted(heads.items(), key=lambda item: (-item[1].size, names[item[0]])):
        copies[(head.patient_key, head.instance_uid)].append(path)
    return copies


def deidentify(
    input_dir: PathLike,
    output_dir: PathLike,
    profile: Optional[Union[Profile, PathLike]] = None,
    key_file: Optional[PathLike] = None,
    linkage_file: Optional[PathLike] = None,
    report_dir: Optional[PathLike] = None,
    jobs: Union[int, Executor] = 1,
    conformance: str = "sample",
    progress: Optional[Progress] = None,
) -> DeidReport:
    """De-identify the DICOM tree ``input_dir`` into the release folder ``output_dir``.

    Args:
        profile: a :class:`Profile`, a profile JSON path, or ``None`` for the default.
        key_file: the secret key (created when missing); default ``<OUTPUT>.private/key.hex``.
        linkage_file: original patient -> subject number; default ``<OUTPUT>.private/linkage.csv``.
        report_dir: where the audit reports go; default ``<OUTPUT>.private``.
        jobs: worker processes, or the executor to run on (:mod:`visceral.parallel`: serial, local
            processes, a Dask cluster); the outputs are the same whichever runs.
        conformance: every output is checked against its IOD in process; ``dciodvfy``, where it is
            installed, checks too: ``"all"`` files, ``"sample"`` the first file of each series, or ``"off"``.
        progress: ``progress(done, total, stage)``.

    Raises:
        VisceralError: bad folders, a private file placed inside OUTPUT or INPUT, a bad profile,
            an unknown conformance mode.
    """
    input_dir, output_dir = Path(input_dir).resolve(), Path(output_dir).resolve()
    if not input_dir.is_dir():
        raise VisceralError(f"{input_dir}: input folder does not exist")
    if is_inside(output_dir, input_dir) or is_inside(input_dir, output_dir):
        raise VisceralError(f"{output_dir}: the release folder must be outside the input folder (and not contain it)")
    if conformance not in CONFORMANCE_MODES:
        raise VisceralError(f"conformance check must be one of {', '.join(CONFORMANCE_MODES)}, not {conformance!r}")
    profile = profile if isinstance(profile, Profile) else load_profile(profile)
    private = default_private_dir(output_dir)
    key_path = check_private_location(key_file or private / "key.hex", "the key file", output_dir, input_dir)
    # Resolved: a table shared through a symbolic link is locked, read and replaced where it really is.
    linkage_path = check_private_location(linkage_file or private / "linkage.csv", "the linkage table", output_dir, input_dir).resolve()
    report_path = check_private_location(report_dir or private, "the report folder", output_dir, input_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(output_dir.parent / f".{output_dir.name}.lock", f"the release folder {output_dir}"), \
            exclusive_lock(linkage_path.with_name(linkage_path.name + ".lock"), f"the linkage table {linkage_path}"):
        staging = staging_dir(output_dir)
        removed = _clean_partials(output_dir, staging)
        if removed:
            log.info("removed %d partial file(s) of an interrupted run", removed)
        _check_rename(staging, output_dir)

        started = time.perf_counter()
        key, created = SecretKey.load_or_create(key_path)
        files = sorted((p for p in input_dir.rglob("*") if p.is_file()), key=lambda p: os.fsencode(str(p)))
        names = {p: display_name(p, input_dir) for p in files}
        with running_on(jobs) as executor:
            mark = executor.mark()
            heads, results = _read_inputs(files, names, executor, progress)
            linkage = Linkage(linkage_path)
            heads, patients, aliases, new = _assign_subjects(heads, linkage, key, profile)
            copies = _copies_of_instances(heads, names)
            duplicates = {p for group in copies.values() for p in group[1:]}
            run = _Run(str(output_dir), str(staging), profile, key.raw(), patients, aliases)
            tasks = [_Task(str(p), names[p], conformance == "all") for p in files if p in heads and p not in duplicates]
            results.update(_released_earlier(tasks, heads, run, key))
            tasks = [t for t in tasks if t.source not in results]
            if conformance == "sample":  # the first file of each series still to do
                seen_series: set = set()
                for n, task in enumerate(tasks):
                    series = heads[Path(task.path)].series_uid
                    if series not in seen_series:
                        seen_series.add(series)
                        tasks[n] = replace(task, check_conformance=True)
            report = DeidReport(str(input_dir), str(output_dir), profile.name, str(report_path), conformance,
                                new_subjects=len(new), subjects=len(linkage), key_created=created, warnings=_shared_patient_ids(patients))
            live = _LiveReport(report, results, files, names, executor, mark, started, report_path)
            finished = False
            try:
                if conformance == "sample":
                    # Each series' sample first: the IOD repairs dciodvfy asks of it are applied to the rest of its series.
                    samples = [t for t in tasks if t.check_conformance]
                    _run_tasks(samples, run, heads, executor, results, progress, 0, len(tasks), live.checkpoint)
                    repairs = {heads[Path(t.path)].series_uid: tuple(results[t.source].repairs) for t in samples}
                    rest = [replace(t, repairs=repairs.get(heads[Path(t.path)].series_uid, ())) for t in tasks if not t.check_conformance]
                    _run_tasks(rest, run, heads, executor, results, progress, len(samples), len(tasks), live.checkpoint)
                else:
                    _run_tasks(tasks, run, heads, executor, results, progress, 0, len(tasks), live.checkpoint)
                _release_copies(copies, names, heads, run, executor, results)
                finished = True
            finally:
                if not finished:  # interrupted: what workers released without reporting it is still said
                    unreported = [t for t in tasks if t.source not in results]
                    results.update((r.source, r) for r in _lost(unreported, heads, run, "the run was interrupted") if r.fate == Fate.RELEASED)
                live.write(finished)
                shutil.rmtree(staging, ignore_errors=True)
        return report
