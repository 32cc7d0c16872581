"""``visceral evaluate``: score results against a reference data set (regions and landmarks).

:mod:`visceral.evaluate.metrics` holds the metrics on arrays; :mod:`visceral.evaluate.pipeline` pairs the
files of two data sets by their identity tokens and writes the tables and the report.
"""
