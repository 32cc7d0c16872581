"""Landmark CSV files: canonical writer, tolerant reader, covariance validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from visceral.conventions.landmarks import Landmark, check_covariance, landmarks_to_csv, parse_landmarks, read_fcsv, read_landmarks, write_landmarks
from visceral.errors import LandmarkFileError

EYE = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def test_canonical_writer(tmp_path: Path) -> None:
    path = tmp_path / "subject21_1_modalityCT_lmannotation_3.csv"
    write_landmarks(path, [Landmark(321, (134.5, 423.5, 262.5), (2, 0.5, 0, 0.5, 3, 0, 0, 0, 1.25)), Landmark(7, (1, 2, 3))])
    assert path.read_text() == 'ID,x,y,z,uncertainty\n321,134.5,423.5,262.5,"[2,0.5,0,0.5,3,0,0,0,1.25]"\n7,1,2,3,\n'
    assert read_landmarks(path)[0].covariance_matrix.tolist() == [[2, 0.5, 0], [0.5, 3, 0], [0, 0, 1.25]]


@pytest.mark.parametrize(
    "text",
    [
        # The seed's Table 2 layout: blanks and decimal commas.
        "321 134,5 423,5 262,5 [1,0,0,0,1,0,0,0,1]",
        "ID of the landmark;x-coordinate;y-coordinate;z-coordinate;Uncertainty\n321;134,5;423,5;262,5;[1;0;0;0;1;0;0;0;1]",
        "321\t134,5\t423,5\t262,5\t[1 0 0 0 1 0 0 0 1]",
        "321;134,5;423,5;262,5;[1,0;0;0;0;1,0;0;0;0;1,0]",
        # Machine forms: comma separated, with or without header and quotes, extra columns ignored.
        "ID,x,y,z,uncertainty\n321,134.5,423.5,262.5,\"[1,0,0,0,1,0,0,0,1]\",extra,columns",
        "# a comment\n\n321, 134.5, 423.5, 262.5, [1, 0, 0, 0, 1, 0, 0, 0, 1]",
    ],
)
def test_tolerant_reader(text: str) -> None:
    (lm,) = parse_landmarks(text)
    assert lm.landmark_id == 321
    assert lm.position_mm == (134.5, 423.5, 262.5)
    assert lm.covariance == EYE


def test_uncertainty_is_optional() -> None:
    lms = parse_landmarks("ID,x,y,z\n1,0,0,0\n2,1.5,2.5,-3e1,\n")
    assert [lm.covariance for lm in lms] == [None, None]
    assert lms[1].position_mm == (1.5, 2.5, -30.0)


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("ID,x,y,z\n1,0,0\n", 2, "expected ID, x, y, z"),
        ("ID,x,y,z\none,0,0,0\n", 2, "is not an integer"),
        ("ID,x,y,z\n1,0,nan,0\n", 2, "not 3 finite numbers"),
        ("ID,x,y,z\n1,0,zero,0\n", 2, "not 3 finite numbers"),
        ("1,0,0,0,\"[1,0,0,0,1,0,0,0]\"\n", 1, "needs 9 coefficients"),
        ("1,0,0,0,\"[1,2,0,0,1,0,0,0,1]\"\n", 1, "not symmetric"),
        ("1,0,0,0,\"[1,0,0,0,-1,0,0,0,1]\"\n", 1, "not positive semi-definite"),
        ("1,0,0,0,\"[1,0,0,0,inf,0,0,0,1]\"\n", 1, "bad uncertainty"),
        ("1,0,0,0,1 0 0\n", 1, "must be written as [c11"),
        ("1,0,0,0\n2,0,0,0\n1,5,5,5\n", 3, "landmark ID 1 already given on line 1"),
        ("Name,x,y,z\n1,0,0,0\n", 1, "expected a header starting with 'ID'"),
    ],
)
def test_malformed_rows_name_the_line(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = tmp_path / "lm.csv"
    path.write_text(text)
    with pytest.raises(LandmarkFileError) as info:
        read_landmarks(path)
    assert info.value.line == line
    assert reason in info.value.reason
    assert f"{path}, line {line}" in str(info.value)


def test_writer_refuses_duplicate_ids(tmp_path: Path) -> None:
    with pytest.raises(LandmarkFileError, match="more than once: 4"):
        write_landmarks(tmp_path / "x.csv", [Landmark(4, (0, 0, 0)), Landmark(4, (1, 1, 1))])
    assert not list(tmp_path.iterdir())


def test_check_covariance_tolerance() -> None:
    assert check_covariance(EYE) is None
    assert check_covariance((1, 1e-9, 0, 0, 1, 0, 0, 0, 1)) is None  # within tolerance
    assert check_covariance((0,) * 9) is None  # a point without spread is PSD


def test_read_slicer_fcsv(tmp_path: Path) -> None:
    path = tmp_path / "10000100_1_CTce_ThAb_landmarks_1.fcsv"
    path.write_text(
        "# Markups fiducial file version = 4.6\n# CoordinateSystem = 0\n"
        "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n"
        "vtkMRMLMarkupsFiducialNode_0,-10.5,20.25,30,0,0,0,1,1,1,0,Aortic arch,top of arch,vtkMRMLScalarVolumeNode1\n"
    )
    frame, points = read_fcsv(path)
    assert frame == "RAS"
    assert points[0].label == "Aortic arch" and points[0].position == (-10.5, 20.25, 30.0)
    path.write_text(path.read_text().replace("CoordinateSystem = 0", "CoordinateSystem = LPS"))
    assert read_fcsv(path)[0] == "LPS"


def _psd_covariances():
    return st.lists(st.floats(-100, 100, allow_nan=False), min_size=9, max_size=9).map(
        lambda v: tuple((np.array(v).reshape(3, 3) @ np.array(v).reshape(3, 3).T).ravel())
    )


LANDMARKS = st.lists(
    st.builds(
        Landmark,
        st.integers(0, 10**6),
        st.tuples(*[st.floats(-1e6, 1e6, allow_nan=False)] * 3),
        st.none() | _psd_covariances(),
    ),
    max_size=6,
    unique_by=lambda lm: lm.landmark_id,
)


@given(LANDMARKS)
def test_round_trip_is_exact(landmarks) -> None:
    assert parse_landmarks(landmarks_to_csv(landmarks)) == landmarks
