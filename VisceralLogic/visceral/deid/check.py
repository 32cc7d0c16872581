"""A quick check that a DICOM folder is a Visceral release (what the Slicer import runs first).

Not a replacement for the QA gate of :func:`visceral.deid.deidentify`: it only reads headers and
reports what looks identifying -- no Patient Identity Removed = YES, a Patient ID that is not a
pseudonym, private attributes, names of people, or a lossy transfer syntax.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Union

import pydicom
from pydicom.errors import InvalidDicomError

from visceral.conventions.names import subject_number
from visceral.deid.rules import DUMMY_NAME, DUMMY_TEXT
from visceral.deid.tables import KEPT_SOP_CLASSES, LOSSLESS_TRANSFER_SYNTAXES

__all__ = ["identity_findings"]

def identity_findings(folder: Union[str, Path], limit: int = 50) -> List[str]:
    """``file: reason`` lines for every DICOM file of ``folder`` that does not look de-identified."""
    folder = Path(folder)
    findings: List[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(str(path), stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        if str(ds.get("SOPClassUID", "")) not in KEPT_SOP_CLASSES:
            continue
        rel = path.relative_to(folder).as_posix()
        reasons = []
        if str(ds.get("PatientIdentityRemoved", "")).upper() != "YES":
            reasons.append("Patient Identity Removed is not YES")
        if subject_number(str(ds.get("PatientID", "") or "")) is None:
            reasons.append("Patient ID is not a pseudonym")
        if any(elem.tag.is_private for elem in ds.iterall()):
            reasons.append("private attributes present")
        for keyword in ("PatientBirthDate", "OtherPatientIDs", "InstitutionName", "ReferringPhysicianName", "OperatorsName"):
            if str(ds.get(keyword, "") or "").strip() not in ("", DUMMY_TEXT, DUMMY_NAME):
                reasons.append(f"{keyword} has a value")
        syntax = str(getattr(ds, "file_meta", {}).get("TransferSyntaxUID", ""))
        if syntax and syntax not in LOSSLESS_TRANSFER_SYNTAXES:
            reasons.append("lossy transfer syntax")
        if reasons:
            findings.append(f"{rel}: {'; '.join(reasons)}")
            if len(findings) >= limit:
                findings.append("... (more files not listed)")
                break
    return findings
