"""``visceral evaluate`` on generated data sets: pairing by identity tokens, world-frame landmark errors on each
image's own grid, refusals that name the pair, the tables, the JSON and the report, the command line.

Reference and result data sets are written with the package's own writers from the demo's anatomical
phantom, on oblique anisotropic grids.  Runs on every stack (numpy and SimpleITK only).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import pytest
import SimpleITK as sitk

from visceral.annotations import export_landmarks, export_region_annotation, export_uncertainty_volumes
from visceral.cli import main
from visceral.conventions.frames import ImageGeometry, rotation_xyz
from visceral.conventions.landmarks import Landmark, write_landmarks
from visceral.conventions.names import FileKind, VisceralName
from visceral.dataset import write_image
from visceral.demo.phantom import sample
from visceral.evaluate import aggregate, evaluate, write_outputs
from visceral.evaluate.metrics import FUZZY_METRICS, REGION_METRICS, fuzzy_metrics, region_metrics
from visceral.evaluate.tables import AGGREGATE_COLUMNS, OUTPUT_FILES
from visceral.imageio import read_volume, write_volume

#: An oblique, anisotropic grid through the phantom's trunk (LPS mm).
GRID = ImageGeometry((36, 30, 14), (10.0, 9.0, 16.0), (-170.0, -120.0, -140.0), tuple(map(tuple, rotation_xyz(0.0, 0.0, 0.08))))
#: The same anatomy on another grid (another origin, voxel size and orientation).
OTHER_GRID = ImageGeometry((40, 34, 12), (9.0, 8.0, 19.0), (-172.0, -128.0, -138.0), tuple(map(tuple, rotation_xyz(0.05, 0.0, -0.1))))
LANDMARKS_LPS = {1: (-60.0, -8.0, -30.0), 2: (80.0, 38.0, -20.0), 3: (0.0, 70.0, -100.0)}


def write_annotated(root: Path, subject: int, annotator: int, geometry: ImageGeometry = GRID, shift_voxels: int = 0, compact: bool = False,
                    uncertainty: bool = True, landmark_offset_lps=(0.0, 0.0, 0.0), landmark_ids=(1, 2, 3), covariance: Optional[np.ndarray] = None,
                    image: bool = True, drop: tuple = ()) -> Dict[str, np.ndarray]:
    """An image of the phantom with its annotations by ``annotator``: the label volume (structures shifted by
    ``shift_voxels`` along i), per-structure probabilities, landmarks (moved by ``landmark_offset_lps``)."""
    root.mkdir(parents=True, exist_ok=True)
    phantom = sample(geometry, subject, "CT")
    name = VisceralName(subject, 1, "CT")
    if image:
        write_image(root, name, phantom.image, geometry, OrderedDict(modality="CT"))
    masks = {n: np.roll(m, shift_voxels, axis=2) for n, m in phantom.labels.items() if n not in drop}
    export_region_annotation(masks, geometry, root / name.annotation(FileKind.REGION, annotator).format(), compact=compact)
    if uncertainty:
        probabilities = {n: np.roll(p, shift_voxels, axis=2) for n, p in phantom.probabilities.items() if n in ("liver", "spleen") and n not in drop}
        export_uncertainty_volumes(probabilities, geometry, name.annotation(FileKind.REGION, annotator), root)
    points = np.array([np.add(LANDMARKS_LPS[i], landmark_offset_lps) for i in landmark_ids])
    covariances = None if covariance is None else [covariance] * len(landmark_ids)
    write_landmarks(root / name.annotation(FileKind.LANDMARKS, annotator).format(), export_landmarks(landmark_ids, points, "LPS", geometry, covariances))
    return masks


def by_key(report):
    return {(s.subject, s.structure, s.landmark, s.metric): s.value for s in report.scores}


def test_identical_annotations_score_perfectly(tmp_path: Path) -> None:
    write_annotated(tmp_path / "ref", 1, annotator=1)
    write_annotated(tmp_path / "res", 1, annotator=7)
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    assert report.ok and report.images == 1
    assert not report.problems
    scores = by_key(report)
    structures = report.structures()
    assert {"liver", "spleen", "right kidney", "left kidney", "aorta"} <= set(structures)
    for structure in structures:
        assert scores[(1, structure, "", "dice")] == 1.0
        assert scores[(1, structure, "", "hausdorff")] == 0.0
        assert scores[(1, structure, "", "hausdorff95")] == 0.0
    assert scores[(1, "liver", "", "fuzzy_dice")] == 1.0 and scores[(1, "liver", "", "probabilistic_distance")] == 0.0
    assert (1, "aorta", "", "fuzzy_dice") not in scores  # no uncertainty volume on either side
    for landmark in ("1", "2", "3"):
        assert scores[(1, "", landmark, "landmark_error")] == pytest.approx(0.0, abs=1e-9)
        assert (1, "", landmark, "mahalanobis") not in scores  # no covariance anywhere
    assert scores[(1, "", "", "landmarks_missing")] == 0 and scores[(1, "", "", "landmarks_extra")] == 0


def test_scores_equal_the_metrics_of_the_arrays_whatever_the_label_values_and_spellings(tmp_path: Path) -> None:
    reference = write_annotated(tmp_path / "ref", 2, annotator=1, uncertainty=False)
    result = write_annotated(tmp_path / "res", 2, annotator=4, shift_voxels=1, compact=True, uncertainty=False)  # labels 1..N, not RadLex IDs
    table = tmp_path / "res" / "subject02_1_modalityCT_regionannotation_4.csv"
    table.write_text(table.read_text().replace("liver", "Liver").replace("right kidney", "Kidney_R"))  # other spellings, same structures
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    assert report.ok, [p.to_text() for p in report.problems]
    scores = by_key(report)
    assert set(report.structures()) == set(reference)
    for structure in reference:
        expected = region_metrics(reference[structure], result[structure], GRID.spacing_mm)
        for metric in REGION_METRICS:
            assert scores[(2, structure, "", metric)] == pytest.approx(expected[metric], rel=1e-9), (structure, metric)
    assert 0.5 < scores[(2, "liver", "", "dice")] < 1.0
    assert scores[(2, "liver", "", "hausdorff")] == pytest.approx(10.0, rel=1e-6)  # one voxel of 10 mm along i


def test_masks_from_the_label_volume_fuzzy_metrics_from_the_per_structure_volumes(tmp_path: Path) -> None:
    reference = write_annotated(tmp_path / "ref", 20, annotator=1)
    result = write_annotated(tmp_path / "res", 20, annotator=4, shift_voxels=2)
    (tmp_path / "res" / "subject20_1_modalityCT_regionannotation_4.nii.gz").unlink()  # the result: per-structure volumes only
    (tmp_path / "res" / "subject20_1_modalityCT_regionannotation_4.csv").unlink()
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    scores = by_key(report)
    probabilities = {side: read_volume(tmp_path / side / f"subject20_1_modalityCT_regionannotation_label58_{a}.nii.gz")[0] for side, a in (("ref", 1), ("res", 4))}
    fuzzy = fuzzy_metrics(probabilities["ref"], probabilities["res"])
    for metric in FUZZY_METRICS:
        assert scores[(20, "liver", "", metric)] == pytest.approx(fuzzy[metric], rel=1e-9)
    # the reference's mask is its label volume, the result's its probabilities at 0.5
    expected = region_metrics(reference["liver"], probabilities["res"] >= 0.5, GRID.spacing_mm)
    assert scores[(20, "liver", "", "dice")] == pytest.approx(expected["dice"], rel=1e-12)
    assert np.array_equal(probabilities["res"] >= 0.5, result["liver"])  # the phantom's probability is 0.5 on its surface
    # structures only in the reference's label volume are absent from this result
    assert scores[(20, "aorta", "", "dice")] == 0.0
    assert {p.code for p in report.problems} == {"MISSING_STRUCTURE"}


def test_landmark_errors_are_in_the_world_frame_of_each_images_own_grid(tmp_path: Path) -> None:
    # the result's image lies on another (oblique, anisotropic) grid: its landmark CSV is in that grid's landmark frame
    offset = np.array([3.0, -4.0, 12.0])
    covariance = np.diag([4.0, 9.0, 16.0])
    write_annotated(tmp_path / "ref", 3, annotator=1, uncertainty=False)
    write_annotated(tmp_path / "res", 3, annotator=2, geometry=OTHER_GRID, landmark_offset_lps=offset, covariance=covariance, uncertainty=False)
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    scores = by_key(report)
    # independent oracle: SimpleITK places each landmark-frame position (mm along the voxel axes) in LPS
    def world(path: Path, image: Path):
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(image))
        reader.ReadImageInformation()
        img = sitk.Image(reader.GetSize(), sitk.sitkUInt8)
        img.SetSpacing(reader.GetSpacing())
        img.SetOrigin(reader.GetOrigin())
        img.SetDirection(reader.GetDirection())
        rows = list(csv.reader(path.open()))[1:]
        return {r[0]: np.array(img.TransformContinuousIndexToPhysicalPoint([float(v) / s for v, s in zip(r[1:4], reader.GetSpacing())])) for r in rows}

    ref_world = world(tmp_path / "ref" / "subject03_1_modalityCT_lmannotation_1.csv", tmp_path / "ref" / "subject03_1_modalityCT.nii.gz")
    res_world = world(tmp_path / "res" / "subject03_1_modalityCT_lmannotation_2.csv", tmp_path / "res" / "subject03_1_modalityCT.nii.gz")
    for landmark in ("1", "2", "3"):
        error = res_world[landmark] - ref_world[landmark]
        assert np.allclose(error, offset, atol=1e-6)
        assert scores[(3, "", landmark, "landmark_error")] == pytest.approx(np.linalg.norm(error), rel=1e-9)
        assert [scores[(3, "", landmark, f"landmark_error_{a}")] for a in "xyz"] == pytest.approx(list(error), abs=1e-9)
        # the covariance was given in LPS on the result's grid and travels through its landmark frame
        assert scores[(3, "", landmark, "mahalanobis")] == pytest.approx(math.sqrt(9 / 4 + 16 / 9 + 144 / 16), rel=1e-6)
    # the regions are on different grids: refused for this pair, named, while the landmarks are scored
    refused = [p for p in report.problems if p.refused]
    assert [p.code for p in refused] == ["GRID_MISMATCH"]
    assert "subject03_1_modalityCT_regionannotation_2.nii.gz" in refused[0].where
    assert not any(s.structure for s in report.scores)


def test_a_result_on_another_grid_is_refused_unless_resampled_and_then_said(tmp_path: Path) -> None:
    write_annotated(tmp_path / "ref", 4, annotator=1, uncertainty=False)
    write_annotated(tmp_path / "ref", 5, annotator=1, uncertainty=False)
    write_annotated(tmp_path / "res", 4, annotator=2, geometry=OTHER_GRID, uncertainty=False)
    write_annotated(tmp_path / "res", 5, annotator=2, uncertainty=False)
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    assert not report.ok
    assert [(p.code, p.where.rsplit("/", 1)[-1]) for p in report.problems] == [("GRID_MISMATCH", "subject04_1_modalityCT_regionannotation_2.nii.gz")]
    assert {s.subject for s in report.scores if s.structure} == {5}  # the run went on
    resampled = evaluate(tmp_path / "ref", tmp_path / "res", resample=True)
    assert resampled.ok
    assert [p.code for p in resampled.problems] == ["RESAMPLED"]
    assert "nearest neighbour" in resampled.problems[0].message
    scores = by_key(resampled)
    assert scores[(4, "liver", "", "dice")] > 0.85  # the same anatomy, sampled on another grid
    assert scores[(5, "liver", "", "dice")] == 1.0


def test_missing_and_extra_structures_and_landmarks(tmp_path: Path) -> None:
    write_annotated(tmp_path / "ref", 6, annotator=1, uncertainty=False, drop=("aorta",), landmark_ids=(1, 2))
    write_annotated(tmp_path / "res", 6, annotator=2, uncertainty=False, drop=("spleen",), landmark_ids=(2, 3))
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    assert report.ok
    codes = {p.code: p.message for p in report.problems}
    assert "'spleen' is not in the result annotation" in codes["MISSING_STRUCTURE"]
    assert "'aorta' is not in the reference annotation" in codes["EXTRA_STRUCTURE"]
    assert codes["LANDMARKS_MISSING"] == "reference landmark ID(s) 1 not in the result"
    assert codes["LANDMARKS_EXTRA"] == "result landmark ID(s) 3 not in the reference"
    scores = by_key(report)
    assert scores[(6, "spleen", "", "dice")] == 0.0 and scores[(6, "spleen", "", "hausdorff")] == math.inf
    assert (6, "aorta", "", "dice") not in scores
    assert scores[(6, "", "", "landmarks_missing")] == 1 and scores[(6, "", "", "landmarks_extra")] == 1
    assert (6, "", "2", "landmark_error") in scores and (6, "", "1", "landmark_error") not in scores
    spleen = [a for a in aggregate(report) if a.structure == "spleen" and a.metric == "hausdorff"][0]
    assert (spleen.count, spleen.infinite, math.isnan(spleen.mean)) == (0, 1, True)


def test_an_unreadable_result_is_one_refusal_and_the_run_goes_on(tmp_path: Path) -> None:
    for subject in (7, 8):
        write_annotated(tmp_path / "ref", subject, annotator=1, uncertainty=False)
        write_annotated(tmp_path / "res", subject, annotator=2, uncertainty=False)
    broken = tmp_path / "res" / "subject07_1_modalityCT_regionannotation_2.nii.gz"
    broken.write_bytes(gzip.compress(b"not a NIfTI file")[:20])
    report = evaluate(tmp_path / "ref", tmp_path / "res", jobs=2)
    refused = [p for p in report.problems if p.refused]
    assert len(refused) == 1 and refused[0].code == "UNREADABLE" and refused[0].where == "subject07_1_modalityCT"
    assert "\n" not in refused[0].to_text() and "Traceback" not in refused[0].to_text()
    assert {s.subject for s in report.scores if s.structure} == {8}
    assert {s.subject for s in report.scores if s.landmark} == {7, 8}  # its landmarks are still scored


def test_images_without_result_or_reference_and_several_annotators(tmp_path: Path) -> None:
    write_annotated(tmp_path / "ref", 9, annotator=1, uncertainty=False)
    write_annotated(tmp_path / "ref", 9, annotator=3, uncertainty=False, shift_voxels=1)
    write_annotated(tmp_path / "ref", 10, annotator=1, uncertainty=False)
    write_annotated(tmp_path / "res", 9, annotator=2, uncertainty=False)
    write_annotated(tmp_path / "res", 11, annotator=2, uncertainty=False)
    report = evaluate(tmp_path / "ref", tmp_path / "res", missing_as_empty=False)
    codes = sorted((p.code, p.where) for p in report.problems)
    assert codes == [("ANNOTATOR_AMBIGUOUS", "subject09_1_modalityCT"), ("ANNOTATOR_AMBIGUOUS", "subject09_1_modalityCT"),
                     ("NO_REFERENCE", "subject11_1_modalityCT"), ("NO_RESULT", "subject10_1_modalityCT")]
    assert not report.scores
    # By default a missing answer scores as a wrong one: subject 10 against an empty result.
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    assert sorted((p.code, p.where) for p in report.problems if p.code == "NO_RESULT") == [("NO_RESULT", "subject10_1_modalityCT")] * 2
    scores = by_key(report)
    assert scores[(10, "liver", "", "dice")] == 0.0 and scores[(10, "liver", "", "hausdorff")] == math.inf
    assert scores[(10, "", "", "landmarks_missing")] == 3.0 and not any(k[0] == 10 and k[3] == "landmark_error" for k in scores)
    chosen = evaluate(tmp_path / "ref", tmp_path / "res", reference_annotator=3)
    assert by_key(chosen)[(9, "liver", "", "hausdorff")] == pytest.approx(10.0, rel=1e-6)  # annotator 3's shifted organs


def test_results_without_images_use_the_reference_grid_for_landmarks(tmp_path: Path) -> None:
    write_annotated(tmp_path / "ref", 12, annotator=1, uncertainty=False)
    write_annotated(tmp_path / "res", 12, annotator=2, uncertainty=False, image=False, landmark_offset_lps=(0.0, 0.0, 5.0))
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    assert report.ok
    assert by_key(report)[(12, "", "1", "landmark_error")] == pytest.approx(5.0, rel=1e-9)


def test_outputs_long_csv_aggregates_strict_json_and_html(tmp_path: Path) -> None:
    write_annotated(tmp_path / "ref", 13, annotator=1)
    write_annotated(tmp_path / "ref", 14, annotator=1)
    write_annotated(tmp_path / "res", 13, annotator=2, shift_voxels=1)
    write_annotated(tmp_path / "res", 14, annotator=2, drop=("spleen",))
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    paths = write_outputs(report, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(OUTPUT_FILES)
    rows = list(csv.reader(paths["scores.csv"].open()))
    assert rows[0] == ["subject", "acquisition", "modality", "structure", "landmark", "metric", "value"]
    assert len(rows) == len(report.scores) + 1
    assert ["14", "1", "CT", "spleen", "", "hausdorff", "inf"] in rows
    assert ["13", "1", "CT", "", "2", "landmark_error", "0.0"] in rows
    aggregates = list(csv.DictReader(paths["aggregates.csv"].open()))
    assert tuple(aggregates[0]) == AGGREGATE_COLUMNS
    liver_dice = [a for a in aggregates if a["structure"] == "liver" and a["metric"] == "dice"][0]
    values = [s.value for s in report.scores if s.structure == "liver" and s.metric == "dice"]
    assert float(liver_dice["mean"]) == pytest.approx(np.mean(values)) and float(liver_dice["median"]) == pytest.approx(np.median(values))
    assert float(liver_dice["std"]) == pytest.approx(np.std(values)) and liver_dice["count"] == "2"
    data = json.loads(paths["evaluation.json"].read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert {"scores", "aggregates", "problems", "settings"} <= set(data)
    assert {"code": "MISSING_STRUCTURE", "refused": False, "where": "subject14_1_modalityCT",
            "message": "'spleen' is not in the result annotation: scored as empty"} in data["problems"]
    assert {"subject": 14, "acquisition": 1, "modality": "CT", "structure": "spleen", "landmark": "", "metric": "hausdorff", "value": "Infinity"} in data["scores"]
    html = paths["report.html"].read_text()
    for section in ("summary", "plots", "aggregates", "problems"):
        assert f'id="{section}"' in html
    for metric in ("dice", "hausdorff95", "assd", "fuzzy_dice", "landmark_error"):
        assert f'<figure id="plot-{metric}"><svg' in html


def test_jobs_give_the_same_scores(tmp_path: Path) -> None:
    for subject in (15, 16, 17):
        write_annotated(tmp_path / "ref", subject, annotator=1, uncertainty=False)
        write_annotated(tmp_path / "res", subject, annotator=2, uncertainty=False, shift_voxels=subject % 2)
    one = evaluate(tmp_path / "ref", tmp_path / "res", jobs=1)
    two = evaluate(tmp_path / "ref", tmp_path / "res", jobs=2)
    assert one.scores == two.scores


def test_command_line(tmp_path: Path, capsys) -> None:
    write_annotated(tmp_path / "ref", 18, annotator=1, uncertainty=False)
    write_annotated(tmp_path / "res", 18, annotator=2, uncertainty=False)
    assert main(["evaluate", str(tmp_path / "ref"), str(tmp_path / "res"), "-q", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 image(s) paired" in out and "0 refused" in out
    assert (tmp_path / "res.evaluation" / "scores.csv").is_file()
    write_annotated(tmp_path / "res", 18, annotator=2, uncertainty=False, geometry=OTHER_GRID)
    assert main(["evaluate", str(tmp_path / "ref"), str(tmp_path / "res"), "--out", str(tmp_path / "o"), "-q"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("refused GRID_MISMATCH: ") and "subject18_1_modalityCT_regionannotation_2.nii.gz" in line for line in lines)
    assert main(["evaluate", str(tmp_path / "ref"), str(tmp_path / "res"), "--out", str(tmp_path / "o"), "-q", "--resample"]) == 0
    assert main(["evaluate", str(tmp_path / "nowhere"), str(tmp_path / "res"), "-q"]) == 1
    assert "not a folder" in capsys.readouterr().err


def test_a_landmark_file_in_the_seeds_frame_without_any_image_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ref").mkdir()
    (tmp_path / "res").mkdir()
    write_landmarks(tmp_path / "ref" / "subject19_1_modalityCT_lmannotation_1.csv", [Landmark(1, (1.0, 2.0, 3.0))])
    write_landmarks(tmp_path / "res" / "subject19_1_modalityCT_lmannotation_2.csv", [Landmark(1, (1.0, 2.0, 4.0))])
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    assert [p.code for p in report.problems] == ["NO_GEOMETRY"]


def test_two_annotators_of_one_data_set_score_each_other(tmp_path: Path) -> None:
    # inter-rater agreement: the same folder as reference and results, the annotators chosen
    write_annotated(tmp_path / "ds", 21, annotator=1, uncertainty=False)
    write_annotated(tmp_path / "ds", 21, annotator=2, uncertainty=False, shift_voxels=1, image=False)
    report = evaluate(tmp_path / "ds", tmp_path / "ds", reference_annotator=1, result_annotator=2)
    assert report.ok and report.images == 1
    assert by_key(report)[(21, "liver", "", "hausdorff")] == pytest.approx(10.0, rel=1e-6)
    assert [p.code for p in evaluate(tmp_path / "ds", tmp_path / "ds").problems] == ["ANNOTATOR_AMBIGUOUS"] * 4


def test_label_values_outside_the_table_are_said_and_fractional_labels_refused(tmp_path: Path) -> None:
    for subject in (22, 23):
        write_annotated(tmp_path / "ref", subject, annotator=1, uncertainty=False)
        write_annotated(tmp_path / "res", subject, annotator=2, uncertainty=False)
    unlisted = tmp_path / "res" / "subject22_1_modalityCT_regionannotation_2.nii.gz"
    labels, geometry = read_volume(unlisted)
    labels[0, 0, :3] = 250  # a label value the table does not list
    write_volume(unlisted, labels, geometry)
    fractional = tmp_path / "res" / "subject23_1_modalityCT_regionannotation_2.nii.gz"
    labels, geometry = read_volume(fractional)
    write_volume(fractional, labels.astype(np.float32) + 0.25, geometry)
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    problems = {p.code: p for p in report.problems}
    assert set(problems) == {"UNLISTED_LABELS", "UNREADABLE"}
    assert "label value(s) 250 are not in the label table" in problems["UNLISTED_LABELS"].message and not problems["UNLISTED_LABELS"].refused
    assert problems["UNREADABLE"].where == "subject23_1_modalityCT" and "integer" in problems["UNREADABLE"].message
    assert by_key(report)[(22, "liver", "", "dice")] == 1.0


def test_slicer_fiducial_results_pair_by_the_number_in_their_labels(tmp_path: Path) -> None:
    # a result as a 3D Slicer fiducial list (.fcsv, RAS world) against the reference CSV of the seed's landmark frame
    write_annotated(tmp_path / "ref", 24, annotator=1, uncertainty=False)
    (tmp_path / "res").mkdir()
    rows = []
    for landmark_id, lps in LANDMARKS_LPS.items():
        x, y, z = -lps[0], -lps[1] + 2.0, lps[2]  # RAS; 2 mm to the anterior, i.e. -2 mm along P
        rows.append(f"vtkMRMLMarkupsFiducialNode_{landmark_id},{x},{y},{z},0,0,0,1,1,1,0,L{landmark_id},,vtkMRMLScalarVolumeNode1")
    (tmp_path / "res" / "subject24_1_modalityCT_lmannotation_2.fcsv").write_text(
        "# Markups fiducial file version = 4.11\n# CoordinateSystem = RAS\n"
        "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n" + "\n".join(rows) + "\n")
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    assert report.ok and [p.code for p in report.problems] == ["NO_RESULT"]  # landmarks only: no region result
    scores = by_key(report)
    for landmark in ("1", "2", "3"):
        assert scores[(24, "", landmark, "landmark_error")] == pytest.approx(2.0, rel=1e-6)
        assert scores[(24, "", landmark, "landmark_error_y")] == pytest.approx(-2.0, rel=1e-6)


def test_bad_landmark_files_and_covariances_refuse_what_they_must_and_no_more(tmp_path: Path) -> None:
    """A covariance that is not one (4 coefficients, not symmetric, not positive semi-definite) is said and its
    Mahalanobis distance left out; a landmark ID twice refuses that image's landmarks only."""
    write_annotated(tmp_path / "ref", 21, annotator=1, uncertainty=False, covariance=np.eye(3))
    write_annotated(tmp_path / "res", 21, annotator=2, uncertainty=False, covariance=np.eye(3))
    result_csv = next((tmp_path / "res").glob("*_lmannotation_2.csv"))
    rows = result_csv.read_text().splitlines()
    result_csv.write_text("\n".join(rows[:1] + [rows[1].rsplit(",", 9)[0] + ',"[1,0,0,1]"'] + rows[2:]) + "\n")
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    assert by_key(report)[(21, "liver", "", "dice")] == 1.0, "the regions stay scored"
    assert [p.message.split(":")[:2] for p in report.problems] == [["result landmark 1", " covariance needs 9 coefficients c11..c33, got 4"]]
    assert (21, "", "1", "landmark_error") in by_key(report)  # its Mahalanobis distance from the reference covariance alone

    reference_csv = next((tmp_path / "ref").glob("*_lmannotation_1.csv"))
    lines = reference_csv.read_text().splitlines()
    values = lines[1].split(",")
    lines[1] = ",".join(values[:4]) + ',"[-0.5,0,0,0,1,0,0,0,1]"'   # not positive semi-definite
    lines[2] = ",".join(lines[2].split(",")[:4]) + ',"[1,5,0,0,1,0,0,0,1]"'  # not symmetric
    reference_csv.write_text("\n".join(lines) + "\n")
    write_landmarks(result_csv, [Landmark(i, (1.0, 2.0, 3.0), tuple(np.eye(3).ravel())) for i in (1, 2, 3)])
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    said = sorted(p.message.split(":")[0] for p in report.problems if p.code == "COVARIANCE_INVALID")
    assert said == ["reference landmark 1", "reference landmark 2"]
    mahalanobis = {k[2] for k in by_key(report) if k[3] == "mahalanobis"}
    assert "3" in mahalanobis  # the one valid pair of covariances still gives its distance

    reference_csv.write_text(reference_csv.read_text() + lines[1].split(",")[0] + ",0,0,0\n")  # landmark 1 twice
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    assert any(p.code == "UNREADABLE" and "twice" in p.message for p in report.problems)
    assert by_key(report)[(21, "liver", "", "dice")] == 1.0


