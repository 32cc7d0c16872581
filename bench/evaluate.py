"""Benchmark of the scoring (`visceral evaluate`) against SimpleITK's filters and seg-metrics.

One generated pair of label volumes (default 512x512x300, voxels 0.8 x 0.8 x 1.5 mm, 20 ellipsoid structures of
10-40 mm semi-axes, the result's structures moved by a few mm), in memory, all tools in one run:

- Visceral: every region metric of the 20 structures (Dice, Jaccard, volume similarity, sensitivity,
  specificity, ASSD, Hausdorff, HD95), surface distances once per structure on its bounding box;
- SimpleITK: ``LabelOverlapMeasuresImageFilter`` (one pass, all labels: the overlap measures) plus
  ``HausdorffDistanceImageFilter`` per structure on the whole volume (Hausdorff and average distance);
- seg-metrics: ``computeQualityMeasures`` per structure on the whole volume: its surface metrics, and its
  overlap metrics (which iterate over every voxel in Python, so they are timed on a thin slab and scaled).

Peers that take long are timed on the first ``PEER_STRUCTURES`` structures and scaled to all, said in the
table.  Also: ``visceral evaluate`` end to end on the same pair written as two data sets (reading the
gzip-compressed NIfTI files, writing the tables and the report).
Run: ``python bench/evaluate.py [SLICES] [STRUCTURES] [PEER_STRUCTURES]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import print_table, run_command, timed  # noqa: E402

SPACING = (0.8, 0.8, 1.5)  # i, j, k (mm)


def label_pair(slices: int, structures: int, seed: int = 0):
    """Reference and result label volumes ``[k, j, i]`` (uint8) with ``structures`` ellipsoids each."""
    shape = (slices, 512, 512)
    rng = np.random.default_rng(seed)
    reference = np.zeros(shape, np.uint8)
    result = np.zeros(shape, np.uint8)
    for label in range(1, structures + 1):
        centre = rng.uniform([0.2 * slices, 120, 120], [0.8 * slices, 390, 390])
        radii_mm = rng.uniform(10, 40, 3)
        moved = centre + rng.normal(0, 2.0, 3)
        half = [int(radii_mm[a] / SPACING[2 - a]) + 4 for a in range(3)]
        box = tuple(slice(max(0, int(centre[a]) - half[a]), min(shape[a], int(centre[a]) + half[a] + 1)) for a in range(3))
        k, j, i = np.ogrid[box]
        for volume, c in ((reference, centre), (result, moved)):
            inside = (((k - c[0]) * SPACING[2] / radii_mm[0]) ** 2 + ((j - c[1]) * SPACING[1] / radii_mm[1]) ** 2
                      + ((i - c[2]) * SPACING[0] / radii_mm[2]) ** 2) <= 1
            volume[box][inside] = label
    return reference, result


def main() -> None:
    slices = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    structures = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    peer_structures = min(structures, int(sys.argv[3]) if len(sys.argv) > 3 else structures)
    import SimpleITK as sitk
    from seg_metrics.seg_metrics import computeQualityMeasures

    from visceral.evaluate.metrics import label_metrics

    reference, result = label_pair(slices, structures)
    labels = list(range(1, structures + 1))
    pairs = {str(v): (v, v) for v in labels}
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    rows, times = [], {}

    ours = {}
    times["visceral"] = timed(lambda: ours.update(label_metrics(reference, result, SPACING, pairs)), repeat=2)
    rows.append(["Visceral label_metrics (all 8 region metrics)", times["visceral"], structures, ""])

    def sitk_images():
        ref_image, res_image = sitk.GetImageFromArray(reference), sitk.GetImageFromArray(result)
        ref_image.SetSpacing(SPACING)
        res_image.SetSpacing(SPACING)
        return ref_image, res_image

    def sitk_overlap():
        ref_image, res_image = sitk_images()
        f = sitk.LabelOverlapMeasuresImageFilter()
        f.Execute(res_image, ref_image)
        return {v: f.GetDiceCoefficient(v) for v in labels}

    sitk_dice = {}
    times["sitk overlap"] = timed(lambda: sitk_dice.update(sitk_overlap()))
    rows.append(["SimpleITK LabelOverlapMeasures (overlap only, all labels)", times["sitk overlap"], structures, ""])

    sitk_hd = {}

    def sitk_hausdorff():
        ref_image, res_image = sitk_images()
        for v in labels[:peer_structures]:
            f = sitk.HausdorffDistanceImageFilter()
            f.Execute(ref_image == v, res_image == v)
            sitk_hd[v] = f.GetHausdorffDistance()

    seconds = timed(sitk_hausdorff) * structures / peer_structures
    times["sitk hausdorff"] = seconds
    note = "" if peer_structures == structures else f"timed on {peer_structures}, scaled to {structures}"
    rows.append(["SimpleITK HausdorffDistance per label", seconds, structures, note])
    times["sitk"] = times["sitk overlap"] + times["sitk hausdorff"]
    rows.append(["SimpleITK both (overlap + Hausdorff)", times["sitk"], structures, note])

    seg = {}

    def seg_metrics():
        for v in labels[:peer_structures]:
            seg[v] = computeQualityMeasures((result == v).astype(np.uint8), (reference == v).astype(np.uint8), np.array(SPACING),
                                            metrics_names=["hd", "hd95", "msd"], fullyConnected=False)

    times["seg-metrics"] = timed(seg_metrics) * structures / peer_structures
    rows.append(["seg-metrics computeQualityMeasures per label, surface metrics only (hd, hd95, msd)", times["seg-metrics"], structures, note])
    # its overlap metrics sum a SimpleITK image with np.sum, one Python call per voxel: timed on a thin slab, scaled by voxel count
    slab = (slice(0, 4),)
    slab_seconds = timed(lambda: computeQualityMeasures((result[slab] == 1).astype(np.uint8), (reference[slab] == 1).astype(np.uint8),
                                                        np.array(SPACING), metrics_names=["dice", "jaccard", "vs"], fullyConnected=False))
    overlap = slab_seconds * reference.shape[0] / 4 * structures
    times["seg-metrics all"] = times["seg-metrics"] + overlap
    rows.append(["seg-metrics all metrics (overlap part scaled from a 4-slice slab)", times["seg-metrics all"], structures,
                 f"overlap part {slab_seconds * reference.shape[0] / 4:.0f} s per label, scaled"])

    with tempfile.TemporaryDirectory() as tmp:
        from visceral.annotations import export_region_annotation
        from visceral.conventions.frames import ImageGeometry
        from visceral.conventions.names import FileKind, VisceralName

        geometry = ImageGeometry((512, 512, slices), SPACING, (-204.8, -204.8, -200.0))
        registry_names = ["liver", "spleen", "right kidney", "left kidney", "aorta", "first lumbar vertebra", "right lung", "left lung",
                          "pancreas", "gallbladder", "urinary bladder", "trachea", "sternum", "right psoas major", "left psoas major",
                          "right rectus abdominis", "left rectus abdominis", "thyroid gland", "right adrenal gland", "left adrenal gland"]
        name = VisceralName(1, 1, "CT")
        for folder, volume, annotator in (("ref", reference, 1), ("res", result, 2)):
            masks = {registry_names[v - 1]: volume == v for v in labels}
            export_region_annotation(masks, geometry, Path(tmp) / folder / name.annotation(FileKind.REGION, annotator).format())
        cmd = [sys.executable, "-m", "visceral", "evaluate", str(Path(tmp) / "ref"), str(Path(tmp) / "res"), "--out", str(Path(tmp) / "out"), "-q", "--jobs", "1"]
        seconds, peak = run_command(cmd)
        rows.append(["visceral evaluate end to end (read .nii.gz, score, write tables + report)", seconds, structures, f"peak RSS {peak:.0f} MiB"])

    for row in rows:
        row.append(row[1] / times["visceral"])
    # the numbers agree where the definitions do: Dice everywhere, the Hausdorff distance (whole-set vs surface) nearly
    dice_gap = max(abs(ours[str(v)]["dice"] - sitk_dice[v]) for v in labels)
    hd_gap = max(abs(ours[str(v)]["hausdorff"] - sitk_hd[v]) for v in sitk_hd)
    print_table(f"evaluate: one pair {512}x{512}x{slices}, {structures} structures, voxels {SPACING} mm; SimpleITK threads {threads}",
                ["tool", "seconds", "structures", "note", "time / Visceral"], rows)
    print(f"\nlargest |Dice(Visceral) - Dice(SimpleITK)| = {dice_gap:.2e}; largest |HD(Visceral) - HD(SimpleITK)| = {hd_gap:.3g} mm "
          f"(SimpleITK's Hausdorff is between whole voxel sets, ours between surfaces)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
