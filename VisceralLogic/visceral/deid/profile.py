"""De-identification profiles: which Annex E options apply, and the VISCERAL-specific choices.

A profile is a JSON file (``--profile``); the default is ``Resources/deid_profile_default.json``.
Keys (all optional in a user profile; missing keys take the default's value):

``dates``
    ``"shift"`` -- Retain Longitudinal Temporal Information with Modified Dates: every date of a
    patient moves by one offset (days) derived from the secret key, the same in every study, run
    and nested sequence, so intervals and ages stay right; ``"remove"`` -- the basic profile's action.
``date_shift_days``
    ``[min, max]`` range of the offset, in days.
``keep_patient_characteristics``
    Keywords kept of the attributes Annex E's Retain Patient Characteristics option lists.  Default:
    age and sex, which annotators need; size and weight are quasi-identifiers.
``max_age_years``
    Ages above it become ``090Y`` (HIPAA Safe Harbor aggregates ages over 89).
``descriptions``
    keyword -> ``{regular expression: controlled value}``; the first expression matching the whole
    text gives the standardized value, unmapped text is removed (Clean Descriptors option).
``empty``
    Keywords whose content is removed while the attribute stays, zero-length, so Type 2 attributes
    remain (seed: "Scan Options", "Protocol Name"; Scan Options is Type 2 in the MR Image Module).
``burned_in_annotation``
    ``"fail"`` (refuse), ``"warn"`` (release, warn) or ``"allow"``.
``uid_root``
    Root of new UIDs; ``"2.25"`` (UUID-derived UIDs, PS3.5 B.2) needs no registration.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Dict, FrozenSet, Optional, Pattern, Tuple

from pydicom.datadict import tag_for_keyword

from visceral.conventions.textfile import read_json_object
from visceral.errors import VisceralError
from visceral.types import PathLike

__all__ = ["Profile", "ProfileError", "load_profile", "default_profile"]


class ProfileError(VisceralError):
    """A de-identification profile is wrong."""


@dataclass(frozen=True)
class Profile:
    """A validated de-identification profile (see the module docstring).  Its defaults are those of
    ``Resources/deid_profile_default.json`` alone: :func:`load_profile` lays a user's keys over it."""

    name: str
    dates: str
    date_shift_days: Tuple[int, int]
    keep_patient_characteristics: Tuple[str, ...]
    max_age_years: int
    descriptions: Dict[str, Tuple[Tuple[Pattern, str], ...]]
    empty: Tuple[str, ...]
    burned_in_annotation: str
    uid_root: str
    source: str = ""

    @cached_property
    def empty_tags(self) -> FrozenSet[int]:
        """The tags of :attr:`empty` (keywords are checked when the profile is loaded)."""
        return frozenset(tag_for_keyword(k) for k in self.empty)

    def standardize(self, keyword: str, text: str) -> Optional[str]:
        """The controlled value of ``text`` for attribute ``keyword``, or ``None`` (remove it)."""
        for pattern, value in self.descriptions.get(keyword, ()):
            if pattern.fullmatch(text.strip()):
                return value
        return None


def _keywords(values: object, key: str, source: str) -> Tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ProfileError(f"{source}: {key!r} must be a list of DICOM keywords")
    for keyword in values:
        if tag_for_keyword(keyword) is None:
            raise ProfileError(f"{source}: {key!r}: {keyword!r} is not a DICOM keyword")
    return tuple(values)


def _build(data: dict, source: str) -> Profile:
    known = {"name", "description", "dates", "date_shift_days", "keep_patient_characteristics", "max_age_years",
             "descriptions", "empty", "burned_in_annotation", "uid_root"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProfileError(f"{source}: unknown profile key(s) {', '.join(map(repr, unknown))}")
    dates = data["dates"]
    if dates not in ("shift", "remove"):
        raise ProfileError(f"{source}: 'dates' must be 'shift' or 'remove', not {dates!r}")
    shift = data["date_shift_days"]
    if not (isinstance(shift, list) and len(shift) == 2 and all(isinstance(v, int) for v in shift) and shift[0] <= shift[1] and 0 not in range(shift[0], shift[1] + 1)):
        raise ProfileError(f"{source}: 'date_shift_days' must be [min, max] integers not spanning 0")
    policy = data["burned_in_annotation"]
    if policy not in ("fail", "warn", "allow"):
        raise ProfileError(f"{source}: 'burned_in_annotation' must be fail, warn or allow, not {policy!r}")
    uid_root = data["uid_root"]
    if not re.fullmatch(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*", str(uid_root)) or len(uid_root) > 24:
        raise ProfileError(f"{source}: 'uid_root' {uid_root!r} is not a valid UID root of at most 24 characters")
    descriptions: Dict[str, Tuple[Tuple[Pattern, str], ...]] = {}
    raw_desc = data["descriptions"]
    if not isinstance(raw_desc, dict):
        raise ProfileError(f"{source}: 'descriptions' must map keywords to {{pattern: value}}")
    for keyword, mapping in raw_desc.items():
        _keywords([keyword], "descriptions", source)
        if not isinstance(mapping, dict):
            raise ProfileError(f"{source}: descriptions of {keyword} must be {{pattern: value}}")
        compiled = []
        for pattern, value in mapping.items():
            try:
                compiled.append((re.compile(pattern), str(value)))
            except re.error as exc:
                raise ProfileError(f"{source}: bad pattern {pattern!r} for {keyword}: {exc}") from None
        descriptions[keyword] = tuple(compiled)
    max_age = data["max_age_years"]
    if not isinstance(max_age, int) or not 0 < max_age < 200:
        raise ProfileError(f"{source}: 'max_age_years' must be an integer year")
    return Profile(
        name=str(data.get("name", Path(source).stem)),
        dates=dates,
        date_shift_days=(shift[0], shift[1]),
        keep_patient_characteristics=_keywords(data["keep_patient_characteristics"], "keep_patient_characteristics", source),
        max_age_years=max_age,
        descriptions=descriptions,
        empty=_keywords(data["empty"], "empty", source),
        burned_in_annotation=policy,
        uid_root=str(uid_root),
        source=source,
    )


def load_profile(path: Optional[PathLike] = None) -> Profile:
    """Load a profile JSON; keys it lacks take the default profile's values."""
    from visceral.resources import resource_path

    default_path = resource_path("deid_profile_default.json")
    data = json.loads(default_path.read_text(encoding="utf-8"))
    source = str(default_path)
    if path is not None:
        data.update(read_json_object(path, "profile", ProfileError))
        source = str(path)
    return _build(data, source)


def default_profile() -> Profile:
    """The shipped default profile."""
    return load_profile(None)
