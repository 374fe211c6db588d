"""Staging: the harmonised frames of each cycle as Parquet, one folder per partition.

    <staging>/cycle=<N>/<frame>.parquet     written by ingestion of cycle N
    <staging>/cycle=<N>/.pandera-<frame>.ok a frame checked (`validate_staged`)
    <staging>/cycle=<N>/.pseudonym-key      which kind of key made its person_keys
    <staging>/cycle=<N>/.ingest-code        which code made it (checked_files.code_fingerprint)
    <staging>/inventory_issues.parquet      files that belong to no cycle
    <staging>/delivery_log.parquet          every version of every delivery (history.py)
    <staging>/.checked/                     each raw file's checked rows (checked_files.py)
    <staging>/.lock, .lock-cycle=<N>, .delivery_log.lock   the locks below

Each folder is written to a temporary sibling and renamed into place, so a
crash mid-write never leaves a half-written partition behind. Runs may overlap
under `dagster dev` (the delivery sensor's, the nightly build, the warehouse
automation), so two locks (`locked`) order them: a cycle's lock, held for the
whole of an ingest of that cycle, so a second ingest lists the raw files only
after the first has written (the newer listing is the one that stays); and
the staging lock, held exclusively for the renames and the delivery log's
record of the cycle, and shared by whatever reads several cycles (the
warehouse build), which so never sees a cycle mid-swap, nor swapped but not
yet logged. Locks are taken in that order, the log's (`history.record`) last.
A kill between the swap and the log's record leaves a marker in the folder
(`UNLOGGED`), and the marts step records what the log lacks (`log_unlogged`).

The module has three parts: writing a cycle's folder (`write_cycle`, with
`recover` and `log_unlogged` for what a killed build left); the pandera checks of staged files
that the asset checks and the marts rely on (`validate_staged`, stamps that
spare re-reading a file already checked, `not_ready`); and staging cycles,
in this process or in worker processes (`stage_cycles`, `ingest_workers`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pandera
import pyarrow as pa
import pyarrow.parquet as pq
from pandera.errors import SchemaErrors

from iga_pipeline import checked_files, durable, history, settings, validation
from iga_pipeline.ingest import CycleIngest, ingest_cycle, participation_id_prefix
from iga_pipeline.locks import flock
from iga_pipeline.pseudonym import PseudonymKey, development_key
from iga_pipeline.settings import RUN_MAX_SECONDS
from iga_pipeline.sources.common import UNLISTED_FOLDER, discover, issues_frame
from iga_pipeline.validation import HARMONISED_MODELS, Participation
from iga_pipeline import workers as stage_workers


def cycle_dir(staging: Path, cycle: int) -> Path:
    return Path(staging) / f"cycle={cycle}"


def cycle_of(folder_name: str) -> int:
    """The cycle of a staging folder's name (`cycle=N`, `cycle_dir`)."""
    return int(folder_name.split("=", 1)[1])


@contextmanager
def locked(staging: Path, shared: bool = False, cycle: int | None = None) -> Iterator[None]:
    """The staging folder's lock (`<staging>/.lock`, flock): exclusive for the renames
    that swap a cycle folder, shared for whatever reads the staged files of several
    cycles at once. With `cycle`, that cycle's lock (`.lock-cycle=N`), held around a
    whole ingest of it; taken before the staging lock, never after. Not re-entrant: a
    process must not take a lock it holds."""
    with flock(Path(staging) / (".lock" if cycle is None else f".lock-cycle={cycle}"), shared):
        yield


