"""Visceral: VISCERAL data-format conventions for CT/MR research data sets.

The package is pure logic (numpy, pydicom, SimpleITK); it knows nothing of
Slicer or Qt.  Sub-packages:

- :mod:`visceral.conventions` -- file names, region label tables, landmark
  CSV files, metadata ``.txt`` files, coordinate frames, versioning.
- :mod:`visceral.cli` -- the ``visceral`` command line.
"""

__version__ = "0.1.0"

from visceral.errors import VisceralError  # noqa: E402  (re-export)

__all__ = ["VisceralError", "__version__"]
