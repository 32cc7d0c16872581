"""Packaging: a built wheel carries the package and its resource tables."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_package_and_resources(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("visceral-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "visceral/conventions/names.py" in names
    assert "visceral/resources/radlex_structures.csv" in names
    assert not any(n.startswith(("Testing/", "bench/")) for n in names)