def recover(staging: Path) -> list[int]:
    """Undo what a kill between write_cycle's two renames left: `cycle=N` moved
    away to `.cycle=N.*.old` and the new folder not yet in place. The old
    folder goes back (the last set aside, if several: `durable.left_aside`). Returns the
    cycles restored.

    Half-written folders (`.cycle=N.*.tmp`, a kill while a cycle was written), the scratch
    folders of worker processes (`.workers.*.tmp`, a build killed outright) and half-written
    files (`.delivery_log.parquet.*.tmp`, `.inventory_issues.parquet.*.tmp`, a pandera stamp's
    `cycle=N/.pandera-*.ok.*.tmp`) go once they are
    RUN_MAX_SECONDS old: a younger one may be another run's, being written."""
    staging = Path(staging)
    restored = []

    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed meanwhile by the run that swapped it out
            return 0.0

    with locked(staging):
        now = time.time()
        for tmp in [*staging.glob(".*.tmp"), *staging.glob("cycle=*/.*.tmp")]:
            if now - mtime(tmp) >= RUN_MAX_SECONDS:  # gone meanwhile: 0, and nothing to remove
                durable.remove(tmp)
        # `.cycle=N.<time>-<id>.old`: the last set aside goes back where cycle=N is missing; the
        # rest (set aside before it, or after a swap that ended but had not yet removed it) go
        for cycle in sorted({cycle_of(old.name.split(".")[1]) for old in staging.glob(".cycle=*.old")}):
            if durable.put_back(cycle_dir(staging, cycle)) is not None:
                restored.append(cycle)
            for old in durable.left_aside(cycle_dir(staging, cycle)):
                shutil.rmtree(old, ignore_errors=True)
    return restored


# In a cycle folder swapped in but whose versions the delivery log does not have yet
# (`write_cycle`): it is there only if the ingest was killed between the swap and the record.
UNLOGGED = ".not-in-delivery-log"


def log_unlogged(staging: Path, key: PseudonymKey) -> list[int]:
    """Give the delivery log the versions of each cycle whose ingest was killed after its
    folder was swapped in and before the log recorded them (its folder holds `UNLOGGED`),
    as that ingest would have: its audit lists its files in full. Their first build is dated
    now. A cycle staged under another key, or whose audit cannot be read, is left as it is:
    `not_ready` refuses it, saying why. Returns the cycles recorded."""
    logged = []
    with locked(staging):
        for marker in sorted(Path(staging).glob(f"cycle=*/{UNLOGGED}")):
            folder = marker.parent
            try:
                stamped = (folder / KEY_STAMP).read_text().strip()
            except OSError:
                continue
            if stamped != key.fingerprint(KEY_STAMP_LABEL):
                continue
            cycle = cycle_of(folder.name)
            try:
                audit = pd.read_parquet(folder / "audit.parquet")
            except (OSError, pa.ArrowException):
                continue
            history.record(staging, audit, [cycle], key)
            marker.unlink()
            logged.append(cycle)
    return logged


def missing_cycles(staging: Path, cycles) -> list[int]:
    """The cycles that have no staged folder (after `recover`)."""
    return [c for c in cycles if not cycle_dir(staging, c).is_dir()]


# In each cycle folder: which pseudonym key its person_key, participation_id and hashed
# names come from (`PseudonymKey.fingerprint`, which reveals nothing of the key). The label
# changed when the names were keyed (2026-12-02): a cycle staged before, whose names are
# unkeyed hashes, is then refused as if staged under another key, until a full build.
KEY_STAMP = ".pseudonym-key"
KEY_STAMP_LABEL = "staging, names keyed"
# And which code made its rows (`checked_files.code_fingerprint`: the ingest's modules, the
# reference data, the libraries). After an upgrade `--cycle N` stages cycle N alone: the other
# cycles hold what the old code's rules made of their files, so they are refused, as a cycle
# staged under another key is, until a full build stages them again.
CODE_STAMP = ".ingest-code"


def staged_key_kind(staging: Path) -> str:
    """Which kind of pseudonym key the staged cycles' keys come from: 'development' (the
    public key: anyone can recompute them from personnummer), 'secret', or 'unknown' (no
    cycle stamped). `not_ready` has seen that every cycle a warehouse is built from was
    staged under that build's key."""
    stamps = set()
    for path in Path(staging).glob(f"cycle=*/{KEY_STAMP}"):
        try:
            stamps.add(path.read_text().strip())
        except OSError:
            continue
    if development_key().fingerprint(KEY_STAMP_LABEL) in stamps:
        return "development"
    return "secret" if stamps else "unknown"


