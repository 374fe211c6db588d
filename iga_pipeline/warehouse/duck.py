"""DuckDB connections and the Parquet exports: what both the warehouse build
(`build.py`) and the export process beside the checks (`export.py`) use. It
imports DuckDB and nothing heavy (no pandas), so that process starts at once."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import duckdb

from iga_pipeline import durable, settings


def quote(text: Path | str) -> str:
    """`text` (a path, a pattern, a value) as a SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def open_readonly(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a warehouse file as it is on disk now.

    `duckdb.connect(path)` reuses a database this process already has open
    under that path, which after a publish is the *previous* file. Attaching
    to a fresh in-memory connection always opens the file now at `path`."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {quote(Path(path))} AS warehouse (READ_ONLY)")
        con.execute("USE warehouse")
    except BaseException:
        con.close()
        raise
    return con


def duckdb_memory_limit() -> str:
    """DuckDB's memory for a build (IGA_DUCKDB_MEMORY, default a quarter of RAM, 1-4 GB, at most
    half of it: an explicit setting above the memory is refused, `settings.duckdb_memory`);
    beyond it DuckDB spills to disk, so the build's peak stays predictable."""
    setting = settings.duckdb_memory()
    if setting:
        return setting
    memory = settings.usable_memory()
    size = min(max(10**9, memory // 4), 4 * 10**9, memory // 2)  # GB and MB: DuckDB's 10**9 and 10**6
    return f"{size // 10**9}GB" if size % 10**9 == 0 else f"{size // 10**6}MB"


def export_parquet(warehouse: Path, out_dir: Path, threads: int | None = None) -> dict[str, int]:
    """Write every marts table as <out_dir>/<mart>.parquet, in a new folder: what an earlier
    attempt of the same build left there (a retry's, a re-execution's) goes first. The files
    are written in a scratch folder beside it (`<out_dir>.<hex>.tmp`), flushed to disk, and
    renamed to `out_dir` once all are there: a folder under that name is whole, so a publish
    that finds it never puts half an export live (F12). `threads`: DuckDB's (default: one
    per core)."""
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    scratch = out_dir.with_name(f"{out_dir.name}.{uuid.uuid4().hex[:8]}.tmp")
    scratch.mkdir(parents=True)
    rows = {}
    try:
        con = open_readonly(warehouse)
        try:
            con.execute(f"SET memory_limit = '{duckdb_memory_limit()}'")  # COPY buffers otherwise grow with the marts
            if threads:
                con.execute(f"SET threads = {int(threads)}")
            tables = [r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
                "ORDER BY table_name").fetchall()]
            for table in tables:
                con.execute(f"COPY marts.{table} TO {quote(scratch / f'{table}.parquet')} (FORMAT parquet)")
                rows[table] = con.execute(f"SELECT count(*) FROM marts.{table}").fetchone()[0]
        finally:
            con.close()
        durable.replace(scratch, out_dir)  # removed above: an earlier attempt's is not in the way
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # there only if the export failed
    return rows
