"""Helpers shared by the benchmarks: timing, peak memory of a child process, the result table, a study
with a real scanner's headers."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Sequence, Tuple


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    """Best wall-clock seconds of ``repeat`` runs of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


_MEASURE = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "sys.stderr.write(r.stderr[-2000:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(r.returncode)\n"
)


def run_command(cmd: Sequence[str]) -> Tuple[float, float]:
    """Run ``cmd`` under a fresh wrapper process; return (seconds, the command's own peak RSS in MiB)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 1):  # visceral exits 1 when something was refused
        raise RuntimeError(f"{cmd[0]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return seconds, float(result.stdout.strip().splitlines()[-1]) / 1024.0


def print_table(title: str, header: List[str], rows: List[List[object]]) -> None:
    """Print a Markdown table."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{c:.3g}" if isinstance(c, float) else str(c) for c in row) + " |")
    sys.stdout.flush()


REAL_TEMPLATE = Path(__file__).resolve().parent.parent / "Testing" / "data" / "realworld" / "ge_ct_tilt" / "07.dcm"


def make_real_study(root: Path, series: int, slices: int, axial: bool = False) -> List[str]:
    """A study of ``series`` x ``slices`` 512x512 CT slices whose headers are a real GE scanner's
    (Testing/data/realworld/ge_ct_tilt/07.dcm) with a clinical identity: what hospitals export.
    ``axial``: without the template's gantry tilt (slices conversion need not resample)."""
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid

    from visceral.fileio import write_dicom

    template = pydicom.dcmread(str(REAL_TEMPLATE))
    for keyword in ("PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence"):
        if keyword in template:  # a fresh clinical export, not one de-identified before (gdcmanon -e refuses those)
            del template[keyword]
    if axial:
        template.GantryDetectorTilt = 0
        template.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    rng = np.random.default_rng(0)
    sentinels = []
    for s in range(series):
        name, pid, birth = f"Realistic^Patient{s // 2}^Maria", f"00{4711 + s // 2}0815", f"19{50 + s // 2:02d}0203"
        sentinels += [name, pid, birth, "Hedwig Klinikum Nordstadt"]
        study, series_uid, frame = generate_uid(), generate_uid(), generate_uid()
        folder = root / f"series{s}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(slices):
            ds = template.copy()
            ds.PatientName, ds.PatientID, ds.PatientBirthDate = name, pid, birth
            ds.InstitutionName, ds.ReferringPhysicianName, ds.AccessionNumber = "Hedwig Klinikum Nordstadt", "Brandtner^Walburga", f"A{pid}"
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series_uid, frame
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [float(ds.ImagePositionPatient[0]), float(ds.ImagePositionPatient[1]), -1.25 * k]
            ds.PixelData = rng.integers(0, 2000, (512, 512), dtype=np.int16).tobytes()
            write_dicom(ds, str(folder / f"IM{k:04d}.dcm"))
    return sentinels
