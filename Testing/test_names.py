"""File names: the seed's forms, the benchmark layout, canonical writing, errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from visceral.conventions.names import FileKind, NameStyle, VisceralName, format_name, parse_name
from visceral.errors import InvalidNameError


@pytest.mark.parametrize(
    "raw, expected",
    [
        # The seed's examples, verbatim (section 4), including "[...]" and the garbled "¢".
        ("subject21_1[_modalityCT].nii", VisceralName(21, 1, "CT", extension=".nii")),
        ("subject21_1_modalityCT_regionannotation_3.nii", VisceralName(21, 1, "CT", FileKind.REGION, 3, extension=".nii")),
        ("subject21_1[_modalityCT]_regionannotation_label32_3.nii", VisceralName(21, 1, "CT", FileKind.REGION_LABEL, 3, 32, extension=".nii")),
        ("subject21_1¢_modalityCT]_lmannotation_3.nii", VisceralName(21, 1, "CT", FileKind.LANDMARKS, 3, extension=".nii")),
        # The seed's patterns with their prefixes (and the stray space of one of them).
        ("subject21_acquisition1_modalityCT_regionannotation_annotator3.nii.gz", VisceralName(21, 1, "CT", FileKind.REGION, 3)),
        ("subject21_acquisition1[_modalityCT] _regionannotation_annotator3.nii", VisceralName(21, 1, "CT", FileKind.REGION, 3, extension=".nii")),
        ("subject21_acquisition1_regionannotation_label58_annotator3.nii.gz", VisceralName(21, 1, None, FileKind.REGION_LABEL, 3, 58)),
        # Modality optional, landmark CSV, metadata txt, label table csv.
        ("subject07_2.nii.gz", VisceralName(7, 2)),
        ("subject07_2_modalityMR_lmannotation_1.csv", VisceralName(7, 2, "MR", FileKind.LANDMARKS, 1, extension=".csv")),
        ("subject07_2_modalityMR.txt", VisceralName(7, 2, "MR", extension=".txt")),
        ("subject07_2_modalityMR_regionannotation_1.csv", VisceralName(7, 2, "MR", FileKind.REGION, 1, extension=".csv")),
        # The layout the VISCERAL benchmarks distributed.
        ("10000001_3_MRT1_wb.nii.gz", VisceralName(10000001, 3, "MRT1", body_region="wb")),
        ("10000001_3_MRT1_wb_58_4.nii.gz", VisceralName(10000001, 3, "MRT1", FileKind.REGION_LABEL, 4, 58, "wb")),
        ("10000100_1_CTce_ThAb_landmarks_1.fcsv", VisceralName(10000100, 1, "CTce", FileKind.LANDMARKS, 1, None, "ThAb", ".fcsv")),
        # Paths: the folder is ignored.
        ("/data/set/subject01_1_modalityCT.nii.gz", VisceralName(1, 1, "CT")),
    ],
)
def test_parse_every_form_the_seed_and_benchmarks_show(raw: str, expected: VisceralName) -> None:
    assert parse_name(raw) == expected


def test_styles_are_recorded() -> None:
    assert parse_name("subject21_1_modalityCT.nii").style is NameStyle.CANONICAL
    assert parse_name("subject21_acquisition1.nii").style is NameStyle.PATTERN
    assert parse_name("subject21_1_regionannotation_annotator3.nii").style is NameStyle.PATTERN
    assert parse_name("10000001_3_MRT1_wb.nii.gz").style is NameStyle.BENCHMARK


def test_canonical_writer_emits_the_example_form_with_two_digit_subjects() -> None:
    name = parse_name("subject21_acquisition1_modalityCT_regionannotation_label32_annotator3.nii")
    assert name.with_extension(".nii.gz").format() == "subject21_1_modalityCT_regionannotation_label32_3.nii.gz"
    assert VisceralName(3, 1, "CT").format() == "subject03_1_modalityCT.nii.gz"
    assert VisceralName(3, 1, "CT", FileKind.LANDMARKS, 2, extension=".csv").format() == "subject03_1_modalityCT_lmannotation_2.csv"


def test_pattern_and_benchmark_writers() -> None:
    n = VisceralName(21, 1, "CT", FileKind.REGION_LABEL, 3, 58, "wb")
    assert format_name(n, NameStyle.PATTERN) == "subject21_acquisition1_modalityCT_regionannotation_label58_annotator3.nii.gz"
    assert format_name(n, NameStyle.BENCHMARK) == "21_1_CT_wb_58_3.nii.gz"
    with pytest.raises(InvalidNameError, match="benchmark layout has no multi-label"):
        format_name(VisceralName(21, 1, "CT", FileKind.REGION, 3, body_region="wb"), NameStyle.BENCHMARK)


def test_related_names() -> None:
    lm = parse_name("subject21_1_modalityCT_lmannotation_3.csv")
    assert lm.image().format() == "subject21_1_modalityCT.nii.gz"
    assert lm.image().with_extension(".txt").format() == "subject21_1_modalityCT.txt"
    region = parse_name("subject21_1_modalityCT_regionannotation_3.nii.gz")
    assert region.with_label(58).format() == "subject21_1_modalityCT_regionannotation_label58_3.nii.gz"


@pytest.mark.parametrize(
    "raw, token, position, reason",
    [
        ("patient21_1.nii", "patient21", 1, "expected 'subject<number>'"),
        ("subjectXX_1.nii", "subjectXX", 1, "expected the subject as 'subject<number>'"),
        ("subject21.nii", "", 2, "missing the acquisition"),
        ("subject21_first.nii", "first", 2, "expected the acquisition"),
        ("subject21_1_CT.nii", "CT", 3, "expected 'modality<name>', 'regionannotation' or 'lmannotation'"),
        ("subject21_1_modalityCT_regionannotation.nii", "", 5, "missing the annotator"),
        ("subject21_1_modalityCT_regionannotation_labelX_3.nii", "labelX", 5, "expected the structure label"),
        ("subject21_1_modalityCT_lmannotation_three.csv", "three", 5, "expected the annotator"),
        ("subject21_1_modalityCT_lmannotation_3_extra.csv", "extra", 6, "unexpected token"),
        ("10000001_3_MRT1.nii.gz", "", 4, "missing the body region"),
        ("10000001_3_MRT1_wb_58.nii.gz", "58", 5, "expected '_<RadLexID>_<annotator>'"),
        ("10000001_3_MRT1_wb_liver_4.nii.gz", "liver", 5, "RadLex ID or 'landmarks'"),
    ],
)
def test_malformed_names_say_which_token_is_wrong(raw: str, token: str, position: int, reason: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        parse_name(raw)
    assert info.value.token == token
    assert info.value.position == position
    assert reason in info.value.reason
    assert raw in str(info.value)


@pytest.mark.parametrize("raw", ["subject21_1.png", "subject21_1", "subject21__1.nii", "_subject21_1.nii"])
def test_bad_extensions_and_empty_tokens(raw: str) -> None:
    with pytest.raises(InvalidNameError):
        parse_name(raw)


def test_inconsistent_tokens_are_refused() -> None:
    with pytest.raises(InvalidNameError, match="no annotator"):
        VisceralName(1, 1, annotator=2)
    with pytest.raises(InvalidNameError, match="annotator"):
        VisceralName(1, 1, kind=FileKind.REGION)
    with pytest.raises(InvalidNameError, match="label number"):
        VisceralName(1, 1, kind=FileKind.REGION, annotator=1, label=3)
    with pytest.raises(InvalidNameError, match="letters and digits"):
        VisceralName(1, 1, modality="C_T")


ALNUM = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)


@st.composite
def visceral_names(draw: st.DrawFn, need_region: bool = False) -> VisceralName:
    kind = draw(st.sampled_from(list(FileKind)))
    annotated = kind is not FileKind.IMAGE
    ext = draw(st.sampled_from([".nii.gz", ".nii", ".txt", ".csv"]))
    return VisceralName(
        subject=draw(st.integers(0, 10**9)),
        acquisition=draw(st.integers(0, 10**4)),
        modality=draw(ALNUM) if need_region else draw(st.none() | ALNUM),
        kind=kind,
        annotator=draw(st.integers(0, 999)) if annotated else None,
        label=draw(st.integers(0, 10**6)) if kind is FileKind.REGION_LABEL else None,
        body_region=draw(ALNUM) if need_region else None,
        extension=ext,
    )


@given(visceral_names())
def test_round_trip_canonical_and_pattern(name: VisceralName) -> None:
    for style in (NameStyle.CANONICAL, NameStyle.PATTERN):
        parsed = parse_name(format_name(name, style))
        assert parsed == name
        assert parsed.style is style


@given(visceral_names(need_region=True).filter(lambda n: n.kind is not FileKind.REGION))
def test_round_trip_benchmark(name: VisceralName) -> None:
    assert parse_name(format_name(name, NameStyle.BENCHMARK)) == name


@given(st.text(max_size=40))
def test_parser_never_crashes_on_arbitrary_text(raw: str) -> None:
    try:
        parse_name(raw)
    except InvalidNameError:
        pass
