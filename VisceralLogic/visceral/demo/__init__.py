"""``visceral demo``: the whole product on built-in synthetic data, with a QA report.

1. write a small clinical study (:mod:`visceral.demo.study`) into a temporary folder;
2. de-identify it (QA gate on) into ``OUTPUT/dicom-release`` (key, linkage and audit in
   ``OUTPUT/dicom-release.private``, outside the release);
3. convert it to a data set in ``OUTPUT/dataset``;
4. annotate every image from the phantom: multi-label region annotation, per-structure
   uncertainty volumes, landmarks with covariance (annotator 1);
5. validate the data set and write ``OUTPUT/report.html`` (self-contained, with pictures).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from visceral.annotations import export_landmarks, export_region_annotation, export_uncertainty_volumes
from visceral.conventions.landmarks import write_landmarks
from visceral.conventions.metadata import read_metadata
from visceral.conventions.names import FileKind, parse_name
from visceral.convert import ConvertReport, convert
from visceral.dataset import write_dataset_readme
from visceral.deid import DeidReport, deidentify
from visceral.deid.qa import dciodvfy_path
from visceral.demo.phantom import sample
from visceral.demo.study import phantom_variant, write_study
from visceral.imageio import read_geometry, read_volume
from visceral.types import PathLike, Progress
from visceral.validate import ValidationReport, validate_dataset

__all__ = ["run_demo", "DemoResult"]

ANNOTATOR = 1
#: Landmarks of the demo: organ centres (IDs are demo IDs, not registered anatomical landmarks).
LANDMARK_ORGANS = ("liver", "spleen", "right kidney", "left kidney", "first lumbar vertebra")


@dataclass
class DemoResult:
    """Where everything went, and the reports of each step."""

    output: Path
    dataset: Path
    release: Path
    report_html: Path
    deid: DeidReport
    conversion: ConvertReport
    validation: ValidationReport
    seconds: Dict[str, float] = field(default_factory=dict)
    images: List[Dict[str, object]] = field(default_factory=list)


def _annotate(dataset: Path) -> List[Dict[str, object]]:
    """Region annotations, uncertainty volumes and landmarks for every image of the data set."""
    images = []
    for volume in sorted(dataset.glob("subject*_*.nii.gz")):
        name = parse_name(volume.name)
        if name.kind is not FileKind.IMAGE:
            continue
        geometry = read_geometry(volume)
        meta = read_metadata(volume.with_name(name.with_extension(".txt").format()))
        phantom = sample(geometry, phantom_variant(meta.fields.get("patient_sex", "F")), name.modality or "CT")
        region = name.annotation(FileKind.REGION, ANNOTATOR)
        table = export_region_annotation(phantom.labels, geometry, dataset / region.format())
        export_uncertainty_volumes(phantom.probabilities, geometry, region, dataset)
        organs = {o.name: o for o in phantom.organs}
        names = [n for n in LANDMARK_ORGANS if n in phantom.labels]
        points = np.array([organs[n].centre for n in names], dtype=float)
        rng = np.random.default_rng(name.subject * 10 + name.acquisition)
        covariances = []
        for _ in names:
            a = rng.normal(size=(3, 3))
            q, _r = np.linalg.qr(a)
            covariances.append(q @ np.diag(rng.uniform(1.0, 9.0, size=3)) @ q.T)  # 1-3 mm standard deviations
        ids = [n + 1 for n in range(len(names))]
        landmarks = export_landmarks(ids, points, "LPS", geometry, covariances)
        write_landmarks(dataset / name.annotation(FileKind.LANDMARKS, ANNOTATOR).format(), landmarks)
        images.append({"name": name, "geometry": geometry, "table": table, "landmarks": landmarks, "landmark_names": names, "metadata": meta})
    return images


def run_demo(output: PathLike = "visceral-demo", progress: Optional[Progress] = None, jobs: int = 1) -> DemoResult:
    """Run the demo into ``output`` (see the module docstring); returns what was made."""
    from visceral.report.html import write_report

    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    release, dataset = output / "dicom-release", output / "dataset"
    seconds: Dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="visceral-demo-clinical-") as tmp:
        start = time.perf_counter()
        clinical = Path(tmp) / "clinical"
        files = write_study(clinical)
        seconds["synthetic clinical study"] = time.perf_counter() - start
        if progress:
            progress(1, 5, f"clinical study: {len(files)} files")
        start = time.perf_counter()
        deid = deidentify(clinical, release, jobs=jobs, conformance="all" if dciodvfy_path() else "off")
        seconds["de-identification (QA gate)"] = time.perf_counter() - start
    if progress:
        progress(2, 5, "de-identified")
    start = time.perf_counter()
    conversion = convert(release, dataset, jobs=jobs, report_path=output / "dataset.convert.json")
    seconds["conversion"] = time.perf_counter() - start
    if progress:
        progress(3, 5, "converted")
    start = time.perf_counter()
    images = _annotate(dataset)
    write_dataset_readme(dataset, title="Visceral demo", notes=[
        "Synthetic data: an anatomical phantom, de-identified and converted by Visceral; annotations by annotator 1 "
        "from the phantom. Landmark IDs 1-5 are the centres of liver, spleen, right kidney, left kidney and first lumbar "
        "vertebra (demo IDs, not registered anatomical landmarks)."])
    seconds["annotations"] = time.perf_counter() - start
    if progress:
        progress(4, 5, "annotated")
    start = time.perf_counter()
    validation = validate_dataset(dataset, jobs=jobs)
    seconds["validation"] = time.perf_counter() - start
    for image in images:
        image["voxels"] = read_volume(dataset / image["name"].format())[0]
        labels, _ = read_volume(dataset / image["name"].annotation(FileKind.REGION, ANNOTATOR).format())
        image["labels"] = labels
    result = DemoResult(output, dataset, release, output / "report.html", deid, conversion, validation, seconds, images)
    write_report(result)
    if progress:
        progress(5, 5, "report written")
    return result
