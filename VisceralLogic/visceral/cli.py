"""The ``visceral`` command line.

Every sub-command prints one line per problem (``file: reason``), never a
traceback for bad input, and returns a non-zero exit code when something was
refused or failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

from visceral import __version__
from visceral.conventions.version import CONVENTIONS_VERSION
from visceral.errors import VisceralError

log = logging.getLogger("visceral")

#: Exit codes.
EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

# The seed's own examples (section 4 and Tables 1-2), verbatim including its typography.
SEED_NAME_EXAMPLES = (
    "subject21_1[_modalityCT].nii",
    "subject21_1_modalityCT_regionannotation_3.nii",
    "subject21_1[_modalityCT]_regionannotation_label32_3.nii",
    "subject21_1¢_modalityCT]_lmannotation_3.nii",
)
SEED_LABEL_TABLE = "Name of the structure (consistent with RadLex),Label\nLiver,32\n"
SEED_LANDMARK_ROW = "321 134,5 423,5 262,5 [1,0,0,0,1,0,0,0,1]\n"


def _cmd_selfcheck(args: argparse.Namespace) -> int:
    """Parse the seed's own examples and check the frames against SimpleITK."""
    import numpy as np

    from visceral.conventions import frames, labels, landmarks, names

    failures = 0

    def report(ok: bool, what: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}")

    for example in SEED_NAME_EXAMPLES:
        parsed = names.parse_name(example)
        report(True, f"name {example!r} -> {parsed.format()} ({parsed.kind.value}, {parsed.style.value} form)")
    table = labels.parse_label_table(SEED_LABEL_TABLE)
    report(table.as_dict() == {"Liver": 32}, f"label table (seed Table 1) -> {table.as_dict()}")
    liver = labels.default_registry().lookup("Liver")
    report(liver.radlex_id == 58, f"registry: 'Liver' is {liver.rid}, default label {liver.radlex_id}")
    lms = landmarks.parse_landmarks(SEED_LANDMARK_ROW)
    report(lms[0].position_mm == (134.5, 423.5, 262.5), f"landmark row (seed Table 2) -> {lms[0]}")
    try:
        import SimpleITK as sitk
    except ImportError:  # pragma: no cover - SimpleITK is a runtime dependency
        report(False, "SimpleITK is not installed")
    else:
        image = sitk.Image(5, 6, 7, sitk.sitkUInt8)
        image.SetSpacing((0.7, 0.9, 2.5))
        image.SetOrigin((-12.0, 30.5, 101.0))
        c, s = np.cos(0.3), np.sin(0.3)
        image.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
        geometry = frames.ImageGeometry.from_sitk(image)
        index = (2.0, 3.5, 4.0)
        ours = geometry.index_to_world(index, "LPS")
        theirs = np.array(image.TransformContinuousIndexToPhysicalPoint(index))
        report(bool(np.allclose(ours, theirs, atol=1e-9)), f"frames: IJK->LPS matches SimpleITK on an oblique grid ({ours.round(4).tolist()})")
    print(f"conventions version {CONVENTIONS_VERSION}: {'all checks passed' if not failures else f'{failures} check(s) failed'}")
    return EXIT_OK if not failures else EXIT_PROBLEMS


def _cmd_names(args: argparse.Namespace) -> int:
    """Parse file names and print their tokens and canonical spelling."""
    from visceral.conventions.names import parse_name

    status = EXIT_OK
    for raw in args.names:
        try:
            n = parse_name(raw)
        except VisceralError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = EXIT_PROBLEMS
            continue
        tokens = [f"subject={n.subject}", f"acquisition={n.acquisition}", f"modality={n.modality or '-'}", f"kind={n.kind.value}"]
        if n.annotator is not None:
            tokens.append(f"annotator={n.annotator}")
        if n.label is not None:
            tokens.append(f"label={n.label}")
        if n.body_region:
            tokens.append(f"body_region={n.body_region}")
        print(f"{raw}: {' '.join(tokens)} style={n.style.value} canonical={n.format()}")
    return status


