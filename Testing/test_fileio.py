"""Atomic writes: a failure never leaves a half-written file that looks complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from visceral.fileio import TEMP_PREFIX, atomic_output_path, atomic_write, atomic_write_text


def test_success_replaces_the_destination(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, exc) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(exc):
        with atomic_write(path) as handle:
            handle.write("half")
            raise exc()
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_output_path_keeps_double_suffix_for_format_detection(tmp_path: Path) -> None:
    dest = tmp_path / "x.nii.gz"
    with atomic_output_path(dest) as tmp:
        assert tmp.name.startswith(TEMP_PREFIX) and tmp.name.endswith(".nii.gz")
        tmp.write_bytes(b"data")
    assert dest.read_bytes() == b"data"
    with pytest.raises(ValueError):
        with atomic_output_path(tmp_path / "y.nii.gz") as tmp:
            tmp.write_bytes(b"partial")
            raise ValueError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nii.gz"]
