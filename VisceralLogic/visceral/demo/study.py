"""A small synthetic clinical study for the demo: two patients, CT and MR of the phantom, with the
identifying data and extra objects a real PACS export carries.

Per patient: an axial CT series and an oblique, anisotropic MR series of the phantom, headers full
of identifying values (names, IDs, dates, institution, station, serial number, operators, private
attributes), plus -- for the first patient -- a secondary capture, a Basic Text SR and a CT slice
that was once lossy compressed (Lossy Image Compression = 01).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from visceral.conventions.frames import ImageGeometry
from visceral.demo.dicomgen import (
    BASIC_TEXT_SR_STORAGE,
    SC_STORAGE,
    UID_PREFIX,
    Patient,
    SeriesSpec,
    base_dataset,
)
from visceral.demo.phantom import sample
from visceral.fileio import write_dicom

__all__ = ["DEMO_PATIENTS", "write_study", "phantom_variant"]

#: The demo's original patients (fictitious).  Sex and age survive de-identification and select the phantom variant.
DEMO_PATIENTS = (
    Patient("HOSP-0031415", "Musterfrau^Erika^Maria", "19580301", "F", "061Y"),
    Patient("HOSP-0027182", "Mustermann^Max", "19720615", "M", None),  # age derived from birth and study dates
)


def phantom_variant(sex: str) -> int:
    """The phantom variant of a patient, from what de-identification keeps (sex)."""
    return 1 if sex.upper().startswith("F") else 2


def _grid(modality: str) -> Tuple[ImageGeometry, SeriesSpec]:
    if modality == "CT":
        shape, spacing = (128, 112, 56), (2.9, 2.9, 5.0)
        direction = np.eye(3)
    else:
        shape, spacing = (112, 96, 34), (3.4, 3.4, 7.5)
        a = np.radians(8.0)
        direction = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    extent = np.array(shape) * np.array(spacing)
    origin = np.array([0.0, 12.0, -5.0]) - direction @ ((extent - np.array(spacing)) / 2)
    geometry = ImageGeometry(shape, spacing, tuple(origin), tuple(map(tuple, direction)))
    spec = SeriesSpec(modality, rows=shape[1], columns=shape[0], slices=shape[2], pixel_spacing=(spacing[1], spacing[0]),
                      slice_spacing=spacing[2], orientation=tuple(direction[:, 0]) + tuple(direction[:, 1]), origin=tuple(origin))
    return geometry, spec


def _private_block(ds: Dataset, patient: Patient) -> None:
    block = ds.private_block(0x0029, "ACME 1.1", create=True)
    block.add_new(0x10, "LO", f"{patient.name} / {patient.patient_id}")
    block.add_new(0x11, "LT", "Referred by Dr. Hausarzt, Musterstadt")


def write_study(folder: Path) -> List[Path]:
    """Write the clinical study into ``folder``; returns every file written."""
    written: List[Path] = []
    for n, patient in enumerate(DEMO_PATIENTS):
        variant = phantom_variant(patient.sex)
        study_uid = generate_uid(prefix=UID_PREFIX)
        for m, modality in enumerate(("CT", "MR")):
            geometry, spec = _grid(modality)
            spec.series_number = 2 + 3 * m
            spec.study_date = "20190412" if n == 0 else "20200117"
            spec.series_description = "Thorax Abdomen KM 1.5 B30f" if modality == "CT" else "t1_vibe_tra_oblique"
            phantom = sample(geometry, variant, modality, seed=10 * n + m)
            series_uid, frame_uid = generate_uid(prefix=UID_PREFIX), generate_uid(prefix=UID_PREFIX)
            stored = phantom.image.astype(np.int32) + (1024 if modality == "CT" else 0)
            stored = stored.astype(np.int16 if modality == "CT" else np.uint16)
            directory = folder / f"{patient.name.split('^')[0]}_{patient.patient_id}" / f"{modality}_{spec.series_number}"
            directory.mkdir(parents=True, exist_ok=True)
            for k in range(geometry.shape[2]):
                position = geometry.index_to_world([0, 0, k], "LPS")
                ds = base_dataset(patient, spec, k, position, study_uid, series_uid, frame_uid)
                _private_block(ds, patient)
                ds.PixelData = stored[k].tobytes()
                path = directory / f"IM{k + 1:04d}"
                write_dicom(ds, str(path), conform=True)
                written.append(path)
            if n == 0 and modality == "CT":
                written += _extras(folder / "extras", patient, spec, stored, study_uid)
    return written


def _extras(folder: Path, patient: Patient, spec: SeriesSpec, stored: np.ndarray, study_uid: str) -> List[Path]:
    """A secondary capture, a Basic Text SR and a once-lossy CT slice: objects the release must not carry."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    sc = base_dataset(patient, spec, 0, (0.0, 0.0, 0.0), study_uid, generate_uid(prefix=UID_PREFIX), generate_uid(prefix=UID_PREFIX))
    sc.SOPClassUID = sc.file_meta.MediaStorageSOPClassUID = SC_STORAGE
    sc.Modality = "OT"
    sc.ConversionType = "WSD"
    sc.PixelData = stored[stored.shape[0] // 2].tobytes()
    paths.append(folder / "screenshot.dcm")
    write_dicom(sc, str(paths[-1]), conform=True)
    lossy = base_dataset(patient, spec, 5, (0.0, 0.0, 25.0), study_uid, generate_uid(prefix=UID_PREFIX), generate_uid(prefix=UID_PREFIX))
    lossy.LossyImageCompression = "01"
    lossy.LossyImageCompressionRatio = "8.5"
    lossy.LossyImageCompressionMethod = "ISO_10918_1"
    lossy.PixelData = stored[5].tobytes()
    paths.append(folder / "lossy_slice.dcm")
    write_dicom(lossy, str(paths[-1]), conform=True)
    sr = Dataset()
    sr.file_meta = sc.file_meta.copy()
    sr.SOPClassUID = sr.file_meta.MediaStorageSOPClassUID = BASIC_TEXT_SR_STORAGE
    sr.SOPInstanceUID = sr.file_meta.MediaStorageSOPInstanceUID = generate_uid(prefix=UID_PREFIX)
    sr.StudyInstanceUID, sr.SeriesInstanceUID = study_uid, generate_uid(prefix=UID_PREFIX)
    sr.PatientName, sr.PatientID, sr.Modality = patient.name, patient.patient_id, "SR"
    sr.ValueType, sr.ContinuityOfContent = "CONTAINER", "SEPARATE"
    item = Dataset()
    item.RelationshipType, item.ValueType = "CONTAINS", "TEXT"
    item.TextValue = f"Findings for {patient.name}: no focal liver lesion."
    sr.ContentSequence = DicomSequence([item])
    paths.append(folder / "report_sr.dcm")
    write_dicom(sr, str(paths[-1]), conform=True)
    return paths
