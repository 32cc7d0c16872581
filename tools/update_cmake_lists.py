#!/usr/bin/env python3
"""Rewrite the file lists of VisceralModule/CMakeLists.txt from the source tree.

Every Python file of the ``visceral`` package and every shared resource must be listed there, or it
silently drops out of the installed Slicer extension; ``Testing/test_slicer_module.py`` fails when
the lists drift.  Run: ``python tools/update_cmake_lists.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CMAKE = ROOT / "VisceralModule" / "CMakeLists.txt"


def main() -> None:
    package = sorted(p.relative_to(ROOT / "VisceralLogic").as_posix() for p in (ROOT / "VisceralLogic" / "visceral").rglob("*.py"))
    resources = sorted(p.name for p in (ROOT / "Resources").iterdir() if p.is_file() and p.suffix in (".py", ".csv", ".json", ".txt"))
    text = CMAKE.read_text()
    for name, files in (("VISCERAL_PACKAGE_SCRIPTS", package), ("VISCERAL_RESOURCE_FILES", resources)):
        body = "".join(f"  {f}\n" for f in files)
        text, count = re.subn(r"(set\(" + name + r"\n).*?(  \))", lambda m, body=body: m.group(1) + body + m.group(2), text, flags=re.S)
        assert count == 1, name
    CMAKE.write_text(text)
    print(f"{CMAKE}: {len(package)} package files, {len(resources)} resources")


if __name__ == "__main__":
    main()
