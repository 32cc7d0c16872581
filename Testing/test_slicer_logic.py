"""The module's logic class (``Visceral.VisceralLogic``), as batch scripts and the widget call it, on
slicer-core's real MRML with real scanner files.

slicer-core ships MRML and ``slicer.util`` but not the application's scripted-module framework; the
fixture stands in for exactly that (the ``ScriptedLoadableModule`` base classes, ``slicer.i18n``, the
parameter-node decorator), so ``Visceral.py`` itself is imported and its logic runs unchanged.
"""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

MODULE_DIR = Path(__file__).resolve().parents[1] / "VisceralModule"
REAL_SERIES = Path(__file__).resolve().parent / "data" / "realworld" / "philips_ct_axial"
sys.path.insert(0, str(MODULE_DIR))
slicer = pytest.importorskip("slicer")

from VisceralLib import MRMLBridge, Scenarios  # noqa: E402


@pytest.fixture
def module(monkeypatch):
    """``Visceral.py`` imported against slicer-core, with a fresh scene as ``slicer.mrmlScene``."""
    framework = types.ModuleType("slicer.ScriptedLoadableModule")
    for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleLogic", "ScriptedLoadableModuleTest", "ScriptedLoadableModuleWidget"):
        setattr(framework, name, type(name, (), {"__init__": lambda self, *args: None}))
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    i18n.translate = lambda context, text: text
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper.parameterNodeWrapper = lambda cls: cls
    for stand_in in (framework, i18n, wrapper):
        monkeypatch.setitem(sys.modules, stand_in.__name__, stand_in)
    monkeypatch.setattr(slicer, "mrmlScene", Scenarios.newScene(), raising=False)
    monkeypatch.delitem(sys.modules, "Visceral", raising=False)
    import Visceral

    return Visceral


def test_clinical_folder_to_annotations_and_back_through_the_logic(module, tmp_path: Path) -> None:
    """De-identify a real CT series -> check, convert and load -> export a segmentation and landmarks
    -> load both back: every step through ``VisceralLogic`` on the scene Slicer would use."""
    clinical = tmp_path / "clinic"
    shutil.copytree(REAL_SERIES, clinical)
    before = {p.name: p.read_bytes() for p in clinical.iterdir()}
    logic = module.VisceralLogic()
    scene = slicer.mrmlScene

    with pytest.raises(ValueError, match="does not look de-identified"):
        logic.importDicomFolder(str(clinical), str(tmp_path / "refused"))

    steps = []
    report = logic.deidentifyFolder(str(clinical), str(tmp_path / "dicom"), progress=lambda done, total, stage: steps.append(stage))
    assert report.fates().get("released") == len(before) and steps
    assert {p.name: p.read_bytes() for p in clinical.iterdir()} == before  # the input is never modified

    volumes, convert_report = logic.importDicomFolder(str(tmp_path / "dicom"), str(tmp_path / "dataset"))
    assert len(volumes) == 1 and volumes[0].GetScene() is scene
    volume = volumes[0]
    name = logic.imageName(volume)
    assert (name.subject, name.acquisition, name.modality) == (1, 1, "CT")

    # a segment drawn on the loaded volume (Slicer's own grid), exported as a RadLex label volume
    dims = volume.GetImageData().GetDimensions()
    mask = np.zeros(tuple(reversed(dims)), np.uint8)
    mask[:, 100:180, 120:200] = 1
    segmentation = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(segmentation)
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    labelmap = MRMLBridge.labelmapNode(scene, mask, volume)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    scene.RemoveNode(labelmap)
    segmentation.GetSegmentation().GetNthSegment(0).SetName("Liver")
    assert [s.name for s in logic.segmentMapping(segmentation).structures.values()] == ["liver"]
    nodes_before = scene.GetNumberOfNodes()
    exported = logic.exportSegmentation(segmentation, volume, str(tmp_path / "dataset"), annotator=2)
    assert scene.GetNumberOfNodes() == nodes_before  # no temporary node left behind
    label_file = next(f for f in exported.files if f.endswith(".nii.gz"))
    assert Path(label_file).name == "subject01_1_modalityCT_regionannotation_2.nii.gz" and exported.labels == {"liver": 58}
    written = sitk.GetArrayFromImage(sitk.ReadImage(label_file))
    assert int((written == 58).sum()) == int(mask.sum()) and set(np.unique(written)) == {0, 58}
    with pytest.raises(FileExistsError):
        logic.exportSegmentation(segmentation, volume, str(tmp_path / "dataset"), annotator=2)

    # a landmark at a voxel centre, exported in mm from voxel [0,0,0] and loaded back at the same place
    ijk_to_ras = MRMLBridge.geometryFromVolumeNode(volume)
    point = ijk_to_ras.index_to_world([[140, 150, 0]], "RAS")[0]
    markups = slicer.vtkMRMLMarkupsFiducialNode()
    scene.AddNode(markups)
    import vtk

    markups.AddControlPoint(vtk.vtkVector3d(*point), "1")
    landmarks = logic.exportLandmarks(markups, volume, str(tmp_path / "dataset"), annotator=2)
    assert Path(landmarks.path).name == "subject01_1_modalityCT_lmannotation_2.csv" and landmarks.count == 1 and not landmarks.warnings

    regions = logic.importAnnotation(label_file, volume)
    assert regions.GetSegmentation().GetNthSegment(0).GetName() == "liver"
    points = logic.importAnnotation(landmarks.path, volume)
    assert points.GetNthControlPointLabel(0) == "1"
    assert np.allclose(points.GetNthControlPointPositionWorld(0), point, atol=1e-4)
    assert convert_report.volumes and not [p for p in convert_report.problems if p.code.startswith("E")]


