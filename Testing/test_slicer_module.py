"""The Slicer module's packaging and GUI description: CMake lists, .ui bindings, class layout."""

from __future__ import annotations

import ast
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "VisceralModule"
UI = MODULE / "Resources" / "UI" / "Visceral.ui"


def cmake_list(name: str) -> list:
    text = (MODULE / "CMakeLists.txt").read_text()
    match = re.search(r"set\(" + name + r"\s+(.*?)\)", text, re.S)
    assert match, name
    return [line.strip() for line in match.group(1).split() if line.strip()]


def test_every_python_file_the_module_needs_is_listed_in_cmake() -> None:
    scripts = {s.replace("${MODULE_NAME}", "Visceral") for s in cmake_list("MODULE_PYTHON_SCRIPTS")}
    on_disk = {p.relative_to(MODULE).as_posix() for p in MODULE.rglob("*.py")}
    assert scripts == on_disk
    package = set(cmake_list("VISCERAL_PACKAGE_SCRIPTS"))
    package_on_disk = {p.relative_to(ROOT / "VisceralLogic").as_posix() for p in (ROOT / "VisceralLogic" / "visceral").rglob("*.py")}
    assert package == package_on_disk, f"run tools/update_cmake_lists.py: missing {package_on_disk - package}, stale {package - package_on_disk}"
    resources = set(cmake_list("VISCERAL_RESOURCE_FILES"))
    resources_on_disk = {p.name for p in (ROOT / "Resources").iterdir() if p.is_file() and p.suffix in (".py", ".csv", ".json", ".txt")}
    assert resources == resources_on_disk
    assert {r.replace("${MODULE_NAME}", "Visceral") for r in cmake_list("MODULE_PYTHON_RESOURCES")} == {"Resources/Icons/Visceral.png", "Resources/UI/Visceral.ui"}
    for resource in ("Resources/Icons/Visceral.png", "Resources/UI/Visceral.ui"):
        assert (MODULE / resource).is_file()
    top = (ROOT / "CMakeLists.txt").read_text()
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL",
                "EXTENSION_SCREENSHOTURLS", "find_package(Slicer REQUIRED)", "add_subdirectory(VisceralModule)"):
        assert key in top
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in (MODULE / "CMakeLists.txt").read_text()


def module_ast() -> ast.Module:
    return ast.parse((MODULE / "Visceral.py").read_text())


def test_module_has_the_five_template_classes_in_order() -> None:
    classes = [n.name for n in module_ast().body if isinstance(n, ast.ClassDef)]
    assert classes == ["Visceral", "VisceralParameterNode", "VisceralWidget", "VisceralLogic", "VisceralTest"]


def ui_widgets() -> dict:
    tree = ET.parse(UI)
    return {w.get("name"): w for w in tree.iter("widget")}


def test_every_widget_the_code_uses_exists_in_the_ui() -> None:
    used = set(re.findall(r"self\.ui\.(\w+)", (MODULE / "Visceral.py").read_text()))
    widgets = ui_widgets()
    assert used and used <= set(widgets), used - set(widgets)


def test_every_parameter_is_bound_to_exactly_one_widget() -> None:
    params = {}
    for node in module_ast().body:
        if isinstance(node, ast.ClassDef) and node.name == "VisceralParameterNode":
            params = {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)}
    bound = []
    for widget in ui_widgets().values():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound.append(prop.find("string").text)
    assert sorted(bound) == sorted(params)


def test_ui_loads_offscreen_with_pyside6() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    pyside = pytest.importorskip("PySide6")
    from PySide6.QtCore import QFile
    from PySide6.QtUiTools import QUiLoader
    from PySide6.QtWidgets import QApplication, QWidget

    app = QApplication.instance() or QApplication([])
    ui_file = QFile(str(UI))
    assert ui_file.open(QFile.ReadOnly)
    widget = QUiLoader().load(ui_file)
    ui_file.close()
    assert widget is not None, "QUiLoader could not build the .ui"
    for name in ui_widgets():
        assert widget.findChild(QWidget, name) is not None or widget.objectName() == name, name
    assert pyside.__version__ and app is not None


def test_files_the_extension_description_points_at_exist() -> None:
    """Extensions Index review: the screenshot and icon URLs name files of this repository; a LICENSE exists."""
    import re

    root = Path(__file__).resolve().parents[1]
    cmake = (root / "CMakeLists.txt").read_text(encoding="utf-8")
    for key in ("EXTENSION_SCREENSHOTURLS", "EXTENSION_ICONURL"):
        url = re.search(rf'set\({key} "([^"]+)"\)', cmake).group(1)
        assert (root / url.split("/main/", 1)[1]).is_file(), url
    assert "Apache License" in (root / "LICENSE").read_text(encoding="utf-8")


def test_panel_reads_in_working_order() -> None:
    """De-identify -> check, convert and load -> export segmentation -> export landmarks (its own
    output field) -> import annotation -> score against the reference (with its table); the log is titled;
    every action button says what it misses."""
    tree = ET.parse(UI)
    sections = [w.get("name") for w in tree.iter("widget") if w.get("class") == "ctkCollapsibleButton"]
    assert sections == ["deidentifyCollapsibleButton", "importCollapsibleButton", "segmentationCollapsibleButton",
                        "landmarksCollapsibleButton", "annotationImportCollapsibleButton", "scoreCollapsibleButton"]

    def bound(section: str) -> set:
        widget = ui_widgets()[section]
        return {p.find("string").text for w in widget.iter("widget") for p in w.findall("property") if p.get("name") == "SlicerParameterName"}

    assert bound("deidentifyCollapsibleButton") == {"clinicalFolder", "deidentifiedFolder"}
    assert {"landmarks", "landmarksReference", "landmarksFolder"} == bound("landmarksCollapsibleButton")
    assert {"scoreReference", "scoreReferenceFolder", "scoreSegmentation", "scoreResultsFolder"} == bound("scoreCollapsibleButton")
    assert ui_widgets()["scoreCollapsibleButton"].find(".//widget[@name='scoreTableWidget']").get("class") == "QTableWidget"
    log = ui_widgets()["resultsGroupBox"]
    assert log.find("property[@name='title']/string").text and log.find(".//widget[@name='resultsTextEdit']") is not None
    buttons = {w.get("name") for w in tree.iter("widget") if w.get("class") == "QPushButton"}
    source = (MODULE / "Visceral.py").read_text()
    needs = source[source.index("def _missingInputs"):source.index("def _updateButtons")]
    assert set(re.findall(r'"(\w+Button)"', needs)) == buttons


def test_screenshot_renders_from_the_ui(tmp_path: Path) -> None:
    """docs/screenshot.png is rendered offscreen from the .ui (tools/render_panel.py) and shows every section."""
    pytest.importorskip("PySide6")
    import importlib.util

    spec = importlib.util.spec_from_file_location("render_panel", ROOT / "tools" / "render_panel.py")
    render_panel = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render_panel)
    from PySide6.QtGui import QImage

    image = QImage(str(render_panel.render(tmp_path / "panel.png")))
    assert image.width() >= 400 and image.height() >= 800
