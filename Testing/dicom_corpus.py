"""The test-data generators live in the package (``visceral.demo.corpus``), shared with ``bench/``."""

from visceral.demo.corpus import *  # noqa: F401,F403
from visceral.demo.corpus import CT_STORAGE, MR_STORAGE, SC_STORAGE, Patient, SeriesSpec  # noqa: F401
