"""Build the warehouse from staging into a new file, the candidate.

The live file (`warehouse/iga.duckdb` or IGA_WAREHOUSE) is never opened for
writing. A build writes a candidate file beside it (`candidate_path`), fully
or by replacing the changed cycles in a copy of the live one, checkpoints
and closes it; `publish.py` swaps it in once the checks have passed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from pathlib import Path

import duckdb
import pandas as pd

from iga_pipeline import reference
from iga_pipeline.warehouse.duck import duckdb_memory_limit, open_readonly
from iga_pipeline.warehouse.duck import quote as _quote

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"
CANDIDATE_MARK = ".building-"
WAL_SUFFIX = ".wal"


def candidate_path(target: Path, token: str) -> Path:
    """Where the build `token` writes: beside the live file, so that the rename is atomic."""
    target = Path(target)
    return target.with_name(f"{target.name}{CANDIDATE_MARK}{token}")


# --- the blocking checks' verdicts on a candidate -----------------------------------------------
# Dagster's blocking checks stop the publish only within one run: a re-execution of the publish
# step alone found a candidate whose checks had failed and published it. So each check that
# examines a candidate writes its verdict beside it, and the publish refuses a candidate
# without a pass from every one. A new build of the candidate (`discard`) removes the
# verdicts with it.

def _verdicts(candidate: Path) -> Path:
    candidate = Path(candidate)
    return candidate.with_name(candidate.name + ".checks")


def record_verdict(candidate: Path, check: str, passed: bool) -> None:
    """Write check `check`'s verdict on `candidate` (which must exist)."""
    folder = _verdicts(candidate)
    folder.mkdir(exist_ok=True)
    tmp = folder / f".{check}.tmp"
    tmp.write_text("passed" if passed else "failed")
    tmp.replace(folder / check)


def not_passed(candidate: Path, checks: list[str]) -> list[str]:
    """Those of `checks` that have not passed on `candidate`: failed, or never run on it."""
    folder = _verdicts(candidate)

    def verdict(check: str) -> str:
        try:
            return (folder / check).read_text()
        except OSError:
            return "not run"
    return [f"{check} ({verdict(check)})" for check in checks if verdict(check) != "passed"]


def sql_files() -> list[Path]:
    return sorted(SQL_DIR.glob("*.sql"))


