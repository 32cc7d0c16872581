"""Data tables shipped with Visceral (installed as the package ``visceral.resources``).

- ``radlex_structures.csv`` -- the structure registry (RadLex and SNOMED CT codes).
- ``landmarks.csv`` -- the landmark ID registry.
"""

from pathlib import Path

#: Folder holding the resource files.
RESOURCE_DIR = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """Return the path of the shipped resource file ``name``."""
    path = RESOURCE_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"Visceral resource {name!r} is missing from {RESOURCE_DIR}")
    return path
