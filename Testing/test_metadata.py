"""Metadata .txt files and the data-set README."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from visceral.conventions.metadata import Metadata, dataset_readme, parse_metadata, read_metadata, write_metadata
from visceral.errors import MetadataError


def test_canonical_file(tmp_path: Path) -> None:
    path = tmp_path / "subject01_1_modalityCT.txt"
    write_metadata(path, Metadata((0.703125, 0.703125, 1.5), fields=OrderedDict(modality="CT", Patient_Age="061Y")))
    assert path.read_text() == "conventions_version: 1.0\nvoxel_size_mm: 0.703125 0.703125 1.5\nmodality: CT\npatient_age: 061Y\n"
    assert read_metadata(path).voxel_size_mm == (0.703125, 0.703125, 1.5)


@pytest.mark.parametrize(
    "text",
    [
        "voxel_size_mm: 0.7 0.8 2.5",
        "Voxel size (mm) = 0.7 x 0.8 x 2.5",
        "voxel size: 0,7 0,8 2,5 mm",
        "spacing: [0.7, 0.8, 2.5]",
        "voxel_size_x_mm: 0.7\nvoxel_size_y_mm: 0.8\nvoxel_size_z_mm: 2.5",
    ],
)
def test_voxel_size_spellings(text: str) -> None:
    assert parse_metadata(text).voxel_size_mm == (0.7, 0.8, 2.5)


def test_unknown_keys_are_kept_in_order_and_later_minor_versions_read() -> None:
    text = "conventions_version: 1.7\nvoxel_size_mm: 1 1 1\nzeta: last\nalpha: first\nfuture_key: a: b\n"
    meta = parse_metadata(text)
    assert meta.conventions_version == "1.7"
    assert list(meta.fields.items()) == [("zeta", "last"), ("alpha", "first"), ("future_key", "a: b")]
    assert parse_metadata(meta.to_text()) == meta


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("modality: CT\n", None, "mandatory key 'voxel_size_mm'"),
        ("voxel_size_mm: 1 1\n", 1, "expected 3 numbers"),
        ("voxel_size_mm: 1 0 1\n", 1, "positive"),
        ("voxel_size_mm: 1 1 1\njust text\n", 2, "expected 'key: value'"),
        ("voxel_size_mm: 1 1 1\nmodality: CT\nModality: MR\n", 3, "already given on line 2"),
        ("conventions_version: 2.0\nvoxel_size_mm: 1 1 1\n", 1, "unknown major version"),
        ("conventions_version: one\nvoxel_size_mm: 1 1 1\n", 1, "MAJOR.MINOR"),
    ],
)
def test_malformed_metadata(tmp_path: Path, text: str, line, reason: str) -> None:
    path = tmp_path / "m.txt"
    path.write_text(text)
    with pytest.raises(MetadataError) as info:
        read_metadata(path)
    assert reason in info.value.reason
    assert info.value.line == line
    assert str(path) in str(info.value)


def test_values_must_be_one_line() -> None:
    with pytest.raises(MetadataError, match="one line"):
        Metadata((1, 1, 1), fields=OrderedDict(note="a\nb"))


def test_dataset_readme_explains_names_and_groups_files() -> None:
    text = dataset_readme(
        [
            "subject01_1_modalityCT.nii.gz",
            "subject01_1_modalityCT.txt",
            "subject01_1_modalityCT_regionannotation_2.nii.gz",
            "subject01_1_modalityCT_regionannotation_2.csv",
            "subject01_1_modalityCT_regionannotation_label58_2.nii.gz",
            "subject01_1_modalityCT_lmannotation_2.csv",
            "notes.pdf",
        ],
        title="demo",
    )
    assert "Conventions version: 1.0" in text
    assert "subject 1, acquisition 1, modality CT:" in text
    assert "subject01_1_modalityCT_regionannotation_label58_2.nii.gz  (structure 58, annotator 2)" in text
    assert "subject01_1_modalityCT_lmannotation_2.csv  (landmarks, annotator 2)" in text
    assert "Other files" in text and "notes.pdf" in text
    assert "origin at voxel [0,0,0]" in text


KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(lambda k: "__" not in k and not k.endswith("_") and k not in ("voxel_size_mm", "conventions_version", "voxel_size", "spacing", "spacing_mm", "voxel_dimensions", "voxel_dimensions_mm", "pixdim") and not k.startswith(("voxel_size_", "spacing_")))
VALUES = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\x85"), max_size=20).map(str.strip)


@given(
    st.tuples(*[st.floats(1e-3, 1e3, allow_nan=False)] * 3),
    st.dictionaries(KEYS, VALUES, max_size=6),
)
def test_metadata_round_trip(voxel, fields) -> None:
    meta = Metadata(voxel, fields=OrderedDict(fields))
    assert parse_metadata(meta.to_text()) == meta
