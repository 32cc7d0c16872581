"""Test scenarios shared by pytest (bare MRML of ``slicer-core``) and the Slicer self-test ``VisceralTest``.

Each scenario builds its own data on an oblique, anisotropic, left-handed grid (the hard case:
Slicer re-indexes such a grid), drives the bridge, and raises ``AssertionError`` on a mismatch.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import slicer
import vtk

from VisceralLib import MRMLBridge
from visceral.conventions.frames import ImageGeometry, rotation_xyz
from visceral.conventions.names import FileKind, VisceralName
from visceral.dataset import write_image
from visceral.imageio import read_volume

IMAGE = VisceralName(3, 1, "CT")
REGION = VisceralName(3, 1, "CT", FileKind.REGION, 2)


#: Oblique, anisotropic and left-handed.
GEOMETRY = ImageGeometry((14, 12, 9), (0.7, 0.9, 2.5), (-40.0, 25.0, 90.0), tuple(map(tuple, rotation_xyz(0.3, -0.2, 0.15) @ np.diag([1.0, -1.0, 1.0]))))


def newScene():
    """A scene as Slicer's own would be: segmentation converter rules registered."""
    scene = slicer.vtkMRMLScene()
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(scene)
    return scene


def structures() -> Dict[str, np.ndarray]:
    """Disjoint structures ``[k, j, i]`` on :data:`GEOMETRY`; two RadLex IDs above int16's 32767."""
    shape = tuple(reversed(GEOMETRY.shape))

    def box(lo, hi):
        m = np.zeros(shape, bool)
        m[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]] = True
        return m

    return {"liver": box((1, 1, 1), (6, 6, 4)), "spleen": box((8, 1, 1), (13, 5, 3)),
            "right rectus abdominis": box((2, 7, 4), (12, 11, 7)), "left rectus abdominis": box((1, 7, 8), (5, 9, 9))}


def writeImage(folder: Path) -> Path:
    """The reference image of the scenarios, written as a data-set image."""
    values = (np.arange(np.prod(GEOMETRY.shape)) % 251).astype(np.int16).reshape(tuple(reversed(GEOMETRY.shape)))
    return write_image(folder, IMAGE, values, GEOMETRY, OrderedDict(modality="CT"))


def segmentationFromMasks(scene, volumeNode, masks: Dict[str, np.ndarray], order) -> "slicer.vtkMRMLSegmentationNode":
    """A segmentation node with one segment per structure, added in ``order`` (input on the file grid)."""
    slicer_grid = MRMLBridge.geometryFromVolumeNode(volumeNode)
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
    for n, name in enumerate(order, start=1):
        labelmap = MRMLBridge.labelmapNode(scene, slicer_grid.array_from(masks[name].astype(np.uint8), GEOMETRY), volumeNode)
        before = segmentation.GetSegmentation().GetNumberOfSegments()
        assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
        segment_id = segmentation.GetSegmentation().GetNthSegmentID(before)
        segmentation.GetSegmentation().GetSegment(segment_id).SetName(name if n % 2 else name.title())  # names as users type them
        scene.RemoveNode(labelmap)
    return segmentation


def scenarioSegmentationRoundTrip(workdir: str) -> Dict[str, object]:
    """Segmentation -> export -> re-import: identical voxels and names; order-independent labels;
    cross-checked against Slicer's own ``ExportSegmentsToLabelmapNode`` (and its int16 clamp)."""
    folder = Path(workdir)
    scene = newScene()
    volume = MRMLBridge.loadVolume(scene, str(writeImage(folder)))
    assert MRMLBridge.volumeTokens(volume) == IMAGE
    masks = structures()
    names = list(masks)
    results = []
    for n, order in enumerate((names, list(reversed(names)), names[1:] + names[:1])):
        segmentation = segmentationFromMasks(scene, volume, masks, order)
        out = folder / f"export{n}"
        MRMLBridge.exportSegmentation(segmentation, volume, str(out), REGION)
        labels, grid = read_volume(out / REGION.format())
        assert grid.same_grid(GEOMETRY, 1e-4), "the label volume is not on the image's file grid"
        results.append(labels)
        if n == 0:
            first = segmentation
    for labels in results[1:]:
        assert np.array_equal(labels, results[0]), "segment order changed the voxels"
    labels = results[0]
    assert labels.dtype == np.uint16 and set(np.unique(labels)) == {0, 58, 86, 40357, 40358}
    for name, value in (("liver", 58), ("spleen", 86), ("right rectus abdominis", 40357), ("left rectus abdominis", 40358)):
        assert np.array_equal(labels == value, masks[name]), name
    # Deleting and re-adding a segment changes nothing either.
    seg = first.GetSegmentation()
    seg.RemoveSegment(seg.GetNthSegmentID(0))
    readded = segmentationFromMasks(scene, volume, {"liver": masks["liver"]}, ["liver"])
    seg.CopySegmentFromSegmentation(readded.GetSegmentation(), readded.GetSegmentation().GetNthSegmentID(0))
    MRMLBridge.exportSegmentation(first, volume, str(folder / "readded"), REGION)
    assert np.array_equal(read_volume(folder / "readded" / REGION.format())[0], labels)
    # Re-import into MRML: names and voxels back.
    imported = MRMLBridge.importRegionAnnotation(scene, str(folder / "export0" / REGION.format()), volume)
    back = MRMLBridge.segmentMasks(imported, [imported.GetSegmentation().GetNthSegmentID(i) for i in range(4)], volume)[0]
    slicer_grid = MRMLBridge.geometryFromVolumeNode(volume)
    got = {imported.GetSegmentation().GetSegment(s).GetName(): GEOMETRY.array_from(m, slicer_grid) for s, m in back.items()}
    assert set(got) == set(masks)
    for name, mask in masks.items():
        assert np.array_equal(got[name], mask), name
    # Slicer's own export agrees where it can (labels <= 32767) and shows the clamp above.
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(first.GetSegmentation().GetSegmentIdBySegmentName("spleen") or first.GetSegmentation().GetSegmentIdBySegmentName("Spleen"))
    labelmap = slicer.vtkMRMLLabelMapVolumeNode()
    scene.AddNode(labelmap)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(first, ids, labelmap, volume)
    theirs = GEOMETRY.array_from(MRMLBridge.arrayFromVolumeNode(labelmap), MRMLBridge.geometryFromVolumeNode(labelmap)) != 0
    assert np.array_equal(theirs, labels == 86), "the bridge disagrees with Slicer's own labelmap export"
    return {"labels": labels, "scene": scene}


