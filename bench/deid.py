"""Benchmark of `visceral deidentify` against its peers on one generated corpus, in one run.

Peers: a plain file copy (the physical floor), dicognito, pydicom's ``deid`` (default recipe),
dicom-anonymizer and GDCM's ``gdcmanon`` (C++, PS3.15 basic profile; needs a certificate, made
here with openssl).  Every tool's output is checked by the same leak scan: a file leaks when any
value planted in an Annex E attribute, a nested sequence or a private block is still in its bytes.

The corpus: the first series has a value planted in every Annex E attribute, in nested sequences
and in a private block (adversarial); the others have realistic clinical headers (names, IDs,
dates, institution, station, device serial, operators, referring physician, UIDs).

Then the same comparison on the realistic series alone, and each tool's start-up time on an empty
folder (interpreter and imports: what a small corpus mostly measures).

Run: ``python bench/deid.py [SERIES] [SLICES] [REPEAT] [--real]`` (default 4 series x 50 slices of 512x512, each
tool once; with REPEAT > 1 each tool's best time of REPEAT runs is shown, as timeit does on a noisy machine).
The first table is a study with a real GE scanner's headers (``--real``: only that table).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import make_real_study, print_table  # noqa: E402

import visceral.demo.corpus as corpus  # noqa: E402

PY = sys.executable


def make_corpus(root: Path, series: int, slices: int) -> List[str]:
    sentinels: List[str] = []
    for s in range(series):
        patient = corpus.Patient(f"PID-BENCH-{s:03d}", f"Bench^Patient{s}", f"19{50 + s:02d}0101")
        spec = corpus.SeriesSpec("CT" if s % 2 == 0 else "MR", rows=512, columns=512, slices=slices, series_number=s + 1, seed=s)
        # The first series is adversarial (a value planted in every Annex E attribute, nested and private);
        # the others carry the identifying data of a realistic clinical header.
        written = corpus.write_series(root / f"series{s}", patient, spec, plant=(s == 0))
        sentinels += written.sentinels
    return sorted({v for v in sentinels if len(v) >= 6})


def count_leaks(folder: Path, sentinels: List[str]) -> int:
    """Files in ``folder`` holding any planted value."""
    # Printable ASCII values can only occur inside printable runs.  Numbers (dates, IDs) count only as
    # whole numbers: new 39-digit UIDs contain some planted 8-digit date by chance.
    texts = [v.encode() for v in sentinels if not v.isdigit()]
    numbers = {v.encode() for v in sentinels if v.isdigit()}
    leaking = 0
    for path in folder.rglob("*"):
        if path.is_file():
            runs = b"\0".join(re.findall(rb"[\x20-\x7e]{6,}", path.read_bytes()))
            leaking += any(e in runs for e in texts) or bool(numbers & set(re.findall(rb"[0-9]+", runs)))
    return leaking


def run(cmd: List[str], ok_codes=(0,)) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode not in ok_codes:
        raise RuntimeError(f"{' '.join(cmd[:3])}... exited {result.returncode}: {result.stderr[-600:]}")


def visceral(src: Path, out: Path, jobs: int, conformance: str) -> None:
    """visceral exits 1 when it refused files; every file it did not release is shown on stderr with its reason."""
    result = subprocess.run([PY, "-m", "visceral", "deidentify", str(src), str(out), "-q", "--jobs", str(jobs), "--conformance", conformance],
                            capture_output=True, text=True)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"visceral exited {result.returncode}: {result.stderr[-600:]}")
    for line in result.stdout.splitlines():
        if line.startswith(("refused", "failed")):
            print(f"  visceral {conformance}/{jobs}: {line}", file=sys.stderr)


def mkdir_then(out: Path, cmd: List[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    run(cmd)


DICOGNITO = """
import sys, pydicom, pathlib
from dicognito.anonymizer import Anonymizer
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
anonymizer = Anonymizer()
failed = 0
for p in sorted(src.rglob('*.dcm')):
    try:
        ds = pydicom.dcmread(str(p))
        anonymizer.anonymize(ds)
        out = dst / p.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(str(out))
    except Exception as exc:  # a peer's failure on one file: count it, go on
        failed += 1
        last = exc
if failed:
    print(f"dicognito failed on {failed} file(s), e.g. {type(last).__name__}: {last}", file=sys.stderr)