def test_scoring_a_segmentation_and_a_results_folder_through_the_logic(module, tmp_path: Path) -> None:
    """The panel's scoring: a segmentation drawn on a loaded data-set image, scored against the image's reference
    annotations by the same code as ``visceral evaluate``; then a folder of results for that image."""
    from collections import OrderedDict

    from visceral.annotations import export_landmarks, export_region_annotation
    from visceral.conventions.frames import ImageGeometry, rotation_xyz
    from visceral.conventions.landmarks import write_landmarks
    from visceral.conventions.names import FileKind, VisceralName
    from visceral.dataset import write_image
    from visceral.evaluate.metrics import region_metrics

    # a reference data set: an oblique, anisotropic image, its liver and spleen (annotator 1) and a landmark
    geometry = ImageGeometry((40, 36, 20), (1.5, 1.2, 3.0), (-30.0, 12.0, 50.0), tuple(map(tuple, rotation_xyz(0.1, 0.0, 0.2))))
    shape = tuple(reversed(geometry.shape))
    liver = np.zeros(shape, bool)
    liver[4:14, 8:24, 6:26] = True
    spleen = np.zeros(shape, bool)
    spleen[6:12, 26:32, 28:36] = True
    reference = tmp_path / "reference"
    reference.mkdir()
    name = VisceralName(3, 2, "CT")
    write_image(reference, name, np.zeros(shape, np.int16), geometry, OrderedDict(modality="CT"))
    export_region_annotation({"liver": liver, "spleen": spleen}, geometry, reference / name.annotation(FileKind.REGION, 1).format())
    point = geometry.index_to_world([10.0, 12.0, 8.0], "LPS")
    write_landmarks(reference / name.annotation(FileKind.LANDMARKS, 1).format(), export_landmarks([7], [point], "LPS", geometry))

    logic = module.VisceralLogic()
    volume = logic.loadImage(str(reference / name.format()))
    assert logic.imageFolder(volume) == str(reference)

    # the segmentation: the liver moved by two voxels along i, on Slicer's own lattice of the loaded volume
    moved = np.roll(liver, 2, axis=2)
    slicer_grid = MRMLBridge.geometryFromVolumeNode(volume)
    segmentation = slicer.vtkMRMLSegmentationNode()
    slicer.mrmlScene.AddNode(segmentation)
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    labelmap = MRMLBridge.labelmapNode(slicer.mrmlScene, slicer_grid.array_from(moved.astype(np.uint8), geometry), volume)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    slicer.mrmlScene.RemoveNode(labelmap)
    segmentation.GetSegmentation().GetNthSegment(0).SetName("Liver")
    nodes_before = slicer.mrmlScene.GetNumberOfNodes()

    report = logic.scoreSegmentation(segmentation, volume, str(reference))
    assert slicer.mrmlScene.GetNumberOfNodes() == nodes_before
    scores = {(s.structure, s.metric): s.value for s in report.scores}
    expected = region_metrics(liver, moved, geometry.spacing_mm)
    assert scores[("liver", "dice")] == pytest.approx(expected["dice"], rel=1e-12)
    assert scores[("liver", "hausdorff")] == pytest.approx(2 * 1.5, rel=1e-6)  # two voxels of 1.5 mm
    assert scores[("spleen", "dice")] == 0.0  # not segmented: scored as an empty result, and said
    assert {p.code for p in report.problems} == {"MISSING_STRUCTURE", "NO_RESULT"}  # NO_RESULT: no landmarks to score
    header, rows = logic.scoreTable(report)
    assert header[:3] == ["structure / landmark", "dice", "jaccard"]
    assert [r[0] for r in rows] == ["liver", "spleen"] and rows[0][1] == f"{expected['dice']:.4g}"

    # a folder of results for this image (and another image it ignores): regions and landmarks
    results = tmp_path / "results"
    export_region_annotation({"liver": liver, "spleen": spleen}, geometry, results / name.annotation(FileKind.REGION, 5).format())
    write_landmarks(results / name.annotation(FileKind.LANDMARKS, 5).format(), export_landmarks([7], [point + [0.0, 3.0, 4.0]], "LPS", geometry))
    export_region_annotation({"liver": liver}, geometry, results / VisceralName(4, 1, "CT", FileKind.REGION, 5).format())
    report = logic.scoreResultsFolder(volume, str(reference), str(results))
    assert report.ok and report.images == 1 and not report.problems
    scores = {(s.structure, s.landmark, s.metric): s.value for s in report.scores}
    assert scores[("liver", "", "dice")] == scores[("spleen", "", "dice")] == 1.0
    assert scores[("", "7", "landmark_error")] == pytest.approx(5.0, rel=1e-6)  # the NIfTI header holds the grid in float32
    header, rows = logic.scoreTable(report)
    assert rows[-1][0] == "landmark 7" and rows[-1][header.index("landmark_error")] == "5.0"
