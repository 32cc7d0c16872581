"""DICOM to NIfTI conversion and data-set assembly (``visceral convert``).

Public API: :func:`convert` and its :class:`ConvertReport`; :mod:`visceral.convert.stacks` holds the
grouping and geometry rules, :mod:`visceral.convert.dicomio` the DICOM reading.
"""

from visceral.convert.pipeline import PROBLEM_CODES, ConvertReport, Problem, convert

__all__ = ["PROBLEM_CODES", "ConvertReport", "Problem", "convert"]
