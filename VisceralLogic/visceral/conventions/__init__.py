"""The VISCERAL data-format conventions as code, one module per concern.

- :mod:`~visceral.conventions.names` -- file names (parse and format)
- :mod:`~visceral.conventions.labels` -- structure registry and region label tables
- :mod:`~visceral.conventions.landmarks` -- landmark CSV files
- :mod:`~visceral.conventions.metadata` -- metadata ``.txt`` files and the data-set README
- :mod:`~visceral.conventions.frames` -- coordinate frames (LPS, RAS, IJK, landmark)
- :mod:`~visceral.conventions.version` -- conventions version and compatibility rule
"""

from visceral.conventions.frames import ImageGeometry, lps_to_ras, ras_to_lps
from visceral.conventions.labels import LabelTable, Structure, StructureRegistry, default_registry, read_label_table, write_label_table
from visceral.conventions.landmarks import Landmark, read_landmarks, write_landmarks
from visceral.conventions.metadata import Metadata, dataset_readme, read_metadata, write_metadata
from visceral.conventions.names import FileKind, NameStyle, VisceralName, format_name, parse_name
from visceral.conventions.version import CONVENTIONS_VERSION

__all__ = [
    "CONVENTIONS_VERSION",
    "FileKind",
    "ImageGeometry",
    "LabelTable",
    "Landmark",
    "Metadata",
    "NameStyle",
    "Structure",
    "StructureRegistry",
    "VisceralName",
    "dataset_readme",
    "default_registry",
    "format_name",
    "lps_to_ras",
    "parse_name",
    "ras_to_lps",
    "read_label_table",
    "read_landmarks",
    "read_metadata",
    "write_label_table",
    "write_landmarks",
    "write_metadata",
]
