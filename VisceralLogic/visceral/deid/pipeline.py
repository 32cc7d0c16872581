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

import json
import logging
import os
from io import BytesIO
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import pydicom
import pydicom.sequence
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset

from visceral.deid.identity import Linkage, SecretKey, check_private_location, is_inside
from visceral.deid.profile import Profile, load_profile
from visceral.deid.qa import added_errors, conformance_errors, dciodvfy_path, leak_scan, leak_scan_bytes, repair_targets
from visceral.deid.rawdicom import MEDIA_STORAGE_SOP_INSTANCE_UID, PIXEL_DATA, SOP_INSTANCE_UID, RawFile, Unsupported, parse_file
from visceral.deid.rawpath import RawRewriter, Rewritten
from visceral.deid.rules import DUMMY_TEXT, DUMMY_VALUES, HeaderContext, deidentify_header, patient_key_of
from visceral.deid.tables import KEPT_SOP_CLASSES, LOSSLESS_TRANSFER_SYNTAXES, SEED_REMOVABLE_SOP_CLASSES, sop_class_name
from visceral.errors import VisceralError
from visceral.fileio import TEMP_PREFIX, atomic_write_text
from visceral.parallel import unordered

PathLike = Union[str, Path]
Progress = Callable[[int, int, str], None]
log = logging.getLogger("visceral.deid")

__all__ = ["deidentify", "DeidReport", "FileResult", "FATES", "default_private_dir"]