def scenarioMarkupsRoundTrip(workdir: str) -> Tuple[float, float]:
    """Point list with covariance -> CSV -> point list: positions within 1e-6 mm, covariances exact.

    Also through ``.mrk.json``: positions are stored in LPS, the covariance measurement verbatim (RAS).
    Returns (max position error mm, max covariance error).
    """
    folder = Path(workdir)
    scene = newScene()
    volume = MRMLBridge.loadVolume(scene, str(writeImage(folder)))
    rng = np.random.default_rng(11)
    points = GEOMETRY.index_to_world(rng.uniform(0, 8, size=(5, 3)), "RAS")
    covariances = [None if n == 2 else (lambda a: a @ a.T + np.eye(3))(rng.normal(size=(3, 3))) for n in range(5)]
    node = slicer.vtkMRMLMarkupsFiducialNode()
    scene.AddNode(node)
    for n, p in enumerate(points):
        node.AddControlPoint(vtk.vtkVector3d(*p), f"{100 + n}")
    MRMLBridge.setMarkupsCovariances(node, covariances)
    # Through Slicer's own markups file first.
    storage = slicer.vtkMRMLMarkupsJsonStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(folder / "points.mrk.json"))
    assert storage.WriteData(node)
    reread = slicer.vtkMRMLMarkupsFiducialNode()
    scene.AddNode(reread)
    assert storage.ReadData(reread)
    csv = folder / VisceralName(3, 1, "CT", FileKind.LANDMARKS, 2, extension=".csv").format()
    assert MRMLBridge.exportMarkups(reread, volume, str(csv)).count == 5
    back = MRMLBridge.importLandmarks(scene, str(csv), volume)
    got = np.array([back.GetNthControlPointPositionWorld(n) for n in range(5)])
    position_error = float(np.max(np.abs(got - points)))
    assert position_error < 1e-6, position_error
    assert [back.GetNthControlPointLabel(n) for n in range(5)] == ["100", "101", "102", "103", "104"]
    covariance_error = 0.0
    for expected, actual in zip(covariances, MRMLBridge.markupsCovariances(back)):
        assert (expected is None) == (actual is None)
        if expected is not None:
            covariance_error = max(covariance_error, float(np.max(np.abs(expected - actual))))
    assert covariance_error < 1e-9, covariance_error
    # Adding a point after the covariance was set: refused with a clear message, not misaligned.
    back.AddControlPoint(vtk.vtkVector3d(0, 0, 0), "999")
    try:
        MRMLBridge.markupsCovariances(back)
    except Exception as exc:  # noqa: BLE001
        assert "points were added or removed" in str(exc)
    else:
        raise AssertionError("a stale covariance measurement was accepted")
    return position_error, covariance_error


def scenarioScoring(workdir: str) -> float:
    """A segmentation drawn in Slicer on the left-handed grid (which Slicer re-indexes), scored against the reference
    annotation of its image: every score equals the metrics of the same masks on the file grid.  Returns the liver Dice."""
    from visceral.annotations import export_region_annotation
    from visceral.evaluate.metrics import REGION_METRICS, region_metrics

    folder = Path(workdir) / "reference"
    folder.mkdir()
    scene = newScene()
    volume = MRMLBridge.loadVolume(scene, str(writeImage(folder)))
    masks = structures()
    export_region_annotation(masks, GEOMETRY, folder / IMAGE.annotation(FileKind.REGION, 1).format())
    drawn = dict(masks, liver=np.roll(masks["liver"], 1, axis=2))  # the liver one voxel off along i
    del drawn["spleen"]  # and the spleen not drawn at all
    segmentation = segmentationFromMasks(scene, volume, drawn, list(drawn))
    report = MRMLBridge.scoreSegmentation(segmentation, volume, str(folder))
    scores = {(s.structure, s.metric): s.value for s in report.scores}
    for structure, reference in masks.items():
        expected = region_metrics(reference, drawn.get(structure, np.zeros_like(reference)), GEOMETRY.spacing_mm)
        for metric in REGION_METRICS:
            value = scores[(structure, metric)]
            assert value == expected[metric] or abs(value - expected[metric]) <= 1e-9 * max(1.0, abs(expected[metric])) or (
                np.isnan(value) and np.isnan(expected[metric])), (structure, metric, value, expected[metric])
    assert abs(scores[("liver", "hausdorff")] - GEOMETRY.spacing_mm[0]) < 1e-5, scores[("liver", "hausdorff")]
    assert [p.code for p in report.problems] == ["MISSING_STRUCTURE"], [p.to_text() for p in report.problems]
    return scores[("liver", "dice")]

