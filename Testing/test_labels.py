"""Structure registry and region label tables."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from visceral.conventions.labels import (
    LabelTable,
    StructureRegistry,
    default_registry,
    normalize_structure_name,
    parse_label_table,
    read_label_table,
    write_label_table,
)
from visceral.errors import LabelTableError, UnknownStructureError

# The VISCERAL anatomy structures the issue asks the registry to cover.
VISCERAL_STRUCTURES = {
    "liver": 58, "spleen": 86, "pancreas": 170, "gallbladder": 187, "urinary bladder": 237, "aorta": 480,
    "trachea": 1247, "right lung": 1302, "left lung": 1326, "sternum": 2473, "thyroid gland": 7578,
    "first lumbar vertebra": 29193, "right kidney": 29662, "left kidney": 29663, "right adrenal gland": 30324,
    "left adrenal gland": 30325, "right psoas major": 32248, "left psoas major": 32249,
    "right rectus abdominis": 40357, "left rectus abdominis": 40358,
}
REFERENCE = Path(__file__).resolve().parent / "data" / "reference" / "radlex_visceral.csv"


def test_registry_covers_the_visceral_anatomy_with_radlex_ids() -> None:
    registry = default_registry()
    assert {s.name: s.radlex_id for s in registry} == VISCERAL_STRUCTURES


def test_registry_agrees_with_the_gathered_reference() -> None:
    with REFERENCE.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    registry = default_registry()
    for row in rows:
        s = registry.lookup(row["structure"])
        assert s.radlex_id == int(row["radlex_id"])
        assert s.radlex_label == row["radlex_label"]
        assert s.snomed_type[0] == row["snomed_code"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("Right kidney", "right kidney"), ("kidney right", "right kidney"), ("R kidney", "right kidney"),
        ("Kidney_R", "right kidney"), ("kidney, rt", "right kidney"), ("LEFT   KIDNEY", "left kidney"),
        ("Liver", "liver"), ("gall bladder", "gallbladder"), ("Bladder", "urinary bladder"), ("L1", "first lumbar vertebra"),
        ("muscle body of right rectus abdominis", "right rectus abdominis"), ("psoas major muscle left", "left psoas major"),
        (58, "liver"), ("58", "liver"), ("RID29663", "left kidney"), ("rid 480", "aorta"),
    ],
)
def test_lookup_by_name_synonym_and_id(query, expected: str) -> None:
    assert default_registry().lookup(query).name == expected


def test_unknown_names_get_close_match_suggestions() -> None:
    with pytest.raises(UnknownStructureError) as info:
        default_registry().lookup("livr")
    assert info.value.suggestions[0] == "liver"
    assert "did you mean 'liver'" in str(info.value)
    with pytest.raises(UnknownStructureError) as info:
        default_registry().lookup("brain")
    assert "unknown structure 'brain'" in str(info.value)
    with pytest.raises(UnknownStructureError):
        default_registry().lookup(99999)


def test_slicer_terminology_round_trip() -> None:
    registry = default_registry()
    for s in registry:
        entry = s.slicer_terminology()
        assert entry.count("~") == 6
        assert registry.from_slicer_terminology(entry) == s
    right = registry.lookup("right kidney").slicer_terminology()
    assert "~SCT^64033007^Kidney~SCT^24028007^Right~" in right
    # A Slicer entry with an empty modifier maps to the unpaired structure.
    liver = "Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure~SCT^10200004^Liver~^^~Anatomic codes - DICOM master list~^^~^^"
    assert registry.from_slicer_terminology(liver).name == "liver"


def test_label_values_come_from_the_registry_not_from_input_order() -> None:
    registry = default_registry()
    names = ["spleen", "Liver", "left kidney", "right rectus abdominis"]
    expected = {"liver": 58, "spleen": 86, "left kidney": 29663, "right rectus abdominis": 40357}
    for _ in range(5):
        random.shuffle(names)
        assert registry.label_values(names) == expected
        assert registry.label_values(names, compact=True) == {"liver": 1, "spleen": 2, "left kidney": 3, "right rectus abdominis": 4}
    assert LabelTable.for_structures(names).entries == tuple(sorted(expected.items(), key=lambda e: e[1]))


def test_canonical_csv_and_tolerant_reader(tmp_path: Path) -> None:
    table = LabelTable.for_structures(["liver", "right kidney"])
    path = tmp_path / "t.csv"
    write_label_table(path, table)
    assert path.read_text() == "structure,label\nliver,58\nright kidney,29662\n"
    assert read_label_table(path) == table
    # The seed's Table 1 header and "Liver 32" example.
    assert parse_label_table("Name of the structure (consistent with RadLex),Label\nLiver,32\n").as_dict() == {"Liver": 32}
    assert parse_label_table("Liver 32\n").as_dict() == {"Liver": 32}
    assert parse_label_table("label;structure\n32;Liver\n").as_dict() == {"Liver": 32}
    assert parse_label_table("liver\t58\nspleen\t86\n").as_dict() == {"liver": 58, "spleen": 86}
    # Slicer's <segmentation>.labels.csv: extra columns ignored, background row skipped.
    slicer = "LabelValue,Name,Color_R,Color_G,Color_B,Color_A\n0,Background,0,0,0,0\n58,liver,1,0,0,1\n"
    assert parse_label_table(slicer).as_dict() == {"liver": 58}


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("", None, "empty"),
        ("structure,label\nliver,fifty\n", 2, "is not an integer"),
        ("structure,label\nliver,58\nspleen,58\n", None, "label value used more than once: 58"),
        ("structure,label\nliver,58\nliver,86\n", None, "structure listed more than once: liver"),
        ("structure,label\nliver\n", 2, "expected a structure name and a label value"),
        ("organ,colour\nliver,red\n", 1, "lacks a structure or a label column"),
        ("structure,label\nliver,-3\n", None, "positive integer"),
    ],
)
def test_malformed_tables_give_documented_errors(tmp_path: Path, text: str, line, reason: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(LabelTableError) as info:
        read_label_table(path)
    assert reason in info.value.reason
    assert info.value.line == line
    assert str(path) in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LabelTableError, match="cannot read the file"):
        read_label_table(tmp_path / "nope.csv")


NAMES = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n\x85\u2028\u2029"), min_size=1, max_size=20).filter(
    lambda s: s.strip() == s and s and not s.startswith("#")
)


@given(st.dictionaries(NAMES, st.integers(1, 2**31 - 1), min_size=1, max_size=8).filter(lambda d: len(set(d.values())) == len(d)))
def test_label_table_round_trip(mapping: dict) -> None:
    if any(normalize_structure_name(k) in ("structure", "name", "label") or "structure" in k.lower() or k.lower() in ("label", "labelvalue", "value", "index", "name", "organ", "label value", "label name", "structure name") for k in mapping):
        return  # a first row that looks like a header is read as one, by design
    table = LabelTable.from_mapping(mapping)
    assert parse_label_table(table.to_csv()) == table


def test_registry_rejects_ambiguous_synonyms(tmp_path: Path) -> None:
    path = tmp_path / "reg.csv"
    path.write_text(
        "name,radlex_id,radlex_label,synonyms,snomed_type_code,snomed_type_meaning,snomed_modifier_code,snomed_modifier_meaning,source\n"
        "a,1,a,x,1,A,,,s\nb,2,b,x,2,B,,,s\n"
    )
    with pytest.raises(ValueError, match="ambiguous"):
        StructureRegistry.from_csv(path)
