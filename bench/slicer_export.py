"""Benchmark of the Slicer module's segmentation export on the real MRML library (slicer-core).

A 512x512x300 reference image and a segmentation of 20 box-shaped segments on its lattice (as the
Segment Editor makes them); the export (label volume + label table, RadLex values) is timed against a
plain SimpleITK compressed write of the same uint16 label array.  The two are run in alternation
(``PAIRS`` pairs, the first export of the process reported apart) and medians compared; the peak of
resident memory during each export (Linux ``VmHWM``, reset before the export) is given above the
memory held just before it, and the resident memory and scene nodes after every export show that
neither grows.  Run: ``python bench/slicer_export.py [SLICES] [SEGMENTS] [PAIRS]``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "VisceralModule"))
from _common import print_table  # noqa: E402


def _status(field: str) -> float:
    """A field of /proc/self/status in MiB (VmRSS: resident now, VmHWM: peak since the last reset)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Start VmHWM again from the resident memory now (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def build(tmp: Path, slices: int, count: int):
    """The scene: reference volume, segmentation of ``count`` non-overlapping boxes; and the label array
    (RadLex values) the export must write."""
    import slicer
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk

    from visceral.conventions.frames import ImageGeometry
    from visceral.conventions.labels import default_registry
    from visceral.conventions.names import FileKind, VisceralName
    from visceral.dataset import write_image
    from VisceralLib import MRMLBridge, Scenarios

    structures = [s.name for s in default_registry()][:count]
    geometry = ImageGeometry((512, 512, slices), (0.7, 0.7, 1.5), (-180.0, -180.0, 0.0), ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    name = VisceralName(1, 1, "CT", FileKind.IMAGE)
    write_image(tmp, name, np.zeros((slices, 512, 512), np.int16), geometry)
    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(tmp / name.format()))
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    rng = np.random.default_rng(1)
    labels = np.zeros((slices, 512, 512), np.uint16)
    for structure in structures:
        size = rng.integers(20, 120, size=3)
        lo = [int(rng.integers(0, slices - min(size[0], slices - 1))), int(rng.integers(0, 512 - size[1])), int(rng.integers(0, 512 - size[2]))]
        box = (slice(lo[0], min(lo[0] + size[0], slices)), slice(lo[1], lo[1] + size[1]), slice(lo[2], lo[2] + size[2]))
        box_mask = np.zeros((slices, 512, 512), np.uint8)
        box_mask[box] = 1
        box_mask[labels != 0] = 0  # no overlaps: a label volume
        labels[box_mask != 0] = default_registry().lookup(structure).radlex_id
        labelmap = slicer.vtkMRMLLabelMapVolumeNode()
        scene.AddNode(labelmap)
        image = vtk.vtkImageData()
        image.SetDimensions(512, 512, slices)
        image.GetPointData().SetScalars(numpy_to_vtk(box_mask.ravel(), deep=True))
        labelmap.SetAndObserveImageData(image)
        m = vtk.vtkMatrix4x4()
        volume.GetIJKToRASMatrix(m)
        labelmap.SetIJKToRASMatrix(m)
        before = segmentation.GetSegmentation().GetNumberOfSegments()
        slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
        segmentation.GetSegmentation().GetSegment(segmentation.GetSegmentation().GetNthSegmentID(before)).SetName(structure)
        scene.RemoveNode(labelmap)
        del box_mask
    return scene, volume, segmentation, labels


def main() -> None:
    import SimpleITK as sitk

    from visceral.conventions.names import FileKind, VisceralName
    from visceral.imageio import read_volume
    from VisceralLib import MRMLBridge

    slices = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    pairs = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scene, volume, segmentation, labels = build(tmp, slices, count)
        annotation = VisceralName(1, 1, "CT", FileKind.REGION, 1)
        image = sitk.GetImageFromArray(labels)
        nodes_before = scene.GetNumberOfNodes()

        def export(run: int):
            held = _status("VmRSS")
            _reset_peak()
            start = time.perf_counter()
            result = MRMLBridge.exportSegmentation(segmentation, volume, str(tmp / f"export{run}"), annotation)
            seconds = time.perf_counter() - start
            return seconds, _status("VmHWM") - held, result

        def plain() -> float:
            start = time.perf_counter()
            sitk.WriteImage(image, str(tmp / "plain.nii.gz"), useCompression=True)
            return time.perf_counter() - start

        first, first_peak, result = export(0)
        written, _ = read_volume(result.files[0])
        if not np.array_equal(written, labels):
            raise SystemExit("the export does not hold the label array")
        after_first = _status("VmRSS")
        exports, plains, peaks, ratios = [], [], [], []
        for run in range(1, pairs + 1):
            seconds, peak, _ = export(run)
            exports.append(seconds)
            peaks.append(peak)
            plains.append(plain())
            ratios.append(exports[-1] / plains[-1])
        growth = _status("VmRSS") - after_first
        array_mib = labels.nbytes / 2**20
        plain_median = statistics.median(plains)
        rows = [
            ["first export of the process", first, first / plain_median, first_peak, ""],
            [f"export, median of {pairs} (min {min(exports):.3f}, max {max(exports):.3f})", statistics.median(exports),
             statistics.median(ratios), statistics.median(peaks), f"{growth:+.1f} MiB, {scene.GetNumberOfNodes() - nodes_before:+d} nodes"],
            [f"SimpleITK compressed write of the uint16 labels, median of {pairs}", plain_median, 1.0, "", ""],
        ]
        print_table(f"segmentation export, 512x512x{slices}, {count} segments (label array {array_mib:.0f} MiB)",
                    ["what", "seconds", "time / plain write (median of pair ratios)", "peak extra memory MiB",
                     f"growth over {pairs} more exports"], rows)


if __name__ == "__main__":
    main()
