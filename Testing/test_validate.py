"""The data-set validator on a clean generated set and a gallery of broken ones."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gallery
from visceral.validate import ISSUE_CODES, ConfigError, Severity, load_config, validate_dataset


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gallery") / "clean"
    gallery.build_clean_dataset(root)
    return root


def copy_of(clean: Path, tmp_path: Path) -> Path:
    root = tmp_path / "clean"
    shutil.copytree(clean, root)
    shutil.copy(clean.parent / "clean-validator.json", tmp_path)
    shutil.copy(clean.parent / "clean-landmarks.csv", tmp_path)
    return root


def test_clean_dataset_has_zero_findings(clean: Path) -> None:
    report = validate_dataset(clean, config=load_config(clean.parent / "clean-validator.json"))
    assert report.findings == [], report.to_text()
    assert (report.images, report.annotations) == (1, 3)
    assert report.files == len([p for p in clean.rglob("*") if p.is_file()])


def test_clean_dataset_parallel_equals_serial(clean: Path) -> None:
    config = load_config(clean.parent / "clean-validator.json")
    assert validate_dataset(clean, config=config, jobs=2).findings == validate_dataset(clean, config=config, jobs=1).findings == []


def test_without_the_landmark_registry_ids_are_warnings_only(clean: Path) -> None:
    report = validate_dataset(clean)
    assert report.ok
    assert report.codes() == ["LANDMARK_ID_UNREGISTERED"] * 2


def test_gallery_covers_every_issue_code() -> None:
    planted = {code for _, codes, _ in gallery.BROKEN for code in codes}
    assert planted == set(ISSUE_CODES)


@pytest.mark.parametrize("name, expected, plant", gallery.BROKEN, ids=[b[0] for b in gallery.BROKEN])
def test_each_planted_problem_is_reported_exactly(clean: Path, tmp_path: Path, name: str, expected: list, plant) -> None:
    root = copy_of(clean, tmp_path)
    plant(root)
    report = validate_dataset(root, config=load_config(tmp_path / "clean-validator.json"), jobs=1)
    assert report.codes() == sorted(expected), report.to_text()
    for finding in report.findings:
        assert finding.severity is ISSUE_CODES[finding.code][0]
        assert finding.message and not finding.file.startswith("/")
    assert report.ok == all(ISSUE_CODES[c][0] is not Severity.ERROR for c in expected)


def test_config_changes_severity_and_bad_configs_are_errors(clean: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"severity": {"LANDMARK_ID_UNREGISTERED": "error"}}))
    report = validate_dataset(clean, config=load_config(config))
    assert not report.ok and report.codes() == ["LANDMARK_ID_UNREGISTERED"] * 2
    config.write_text(json.dumps({"severity": {"LANDMARK_ID_UNREGISTERED": "ignore"}}))
    assert validate_dataset(clean, config=load_config(config)).findings == []
    for bad, reason in [
        ("{not json", "not a readable JSON"),
        ('{"severity": {"NO_SUCH_CODE": "error"}}', "unknown issue code 'NO_SUCH_CODE'"),
        ('{"severity": {"ORPHAN_FILE": "fatal"}}', "must be error, warning or ignore"),
        ('{"severities": {}}', "unknown config key(s) 'severities'"),
        ('{"landmark_registry": "missing.csv"}', "cannot read the file"),
    ]:
        config.write_text(bad)
        with pytest.raises(ConfigError, match=__import__("re").escape(reason)):
            load_config(config)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visceral", "validate", *args], capture_output=True, text=True, timeout=300)


def test_cli_text_json_and_exit_codes(clean: Path, tmp_path: Path) -> None:
    ok = run_cli(str(clean), "--config", str(clean.parent / "clean-validator.json"), "-q")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 error(s), 0 warning(s)" in ok.stdout
    warn = run_cli(str(clean), "--json")
    assert warn.returncode == 0  # warnings do not fail
    data = json.loads(warn.stdout)
    assert data["summary"]["warnings"] == 2 and data["findings"][0]["code"] == "LANDMARK_ID_UNREGISTERED"
    root = copy_of(clean, tmp_path)
    (root / gallery.IMAGE.with_extension(".txt").format()).unlink()
    bad = run_cli(str(root), "-q")
    assert bad.returncode == 1
    assert "ERROR   IMAGE_METADATA_MISSING: subject01_1_modalityCT.nii.gz: expected subject01_1_modalityCT.txt beside it" in bad.stdout
    config = tmp_path / "bad.json"
    config.write_text("[]")
    wrong = run_cli(str(clean), "--config", str(config))
    assert wrong.returncode == 2 and "error:" in wrong.stderr and "Traceback" not in wrong.stderr
    missing = run_cli(str(tmp_path / "nope"))
    assert missing.returncode == 1 and "not a folder" in missing.stderr


def test_every_issue_code_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "VALIDATOR.md").read_text()
    for code, (severity, _) in ISSUE_CODES.items():
        assert f"| `{code}` | {severity.value} |" in doc


def test_an_image_cut_short_is_unreadable(clean: Path, tmp_path: Path) -> None:
    """Every image's voxel data is read (not only float images'): a volume cut short is NIFTI_UNREADABLE."""
    root = copy_of(clean, tmp_path)
    image = next(p for p in root.glob("*.nii.gz") if "annotation" not in p.name)
    data = image.read_bytes()
    image.write_bytes(data[: len(data) * 2 // 3])
    report = validate_dataset(root, config=load_config(tmp_path / "clean-validator.json"), jobs=1)
    assert [(f.code, f.file) for f in report.findings if f.code == "NIFTI_UNREADABLE"] == [("NIFTI_UNREADABLE", image.name)], report.to_text()
