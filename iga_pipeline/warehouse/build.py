"""Build the warehouse from staging into a new file; publish it with one rename.

The live file (`warehouse/iga.duckdb` or IGA_WAREHOUSE) is never opened for
writing. A build writes a candidate file beside it, checkpoints and closes
it, and `publish` swaps it in with `os.replace`, which is atomic on one
filesystem: a BI tool holding the live file open keeps reading the old
version, the next open sees the new one, and a crash at any point leaves the
previous warehouse as it was.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import duckdb
import pandas as pd

from iga_pipeline import reference

SQL_DIR = Path(__file__).parent / "sql"
CANDIDATE_MARK = ".building-"


def open_readonly(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a warehouse file as it is on disk now.

    `duckdb.connect(path)` reuses a database this process already has open
    under that path, which after a publish is the *previous* file. Attaching
    to a fresh in-memory connection always opens the file now at `path`."""
    con = duckdb.connect()
    con.execute(f"ATTACH {_quote(Path(path))} AS warehouse (READ_ONLY)")
    con.execute("USE warehouse")
    return con


def candidate_path(target: Path, token: str | None = None) -> Path:
    """Where a build writes: beside the live file, so that the rename is atomic."""
    target = Path(target)
    token = token or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return target.with_name(f"{target.name}{CANDIDATE_MARK}{token}")


def sql_files() -> list[Path]:
    return sorted(SQL_DIR.glob("*.sql"))


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _load_reference(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS reference")
    frames = {
        "cycles": pd.DataFrame([{
            "cycle": c.cycle, "start_date": c.start, "end_date": c.end,
            "provider_id": c.provider_id, "provider": c.provider, "target_group": c.target_group,
        } for c in reference.cycles().values()]),
        "municipalities": reference.table("municipalities"),
        "goals": reference.goals(),
        "benchmarks": reference.benchmarks(),
        "table1_published": reference.table1_published(),
        "budget": pd.DataFrame(list(reference.budget().items()), columns=["item", "sek"]),
    }
    for name, frame in frames.items():
        con.register("_frame", frame)
        con.execute(f"CREATE OR REPLACE TABLE reference.{name} AS SELECT * FROM _frame")
        con.unregister("_frame")


def build_candidate(staging: Path, candidate: Path, extra_marts: dict | None = None) -> Path:
    """Build a complete new warehouse file at `candidate`; return its path.

    `extra_marts` maps a mart name to a function (connection -> DataFrame)
    run after the SQL files; its result is stored as marts.<name>."""
    candidate = Path(candidate)
    discard(candidate)
    candidate.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(candidate))
        try:
            _load_reference(con)
            for path in sql_files():
                con.execute(path.read_text(encoding="utf-8").replace("{staging}", _quote(staging)))
            for name, compute in (extra_marts or {}).items():
                frame = compute(con)
                con.register("_frame", frame)
                con.execute(f"CREATE OR REPLACE TABLE marts.{name} AS SELECT * FROM _frame")
                con.unregister("_frame")
            con.execute("CHECKPOINT")
        finally:
            con.close()
    except BaseException:
        discard(candidate)
        raise
    return candidate


def publish(candidate: Path, target: Path) -> None:
    """Swap the candidate in as the live warehouse (atomic on one filesystem)."""
    candidate, target = Path(candidate), Path(target)
    if candidate.parent.resolve() != target.parent.resolve():
        raise ValueError("the candidate must be built in the live warehouse's folder")
    wal = candidate.with_name(candidate.name + ".wal")
    if wal.exists():
        raise RuntimeError("the candidate still has a write-ahead log: it was not checkpointed")
    os.replace(candidate, target)
    _fsync_dir(target.parent)


def discard(candidate: Path) -> None:
    for p in (Path(candidate), Path(str(candidate) + ".wal")):
        p.unlink(missing_ok=True)


def stale_candidates(target: Path, older_than_s: float = 0) -> list[Path]:
    """Candidates left behind by builds that were killed (not touched for `older_than_s`)."""
    target = Path(target)
    now = time.time()
    found = []
    for p in target.parent.glob(f"{target.name}{CANDIDATE_MARK}*"):
        try:
            if not p.name.endswith(".wal") and now - p.stat().st_mtime >= older_than_s:
                found.append(p)
        except FileNotFoundError:  # published or discarded meanwhile
            pass
    return sorted(found)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def export_parquet(warehouse: Path, out_dir: Path) -> dict[str, int]:
    """Write every marts table as <out_dir>/<mart>.parquet (out_dir must not exist yet)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True)
    rows = {}
    con = open_readonly(warehouse)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
            "ORDER BY table_name").fetchall()]
        for table in tables:
            con.execute(f"COPY marts.{table} TO {_quote(out_dir / f'{table}.parquet')} (FORMAT parquet)")
            rows[table] = con.execute(f"SELECT count(*) FROM marts.{table}").fetchone()[0]
    finally:
        con.close()
    return rows


def replace_dir(new: Path, target: Path) -> None:
    """Put folder `new` in place of folder `target`.

    Two renames: a reader may, for an instant, find `target` missing, but
    never a mixture of two builds' files."""
    import shutil

    new, target = Path(new), Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def discard_run(paths, run_id: str) -> None:
    """Remove what a failed run left: its candidate and its pending report and Parquet."""
    import shutil

    discard(candidate_path(paths.warehouse, run_id))
    shutil.rmtree(paths.pending_parquet(run_id), ignore_errors=True)
    paths.pending_report(run_id).unlink(missing_ok=True)


def remove_stale(paths, older_than_s: float = 3600) -> list[str]:
    """Remove candidates and pending files left by builds that were killed.

    Only what has not been touched for `older_than_s` goes, so that a build
    running at the same time keeps its own files."""
    import shutil

    now = time.time()
    found = [*stale_candidates(paths.warehouse, older_than_s),
             *paths.warehouse_dir.glob(".parquet.*.pending"), *paths.warehouse_dir.glob(".parquet.*.old"),
             *paths.report_dir.glob(".index.html.*.pending"), *paths.warehouse_dir.glob(".gx.*.tmp"),
             *paths.warehouse_dir.glob(".gx.*.old")]
    removed = []
    for p in found:
        try:
            if now - p.stat().st_mtime < older_than_s:
                continue
        except FileNotFoundError:  # a concurrent build published or discarded it meanwhile
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            discard(p)
        removed.append(p.name)
    return removed
