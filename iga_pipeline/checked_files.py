"""Each delivery's checked rows, kept between builds: after a late delivery only
the new file is read, not the rest of its cycle.

    <staging>/.checked/cycle=<N>/<entry>/   rows, interventions, issues (Parquet), meta.json

An entry is what `ingest` made of one file on its own (`_Book.read_checked`):
the rows its row-rejection schema accepted, only the columns the cycle's rules
use (person_key, codes, dates, row numbers: values checked against code lists
or formats, so no free text and no personal data; the personnummer and the
names never leave the adapter, only `name_spelling`, a small number counted
per person that says whether two of one person's rows spell the names
alike), the file's interventions and issues (as staged anyway) and its row
count. It is found again only for the same file bytes
(SHA-256) under the same name, in the same cycle, with the same pseudonym key
(a keyed fingerprint, never the key) and the same code and reference data.
Anything else, or an entry that cannot be read, and the file is read again.
Whole-file rejections are not kept. Entries the cycle's last ingest did not
use are removed after it.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from iga_pipeline import durable
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.settings import RUN_MAX_SECONDS
from iga_pipeline.sources.common import Delivery

FOLDER = ".checked"
log = logging.getLogger(__name__)
_LIBRARIES = ("pandas", "pandera", "pyarrow", "numpy", "openpyxl")


@dataclass
class Checked:
    """One delivery, read and checked on its own."""

    rows: pd.DataFrame  # accepted rows, the columns the cycle's rules use
    interventions: pd.DataFrame
    gives_90d_status: bool | None
    rows_read: int
    issues: pd.DataFrame  # the file's own issues and row rejections, in order


def code_files() -> list[Path]:
    """This package's modules that `ingest` and this module import, directly or through
    another (read from their import statements, so a new helper module cannot be missed)."""
    return modules_reached(Path(__file__).parent.parent, ["iga_pipeline.ingest", "iga_pipeline.checked_files"])


def modules_reached(root: Path, start: list[str]) -> list[Path]:
    """The files of the modules under `root` that `start` imports, directly or through
    another: absolute and relative imports, at the top or inside a function, and the
    packages that hold them."""
    top = start[0].split(".")[0]
    todo, seen, found = list(start), set(), []
    while todo:
        name = todo.pop()
        path = root.joinpath(*name.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        found.append(path)
        todo += [name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)]  # parents run first
        package_of = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:  # relative: 'from . import x', 'from ..whitespace import X'
                    base = package_of.rsplit(".", node.level - 1)[0] if node.level > 1 else package_of
                    module = f"{base}.{module}" if module else base
                if module.split(".")[0] == top:
                    todo += [module, *(f"{module}.{a.name}" for a in node.names)]  # a module or a name
            elif isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.split(".")[0] == top]
    return sorted(found)


def fingerprinted_files() -> list[Path]:
    """What `code_fingerprint` hashes: `code_files` and the reference data."""
    reference = Path(__file__).parent / "reference"
    return sorted({*code_files(), *(p for p in reference.glob("*") if p.is_file())})


@functools.cache
def code_fingerprint() -> str:
    """The code and data that turn a file into a `Checked`: adapters, rules, reference data."""
    h = hashlib.sha256()
    root = Path(__file__).parent.parent
    for path in fingerprinted_files():
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    for library in _LIBRARIES:
        h.update(f"{library}={importlib.metadata.version(library)};".encode())
    h.update(sys.version.encode())  # the json and csv modules come with Python
    return h.hexdigest()


def _settings() -> str:
    """Settings that change what a file gives (the workbook limits); files too large
    to read (IGA_MAX_FILE_MB) are refused before anything is kept or looked up."""
    from iga_pipeline import settings

    return f"rows<={settings.max_workbook_rows()};unpacked<={settings.max_workbook_bytes()}"


class CheckedFiles:
    """The kept entries of one cycle."""

    def __init__(self, staging: Path, cycle: int, key: PseudonymKey):
        self.folder = Path(staging) / FOLDER / f"cycle={cycle}"
        self.salt = f"{code_fingerprint()}|{_settings()}|{key.fingerprint('checked files')}|{cycle}"
        self.used: set[str] = set()

    def _entry(self, d: Delivery, sha256: str) -> str:
        text = f"{self.salt}|{d.source_file}|{d.kind}|{d.timepoint}|{d.municipality_code}|{sha256}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def load(self, d: Delivery, sha256: str) -> Checked | None:
        name = self._entry(d, sha256)
        folder = self.folder / name
        if not folder.is_dir():
            return None
        try:
            meta = json.loads((folder / "meta.json").read_text())
            frames = {f: pd.read_parquet(folder / f"{f}.parquet") for f in meta["frames"]}  # each there
            checked = Checked(
                rows=frames["rows"], interventions=frames.get("interventions", pd.DataFrame()),
                gives_90d_status=meta["gives_90d_status"], rows_read=int(meta["rows_read"]),
                issues=frames["issues"],
            )
        except Exception as e:  # noqa: BLE001 - damaged or incomplete: drop it, read the delivery again
            log.warning("kept entry for %s unreadable (%s); the file is read again", d.source_file,
                        type(e).__name__)
            _discard(folder)
            return None
        self.used.add(name)
        return checked

    def store(self, d: Delivery, sha256: str, checked: Checked) -> None:
        """Keep an entry, if possible: a failure only means the file is read next time."""
        name = self._entry(d, sha256)
        final = self.folder / name
        tmp = self.folder / f".{name}.{uuid.uuid4().hex}.tmp"
        try:
            if not final.exists():
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp.mkdir()
                frames = {"rows": checked.rows, "issues": checked.issues}  # rows: the index too, their labels
                if len(checked.interventions.columns):  # registers have none: no column-less file
                    frames["interventions"] = checked.interventions
                for f, frame in frames.items():
                    frame.to_parquet(tmp / f"{f}.parquet")
                (tmp / "meta.json").write_text(json.dumps({"frames": sorted(frames),  # what `load` must find
                                                           "gives_90d_status": checked.gives_90d_status,
                                                           "rows_read": checked.rows_read}))
                durable.replace(tmp, final)
            self.used.add(name)
        except OSError as e:  # full disk, read-only, another run storing or pruning the same
            log.warning("could not keep the checked rows of %s (%s)", d.source_file, type(e).__name__)
            shutil.rmtree(tmp, ignore_errors=True)

    def prune(self) -> None:
        """Remove what this cycle's ingest did not use (older versions of its files), and
        half-written entries RUN_MAX_SECONDS old (a younger one may be another run's, in progress)."""
        if not self.folder.is_dir():
            return
        now = time.time()
        for path in self.folder.iterdir():
            if path.name in self.used:
                continue
            try:
                if path.name.endswith(".tmp") and now - path.stat().st_mtime < RUN_MAX_SECONDS:
                    continue
            except OSError:
                continue
            if path.name.endswith(".tmp"):
                shutil.rmtree(path, ignore_errors=True)
            else:
                _discard(path)


def _discard(entry: Path) -> None:
    """Remove an entry: renamed first to a name `load` never opens, then removed. A removal
    cut short (a kill) then leaves a `.tmp` folder, which `prune` sweeps an hour on, never a
    half-removed entry under its own name, which `load` would read as the file's rows: one
    without its interventions failed every later build of its cycle (a review, F6)."""
    gone = entry.with_name(f".{entry.name}.{uuid.uuid4().hex}.tmp")
    try:
        os.replace(entry, gone)
    except OSError:  # removed meanwhile (another run pruning), or not ours to rename
        return
    shutil.rmtree(gone, ignore_errors=True)
