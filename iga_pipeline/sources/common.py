"""What every adapter shares: the file inventory and the issue records.

An adapter turns the bytes of one delivery into a frame of its rows plus
issues (the delivery's own columns; `ingest.py` harmonises them).
Personnummer and names never leave an adapter: they are replaced by
`person_key` (see `iga_pipeline.pseudonym`) before the frame is returned, and
no issue detail ever echoes a raw value that could be one (`masking.py`).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from iga_pipeline import personnummer, reference, settings
from iga_pipeline.pseudonym import PseudonymKey, key_from_env
from iga_pipeline.sources.masking import safe_path, safe_value

ISSUE_COLUMNS = ["source_file", "source_row", "severity", "reason", "detail"]


class FileRejected(Exception):
    """The whole file cannot be used. `reason` is a contract reason code."""

    def __init__(self, reason: str, detail: str, rows_read: int = 0):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.rows_read = rows_read


# The kind of a folder under the raw root that could not be listed (raw/inventory rejects it).
UNLISTED_FOLDER = "unlisted_folder"


@dataclass(frozen=True)
class Delivery:
    """One raw file, classified by its path (raw-deliveries.md)."""

    path: Path  # absolute
    source_file: str  # relative to the raw root, POSIX separators
    kind: str  # register | petho | folkuniversitetet | astorp | survey | unexpected | unlisted_folder
    cycle: int | None
    municipality_code: str | None = None  # registers: the folder's kommunkod
    timepoint: str | None = None  # providers: 'end', '90d' or 'both' (Pethö)
    problem: tuple[str, str] | None = None  # a whole-file reason known from the path alone
    refused: bool = False  # not to be opened at all (a link out of the raw root, too large)


# <N> is the cycle as the contract writes it (1..8): ASCII digits, no leading zero. 'cykel02' or a
# digit of another script would be a second name for one delivery (two files of one cycle and
# time point): such a file is unexpected_file instead.
_PATTERNS = [
    ("register", re.compile(r"^kommuner/(?P<kommun>[^/]+)/deltagare_cykel(?P<cycle>[1-9][0-9]*)\.csv$")),
    ("petho", re.compile(r"^leverantorer/petho/cykel(?P<cycle>[1-9][0-9]*)_resultat\.xlsx$")),
    (
        "folkuniversitetet",
        re.compile(r"^leverantorer/folkuniversitetet/cykel(?P<cycle>[1-9][0-9]*)_(?P<tp>slut|90dagar)\.csv$"),
    ),
    ("astorp", re.compile(r"^leverantorer/astorp/cykel(?P<cycle>[1-9][0-9]*)(?P<tp>_90dagar)?\.json$")),
    ("survey", re.compile(r"^enkater/enkat_cykel(?P<cycle>[1-9][0-9]*)\.csv$")),
]


def _refusal(raw_root: Path, path: Path) -> tuple[str, str] | None:
    """A reason not to open a file at all: a link out of the raw root, or too large."""
    try:
        return _refusal_of(raw_root, path)
    except (OSError, RuntimeError) as e:  # RuntimeError: pathlib's "Symlink loop from <path>"
        # Never the message: it names the path, which may name a person.
        return ("unreadable_file", f"the file could not be examined ({type(e).__name__}): a link that "
                                   "loops, or a file gone since the raw root was listed")


def _refusal_of(raw_root: Path, path: Path) -> tuple[str, str] | None:
    if path.is_symlink():
        target = path.resolve()
        root = raw_root.resolve()
        if not target.is_relative_to(root):
            return ("unreadable_file", "a symbolic link to a path outside the raw root; not followed")
        if not target.is_file():
            return ("unreadable_file", "a symbolic link that points to no file")
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):  # a pipe would hang the build, a socket break it
        return ("unreadable_file", "not a regular file (a pipe, device, socket or folder)")
    limit = settings.max_file_bytes()
    size = st.st_size
    if size > limit:
        return ("unreadable_file", f"the file has {size:,} bytes, above the limit of "
                                   f"{limit:,} bytes (IGA_MAX_FILE_MB)")
    return None


def classify(raw_root: Path, path: Path, key: PseudonymKey | None = None) -> Delivery:
    """Classify one file under the raw root by its relative path (`key`: the pseudonym key
    names the senders' own names are hashed with, see safe_path; by default IGA_PSEUDONYM_KEY's)."""
    delivery = _classify_path(raw_root, path, key_from_env() if key is None else key)
    refusal = _refusal(Path(raw_root), path)
    if refusal:
        return replace(delivery, problem=refusal, refused=True)
    return delivery


def _classify_path(raw_root: Path, path: Path, key: PseudonymKey) -> Delivery:
    rel = path.relative_to(raw_root).as_posix()
    shown = safe_path(rel, key)  # what is recorded as source_file
    for kind, pattern in _PATTERNS:
        m = pattern.fullmatch(rel)  # not match: '$' also matches before a final newline
        if not m:
            continue
        cycle = int(m.group("cycle"))
        cycles = reference.cycles()
        if cycle not in cycles:
            return Delivery(path, shown, "unexpected", None, problem=(
                "unexpected_file", f"cycle {safe_value(cycle)} is not one of the project's cycles "
                                   f"1-{max(cycles)}"))
        problem = None
        kommun = None
        timepoint = None
        if kind == "register":
            kommun = m.group("kommun")
            if kommun not in reference.municipalities():
                problem = ("unknown_municipality",
                           "the folder is not the kommunkod of a project municipality")
        else:
            if kind == "petho":
                timepoint = "both"
            elif kind == "folkuniversitetet":
                timepoint = "end" if m.group("tp") == "slut" else "90d"
            elif kind == "astorp":
                timepoint = "90d" if m.group("tp") else "end"
            if kind != "survey" and cycles[cycle].source_kind != kind:
                problem = (
                    "provider_cycle_mismatch",
                    f"cycle {cycle} was run by {cycles[cycle].provider}, not by this provider",
                )
        return Delivery(path, shown, kind, cycle, kommun, timepoint, problem)
    return Delivery(path, shown, "unexpected", None, problem=(
        "unexpected_file", "the path matches no delivery pattern of the contract"))


def _named_as_a_delivery(raw_root: Path, path: Path) -> bool:
    rel = path.relative_to(raw_root).as_posix()
    return any(pattern.fullmatch(rel) for _, pattern in _PATTERNS)


def _is_link(path: Path) -> bool:
    """Whether `path` is a symbolic link; False when it cannot be examined (a folder that may
    not be entered, a path too long): os.walk then reports the folder as not listed. Never
    the exception itself: its message names the path, which may name a person."""
    try:
        return path.is_symlink()
    except OSError:
        return False


def discover(raw_root: Path, key: PseudonymKey | None = None) -> list[Delivery]:
    """Every file under the raw root, classified, in a stable order (`key`: as for classify).

    Symbolic links are listed (so that one pointing out of the raw root is
    recorded as refused) but folders behind links are not walked. A folder named as a
    delivery is listed too (refused: not a regular file), or an empty one would leave the
    cycle without that delivery and no trace of why (a review)."""
    raw_root = Path(raw_root)
    files = []
    unlisted: dict[Path, OSError] = {}

    def note(error: OSError) -> None:  # a folder os.walk could not list (permissions)
        if error.filename and Path(error.filename) != raw_root:
            unlisted[Path(error.filename)] = error

    for folder, dirs, names in os.walk(raw_root, followlinks=False, onerror=note):
        dirs.sort()
        files += [Path(folder) / n for n in names]
        files += [Path(folder) / d for d in dirs
                  if _is_link(Path(folder) / d) or _named_as_a_delivery(raw_root, Path(folder) / d)]
    key = key_from_env() if key is None else key
    found = [classify(raw_root, p, key) for p in sorted(files)]
    # Its files are missing from the build: say so, or they would vanish without a trace.
    found += [Delivery(p, safe_path(p.relative_to(raw_root).as_posix(), key), UNLISTED_FOLDER, None, refused=True,
                       problem=("unreadable_file", f"a folder that could not be listed ({type(e).__name__}): "
                                                   "whatever it holds is missing from this build"))
              for p, e in sorted(unlisted.items())]
    return found


def issues_frame(rows: list[dict] | None = None) -> pd.DataFrame:
    return pd.DataFrame(rows or [], columns=ISSUE_COLUMNS).astype(
        {"source_file": "string", "source_row": "string", "severity": "string",
         "reason": "string", "detail": "string"}
    )


def identity(delivery: Delivery, source_row: pd.Series, pnr_values: pd.Series,
             key: PseudonymKey) -> pd.DataFrame:
    """An adapter's `source_row`, `person_key` and `pnr_error`: the personnummer goes no further."""
    start = reference.cycles()[delivery.cycle].start
    pnr = personnummer.normalise(pnr_values.reset_index(drop=True), start)
    return pd.DataFrame({
        "source_row": source_row.reset_index(drop=True).astype(str).astype("string"),
        "person_key": key.person_keys(pnr["pnr"]),
        "pnr_error": pnr["error"],
    })


@dataclass
class AdapterOutput:
    """What an adapter returns for one file.

    `rows` has one row per data row read (valid or not), except the rows the adapter
    rejects itself (a malformed CSV line; an Åstorp entry that is no object, or gives a key
    twice with different values), which are `rejected` issues only: rows read are `rows`
    and those issues (`ingest._rows_read`). Its columns are the delivery's own, with
    `source_row` and, from the register and provider adapters, `person_key` (NA where the
    personnummer was invalid) and `pnr_error` (the survey's: `svar_id` and
    `svar_id_error`). Validation decides which rows are rejected."""

    rows: pd.DataFrame
    interventions: pd.DataFrame = field(default_factory=pd.DataFrame)
    issues: pd.DataFrame = field(default_factory=issues_frame)
    gives_90d_status: bool | None = None  # a delivery with 90-day statuses: whether any row gives one


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
