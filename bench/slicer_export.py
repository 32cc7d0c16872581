"""Benchmark of the Slicer module's segmentation export on the real MRML library (slicer-core).

A 512x512x300 reference image and a segmentation of 20 box-shaped segments on its lattice (as the
Segment Editor makes them); the export (label volume + label table, RadLex values) is timed against a
plain SimpleITK compressed write of the same uint16 label array, and repeated to show that neither
the scene nor the memory grows.  Run: ``python bench/slicer_export.py [SLICES] [SEGMENTS]``.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "VisceralModule"))
from _common import print_table  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    import SimpleITK as sitk
    import slicer
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk

    from visceral.conventions.frames import ImageGeometry
    from visceral.conventions.labels import default_registry
    from visceral.conventions.names import FileKind, VisceralName
    from visceral.dataset import write_image
    from VisceralLib import MRMLBridge, Scenarios

    slices = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    structures = [s.name for s in default_registry()][:count]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
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
        annotation = VisceralName(1, 1, "CT", FileKind.REGION, 1)
        rows = []
        nodes_before = scene.GetNumberOfNodes()
        baseline = rss_mib()
        for run in range(3):
            start = time.perf_counter()
            MRMLBridge.exportSegmentation(segmentation, volume, str(tmp / f"export{run}"), annotation)
            seconds = time.perf_counter() - start
            rows.append([f"bridge export, run {run + 1}", seconds, rss_mib() - baseline, scene.GetNumberOfNodes() - nodes_before])
        image = sitk.GetImageFromArray(labels)
        start = time.perf_counter()
        sitk.WriteImage(image, str(tmp / "plain.nii.gz"), useCompression=True)
        plain = time.perf_counter() - start
        rows.append(["SimpleITK compressed write of the uint16 labels", plain, "", ""])
        for row in rows[:3]:
            row.append(row[1] / plain)
        rows[3].append(1.0)
        array_mib = labels.nbytes / 2**20
        print_table(f"segmentation export, 512x512x{slices}, {count} segments (label array {array_mib:.0f} MiB)",
                    ["what", "seconds", "RSS growth MiB", "scene nodes added", "time / plain write"], rows)


if __name__ == "__main__":
    main()