def _cmd_validate(args: argparse.Namespace) -> int:
    """Validate a data-set folder; exit 1 on errors, 0 otherwise (warnings do not fail)."""
    from visceral.progress import ProgressBar
    from visceral.validate import ConfigError, load_config, validate_dataset

    try:
        config = load_config(args.config) if args.config else None
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with _executor(args) as executor:
        report = validate_dataset(args.dataset, config=config, jobs=executor, progress=None if args.json or args.quiet else ProgressBar())
    print(report.to_json() if args.json else report.to_text())
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _cmd_deidentify(args: argparse.Namespace) -> int:
    """De-identify a DICOM tree; exit 1 when any file was refused or failed."""
    from visceral.deid import deidentify
    from visceral.progress import ProgressBar

    with _executor(args) as executor:
        report = deidentify(
            args.input, args.output, profile=args.profile, key_file=args.key_file, linkage_file=args.linkage,
            report_dir=args.report_dir, jobs=executor, conformance=args.conformance,
            progress=None if args.quiet else ProgressBar(),
        )
    for f in report.files:
        if f.fate in ("refused", "failed", "skipped", "dropped"):
            print(f"{f.fate}: {f.source}: {f.reason}")
    fates = report.fates()
    print(", ".join(f"{n} {fate}" for fate, n in fates.items()) + f"; identity cleaned in kept text of {report.cleaned_count()} "
          f"file(s); identifiers in uncleanable bytes: {report.leak_count()} file(s), refused")
    for warning in report.warnings:
        print(f"warning: {warning}")
    print(f"release: {report.output}")
    print(f"private (key, linkage table, reports; keep it away from the release): {report.private_dir}")
    if report.key_created:
        print("a new secret key was created; keep it to re-run or extend this release with the same pseudonyms and UIDs")
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _cmd_convert(args: argparse.Namespace) -> int:
    """Convert DICOM into a data set; exit 1 when any series was refused."""
    from visceral.convert import convert
    from visceral.progress import ProgressBar

    with _executor(args) as executor:
        report = convert(args.input, args.output, jobs=executor, progress=None if args.quiet else ProgressBar(), strict=args.strict)
    for problem in report.problems:
        print(problem.to_text())
    earlier = sum(v.earlier for v in report.volumes)
    print(f"{len(report.volumes) - earlier} volume(s) written, {earlier} already there; "
          f"{sum(p.refused for p in report.problems)} refused; data set: {report.output}")
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole product on built-in synthetic data and write a QA report."""
    from visceral.demo import run_demo
    from visceral.progress import ProgressBar

    result = run_demo(args.output, progress=None if args.quiet else ProgressBar(), jobs=args.jobs)
    print(f"data set:  {result.dataset}  ({len(result.images)} images; validation: {len(result.validation.errors)} errors, "
          f"{len(result.validation.warnings)} warnings)")
    print(f"de-identified DICOM: {result.release}  (identifiers left in bytes: {result.deid.leak_count()} files)")
    print(f"report:    {result.report_html}")
    return EXIT_OK if result.validation.ok and result.deid.leak_count() == 0 else EXIT_PROBLEMS


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a results data set against a reference data set; exit 1 when any pair was refused."""
    from pathlib import Path

    from visceral.evaluate import evaluate, write_outputs
    from visceral.progress import ProgressBar

    with _executor(args) as executor:
        report = evaluate(args.reference, args.results, jobs=executor, resample=args.resample, reference_annotator=args.reference_annotator,
                          result_annotator=args.result_annotator, progress=None if args.quiet else ProgressBar())
    out = Path(args.out) if args.out else Path(str(Path(args.results).resolve()) + ".evaluation")
    paths = write_outputs(report, out)
    for problem in report.problems:
        print(problem.to_text())
    print(f"{report.images} image(s) paired, {len(report.structures())} structure(s), {len(report.landmarks())} landmark(s), "
          f"{len(report.scores)} scores; {sum(p.refused for p in report.problems)} refused")
    print(f"scores: {paths['scores.csv']}  aggregates: {paths['aggregates.csv']}  report: {paths['report.html']}")
    if not report.images:
        print("nothing scored: no image of the results pairs with an annotated image of the reference (subject, acquisition, "
              "modality and body region of the names)")
    return EXIT_OK if report.ok and report.images else EXIT_PROBLEMS


