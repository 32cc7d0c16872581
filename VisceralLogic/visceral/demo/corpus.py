"""Generated DICOM data for the tests and the benchmarks: CT/MR series with realistic headers and
planted sentinel values.

:func:`write_series` writes a multi-slice CT or MR series (pydicom, Explicit VR Little Endian)
whose geometry is fully controlled (orientation, spacing, slice positions), for conversion tests.
:func:`plant_sentinels` puts a unique, recognisable value into every attribute of PS3.15 Annex E
that its VR allows, into nested sequences and into private blocks, and returns every planted
value: after de-identification none of them may appear anywhere in the output.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid
from visceral.deid.tables import annex_e
from visceral.demo.dicomgen import (  # noqa: F401  (re-exported for the tests)
    CT_STORAGE,
    MR_STORAGE,
    SC_STORAGE,
    UID_PREFIX,
    Patient,
    SeriesSpec,
    base_dataset,
    slice_normal,
)
from visceral.fileio import write_dicom

__all__ = ["Written", "write_series", "plant_sentinels", "write_secondary_capture", "variant", "pydicom_test_file",
           "sentinel_values", "write_enhanced_mr", "CT_STORAGE", "MR_STORAGE", "SC_STORAGE", "ENHANCED_MR_STORAGE", "UID_PREFIX",
           "Patient", "SeriesSpec", "base_dataset", "slice_normal"]

# Attributes the generator sets itself (structure, identity, kept characteristics): not planted.
_NOT_PLANTED = {
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID", "PatientID", "PatientName",
    "PatientSex", "PatientAge", "PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate",
    "StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime", "MediaStorageSOPInstanceUID", "ImagePositionPatient",
    "ImageOrientationPatient", "InstanceCreatorUID", "SpecificCharacterSet", "TimezoneOffsetFromUTC", "IssuerOfPatientID",
}
_PLANTABLE_VRS = {"PN", "LO", "SH", "LT", "ST", "UT", "UC", "CS", "DA", "DT", "UI", "AE", "UR"}


@dataclass
class Written:
    """What :func:`write_series` produced."""

    paths: List[Path] = field(default_factory=list)
    voxels: Optional[np.ndarray] = None  # stored values [k, j, i] in slice order
    sentinels: List[str] = field(default_factory=list)


def write_series(folder: Path, patient: Patient, spec: SeriesSpec, plant: bool = False, name_prefix: str = "IMG") -> Written:
    """Write the series into ``folder``; returns paths, stored voxels and planted sentinels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    study_uid = spec.study_uid or generate_uid(prefix=UID_PREFIX)
    series_uid = spec.series_uid or generate_uid(prefix=UID_PREFIX)
    frame_uid = spec.frame_uid or generate_uid(prefix=UID_PREFIX)
    if spec.slice_positions is not None:
        positions = [np.array(p, dtype=float) for p in spec.slice_positions]
    else:
        normal = slice_normal(spec.orientation)
        positions = [np.array(spec.origin) + k * spec.slice_spacing * normal for k in range(spec.slices)]
    dtype = np.int16 if spec.modality == "CT" else np.uint16
    low, high = (-200, 1800) if spec.modality == "CT" else (0, 4000)
    if spec.phantom:
        k, j, i = np.meshgrid(np.arange(len(positions)), np.arange(spec.rows), np.arange(spec.columns), indexing="ij")
        body = ((i - spec.columns / 2) / (0.42 * spec.columns)) ** 2 + ((j - spec.rows / 2) / (0.32 * spec.rows)) ** 2 < 1
        organ = ((i - 0.38 * spec.columns) / (0.12 * spec.columns)) ** 2 + ((j - 0.45 * spec.rows) / (0.1 * spec.rows)) ** 2 < 1
        values = np.where(body, 1064, 24) + np.where(organ, 60 + (k % 7), 0) + rng.integers(-12, 13, size=body.shape)
        voxels = (values if spec.modality == "CT" else values * 2).astype(dtype)
    else:
        voxels = rng.integers(low, high, size=(len(positions), spec.rows, spec.columns)).astype(dtype)
    out = Written(voxels=voxels)
    for k, position in enumerate(positions):
        ds = base_dataset(patient, spec, k, position, study_uid, series_uid, frame_uid)
        if plant:
            out.sentinels += plant_sentinels(ds, f"{spec.series_number}{k:02d}")
        ds.PixelData = voxels[k].tobytes()
        path = folder / f"{name_prefix}{spec.series_number:02d}{k:04d}.dcm"
        write_dicom(ds, str(path), conform=True)
        out.paths.append(path)
    out.sentinels += [patient.patient_id, patient.name, patient.birth_date, study_uid, series_uid, frame_uid,
                      f"A{patient.patient_id}"[:16], "Referrer^Rita^^Dr.", "St. Example Hospital", "1 Example Road, Exampletown",
                      "CTROOM7", "SN-998877", "Operator^Otto", "HOSP_PACS_AE"]
    return out