def _load_reference(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS reference")
    frames = {
        "cycles": pd.DataFrame([{
            "cycle": c.cycle, "start_date": c.start, "end_date": c.end,
            "provider_id": c.provider_id, "provider": c.provider, "target_group": c.target_group,
        } for c in reference.cycles().values()]).astype({"cycle": "int32"}),  # INTEGER, as in every mart
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


def build_candidate(staging: Path, candidate: Path, evaluation_marts: dict | None = None,
                    previous: Path | None = None) -> Path:
    """Build a complete new warehouse file at `candidate`; return its path.

    `evaluation_marts` maps a mart name to a function (connection -> DataFrame)
    run after the SQL files; its result is stored as marts.<name>.

    With `previous` (the live warehouse), when only some cycles' staging has
    changed since it was built (a late delivery), the candidate starts as a copy
    of it and only those cycles' rows of the per-cycle tables are replaced; every
    other table is computed again (see `_build_incrementally`). Otherwise, and
    whenever anything is out of the ordinary, everything is built from staging."""
    candidate = Path(candidate)
    discard(candidate)
    candidate.parent.mkdir(parents=True, exist_ok=True)
    inputs = _build_inputs(staging, evaluation_marts)
    try:
        changed = _changed_cycles(previous, inputs) if previous is not None else None
        if changed is not None:
            try:
                _build_incrementally(staging, candidate, evaluation_marts, Path(previous), changed, inputs)
                return candidate
            except _Rebuild as e:
                log.warning("building the warehouse fully: the incremental build did not apply (%s)", e)
                discard(candidate)
        _build_fully(staging, candidate, evaluation_marts, inputs)
    except BaseException:
        discard(candidate)
        raise
    return candidate


# The warehouse file's storage format: DuckDB 1.4's, which every DuckDB since reads. The
# BI tools' drivers lag behind the Python package (Metabase's MotherDuck driver, Evidence's
# connector, the ODBC driver: DuckDB 1.x), and a file in 2.0's own format opens in none of
# them ("version number 69, but we can only read versions between 64 and 68", DuckDB 1.5).
# Not 1.3's: DuckDB 1.3.0-1.3.2 read a text column holding some NULLs that DuckDB 2.0 had
# stored with DICT_FSST as all NULL, without an error (status_90d, dropout_reason); without
# DICT_FSST the 1M file was 656-671 MB instead of 150 MB, and 1.2's
# format made the 1M marts build 7.71-8.57 s against 7.55-7.74 s. DuckDB 1.3 refuses a 1.4 file.
STORAGE_VERSION = "v1.4.0"


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection that writes `path`: a new file in STORAGE_VERSION's format."""
    con = duckdb.connect(str(path), config={"storage_compatibility_version": STORAGE_VERSION})
    # Rows of a query without ORDER BY may come in any order (every mart that has
    # an order says ORDER BY): DuckDB then loads and writes in parallel and need
    # not hold rows back for the checkpoint (at 1M participations: 10 s -> 7 s).
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET memory_limit = '{duckdb_memory_limit()}'")
    return con


def _build_fully(staging: Path, candidate: Path, evaluation_marts: dict | None, inputs: dict) -> None:
    con = _connect(candidate)
    try:
        _load_reference(con)
        for path in sql_files():
            con.execute(path.read_text(encoding="utf-8").replace("{staging}", _quote(staging)))
        _store_evaluation_marts(con, evaluation_marts)
        _describe_marts(con)
        _record_inputs(con, {**inputs, "build": "full"}, full_build_bytes=None)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    _record_size(candidate)


def _store_evaluation_marts(con, evaluation_marts: dict | None) -> None:
    for name, compute in (evaluation_marts or {}).items():
        frame = compute(con)
        con.register("_frame", frame)
        con.execute(f"CREATE OR REPLACE TABLE marts.{name} AS SELECT * FROM _frame")
        con.unregister("_frame")


def _describe_marts(con) -> None:
    """Each mart's and column's meaning (`warehouse/catalog.py`) as DuckDB comments, which BI
    tools show as descriptions (`duckdb_tables()`, `duckdb_columns()`): an exploratory review
    found bare names. Only the tables and columns this build has."""
    from iga_pipeline.warehouse.catalog import MARTS

    built = {}
    for table, column in con.execute("SELECT table_name, column_name FROM duckdb_columns() "
                                     "WHERE database_name = current_database() AND schema_name = 'marts'").fetchall():
        built.setdefault(table, set()).add(column)
    for mart in MARTS:
        if mart.name not in built:
            continue
        con.execute(f"COMMENT ON TABLE marts.{mart.name} IS {_quote(f'{mart.description} One row per {mart.grain}.')}")
        for column, meaning in mart.columns.items():
            if column in built[mart.name]:
                con.execute(f"COMMENT ON COLUMN marts.{mart.name}.{column} IS {_quote(meaning)}")


# --- incremental builds: a late delivery rebuilds one cycle's rows, not the warehouse ------------

INPUTS_TABLE = "staging.build_inputs"  # what a warehouse was built from: code and staging fingerprints
READ_AT = "staging_read_at"  # its row of when the staging was read (nanoseconds since the epoch)
# Its row of the key the person_keys come from: 'development' (the public key: anyone can
# recompute them from personnummer; the report says so at its top), 'secret' or 'unknown'.
PSEUDONYM_KEY = "pseudonym_key"
# Marts of one row per participation (or below): their changed cycles' rows are replaced,
# found by the column named (the interventions by their participation_id's cycle prefix).
PER_CYCLE_MARTS = {"marts.fct_participation": "cycle", "marts.fct_intervention": "participation_id"}
# The SQL file whose tables hold the cycles' staged rows (the other staging tables, such as
# the delivery log, are made again whole), and one of its statements (the query after AS).
PER_CYCLE_STAGING = "10_staging.sql"
_STAGING_TABLE = re.compile(r"CREATE OR REPLACE TABLE (?P<table>staging\.\w+) AS\s+(?P<query>.*)", re.S | re.I)
REBUILD_WHEN_GROWN = 1.5  # a full build once the file is this much larger than after the last one


class _Rebuild(Exception):
    """The incremental path does not apply: build from staging."""


def _fingerprint(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def _build_inputs(staging: Path, evaluation_marts: dict | None) -> dict[str, str]:
    """'code' (SQL, reference data, evaluation marts) and 'cycle=N' (its staged files) -> fingerprint;
    PSEUDONYM_KEY -> which kind of key the staged person_keys come from."""
    from iga_pipeline.staging import staged_key_kind  # not at the top: pandera (imported by now)

    code = hashlib.sha256()
    for path in [*sql_files(), *sorted((Path(reference.__file__).parent).glob("*.csv"))]:
        code.update(path.name.encode() + b"\0" + path.read_bytes())
    code.update(repr(sorted(evaluation_marts or {})).encode())
    code.update(STORAGE_VERSION.encode())  # another format: a full build, not a copy of the old file
    # When the staging was read (under its shared lock, so no cycle changes meanwhile): the
    # publish keeps a newer build's warehouse live against an older one finishing later.
    inputs = {"code": code.hexdigest(), READ_AT: str(time.time_ns()), PSEUDONYM_KEY: staged_key_kind(staging)}
    for folder in sorted(Path(staging).glob("cycle=*")):
        if folder.is_dir():
            inputs[folder.name] = _fingerprint(sorted(folder.glob("*.parquet")))
    return inputs


def staging_read_at(warehouse: Path) -> int | None:
    """When the staging a warehouse file was built from was read (ns), or None: unknown."""
    if not Path(warehouse).is_file():
        return None
    try:
        con = open_readonly(warehouse)
    except duckdb.Error:
        return None
    try:
        value = recorded_inputs(con).get(READ_AT)
    finally:
        con.close()
    return int(value) if value else None


def build_mode(warehouse: Path) -> str | None:
    """How a warehouse file was built: 'full', 'cycles 8' when only cycle 8's rows were replaced,
    or 'no cycle changed' (the files of no cycle did)."""
    con = open_readonly(warehouse)
    try:
        return recorded_inputs(con).get("build")
    finally:
        con.close()


def wal_path(database: Path) -> Path:
    """DuckDB's write-ahead log of a database file: beside it, its name with '.wal' added."""
    return Path(str(database) + WAL_SUFFIX)


def _changed_cycles(previous: Path, inputs: dict[str, str]) -> list[int] | None:
    """The cycles whose staging changed since `previous` was built, or None: build fully."""
    previous = Path(previous)
    if not previous.is_file() or wal_path(previous).exists():
        return None
    try:
        con = open_readonly(previous)
    except duckdb.Error:
        return None
    try:
        before = recorded_inputs(con)
    finally:
        con.close()
    if before.get("code") != inputs["code"]:
        return None
    full_size = before.get("full_build_bytes")
    if full_size and previous.stat().st_size > REBUILD_WHEN_GROWN * int(full_size):
        return None  # deleted rows have piled up: time to compact
    from iga_pipeline.staging import cycle_of  # the keys are the cycles' folders (`_build_inputs`)

    names = {k for k in set(before) | set(inputs) if k.startswith("cycle=")}
    changed = sorted(cycle_of(k) for k in names if before.get(k) != inputs.get(k))
    cycles = len({k for k in inputs if k.startswith("cycle=")})
    return changed if len(changed) <= cycles // 2 else None


def _build_incrementally(staging: Path, candidate: Path, evaluation_marts: dict | None, previous: Path,
                         changed: list[int], inputs: dict[str, str]) -> None:
    import shutil

    shutil.copyfile(previous, candidate)
    if _changed_cycles(candidate, inputs) != changed:  # published in between: compare with the copy
        raise _Rebuild("the live warehouse was replaced while the build began")
    con = _connect(candidate)
    try:
        con.execute("BEGIN TRANSACTION")
        _load_reference(con)
        for path in sql_files():
            for statement in _statements(path.read_text(encoding="utf-8").replace("{staging}", _quote(staging))):
                staged = _STAGING_TABLE.match(_code(statement)) if path.name == PER_CYCLE_STAGING else None
                if staged:
                    _replace_cycles(con, staged["table"], staged["query"], changed)
                else:
                    con.execute(_incremental(statement, changed))
        _store_evaluation_marts(con, evaluation_marts)
        _describe_marts(con)
        mode = "cycles " + ",".join(map(str, changed)) if changed else "no cycle changed"  # the inventory did
        _record_inputs(con, {**inputs, "build": mode},
                       full_build_bytes=_recorded_size(con))
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    except duckdb.Error as e:
        raise _Rebuild(str(e)) from e
    finally:
        con.close()


def _replace_cycles(con, table: str, query: str, changed: list[int]) -> None:
    """Replace the changed cycles' rows of a staging table, and its rows of no cycle (the
    inventory's issues, written by every build), with `query`'s (the table's query in
    10_staging.sql, which reads only those cycles' files for them).

    The columns and types the query gives over every staged file (read from the files'
    metadata only) must be the table's: then the rows inserted are the rows a full build
    would load."""
    have = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall()
    full = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {query})").fetchall()
    if have != full:
        raise _Rebuild(f"{table}: a full build would give other columns")
    rows = _of_cycles("cycle", changed) + " OR cycle IS NULL"
    con.execute(f"DELETE FROM {table} WHERE {rows}")
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM ({query}) WHERE {rows}")


def _of_cycles(column: str, cycles: list[int]) -> str:
    """A condition true for the rows of `cycles`, found by `column`: `cycle`, or a
    `participation_id` (its prefix)."""
    if not cycles:
        return "false"
    if column == "cycle":
        return f"cycle IN ({', '.join(str(int(c)) for c in cycles)})"
    from iga_pipeline.ingest import participation_id_prefix  # not at the top: pandera (imported by now)

    return " OR ".join(f"starts_with({column}, {_quote(participation_id_prefix(c))})" for c in cycles)


def _statements(sql: str) -> list[str]:
    """The statements of a SQL file (each ends with ';' at the end of a line)."""
    return [s.strip() for s in re.split(r";[ \t]*(?:\n|$)", sql) if _code(s)]


def _code(statement: str) -> str:
    return "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--")).strip()


