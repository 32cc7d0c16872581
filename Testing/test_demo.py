"""`visceral demo` end to end, and its report rendered by headless Chromium."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TESTING_DIR, require_tool
from visceral.report.html import SECTIONS

ARTIFACTS = TESTING_DIR / "artifacts"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "visceral-demo"
    result = subprocess.run([sys.executable, "-m", "visceral", "demo", str(out), "-q"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"report:    {out / 'report.html'}" in result.stdout
    return out


def test_demo_data_set_validates_and_nothing_leaked(demo: Path) -> None:
    from visceral.validate import validate_dataset

    report = validate_dataset(demo / "dataset")
    assert report.errors == []
    assert report.images == 4 and report.annotations == 4 * 3
    assert {f.code for f in report.warnings} <= {"LANDMARK_ID_UNREGISTERED"}  # demo landmark IDs are not registered ones
    deid = (demo / "dicom-release.private" / "deid_report.json").read_text()
    assert '"leaks": 0' in deid
    for name in ("Musterfrau", "Mustermann", "HOSP-00", "19580301", "ACME"):
        for path in list((demo / "dicom-release").rglob("*")) + list((demo / "dataset").rglob("*.txt")):
            if path.is_file():
                assert name.encode() not in path.read_bytes(), (name, path)


def test_demo_report_has_every_section_and_picture(demo: Path) -> None:
    html = (demo / "report.html").read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in html
    assert len(re.findall(r'<img alt="orthogonal slices of subject0\d_\d_modality(CT|MR)\.nii\.gz" src="data:image/png;base64,', html)) == 4
    assert "Secondary Capture Image Storage: on the seed&#x27;s list of removable objects" in html
    assert "Basic Text SR Storage" in html and "Lossy Image Compression (0028,2110) is 01" in html
    assert '<span class="ok">0 hits</span>' in html and '<span class="ok">no new errors</span>' in html
    assert "RID58" in html and "first lumbar vertebra" in html


def test_report_renders_in_headless_chromium(demo: Path, tmp_path: Path) -> None:
    chromium = require_tool("chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    url = (demo / "report.html").as_uri()
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-images-loaded="4"' in dom.stdout, "not every picture decoded"
    shot = ARTIFACTS / "demo_report.png"
    run = subprocess.run([chromium, *flags, "--window-size=1280,2400", f"--screenshot={shot}", url], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 20_000
