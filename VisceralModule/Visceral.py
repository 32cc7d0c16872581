"""Visceral: VISCERAL data sets in 3D Slicer -- import de-identified DICOM, export RadLex-labelled
segmentations and landmark CSVs with covariance, and load annotations back.

Five classes in the order of Slicer's scripted-module template: module, parameter node, widget,
logic, test.  The widget only binds the GUI; the logic (usable from batch scripts) calls the
Qt-free bridge ``VisceralLib.MRMLBridge`` and the pure-logic package ``visceral``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import slicer
import vtk
from slicer import vtkMRMLMarkupsFiducialNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from VisceralLib import MRMLBridge

CONVENTIONS_URL = "https://github.com/visceral-toolkit/Visceral/blob/main/docs/CONVENTIONS.md"


#
# Visceral
#


class Visceral(ScriptedLoadableModule):
    """Module description shown in Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Visceral")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Informatics")]
        self.parent.dependencies = []
        self.parent.contributors = ["Visceral developers"]
        self.parent.helpText = _(
            "Import de-identified CT/MR DICOM as a VISCERAL data set, export segmentations as RadLex-labelled "
            "NIfTI with a structure,label table (or per-structure uncertainty volumes), export point lists as "
            "landmark CSV (mm from voxel [0,0,0], with covariance), and load annotations back for review. "
            'The conventions and every decision taken are in <a href="{url}">docs/CONVENTIONS.md</a>.'
        ).format(url=CONVENTIONS_URL)
        self.parent.acknowledgementText = _(
            "Data-format conventions from the VISCERAL project (VISual Concept Extraction challenge in RAdioLogy). "
            "De-identification follows DICOM PS3.15 Annex E."
        )


#
# VisceralParameterNode
#


@parameterNodeWrapper
class VisceralParameterNode:
    """The module's selections (bound to the widgets through their SlicerParameterName)."""

    clinicalFolder: Path
    deidentifiedFolder: Path
    importFolder: Path
    datasetFolder: Path
    segmentation: vtkMRMLSegmentationNode
    segmentationReference: vtkMRMLScalarVolumeNode
    subject: int = 1
    acquisition: int = 1
    modality: str = "CT"
    annotator: int = 1
    uncertainty: bool = False
    exportFolder: Path
    landmarks: vtkMRMLMarkupsFiducialNode
    landmarksReference: vtkMRMLScalarVolumeNode
    landmarksFolder: Path
    annotationFile: Path
    annotationReference: vtkMRMLScalarVolumeNode
    scoreReference: vtkMRMLScalarVolumeNode
    scoreReferenceFolder: Path
    scoreSegmentation: vtkMRMLSegmentationNode
    scoreResultsFolder: Path


#
# VisceralWidget
#


class VisceralWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Thin GUI: binds the .ui to the parameter node and calls the logic."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic: Optional[VisceralLogic] = None
        self._parameterNode: Optional[VisceralParameterNode] = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        """Load the .ui, connect the buttons."""
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/Visceral.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = VisceralLogic()
        self._buttonTips = {name: getattr(self.ui, name).toolTip for name in
                            ("deidentifyButton", "importButton", "exportSegmentationButton", "exportLandmarksButton", "importAnnotationButton",
                             "scoreSegmentationButton", "scoreFolderButton")}
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.importButton.connect("clicked(bool)", self.onImportButton)
        self.ui.deidentifyButton.connect("clicked(bool)", self.onDeidentifyButton)
        self.ui.exportSegmentationButton.connect("clicked(bool)", self.onExportSegmentationButton)
        self.ui.exportLandmarksButton.connect("clicked(bool)", self.onExportLandmarksButton)
        self.ui.importAnnotationButton.connect("clicked(bool)", self.onImportAnnotationButton)
        self.ui.scoreSegmentationButton.connect("clicked(bool)", self.onScoreSegmentationButton)
        self.ui.scoreFolderButton.connect("clicked(bool)", self.onScoreFolderButton)
        self.ui.scoreReferenceSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onScoreReferenceChanged)
        self.ui.segmentationReferenceSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onReferenceChanged)
        self.ui.segmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onSegmentationChanged)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        """Called when the application closes and the module widget is destroyed."""
        self.removeObservers()

    def enter(self) -> None:
        """Called each time the user opens this module."""
        self.initializeParameterNode()

    def exit(self) -> None:
        """Called each time the user opens a different module."""
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)

    def onSceneStartClose(self, caller, event) -> None:
        """Called just before the scene is closed."""
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        """Called just after the scene is closed."""
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        """Ensure a parameter node exists and is observed."""
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode: Optional[VisceralParameterNode]) -> None:
        """Bind the GUI to ``inputParameterNode``."""
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._updateButtons()

    def _missingInputs(self) -> Dict[str, List[str]]:
        """For each action button, the inputs it still needs (empty: it can run)."""
        p = self._parameterNode
        if p is None:
            return {name: [_("a scene")] for name in self._buttonTips}

        def folder(path) -> bool:
            return str(path) not in ("", ".")

        needs = {
            "deidentifyButton": ((_("clinical DICOM folder"), folder(p.clinicalFolder)), (_("de-identified folder"), folder(p.deidentifiedFolder))),
            "importButton": ((_("de-identified DICOM folder"), folder(p.importFolder)), (_("data-set folder"), folder(p.datasetFolder))),
            "exportSegmentationButton": ((_("segmentation"), p.segmentation), (_("reference volume"), p.segmentationReference),
                                         (_("output folder"), folder(p.exportFolder))),
            "exportLandmarksButton": ((_("point list"), p.landmarks), (_("reference volume"), p.landmarksReference),
                                      (_("output folder"), folder(p.landmarksFolder))),
            "importAnnotationButton": ((_("annotation file"), Path(str(p.annotationFile)).is_file()), (_("reference volume"), p.annotationReference)),
            "scoreSegmentationButton": ((_("image"), p.scoreReference), (_("reference data set"), folder(p.scoreReferenceFolder)),
                                        (_("segmentation"), p.scoreSegmentation)),
            "scoreFolderButton": ((_("image"), p.scoreReference), (_("reference data set"), folder(p.scoreReferenceFolder)),
                                  (_("results data set"), folder(p.scoreResultsFolder))),
        }
        return {button: [name for name, ok in inputs if not ok] for button, inputs in needs.items()}

    def _updateButtons(self, caller=None, event=None) -> None:
        """Enable each button whose inputs are set; a disabled button's tooltip says what is missing."""
        for name, missing in self._missingInputs().items():
            button = getattr(self.ui, name)
            button.enabled = not missing
            button.toolTip = self._buttonTips[name] if not missing else _("Missing: ") + ", ".join(missing)

    def _report(self, lines: List[str]) -> None:
        self.ui.resultsTextEdit.setPlainText("\n".join(lines))

    def _progress(self, title: str):
        """A progress dialog and the callback that feeds it; Cancel stops the work at the next file
        (what is done stays done: the batch commands resume where they stopped)."""
        dialog = slicer.util.createProgressDialog(labelText=title, maximum=100)

        def update(done: int, total: int, stage: str) -> None:
            dialog.labelText = f"{title}: {stage}"
            dialog.value = int(100 * done / max(total, 1))
            slicer.app.processEvents()  # the panel stays responsive between files
            if dialog.wasCanceled:
                from visceral.errors import Cancelled

                raise Cancelled(_("Cancelled; run it again to go on where it stopped."))

        return dialog, update

    def onReferenceChanged(self, node) -> None:
        """Pre-fill subject/acquisition/modality from the volume's attributes."""
        name = self.logic.imageName(node) if node else None
        if name and self._parameterNode:
            self._parameterNode.subject, self._parameterNode.acquisition = name.subject, name.acquisition
            self._parameterNode.modality = name.modality or ""

    def onSegmentationChanged(self, node) -> None:
        """Show how segments map to RadLex before anything is written."""
        if not node:
            self.ui.segmentMappingLabel.text = ""
            return
        mapping = self.logic.segmentMapping(node)
        known = ", ".join(f"{s.name} ({s.radlex_id})" for s in mapping.structures.values())
        unknown = ", ".join(n for _, n in mapping.unknown)
        self.ui.segmentMappingLabel.text = _("RadLex: ") + (known or "-") + (_("\nUnknown (rename or set terminology): ") + unknown if unknown else "")

    def onImportButton(self) -> None:
        """Check, convert and load the DICOM folder."""
        p = self._parameterNode
        dialog, progress = self._progress(_("Importing"))
        try:
            with slicer.util.tryWithErrorDisplay(_("Import failed."), waitCursor=True):
                nodes, report = self.logic.importDicomFolder(str(p.importFolder), str(p.datasetFolder), progress=progress)
                self._report([f"loaded {n.GetName()}" for n in nodes] + [f"{x.code}: {x.where}: {x.message}" for x in report.problems])
        finally:
            dialog.close()

    def onDeidentifyButton(self) -> None:
        """De-identify the clinical folder into the de-identified folder, which then becomes the import's source."""
        p = self._parameterNode
        dialog, progress = self._progress(_("De-identifying"))
        try:
            with slicer.util.tryWithErrorDisplay(_("De-identification stopped."), waitCursor=True):
                report = self.logic.deidentifyFolder(str(p.clinicalFolder), str(p.deidentifiedFolder), progress=progress)
                fates = report.fates()
                self._report([", ".join(f"{n} {fate}" for fate, n in fates.items()), f"identity cleaned in {report.cleaned_count()} file(s); left in bytes: {report.leak_count()} file(s)",
                              f"private folder (key, linkage, reports): {report.private_dir}"])
                p.importFolder = p.deidentifiedFolder
        finally:
            dialog.close()

    @staticmethod
    def _exportAskingBeforeOverwrite(export, *args):
        """``export(*args)``; when its files exist, ask, then ``export(*args, overwrite=True)`` or ``None``."""
        try:
            return export(*args)
        except FileExistsError as exc:
            if not slicer.util.confirmYesNoDisplay(_("Overwrite?") + f"\n{exc}"):
                return None
            return export(*args, overwrite=True)

    def onExportSegmentationButton(self) -> None:
        """Export the segmentation (asks before overwriting)."""
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=True):
            result = self._exportAskingBeforeOverwrite(self.logic.exportSegmentation, p.segmentation, p.segmentationReference, str(p.exportFolder),
                                                       p.subject, p.acquisition, p.modality, p.annotator, p.uncertainty)
            if result is not None:
                self._report([f"wrote {f}" for f in result.files] + [f"{n}: label {v}" for n, v in result.labels.items()]
                             + [f"warning: {w}" for w in result.warnings])

    def onExportLandmarksButton(self) -> None:
        """Export the point list as a landmark CSV (asks before overwriting)."""
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=True):
            result = self._exportAskingBeforeOverwrite(self.logic.exportLandmarks, p.landmarks, p.landmarksReference, str(p.landmarksFolder), p.annotator)
            if result is not None:
                self._report([f"wrote {result.path} ({result.count} landmarks)"] + [f"warning: {w}" for w in result.warnings])

    def onImportAnnotationButton(self) -> None:
        """Load a region annotation or a landmark CSV."""
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Import failed."), waitCursor=True):
            node = self.logic.importAnnotation(str(p.annotationFile), p.annotationReference)
            self._report([f"loaded {node.GetName()}"])

    def onScoreReferenceChanged(self, node) -> None:
        """Pre-fill the reference data set with the folder the image was loaded from."""
        folder = self.logic.imageFolder(node) if node else None
        if folder and self._parameterNode:
            self._parameterNode.scoreReferenceFolder = Path(folder)

    def _showScores(self, report) -> None:
        """The scores in the panel's table, the problems in the log."""
        import qt

        header, rows = self.logic.scoreTable(report)
        table = self.ui.scoreTableWidget
        table.clear()
        table.setColumnCount(len(header))
        table.setHorizontalHeaderLabels(header)
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                table.setItem(r, c, qt.QTableWidgetItem(text))
        table.resizeColumnsToContents()
        self._report([p.to_text() for p in report.problems]
                     + [_("{n} structure(s), {m} landmark(s) scored; definitions in docs/METRICS.md").format(n=len(report.structures()), m=len(report.landmarks()))])

    def onScoreSegmentationButton(self) -> None:
        """Score the segmentation against the image's reference annotations."""
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Scoring failed."), waitCursor=True):
            self._showScores(self.logic.scoreSegmentation(p.scoreSegmentation, p.scoreReference, str(p.scoreReferenceFolder)))

    def onScoreFolderButton(self) -> None:
        """Score the results folder's results for the image against its reference annotations."""
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Scoring failed."), waitCursor=True):
            self._showScores(self.logic.scoreResultsFolder(p.scoreReference, str(p.scoreReferenceFolder), str(p.scoreResultsFolder)))


