"""Reading DICOM for conversion: headers into :class:`Frame` records, pixels into stacks.

Single-frame CT/MR files give one frame each; Enhanced CT/MR objects give one frame per frame,
read from their per-frame and shared functional groups (Plane Position, Plane Orientation, Pixel
Measures, Pixel Value Transformation, MR Echo, Frame Content).  Pixels are decoded by pydicom
(uncompressed, deflate, RLE) or, for the JPEG family, by SimpleITK's GDCM reader.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import List, Optional, Tuple

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from visceral.convert.stacks import Frame, Stack

__all__ = ["SeriesInfo", "read_header", "load_stack_voxels", "IMAGE_SOP_CLASSES", "ENHANCED_SOP_CLASSES"]

IMAGE_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.2": "CT", "1.2.840.10008.5.1.4.1.1.2.1": "CT",
                     "1.2.840.10008.5.1.4.1.1.4": "MR", "1.2.840.10008.5.1.4.1.1.4.1": "MR"}
ENHANCED_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.4.1"}
_PYDICOM_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5"}


@dataclass(frozen=True)
class SeriesInfo:
    """What conversion needs of a series besides its frames (taken from its first file)."""

    series_uid: str
    study_uid: str
    patient_id: str
    modality: str
    sop_class: str
    study_date: str = ""
    study_time: str = ""
    series_number: int = 0
    patient_age: str = ""
    patient_sex: str = ""
    study_description: str = ""
    series_description: str = ""


#: Image Type values that name a Dixon image (water, fat, in phase, opposed phase): one volume each.
_DIXON = frozenset(("W", "F", "IP", "OP", "IN_PHASE", "OUT_PHASE", "OPP_PHASE", "WATER", "FAT", "FF", "WATER_FRACTION", "FAT_FRACTION"))


#: Image Type values that name the complex component of an MR image (Siemens and Philips write M and P).
_COMPONENTS = {"M": "magnitude", "MAGNITUDE": "magnitude", "P": "phase", "PHASE": "phase", "R": "real", "REAL": "real",
               "I": "imaginary", "IMAGINARY": "imaginary"}


def _image_kind(image_type: object) -> str:
    """What of a classic image its Image Type tells apart from the series' other images: the Dixon image
    (``DERIVED\\PRIMARY\\DIXON\\WATER`` -> ``WATER``) and the complex component (``...\\P_FFE\\P\\FFE``,
    Philips' susceptibility ``...\\SW_P`` -> ``phase``), else ''."""
    values = [str(v).strip().upper() for v in (image_type or [])] if not isinstance(image_type, str) else image_type.upper().split("\\")
    components = {_component(v) for v in values[2:]} - {""}
    return "\\".join([v for v in values[2:] if v in _DIXON] + sorted(components))


def _component(value: str) -> str:
    """The complex component an Image Type value names: ``P``, ``PHASE``, or a one-letter code after an
    underscore (``SW_P``); else ''."""
    if value in _COMPONENTS:
        return _COMPONENTS[value]
    last = value.rpartition("_")[2]
    return _COMPONENTS[last] if len(last) == 1 and last in _COMPONENTS else ""


def _direction(value: object) -> str:
    """A diffusion gradient direction as text, to 3 decimals (``0.707 0 -0.707``: the noise scanners
    leave in the last digits, ``-1.1e-17`` or ``-0``, is not another direction); '' when there is none or it
    is the zero vector (a b = 0 image, or a scanner writing it on every image)."""
    numbers = _floats(value, 3)
    if numbers is None or all(abs(v) < 5e-4 for v in numbers):  # none, or the zero vector of a b = 0 image
        return ""
    return " ".join(f"{round(v, 3) + 0.0:g}" for v in numbers)


def _number(value: object) -> float:
    """A number for ordering (0 when missing or malformed)."""
    try:
        return float(value) if value not in (None, "") else 0.0
    except (TypeError, ValueError):
        return 0.0


class MosaicError(ValueError):
    """A Siemens mosaic image: many slices tiled in one 2D image."""


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _floats(value, n: int) -> Optional[Tuple[float, ...]]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _first(seq_owner: Optional[Dataset], keyword: str) -> Optional[Dataset]:
    if seq_owner is None:
        return None
    seq = seq_owner.get(keyword)
    return seq[0] if seq else None


def _group(per_frame: Optional[Dataset], shared: Optional[Dataset], keyword: str) -> Optional[Dataset]:
    return _first(per_frame, keyword) or _first(shared, keyword)


def read_header(path: str) -> Tuple[SeriesInfo, List[Frame]]:
    """Series information and frames of one DICOM file (no pixel data read).

    Raises:
        pydicom.errors.InvalidDicomError: not DICOM.
        ValueError: not a CT/MR image object, or geometry attributes missing (message says which).
    """
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    sop = _text(ds, "SOPClassUID")
    if sop not in IMAGE_SOP_CLASSES:
        raise ValueError(f"not a CT/MR image object (SOP Class {sop or 'missing'})")
    try:
        series_number = int(ds.get("SeriesNumber") or 0)
    except (TypeError, ValueError):
        series_number = 0
    info = SeriesInfo(
        series_uid=_text(ds, "SeriesInstanceUID"), study_uid=_text(ds, "StudyInstanceUID"), patient_id=_text(ds, "PatientID"),
        modality=IMAGE_SOP_CLASSES[sop], sop_class=sop, study_date=_text(ds, "StudyDate"), study_time=_text(ds, "StudyTime"),
        series_number=series_number, patient_age=_text(ds, "PatientAge"), patient_sex=_text(ds, "PatientSex"),
        study_description=_text(ds, "StudyDescription"), series_description=_text(ds, "SeriesDescription"),
    )
    if not info.series_uid:
        raise ValueError("Series Instance UID is missing")
    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    frames_count = int(ds.get("NumberOfFrames") or 1)
    if sop in ENHANCED_SOP_CLASSES or "PerFrameFunctionalGroupsSequence" in ds:
        return info, _enhanced_frames(ds, path, rows, columns, frames_count)
    position = _floats(ds.get("ImagePositionPatient"), 3)
    orientation = _floats(ds.get("ImageOrientationPatient"), 6)
    spacing = _floats(ds.get("PixelSpacing"), 2)
    missing = [k for k, v in (("Image Position (Patient)", position), ("Image Orientation (Patient)", orientation), ("Pixel Spacing", spacing)) if v is None]
    if missing:
        raise ValueError(f"{', '.join(missing)} missing or malformed")
    slope = float(ds.get("RescaleSlope") or 1.0)
    intercept = float(ds.get("RescaleIntercept") or 0.0)
    echo = _text(ds, "EchoNumbers") or _text(ds, "EchoTime")
    split = (("echo", echo), ("temporal position", _text(ds, "TemporalPositionIdentifier")),
             ("b-value", _text(ds, "DiffusionBValue")), ("gradient", _direction(ds.get("DiffusionGradientOrientation"))),
             ("image type", _image_kind(ds.get("ImageType"))))
    if frames_count > 1:
        raise ValueError("a multi-frame object without functional groups is not supported")
    try:
        thickness = float(ds.get("SliceThickness") or 0.0)
    except (TypeError, ValueError):
        thickness = 0.0
    order = (_number(ds.get("TemporalPositionIdentifier")), _text(ds, "AcquisitionTime"), _number(ds.get("InstanceNumber")))
    frame = Frame(path, None, position, orientation, spacing, rows, columns, (slope, intercept), split, thickness, order,
                  instance=_text(ds, "SOPInstanceUID"))
    if any("MOSAIC" in str(v).upper() for v in (ds.get("ImageType") or [])):
        return info, _mosaic_slices(ds, frame)
    return info, [frame]


def _mosaic_normal(ds: Dataset, row: np.ndarray, col: np.ndarray, position: np.ndarray) -> np.ndarray:
    """The direction in which a mosaic's slices follow one another: row x column, or its opposite.

    The private header that says it (CSA SliceNormalVector) is gone after de-identification; a sagittal
    Siemens mosaic runs against row x column (to the patient's left).  Slice Location (0020,1041) is the
    first slice's position along the true normal (Image Position . normal: in plane, the mosaic's corner
    and its first slice differ only in plane), so its sign tells them apart where the position is off the
    origin's plane; otherwise the normal whose largest component is positive, as Siemens writes it
    (checked against the CSA header on 11 real mosaic series, 2 of them sagittal)."""
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    along = float(position @ normal)
    try:
        location = float(ds.get("SliceLocation"))
    except (TypeError, ValueError):
        location = None
    if location is not None and abs(along) > MOSAIC_LOCATION_MM and min(abs(location - along), abs(location + along)) < MOSAIC_LOCATION_MM:
        return normal if abs(location - along) < abs(location + along) else -normal
    return normal if normal[int(np.argmax(np.abs(normal)))] > 0 else -normal


#: How far Slice Location may be from the first slice's position along a mosaic's normal (mm).
MOSAIC_LOCATION_MM = 0.5


def _mosaic_slices(ds: Dataset, mosaic: Frame) -> List[Frame]:
    """The slices of a Siemens mosaic (Image Type MOSAIC: N x N tiles in one image, row by row).

    Without the private header (de-identified data), the tile size comes from Acquisition Matrix, the
    slice count from the tiles that hold any non-zero pixel (trailing empty tiles are padding), the slice
    step from Spacing Between Slices (else Slice Thickness) along the slice normal (:func:`_mosaic_normal`);
    each slice's position is the mosaic's Image Position moved to the centre of the tile grid.
    """
    matrix = [int(v) for v in (ds.get("AcquisitionMatrix") or [])]
    sizes = [v for v in matrix if v > 0]
    rows, columns = mosaic.rows, mosaic.columns
    tile = next(((r, c) for r, c in ((max(sizes, default=0), min(sizes, default=0)), (min(sizes, default=0), max(sizes, default=0)))
                 if r and c and rows % r == 0 and columns % c == 0 and rows // r == columns // c and rows // r > 1), None)
    if tile is None:
        raise MosaicError(f"a Siemens mosaic whose tiles cannot be found (Acquisition Matrix {matrix}, {rows}x{columns})")
    tile_rows, tile_columns = tile
    per_side = rows // tile_rows
    try:
        step = float(ds.get("SpacingBetweenSlices") or ds.get("SliceThickness") or 0.0)
    except (TypeError, ValueError):
        step = 0.0
    if step <= 0:
        raise MosaicError("a Siemens mosaic without Spacing Between Slices or Slice Thickness: its slice step is unknown")
    pixels = _decode(mosaic.path)
    filled = [n for n in range(per_side * per_side)
              if np.any(pixels[(n // per_side) * tile_rows:(n // per_side + 1) * tile_rows, (n % per_side) * tile_columns:(n % per_side + 1) * tile_columns])]
    count = (filled[-1] + 1) if filled else 0
    row, col = mosaic.axes
    normal = _mosaic_normal(ds, row, col, np.asarray(mosaic.position, dtype=float))
    row_spacing, column_spacing = mosaic.pixel_spacing
    origin = (np.asarray(mosaic.position, dtype=float) + row * column_spacing * (columns - tile_columns) / 2
              + col * row_spacing * (rows - tile_rows) / 2)
    return [replace(mosaic, position=tuple(float(v) for v in origin + normal * step * n), rows=tile_rows, columns=tile_columns,
                    thickness=mosaic.thickness or step, tile=((n // per_side) * tile_rows, (n % per_side) * tile_columns))
            for n in range(count)]


def _enhanced_frames(ds: Dataset, path: str, rows: int, columns: int, count: int) -> List[Frame]:
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per_frame) != count:
        raise ValueError(f"Per-frame Functional Groups has {len(per_frame)} items for {count} frames")
    frames = []
    for index, item in enumerate(per_frame):
        position = _floats(getattr(_group(item, shared, "PlanePositionSequence"), "ImagePositionPatient", None), 3)
        orientation = _floats(getattr(_group(item, shared, "PlaneOrientationSequence"), "ImageOrientationPatient", None), 6)
        spacing = _floats(getattr(_group(item, shared, "PixelMeasuresSequence"), "PixelSpacing", None), 2)
        if position is None or orientation is None or spacing is None:
            raise ValueError(f"frame {index + 1}: plane position, plane orientation or pixel spacing missing in the functional groups")
        transform = _group(item, shared, "PixelValueTransformationSequence")
        slope = float(getattr(transform, "RescaleSlope", 1.0) or 1.0) if transform is not None else 1.0
        intercept = float(getattr(transform, "RescaleIntercept", 0.0) or 0.0) if transform is not None else 0.0
        echo = _group(item, shared, "MREchoSequence")
        content = _first(item, "FrameContentSequence")
        diffusion = _group(item, shared, "MRDiffusionSequence")
        frame_type = _group(item, shared, "MRImageFrameTypeSequence")
        split = (
            ("echo time", str(getattr(echo, "EffectiveEchoTime", "") if echo is not None else "")),
            ("temporal position", str(getattr(content, "TemporalPositionIndex", "") if content is not None else "")),
            ("stack", str(getattr(content, "StackID", "") if content is not None else "")),
            ("b-value", str(getattr(diffusion, "DiffusionBValue", "") if diffusion is not None else "")),
            ("gradient", _direction(getattr(_first(diffusion, "DiffusionGradientDirectionSequence"), "DiffusionGradientOrientation", None))),
            ("image type", str(getattr(frame_type, "ComplexImageComponent", "") or "").strip().lower() if frame_type is not None else ""),
        )
        measures = _group(item, shared, "PixelMeasuresSequence")
        thickness = float(getattr(measures, "SliceThickness", 0.0) or 0.0)
        frames.append(Frame(path, index, position, orientation, spacing, rows, columns, (slope, intercept), split, thickness,
                            instance=_text(ds, "SOPInstanceUID")))
    return frames


@lru_cache(maxsize=4)
def _multiframe_pixels(path: str) -> np.ndarray:
    return _decode(path)


def _decode(path: str) -> np.ndarray:
    """Stored pixel values of a file: (rows, columns) or (frames, rows, columns)."""
    ds = pydicom.dcmread(path)
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if syntax in _PYDICOM_SYNTAXES:
        return ds.pixel_array
    import SimpleITK as sitk  # JPEG family: GDCM decodes; it applies the rescale, so undo it exactly

    image = sitk.ReadImage(path, imageIO="GDCMImageIO")
    values = sitk.GetArrayFromImage(image)
    slope = float(ds.get("RescaleSlope") or 1.0)
    intercept = float(ds.get("RescaleIntercept") or 0.0)
    if slope != 1.0 or intercept != 0.0:
        values = np.rint((values.astype(np.float64) - intercept) / slope)
    dtype = np.int16 if int(ds.get("PixelRepresentation", 0)) == 1 else np.uint16
    if int(ds.get("BitsAllocated", 16)) == 8:
        dtype = np.int8 if dtype is np.int16 else np.uint8
    return values.astype(dtype).reshape(values.shape[-2:] if values.shape[0] == 1 else values.shape)


def _smallest_int(low: float, high: float) -> Optional[np.dtype]:
    for dtype in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    return None


def load_stack_voxels(stack: Stack) -> np.ndarray:
    """The stack's voxels ``[k, j, i]`` with Rescale Slope/Intercept applied, in the smallest exact type.

    Integer slopes and intercepts keep an integer type just wide enough for the actual values
    (CT in HU: usually int16); otherwise float32.  No value is clipped.
    """
    first = stack.frames[0]
    stored: Optional[np.ndarray] = None
    for k, frame in enumerate(stack.frames):
        if frame.tile is not None:  # a slice of a mosaic: its tile
            pixels = _multiframe_pixels(frame.path)[frame.tile[0]:frame.tile[0] + frame.rows, frame.tile[1]:frame.tile[1] + frame.columns]
        else:
            pixels = _decode(frame.path) if frame.frame_index is None else _multiframe_pixels(frame.path)[frame.frame_index]
        if stored is None:
            stored = np.empty((len(stack.frames), first.rows, first.columns), dtype=pixels.dtype)
        if pixels.shape != stored.shape[1:]:
            raise ValueError(f"{frame.path}: pixel data is {pixels.shape}, expected {stored.shape[1:]}")
        stored[k] = pixels
    _multiframe_pixels.cache_clear()
    rescales = {f.rescale for f in stack.frames}
    integral = all(float(s).is_integer() and float(b).is_integer() for s, b in rescales)
    if rescales == {(1.0, 0.0)}:
        return stored
    if integral:
        lows, highs = [], []
        for k, frame in enumerate(stack.frames):
            s, b = frame.rescale
            lo, hi = int(stored[k].min()), int(stored[k].max())
            lows.append(min(lo * s + b, hi * s + b))
            highs.append(max(lo * s + b, hi * s + b))
        dtype = _smallest_int(min(lows), max(highs))
        if dtype is not None:
            if len(rescales) == 1 and dtype == stored.dtype:
                s, b = next(iter(rescales))
                if s != 1:
                    stored *= stored.dtype.type(s)
                stored += stored.dtype.type(b)
                return stored
            out = stored.astype(dtype)
            for k, frame in enumerate(stack.frames):
                s, b = frame.rescale
                if s != 1:
                    out[k] *= dtype.type(s)
                out[k] += dtype.type(b)
            return out
    out = stored.astype(np.float32)
    for k, frame in enumerate(stack.frames):
        s, b = frame.rescale
        out[k] = out[k] * np.float32(s) + np.float32(b)
    return out
