"""Writing the images of a data set: NIfTI volume + parallel metadata ``.txt``, and the data-set README.

The one place that decides what an image file pair looks like, used by the
converter, the demo and the tests.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Mapping, Optional

import numpy as np

from visceral.conventions.frames import ImageGeometry
from visceral.conventions.metadata import Metadata, dataset_readme, metadata_fields, write_metadata
from visceral.conventions.names import FileKind, VisceralName
from visceral.errors import InvalidNameError
from visceral.fileio import TEMP_PREFIX, atomic_write_text
from visceral.imageio import write_volume
from visceral.types import PathLike

__all__ = ["write_image", "image_metadata", "write_dataset_readme", "README_NAME"]

#: File name of the data-set README (seed section 4: "plain text files ... that explain naming conventions").
README_NAME = "README.txt"


def orientation_code(geometry: ImageGeometry) -> str:
    """Three-letter RAS orientation code of the voxel axes (e.g. ``LPS`` for a standard DICOM axial)."""
    letters = []
    for axis in np.asarray(geometry.direction_lps).T:  # columns: voxel axes in LPS
        n = int(np.argmax(np.abs(axis)))
        positive = axis[n] > 0
        letters.append(("L", "P", "S")[n] if positive else ("R", "A", "I")[n])
    return "".join(letters)


def image_metadata(geometry: ImageGeometry, fields: Optional[Mapping[str, object]] = None) -> Metadata:
    """Metadata of an image on ``geometry``: voxel size, dimensions, orientation, then ``fields``."""
    items: "OrderedDict[str, object]" = OrderedDict()
    items["dimensions"] = list(geometry.shape)
    items["orientation"] = orientation_code(geometry)
    for key, value in (fields or {}).items():
        items[key] = value
    return Metadata(geometry.spacing_mm, fields=metadata_fields(items))


def write_image(
    folder: PathLike, name: VisceralName, array: np.ndarray, geometry: ImageGeometry, fields: Optional[Mapping[str, object]] = None
) -> Path:
    """Write an image volume and its parallel metadata ``.txt`` (both atomically; the volume last).

    Returns the volume path.  The metadata is written first so that a volume that
    exists is always complete with its metadata.
    """
    if name.kind is not FileKind.IMAGE:
        raise InvalidNameError(name.format(), "write_image writes image volumes only")
    folder = Path(folder)
    volume = folder / name.with_extension(".nii.gz").format()
    write_metadata(folder / name.with_extension(".txt").format(), image_metadata(geometry, fields))
    write_volume(volume, array, geometry)
    return volume


def write_dataset_readme(folder: PathLike, title: str = "", notes: Iterable[str] = ()) -> Path:
    """(Re)write ``README.txt`` of a data-set folder from the files it holds."""
    folder = Path(folder)
    names = [p.name for p in folder.rglob("*") if p.is_file() and not p.name.startswith((TEMP_PREFIX, ".")) and p.name != README_NAME]
    path = folder / README_NAME
    atomic_write_text(path, dataset_readme(names, title=title, notes=notes))
    return path
