"""Benchmark of `visceral convert` against dcm2niix, dicom2nifti and SimpleITK's ImageSeriesReader.

One generated CT series (default 512x512x300, int16 with a rescale intercept; a smooth body phantom
with noise, so that it compresses like a real CT), all tools on the same
files in one run; each runs in its own process so that its peak memory (max RSS) is its own.  All write
gzip-compressed NIfTI.  Run: ``python bench/convert.py [SLICES]``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import print_table, run_command  # noqa: E402

import visceral.demo.corpus as corpus  # noqa: E402

PY = sys.executable
SITK = """
import sys, SimpleITK as sitk
reader = sitk.ImageSeriesReader()
reader.SetFileNames(reader.GetGDCMSeriesFileNames(sys.argv[1]))
sitk.WriteImage(reader.Execute(), sys.argv[2], useCompression=True)
"""
DICOM2NIFTI = """
import sys, dicom2nifti
dicom2nifti.convert_directory(sys.argv[1], sys.argv[2], compression=True, reorient=False)
"""


def main() -> None:
    slices = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "in"
        patient = corpus.Patient("subject01", "subject01", "", "F", "061Y")
        corpus.write_series(src, patient, corpus.SeriesSpec("CT", rows=512, columns=512, slices=slices, slice_spacing=1.0, phantom=True))
        output_mib = 512 * 512 * slices * 2 / 2**20
        dcm2niix = shutil.which("dcm2niix") or str(Path(PY).parent / "dcm2niix")
        tools = [
            ("visceral convert --jobs 1", lambda out: [PY, "-m", "visceral", "convert", str(src), str(out), "-q", "--jobs", "1"]),
            ("dcm2niix -z y", lambda out: [dcm2niix, "-z", "y", "-b", "n", "-o", str(out), str(src)]),
            ("dicom2nifti", lambda out: [PY, "-c", DICOM2NIFTI, str(src), str(out)]),
            ("SimpleITK ImageSeriesReader", lambda out: [PY, "-c", SITK, str(src), str(out / "out.nii.gz")]),
        ]
        rows, times = [], {}
        for label, cmd in tools:
            out = tmp / f"out{len(rows)}"
            out.mkdir()
            try:
                seconds, peak = run_command(cmd(out))
            except (RuntimeError, FileNotFoundError) as exc:
                rows.append([label, "failed", "", "", "", str(exc)[:90]])
                continue
            times[label] = seconds
            rows.append([label, seconds, peak, peak / output_mib, "", ""])
            shutil.rmtree(out)
        ours = times.get("visceral convert --jobs 1")
        for row in rows:
            if isinstance(row[1], float) and ours:
                row[4] = row[1] / ours
        print_table(f"convert: one CT series 512x512x{slices} ({output_mib:.0f} MiB of int16 voxels)",
                    ["tool", "seconds", "peak RSS MiB", "peak / output size", "time / visceral", "note"], rows)


if __name__ == "__main__":
    main()