#: What can happen to an input file.
FATES = ("released", "released earlier", "dropped", "refused", "skipped", "failed")
CONFORMANCE_MODES = ("all", "sample", "off")
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_NATIVE_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99")
#: What admission reads of a file (the raw path decodes just these).
_HEAD_TAGS = frozenset(tag_for_keyword(k) for k in (
    "SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID", "PatientName", "PatientID", "IssuerOfPatientID",
    "PatientBirthDate", "BurnedInAnnotation", "StudyInstanceUID", "SeriesInstanceUID", "SamplesPerPixel", "NumberOfFrames",
    "Rows", "Columns", "BitsAllocated", "LossyImageCompression"))
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

    def fates(self) -> Counter:
        return Counter(f.fate for f in self.files)

    @property
    def ok(self) -> bool:
        """True when nothing was refused or failed (dropped and skipped files are by design)."""
        fates = self.fates()
        return fates["refused"] == 0 and fates["failed"] == 0

    def action_totals(self) -> Dict[str, Dict[str, int]]:
        totals: Dict[str, Counter] = defaultdict(Counter)
        for f in self.files:
            for cls, actions in f.counts.items():
                totals[cls].update(actions)
        return {cls: dict(sorted(c.items())) for cls, c in sorted(totals.items())}

    def leak_count(self) -> int:
        return sum(len(f.leaks) for f in self.files)

    def to_json(self) -> str:
        # Shallow copies: every field holds JSON values already (dataclasses.asdict deep-copies them all).
        data = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "files"}
        data["files"] = [dict(vars(f)) for f in self.files]
        data["summary"] = {"fates": dict(self.fates()), "actions": self.action_totals(), "leaks": self.leak_count(), "ok": self.ok}
        return json.dumps(data, indent=1)

    def to_text(self) -> str:
        fates = self.fates()
        lines = [
            "Visceral de-identification report",
            f"input:  {self.input}",
            f"output: {self.output}",
            f"profile: {self.profile}; conformance check: {self.conformance_mode}; private folder: {self.private_dir}",
            f"subjects: {self.subjects} ({self.new_subjects} new in this run)",
            "files: " + ", ".join(f"{n} {fate}" for fate in FATES if (n := fates[fate])),
            f"leak scan: {self.leak_count()} hit(s)",
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
    profile: Profile
    key: bytes
    patients: Dict[str, Tuple[str, int]]


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


def _process_chunk(tasks: List[_Task]) -> List[FileResult]:
    return [_process(task) for task in tasks]


def _run_tasks(tasks: List[_Task], run: _Run, jobs: int, results: Dict[str, FileResult], progress: Optional[Progress],
               done: int, total: int) -> None:
    """Process ``tasks`` (in ``jobs`` worker processes, or in this one) into ``results``."""
    # Chunks of consecutive files (mostly one series: the worker's memo serves them all), small
    # enough to keep the workers and the progress bar busy; one file at a time in this process.
    size = max(1, min(16, len(tasks) // (4 * jobs))) if jobs > 1 else 1
    chunks = [tasks[i:i + size] for i in range(0, len(tasks), size)]
    for _, outcome in unordered(_process_chunk, chunks, jobs, initializer=_start_run, initargs=(run,)):
        chunk_results = outcome()
        for result in chunk_results:
            results[result.source] = result
        done += len(chunk_results)
        if progress:
            progress(done, total, "de-identifying")


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
        result.fate, result.reason = "skipped", "not a DICOM file (no DICM preamble and file meta)"
    except Exception as exc:  # noqa: BLE001 - any reader failure is a clear per-file report
        result.reason = f"unreadable DICOM: {exc}"
    return None, None


def _process(task: _Task) -> FileResult:
    """De-identify one file (runs in a worker process, or in the driver's for one job)."""
    run = _RUN
    assert run is not None, "_start_run first"
    result = FileResult(task.source, "failed")
    path = Path(task.path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        result.reason = f"unreadable: {exc.strerror or exc}"
        return result
    raw, head = _read_head(data, result)
    if head is None:
        return result
    meta = getattr(head, "file_meta", None)
    sop = str(head.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta else ""))
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta else ""
    result.sop_class, result.transfer_syntax = sop, syntax
    if not sop:
        result.reason = "not a readable DICOM object (no SOP Class UID)"
        return result
    if sop == DICOMDIR_CLASS or (meta is not None and str(meta.get("MediaStorageSOPClassUID", "")) == DICOMDIR_CLASS):
        result.fate, result.reason = "skipped", "DICOMDIR ignored (the output tree is indexed by its own names)"
        return result
    if sop not in KEPT_SOP_CLASSES:
        why = "on the seed's list of removable objects" if sop in SEED_REMOVABLE_SOP_CLASSES else "not a CT/MR image object"
        result.fate, result.reason = "dropped", f"{sop_class_name(sop)}: {why}"
        return result
    if syntax not in LOSSLESS_TRANSFER_SYNTAXES:
        result.fate, result.reason = "refused", f"transfer syntax {syntax or '(none)'} is not uncompressed or lossless"
        return result
    if str(head.get("LossyImageCompression", "") or "").strip() == "01":
        result.fate, result.reason = "refused", "Lossy Image Compression (0028,2110) is 01: the pixels were lossy compressed once"
        return result
    burned = str(head.get("BurnedInAnnotation", "") or "").upper() == "YES" or "SCREEN SAVE" in [str(v).upper() for v in (head.get("ImageType") or [])]
    if burned and run.profile.burned_in_annotation == "fail":
        result.fate, result.reason = "refused", "Burned In Annotation = YES (or a screen save): pixels may show identifying text"
        return result
    if burned and run.profile.burned_in_annotation == "warn":
        result.notes.append("burned-in annotation: released under the 'warn' policy")

    key = SecretKey(run.key)
    patient_key = patient_key_of(head)
    if patient_key not in run.patients:
        result.reason = "the patient could not be identified when the headers were first read"
        return result
    pseudonym, offset = run.patients[patient_key]
    result.subject = pseudonym
    root = run.profile.uid_root
    try:
        relative = Path(pseudonym, key.uid(str(head.StudyInstanceUID), root), key.uid(str(head.SeriesInstanceUID), root),
                        key.uid(str(head.SOPInstanceUID), root) + ".dcm")
    except AttributeError as exc:
        result.fate, result.reason = "refused", f"missing a Type 1 UID ({exc})"
        return result
    final = Path(run.output_root) / relative
    if final.exists():
        result.fate, result.output = "released earlier", relative.as_posix()
        return result

    if raw is not None:
        pixels = next((e for e in raw.elements if e.tag == PIXEL_DATA), None)
        pixel_bytes = None if pixels is None else pixels.end - pixels.value
    else:
        pixel_bytes = None if head.get("PixelData") is None else len(head.PixelData)
    expected = _expected_pixel_bytes(head)
    if pixel_bytes is None:
        result.fate, result.reason = "refused", "no Pixel Data"
        return result
    if syntax in _NATIVE_SYNTAXES and expected and pixel_bytes < expected:
        result.reason = f"truncated: Pixel Data has {pixel_bytes} of {expected} bytes"
        return result

    def whole_data_set() -> Tuple[pydicom.Dataset, HeaderContext]:
        """The pydicom executor: the whole data set de-identified (the IOD repairs need one)."""
        whole = head if raw is None else pydicom.dcmread(BytesIO(data))
        record = HeaderContext(key, run.profile, pseudonym, offset)
        deidentify_header(whole, record)
        return whole, record

    ds: Optional[pydicom.Dataset] = None
    rewritten: Optional[Rewritten] = None
    try:
        if raw is not None and not task.repairs:
            ctx = HeaderContext(key, run.profile, pseudonym, offset)
            rewritten = _rewriter(run).rewrite(raw, ctx)
        else:  # another encoding, or its series' sample needed IOD repairs: they are made here too
            ds, ctx = whole_data_set()
    except Exception as exc:  # noqa: BLE001 - a malformed header is one clear report line
        result.fate, result.reason = "refused", f"malformed header: {exc}"
        return result

    if final.parent not in _MADE:
        final.parent.mkdir(parents=True, exist_ok=True)
        _MADE.add(final.parent)
    tmp = final.parent / f"{TEMP_PREFIX}{final.name}"
    try:
        if task.repairs:
            _repair(ds, list(task.repairs), ctx, result)
        if rewritten is not None:
            _write(tmp, rewritten.data)
        else:
            _save(ds, tmp)
        if task.check_conformance:
            before = conformance_errors(path)
            result.new_errors = added_errors(before, conformance_errors(tmp))
            if result.new_errors and rewritten is not None:
                # The IOD repairs work on a whole data set: redo this file the pydicom way.
                (ds, ctx), rewritten = whole_data_set(), None
                _save(ds, tmp)
                result.new_errors = added_errors(before, conformance_errors(tmp))
            for _ in range(MAX_REPAIRS):
                if not result.new_errors or not _repair(ds, result.new_errors, ctx, result):
                    break
                _save(ds, tmp)
                result.new_errors = added_errors(before, conformance_errors(tmp))
            result.conformance = "checked"
        elif task.repairs:
            result.conformance = "not sampled; the repairs of its series' sample applied"
        else:
            result.conformance = "not sampled" if dciodvfy_path() else "off"
        if rewritten is not None:
            leaks = leak_scan_bytes(rewritten.data, rewritten.header_end, rewritten.decoded, ctx.originals, ctx.written)
        else:
            leaks = leak_scan(tmp, ctx.originals, ctx.written, dataset=ds)
        result.counts = _counts(ctx.counts)
        result.notes += ctx.notes
        result.leaks = [{"value": leak.masked_value, "where": leak.where} for leak in leaks]
        if result.new_errors or leaks:
            reasons = []
            if result.new_errors:
                reasons.append(f"{len(result.new_errors)} new dciodvfy error(s): {result.new_errors[0]}")
            if leaks:
                reasons.append(f"{len(leaks)} original value(s) found in the output ({leaks[0].where})")
            result.fate, result.reason = "refused", "QA gate: " + "; ".join(reasons)
            tmp.unlink()
            return result
        os.replace(tmp, final)
        result.output = relative.as_posix()
    except BaseException as exc:
        if tmp.exists():
            tmp.unlink()
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        result.fate, result.reason = "failed", f"could not write or check the output: {exc}"
        return result
    result.fate = "released"
    return result


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _save(ds: pydicom.Dataset, path: Path) -> None:
    """Write a data set de-identified by pydicom: the preamble is zeroed like the raw path's (a
    preamble may hold a TIFF header or any other bytes a dual-format file put there)."""
    ds.preamble = bytes(128)
    if "FileMetaInformationGroupLength" not in ds.file_meta:
        ds.file_meta.FileMetaInformationGroupLength = 0  # Type 1 (PS3.10 7.1); pydicom writes the real length
    ds.save_as(str(path), enforce_file_format=False)


@dataclass(frozen=True)
class _Head:
    patient_key: str
    series_uid: str
    instance_uid: str
    kept: bool


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


def _prepass(path: Path) -> Optional[_Head]:
    """What the driver needs of a DICOM file before the batch, or ``None`` when it cannot be read.
    The file's first bytes through the raw layout (the same decoding as the worker's admission);
    pydicom for anything else."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(PREPASS_BYTES)
        raw = parse_file(data, before=0x00210000)
        if len(data) == PREPASS_BYTES and (not raw.elements or raw.elements[-1].end >= len(data)):
            raise Unsupported("groups 0008-0020 go on past the bytes read")  # stopped by the buffer, not by the tag
        head: object = _RawHead(raw)
    except Exception:  # noqa: BLE001 - not in the first bytes, or not the raw layout: pydicom decides
        try:
            head = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=_PREPASS_TAGS)
        except Exception:  # noqa: BLE001 - reported by the worker
            return None
    return _Head(patient_key_of(head), str(head.get("SeriesInstanceUID", "")), str(head.get("SOPInstanceUID", "")),  # type: ignore[attr-defined]
                 str(head.get("SOPClassUID", "")) in KEPT_SOP_CLASSES)  # type: ignore[attr-defined]


def _clean_partials(output: Path) -> int:
    removed = 0
    for folder, _, files in os.walk(output):
        for name in files:
            if name.startswith(TEMP_PREFIX):
                Path(folder, name).unlink()
                removed += 1
    return removed


def deidentify(
    input_dir: PathLike,
    output_dir: PathLike,
    profile: Optional[Union[Profile, PathLike]] = None,
    key_file: Optional[PathLike] = None,
    linkage_file: Optional[PathLike] = None,
    report_dir: Optional[PathLike] = None,
    jobs: int = 1,
    conformance: str = "all",
    progress: Optional[Progress] = None,
) -> DeidReport:
    """De-identify the DICOM tree ``input_dir`` into the release folder ``output_dir``.

    Args:
        profile: a :class:`Profile`, a profile JSON path, or ``None`` for the default.
        key_file: the secret key (created when missing); default ``<OUTPUT>.private/key.hex``.
        linkage_file: original patient -> subject number; default ``<OUTPUT>.private/linkage.csv``.
        report_dir: where the audit reports go; default ``<OUTPUT>.private``.
        jobs: worker processes.
        conformance: ``"all"`` files checked with dciodvfy, ``"sample"`` the first file of each
            series, or ``"off"``.
        progress: ``progress(done, total, stage)``.

    Raises:
        VisceralError: bad folders, a private file placed inside OUTPUT or INPUT, a bad profile,
            a conformance check asked for without dciodvfy.
    """
    input_dir, output_dir = Path(input_dir).resolve(), Path(output_dir).resolve()
    if not input_dir.is_dir():
        raise VisceralError(f"{input_dir}: input folder does not exist")
    if is_inside(output_dir, input_dir) or is_inside(input_dir, output_dir):
        raise VisceralError(f"{output_dir}: the release folder must be outside the input folder (and not contain it)")
    if conformance not in CONFORMANCE_MODES:
        raise VisceralError(f"conformance check must be one of {', '.join(CONFORMANCE_MODES)}, not {conformance!r}")
    if conformance != "off" and dciodvfy_path() is None:
        raise VisceralError("the conformance check needs dciodvfy (Debian package dicom3tools); install it or pass --conformance off")
    profile = profile if isinstance(profile, Profile) else load_profile(profile)
    private = default_private_dir(output_dir)
    key_path = check_private_location(key_file or private / "key.hex", "the key file", output_dir, input_dir)
    linkage_path = check_private_location(linkage_file or private / "linkage.csv", "the linkage table", output_dir, input_dir)
    report_path = check_private_location(report_dir or private, "the report folder", output_dir, input_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    removed = _clean_partials(output_dir)
    if removed:
        log.info("removed %d partial file(s) of an interrupted run", removed)

    key, created = SecretKey.load_or_create(key_path)
    files = sorted(p for p in input_dir.rglob("*") if p.is_file())
    linkage = Linkage(linkage_path)
    heads: Dict[Path, _Head] = {}
    for n, path in enumerate(files, start=1):
        head = _prepass(path)
        if head is not None:
            heads[path] = head
        if progress:
            progress(n, len(files), "reading headers")
    kept = {p: h for p, h in heads.items() if h.kept}
    new = linkage.assign({h.patient_key for h in kept.values()}, key)
    linkage.save()
    low, high = profile.date_shift_days
    patients = {h.patient_key: (linkage.get(h.patient_key).pseudonym, key.date_offset_days(h.patient_key, low, high)) for h in kept.values()}
    # The same instance twice (e.g. in two transfer syntaxes): the first file (by path) is released.
    first_of_instance: Dict[str, Path] = {}
    duplicates: Dict[Path, Path] = {}
    sampled, seen_series = set(), set()
    for path in files:
        head = kept.get(path)
        if head is None:
            continue
        if head.instance_uid in first_of_instance:
            duplicates[path] = first_of_instance[head.instance_uid]
            continue
        first_of_instance[head.instance_uid] = path
        if head.series_uid not in seen_series:
            seen_series.add(head.series_uid)
            sampled.add(path)
    run = _Run(str(output_dir), profile, key.raw(), patients)
    tasks = [_Task(str(p), p.relative_to(input_dir).as_posix(), conformance == "all" or (conformance == "sample" and p in sampled))
             for p in files if p not in duplicates]
    report = DeidReport(str(input_dir), str(output_dir), profile.name, str(report_path), conformance,
                        new_subjects=len(new), subjects=len(linkage), key_created=created)
    results: Dict[str, FileResult] = {}
    for path, first in duplicates.items():
        source = path.relative_to(input_dir).as_posix()
        results[source] = FileResult(source, "skipped", f"the same SOP Instance UID as {first.relative_to(input_dir).as_posix()}, which is released instead")
    try:
        if conformance == "sample":
            # Each series' sample first: the IOD repairs dciodvfy asks of it are applied to the rest of its series.
            samples = [t for t in tasks if t.check_conformance]
            _run_tasks(samples, run, jobs, results, progress, 0, len(tasks))
            repairs = {kept[Path(t.path)].series_uid: tuple(results[t.source].repairs) for t in samples}
            rest = [replace(t, repairs=repairs.get(kept[Path(t.path)].series_uid, ()) if Path(t.path) in kept else ())
                    for t in tasks if not t.check_conformance]
            _run_tasks(rest, run, jobs, results, progress, len(samples), len(tasks))
        else:
            _run_tasks(tasks, run, jobs, results, progress, 0, len(tasks))
    finally:
        order = [p.relative_to(input_dir).as_posix() for p in files]
        report.files = [results[s] for s in order if s in results]
        report_path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(report_path / "deid_report.json", report.to_json())
        atomic_write_text(report_path / "deid_report.txt", report.to_text())
    return report
