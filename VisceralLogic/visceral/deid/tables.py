"""The standard's tables used by de-identification (generated: ``tools/generate_deid_tables.py``).

- Annex E Table E.1-1 of PS3.15 (action codes per attribute), from ``Resources/deid_tables.json``;
- SOP class names (PS3.4);
- the SOP classes kept and the transfer syntaxes accepted (seed section 2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Dict, FrozenSet, List, Optional, Tuple

__all__ = [
    "AnnexERule",
    "annex_e",
    "sop_class_name",
    "KEPT_SOP_CLASSES",
    "SEED_REMOVABLE_SOP_CLASSES",
    "LOSSLESS_TRANSFER_SYNTAXES",
    "rule_for",
    "vr_text",
    "NUMERIC_VRS",
    "BINARY_VRS",
    "STRING_VRS",
    "DATE_TIME_VRS",
]

#: Seed section 2: "Some basic DICOM objects will have to be always present within the data set".
KEPT_SOP_CLASSES: Dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.2": "CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR Image Storage",
}

#: Seed section 2: "Additional DICOM objects may be removed" -- the list it gives.
SEED_REMOVABLE_SOP_CLASSES: FrozenSet[str] = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.11.1", "1.2.840.10008.5.1.4.1.1.11.2",
        "1.2.840.10008.5.1.4.1.1.11.3", "1.2.840.10008.5.1.4.1.1.11.4", "1.2.840.10008.5.1.4.1.1.11.5",
        "1.2.840.10008.5.1.4.1.1.66", "1.2.840.10008.5.1.4.1.1.66.1", "1.2.840.10008.5.1.4.1.1.66.2",
        "1.2.840.10008.5.1.4.1.1.66.3", "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.5",
        "1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.5.1.4.1.1.88.33",
        "1.2.840.10008.5.1.4.1.1.88.40", "1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.5.1.4.1.1.88.65",
        "1.2.840.10008.5.1.4.1.1.88.67", "1.2.840.10008.5.1.4.1.1.88.69", "1.2.840.10008.5.1.4.1.1.88.70",
        "1.2.840.10008.5.1.4.1.1.104.1", "1.2.840.10008.5.1.4.1.1.104.2",
    }
)

#: Seed section 2: "DICOM objects will have to be disclosed either uncompressed or using lossless compression".
LOSSLESS_TRANSFER_SYNTAXES: Dict[str, str] = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian (retired; uncompressed)",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.5": "RLE Lossless",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless, Non-Hierarchical (Process 14)",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless, First-Order Prediction (Process 14 SV1)",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 (Lossless Only)",
    "1.2.840.10008.1.2.4.201": "High-Throughput JPEG 2000 (Lossless Only)",
    "1.2.840.10008.1.2.4.202": "High-Throughput JPEG 2000 with RPCL Options (Lossless Only)",
}


#: Value representations by kind (PS3.5 Table 6.2-1).
NUMERIC_VRS = frozenset(("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"))
BINARY_VRS = frozenset(("OB", "OW", "OF", "OD", "OL", "OV", "UN"))
STRING_VRS = frozenset(("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"))
DATE_TIME_VRS = frozenset(("DA", "DT", "TM"))


@dataclass(frozen=True)
class AnnexERule:
    """One row of PS3.15 Table E.1-1: the basic-profile action and the option columns."""

    name: str
    tag: str
    basic: str
    options: Tuple[Tuple[str, str], ...]
    keyword: str = ""

    def option(self, column: str) -> Optional[str]:
        return self._option_map.get(column)

    @cached_property
    def _option_map(self) -> Dict[str, str]:
        return dict(self.options)


@lru_cache(maxsize=1)
def _tables() -> dict:
    from visceral.resources import resource_path

    return json.loads(resource_path("deid_tables.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def annex_e() -> Tuple[Dict[int, AnnexERule], List[Tuple[int, int, AnnexERule]]]:
    """Annex E rules: exact tags -> rule, and (value, mask, rule) for repeating groups (50xx, 60xx)."""
    exact: Dict[int, AnnexERule] = {}
    masked: List[Tuple[int, int, AnnexERule]] = []
    for row in _tables()["annex_e"]:
        options = tuple((k, v) for k, v in row.items() if k.endswith("Opt"))
        rule = AnnexERule(row["name"], row["tag"], row["basic"], options, row.get("keyword", ""))
        if "mask" in row:
            masked.append((int(row["mask"], 16), int(row["mask_bits"], 16), rule))
        elif "special" not in row:
            exact[int(row["tag"][1:5] + row["tag"][6:10], 16)] = rule
    return exact, masked


@lru_cache(maxsize=16384)
def rule_for(tag: int) -> Optional[AnnexERule]:
    """The Annex E rule of a (public) tag, or ``None`` when the table does not list it."""
    exact, masked = annex_e()
    rule = exact.get(tag)
    if rule is not None:
        return rule
    for value, mask, masked_rule in masked:
        if tag & mask == value:
            return masked_rule
    return None


def vr_text(vr: object) -> str:
    """A VR as its two letters: pydicom 2.4 gives an enum whose ``str`` on Python 3.9 is ``VR.OB``."""
    if not vr:
        return ""
    return str(getattr(vr, "value", vr))


def sop_class_name(uid: str) -> str:
    """The SOP class name of ``uid`` (PS3.4), or ``"unknown SOP class <uid>"``."""
    return _tables()["sop_classes"].get(uid, f"unknown SOP class {uid}")
