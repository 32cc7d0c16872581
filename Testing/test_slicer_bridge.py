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


def _points(scene, labels_points):
    import vtk

    node = slicer.vtkMRMLMarkupsFiducialNode()
    scene.AddNode(node)
    for label, point in labels_points:
        node.AddControlPoint(vtk.vtkVector3d(*point), label)
    return node


def test_two_segments_of_one_structure_are_refused_naming_both(tmp_path: Path) -> None:
    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    masks = Scenarios.structures()
    segmentation = Scenarios.segmentationFromMasks(scene, volume, {"liver": masks["liver"], "Liver": masks["spleen"]}, ["liver", "Liver"])
    with pytest.raises(Exception, match=r"'liver' and 'Liver' are both liver"):
        MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / "out"), Scenarios.REGION)
    assert not (tmp_path / "out").exists()


def test_an_empty_segment_is_left_out_with_a_warning(tmp_path: Path) -> None:
    import numpy as np

    from visceral.conventions.labels import LabelTable  # noqa: F401  (the CSV reader below)

    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    masks = Scenarios.structures()
    segmentation = Scenarios.segmentationFromMasks(scene, volume, {"liver": masks["liver"]}, ["liver"])
    segmentation.GetSegmentation().AddEmptySegment("", "spleen")  # as the Segment Editor's "Add" leaves it
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 2 and np is not None
    result = MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / "out"), Scenarios.REGION)
    assert list(result.labels) == ["liver"] and any("'spleen' is empty" in w for w in result.warnings)
    csv = [f for f in result.files if f.endswith(".csv")][0]
    assert "spleen" not in Path(csv).read_text()


def test_covariances_that_are_partly_not_finite_are_refused(tmp_path: Path) -> None:
    import numpy as np

    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    centre = Scenarios.GEOMETRY.index_to_world([[4, 4, 4]], "RAS")[0]
    node = _points(scene, [("101", centre), ("102", centre)])
    bad = np.eye(3)
    bad[0, 1] = np.inf
    MRMLBridge.setMarkupsCovariances(node, [np.eye(3), bad])
    with pytest.raises(Exception, match=r"control point '102'.*NaN or infinite"):
        MRMLBridge.exportMarkups(node, volume, str(tmp_path / "a.csv"))
    MRMLBridge.setMarkupsCovariances(node, [np.eye(3), None])  # unset: fine
    assert MRMLBridge.exportMarkups(node, volume, str(tmp_path / "b.csv")).count == 2


def test_landmarks_follow_the_reference_volumes_transform_as_segmentations_do(tmp_path: Path) -> None:
    import numpy as np
    import vtk

    from visceral.conventions.landmarks import read_landmarks

    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    voxel = Scenarios.GEOMETRY.index_to_world([[3, 5, 2]], "RAS")[0]
    plain = MRMLBridge.exportMarkups(_points(scene, [("7", voxel)]), volume, str(tmp_path / "plain.csv"))
    transform = slicer.vtkMRMLLinearTransformNode()
    scene.AddNode(transform)
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 10.0)  # the image moved 10 mm to the right (a registration, not hardened)
    matrix.SetElement(1, 3, -4.0)
    transform.SetMatrixTransformToParent(matrix)
    volume.SetAndObserveTransformNodeID(transform.GetID())
    moved = MRMLBridge.exportMarkups(_points(scene, [("7", voxel + np.array([10.0, -4.0, 0.0]))]), volume, str(tmp_path / "moved.csv"))
    a, b = read_landmarks(plain.path), read_landmarks(moved.path)
    assert np.allclose(a[0].position_mm, b[0].position_mm, atol=1e-6)  # the same voxel of the image
    slicer.vtkSlicerTransformLogic().hardenTransform(volume) if hasattr(slicer, "vtkSlicerTransformLogic") else volume.HardenTransform()
    with pytest.raises(Exception, match="no longer stands where its file puts it"):
        MRMLBridge.exportMarkups(_points(scene, [("7", voxel)]), volume, str(tmp_path / "hardened.csv"))


