"""``visceral evaluate``: score results against a reference data set (regions and landmarks).

:mod:`~visceral.evaluate.metrics` holds the metrics on arrays; :mod:`~visceral.evaluate.pipeline` pairs
the files of two data sets by their identity tokens and scores each image;
:mod:`~visceral.evaluate.tables` writes the tables, the JSON and the HTML report.  Definitions:
``docs/METRICS.md``.
"""

from visceral.evaluate.pipeline import PROBLEM_CODES, EvaluationReport, Problem, Score, evaluate
from visceral.evaluate.tables import aggregate, write_outputs

__all__ = ["PROBLEM_CODES", "EvaluationReport", "Problem", "Score", "aggregate", "evaluate", "write_outputs"]
