"""After a late delivery only its cycle's rows are rebuilt, and the warehouse equals a full build."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from iga_pipeline import cli, staging
from iga_pipeline.pseudonym import key_from_env
from iga_pipeline.synth import scale
from iga_pipeline.warehouse import build, duck

pytestmark = pytest.mark.slow

N, SEED = 1_500, 11
KEY = "incremental-build-test-key"


def tables(warehouse) -> dict[str, list]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        names = [f"{s}.{t}" for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('staging', 'intermediate', 'marts') AND table_type = 'BASE TABLE' "
            "AND table_name NOT IN ('build_inputs', 'delivery_log', 'delivery_history')").fetchall()]
        out = {n: sorted(con.execute(f"SELECT * FROM {n}").fetchall(), key=repr) for n in names}
        # Python ints from INTEGER and BIGINT compare equal: the types are compared too
        out["types"] = con.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema IN ('staging', 'intermediate', 'marts', 'reference') ORDER BY ALL").fetchall()
        # what BI tools show as descriptions: an incremental build replaces most marts too
        out["comments"] = con.execute(
            "SELECT table_name, NULL, comment FROM duckdb_tables() WHERE schema_name = 'marts' UNION ALL "
            "SELECT table_name, column_name, comment FROM duckdb_columns() WHERE schema_name = 'marts' "
            "ORDER BY ALL").fetchall()
        return out
    finally:
        con.close()


class Built:
    def __init__(self, code, warehouse, stdout):
        self.exit_code, self.warehouse, self.stdout = code, warehouse, stdout

    def query(self, sql):
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


def run(raw, warehouse, *extra) -> Built:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IGA_PSEUDONYM_KEY", KEY)
        for name in ("DAGSTER_HOME", "IGA_ENV", "IGA_RAW_DIR", "IGA_WAREHOUSE"):
            mp.delenv(name, raising=False)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["build", "--raw-dir", str(raw), "--warehouse", str(warehouse), *extra])
    return Built(code, warehouse, out.getvalue())


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("incremental")
    raw = root / "raw"
    scale.generate_scaled(raw, N, SEED)
    live = root / "live" / "iga.duckdb"
    first = run(raw, live)
    assert first.exit_code == 0
    assert build.build_mode(live) == "full"
    shutil.copytree(live.parent, root / "marked")  # for test_the_late_delivery_leaves_...
    shutil.copytree(live.parent, root / "before")  # read only: copied by the tests that build it
    scale.write_late_followup(raw, N, SEED, cycle=8)
    late = run(raw, live, "--cycle", "8")
    fresh = run(raw, root / "fresh" / "iga.duckdb")
    late.marked = root / "marked" / "iga.duckdb"
    late.before = root / "before" / "iga.duckdb"
    return first, late, fresh


# One participation of cycle 1, and its interventions, deleted from the per-cycle marts by hand.
MARKED = "(SELECT min(participation_id) FROM marts.fct_intervention WHERE starts_with(participation_id, 'c1-'))"


def test_the_late_delivery_leaves_the_other_cycles_rows_alone(builds):
    """Not only what the build says it did (`build_mode`): rows of cycle 1 deleted by hand
    from a copy of the first build stay deleted after the late delivery's build of that copy,
    while cycle 8's rows are rebuilt as in the other warehouse (a review: a build replacing
    every cycle's rows passed when only the label was checked)."""
    _, late, _ = builds
    marked = late.marked
    with duckdb.connect(str(marked)) as con:
        [(pid,)] = con.execute(f"SELECT {MARKED}").fetchall()
        for table in ("fct_participation", "fct_intervention"):
            con.execute(f"DELETE FROM marts.{table} WHERE participation_id = ?", [pid])
    rebuilt = run(marked.parent.parent / "raw", marked, "--cycle", "8")
    assert rebuilt.exit_code == 0 and build.build_mode(marked) == "cycles 8"
    for table in ("fct_participation", "fct_intervention"):
        ids = {r[0] for r in rebuilt.query(f"SELECT participation_id FROM marts.{table}")}
        assert pid not in ids and pid in {r[0] for r in late.query(f"SELECT participation_id FROM marts.{table}")}
        eight = f"SELECT * FROM marts.{table} WHERE starts_with(participation_id, 'c8-') ORDER BY ALL"
        assert rebuilt.query(eight) == late.query(eight) != []