def test_point_lists_say_what_is_odd_about_them(tmp_path: Path) -> None:
    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    inside = Scenarios.GEOMETRY.index_to_world([[4, 4, 4]], "RAS")[0]
    outside = Scenarios.GEOMETRY.index_to_world([[400, 4, 4]], "RAS")[0]
    result = MRMLBridge.exportMarkups(_points(scene, [("F-1", inside), ("321", outside)]), volume, str(tmp_path / "a.csv"))
    assert any("'F-1' taken as landmark ID 1" in w for w in result.warnings)
    assert any("'321' lies outside the reference image" in w for w in result.warnings)
    with pytest.raises(Exception, match="has no control points"):
        MRMLBridge.exportMarkups(_points(scene, []), volume, str(tmp_path / "b.csv"))


def test_probability_maps_export_as_uncertainty_volumes_and_load_back(tmp_path: Path) -> None:
    """Item 6 of the Slicer issue: a real probability map (a scalar volume in [0, 1]) exports as the
    structure's uncertainty volume, and an exported ..._label58_2.nii.gz loads back (it once failed
    looking for a .csv)."""
    import numpy as np

    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    grid = MRMLBridge.geometryFromVolumeNode(volume)
    rng = np.random.default_rng(3)
    probability = rng.uniform(0, 1, size=tuple(reversed(grid.shape))).astype(np.float32)

    def scalar(name: str, values) -> "slicer.vtkMRMLScalarVolumeNode":
        node = MRMLBridge.volumeOnReference(scene, slicer.vtkMRMLScalarVolumeNode(), values, volume)
        node.SetName(name)
        return node

    liver = scalar("Liver", probability)
    result = MRMLBridge.exportProbabilityMaps([liver], volume, str(tmp_path / "out"), Scenarios.REGION)
    (path,) = result.files
    assert path.endswith("_regionannotation_label58_2.nii.gz") and result.labels == {"liver": 58}
    back = MRMLBridge.importProbabilityMap(scene, path, volume)
    assert back.GetAttribute(MRMLBridge.ATTRIBUTE_STRUCTURE) == "liver"
    np.testing.assert_allclose(MRMLBridge.arrayFromVolumeNode(back), probability, atol=1e-7)
    outside = scalar("spleen", probability * 1.5)
    with pytest.raises(Exception, match=r"\[0, 1\]"):
        MRMLBridge.exportProbabilityMaps([outside], volume, str(tmp_path / "bad"), Scenarios.REGION)
    with pytest.raises(Exception, match="no RadLex structure"):
        MRMLBridge.exportProbabilityMaps([scalar("Volume_7", probability)], volume, str(tmp_path / "bad2"), Scenarios.REGION)


def test_a_segment_on_a_finer_grid_is_resampled_with_a_warning(tmp_path: Path) -> None:
    import numpy as np
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk

    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    grid = MRMLBridge.geometryFromVolumeNode(volume)
    labelmap = slicer.vtkMRMLLabelMapVolumeNode()
    scene.AddNode(labelmap)
    fine = np.zeros((2 * grid.shape[2], 2 * grid.shape[1], 2 * grid.shape[0]), np.uint8)
    fine[4:7, 4:7, 4:7] = 1  # 27 voxels of an eighth of the reference's voxel volume
    image = vtk.vtkImageData()
    image.SetDimensions(fine.shape[2], fine.shape[1], fine.shape[0])
    image.GetPointData().SetScalars(numpy_to_vtk(fine.ravel(), deep=True))
    labelmap.SetAndObserveImageData(image)
    m = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(m)
    for r in range(3):
        for c in range(3):
            m.SetElement(r, c, m.GetElement(r, c) / 2)
    labelmap.SetIJKToRASMatrix(m)
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    segmentation.GetSegmentation().GetNthSegment(0).SetName("liver")
    result = MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / "out"), Scenarios.REGION)
    assert any("27 voxels of its own grid became" in w for w in result.warnings), result.warnings


def _translation(scene, node, ijk_shift, volume):
    """Put ``node`` under a linear transform moving it by ``ijk_shift`` voxels of ``volume``'s grid."""
    import numpy as np
    import vtk

    grid = MRMLBridge.geometryFromVolumeNode(volume)
    shift = grid.ijk_to_ras_matrix()[:3, :3] @ np.asarray(ijk_shift, float)
    transform = slicer.vtkMRMLLinearTransformNode()
    scene.AddNode(transform)
    matrix = vtk.vtkMatrix4x4()
    for axis in range(3):
        matrix.SetElement(axis, 3, float(shift[axis]))
    transform.SetMatrixTransformToParent(matrix)
    node.SetAndObserveTransformNodeID(transform.GetID())


