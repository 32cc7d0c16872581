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
