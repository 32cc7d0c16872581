"""The real-world corpus (``Testing/data/realworld``) and identities planted into copies of it.

The corpus holds files nobody here wrote: public scanner QA data of eight vendors (see its
PROVENANCE.md and manifest.json).  :func:`plant_identity` puts a realistic subject identity into a
copy of such a file, in the places real exports carry it -- identifying attributes, nested request
and procedure sequences, free text of kept sequences, private blocks, date-times with time zones --
and in the forms a leak takes there: name parts in another order, separator or case, the given
name alone, IDs without leading zeros, dates in other notations, names in the file's declared
character set.  :func:`identity_forms` lists what must not remain, as bytes, in every encoding.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from visceral.fileio import write_dicom

REALWORLD = Path(__file__).resolve().parent / "data" / "realworld"

#: The SOP classes the release keeps.
KEPT = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1"}


def manifest() -> List[Dict[str, object]]:
    """The corpus manifest: one entry per file (path, vendor, modality, SOP class, eligibility)."""
    return json.loads((REALWORLD / "manifest.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Identity:
    """A subject identity in one character set (``charset`` is the Specific Character Set)."""

    family: str
    given: str
    patient_id: str
    birth: str  # YYYYMMDD
    charset: str = ""

    @property
    def pn(self) -> str:
        return f"{self.family}^{self.given}"

    def birth_forms(self) -> List[str]:
        y, m, d = self.birth[:4], self.birth[4:6], self.birth[6:]
        months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return [self.birth, f"{y}-{m}-{d}", f"{d}.{m}.{y}", f"{int(d)}.{int(m)}.{y}", f"{m}/{d}/{y}",
                f"{int(d)} {months[int(m) - 1]} {y}", f"{months[int(m) - 1]} {int(d)}, {y}"]


LATIN = Identity("Kowalski", "Annemarie", "0012345678", "19650203")
#: Identities in other character sets (the value of Specific Character Set, and a Python codec).
SCRIPTS: Tuple[Tuple[Identity, str], ...] = (
    (Identity("Müllerová", "Jürgenine", "0077001", "19581130", "ISO_IR 100"), "latin-1"),
    (Identity("Иванова", "Светлана", "0077002", "19610722", "ISO_IR 144"), "iso8859-5"),
    (Identity("Παπαδοπούλου", "Γεωργία", "0077003", "19700415", "ISO_IR 126"), "iso8859-7"),
    (Identity("山田", "花子", "0077004", "19750909", "\\ISO 2022 IR 87"), "iso2022_jp"),
    (Identity("王", "小明", "0077005", "19800101", "GB18030"), "gb18030"),
    (Identity("Ngô", "Thị Hương", "0077006", "19821212", "ISO_IR 192"), "utf-8"),
)
INSTITUTION = "St. Hedwig Klinikum Nordstadt"
REFERRER = "Brandtner^Walburga"


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "99LOCAL"
    item.CodeMeaning = meaning
    return item


def plant_identity(src: Path, dst: Path, who: Identity = LATIN) -> Path:
    """A copy of ``src`` carrying ``who`` everywhere real exports carry identity (see the module
    docstring); pixel data and geometry are untouched.  Written in the source's transfer syntax."""
    ds = pydicom.dcmread(str(src))
    if who.charset:
        ds.SpecificCharacterSet = who.charset
    ds.PatientName = who.pn
    ds.PatientID = who.patient_id
    ds.PatientBirthDate = who.birth
    ds.OtherPatientNames = f"{who.family.upper()}^{who.given.upper()}"
    other = Dataset()
    other.PatientID = who.patient_id.lstrip("0")  # without the leading zeros
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.AccessionNumber = "ACC" + who.patient_id[-6:]
    ds.InstitutionName = INSTITUTION
    ds.InstitutionAddress = "Hedwigstrasse 12, 10115 Berlin"
    ds.ReferringPhysicianName = REFERRER
    ds.OperatorsName = "Tech^Tamara"
    request = Dataset()
    request.RequestedProcedureID = who.patient_id
    request.RequestedProcedureDescription = f"CT follow-up {who.given} {who.family}"
    request.ScheduledProcedureStepID = who.patient_id.lstrip("0")
    ds.RequestAttributesSequence = Sequence([request])
    # Free text inside kept sequences, in other orders and notations (Code Meaning is never identifying by rule).
    ds.ProcedureCodeSequence = Sequence([_code("P1", f"Follow-up {who.family}, {who.given} {who.birth_forms()[2]}")])
    ds.AnatomicRegionSequence = Sequence([_code("T-D4000", f"Abdomen {who.given.lower()}-{who.family.upper()} born {who.birth_forms()[5]}")])
    ds.ImageComments = f"Pat. {who.family.upper()} {who.given}, geb. {who.birth_forms()[3]}, ID {who.patient_id.lstrip('0')}"
    ds.AcquisitionDateTime = who.birth + "101500.000000+0200"  # a DT holding the birth date, with a time zone
    ds.DerivationDescription = f"{who.given} {who.family} {who.birth_forms()[1]}"
    block = ds.private_block(0x0029, "ACME IDENTITY 1.0", create=True)
    block.add_new(0x10, "LO", who.pn)
    block.add_new(0x11, "OB", f"{who.family} {who.given}".encode("utf-16-le"))
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_dicom(ds, str(dst), conform=False)
    return dst


def contains(data: bytes, form: bytes) -> bool:
    """``form`` in ``data``; a number only whole (a new UID's 39 random digits hold any 5 digits)."""
    if not form.isdigit():
        return form in data
    return re.search(rb"(?<![0-9])" + form + rb"(?![0-9])", data) is not None


def identity_forms(who: Identity, codec: str = "ascii") -> List[bytes]:
    """Every form of ``who`` that must appear nowhere in a release, as bytes in every encoding a
    file could hold it (lower-case ASCII forms are compared with lower-cased file bytes)."""
    texts = {who.family, who.given, who.patient_id, who.patient_id.lstrip("0"), *who.birth_forms()}
    texts |= {part for part in who.given.split() if len(part) >= 3}
    forms = set()
    for text in texts:
        if len(text) < 2:
            continue
        for encoding in {codec, "utf-8", "utf-16-le", "utf-16-be"}:
            try:
                encoded = text.encode(encoding)
            except UnicodeEncodeError:
                continue
            if encoding == "iso2022_jp":  # the escape sequences around a run are not part of the name
                encoded = encoded.replace(b"\x1b$B", b"").replace(b"\x1b(B", b"")
            forms.add(encoded.lower() if text.isascii() and encoding in ("ascii", "utf-8") else encoded)
    return sorted(forms)
