"""Benchmark of `visceral validate` against the floor of simply reading every voxel of the data set.

Peers: there is no other validator of this format, so the reference points are
(1) nibabel loading every volume's voxels, (2) gunzip of every file: what any
checker that looks at the data must at least pay.  Run: ``python bench/validate.py [N]``.
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, timed  # noqa: E402

from visceral.annotations import export_landmarks, export_region_annotation, export_uncertainty_volumes  # noqa: E402
from visceral.conventions.frames import ImageGeometry  # noqa: E402
from visceral.conventions.landmarks import write_landmarks  # noqa: E402
from visceral.conventions.names import FileKind, VisceralName  # noqa: E402
from visceral.dataset import write_dataset_readme, write_image  # noqa: E402
from visceral.validate import validate_dataset  # noqa: E402


def make_dataset(root: Path, subjects: int, shape=(128, 128, 64)) -> None:
    geometry = ImageGeometry(shape, (0.8, 0.8, 2.5), (-50.0, -50.0, 0.0))
    rng = np.random.default_rng(0)
    kji = tuple(reversed(shape))
    for s in range(1, subjects + 1):
        image = rng.integers(-1000, 1500, size=kji, dtype=np.int16)
        name = VisceralName(s, 1, "CT")
        write_image(root, name, image, geometry, OrderedDict(modality="CT"))
        liver = np.zeros(kji, bool)
        liver[10:40, 20:80, 20:90] = True
        spleen = np.zeros(kji, bool)
        spleen[10:30, 90:120, 20:60] = True
        region = VisceralName(s, 1, "CT", FileKind.REGION, 1)
        export_region_annotation({"liver": liver, "spleen": spleen}, geometry, root / region.format())
        export_uncertainty_volumes({"liver": liver.astype(np.float32) * 0.9}, geometry, region, root)
        lms = export_landmarks([1, 2], geometry.index_to_world([[50, 50, 20], [60, 70, 30]], "RAS"), "RAS", geometry)
        write_landmarks(root / VisceralName(s, 1, "CT", FileKind.LANDMARKS, 1, extension=".csv").format(), lms)
    write_dataset_readme(root)


def main() -> None:
    subjects = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    import nibabel

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        root.mkdir()
        make_dataset(root, subjects)
        files = [p for p in root.iterdir() if p.is_file()]
        volumes = [p for p in files if p.name.endswith(".nii.gz")]
        mib = sum(p.stat().st_size for p in files) / 2**20
        rows = []
        t_gunzip = timed(lambda: [gzip.decompress(p.read_bytes()) for p in volumes])
        t_nib = timed(lambda: [np.asarray(nibabel.load(str(p)).dataobj) for p in volumes])
        t1 = timed(lambda: validate_dataset(root, jobs=1))
        jobs = os.cpu_count() or 1
        tn = timed(lambda: validate_dataset(root, jobs=jobs))
        for label, t in [("gunzip every volume (floor)", t_gunzip), ("nibabel: load every volume's voxels", t_nib),
                         ("visceral validate --jobs 1", t1), (f"visceral validate --jobs {jobs}", tn)]:
            rows.append([label, t, len(files) / t, t / t_nib])
        print_table(f"validate: {subjects} subjects, {len(files)} files, {len(volumes)} volumes, {mib:.0f} MiB on disk",
                    ["run", "seconds", "files/s", "time / nibabel"], rows)


if __name__ == "__main__":
    main()
