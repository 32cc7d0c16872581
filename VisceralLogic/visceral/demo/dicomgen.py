"""Synthetic clinical DICOM: CT and MR image series with realistic headers (identifying data included).

Used by ``visceral demo`` to make a small clinical study to de-identify, and by the test corpus.
Geometry is fully controlled (orientation, spacing, slice positions); every header carries the
kind of identifying data hospitals export: names, IDs, dates, institution, station, device serial,
operators, referring physician, accession number, AE titles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
BASIC_TEXT_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.11"
UID_PREFIX = "1.2.826.0.1.3680043.10.543."


@dataclass
class Patient:
    """An original patient with identifying data."""

    patient_id: str
    name: str
    birth_date: str
    sex: str = "F"
    age: Optional[str] = "061Y"


@dataclass
class SeriesSpec:
    """A series to generate (geometry in DICOM LPS)."""

    modality: str = "CT"
    rows: int = 16
    columns: int = 20
    slices: int = 4
    pixel_spacing: Tuple[float, float] = (0.7, 0.8)  # row spacing, column spacing (mm)
    slice_spacing: float = 2.5
    orientation: Tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # row direction, column direction (LPS)
    origin: Tuple[float, float, float] = (-100.0, -80.0, 50.0)
    series_number: int = 3
    study_date: str = "20190412"
    study_uid: Optional[str] = None
    series_uid: Optional[str] = None
    frame_uid: Optional[str] = None
    echo_time: Optional[float] = None
    slice_positions: Optional[Sequence[Tuple[float, float, float]]] = None  # overrides origin/slice_spacing
    rescale: Tuple[float, float] = (1.0, -1024.0)  # slope, intercept (CT)
    series_description: str = "Thorax Abdomen KM 1.5 B30f"
    phantom: bool = False  # smooth body-like values (compress like real images) instead of noise
    study_description: str = "CT THORAX ABDOMEN mit KM"
    seed: int = 0


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    row, col = np.array(orientation[:3]), np.array(orientation[3:])
    return np.cross(row, col)


def base_dataset(patient: Patient, spec: SeriesSpec, index: int, position: Sequence[float], study_uid: str, series_uid: str, frame_uid: str) -> Dataset:
    """One image of the series with the Type 1/2 attributes of the CT/MR Image IODs."""
    sop_class = CT_STORAGE if spec.modality == "CT" else MR_STORAGE
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = UID_PREFIX + "1"
    ds.file_meta.SourceApplicationEntityTitle = "HOSP_PACS_AE"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid(prefix=UID_PREFIX)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = patient.name, patient.patient_id, patient.birth_date, patient.sex
    if patient.age:
        ds.PatientAge = patient.age
    ds.PatientWeight, ds.PatientSize = "81", "1.83"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = spec.study_date
    ds.StudyTime, ds.SeriesTime, ds.AcquisitionTime, ds.ContentTime = "101500", "102000", "102010", "102011"
    ds.AccessionNumber = f"A{patient.patient_id}"[:16]
    ds.ReferringPhysicianName = "Referrer^Rita^^Dr."
    ds.StudyID = "4711"
    ds.StudyDescription = spec.study_description
    ds.SeriesDescription = spec.series_description
    ds.Modality = spec.modality
    ds.Manufacturer = "GenericVendor"
    ds.InstitutionName = "St. Example Hospital"
    ds.InstitutionAddress = "1 Example Road, Exampletown"
    ds.StationName = "CTROOM7"
    ds.DeviceSerialNumber = "SN-998877"
    ds.OperatorsName = "Operator^Otto"
    ds.ProtocolName = "THORAX_ABD_KM_VENOUS"
    ds.SeriesNumber = spec.series_number
    ds.InstanceNumber = index + 1
    ds.AcquisitionNumber = 1
    ds.PatientPosition = "FFS" if spec.modality == "CT" else "HFS"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [f"{v:.6g}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.6g}" for v in spec.orientation]
    ds.PositionReferenceIndicator = ""
    ds.SliceThickness = f"{spec.slice_spacing:g}"
    ds.PixelSpacing = [f"{spec.pixel_spacing[0]:g}", f"{spec.pixel_spacing[1]:g}"]
    ds.SliceLocation = f"{float(np.dot(position, slice_normal(spec.orientation))):.6g}"
    ds.Laterality = None
    ds.Rows, ds.Columns = spec.rows, spec.columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if spec.modality == "CT" else 0
    ds.BurnedInAnnotation = "NO"
    if spec.modality == "CT":
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = f"{spec.rescale[0]:g}", f"{spec.rescale[1]:g}", "HU"
        ds.KVP = "120"
        ds.ScanOptions = "HELICAL_CT"
        ds.ConvolutionKernel = "B30f"
    else:
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "SE", "NONE", "PFP"
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = "500", f"{spec.echo_time or 15:g}", "1"
        ds.MagneticFieldStrength = "1.5"
        ds.ImagedNucleus = "1H"
    return ds