def test_a_cycle_build_loads_the_delivery_log_whole(builds, tmp_path):
    """The delivery log is no per-cycle table: a `--cycle` build makes staging.delivery_log
    again from the whole log file, as a full build does. A rewrite of the incremental path
    once replaced only the built cycle's rows of it, and kept the others as the copied
    warehouse had them (rows of cycle 1 deleted by hand here)."""
    _, late, _ = builds
    shutil.copytree(late.before.parent, tmp_path / "live")
    warehouse = tmp_path / "live" / "iga.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        assert con.execute("DELETE FROM staging.delivery_log WHERE cycle = 1").fetchone()[0] > 0
    rebuilt = run(late.before.parent.parent / "raw", warehouse, "--cycle", "8")
    assert rebuilt.exit_code == 0 and build.build_mode(warehouse) == "cycles 8"
    log = tmp_path / "live" / "staging" / "delivery_log.parquet"
    with duckdb.connect() as con:
        want = con.execute(f"SELECT * FROM read_parquet('{log}', file_row_number = true)").fetchall()
    assert sorted(rebuilt.query("SELECT * FROM staging.delivery_log"), key=repr) == sorted(want, key=repr)


def test_the_late_delivery_rebuilds_only_its_cycle(builds):
    _, late, _ = builds
    assert late.exit_code == 0
    assert build.build_mode(late.warehouse) == "cycles 8"
    assert late.query("SELECT followed_up FROM marts.outcomes_by_cycle WHERE cycle = 8") == [(True,)]


def test_the_printed_table_puts_the_subtotal_after_its_last_cycle(builds):
    first, late, _ = builds
    for built, last in ((first, 7), (late, 8)):
        labels = [" ".join(line.split()[:2]) for line in built.stdout.splitlines()
                  if line.startswith(("  Cykel", "  Delsumma", "  TOTALT"))]
        assert labels == ([f"Cykel {c}" for c in range(1, last + 1)] + [f"Delsumma (1-{last})"]
                          + [f"Cykel {c}" for c in range(last + 1, 9)] + ["TOTALT (1-8)"]), labels


def test_every_build_writes_a_file_that_duckdb_1_4_reads(builds):
    """BI tools' DuckDB drivers lag behind (Metabase's, Evidence's, ODBC: DuckDB 1.x), and a
    file in DuckDB 2.0's own storage format opens in none of them; DuckDB 1.3 read a file in
    its own format written by 2.0 wrongly (docs/bi-access.md)."""
    for built in builds:
        con = duck.open_readonly(built.warehouse)
        try:
            (version,) = con.execute("SELECT tags['storage_version'] FROM duckdb_databases() "
                                     "WHERE database_name = 'warehouse'").fetchone()
        finally:
            con.close()
        assert version == "v1.4.0+", (built.warehouse, version)


def test_the_incremental_warehouse_equals_a_full_build(builds):
    _, late, fresh = builds
    assert build.build_mode(fresh.warehouse) == "full"
    got, want = tables(late.warehouse), tables(fresh.warehouse)
    assert got.keys() == want.keys() and "marts.fct_participation" in got
    for name in want:
        assert got[name] == want[name], name


def _recorded(warehouse) -> dict[str, str]:
    """What a build recorded of its inputs (and how it was built, and its size)."""
    con = duck.open_readonly(warehouse)
    try:
        return build.recorded_inputs(con)
    finally:
        con.close()


def _recorded_inputs(warehouse) -> dict[str, str]:
    return {k: v for k, v in _recorded(warehouse).items() if k not in ("build", "full_build_bytes")}


def test_changed_code_or_many_cycles_build_fully(tmp_path, builds):
    first, _, fresh = builds
    inputs = build._build_inputs(first.warehouse.parent / "staging", None)
    assert build._changed_cycles(first.warehouse, inputs) is None  # other extra marts: other code
    assert build._changed_cycles(tmp_path / "missing.duckdb", inputs) is None
    # the same code: up to half the cycles changed are replaced, more are built fully
    same = _recorded_inputs(fresh.warehouse)
    assert sum(k.startswith("cycle=") for k in same) == 8
    assert build._changed_cycles(fresh.warehouse, same) == []
    four = {**same, **{f"cycle={c}": "changed" for c in (1, 2, 3, 4)}}
    assert build._changed_cycles(fresh.warehouse, four) == [1, 2, 3, 4]
    five = {**four, "cycle=5": "changed"}
    assert build._changed_cycles(fresh.warehouse, five) is None
    # a file grown past REBUILD_WHEN_GROWN times its full build's size is compacted by a full build
    grown = first.warehouse  # its late delivery's rows replaced in place
    assert grown.stat().st_size > build.REBUILD_WHEN_GROWN * int(_recorded(grown)["full_build_bytes"])
    assert build._changed_cycles(grown, _recorded_inputs(grown)) is None


