"""Render the module panel offscreen from its .ui (docs/screenshot.png, the extension's screenshot URL).

Slicer's own widgets (CTK, MRML) are not available outside Slicer, so each is drawn by its nearest Qt
widget: a collapsible section as a titled group box, a path field as a line edit, a node selector as a
combo box showing an example node.  Run: ``python tools/render_panel.py [output.png]``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QFile  # noqa: E402
from PySide6.QtUiTools import QUiLoader  # noqa: E402
from PySide6.QtWidgets import QApplication, QComboBox, QGroupBox, QLineEdit, QPlainTextEdit, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QWidget  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
UI = ROOT / "VisceralModule" / "Resources" / "UI" / "Visceral.ui"

#: what the example panel shows in each field (a clinician's session after loading subject 1)
EXAMPLE = {
    "clinicalFolder": "/data/clinic/export-2026-11",
    "deidentifiedFolder": "/data/visceral/dicom",
    "importFolder": "/data/visceral/dicom",
    "datasetFolder": "/data/visceral/dataset",
    "segmentation": "Segmentation",
    "segmentationReference": "subject01_1_modalityCT",
    "exportFolder": "/data/visceral/dataset",
    "landmarks": "Landmarks",
    "landmarksReference": "subject01_1_modalityCT",
    "landmarksFolder": "",
    "annotationFile": "",
    "annotationReference": "subject01_1_modalityCT",
    "subject": 1,
    "acquisition": 1,
    "modality": "CT",
    "annotator": 3,
    "scoreReference": "subject01_1_modalityCT",
    "scoreReferenceFolder": "/data/visceral/dataset",
    "scoreSegmentation": "Segmentation",
    "scoreResultsFolder": "",
}
#: the buttons whose inputs the example fills (the others stay disabled, as in Slicer)
READY = ("deidentifyButton", "importButton", "exportSegmentationButton", "scoreSegmentationButton")
#: the score table after "Score segmentation" (the layout of visceral.evaluate.tables.summary_table)
SCORES = (["structure / landmark", "dice", "jaccard", "hausdorff95", "hausdorff", "assd"],
          [["liver", "0.9612", "0.9253", "2.1", "4.2", "0.6135"], ["spleen", "0.9347", "0.8775", "2.4", "3.6", "0.7712"],
           ["right kidney", "0.9021", "0.8217", "3", "5.1", "0.9904"]])
LOG = "wrote subject01_1_regionannotation_3.nii.gz\nwrote subject01_1_regionannotation_3.csv\nliver: label 58\nspleen: label 86"


class qMRMLWidget(QWidget):  # noqa: N801 - named as Slicer's class so the loader builds it
    pass


class ctkCollapsibleButton(QGroupBox):  # noqa: N801
    pass


class ctkPathLineEdit(QLineEdit):  # noqa: N801
    pass


class qMRMLNodeComboBox(QComboBox):  # noqa: N801
    pass


def render(output: Path) -> Path:
    app = QApplication.instance() or QApplication([])
    loader = QUiLoader()
    for cls in (qMRMLWidget, ctkCollapsibleButton, ctkPathLineEdit, qMRMLNodeComboBox):
        loader.registerCustomWidget(cls)
    ui_file = QFile(str(UI))
    ui_file.open(QFile.ReadOnly)
    panel = loader.load(ui_file)
    ui_file.close()
    for box in panel.findChildren(ctkCollapsibleButton):
        box.setTitle(str(box.property("text")))
    for widget in panel.findChildren(QWidget):
        value = EXAMPLE.get(str(widget.property("SlicerParameterName") or ""))
        if isinstance(widget, ctkPathLineEdit):
            widget.setText(value or "")
        elif isinstance(widget, qMRMLNodeComboBox) and value:
            widget.addItem(value)
        elif isinstance(widget, QSpinBox) and value:
            widget.setValue(value)
        elif isinstance(widget, QLineEdit) and value:
            widget.setText(value)
    for name in READY:
        panel.findChild(QPushButton, name).setEnabled(True)
    panel.findChild(QPlainTextEdit, "resultsTextEdit").setPlainText(LOG)
    table = panel.findChild(QTableWidget, "scoreTableWidget")
    table.setColumnCount(len(SCORES[0]))
    table.setHorizontalHeaderLabels(SCORES[0])
    table.setRowCount(len(SCORES[1]))
    for r, row in enumerate(SCORES[1]):
        for c, text in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(text))
    table.resizeColumnsToContents()
    panel.findChild(QWidget, "segmentMappingLabel").setText("RadLex: liver (58), spleen (86), right kidney (29662)")
    panel.resize(520, panel.sizeHint().height())
    panel.show()
    app.processEvents()
    panel.grab().save(str(output))
    return output


if __name__ == "__main__":
    print(render(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png"))
