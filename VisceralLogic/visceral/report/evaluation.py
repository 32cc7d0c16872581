"""The evaluation's HTML summary: one self-contained file, box plots drawn as inline SVG.

Sections (each an ``<h2 id=...>``): summary, box plots (one per metric, a box per structure or
landmark), aggregates, problems.  Boxes span the quartiles (linear interpolation, for display only),
the line is the median, whiskers reach the smallest and largest finite values, and every value is
drawn as a dot; infinite and undefined values are counted under the box.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Sequence

import numpy as np

from visceral.evaluate.metrics import FUZZY_METRICS, LANDMARK_METRICS, REGION_METRICS
from visceral.report.html import _STYLE, _e, _status, _table

__all__ = ["evaluation_html", "box_plot_svg", "SECTIONS", "UNITS"]

#: Section ids of the report, in order.
SECTIONS = ("summary", "plots", "aggregates", "problems")

#: Unit of each metric (empty: a ratio).
UNITS: Dict[str, str] = {"assd": "mm", "hausdorff": "mm", "hausdorff95": "mm", "landmark_error": "mm", "landmark_error_x": "mm",
                         "landmark_error_y": "mm", "landmark_error_z": "mm"}

_METRIC_ORDER = REGION_METRICS + FUZZY_METRICS + LANDMARK_METRICS


def _fmt(value: float) -> str:
    return f"{value:.4g}" if np.isfinite(value) else ("NaN" if np.isnan(value) else "inf")


def box_plot_svg(groups: "OrderedDict[str, List[float]]", title: str, unit: str = "", width: int = 760, height: int = 260) -> str:
    """A box plot as an SVG element: one box per group (its finite values), non-finite values counted below."""
    left, right, top, bottom = 60, 40, 24, 70
    finite = {k: np.asarray([v for v in vals if np.isfinite(v)], dtype=float) for k, vals in groups.items()}
    everything = np.concatenate([v for v in finite.values() if v.size] or [np.zeros(1)])
    lo, hi = float(everything.min()), float(everything.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    lo, hi = lo - 0.05 * span, hi + 0.05 * span

    def y(value: float) -> float:
        return top + (hi - value) / (hi - lo) * (height - top - bottom)

    n = max(1, len(groups))
    step = (width - left - right) / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
             f'<text x="{left}" y="15" font-size="13" font-weight="bold">{_e(title)}{" (" + _e(unit) + ")" if unit else ""}</text>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#444"/>']
    for tick in np.linspace(lo, hi, 5):
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end">{_fmt(float(tick))}</text>'
                     f'<line x1="{left}" y1="{y(tick):.1f}" x2="{width - right}" y2="{y(tick):.1f}" stroke="#eee"/>')
    for index, (name, values) in enumerate(groups.items()):
        centre = left + step * (index + 0.5)
        half = min(18.0, step * 0.3)
        data = finite[name]
        if data.size:
            q1, median, q3 = (float(v) for v in np.percentile(data, [25, 50, 75]))
            parts.append(f'<line x1="{centre:.1f}" y1="{y(float(data.min())):.1f}" x2="{centre:.1f}" y2="{y(float(data.max())):.1f}" stroke="#555"/>')
            parts.append(f'<rect x="{centre - half:.1f}" y="{y(q3):.1f}" width="{2 * half:.1f}" height="{max(0.5, y(q1) - y(q3)):.1f}" '
                         f'fill="#cfe0f3" stroke="#345"/>')
            parts.append(f'<line x1="{centre - half:.1f}" y1="{y(median):.1f}" x2="{centre + half:.1f}" y2="{y(median):.1f}" stroke="#a11" stroke-width="2"/>')
            for n_dot, value in enumerate(data):
                offset = ((n_dot % 7) - 3) * half / 4
                parts.append(f'<circle cx="{centre + offset:.1f}" cy="{y(float(value)):.1f}" r="2" fill="#234" fill-opacity="0.6"/>')
        other = len(values) - data.size
        label = name if len(name) <= 18 else name[:17] + "…"
        parts.append(f'<text x="{centre:.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="middle">{_e(label)}</text>')
        parts.append(f'<text x="{centre:.1f}" y="{height - bottom + 27}" font-size="9" text-anchor="middle" fill="#555">n={data.size}'
                     f'{f", {other} non-finite" if other else ""}</text>')
    parts.append("</svg>")
    return "".join(parts)


def evaluation_html(report, aggregates: Sequence) -> str:
    """The HTML summary of an :class:`~visceral.evaluate.pipeline.EvaluationReport` and its aggregates."""
    refused = [p for p in report.problems if p.refused]
    parts: List[str] = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Visceral evaluation</title><style>{_STYLE}</style></head><body>',
                        "<h1>Visceral evaluation</h1>",
                        '<h2 id="summary">Summary</h2>',
                        f"<p>Reference: <code>{_e(report.reference)}</code><br>Results: <code>{_e(report.results)}</code></p>",
                        _table(["images paired", "structures", "landmarks", "scores", "refused", "warnings", "seconds"],
                               [[report.images, len(report.structures()), len(report.landmarks()), len(report.scores),
                                 _status(not refused, "0", str(len(refused))), len(report.problems) - len(refused), f"{report.seconds:.2f}"]]),
                        "<p>Definitions of the metrics: docs/METRICS.md. Distances are in mm on each image's own voxel grid; "
                        "hausdorff95 is the larger of the two directed nearest-rank 95th percentiles.</p>",
                        '<h2 id="plots">Box plots per structure and metric</h2>']
    by_metric: "OrderedDict[str, OrderedDict[str, List[float]]]" = OrderedDict()
    for metric in _METRIC_ORDER:
        for score in report.scores:
            if score.metric == metric:
                by_metric.setdefault(metric, OrderedDict()).setdefault(score.structure or f"landmark {score.landmark}", []).append(score.value)
    for metric, groups in by_metric.items():
        ordered = OrderedDict(sorted(groups.items()))
        parts.append(f'<figure id="plot-{_e(metric)}">{box_plot_svg(ordered, metric, UNITS.get(metric, ""))}</figure>')
    if not by_metric:
        parts.append("<p>Nothing was scored.</p>")
    parts.append('<h2 id="aggregates">Aggregates</h2>')
    parts.append(_table(["structure", "landmark", "metric", "count", "mean", "median", "std", "min", "max", "NaN", "inf"],
                        [[_e(a.structure), _e(a.landmark), _e(a.metric), a.count, _fmt(a.mean), _fmt(a.median), _fmt(a.std), _fmt(a.min),
                          _fmt(a.max), a.undefined, a.infinite] for a in aggregates]))
    parts.append('<h2 id="problems">Problems</h2>')
    if report.problems:
        parts.append(_table(["", "code", "where", "reason"],
                            [[_status(not p.refused, "warning", "refused"), _e(p.code), _e(p.where), _e(p.message)] for p in report.problems]))
    else:
        parts.append('<p><span class="ok">none</span></p>')
    parts.append("</body></html>\n")
    return "".join(parts)