def _incremental(statement: str, changed: list[int]) -> str:
    """A per-cycle mart's CREATE ... AS <query> ORDER BY ...: replace only the changed cycles' rows.

    Every other statement runs as it is (the other marts are small, or aggregates)."""
    m = re.match(r"CREATE OR REPLACE TABLE (\S+) AS\s+(.*)\bORDER BY ([^()]+)$", _code(statement), re.S | re.I)
    if not m or m.group(1) not in PER_CYCLE_MARTS:
        return statement
    table, query, order = m.group(1), m.group(2), m.group(3)
    where = _of_cycles(PER_CYCLE_MARTS[table], changed)
    return (f"DELETE FROM {table} WHERE {where};\n"
            f"INSERT INTO {table} SELECT * FROM ({query}) WHERE {where} ORDER BY {order}")


def recorded_inputs(con) -> dict[str, str]:
    """What a warehouse was built from, as `_record_inputs` wrote it ('code', 'cycle=N' ->
    fingerprint; 'build', 'full_build_bytes'), or {} for a file without that table."""
    try:
        return dict(con.execute(f"SELECT name, fingerprint FROM {INPUTS_TABLE}").fetchall())
    except duckdb.Error:
        return {}


def _record_inputs(con, inputs: dict[str, str], full_build_bytes: int | None) -> None:
    rows = list(inputs.items()) + ([("full_build_bytes", str(full_build_bytes))] if full_build_bytes else [])
    con.execute(f"CREATE OR REPLACE TABLE {INPUTS_TABLE} (name VARCHAR, fingerprint VARCHAR)")
    con.executemany(f"INSERT INTO {INPUTS_TABLE} VALUES (?, ?)", rows)


def _recorded_size(con) -> int | None:
    value = recorded_inputs(con).get("full_build_bytes")
    return int(value) if value else None


def _record_size(candidate: Path) -> None:
    """After a full build: remember the file's size (to know when incremental builds have bloated it)."""
    con = _connect(candidate)
    try:
        con.execute(f"INSERT INTO {INPUTS_TABLE} VALUES ('full_build_bytes', ?)", [str(candidate.stat().st_size)])
        con.execute("CHECKPOINT")
    finally:
        con.close()


def discard(candidate: Path) -> None:
    """Remove a candidate, its write-ahead log and its checks' verdicts."""
    import shutil

    for p in (Path(candidate), wal_path(candidate)):
        try:
            p.unlink(missing_ok=True)
        except OSError:  # a read-only folder: there is nothing of ours to remove anyway
            if p.exists():
                raise
    shutil.rmtree(_verdicts(candidate), ignore_errors=True)