def test_a_build_with_no_cycle_changed_says_so(tmp_path, builds):
    """Only the files of no cycle changed (the sensor's raw/inventory run): the build copies
    the previous warehouse, replaces no cycle's rows, and says so (it said 'cycles ')."""
    from iga_pipeline.evaluation import EVALUATION_MARTS

    _, _, fresh = builds
    again = build.build_candidate(fresh.warehouse.parent / "staging", tmp_path / "again.duckdb",
                                  EVALUATION_MARTS, previous=fresh.warehouse)
    assert build.build_mode(again) == "no cycle changed"


def test_a_cycle_staged_with_another_column_type_builds_fully(tmp_path):
    """When one changed cycle's staged file gives a column another type, a full build would
    give the table that type (DuckDB's union of every file's schema): the incremental path
    must not insert the cycle's rows into the old type, but build fully (a review's mutation
    switched the guard off, unseen)."""
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from iga_pipeline.evaluation import EVALUATION_MARTS

    live = tmp_path / "live" / "iga.duckdb"
    assert run(Path(__file__).resolve().parents[1] / "data" / "raw", live).exit_code == 0
    staged = live.parent / "staging" / "cycle=8" / "audit.parquet"
    table = pq.read_table(staged)
    pq.write_table(table, staged)  # the same rows written again: cycle 8 changed, the types not
    same = build.build_candidate(live.parent / "staging", tmp_path / "same.duckdb", EVALUATION_MARTS, previous=live)
    assert build.build_mode(same) == "cycles 8"
    i = table.schema.get_field_index("rows_read")
    assert pa.types.is_integer(table.schema.field(i).type)
    pq.write_table(table.set_column(i, "rows_read", table.column(i).cast(pa.float64())), staged)
    candidate = build.build_candidate(live.parent / "staging", tmp_path / "candidate.duckdb", EVALUATION_MARTS,
                                      previous=live)
    assert build.build_mode(candidate) == "full"
    con = duckdb.connect(str(candidate), read_only=True)
    try:
        assert con.execute("SELECT data_type FROM information_schema.columns WHERE table_schema = 'staging' "
                           "AND table_name = 'audit' AND column_name = 'rows_read'").fetchall() == [("DOUBLE",)]
    finally:
        con.close()


def test_a_late_delivery_rejected_whole_still_rebuilds_only_its_cycle(tmp_path):
    """A cycle's staged column that holds nothing (no file rejected whole: every audit
    `reason` empty) is stored as text, not as Parquet's type of nothing: otherwise the first
    file rejected whole, or the first survey, changed the column's type over every cycle, and
    `--cycle N` fell back to a full build ("a full build would give other columns").
    A file of no cycle (its `unexpected_file` warning has no cycle) is in the incremental
    build once, as in a full one (a review's mutation kept it twice, unseen)."""
    import shutil
    from pathlib import Path

    import pyarrow.parquet as pq

    raw = tmp_path / "raw"
    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "raw", raw)
    (raw / "anteckningar.txt").write_text("notes\n", "utf-8")
    live = tmp_path / "live" / "iga.duckdb"
    assert run(raw, live).exit_code == 0
    audit = pq.read_schema(live.parent / "staging" / "cycle=6" / "audit.parquet")
    assert str(audit.field("reason").type) == "string"
    export = raw / "leverantorer" / "astorp" / "cykel6.json"
    export.write_text(export.read_text("utf-8").replace('"cykel": 6', '"cykel": 7', 1), "utf-8")
    late = run(raw, live, "--cycle", "6")
    assert late.exit_code == 3  # built; a raw file was rejected whole
    assert build.build_mode(live) == "cycles 6"
    assert late.query("SELECT status, reason FROM marts.ingest_audit "
                      "WHERE source_file = 'leverantorer/astorp/cykel6.json'") == [("rejected", "cycle_mismatch")]
    fresh = run(raw, tmp_path / "fresh" / "iga.duckdb")
    got, want = tables(live), tables(fresh.warehouse)
    for name in want:
        assert got[name] == want[name], name
    assert late.query("SELECT count(*) FROM marts.data_quality_issues "
                      "WHERE reason = 'unexpected_file'") == [(1,)]