#
# VisceralLogic
#


class VisceralLogic(ScriptedLoadableModuleLogic):
    """What the widget does, callable from batch scripts (``Slicer --no-main-window --python-script``).

    Methods raise ``ValueError`` (``visceral.VisceralError``) with a clear message; they never open dialogs.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self) -> VisceralParameterNode:
        """The module's parameter node (created when missing)."""
        return VisceralParameterNode(super().getParameterNode())

    def imageName(self, volumeNode):
        """The VISCERAL name of a loaded image volume (subject, acquisition, modality), or ``None``."""
        return MRMLBridge.volumeTokens(volumeNode)

    def segmentMapping(self, segmentationNode):
        """How the segments map to RadLex structures (``MRMLBridge.SegmentMapping``), before any export."""
        return MRMLBridge.mapSegments(segmentationNode)

    def deidentifyFolder(self, inputFolder: str, outputFolder: str, progress=None):
        """De-identify a clinical DICOM folder with the same QA gate as the command line (its IOD check
        runs in process: no external program needed); returns the audit report.  Runs in Slicer's own
        process, one file at a time (no process pool inside the application), reporting progress
        after every file."""
        from visceral.deid import deidentify

        return deidentify(inputFolder, outputFolder, jobs=1, progress=progress)

    def importDicomFolder(self, dicomFolder: str, datasetFolder: str, progress=None, scene=None):
        """Check that ``dicomFolder`` is de-identified, convert it into ``datasetFolder`` and load the volumes.

        Raises:
            ValueError: listing what looks identifying (de-identify first).
        """
        from visceral.convert import convert
        from visceral.deid.check import identity_findings

        findings = identity_findings(dicomFolder)
        if findings:
            raise ValueError(_("The folder does not look de-identified; de-identify it first:\n") + "\n".join(findings))
        report = convert(dicomFolder, datasetFolder, progress=progress)
        scene = scene or slicer.mrmlScene
        nodes = [MRMLBridge.loadVolume(scene, str(Path(datasetFolder) / v.name)) for v in report.volumes]
        return nodes, report

    def loadImage(self, path: str, scene=None):
        """Load a data-set image (``subjectNN_A_modalityXX.nii.gz``) as a volume node named by the conventions."""
        return MRMLBridge.loadVolume(scene or slicer.mrmlScene, path)

    def exportSegmentation(self, segmentationNode, referenceVolumeNode, folder: str, subject: Optional[int] = None,
                           acquisition: Optional[int] = None, modality: Optional[str] = None, annotator: int = 1,
                           uncertainty: bool = False, overwrite: bool = False):
        """Export a segmentation as a region annotation (see ``MRMLBridge.exportSegmentation``).

        Subject, acquisition and modality default to the reference volume's (as loaded by :meth:`loadImage`).
        """
        from visceral.conventions.names import FileKind, VisceralName

        image = MRMLBridge.volumeTokens(referenceVolumeNode)
        if subject is None or acquisition is None:
            if image is None:
                raise ValueError(_("Give subject and acquisition: the reference volume has no VISCERAL name"))
            subject, acquisition, modality = image.subject, image.acquisition, modality if modality is not None else image.modality
        name = VisceralName(int(subject), int(acquisition), modality or None, FileKind.REGION, int(annotator))
        return MRMLBridge.exportSegmentation(segmentationNode, referenceVolumeNode, folder, name, uncertainty, overwrite)

    def exportLandmarks(self, markupsNode, referenceVolumeNode, folder: str, annotator: int, overwrite: bool = False):
        """Export a point list as the landmark CSV of its reference image; returns what was written
        (``MRMLBridge.MarkupsExport``: path, count, warnings)."""
        from visceral.conventions.names import FileKind, VisceralName

        image = MRMLBridge.volumeTokens(referenceVolumeNode)
        if image is None:
            raise ValueError(_("The reference volume has no VISCERAL name; load it with the Import section"))
        name = VisceralName(image.subject, image.acquisition, image.modality, FileKind.LANDMARKS, int(annotator), extension=".csv")
        return MRMLBridge.exportMarkups(markupsNode, referenceVolumeNode, str(Path(folder) / name.format()), overwrite)

    def exportProbabilityMaps(self, volumeNodes, referenceVolumeNode, folder: str, annotator: int, overwrite: bool = False):
        """Export scalar probability volumes (values in [0, 1], one per structure, named by structure)
        as the per-structure uncertainty volumes of the reference image (see ``MRMLBridge.exportProbabilityMaps``)."""
        from visceral.conventions.names import FileKind, VisceralName

        image = MRMLBridge.volumeTokens(referenceVolumeNode)
        if image is None:
            raise ValueError(_("The reference volume has no VISCERAL name; load it with the Import section"))
        name = VisceralName(image.subject, image.acquisition, image.modality, FileKind.REGION, int(annotator))
        return MRMLBridge.exportProbabilityMaps(volumeNodes, referenceVolumeNode, folder, name, overwrite)

    def importAnnotation(self, path: str, referenceVolumeNode, scene=None):
        """Load a region annotation (.nii.gz: a label volume, or one structure's probability volume)
        or a landmark CSV on its reference volume."""
        from visceral.conventions.names import FileKind, parse_name

        scene = scene or slicer.mrmlScene
        if path.endswith(".csv"):
            return MRMLBridge.importLandmarks(scene, path, referenceVolumeNode)
        if parse_name(path).kind is FileKind.REGION_LABEL:
            return MRMLBridge.importProbabilityMap(scene, path, referenceVolumeNode)
        return MRMLBridge.importRegionAnnotation(scene, path, referenceVolumeNode)

    def imageFolder(self, volumeNode) -> Optional[str]:
        """The folder a data-set image was loaded from (by :meth:`loadImage`), or ``None``."""
        return MRMLBridge.volumeFolder(volumeNode)

    def _imageKey(self, imageNode):
        image = MRMLBridge.volumeTokens(imageNode) if imageNode else None
        if image is None:
            raise ValueError(_("The image has no VISCERAL name; load it from a data set (Import section or loadImage)"))
        return (image.subject, image.acquisition, image.modality, image.body_region)

    def scoreSegmentation(self, segmentationNode, imageNode, referenceFolder: str, referenceAnnotator: Optional[int] = None,
                          resample: bool = False):
        """Score a segmentation against the reference annotations of its image in ``referenceFolder`` by the same
        code as ``visceral evaluate`` (``MRMLBridge.scoreSegmentation``); returns the ``EvaluationReport``."""
        self._imageKey(imageNode)
        return MRMLBridge.scoreSegmentation(segmentationNode, imageNode, referenceFolder, referenceAnnotator, resample)

    def scoreResultsFolder(self, imageNode, referenceFolder: str, resultsFolder: str, referenceAnnotator: Optional[int] = None,
                           resultAnnotator: Optional[int] = None, resample: bool = False):
        """Score the results of a data-set folder for one image against its reference annotations (as
        ``visceral evaluate``, restricted to that image); returns the ``EvaluationReport``."""
        from visceral.evaluate import evaluate

        return evaluate(referenceFolder, resultsFolder, images=[self._imageKey(imageNode)], reference_annotator=referenceAnnotator,
                        result_annotator=resultAnnotator, resample=resample)

    def scoreTable(self, report):
        """(header, rows) of the panel's score table (``visceral.evaluate.tables.summary_table``)."""
        from visceral.evaluate.tables import summary_table

        return summary_table(report)


