"""Shared pytest configuration.

External programs (``dciodvfy``, ``dcm2niix``, ``chromium``...) are real
oracles.  On a developer machine a missing one skips its tests with a reason;
in CI (``CI`` set) or with ``VISCERAL_REQUIRE_TOOLS=1`` a missing tool is a
*failure*, because a skipped test is not a passed test.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property tests must not fail because a loaded CI machine is slow: no per-example deadline.
settings.register_profile("visceral", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("visceral")

TESTING_DIR = Path(__file__).resolve().parent
DATA_DIR = TESTING_DIR / "data"


def tools_required() -> bool:
    """True when missing external tools must fail the run instead of skipping."""
    return bool(os.environ.get("CI")) or os.environ.get("VISCERAL_REQUIRE_TOOLS") == "1"


def require_tool(name: str) -> str:
    """Return the path of program ``name``; skip (locally) or fail (CI) when it is absent."""
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path:
        return path
    message = f"required tool {name!r} is not installed (see README: system packages)"
    if tools_required():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


def read_with_slicer(path: Path):
    """``path`` read by 3D Slicer's own volume storage node (slicer-core, the real MRML library) into a
    scalar volume node of a new scene; skips when slicer-core is not installed."""
    slicer = pytest.importorskip("slicer")
    scene = slicer.vtkMRMLScene()
    volume = slicer.vtkMRMLScalarVolumeNode()
    scene.AddNode(volume)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(volume), f"Slicer could not read {path}"
    volume.scene_ = scene  # the scene lives as long as the node
    return volume