def test_a_bad_probability_volume_or_label_table_is_said_and_costs_no_other_structure(tmp_path: Path) -> None:
    write_annotated(tmp_path / "ref", 22, annotator=1)
    write_annotated(tmp_path / "res", 22, annotator=2)
    liver = next((tmp_path / "res").glob("*_label58_2.nii.gz"))
    values, grid = read_volume(liver)
    write_volume(liver, values.astype(np.float32) * 1.08 + 0.01, grid)  # above 1
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    scores = by_key(report)
    assert scores[(22, "liver", "", "dice")] == 1.0  # the mask from the label volume
    assert scores[(22, "spleen", "", "fuzzy_dice")] == pytest.approx(1.0)
    assert any(p.code == "UNREADABLE" and p.where == str(liver) and "fuzzy metrics not scored" in p.message for p in report.problems)

    table = next((tmp_path / "res").glob("*_regionannotation_2.csv"))
    table.write_text(table.read_text() + "Liver,99\n")
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    assert any(p.code == "UNREADABLE" and "names 'liver' twice" in p.message for p in report.problems), report.problems
    table.write_text(table.read_text().replace("Liver,99\n", "").replace("liver,58", "liver,0"))
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    assert any(p.code == "UNREADABLE" and "label 0" in p.message for p in report.problems), report.problems


