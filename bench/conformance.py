"""How often the in-process IOD check and dciodvfy disagree, on the real-world corpus and its release.

For every real file (Testing/data/realworld) and its de-identified output, both checkers are run:
the in-process check (:mod:`visceral.deid.conformance`, the gate that needs no external program) and
dciodvfy (dicom3tools).  A file "agrees" when both find errors or both find none; the table lists the
files where one finds errors and the other does not, with the first message of each, and the time
each checker takes per file.

Run: ``python bench/conformance.py`` (needs dciodvfy).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import pydicom

from visceral.deid import deidentify
from visceral.deid.conformance import check
from visceral.deid.qa import conformance_errors

CORPUS = Path(__file__).resolve().parent.parent / "Testing" / "data" / "realworld"


def in_process(path: Path) -> list:
    return [f"{f.path}: {f.message}" for f in check(pydicom.dcmread(str(path), stop_before_pixels=True, force=True)) if f.severity == "error"]


def main() -> None:
    if shutil.which("dciodvfy") is None:
        sys.exit("dciodvfy (Debian package dicom3tools) is needed")
    with tempfile.TemporaryDirectory() as tmp:
        report = deidentify(CORPUS, Path(tmp) / "out", jobs=2, conformance="off")
        pairs = [("input", CORPUS / f.source) for f in report.files if f.sop_class and f.fate != "skipped"]
        pairs += [("output", Path(tmp) / "out" / f.output) for f in report.files if f.fate == "released"]
        rows, timing = [], {"in-process": 0.0, "dciodvfy": 0.0}
        agree = 0
        for kind, path in pairs:
            start = time.perf_counter()
            ours = in_process(path)
            timing["in-process"] += time.perf_counter() - start
            start = time.perf_counter()
            theirs = conformance_errors(path)
            timing["dciodvfy"] += time.perf_counter() - start
            if bool(ours) == bool(theirs):
                agree += 1
            else:
                rows.append((kind, path.name, ours[:1], theirs[:1]))
        print(f"{len(pairs)} files ({sum(k == 'input' for k, _ in pairs)} real inputs, {sum(k == 'output' for k, _ in pairs)} released "
              f"outputs): both checkers agree on {agree} ({100 * agree / len(pairs):.0f} %) about whether the file has errors")
        print(f"time per file: in-process {1000 * timing['in-process'] / len(pairs):.1f} ms, dciodvfy {1000 * timing['dciodvfy'] / len(pairs):.1f} ms")
        for kind, name, ours, theirs in rows:
            print(f"  {kind:6} {name}: in-process {ours or 'no error'} | dciodvfy {theirs or 'no error'}")


if __name__ == "__main__":
    main()