def write_cycle(staging: Path, result: CycleIngest, key: PseudonymKey | None = None,
                mark_valid: bool = False, record_versions: bool = False) -> int:
    """Write the cycle's frames as they are: what ingest_cycle validated is what is on
    disk; with `key`, which key they were made with; with `mark_valid`, stamped as
    having passed their models (`_mark_written_valid`). The folder is complete, stamps
    included, before it is swapped in under the staging lock.

    With `record_versions` (and `key`), the delivery log takes the cycle's versions in the same turn
    of the lock as the swap: the marts refuse a staged cycle whose versions the log lacks
    (`not_ready`), and a build reading between the two was refused though nothing was
    wrong. Returns how many versions were new to the log (0 without `record_versions`)."""
    staging = Path(staging)
    staging.mkdir(parents=True, exist_ok=True)
    final = cycle_dir(staging, result.cycle)
    tmp = staging / f".cycle={result.cycle}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()
    for name in CycleIngest.frame_names():
        _write_staged(getattr(result, name), tmp / f"{name}.parquet")
    if key is not None:
        (tmp / KEY_STAMP).write_text(key.fingerprint(KEY_STAMP_LABEL))
    (tmp / CODE_STAMP).write_text(checked_files.code_fingerprint())
    if mark_valid:
        _mark_written_valid(tmp, result)  # a rename keeps the files' mtimes, so the stamps hold
    if record_versions:  # until the log has the versions: a kill between the two is seen (`log_unlogged`)
        (tmp / UNLOGGED).touch()
    durable.sync(tmp)  # else a power cut could leave a torn file under a stamp that says it passed
    new_versions = 0
    with locked(staging):
        old = durable.swap_dir(tmp, final)
        if record_versions:
            new_versions = history.record(staging, result.audit, [result.cycle], key)
            (final / UNLOGGED).unlink()
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return new_versions


def _write_staged(frame: pd.DataFrame, path: Path) -> None:
    """`frame.to_parquet(path, index=False)`, but a column that holds no value is written as
    text, not with Parquet's type of nothing ('null'): the warehouse's column, the union of
    every cycle's files, would change type with the first cycle that has a value (a file
    rejected whole, a survey, a 90-day status), and the incremental build could not replace
    a cycle. pandas' metadata is kept, so the file reads back as before."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema = table.schema
    for i, field in enumerate(schema):
        if pa.types.is_null(field.type):
            schema = schema.set(i, field.with_type(pa.string()))
    pq.write_table(table.cast(schema) if schema != table.schema else table, path)


INVENTORY_ISSUES = "inventory_issues.parquet"


def write_inventory(raw_root: Path, staging: Path, key: PseudonymKey | None = None) -> int:
    """Record the raw root's files that belong to no cycle (<staging>/inventory_issues.parquet,
    which the warehouse reads): a stray file is a warning; a folder that could not be listed
    lost its files, so it is rejected. Returns how many there are. A raw root with no delivery
    at all (a share not mounted) is refused, as by the ingest: its inventory would be empty.
    `key` hashes the names the senders chose (masking.safe_path; by default IGA_PSEUDONYM_KEY's)."""
    found = discover(raw_root, key)
    refuse_empty_raw_root(raw_root, found)
    stray = [d for d in found if d.cycle is None]
    issues = issues_frame([
        {"source_file": d.source_file, "source_row": None,
         "severity": "rejected" if d.kind == UNLISTED_FOLDER else "warning",
         "reason": d.problem[0], "detail": d.problem[1]} for d in stray])
    staging = Path(staging)
    staging.mkdir(parents=True, exist_ok=True)
    tmp = staging / f".{INVENTORY_ISSUES}.{uuid.uuid4().hex}.tmp"
    issues.to_parquet(tmp, index=False)
    durable.replace(tmp, staging / INVENTORY_ISSUES)
    return len(stray)


# --- the harmonised models over staged files (the asset checks), remembered per file -------

def _fingerprint(model) -> str:
    return hashlib.sha256(f"{pandera.__version__}|{model.to_schema()!r}".encode()).hexdigest()[:16]


def _stamp(path: Path, model) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}:{_fingerprint(model)}"


def _stamp_path(path: Path) -> Path:
    return path.with_name(f".pandera-{path.stem}.ok")


def validated_before(path: Path, model) -> bool:
    """Whether the file passed `model` (or was stamped so as it was written) and has not changed."""
    stamp = _stamp_path(path)
    return stamp.exists() and stamp.read_text() == _stamp(path, model)


