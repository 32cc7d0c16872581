"""The QA gate's conformance half with ``dciodvfy`` (Debian's dicom3tools), where it is installed.

The gate itself is in :mod:`visceral.deid.pipeline`: the in-process IOD check of
:mod:`visceral.deid.conformance` on every output, ``dciodvfy`` as a second opinion, and the
identity search of :mod:`visceral.deid.identifiers`.  Here: running ``dciodvfy``, comparing its
errors on input and output (an error the input already had is not the de-identification's), and
reading from its messages the IOD repairs an output needs (:func:`repair_targets`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from typing import Iterable, List, Optional, Tuple

from pydicom.dataset import Dataset

from visceral.deid.tables import BINARY_VRS

from visceral.types import PathLike

__all__ = ["dciodvfy_path", "conformance_errors", "added_errors", "repair_targets", "decoded_values"]

def dciodvfy_path() -> Optional[str]:
    """Path of ``dciodvfy`` or ``None``."""
    return shutil.which("dciodvfy")


#: Values dciodvfy quotes in an error line: "text", <value>, <name=value>, 'c' (0xNN) (an offending character).
_QUOTED = re.compile(r'"[^"]*"|<[^<>]*>|\'[^\']*\'|\(0x[0-9A-Fa-f]{2}\)')
_NUMBERS = re.compile(r"\b\d+(\.\d+)*\b")


def _normalize(line: str) -> str:
    """An error line without the values it quotes, so input and output errors compare."""
    return _NUMBERS.sub("#", _QUOTED.sub('"…"', line.strip()))


def conformance_errors(path: PathLike, timeout_s: float = 120.0) -> List[str]:
    """The ``Error`` lines ``dciodvfy`` prints for ``path`` (as printed).

    Raises:
        FileNotFoundError: dciodvfy is not installed.
    """
    tool = dciodvfy_path()
    if tool is None:
        raise FileNotFoundError("dciodvfy (Debian package dicom3tools) is not installed")
    result = subprocess.run([tool, str(path)], capture_output=True, text=True, errors="replace", timeout=timeout_s)
    lines = (result.stdout + "\n" + result.stderr).splitlines()
    return [line.strip() for line in lines if line.startswith("Error")]


def added_errors(before: List[str], after: List[str]) -> List[str]:
    """The lines of ``after`` that ``before`` does not have as often (values in the lines ignored)."""
    remaining = Counter(_normalize(line) for line in before)
    added = []
    for line in after:
        key = _normalize(line)
        if remaining[key] > 0:
            remaining[key] -= 1
        else:
            added.append(line)
    return added


_ELEMENT = re.compile(r"Element=<(\w+)>")


def repair_targets(errors: List[str]) -> Tuple[List[str], List[Tuple[str, int]]]:
    """Keywords to delete and (keyword, type) to restore, from dciodvfy error lines.

    The Annex E table cannot say whether an attribute is Type 1, 2 or 3 in the object's IOD; the
    validator can.  ``Attribute present when condition unsatisfied`` -> the attribute (given a dummy
    value) must go; ``Missing attribute``/``Missing value`` of a Type 1 or 2 element -> it must be
    present (Type 2: empty; Type 1: a dummy value).
    """
    delete, restore = [], []
    for line in errors:
        match = _ELEMENT.search(line)
        if not match:
            continue
        keyword = match.group(1)
        if "present when condition unsatisfied" in line or "may not be present" in line:
            delete.append(keyword)
        elif "Missing attribute" in line or "Missing value" in line or "Empty attribute" in line:
            kind = 1 if re.search(r"Type 1C? ", line) else 2
            restore.append((keyword, kind))
    return delete, restore
def decoded_values(ds: Dataset) -> Iterable[tuple]:
    """(keyword, tag, text) of every string value of the data set, its sequences and file meta."""
    datasets = [ds]
    if getattr(ds, "file_meta", None) is not None:
        datasets.append(ds.file_meta)
    for top in datasets:
        for elem in top.iterall():
            if elem.VR == "SQ" or elem.VR in BINARY_VRS or elem.value is None:
                continue
            values = elem.value if type(elem.value).__name__ == "MultiValue" else [elem.value]
            for v in values:
                yield elem.keyword or str(elem.tag), int(elem.tag), str(v)
