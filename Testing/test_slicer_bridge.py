"""The MRML bridge on the real MRML library of slicer-core (no mocks), through the shared scenarios."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "VisceralModule"))
slicer = pytest.importorskip("slicer")

from VisceralLib import MRMLBridge, Scenarios  # noqa: E402


def test_segmentation_round_trip(tmp_path: Path) -> None:
    Scenarios.scenarioSegmentationRoundTrip(str(tmp_path))


def test_markups_round_trip(tmp_path: Path) -> None:
    position_error, covariance_error = Scenarios.scenarioMarkupsRoundTrip(str(tmp_path))
    assert position_error < 1e-6 and covariance_error < 1e-9


def test_unknown_outside_and_overlapping_segments_are_refused(tmp_path: Path) -> None:
    import numpy as np

    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    masks = Scenarios.structures()
    masks["brain"] = masks.pop("spleen")
    segmentation = Scenarios.segmentationFromMasks(scene, volume, masks, list(masks))
    with pytest.raises(Exception, match="no RadLex structure.*'Brain'"):
        MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / "a"), Scenarios.REGION)
    overlap = {"liver": masks["liver"], "left kidney": masks["liver"] & (np.arange(masks["liver"].size).reshape(masks["liver"].shape) % 2 == 0)}
    segmentation = Scenarios.segmentationFromMasks(scene, volume, overlap, list(overlap))
    with pytest.raises(Exception, match=r"structures overlap \(liver and left kidney: \d+ voxels\)"):
        MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / "b"), Scenarios.REGION)
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    # Per-structure (uncertainty) export accepts overlaps.
    written = MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / "c"), Scenarios.REGION, uncertainty=True)
    assert sorted(Path(f).name for f in written.files) == ["subject03_1_modalityCT_regionannotation_label29663_2.nii.gz",
                                                            "subject03_1_modalityCT_regionannotation_label58_2.nii.gz"]
    with pytest.raises(FileExistsError):
        MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / "c"), Scenarios.REGION, uncertainty=True)


def test_terminology_maps_a_segment_whatever_its_name(tmp_path: Path) -> None:
    from visceral.conventions.labels import default_registry

    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    segmentation = Scenarios.segmentationFromMasks(scene, volume, {"liver": Scenarios.structures()["liver"]}, ["liver"])
    segment = segmentation.GetSegmentation().GetNthSegment(0)
    segment.SetName("Segment_1")
    entry = default_registry().lookup("left kidney").slicer_terminology()
    if hasattr(segment, "SetTerminology"):
        segment.SetTerminology(entry)
    else:
        segment.SetTag("TerminologyEntry", entry)
    mapping = MRMLBridge.mapSegments(segmentation)
    assert [s.name for s in mapping.structures.values()] == ["left kidney"] and mapping.unknown == []


def test_segment_reaching_outside_the_reference_is_refused_with_counts(tmp_path: Path) -> None:
    import numpy as np
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk

    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    dims = volume.GetImageData().GetDimensions()
    values = np.zeros((dims[2], dims[1], dims[0] + 3), np.uint8)  # 3 columns wider than the image
    values[2:4, 2:4, dims[0] - 1:] = 1  # 2x2 voxels in the last image column and 2x2x3 beyond it
    labelmap = slicer.vtkMRMLLabelMapVolumeNode()
    scene.AddNode(labelmap)
    image = vtk.vtkImageData()
    image.SetDimensions(dims[0] + 3, dims[1], dims[2])
    image.GetPointData().SetScalars(numpy_to_vtk(values.ravel(), deep=True))
    labelmap.SetAndObserveImageData(image)
    m = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(m)
    labelmap.SetIJKToRASMatrix(m)
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)  # no reference geometry yet: the segment keeps its own, wider extent
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    segmentation.GetSegmentation().GetNthSegment(0).SetName("aorta")
    with pytest.raises(Exception, match=r"outside the reference volume \(aorta: 12 voxels\)"):
        MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / "x"), Scenarios.REGION)
