"""Throughput of the batch drivers on each executor: serial, ``--jobs 2`` and a Dask ``LocalCluster``
of 2 workers, on the same corpus, in one run -- and the cost per file that ``docs/SCALING.md``
scales up to hospital-sized collections.

The corpus: SERIES series x SLICES 512x512 axial CT slices whose headers are a real GE scanner's (as in
``deid.py``, without its gantry tilt).  Each executor de-identifies it (default gate: in-process IOD check on every file,
dciodvfy on the first file of each series), converts the release and validates the data set, each
stage as the command line runs it (``--scheduler local`` starts its cluster inside the command: its
start-up is in the wall time).  The reports' own throughput (``execution``: from the first header
read to the last result) is shown beside the wall time.

Run: ``python bench/scale.py [SERIES] [SLICES]`` (default 6 x 100).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import make_real_study, print_table  # noqa: E402

PY = sys.executable
EXECUTORS = {"serial (--jobs 1)": ["--jobs", "1"], "--jobs 2": ["--jobs", "2"], "Dask LocalCluster, 2 workers": ["--scheduler", "local", "--jobs", "2"]}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_stage(args: List[str], report: Optional[Path]) -> Dict[str, float]:
    """One ``visceral`` command; wall seconds, CPU seconds of its processes, its report's execution
    (from the file ``report``, or the JSON it printed)."""
    cpu, start = cpu_seconds(), time.perf_counter()
    result = subprocess.run([PY, "-m", "visceral", *args, "-q"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise RuntimeError(f"visceral {args[0]} exited {result.returncode}: {result.stderr[-800:]}")
    execution = json.loads(report.read_text() if report else result.stdout).get("execution", {})
    # A Dask cluster's worker processes are not children of the command: their CPU is not counted.
    return {"wall": wall, "cpu": cpu_seconds() - cpu, **{k: v for k, v in execution.items() if isinstance(v, (int, float))}}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    series = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    slices = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    files = series * slices
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "clinical"
        make_real_study(src, series, slices, axial=True)
        rows, serial, sizes = [], {}, {}
        for name, options in EXECUTORS.items():
            run = tmp / name.split()[0].strip("-()")
            release, dataset = run / "release", run / "dataset"
            deid = run_stage(["deidentify", str(src), str(release), *options], run / "release.private" / "deid_report.json")
            conv = run_stage(["convert", str(release), str(dataset), *options], run / "dataset.convert.json")
            val = run_stage(["validate", str(dataset), "--json", *options], None)
            total = deid["wall"] + conv["wall"] + val["wall"]
            if not serial:
                # Run again: every file is found released, what is left is the driver's own work per file.
                again = run_stage(["deidentify", str(src), str(release), *options], run / "release.private" / "deid_report.json")
                serial = {"deid": deid, "convert": conv, "total": total, "driver": again["seconds"] / files}
                sizes = {"input": folder_bytes(src), "release": folder_bytes(release), "dataset": folder_bytes(dataset)}
            rows.append([name, deid["wall"], files / deid["wall"], deid.get("files_per_second", 0.0), serial["deid"]["wall"] / deid["wall"],
                         conv["wall"], serial["convert"]["wall"] / conv["wall"], val["wall"], total, serial["total"] / total])
            shutil.rmtree(run)
        print_table(f"scale: {series} series x {slices} slices of 512x512 CT (real GE headers), {files} files, "
                    f"{sizes['input'] / 2**20:.0f} MiB, {os.cpu_count()} cores",
                    ["executor", "deidentify s", "files/s (wall)", "files/s (report)", "speed-up", "convert s", "speed-up",
                     "validate s", "all stages s", "speed-up"], rows)
        per_file_cpu = serial["deid"]["cpu"] / files
        per_series_cpu = serial["convert"]["cpu"] / series
        io_per_file = (sizes["input"] + sizes["release"]) / files
        io_per_series = (sizes["release"] + sizes["dataset"]) / series
        print(f"\nper file (serial): de-identification {1000 * per_file_cpu:.1f} ms CPU, reads {sizes['input'] / files / 2**10:.0f} KiB and "
              f"writes {sizes['release'] / files / 2**10:.0f} KiB; conversion {per_series_cpu / slices * 1000:.1f} ms CPU per slice, "
              f"writes {sizes['dataset'] / series / slices / 2**10:.0f} KiB per slice")
        print(f"driver's own work (a resumed run: listing, headers, numbering, released-earlier check): {1000 * serial['driver']:.2f} ms per file")
        # The paper estimate of docs/SCALING.md: 10,000 CT series of 300 slices on N single-core workers,
        # plus the driver's own work, which does not parallelize (an upper bound: the resumed run reads
        # the headers itself, which workers do in a cluster run).
        n_series, n_slices = 10_000, 300
        cpu_per_series = n_slices * (per_file_cpu + per_series_cpu / slices)
        bytes_per_series = n_slices * (io_per_file + io_per_series / slices)
        driver_s = n_series * n_slices * serial["driver"]
        estimate = []
        for workers in (1, 8, 32, 128, 512):
            parallel_s = n_series * cpu_per_series / workers
            estimate.append([workers, (parallel_s + driver_s) / 3600, n_series * cpu_per_series / (parallel_s + driver_s),
                             n_series * bytes_per_series / (parallel_s + driver_s) / 2**20])
        print_table(f"estimate: {n_series} series x {n_slices} slices, de-identify + convert, CPU-bound workers "
                    f"({cpu_per_series:.1f} CPU s and {bytes_per_series / 2**20:.0f} MiB of shared-storage traffic per series; "
                    f"driver {driver_s / 3600:.2f} h)", ["workers", "hours", "speed-up", "shared storage MiB/s needed"], estimate)


if __name__ == "__main__":
    main()