def _sentinel(vr: str, n: int, stamp: str) -> Optional[str]:
    tag = f"S{stamp}X{n:03d}"  # e.g. S300X017: unique, never produced by any de-identification
    if vr == "PN":
        return f"{tag}^Person"
    if vr in ("LO", "SH", "LT", "ST", "UT", "UC", "AE"):
        return tag
    if vr == "CS":
        return tag.upper()
    if vr in ("DA", "DT"):
        # Each stamp's dates lie in one year, 25 years from any other stamp's, and from 2100 on: a
        # shifted date (at most 10 years back) can never equal another planted date, nor a patient's
        # real date (births and studies of the 20th and 21st centuries) -- a planted 1950 date once
        # shifted onto another test patient's birth date.
        date = dt.date(2100 + 25 * (int(stamp) % 97), 1, 1) + dt.timedelta(days=n % 365)
        return date.strftime("%Y%m%d") + ("101010" if vr == "DT" else "")
    if vr == "UI":
        return f"{UID_PREFIX}9{int(stamp)}.{n + 1}"
    if vr == "UR":
        return f"http://{tag.lower()}.example.org/"
    return None


def plant_sentinels(ds: Dataset, stamp: str) -> List[str]:
    """Plant a unique value in every plantable Annex E attribute, in sequences and private blocks."""
    planted: List[str] = []
    exact, _ = annex_e()
    n = 0
    for tag, rule in sorted(exact.items()):
        keyword = rule.keyword
        if not keyword or keyword in _NOT_PLANTED or (tag >> 16) in (0x0000, 0x0002):
            continue
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            continue
        if vr not in _PLANTABLE_VRS:
            continue
        value = _sentinel(vr, n, stamp)
        n += 1
        if value is None:
            continue
        setattr(ds, keyword, value)
        planted.append(value)
    # Nested: a referenced image and a request, each with identifying values inside.
    ref = Dataset()
    ref.ReferencedSOPClassUID = CT_STORAGE
    ref.ReferencedSOPInstanceUID = f"{UID_PREFIX}8{stamp}.1"
    ds.ReferencedImageSequence = DicomSequence([ref])
    request = Dataset()
    request.AccessionNumber = f"S{stamp}NESTACC"
    request.RequestingPhysician = f"S{stamp}NESTDOC^Doc"
    request.StudyInstanceUID = f"{UID_PREFIX}7{stamp}.1"
    request.ScheduledProcedureStepDescription = f"S{stamp}NESTDESC"
    ds.RequestAttributesSequence = DicomSequence([request])
    planted += [ref.ReferencedSOPInstanceUID, request.AccessionNumber, f"S{stamp}NESTDOC", request.StudyInstanceUID, request.ScheduledProcedureStepDescription]
    # Private block with a text value and a private sequence.
    block = ds.private_block(0x0029, "SNTL PRIVATE CREATOR", create=True)
    block.add_new(0x10, "LO", f"S{stamp}PRIVLO")
    inner = Dataset()
    inner.add_new(0x00291010, "LO", f"S{stamp}PRIVNEST")
    block.add_new(0x11, "SQ", DicomSequence([inner]))
    planted += [f"S{stamp}PRIVLO", f"S{stamp}PRIVNEST", "SNTL PRIVATE CREATOR"]
    return planted


