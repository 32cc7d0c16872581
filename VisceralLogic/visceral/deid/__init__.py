"""DICOM de-identification with a QA gate (seed section 2).

Public API: :func:`deidentify` (the batch, as ``visceral deidentify`` runs it), :class:`DeidReport`,
:func:`load_profile`.  See :mod:`visceral.deid.pipeline` for the steps, :mod:`visceral.deid.rules`
for the header actions and :mod:`visceral.deid.qa` for the QA gate.
"""

from visceral.deid.pipeline import FATES, DeidReport, FileResult, default_private_dir, deidentify
from visceral.deid.profile import Profile, ProfileError, default_profile, load_profile

__all__ = ["FATES", "DeidReport", "FileResult", "Profile", "ProfileError", "default_private_dir", "default_profile", "deidentify", "load_profile"]