def _at_least_one(text: str) -> int:
    """``--jobs``: a whole number, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {value}")
    return value


def _add_batch_options(parser: argparse.ArgumentParser, jobs_help: str, executors: bool = True) -> None:
    """``--jobs`` and ``--quiet`` (and ``--scheduler``), shared by the batch commands."""
    parser.add_argument("--jobs", type=_at_least_one, default=os.cpu_count() or 1, metavar="N", help=jobs_help)
    if executors:
        parser.add_argument("--scheduler", metavar="ADDRESS", help="run the work on a Dask cluster: tcp://HOST:PORT of a running scheduler "
                                                                   "(its workers must see the same paths), or 'local' to start one of --jobs "
                                                                   "worker processes here; needs  pip install 'visceral[dask]'")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _executor(args: argparse.Namespace):
    """The executor the batch options ask for (a context manager that closes it); a cluster is
    announced with its dashboard address."""
    from visceral.parallel import make_executor

    executor = make_executor(args.jobs, args.scheduler)
    if args.scheduler:
        print(f"running on a {executor.describe()}", file=sys.stderr, flush=True)
    return executor


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``visceral`` command."""
    parser = argparse.ArgumentParser(prog="visceral", description="VISCERAL data-format conventions toolkit.")
    parser.add_argument("--version", action="version", version=f"visceral {__version__} (conventions {CONVENTIONS_VERSION})")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("selfcheck", help="check the conventions code on the seed's own examples")
    p.set_defaults(func=_cmd_selfcheck)
    p = sub.add_parser("demo", help="run the whole product on built-in demo data and write report.html")
    p.add_argument("output", nargs="?", default="visceral-demo", metavar="OUTPUT", help="output folder (default ./visceral-demo)")
    _add_batch_options(p, "worker processes (default: all cores)", executors=False)
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("names", help="parse file names and show their tokens")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=_cmd_names)
    p = sub.add_parser("deidentify", help="de-identify a DICOM tree into a release folder (QA gate on)")
    p.add_argument("input", metavar="INPUT", help="folder of DICOM files (any names; never modified)")
    p.add_argument("output", metavar="OUTPUT", help="release folder")
    p.add_argument("--profile", metavar="FILE", help="de-identification profile (JSON); default: the VISCERAL profile")
    p.add_argument("--key-file", metavar="FILE", help="secret key (created if missing); default OUTPUT.private/key.hex")
    p.add_argument("--linkage", metavar="FILE", help="linkage table original patient -> subject; default OUTPUT.private/linkage.csv")
    p.add_argument("--report-dir", metavar="DIR", help="where the audit reports go; default OUTPUT.private")
    p.add_argument("--conformance", choices=("all", "sample", "off"), default="sample",
                   help="every output is checked against its IOD in process; dciodvfy, where installed, checks as a second "
                        "opinion every file (all), the first file of each series (sample, the default), or none (off)")
    _add_batch_options(p, "worker processes (default: all cores)")
    p.set_defaults(func=_cmd_deidentify)
    p = sub.add_parser("convert", help="convert (de-identified) DICOM into a VISCERAL data set")
    p.add_argument("input", metavar="INPUT", help="folder of DICOM files")
    p.add_argument("output", metavar="OUTPUT", help="data-set folder")
    p.add_argument("--strict", action="store_true", help="refuse gantry-tilted stacks instead of resampling them (original voxels only)")
    _add_batch_options(p, "worker processes (default: all cores)")
    p.set_defaults(func=_cmd_convert)
    p = sub.add_parser("validate", help="check a data set against the conventions")
    p.add_argument("dataset", metavar="DATASET", help="data-set folder")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.add_argument("--config", metavar="FILE", help='JSON severity overrides: {"severity": {"CODE": "error|warning|ignore"}}')
    _add_batch_options(p, "worker processes for voxel checks (default: all cores)")
    p.set_defaults(func=_cmd_validate)
    p = sub.add_parser("evaluate", help="score results against a reference data set (regions and landmarks)")
    p.add_argument("reference", metavar="REFERENCE_DATASET", help="data set with the reference annotations")
    p.add_argument("results", metavar="RESULTS_DATASET", help="data set with the results, named by the same conventions")
    p.add_argument("--out", metavar="DIR", help="where scores.csv, aggregates.csv, evaluation.json and report.html go "
                                                "(default: RESULTS_DATASET.evaluation beside the results)")
    p.add_argument("--resample", action="store_true", help="put a result on another voxel grid onto the reference grid with nearest "
                                                           "neighbour (reported as RESAMPLED) instead of refusing it (GRID_MISMATCH)")
    p.add_argument("--reference-annotator", type=int, metavar="N", help="the reference annotator, where an image has several")
    p.add_argument("--result-annotator", type=int, metavar="N", help="the result annotator, where an image has several")
    _add_batch_options(p, "worker processes, one image each (default: all cores)")
    p.set_defaults(func=_cmd_evaluate)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except VisceralError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except OSError as exc:  # a folder or file the command cannot create or write (read-only, full, no permission)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        print("interrupted; finished files are complete, run again to resume", file=sys.stderr)
        return 130