def write_secondary_capture(path: Path, patient: Patient) -> Path:
    """A secondary capture image (a class the seed lists as removable)."""
    ds = base_dataset(patient, SeriesSpec(), 0, (0, 0, 0), generate_uid(prefix=UID_PREFIX), generate_uid(prefix=UID_PREFIX), generate_uid(prefix=UID_PREFIX))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SC_STORAGE
    ds.Modality = "OT"
    ds.PixelData = np.zeros((16, 20), np.int16).tobytes()
    write_dicom(ds, str(path), conform=True)
    return path


def variant(src: Path, dst: Path, **changes: object) -> Path:
    """A copy of DICOM file ``src`` with attributes (or ``TransferSyntaxUID``) changed."""
    ds = pydicom.dcmread(str(src))
    for keyword, value in changes.items():
        if keyword == "TransferSyntaxUID":
            ds.file_meta.TransferSyntaxUID = value
        else:
            setattr(ds, keyword, value)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(prefix=UID_PREFIX)
    write_dicom(ds, str(dst), conform=False)
    return dst


def pydicom_test_file(name: str) -> Path:
    """A file shipped inside pydicom's package (no download)."""
    return Path(pydicom.data.__file__).parent / "test_files" / name


def sentinel_values(written: Sequence[Written]) -> Dict[str, None]:
    """All planted values of several series (order kept, duplicates dropped)."""
    return dict.fromkeys(v for w in written for v in w.sentinels)


ENHANCED_MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"


def write_enhanced_mr(path: Path, patient: Patient, spec: SeriesSpec, echo_times: Sequence[float] = (20.0,)) -> Written:
    """An Enhanced MR Image object: one file, frames described by functional groups.

    Frames are ordered echo by echo; positions follow ``spec`` like :func:`write_series`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    normal = slice_normal(spec.orientation)
    positions = [np.array(spec.origin) + k * spec.slice_spacing * normal for k in range(spec.slices)]
    voxels = rng.integers(0, 4000, size=(len(echo_times) * spec.slices, spec.rows, spec.columns)).astype(np.uint16)
    ds = base_dataset(patient, spec, 0, positions[0], generate_uid(prefix=UID_PREFIX), generate_uid(prefix=UID_PREFIX), generate_uid(prefix=UID_PREFIX))
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "SliceLocation", "EchoTime",
                    "RepetitionTime", "EchoTrainLength", "ScanningSequence", "SequenceVariant", "ImagedNucleus"):
        if keyword in ds:
            del ds[keyword]
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ENHANCED_MR_STORAGE
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.NumberOfFrames = len(voxels)
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [f"{spec.pixel_spacing[0]:g}", f"{spec.pixel_spacing[1]:g}"]
    measures.SliceThickness = f"{spec.slice_spacing:g}"
    shared.PixelMeasuresSequence = DicomSequence([measures])
    orientation = Dataset()
    orientation.ImageOrientationPatient = [f"{v:.6g}" for v in spec.orientation]
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    for e, echo in enumerate(echo_times):
        for k, position in enumerate(positions):
            item = Dataset()
            plane = Dataset()
            plane.ImagePositionPatient = [f"{v:.6g}" for v in position]
            item.PlanePositionSequence = DicomSequence([plane])
            content = Dataset()
            content.StackID = "1"
            content.InStackPositionNumber = k + 1
            content.DimensionIndexValues = [e + 1, k + 1]
            item.FrameContentSequence = DicomSequence([content])
            mr_echo = Dataset()
            mr_echo.EffectiveEchoTime = echo
            item.MREchoSequence = DicomSequence([mr_echo])
            per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    organization = generate_uid(prefix=UID_PREFIX)
    org = Dataset()
    org.DimensionOrganizationUID = organization
    ds.DimensionOrganizationSequence = DicomSequence([org])
    dimensions = []
    for pointer, group in ((0x00189082, 0x00189114), (0x00209057, 0x00209111)):  # echo time in MR Echo; in-stack position
        dim = Dataset()
        dim.DimensionOrganizationUID = organization
        dim.DimensionIndexPointer = pointer
        dim.FunctionalGroupPointer = group
        dimensions.append(dim)
    ds.DimensionIndexSequence = DicomSequence(dimensions)
    ds.PixelData = voxels.tobytes()
    write_dicom(ds, str(path), conform=True)
    return Written([path], voxels)