def test_pairing_ignores_the_case_of_the_modality_and_says_duplicates_and_grids_in_full(tmp_path: Path, capsys) -> None:
    write_annotated(tmp_path / "ref", 23, annotator=1, uncertainty=False)
    write_annotated(tmp_path / "res", 23, annotator=2, uncertainty=False)
    for path in (tmp_path / "res").iterdir():
        path.rename(path.with_name(path.name.replace("modalityCT", "modalityct")))
    report = evaluate(tmp_path / "ref", tmp_path / "res")
    assert report.images == 1 and by_key(report)[(23, "liver", "", "dice")] == 1.0
    region = next((tmp_path / "res").glob("*_regionannotation_2.nii.gz"))
    labels, grid = read_volume(region)
    write_volume(region.with_name(region.name[:-3]), labels, grid)  # the same annotation as .nii too
    assert any(p.code == "DUPLICATE_FILE" for p in evaluate(tmp_path / "ref", tmp_path / "res").problems)
    region.with_name(region.name[:-3]).unlink()
    flipped = ImageGeometry(grid.shape, grid.spacing_mm, grid.origin_lps, tuple(map(tuple, -np.asarray(grid.direction_lps))))
    write_volume(region, labels, flipped)
    mismatch = [p for p in evaluate(tmp_path / "ref", tmp_path / "res").problems if p.code == "GRID_MISMATCH"]
    assert mismatch and "axes" in mismatch[0].message and "-0x" not in mismatch[0].message
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(tmp_path / "ref"), str(empty), "--out", str(tmp_path / "o2"), "-q", "--jobs", "1"]) == 0  # scored as empty
    assert "NO_RESULT" in capsys.readouterr().out
    assert main(["evaluate", str(empty), str(tmp_path / "res"), "--out", str(tmp_path / "o3"), "-q", "--jobs", "1"]) == 1
    assert "nothing scored" in capsys.readouterr().out