#
# VisceralTest
#


class VisceralTest(ScriptedLoadableModuleTest):
    """Runs the scenarios the pytest suite runs on bare MRML (``VisceralLib.Scenarios``), inside Slicer."""

    def setUp(self) -> None:
        """Reset the scene (idempotent)."""
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        """Run as few or as many tests as needed here."""
        self.setUp()
        self.test_SegmentationRoundTrip()
        self.test_MarkupsRoundTrip()
        self.test_Scoring()

    def test_SegmentationRoundTrip(self) -> None:
        from VisceralLib import Scenarios

        self.delayDisplay("Segmentation export and re-import")
        with tempfile.TemporaryDirectory() as workdir:
            Scenarios.scenarioSegmentationRoundTrip(workdir)
        self.delayDisplay("Test passed")

    def test_MarkupsRoundTrip(self) -> None:
        from VisceralLib import Scenarios

        self.delayDisplay("Landmarks with covariance")
        with tempfile.TemporaryDirectory() as workdir:
            position_error, covariance_error = Scenarios.scenarioMarkupsRoundTrip(workdir)
        logging.info("landmark round trip: %.3g mm, covariance %.3g", position_error, covariance_error)
        self.delayDisplay("Test passed")

    def test_Scoring(self) -> None:
        from VisceralLib import Scenarios

        self.delayDisplay("Scoring a segmentation against the reference annotations")
        with tempfile.TemporaryDirectory() as workdir:
            dice = Scenarios.scenarioScoring(workdir)
        logging.info("scoring: liver Dice %.4f", dice)
        self.delayDisplay("Test passed")