"""

DEID = """
import sys, pathlib
from deid.dicom import replace_identifiers
from deid.config import DeidRecipe
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
files = [str(p) for p in sorted(src.rglob('*.dcm'))]
dst.mkdir(parents=True, exist_ok=True)
replace_identifiers(dicom_files=files, deid=DeidRecipe(), save=True, output_folder=str(dst), overwrite=True, strip_sequences=True, remove_private=True)
"""


_RUNS = itertools.count()


def compare(title: str, src: Path, tmp: Path, sentinels: List[str], tools: List[tuple], jobs: int, repeat: int = 1) -> None:
    """Run every tool on ``src`` (best of ``repeat`` runs), count leaking files with the same scan, print the table."""
    files = len(list(src.rglob("*.dcm")))
    mib = sum(p.stat().st_size for p in src.rglob("*.dcm")) / 2**20
    rows = []
    times: Dict[str, float] = {}
    produced_any = set()
    for label, fn in tools:
        try:
            seconds = float("inf")
            for attempt in range(repeat):
                out = tmp / f"out{next(_RUNS)}"  # a fresh name: visceral's private folder stays beside it
                start = time.perf_counter()
                fn(src, out)
                seconds = min(seconds, time.perf_counter() - start)
                if attempt < repeat - 1:
                    shutil.rmtree(out, ignore_errors=True)
        except (RuntimeError, FileNotFoundError, OSError) as exc:
            rows.append([label, "failed", "", "", "", str(exc)[:80]])
            continue
        if not out.exists() or not any(out.rglob("*")):
            rows.append([label, seconds, "", 0, 0, "wrote nothing (exit 0): left out of the ratios"])
            shutil.rmtree(out, ignore_errors=True)
            continue
        times[label] = seconds
        produced = len([p for p in out.rglob("*") if p.is_file() and p.suffix != ".json"])
        if produced:
            produced_any.add(label)
        leaks_start = time.perf_counter()
        rows.append([label, seconds, files / seconds, count_leaks(out, sentinels), produced, ""])
        print(f"{label}: {seconds:.2f} s, leak count {time.perf_counter() - leaks_start:.1f} s", file=sys.stderr, flush=True)
        shutil.rmtree(out, ignore_errors=True)
    copy = times.get("plain copy (floor)")
    ours = times.get(f"visceral --jobs {jobs}, leak scan, no dciodvfy")
    python_peers = [t for k, t in times.items() if "(Python)" in k and k in produced_any]
    for row in rows:
        if isinstance(row[1], float):
            row.insert(3, row[1] / copy if copy else "")
            row.insert(4, (min(python_peers) / ours) if ours and row[0].startswith(f"visceral --jobs {jobs}, leak scan, no") and python_peers else "")
        else:
            row[3:3] = ["", ""]
    print_table(f"{title}: {files} files, {mib:.0f} MiB, {len(sentinels)} planted values, {jobs} cores",
                ["tool", "seconds", "files/s", "time / copy", "fastest Python peer / us", "files leaking", "files written", "note"], rows)
    if ours and "gdcmanon -e (C++)" in times:
        print(f"\nvisceral vs gdcmanon: {times['gdcmanon -e (C++)'] / ours:.2f}x; vs fastest Python peer: {min(python_peers) / ours if python_peers else float('nan'):.2f}x")


def main() -> None:
    real_only = "--real" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--real"]
    series = int(args[0]) if len(args) > 0 else 4
    slices = int(args[1]) if len(args) > 1 else 50
    repeat = int(args[2]) if len(args) > 2 else 1
    jobs = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "in"
        sentinels = make_corpus(src, series, slices)
        cert_dir = tmp / "cert"
        cert_dir.mkdir()
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(cert_dir / "key.pem"),
                        "-out", str(cert_dir / "cert.pem"), "-subj", "/CN=bench", "-days", "1"], capture_output=True, check=False)
        copy = ("plain copy (floor)", lambda s, out: shutil.copytree(s, out))
        ours = (f"visceral --jobs {jobs}, leak scan, no dciodvfy", lambda s, out: visceral(s, out, jobs, "off"))
        dicognito = ("dicognito (Python)", lambda s, out: run([PY, "-c", DICOGNITO, str(s), str(out)]))
        gdcmanon = ("gdcmanon -e (C++)", lambda s, out: run(["gdcmanon", "-e", "-c", str(cert_dir / "cert.pem"), "-r", "--continue", "-i", str(s), "-o", str(out)],
                                                            ok_codes=(0, 1)))  # 1: --continue skipped files it could not do
        default_gate = (f"visceral --jobs {jobs}, default gate (in-process check, dciodvfy per series)",
                        lambda s, out: visceral(s, out, jobs, "sample"))
        real = tmp / "real"
        real_sentinels = make_real_study(real, series, slices)
        compare(f"deidentify, real GE CT headers, {series} series x {slices} slices 512x512", real, tmp, real_sentinels,
                [copy, default_gate, ours, dicognito, gdcmanon], jobs, repeat)
        if real_only:
            return
        tools: List[tuple] = [
            copy, ours,
            ("visceral --jobs 1, leak scan, no dciodvfy", lambda s, out: visceral(s, out, 1, "off")),
            (f"visceral --jobs {jobs}, leak scan + dciodvfy every file", lambda s, out: visceral(s, out, jobs, "all")),
            (f"visceral --jobs {jobs}, leak scan + dciodvfy per series", lambda s, out: visceral(s, out, jobs, "sample")),
            dicognito,
            ("deid, default recipe (Python)", lambda s, out: run([PY, "-c", DEID, str(s), str(out)])),
            ("dicom-anonymizer (Python)", lambda s, out: mkdir_then(out, [str(Path(PY).parent / "dicom-anonymizer"), str(s), str(out)])),
            gdcmanon,
        ]
        compare(f"deidentify, {series} series x {slices} slices 512x512 (series 1 adversarial)", src, tmp, sentinels, tools, jobs, repeat)
        realistic = tmp / "realistic"
        for folder in sorted(src.iterdir())[1:]:
            shutil.copytree(folder, realistic / folder.name)
        compare("deidentify, realistic headers only", realistic, tmp, sentinels, [copy, ours, dicognito, gdcmanon], jobs, repeat)
        empty = tmp / "empty"
        (empty / "none").mkdir(parents=True)
        print("\nStart-up on an empty folder (interpreter, imports, pool): ", end="")
        for label, fn in (ours, dicognito, gdcmanon):
            start = time.perf_counter()
            try:
                fn(empty, tmp / "empty-out")
            except (RuntimeError, OSError):
                pass
            shutil.rmtree(tmp / "empty-out", ignore_errors=True)
            shutil.rmtree(tmp / "empty-out.private", ignore_errors=True)
            print(f"{label.split(',')[0]} {time.perf_counter() - start:.2f} s; ", end="")
        print()


if __name__ == "__main__":
    main()