def _mark_validated(path: Path, model) -> None:
    stamp = _stamp_path(path)
    tmp = stamp.with_name(f"{stamp.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(_stamp(path, model))
    # Not flushed here: a stamp torn by a power cut matches no file and is only read again
    # (`validated_before`), and write_cycle flushes its folder whole, stamps included.
    os.replace(tmp, stamp)


def _foreign_ids(participation_ids: pd.Series, cycle) -> pd.Series:
    """The ids that do not carry `cycle` (ingest.participation_id_prefix)."""
    return participation_ids[~participation_ids.astype(str).str.startswith(participation_id_prefix(int(cycle)))]


def _mark_written_valid(folder: Path, result: CycleIngest) -> None:
    """Mark a cycle's freshly written files validated, so the asset checks skip them.

    Each frame written passed its harmonised model in ingest_cycle (validation.py:
    coerced, strict, unique ids), and Parquet gives it back unchanged, dtypes included
    (test_staging_scale.py reads every staged file back to show it). Reading the files
    back to validate them again cost 0.7 s of CPU per cycle at 1M participations. The
    one file check the models do not make, ids carrying their folder's cycle, is made
    here on the frame; a file that fails it is left to the asset check to report.
    Best effort: a stamp not written only means the asset check reads the file."""
    for name, model in HARMONISED_MODELS.items():
        if name == "participations" and len(_foreign_ids(result.participations["participation_id"],
                                                         result.cycle)):
            continue
        try:
            _mark_validated(folder / f"{name}.parquet", model)
        except OSError:
            pass


VALIDATE_ROWS = 500_000  # rows of a staged file in memory at a time while validating


def not_ready(staging: Path, cycles, key: PseudonymKey) -> list[str]:
    """Why the staging of `cycles` cannot go into a warehouse as it is (empty: it can).

    Every staged model file must have passed its pandera model since it last changed
    (staging stamps what it writes; the pandera checks stamp what they pass): so a
    failed check stops the marts on every path, the automation's too. And every cycle
    must come from the same pseudonym key as this build: a key changed between a full
    build and `--cycle N` would otherwise split each person's cycles under two keys; and
    from this build's code (`CODE_STAMP`): else an upgrade's `--cycle N` mixes two codes' rules."""
    problems = []
    stamps = {  # each stamp, what it must say, and how the cycle was staged when it does not
        KEY_STAMP: (key.fingerprint(KEY_STAMP_LABEL),
                    "under another pseudonym key (or before keys, or keyed names, were recorded)"),
        CODE_STAMP: (checked_files.code_fingerprint(),
                     "by another version of the code (its ingest, rules or reference data; or before "
                     "the code was recorded)"),
    }
    for cycle in cycles:
        folder = cycle_dir(staging, cycle)
        for stamp, (fingerprint, how) in stamps.items():
            try:
                stamped = (folder / stamp).read_text().strip()
            except OSError:
                stamped = None
            if stamped != fingerprint:
                problems.append(f"cycle {cycle} was staged {how}: run a full build (iga-pipeline build, "
                                "every cycle)")
        if validation.checks_data():
            for name, model in HARMONISED_MODELS.items():
                path = folder / f"{name}.parquet"
                if path.exists() and not validated_before(path, model):
                    problems.append(f"cycle={cycle}/{name}.parquet has not passed its pandera model "
                                    f"since it changed (check pandera_{name}, run with the ingest; "
                                    f"ingesting cycle {cycle} again stages it anew)")
    if not (Path(staging) / INVENTORY_ISSUES).is_file():
        problems.append(f"the raw root's inventory ({INVENTORY_ISSUES}) is missing: materialise "
                        "raw/inventory (iga-pipeline build does)")
    unlogged = _not_in_delivery_log(staging, cycles)
    if unlogged:
        problems.append(f"the delivery log ({history.LOG_NAME}) lacks what cycle(s) "
                        f"{', '.join(map(str, unlogged))} were built from: ingest them again "
                        "(iga-pipeline build)")
    if not any(_rows(cycle_dir(staging, cycle) / "audit.parquet") for cycle in cycles):
        # every file gone at once is no delivery: more likely a raw root not mounted or
        # pointed elsewhere; publishing would replace the warehouse with an empty one
        problems.append("no cycle has any delivery in its staging: the raw root held no files when "
                        "they were read (a share not mounted, a wrong IGA_RAW_DIR?)")
    return problems


def _not_in_delivery_log(staging: Path, cycles) -> list[int]:
    """The cycles whose staged files' versions (audit: source_file, sha256) are not the last
    the delivery log has for their paths: marts.delivery_history would not show them as
    current (a log deleted, or replaced by an older copy; a version that came back, in a
    log written before such returns were recorded)."""
    try:
        versions = history.last_versions(history.read_log(staging))
        log = set(zip(versions["source_file"], versions["sha256"]))
    except (OSError, pa.ArrowException):
        log = set()
    missing = []
    for cycle in cycles:
        try:
            audit = pd.read_parquet(cycle_dir(staging, cycle) / "audit.parquet", columns=["source_file", "sha256"])
        except (OSError, pa.ArrowException):
            continue  # no staging: reported as such
        audit = audit[audit["sha256"].notna()]
        if not set(zip(audit["source_file"], audit["sha256"])) <= log:
            missing.append(cycle)
    return missing


def _rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer (0 when there is none)."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException):
        return 0


class Validated(NamedTuple):
    rows: int  # in every file, read or not
    failures: pd.DataFrame | None  # the failure cases; None when every file passed
    files_read: int  # the files not stamped as passed: read and validated


def validate_staged(files: list[Path], model) -> Validated:
    """Validate each cycle's staged file with a harmonised model.

    A file is read VALIDATE_ROWS rows at a time; a unique column is checked over the
    whole file. A file that passed before (or that staging stamped as it wrote it, see
    `_mark_written_valid`), unchanged since (size, mtime) and against the same model,
    is not read.
    Per-cycle uniqueness (participation_id) is global because every id carries its
    cycle: that is checked too."""
    schema = model.to_schema()
    unique = [name for name, column in schema.columns.items() if column.unique]
    for name in unique:
        schema = schema.update_column(name, unique=False)
    rows, read, failures = 0, 0, []
    for path in files:  # an empty file too: `not_ready` asks every file for a current stamp
        try:
            if validated_before(path, model):
                rows += pq.ParquetFile(path).metadata.num_rows
                continue
            read += 1
            parquet = pq.ParquetFile(path)
            cases = _failure_cases(path, parquet, schema, unique, model)
            rows += parquet.metadata.num_rows
        except (OSError, pa.ArrowException) as e:  # damaged (cut short, overwritten): a failure
            cases = [pd.DataFrame({"column": ["(whole file)"],  # of this file, named, no value
                                   "check": [f"readable as Parquet ({type(e).__name__}); ingest its cycle again"]})]
        if cases:  # which file failed: a cycle's folder and a table's name, never a value
            failures.append(pd.concat(cases, ignore_index=True).assign(
                file=f"{path.parent.name}/{path.name}"))
        elif validation.checks_data():
            _mark_validated(path, model)
    return Validated(rows, pd.concat(failures, ignore_index=True) if failures else None, read)


def _failure_cases(path: Path, parquet: pq.ParquetFile, schema, unique: list[str], model) -> list[pd.DataFrame]:
    """pandera's failure cases of one staged file (none: it passed)."""
    cases = []
    if parquet.metadata.num_rows:
        chunks = (b.to_pandas() for b in parquet.iter_batches(batch_size=VALIDATE_ROWS))
    else:  # no batches to iterate: the empty frame is still checked for its columns and types
        chunks = [pd.read_parquet(path)]
    for frame in chunks:
        try:
            schema.validate(frame, lazy=True)
        except SchemaErrors as err:
            cases.append(err.failure_cases)
        del frame
    for name in unique:
        values = pd.read_parquet(path, columns=[name])[name]
        dup = values[values.duplicated(keep=False)]
        if len(dup):
            cases.append(pd.DataFrame({"column": name, "check": "field_uniqueness",
                                       "failure_case": dup.values}))
        if model is Participation and len(values):
            cycle = cycle_of(path.parent.name)
            foreign = _foreign_ids(values, cycle)
            if len(foreign):
                check = f"starts with '{participation_id_prefix(cycle)}' (the cycle of its folder)"
                cases.append(pd.DataFrame({"column": name, "check": check, "failure_case": foreign.values}))
    return cases


# --- staging several cycles, in parallel when they are large -------------------------------

@dataclass
class Staged:
    """What the caller needs to know about one staged cycle (the frames stay on disk)."""

    cycle: int
    rows: dict[str, int]  # frame name -> rows written
    rejected: int  # raw rows rejected (a file rejected whole: all of its rows)
    files_rejected: int  # files rejected whole
    by_reason: pd.DataFrame  # severity, reason, issues
    audit: pd.DataFrame
    new_versions: int = 0  # files whose content no build had read before (history.py)
    # each file rejected whole: (source_file, reason, detail), its rejection's detail as in the
    # warehouse (the log names what a missing_columns lacks, not only its reason code)
    rejected_whole: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0  # wall time of stage_cycle, in the process that staged the cycle


# A cycle with fewer rows (read, or staged) leaves too little behind to be worth a full
# garbage collection: in a process that has imported Dagster and Great Expectations one
# takes 0.23 s (measured), which was nearly half of building the bundled data.
GIVE_BACK_FROM_ROWS = 100_000


def stage_cycle(raw_root: Path, staging: Path, cycle: int, key: PseudonymKey) -> Staged:
    """Ingest one cycle and write its staging folder.

    Files of the cycle checked in an earlier build and unchanged since are not
    read again (checked_files.py): after a late delivery, only the new file is."""
    started = time.monotonic()
    checked = validation.checks_data()
    with locked(staging, cycle=cycle):  # another ingest of this cycle first writes what it listed
        kept = checked_files.CheckedFiles(staging, cycle, key) if checked else None
        result = ingest_cycle(raw_root, cycle, key, kept=kept)
        new_versions = write_cycle(staging, result, key, mark_valid=checked, record_versions=True)
        if kept is not None:
            kept.prune()
    issues = result.issues
    rows_read = int(result.audit["rows_read"].sum())
    staged = Staged(
        cycle=cycle,
        rows={name: len(getattr(result, name)) for name in CycleIngest.frame_names()},
        rejected=int(result.audit["rows_rejected"].sum()),
        files_rejected=int((result.audit["status"] == "rejected").sum()),
        by_reason=issues.groupby(["severity", "reason"]).size().rename("issues").reset_index(),
        audit=result.audit,
        new_versions=new_versions,
        rejected_whole=rejected_whole(result.audit, issues),
    )
    del result, issues
    if max(rows_read, sum(staged.rows.values())) >= GIVE_BACK_FROM_ROWS:
        _give_back_memory()
    staged.seconds = round(time.monotonic() - started, 2)
    return staged


def rejected_whole(audit: pd.DataFrame, issues: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(source_file, reason, detail) of each file the audit says was rejected whole: the
    detail of its one rejection with no row (ingest.py); the least, were there several, as
    the warehouse's query of the same gives it (evaluation/queries.py, REJECTED_FILES)."""
    whole = audit.loc[audit["status"] == "rejected", ["source_file", "reason"]]
    if whole.empty:
        return []
    of_files = issues[issues["source_row"].isna() & (issues["severity"] == "rejected")]
    detail = of_files.groupby("source_file")["detail"].min()
    return [(f, reason, said if isinstance(said := detail.get(f), str) else "")
            for f, reason in whole.itertuples(index=False)]


def _give_back_memory() -> None:
    """Return freed memory to the system between large cycles (a worker may stage several)."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    try:
        pa.default_memory_pool().release_unused()
    except Exception:  # noqa: BLE001 - only an optimisation
        pass


# A bound, with headroom, on the peak memory of ingesting one cycle per raw byte of its
# deliveries: it sets how many cycles ingest at once. The builds' measured peaks are in
# docs/performance.md (10M: 5,521-5,994 MB for 1,933 MB of raw files, two workers).
MEMORY_PER_RAW_BYTE = 10


def ingest_workers(sizes: dict[int, int]) -> int:
    """How many cycles to ingest at once, given the cycles' sizes (`raw_bytes`):
    IGA_INGEST_WORKERS, or as many as CPUs and memory allow when the deliveries are
    large enough to be worth it."""
    setting = settings.ingest_workers()
    if setting is not None:
        return setting
    if len(sizes) < 2 or sum(sizes.values()) < stage_workers.PARALLEL_FROM_BYTES:
        return 1
    by_memory = _available_memory() // max(1, MEMORY_PER_RAW_BYTE * max(sizes.values()))
    return int(max(1, min(settings.cpus(), len(sizes), by_memory)))


def _one_large_cycle(raw_root: Path, cycles: list[int]) -> bool:
    if len(cycles) != 1 or settings.ingest_workers() is not None or settings.cpus() < 2:
        return False
    return raw_bytes(raw_root, cycles)[cycles[0]] >= stage_workers.PARALLEL_FROM_BYTES


def raw_bytes(raw_root: Path, cycles: list[int]) -> dict[int, int]:
    """The size of the deliveries each cycle's ingest will read (one walk of the raw root)."""
    sizes = dict.fromkeys(cycles, 0)
    for d in discover(raw_root):
        if d.cycle in sizes and not d.refused and d.path.is_file():
            sizes[d.cycle] += d.path.stat().st_size
    return sizes


def _available_memory() -> int:
    """The machine's available memory, at most what this process may use: /proc/meminfo
    shows the host's in a container or a service with a MemoryMax (settings.usable_memory)."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return min(available, settings.usable_memory())


class EmptyRawRoot(RuntimeError):
    """The raw root holds no delivery of any cycle: nothing is staged."""


def refuse_empty_raw_root(raw_root: Path, found: list | None = None) -> None:
    """Every delivery of every cycle gone at once is no delivery: more likely a share not
    mounted or IGA_RAW_DIR pointed elsewhere. Staging each cycle empty would leave the
    staging of none, and the next build of one cycle (a late delivery) would publish
    a warehouse of that cycle alone. One cycle's files removed is a removal, and staged.
    `found`: the raw root's `discover`, when the caller has it."""
    if not any(d.cycle is not None for d in (discover(raw_root) if found is None else found)):
        raise EmptyRawRoot(f"no cycle has any delivery in the raw root {raw_root} (a share not mounted, "
                           "a wrong --raw-dir or IGA_RAW_DIR?): nothing was staged, and the staging and "
                           "the warehouse stay as they were")


def stage_cycles(raw_root: Path, staging: Path, cycles: list[int], key: PseudonymKey,
                 workers: int | None = None, alone_in_worker: bool = False) -> Iterator[Staged]:
    """Stage every cycle; yields one `Staged` per cycle, in the order given (none at all,
    `EmptyRawRoot`, when the raw root holds no delivery of any cycle).

    Cycles are independent (every rule stays within a cycle), so with more than
    one worker the cycles are shared out over worker processes
    (`python -m iga_pipeline._stage_worker`, largest cycles first), each writing
    its cycles' Parquet directly. Plain child processes rather than
    multiprocessing: nothing of the parent (threads, locks, its __main__) is
    inherited or re-imported."""
    refuse_empty_raw_root(raw_root)
    if workers is None and alone_in_worker:
        # A late delivery's cycle alone (`iga-pipeline build --cycle N`): in a worker too,
        # so that this process only waits and what it does meanwhile (importing Great
        # Expectations for the checks, see warm_up.py) runs on the second core. The CLI
        # may have started that worker already (workers.start_early).
        running = stage_workers.take_early(raw_root, staging, cycles, key)
        if running is not None or _one_large_cycle(raw_root, cycles):
            yield from _in_order(cycles, running or stage_workers.Workers(raw_root, staging, [cycles], key))
            return
    # the cycles' sizes decide the workers and share the cycles out: not needed for one at a time
    size = raw_bytes(raw_root, cycles) if len(cycles) > 1 and workers != 1 else {}
    n = ingest_workers(size) if workers is None else workers
    if n <= 1 or len(cycles) <= 1:
        for cycle in cycles:
            yield stage_cycle(raw_root, staging, cycle, key)
        return
    shares: list[list[int]] = [[] for _ in range(min(n, len(cycles)))]
    load = [0] * len(shares)
    for cycle in sorted(cycles, key=lambda c: -size[c]):  # largest first, to the least loaded
        i = load.index(min(load))
        shares[i].append(cycle)
        load[i] += size[cycle]
    yield from _in_order(cycles, stage_workers.Workers(raw_root, staging, [s for s in shares if s], key))


def _in_order(cycles: list[int], pool: stage_workers.Workers) -> Iterator[Staged]:
    staged = pool.results()
    for cycle in cycles:
        yield staged[cycle]

