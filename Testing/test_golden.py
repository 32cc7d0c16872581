"""Backward compatibility: the golden files of every released conventions version still read the same.

Seed section 5: "any processing pipeline built for the current convention has to be
operable for any future versions".  Read the other way round, a reader written later
must read every earlier file.  Never edit the golden files; add a folder per version.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from visceral.conventions.labels import read_label_table
from visceral.conventions.landmarks import read_landmarks
from visceral.conventions.metadata import read_metadata
from visceral.conventions.names import parse_name
from visceral.conventions.version import KNOWN_VERSIONS, is_known, is_readable

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"


def test_every_known_version_has_golden_files() -> None:
    for version in KNOWN_VERSIONS:
        major, minor = version.split(".")
        folder = GOLDEN / (f"v{major}" if minor == "0" else f"v{version}")
        assert folder.is_dir(), f"golden files for conventions {version} are missing"


def _golden_names():
    for line in (GOLDEN / "v1" / "names.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            raw, expected = line.split(" -> ")
            yield raw, expected.split()


@pytest.mark.parametrize("raw, expected", list(_golden_names()))
def test_v1_names(raw: str, expected: list) -> None:
    n = parse_name(raw)
    got = [str(n.subject), str(n.acquisition), n.modality or "-", n.kind.value, str(n.annotator) if n.annotator is not None else "-",
           str(n.label) if n.label is not None else "-", n.body_region or "-", n.extension]
    assert got == expected


def test_v1_label_table() -> None:
    table = read_label_table(GOLDEN / "v1" / "subject21_1_modalityCT_regionannotation_3.csv")
    assert table.as_dict() == {"liver": 58, "spleen": 86, "right kidney": 29662, "left rectus abdominis": 40358}


@pytest.mark.parametrize("name", ["subject21_1_modalityCT_lmannotation_3.csv", "seed_style_lmannotation.csv"])
def test_v1_landmarks(name: str) -> None:
    lms = read_landmarks(GOLDEN / "v1" / name)
    assert [lm.landmark_id for lm in lms] == [321, 12]
    assert lms[0].position_mm == (134.5, 423.5, 262.5)
    assert lms[0].covariance == (4, 0.5, 0, 0.5, 2.25, 0, 0, 0, 9)
    assert lms[1].covariance is None


def test_v1_metadata() -> None:
    meta = read_metadata(GOLDEN / "v1" / "subject21_1_modalityCT.txt")
    assert meta.conventions_version == "1.0"
    assert meta.voxel_size_mm == (0.703125, 0.703125, 1.5)
    assert dict(meta.fields) == {"dimensions": "512 512 300", "modality": "CT", "patient_age": "061Y", "patient_sex": "F"}


def test_version_rule() -> None:
    assert is_known("1.0") and is_readable("1.0")
    assert is_readable("1.9") and not is_known("1.9")  # later minors only append
    assert not is_readable("2.0")
