"""The outputs of an evaluation: the long-format score table, the aggregates, JSON, and where they go.

- ``scores.csv``: one row per image, structure or landmark, and metric (:data:`SCORE_COLUMNS`);
- ``aggregates.csv``: per structure or landmark and metric: count, mean, median, std, min, max of the finite
  values, and how many were undefined (NaN) or infinite;
- ``evaluation.json``: settings, scores, aggregates and problems;
- ``report.html``: the summary with box plots (:mod:`visceral.report.evaluation`).

Every file is written atomically.  Numbers are written with the shortest text that reads back to the
same value; non-finite values as ``nan``, ``inf`` in CSV and as the strings ``"NaN"``, ``"Infinity"`` in
JSON (JSON has no such numbers).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from visceral.evaluate.metrics import HD_PERCENTILE
from visceral.evaluate.pipeline import PROBLEM_CODES, SCORE_COLUMNS, EvaluationReport
from visceral.fileio import atomic_write_text
from visceral.types import PathLike

__all__ = ["Aggregate", "AGGREGATE_COLUMNS", "aggregate", "scores_csv", "aggregates_csv", "report_json", "write_outputs", "OUTPUT_FILES",
           "SUMMARY_METRICS", "summary_table"]

#: Columns of the aggregate table.
AGGREGATE_COLUMNS = ("structure", "landmark", "metric", "count", "mean", "median", "std", "min", "max", "undefined", "infinite")
#: The metrics of the compact per-image table (the Slicer panel's), in its column order.
SUMMARY_METRICS = ("dice", "jaccard", "hausdorff95", "hausdorff", "assd", "fuzzy_dice", "landmark_error", "mahalanobis")
#: The files :func:`write_outputs` writes.
OUTPUT_FILES = ("scores.csv", "aggregates.csv", "evaluation.json", "report.html")


@dataclass(frozen=True)
class Aggregate:
    """Statistics of one metric of one structure (or landmark) over the images: ``count`` finite values
    (mean, median, population std, min, max of them; NaN without any), ``undefined`` NaN values, ``infinite`` ones."""

    structure: str
    landmark: str
    metric: str
    count: int
    mean: float
    median: float
    std: float
    min: float
    max: float
    undefined: int
    infinite: int

    def row(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, c) for c in AGGREGATE_COLUMNS)


def aggregate(report: EvaluationReport) -> List[Aggregate]:
    """Aggregates per structure or landmark and metric, in the order they first occur in the scores."""
    groups: "OrderedDict[Tuple[str, str, str], List[float]]" = OrderedDict()
    for score in report.scores:
        groups.setdefault((score.structure, score.landmark, score.metric), []).append(score.value)
    out = []
    for (structure, landmark, metric), values in groups.items():
        array = np.asarray(values, dtype=float)
        finite = array[np.isfinite(array)]
        stats = (float(finite.mean()), float(np.median(finite)), float(finite.std()), float(finite.min()), float(finite.max())) if finite.size else (math.nan,) * 5
        out.append(Aggregate(structure, landmark, metric, int(finite.size), *stats, int(np.isnan(array).sum()), int(np.isinf(array).sum())))
    return out


def _number(value: Any) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    return str(value)


def _csv(header: Tuple[str, ...], rows: List[Tuple[Any, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_number(v) for v in row])
    return buffer.getvalue()


def scores_csv(report: EvaluationReport) -> str:
    """The long-format score table."""
    return _csv(SCORE_COLUMNS, [(s.subject, s.acquisition, s.modality, s.structure, s.landmark, s.metric, s.value) for s in report.scores])


def aggregates_csv(aggregates: List[Aggregate]) -> str:
    """The aggregate table."""
    return _csv(AGGREGATE_COLUMNS, [a.row() for a in aggregates])


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def report_json(report: EvaluationReport, aggregates: Optional[List[Aggregate]] = None) -> str:
    """Settings, scores, aggregates and problems as JSON (see the module docstring for non-finite numbers)."""
    aggregates = aggregate(report) if aggregates is None else aggregates
    data: Dict[str, Any] = {
        "reference": str(report.reference),
        "results": str(report.results),
        "images": report.images,
        "seconds": round(report.seconds, 3),
        "settings": dict(report.settings, hausdorff_percentile=HD_PERCENTILE),
        "execution": report.execution,
        "scores": [{c: _json_value(getattr(s, c)) for c in SCORE_COLUMNS} for s in report.scores],
        "aggregates": [{c: _json_value(getattr(a, c)) for c in AGGREGATE_COLUMNS} for a in aggregates],
        "problems": [{"code": p.code, "refused": PROBLEM_CODES[p.code][0], "where": p.where, "message": p.message} for p in report.problems],
    }
    return json.dumps(data, indent=1, allow_nan=False) + "\n"


def write_outputs(report: EvaluationReport, out: PathLike) -> Dict[str, Path]:
    """Write the score table, the aggregates, the JSON and the HTML report into folder ``out`` (made when missing)."""
    from visceral.report.evaluation import evaluation_html

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    aggregates = aggregate(report)
    texts = {
        "scores.csv": scores_csv(report),
        "aggregates.csv": aggregates_csv(aggregates),
        "evaluation.json": report_json(report, aggregates),
        "report.html": evaluation_html(report, aggregates),
    }
    paths = {}
    for name in OUTPUT_FILES:
        paths[name] = out / name
        atomic_write_text(paths[name], texts[name])
    return paths


def summary_table(report: EvaluationReport) -> Tuple[List[str], List[List[str]]]:
    """A compact table of the scores: a row per image and structure or landmark, a column per metric of
    :data:`SUMMARY_METRICS` that occurs (4 significant digits; empty where not applicable).  The first column
    names the image only when there are several."""
    from visceral.conventions.names import VisceralName

    metrics = [m for m in SUMMARY_METRICS if any(s.metric == m for s in report.scores)]
    rows: "OrderedDict[Tuple[int, int, str, str, str], Dict[str, float]]" = OrderedDict()
    for s in report.scores:
        if s.metric in metrics:
            rows.setdefault((s.subject, s.acquisition, s.modality, s.structure, s.landmark), {})[s.metric] = s.value
    several = len({key[:3] for key in rows}) > 1
    header = (["image"] if several else []) + ["structure / landmark"] + metrics
    table = []
    for (subject, acquisition, modality, structure, landmark), values in rows.items():
        first = [VisceralName(subject, acquisition, modality or None).stem()] if several else []
        what = structure or f"landmark {landmark}"
        table.append(first + [what] + [_number(float(f"{values[m]:.4g}")) if m in values else "" for m in metrics])
    return header, table

