"""The demo's QA report: one self-contained HTML file (pictures inline as PNG), readable offline.

Sections (each an ``<h2 id=...>``): data-set summary, de-identification audit, conformance,
images (orthogonal slices with label overlay, legend, landmarks with covariance ellipses),
validator findings, timings.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from pathlib import Path
from typing import Iterable, List, Sequence

import numpy as np

from visceral.conventions.labels import default_registry
from visceral.fileio import atomic_write_text
from visceral.report.pictures import label_color, orthogonal_views, png_bytes

__all__ = ["write_report", "SECTIONS"]

#: Section ids of the report, in order.
SECTIONS = ("summary", "deidentification", "conformance", "images", "validation", "timings")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
th { background: #f0f0f0; } .ok { color: #176d2c; font-weight: bold; } .bad { color: #a11; font-weight: bold; }
.swatch { display: inline-block; width: 1em; height: 1em; border: 1px solid #555; vertical-align: middle; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: .9em; } img { max-width: 100%; image-rendering: pixelated; }
"""


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _e(value: object) -> str:
    return html.escape(str(value))


def _status(ok: bool, good: str, bad: str) -> str:
    return f'<span class="ok">{good}</span>' if ok else f'<span class="bad">{bad}</span>'


def _picture(image: dict) -> str:
    geometry = image["geometry"]
    landmarks = image["landmarks"]
    spacing = np.asarray(geometry.spacing_mm)
    ijk = [np.asarray(lm.position_mm) / spacing for lm in landmarks]
    covs = [None if lm.covariance is None else np.asarray(lm.covariance).reshape(3, 3) / np.outer(spacing, spacing) for lm in landmarks]
    modality = image["name"].modality or "CT"
    window = (40.0, 400.0) if modality == "CT" else (350.0, 700.0)
    rgb = orthogonal_views(image["voxels"], geometry, image["labels"], ijk, covs, window=window, pixel_mm=min(geometry.spacing_mm) / 2.5)
    data = base64.b64encode(png_bytes(rgb)).decode("ascii")
    name = image["name"].format()
    registry = default_registry()
    legend = _table(["", "structure (RadLex)", "RadLex ID", "label"],
                    [[f'<span class="swatch" style="background: rgb{label_color(v)}"></span>', _e(n), registry.lookup(n).rid, v]
                     for n, v in image["table"].entries])
    marks = _table(["landmark", "position (mm, voxel [0,0,0] origin)", "std. dev. (mm)"],
                   [[lm.landmark_id, ", ".join(f"{x:.1f}" for x in lm.position_mm) + f" ({_e(n)})",
                     ", ".join(f"{np.sqrt(max(v, 0)):.2f}" for v in np.diag(np.asarray(lm.covariance).reshape(3, 3))) if lm.covariance else "-"]
                    for lm, n in zip(landmarks, image["landmark_names"])])
    return (f'<h3>{_e(name)}</h3><figure><img alt="orthogonal slices of {_e(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>Axial, coronal and sagittal slices through the centre, region annotation overlaid; landmarks (cyan) "
            f"with 2-sigma covariance ellipses (yellow) projected into each view.</figcaption></figure>{legend}{marks}")


def write_report(result) -> Path:
    """Write ``result.report_html`` from a :class:`visceral.demo.DemoResult`."""
    deid, conversion, validation = result.deid, result.conversion, result.validation
    fates = deid.fates()
    parts: List[str] = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Visceral demo report</title><style>{_STYLE}</style></head><body>",
                        "<h1>Visceral demo: QA report</h1>",
                        f"<p>Data set: <code>{_e(result.dataset)}</code><br>De-identified DICOM release: <code>{_e(result.release)}</code></p>"]
    parts.append('<h2 id="summary">Data-set summary</h2>')
    parts.append(_table(["image", "modality", "voxels", "voxel size (mm)", "structures", "landmarks", "age / sex"],
                        [[_e(i["name"].format()), _e(i["name"].modality), " x ".join(map(str, i["geometry"].shape)),
                          " x ".join(f"{s:g}" for s in i["geometry"].spacing_mm), len(i["table"].entries), len(i["landmarks"]),
                          _e(f"{i['metadata'].fields.get('patient_age', '-')} / {i['metadata'].fields.get('patient_sex', '-')}")] for i in result.images]))
    parts.append(f"<p>{len(list(result.dataset.iterdir()))} files in the data set; {len(conversion.volumes)} volumes converted, "
                 f"{sum(p.refused for p in conversion.problems)} series refused.</p>")
    parts.append('<h2 id="deidentification">De-identification audit</h2>')
    parts.append(_table(["fate", "files"], [[_e(f), n] for f, n in sorted(fates.items())]))
    parts.append("<p>Files not released and why:</p>")
    parts.append(_table(["file", "fate", "reason"], [[_e(f.source), _e(f.fate), _e(f.reason)] for f in deid.files if f.fate not in ("released", "released earlier")]))
    parts.append("<p>Actions per attribute class (all files):</p>")
    parts.append(_table(["attribute class", "actions"], [[_e(c), _e(", ".join(f"{a}: {n}" for a, n in acts.items()))] for c, acts in deid.action_totals().items()]))
    leaks = deid.leak_count()
    parts.append(f"<p>Leak scan (every original identifying value searched in every output byte and decoded value): "
                 f"{_status(leaks == 0, '0 hits', f'{leaks} hits')}.</p>")
    parts.append('<h2 id="conformance">Conformance</h2>')
    checked = [f for f in deid.files if f.conformance == "checked"]
    new_errors = sum(len(f.new_errors) for f in deid.files)
    repairs = Counter(note.split(" ")[0] for f in deid.files for note in f.notes if "IOD" in note or "Type" in note)
    parts.append(f"<p>dciodvfy (dicom3tools) checked {len(checked)} released file(s) (mode: {_e(deid.conformance_mode)}): "
                 f"{_status(new_errors == 0, 'no new errors', f'{new_errors} new errors')} compared with the input files.</p>")
    if repairs:
        parts.append("<p>IOD repairs guided by dciodvfy: " + _e(", ".join(f"{k} ({n} files)" for k, n in repairs.items())) + "</p>")
    parts.append('<h2 id="images">Images and annotations</h2>')
    parts += [_picture(i) for i in result.images]
    parts.append('<h2 id="validation">Validator findings</h2>')
    parts.append(f"<p>visceral validate: {_status(validation.ok, f'{len(validation.errors)} errors', f'{len(validation.errors)} errors')}, "
                 f"{len(validation.warnings)} warnings ({validation.files} files, {validation.images} images, {validation.annotations} annotations).</p>")
    if validation.findings:
        parts.append(_table(["severity", "code", "file", "message"],
                            [[_e(f.severity.value), _e(f.code), _e(f.file), _e(f.message)] for f in validation.findings]))
    parts.append('<h2 id="timings">Timings</h2>')
    parts.append(_table(["step", "seconds"], [[_e(k), f"{v:.1f}"] for k, v in result.seconds.items()]))
    # A self-check for headless renderers: the number of pictures that decoded, on <body data-images-loaded>.
    parts.append("<script>window.addEventListener('load', function () { var n = 0; var imgs = document.images; "
                 "for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) n++; } "
                 "document.body.setAttribute('data-images-loaded', String(n)); });</script>")
    parts.append("</body></html>")
    atomic_write_text(result.report_html, "\n".join(parts))
    return result.report_html