def test_a_build_replacing_two_cycles_equals_a_full_build(tmp_path, builds):
    """Up to half the cycles changed are replaced in a copy, not rebuilt: with two, each one's
    rows of the per-participation marts are replaced (the late delivery above changes one
    cycle only; a review's mutation that replaced no cycle's rows when two had changed went
    unseen). A participation gone from the staging takes its interventions along."""
    from conftest import rewrite_parquet

    from iga_pipeline.evaluation import EVALUATION_MARTS

    _, _, fresh = builds
    folder = tmp_path / "staging"
    shutil.copytree(fresh.warehouse.parent / "staging", folder)  # copy2: the same mtimes
    previous = tmp_path / "previous.duckdb"
    shutil.copyfile(fresh.warehouse, previous)
    for cycle in (1, 2):  # in each, one participation with interventions is gone
        interventions = duck.quote(folder / f"cycle={cycle}" / "interventions.parquet")
        rewrite_parquet(folder / f"cycle={cycle}" / "participations.parquet",
                        "SELECT * FROM {src} WHERE participation_id <> "
                        f"(SELECT min(participation_id) FROM read_parquet({interventions}))")
    replaced = build.build_candidate(folder, tmp_path / "replaced.duckdb", EVALUATION_MARTS, previous=previous)
    assert build.build_mode(replaced) == "cycles 1,2"
    full = build.build_candidate(folder, tmp_path / "full.duckdb", EVALUATION_MARTS)
    got = tables(replaced)
    assert len(got["marts.fct_participation"]) == len(tables(fresh.warehouse)["marts.fct_participation"]) - 2
    assert len(got["marts.fct_intervention"]) < len(got["staging.interventions"])
    assert {r[0] for r in got["marts.fct_intervention"]} <= {r[0] for r in got["marts.fct_participation"]}
    assert got == tables(full)


def test_a_cycle_staged_by_other_code_is_not_built_into_the_warehouse(tmp_path):
    """After an upgrade, `--cycle N` re-ingests cycle N only: the other cycles' staging is
    what the old code made of their files (a review ran commits of 2026-12-02 to 12-05 and
    then `--cycle 3` of the new code: exit 0, and rows its rules reject, such as hours the
    P8 fix refuses, stayed in fct_intervention). The old code here is an honest copy of the
    package whose reference data lack a country code: it rejects every row born there, the
    code of today accepts them. Such a staging is refused until a full build restages it."""
    root = Path(__file__).resolve().parents[1]
    raw = tmp_path / "raw"
    shutil.copytree(root / "data" / "raw", raw)
    old = tmp_path / "old"
    shutil.copytree(root / "iga_pipeline", old / "iga_pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    countries = old / "iga_pipeline" / "reference" / "countries.csv"
    lines = countries.read_text("utf-8").splitlines(keepends=True)
    countries.write_text("".join(line for line in lines if not line.startswith("IQ,")), "utf-8")
    live = tmp_path / "live" / "iga.duckdb"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DAGSTER_HOME", "IGA_ENV", "IGA_RAW_DIR", "IGA_WAREHOUSE")}
    env.update(PYTHONPATH=str(old), IGA_PSEUDONYM_KEY=KEY)
    done = subprocess.run([sys.executable, "-m", "iga_pipeline.cli", "build", "--raw-dir", str(raw),
                           "--warehouse", str(live)], cwd=old, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = run(raw, tmp_path / "fresh" / "iga.duckdb")
    assert fresh.exit_code == 0
    loaded = "SELECT sum(rows_loaded) FROM marts.ingest_audit"
    assert Built(0, live, "").query(loaded) < fresh.query(loaded)  # the old code's staging differs
    before = tables(live)
    late = run(raw, live, "--cycle", "3")
    assert late.exit_code == 1  # it was 0, with every cycle but 3 as the old code staged it
    assert tables(live) == before  # the previous warehouse is left as it was
    problems = staging.not_ready(live.parent / "staging", range(1, 9),
                                 key_from_env({"IGA_PSEUDONYM_KEY": KEY}))
    assert [p for p in problems if "another version of the code" in p and "full build" in p]
    assert "cycle 3 " not in " ".join(problems)  # staged again by this code
    again = run(raw, live)  # a full build stages every cycle again
    assert again.exit_code == 0
    got, want = tables(live), tables(fresh.warehouse)
    for name in want:
        assert got[name] == want[name], name