def test_transforms_count_when_a_segment_leaves_or_enters_the_reference(tmp_path: Path) -> None:
    """Voxels a transform moves out of the reference image are refused with their count, whether the
    segmentation or the reference volume is transformed; a segment moved within the image is exported where it was moved."""
    import numpy as np

    from visceral.imageio import read_volume

    masks = Scenarios.structures()
    edge = masks["spleen"]  # reaches i = 12 of 14: two voxels from the last face
    per_row = int(edge[:, :, 12].sum())
    for moved in ("segmentation", "reference", "inside"):
        (tmp_path / moved).mkdir()
    for moved in ("segmentation", "reference"):
        scene = Scenarios.newScene()
        volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path / moved)))
        segmentation = Scenarios.segmentationFromMasks(scene, volume, {"spleen": edge}, ["spleen"])
        node, sign = (segmentation, 1) if moved == "segmentation" else (volume, -1)
        _translation(scene, node, (sign * 2, 0, 0), volume)
        with pytest.raises(Exception, match=f"spleen: {per_row} voxels"):
            MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / moved / "out"), Scenarios.REGION)

    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path / "inside")))
    segmentation = Scenarios.segmentationFromMasks(scene, volume, {"spleen": edge}, ["spleen"])
    _translation(scene, segmentation, (-2, 0, 0), volume)  # moved two voxels inwards: every voxel stays
    MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / "inside" / "out"), Scenarios.REGION)
    labels = read_volume(str(tmp_path / "inside" / "out" / Scenarios.REGION.format()))[0]
    np.testing.assert_array_equal(labels != 0, np.roll(edge, -2, axis=2))


def test_a_mirrored_reference_volume_is_refused(tmp_path: Path) -> None:
    """A mirror hardened on the reference keeps its set of corners but shows every voxel on the other side."""
    import vtk

    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    grid = MRMLBridge.geometryFromVolumeNode(volume)
    centre = grid.index_to_world([[(n - 1) / 2 for n in grid.shape]], "RAS")[0]
    transform = slicer.vtkMRMLLinearTransformNode()
    scene.AddNode(transform)
    matrix = vtk.vtkMatrix4x4()
    axis = grid.ijk_to_ras_matrix()[:3, 0] / grid.spacing_mm[0]  # mirror along the i axis through the centre
    for r in range(3):
        for c in range(3):
            matrix.SetElement(r, c, float((r == c) - 2 * axis[r] * axis[c]))
        matrix.SetElement(r, 3, float(2 * axis[r] * (axis @ centre)))
    transform.SetMatrixTransformToParent(matrix)
    volume.SetAndObserveTransformNodeID(transform.GetID())
    slicer.vtkSlicerTransformLogic().hardenTransform(volume) if hasattr(slicer, "vtkSlicerTransformLogic") else volume.HardenTransform()
    segmentation = Scenarios.segmentationFromMasks(scene, volume, {"liver": Scenarios.structures()["liver"]}, ["liver"])
    with pytest.raises(Exception, match="no longer stands where its file puts it"):
        MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / "out"), Scenarios.REGION)


def test_any_resampling_is_reported_even_without_a_change_of_volume(tmp_path: Path) -> None:
    """A segment on a lattice shifted by a fraction of a voxel is resampled by Slicer: always said."""
    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    segmentation = Scenarios.segmentationFromMasks(scene, volume, {"liver": Scenarios.structures()["liver"]}, ["liver"])
    _translation(scene, segmentation, (0.4, 0, 0), volume)
    result = MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / "out"), Scenarios.REGION)
    assert any("'liver' is not on the reference image's voxel lattice: resampled" in w for w in result.warnings), result.warnings


def test_a_segment_held_as_a_closed_surface_is_exported_as_slicer_exports_it(tmp_path: Path) -> None:
    """A model or an RT structure arrives as a closed surface only: it is converted to voxels, not called empty."""
    import vtk

    from visceral.imageio import read_volume

    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    grid = MRMLBridge.geometryFromVolumeNode(volume)
    sphere = vtk.vtkSphereSource()
    sphere.SetCenter(*grid.index_to_world([[7, 6, 4]], "RAS")[0])
    sphere.SetRadius(4.0)
    sphere.SetThetaResolution(40)
    sphere.SetPhiResolution(40)
    sphere.Update()

    def surface_segmentation():
        segmentation = slicer.vtkMRMLSegmentationNode()
        scene.AddNode(segmentation)
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
        segmentation.GetSegmentation().SetSourceRepresentationName("Closed surface")
        return segmentation, segmentation.AddSegmentFromClosedSurfaceRepresentation(sphere.GetOutput(), "liver", [1.0, 0.0, 0.0])

    theirs, segment_id = surface_segmentation()
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segment_id)
    labelmap = slicer.vtkMRMLLabelMapVolumeNode()
    scene.AddNode(labelmap)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(theirs, ids, labelmap, volume)
    expected = int((MRMLBridge.arrayFromVolumeNode(labelmap) != 0).sum())
    ours, _ = surface_segmentation()
    MRMLBridge.exportSegmentation(ours, volume, str(tmp_path / "out"), Scenarios.REGION)
    labels = read_volume(str(tmp_path / "out" / Scenarios.REGION.format()))[0]
    assert expected > 0 and int((labels != 0).sum()) == expected


def test_scoring_scenario(tmp_path: Path) -> None:
    """The scoring scenario Slicer's self-test also runs: a segmentation on the re-indexed left-handed grid scores
    exactly as its masks on the file grid."""
    dice = Scenarios.scenarioScoring(str(tmp_path))
    assert 0.5 < dice < 1.0

def test_segments_sharing_a_layer_are_exported_at_once_as_the_plain_label_array(tmp_path: Path) -> None:
    """Five segments in one labelmap layer (as the Segment Editor keeps them; values 1..5, one of them
    touching five faces of the oblique, left-handed grid): the label volume equals the array painted the
    plain way from whole-grid masks, with RadLex values above 32767 kept; no node is left behind."""
    import numpy as np

    from visceral.imageio import read_volume

    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    masks = Scenarios.structures()
    aorta = np.zeros_like(masks["liver"])
    aorta[:, 11, :] = True
    masks["aorta"] = aorta
    values = np.zeros(masks["liver"].shape, np.uint8)
    for n, mask in enumerate(masks.values(), start=1):
        values[mask] = n
    slicer_grid = MRMLBridge.geometryFromVolumeNode(volume)
    labelmap = MRMLBridge.labelmapNode(scene, slicer_grid.array_from(values, Scenarios.GEOMETRY), volume)
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    scene.RemoveNode(labelmap)
    held = segmentation.GetSegmentation()
    assert held.GetNumberOfSegments() == 5 and held.GetNumberOfLayers() == 1
    for n, name in enumerate(masks):
        held.GetSegment(held.GetNthSegmentID(n)).SetName(name)
    nodes = scene.GetNumberOfNodes()
    result = MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / "out"), Scenarios.REGION)
    assert scene.GetNumberOfNodes() == nodes
    expected = np.zeros(masks["liver"].shape, np.uint16)
    for name, mask in masks.items():
        expected[mask] = result.labels[name]
    assert result.labels["left rectus abdominis"] == 40358
    labels, grid = read_volume(result.files[0])
    assert grid.same_grid(Scenarios.GEOMETRY, 1e-4)
    np.testing.assert_array_equal(labels, expected)


def test_overlaps_of_three_segments_are_counted_for_every_pair(tmp_path: Path) -> None:
    import numpy as np

    from visceral.annotations.regions import find_overlaps

    scene = Scenarios.newScene()
    volume = MRMLBridge.loadVolume(scene, str(Scenarios.writeImage(tmp_path)))
    liver = Scenarios.structures()["liver"]
    k = np.arange(liver.size).reshape(liver.shape)
    masks = {"liver": liver, "spleen": liver & (k % 2 == 0), "aorta": liver & (k % 3 == 0)}
    segmentation = Scenarios.segmentationFromMasks(scene, volume, masks, list(masks))
    with pytest.raises(Exception) as refused:
        MRMLBridge.exportSegmentation(segmentation, volume, str(tmp_path / "out"), Scenarios.REGION)
    assert refused.value.overlaps == find_overlaps(masks)
    assert len(refused.value.overlaps) == 3
