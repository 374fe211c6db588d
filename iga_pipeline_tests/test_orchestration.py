"""Orchestration: cycle partitions, the delivery sensor, blocking checks and the safe publish.

Nothing is mocked. The bundled raw files are copied into tmp_path; the
project's own jobs run in process through Dagster (`execute_in_process`);
the warehouse is a real DuckDB file; a reader and a build that is killed with
SIGKILL run in real subprocesses. One full build per module is shared: tests
that need a built warehouse copy it (raw root, staging, live file) into their
own tmp_path, then change it as a late delivery would.

Queries go through `ATTACH ... (READ_ONLY)` from a fresh in-memory DuckDB:
`duckdb.connect(path)` would hand back the database that another connection
of this process already holds open (DuckDB caches instances by path), and so
hide the file that is on disk now.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import TEST_SECRET, rewrite_parquet, sigkill_group, someone_waits_for
from dagster import (
    AssetCheckSeverity, AssetKey, AssetSelection, DagsterEventType, DagsterInstance, Definitions, SensorResult,
    SkipReason, build_sensor_context, define_asset_job, evaluate_automation_conditions,
)
from dagster._core.instance.ref import InstanceRef

from iga_pipeline import settings
from iga_pipeline.definitions import defs
from iga_pipeline.defs.assets import (
    INVENTORY, LIVE_NOW, LIVE_WITH_THE_PUBLISH, NO_FILE_REJECTED, PUBLISH_IN_RUN, PUBLISHED,
    RAW, REPORT, harmonised_key, mart_key,
)
from iga_pipeline.defs.automation import all_cycles_tags, raw_delivery_sensor
from iga_pipeline.defs.checks import failure_details, pandera_checks
from iga_pipeline.defs.resources import IGAResource
from iga_pipeline.personnummer import normalise_one
from iga_pipeline.settings import INSTANCE_MARK
from iga_pipeline.sources.common import discover
from iga_pipeline.warehouse import export
from iga_pipeline.warehouse.build import CANDIDATE_MARK, WAL_SUFFIX
from iga_pipeline.warehouse.publish import publishing
from iga_pipeline.warehouse.catalog import HARMONISED, MARTS

pytestmark = [
    pytest.mark.filterwarnings("ignore::dagster.BetaWarning"),
    pytest.mark.filterwarnings("ignore::dagster.PreviewWarning"),
]

REPO = Path(__file__).resolve().parents[1]
BUNDLED_RAW = REPO / "data" / "raw"
FU3_90 = "leverantorer/folkuniversitetet/cykel3_90dagar.csv"  # Windows-1252, ';', CRLF
PARQUET = AssetKey(["warehouse", "parquet"])
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
HOUR = 3600


# --- helpers ------------------------------------------------------------------------------

def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DAGSTER_HOME", "IGA_ENV", "IGA_RAW_DIR", "IGA_WAREHOUSE")}
    env.update(IGA_PSEUDONYM_KEY=TEST_SECRET, PYTHONWARNINGS="ignore")
    return env


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    """Every run pseudonymises with the tests' secret (no development-key warning)."""
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
    for name in ("DAGSTER_HOME", "IGA_ENV", "IGA_RAW_DIR", "IGA_WAREHOUSE"):
        monkeypatch.delenv(name, raising=False)


def query(path: Path, sql: str, params=None) -> list[tuple]:
    """Rows of `sql` against the file that is at `path` now (schema `marts` etc. as usual)."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{path}' AS w (READ_ONLY)")
        con.execute("USE w")
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def mart_tables(path: Path) -> set[str]:
    return {r[0] for r in query(path, "SELECT table_name FROM information_schema.tables "
                                      "WHERE table_schema = 'marts'")}


def row_diff(old: Path, new: Path, table: str, where: str = "true") -> tuple[list, list]:
    """(rows only in the old file, rows only in the new file) of marts.<table>, as multisets."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{old}' AS o (READ_ONLY)")
        con.execute(f"ATTACH '{new}' AS n (READ_ONLY)")
        a = f"SELECT * FROM o.marts.{table} WHERE {where}"
        b = f"SELECT * FROM n.marts.{table} WHERE {where}"
        return (con.execute(f"{a} EXCEPT ALL {b}").fetchall(),
                con.execute(f"{b} EXCEPT ALL {a}").fetchall())
    finally:
        con.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, tuple]:
    """relative path -> (inode, mtime_ns, sha256) of every file under `folder`."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[p.relative_to(folder).as_posix()] = (st.st_ino, st.st_mtime_ns, sha(p))
    return out


def cycle3_90d(path: Path) -> tuple:
    (row,) = query(path, "SELECT completed, work_90d, studies_90d FROM marts.outcomes_by_cycle "
                         "WHERE cycle = 3")
    return row


@dataclass(frozen=True)
class Site:
    """A raw root and a warehouse folder of one test."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def live(self) -> Path:
        return self.root / "warehouse" / "iga.duckdb"

    @property
    def staging(self) -> Path:
        return self.live.parent / "staging"

    @property
    def parquet(self) -> Path:
        return self.live.parent / "parquet"

    def resources(self) -> dict:
        return {"iga": IGAResource(raw_dir=str(self.raw), warehouse=str(self.live))}

    def run(self, job: str = "build_all", *, partition_key: str | None = None,
            all_cycles: bool = False, tags: dict | None = None, instance=None,
            definitions: Definitions = defs, run_id: str | None = None):
        """Run a job of the project (or of `definitions`) in process; the result. A run id
        given again stands for a re-execution of that run (whose build id is the same)."""
        run_tags = dict(tags or {})
        if all_cycles:
            run_tags.update(all_cycles_tags())
        return definitions.resolve_job_def(job).execute_in_process(
            instance=instance or DagsterInstance.ephemeral(), resources=self.resources(),
            partition_key=partition_key, tags=run_tags or None, run_config=QUIET,
            run_id=run_id, raise_on_error=False)

    def leftovers(self) -> list[Path]:
        """Candidate files (and their WALs) beside the live warehouse."""
        return sorted(self.live.parent.glob(f"{self.live.name}{CANDIDATE_MARK}*"))

    def entries(self) -> set[str]:
        """What is in the warehouse folder and its report folder (names relative to the former)."""
        folder = self.live.parent
        names = {p.name for p in folder.iterdir()}
        if (folder / "report").is_dir():
            names |= {f"report/{p.name}" for p in (folder / "report").iterdir()}
        return names

    def age(self, paths, seconds: float) -> None:
        then = time.time() - seconds
        for p in paths:
            os.utime(p, (then, then))


def failure_message(result) -> str:
    lines = []
    for event in result.all_events:
        if event.is_step_failure:
            err = event.step_failure_data.error
            lines.append(f"{event.step_key}: {err.cause.message if err and err.cause else err}")
    return "\n".join(lines) or "no step failed"


def materialised(result) -> set[AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def job_with(selection, name: str) -> Definitions:
    """The project's definitions plus one job over `selection` (a subset of the asset graph)."""
    return Definitions.merge(defs, Definitions(jobs=[define_asset_job(name, selection=selection)]))


def redeliver_fu3_90d(raw: Path, live: Path, person_key) -> str:
    """Re-send cykel3_90dagar.csv with one status changed: a completer of cycle 3 who was in
    work at 90 days (Utfallskod 1) is now in studies (3). Returns their person_key.

    Same size, same encoding (Windows-1252) and line ends (CRLF): only the content differs."""
    path = raw / FU3_90
    lines = path.read_bytes().decode("cp1252").split("\r\n")
    header = lines[0].split(";")
    pnr_col, code_col = header.index("Personnummer"), header.index("Utfallskod")
    rows = {i: line.split(";") for i, line in enumerate(lines) if i and line}
    seen = Counter(r[pnr_col] for r in rows.values())
    in_work = {r[0] for r in query(live, "SELECT person_key FROM marts.fct_participation "
                                         "WHERE cycle = 3 AND completed AND status_90d = 'work'")}
    for i, row in rows.items():
        if row[code_col] != "1" or seen[row[pnr_col]] != 1:
            continue
        pnr12, problem = normalise_one(row[pnr_col], dt.date(2010, 1, 1))
        if problem is None and pnr12 and person_key(pnr12) in in_work:
            row[code_col] = "3"
            lines[i] = ";".join(row)
            path.write_bytes("\r\n".join(lines).encode("cp1252"))
            return person_key(pnr12)
    pytest.fail(f"{FU3_90} has no completer in work at 90 days to re-deliver")


def tick(raw: Path, cursor: str | None, settle_seconds: int = 0):
    """One evaluation of the real raw_delivery_sensor: (run requests, cursor, skip reason).
    The tests write files and tick at once: no wait for files to settle, unless asked."""
    context = build_sensor_context(cursor=cursor, resources={"iga": IGAResource(
        raw_dir=str(raw), settle_seconds=settle_seconds)})
    result = raw_delivery_sensor(context)
    if isinstance(result, SkipReason):
        return [], cursor, result
    assert isinstance(result, SensorResult)
    skip = result.skip_reason
    return list(result.run_requests or []), result.cursor, skip


# --- the shared full build ------------------------------------------------------------------

@dataclass
class Built:
    site: Site
    instance: DagsterInstance  # holds the materialisations of the full build


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    """Every cycle of the bundled data, built and published once (build_all, one run)."""
    site = Site(tmp_path_factory.mktemp("built"))
    shutil.copytree(BUNDLED_RAW, site.raw)
    instance = DagsterInstance.ephemeral()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
        result = site.run(all_cycles=True, instance=instance)
    assert result.success, failure_message(result)
    assert site.live.is_file() and not site.leftovers()
    return Built(site, instance)


@pytest.fixture
def site(built, tmp_path) -> Site:
    """A copy of the built site (raw root, staging, live warehouse, Parquet, GX) for one test."""
    own = Site(tmp_path / "site")
    shutil.copytree(built.site.root, own.root, symlinks=True)
    return own


# --- partition selection on a late delivery -------------------------------------------------

@pytest.mark.slow
def test_a_late_90_day_delivery_reruns_cycle_3_only_and_the_warehouse_follows(built, site,
                                                                              expected_key):
    instance = built.instance
    old = site.root / "published-before.duckdb"
    shutil.copy2(site.live, old)
    live_bytes = site.live.read_bytes()
    staging_before = snapshot(site.staging)
    _, cursor, _ = tick(site.raw, None)
    settled = evaluate_automation_conditions(defs=defs, instance=instance)
    assert settled.total_requested == 0, "after a full build the automation has nothing to do"

    person = redeliver_fu3_90d(site.raw, site.live, expected_key)

    # The sensor asks for cycle 3 and nothing else ...
    requests, _, _ = tick(site.raw, cursor)
    assert [r.partition_key for r in requests] == ["3"]

    # ... and that run re-ingests partition 3 only.
    ingest = site.run("ingest_cycle", partition_key=requests[0].partition_key,
                      tags=requests[0].tags, instance=instance)
    assert ingest.success, failure_message(ingest)
    events = ingest.get_asset_materialization_events()
    assert {e.partition for e in events} == {"3", None}  # None: raw/inventory
    assert {e.asset_key for e in events if e.partition} == {RAW, *(harmonised_key(n) for n in HARMONISED)}
    assert {e.asset_key for e in events if not e.partition} == {INVENTORY}  # files of no cycle

    staging_after = snapshot(site.staging)
    changed = {k for k in staging_before.keys() | staging_after.keys()
               if staging_before.get(k) != staging_after.get(k)}
    per_cycle = {k for k in changed if k.startswith("cycle=")}
    assert per_cycle, "cycle 3 was not re-staged"
    assert all(k.startswith("cycle=3/") for k in per_cycle), sorted(per_cycle)
    assert len({k for k in staging_before if k.startswith("cycle=")}) > 8  # the others are there
    assert staging_after["cycle=3/outcomes.parquet"][2] != staging_before["cycle=3/outcomes.parquet"][2]
    assert site.live.read_bytes() == live_bytes, "an ingest run must not touch the live warehouse"

    # The eager automation then asks for the marts and everything after them, not for raw or
    # harmonised partitions.
    after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    every = set(defs.resolve_all_asset_keys())
    requested = {k for k in every if after.get_num_requested(k)}
    assert requested == {k for k in every if k.path[0] not in ("raw", "harmonised")}
    assert {mart_key(m.name) for m in MARTS} | {PUBLISHED, PARQUET} <= requested

    follow = site.run("automation_run", instance=instance,
                      definitions=job_with(AssetSelection.assets(*requested), "automation_run"))
    assert follow.success, failure_message(follow)
    assert {PUBLISHED, PARQUET} <= materialised(follow)

    # The published marts changed exactly where the data changed.
    completed, work, studies = cycle3_90d(old)
    assert cycle3_90d(site.live) == (completed, work - 1, studies + 1)
    gone, came = row_diff(old, site.live, "fct_participation")
    assert len(gone) == len(came) == 1
    columns = [r[0] for r in query(site.live, "DESCRIBE marts.fct_participation")]
    gone, came = dict(zip(columns, gone[0])), dict(zip(columns, came[0]))
    assert gone["person_key"] == came["person_key"] == person and came["cycle"] == 3
    assert (gone["status_90d"], came["status_90d"]) == ("work", "studies")
    assert {k for k in columns if gone[k] != came[k]} <= {"status_90d", "status_90d_detail"}
    for mart in MARTS:
        if mart.group != "marts":
            continue
        columns = {r[0] for r in query(site.live, f"DESCRIBE marts.{mart.name}")}
        if "cycle" in columns:
            assert row_diff(old, site.live, mart.name, "CAST(cycle AS VARCHAR) <> '3'") == ([], []), \
                f"marts.{mart.name} changed outside cycle 3"
    # ... and the Parquet exports follow the published warehouse.
    (exported,) = query(site.live, "SELECT completed, work_90d, studies_90d FROM read_parquet(?) "
                                   "WHERE cycle = 3", [str(site.parquet / "outcomes_by_cycle.parquet")])
    assert exported == (completed, work - 1, studies + 1)


def test_a_misnamed_file_is_published_as_unexpected_by_the_sensor_and_the_automation(built, site):
    """A file of no cycle (here a cycle-3 delivery misnamed) reaches the published
    data_quality_issues through the sensor's raw/inventory run and the automation, without
    waiting for the next ingest or the nightly build; taken away, its warning goes too."""
    instance = built.instance
    _, cursor, _ = tick(site.raw, None)
    settled = evaluate_automation_conditions(defs=defs, instance=instance)
    assert settled.total_requested == 0, "after a full build the automation has nothing to do"

    def unexpected() -> list[tuple]:
        return query(site.live, "SELECT source_file, severity FROM marts.data_quality_issues "
                                "WHERE reason = 'unexpected_file' ORDER BY source_file")
    before = unexpected()
    misnamed = "leverantorer/folkuniversitetet/cykel3_90dagar (1).csv"
    shutil.copy2(site.raw / FU3_90, site.raw / misnamed)
    (listed,) = [d.source_file for d in discover(site.raw)  # as the warehouse names it (P2)
                 if d.cycle is None and d.source_file not in {row[0] for row in before}]
    staged_before = {k: v for k, v in snapshot(site.staging).items() if k.startswith("cycle=")}

    automation_cursor = settled.cursor
    for expected in (sorted([*before, (listed, "warning")]), before):
        (request,), cursor, _ = tick(site.raw, cursor)
        assert request.job_name == "list_unexpected_files"
        run = site.run(request.job_name, tags=request.tags, instance=instance)
        assert run.success, failure_message(run)
        assert materialised(run) == {INVENTORY}
        after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=automation_cursor)
        every = set(defs.resolve_all_asset_keys())
        requested = {k for k in every if after.get_num_requested(k)}
        assert requested == {k for k in every if k.path[0] not in ("raw", "harmonised")}
        follow = site.run("automation_run", instance=instance,
                          definitions=job_with(AssetSelection.assets(*requested), "automation_run"))
        assert follow.success, failure_message(follow)
        assert PUBLISHED in materialised(follow)
        automation_cursor = after.cursor
        assert unexpected() == expected
        # the mart's breakdown in the UI counts them, though they have no source row
        (by_reason,) = [e.materialization.metadata["by_reason"].value
                        for e in follow.get_asset_materialization_events()
                        if e.asset_key == mart_key("data_quality_issues")]
        assert {(s, r): int(n) for s, r, n in markdown_rows(by_reason)[1:] if r == "unexpected_file"} == \
            Counter((severity, "unexpected_file") for _, severity in expected)
        (site.raw / misnamed).unlink(missing_ok=True)
    # no cycle was ingested again
    assert {k: v for k, v in snapshot(site.staging).items() if k.startswith("cycle=")} == staged_before


def first_metadata(built: Built, key: AssetKey, partition: str | None = None) -> dict:
    """The metadata values of the shared build's materialisation of `key` (build_all's: later
    tests add other runs to its instance)."""
    from dagster import AssetRecordsFilter

    records = built.instance.fetch_materializations(AssetRecordsFilter(
        asset_key=key, asset_partitions=[partition] if partition else None), limit=1, ascending=True).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def markdown_rows(table: str) -> list[list[str]]:
    """The rows of a Markdown table of the metadata (its header first), cell by cell."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for i, line in enumerate(table.splitlines()) if i != 1]


def test_a_run_of_several_cycles_labels_its_counts_as_theirs(built):
    """Dagster keeps one result for every partition of a range run (build_all): the UI then
    shows it on each cycle, so it says that it covers the run's cycles and gives each one's."""
    staged = {c: len(pd.read_parquet(built.site.staging / f"cycle={c}" / "participations.parquet"))
              for c in range(1, 9)}
    for partition in ("3", "8"):
        metadata = first_metadata(built, harmonised_key("participations"), partition)
        assert "rows" not in metadata
        assert metadata["rows, all 8 cycles of the run"] == sum(staged.values())
        table = [line.strip("|").split("|") for line in metadata["rows by cycle"].splitlines()[2:]]
        assert {int(c): int(n) for c, n in table} == staged
        assert "files, all 8 cycles of the run" in first_metadata(built, RAW, partition)
    assert first_metadata(built, harmonised_key("audit"), "3")["files rejected whole"] == 0


def test_raw_deliveries_records_the_version_of_each_file_it_saw(built):
    """The evaluator can tell from the UI which version of each raw file a run read: the
    SHA-256 that raw/deliveries shows is the file's on disk and marts.ingest_audit's."""
    from dagster import AssetRecordsFilter

    records = built.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=RAW, asset_partitions=["5"]), limit=1, ascending=True).records
    table = records[0].asset_materialization.metadata["files_hashed"].value
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    shown = {file: digest for cycle, file, kind, size, digest in rows}
    assert {int(cycle) for cycle, *_ in rows} == set(range(1, 9))  # build_all: every cycle's files
    on_disk = {f: hashlib.sha256((built.site.raw / f).read_bytes()).hexdigest() for f in shown}
    assert shown == on_disk
    audited = dict(query(built.site.live, "SELECT source_file, sha256 FROM marts.ingest_audit"))
    assert shown == audited


def test_the_marts_show_the_rows_columns_and_breakdowns_of_the_published_warehouse(built):
    """What the UI shows of each mart is the published file's: its row count, its columns
    (the Columns tab) in the table's order with their DuckDB types and the catalog's meanings,
    the two outcome marts' previews, and data_quality_issues by severity and reason (issues of
    a whole file, which have no row, are counted too: the next test); harmonised/issues shows
    the staged issues by reason."""
    live = built.site.live
    for m in MARTS:
        metadata = first_metadata(built, mart_key(m.name))
        assert metadata["dagster/row_count"] == query(live, f"SELECT count(*) FROM marts.{m.name}")[0][0], m.name
        columns = metadata["dagster/column_schema"].columns
        assert [(c.name, c.type) for c in columns] == [
            (name, data_type) for name, data_type, *_ in query(live, f"DESCRIBE marts.{m.name}")], m.name
        assert [c.description for c in columns] == [m.columns[c.name] for c in columns], m.name
        assert metadata["publish"] == PUBLISH_IN_RUN
    for name in ("outcomes_by_cycle", "outcomes_summary"):
        metadata = first_metadata(built, mart_key(name))
        header, *rows = markdown_rows(metadata["preview"])
        assert header == [c.name for c in metadata["dagster/column_schema"].columns]
        assert len(rows) == query(live, f"SELECT count(*) FROM marts.{name}")[0][0] > 0, name

    _, *rows = markdown_rows(first_metadata(built, mart_key("data_quality_issues"))["by_reason"])
    assert {(severity, reason): int(n) for severity, reason, n in rows} == {
        (severity, reason): n for severity, reason, n in query(
            live, "SELECT severity, reason, count(*) FROM marts.data_quality_issues GROUP BY ALL")}

    staged = pd.concat([pd.read_parquet(f) for f in built.site.staging.glob("cycle=*/issues.parquet")])
    _, *rows = markdown_rows(first_metadata(built, harmonised_key("issues"), "1")["by_reason"])
    assert {(severity, reason): int(n) for severity, reason, n in rows} == \
        staged.groupby(["severity", "reason"]).size().to_dict()


def test_the_report_of_a_build_says_where_it_is_read_and_the_cells_that_differ_from_the_print(built):
    """The report's materialisation names the page as it is read once published (not the
    pending file, renamed away by the publish) and counts the cells of the printed Table 1
    that the recomputation contradicts (misprints, or the data's differences from the print:
    the page tells which, the metadata names neither)."""
    metadata = first_metadata(built, REPORT)
    page = built.site.live.parent / "report" / "index.html"
    assert metadata["path"] == str(page) and page.is_file()
    assert metadata["live"] == LIVE_WITH_THE_PUBLISH
    flagged = query(built.site.live, "SELECT row_label, column_name FROM marts.published_reconciliation "
                                     "WHERE NOT matches ORDER BY row_order, column_order")
    assert metadata["cells_differing_from_print"] == len(flagged) > 0
    header, *rows = markdown_rows(metadata["differences_from_print"])
    assert header[:2] == ["row_label", "column_name"]
    assert [tuple(row[:2]) for row in rows] == flagged


def test_the_publish_of_a_build_says_it_published_the_file_it_names(built):
    """warehouse/published's materialisation is what the marts' 'publish' and the report's and
    the exports' 'live' send the evaluator to: it says that it published, and names the live
    file with its size."""
    metadata = first_metadata(built, PUBLISHED)
    assert metadata == {"path": str(built.site.live), "bytes": built.site.live.stat().st_size,
                        "published": True, "files rejected whole": "none",
                        "followed up at 90 days": "cycles 1, 2, 3, 4, 5, 6, 7; not followed up: 8"}


def test_the_report_of_a_build_shows_the_goals_it_renders(built):
    """The report's materialisation shows goal attainment as the published mart has it, goal by
    goal with its status, and the size of the page that went live."""
    metadata = first_metadata(built, REPORT)
    header, *rows = markdown_rows(metadata["goals"])
    assert header == ["goal_id", "scope", "numerator", "denominator", "value", "target", "status", "coverage"]
    goals = query(built.site.live, "SELECT goal_id, scope, status FROM marts.goal_attainment")
    assert [(row[0], row[1], row[6]) for row in rows] == [tuple(map(str, g)) for g in goals] and goals
    assert metadata["bytes"] == (built.site.live.parent / "report" / "index.html").stat().st_size


def test_the_goals_of_the_report_say_what_they_are_measured_against(built):
    """An evaluator's review: the report's materialisation gave HM1 a value of 0.800 and the
    status not_assessable, HM2 0.381 not_met, with neither the target nor the survey coverage
    that decides whether HM1 can be judged. Both are shown, as the mart has them."""
    header, *rows = markdown_rows(first_metadata(built, REPORT)["goals"])
    shown = {(r[0], r[1]): dict(zip(header, r)) for r in rows}
    for goal_id, scope, target, coverage in query(
            built.site.live, "SELECT goal_id, scope, target, coverage FROM marts.goal_attainment"):
        assert shown[goal_id, scope]["target"] == f"{target:.3f}"
        assert shown[goal_id, scope]["coverage"] == ("NULL" if coverage is None else f"{coverage:.3f}")
    assert shown["HM1", "all"]["status"] == "not_assessable" and shown["HM1", "all"]["coverage"] != "NULL"


def test_the_exports_of_a_build_say_they_go_live_with_its_publish(built):
    """The Parquet step of a build writes the candidate's exports, pending: its materialisation
    says so (as the report's does), names the folder they go live in and counts a file per mart."""
    metadata = first_metadata(built, PARQUET)
    assert metadata["live"] == LIVE_WITH_THE_PUBLISH
    assert metadata["path"] == str(built.site.parquet)
    assert metadata["files"] == len(MARTS) == len(list(built.site.parquet.glob("*.parquet")))


def test_the_checks_of_the_marts_say_which_cycles_they_did_not_validate_again(site):
    """Run again over rows that passed before (here on their own, over the live warehouse of the
    build), Great Expectations' check of fct_participation validates no cycle again, and its
    metadata says so, cycle by cycle, beside the data docs it links: an evaluator reading '0
    expectations' learns why."""
    from iga_pipeline.defs.checks import gx_mart_checks

    result = site.run("gx_checks", definitions=job_with(AssetSelection.checks(gx_mart_checks), "gx_checks"))
    assert result.success, failure_message(result)
    checks = {e.check_name: e.metadata for e in result.get_asset_check_evaluations()}
    again = checks.pop("gx_fct_participation")
    assert again["not_revalidated"].value == "cycle 1, 2, 3, 4, 5, 6, 7, 8: passed before, rows unchanged since"
    assert again["expectations"].value == 0
    assert checks and {m["not_revalidated"].value for m in checks.values()} == {"none"}
    assert all(m["expectations"].value > 0 and Path(m["data_docs"].value).is_file() for m in checks.values())


def test_a_run_of_raw_inventory_counts_the_files_of_no_cycle(raw_copy, tmp_path):
    """The sensor's run of the files of no cycle shows how many there are on raw/inventory,
    as the warehouse lists them (unexpected_file): here two more than the bundled ones."""
    strays = len([d for d in discover(raw_copy) if d.cycle is None])
    (raw_copy / "LASMIG.txt").write_text("a file of no cycle\n")
    shutil.copy2(raw_copy / FU3_90, raw_copy / "leverantorer/folkuniversitetet/cykel3_90dagar (1).csv")
    result = Site(tmp_path).run("list_unexpected_files")
    assert result.success, failure_message(result)
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == INVENTORY
    assert event.materialization.metadata["unexpected_files"].value == strays + 2


def test_a_run_of_raw_inventory_names_the_files_of_no_cycle_as_the_warehouse_does(raw_copy, tmp_path):
    """An evaluator's review: a misnamed delivery dropped into the raw root showed on raw/inventory
    as "unexpected_files: 2", with nothing to tell which files. It lists them, named as
    marts.data_quality_issues names them: a name a sender chose (here a person's name and
    personnummer) is shown as ~ and a keyed id, never as written."""
    copy = "leverantorer/folkuniversitetet/cykel3_90dagar (1).csv"
    shutil.copy2(raw_copy / FU3_90, raw_copy / copy)
    (raw_copy / "enkater" / "Noor Abdullah 820201-0321.csv").write_text("svar_id\n1\n")
    site = Site(tmp_path)
    result = site.run("list_unexpected_files")
    assert result.success, failure_message(result)
    (event,) = result.get_asset_materialization_events()
    listed = event.materialization.metadata["files"].value
    header, *rows = markdown_rows(listed)
    assert header == ["source_file", "severity", "reason", "detail"]
    staged = pd.read_parquet(site.staging / "inventory_issues.parquet")
    assert sorted(r[0] for r in rows) == sorted(staged["source_file"]) and len(rows) >= 2
    assert {r[2] for r in rows} == {"unexpected_file"}
    assert any(r[0].startswith("enkater/~") for r in rows)
    assert "Noor" not in listed and "Abdullah" not in listed and "820201" not in listed


def test_a_run_of_one_cycle_counts_its_files_and_hashes_none_it_refused(raw_copy, tmp_path):
    """raw/deliveries of one cycle labels its counts plainly and by kind, and leaves out a
    delivery that ingestion refuses unopened (here a link out of the raw root): the file
    behind it is never read, so no digest of it is shown."""
    outside = tmp_path / "elsewhere.csv"
    outside.write_bytes((raw_copy / "enkater/enkat_cykel3.csv").read_bytes())
    (raw_copy / "enkater/enkat_cykel5.csv").symlink_to(outside)
    site = Site(tmp_path)
    assert site.raw == raw_copy
    result = site.run("raw_only", partition_key="5", definitions=job_with(AssetSelection.assets(RAW), "raw_only"))
    assert result.success, failure_message(result)
    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    read = [d for d in discover(raw_copy) if d.cycle == 5 and not d.refused]
    assert [d.source_file for d in discover(raw_copy) if d.refused] == ["enkater/enkat_cykel5.csv"]
    assert (metadata["files"], metadata["bytes"]) == (len(read), sum(d.path.stat().st_size for d in read))
    header, *rows = markdown_rows(metadata["files_by_kind"])
    assert header == ["kind", "files"]
    assert {kind: int(n) for kind, n in rows} == Counter(d.kind for d in read)
    hashed = metadata["files_hashed"]
    assert "enkat_cykel5" not in hashed and sha(outside) not in hashed
    assert len(markdown_rows(hashed)) == 1 + len(read)


@pytest.mark.slow
def test_a_file_rejected_whole_is_a_warning_of_the_run_that_names_it(site, monkeypatch):
    """A review's find (2026-12-02): a re-sent 90-day export that was not JSON replaced a good
    one; the run was green and said only "1 file(s) rejected whole", so cycle 6 went out as not
    followed up unnoticed. The run still succeeds (bad input is recorded, the build goes on),
    but it warns in its log, and its check no_file_rejected_whole fails as a warning, each
    naming the file (as the warehouse names it), the reason and its detail (the reason code
    alone left an engineer to open the warehouse to learn what was wrong)."""
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
    broken = "leverantorer/astorp/cykel6_90dagar.json"
    (site.raw / broken).write_text("{ not json")
    instance = DagsterInstance.ephemeral()
    ingest = site.run("ingest_cycle", partition_key="6", instance=instance)
    assert ingest.success, failure_message(ingest)
    (check,) = [e for e in ingest.get_asset_check_evaluations() if e.check_name == NO_FILE_REJECTED]
    assert check.passed is False and check.severity == AssetCheckSeverity.WARN
    table = check.metadata["rejected whole"].value
    detail = "not valid JSON: Expecting property name enclosed in double quotes (line 1, column 3)"
    assert broken in table and "unreadable_file" in table and detail in table, table
    assert failure_details(check.metadata) == table  # what `iga-pipeline build` prints of a failed run's check
    warnings = [e.user_message for e in instance.all_logs(ingest.run_id)
                if e.level == logging.WARNING and "rejected whole" in e.user_message]
    assert any(broken in w and f"unreadable_file ({detail})" in w for w in warnings), warnings

    # another cycle's ingest does not turn it green while cycle 6's file is still rejected
    other = site.run("ingest_cycle", partition_key="3", instance=instance)
    (check,) = [e for e in other.get_asset_check_evaluations() if e.check_name == NO_FILE_REJECTED]
    assert check.passed is False and broken in check.metadata["rejected whole"].value

    (site.raw / broken).unlink()  # taken back: the check passes again
    again = site.run("ingest_cycle", partition_key="6", instance=instance)
    assert [e.passed for e in again.get_asset_check_evaluations() if e.check_name == NO_FILE_REJECTED] == [True]


@pytest.mark.slow
def test_a_publish_without_a_file_rejected_whole_says_so_and_what_it_did_to_the_follow_up(site, monkeypatch):
    """An evaluator's review in the UI: a broken re-send of cycle 7's 90-day file was rejected
    whole, and the warehouse published after it had cycle 7 not followed up (the Delsumma became
    1-6, every goal moved); only harmonised/audit's warning said a file was rejected, and
    warehouse/published said "published: true". The publish names the files rejected whole of
    what it put live, warns in the run's log, and says which cycles are followed up."""
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
    broken = "leverantorer/astorp/cykel7_90dagar.json"
    (site.raw / broken).write_bytes((site.raw / broken).read_bytes()[:900])  # cut off mid-way
    instance = DagsterInstance.ephemeral()
    result = site.run(all_cycles=True, instance=instance)
    assert result.success, failure_message(result)
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == PUBLISHED]
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["published"] is True
    header, *rows = markdown_rows(metadata["files rejected whole"])
    assert header == ["source_file", "reason", "detail", "cycle"]
    assert [[r[0], r[1], r[3]] for r in rows] == [[broken, "unreadable_file", "7"]]
    assert metadata["followed up at 90 days"] == "cycles 1, 2, 3, 4, 5, 6; not followed up: 7, 8"
    assert query(site.live, "SELECT followed_up FROM marts.outcomes_by_cycle WHERE cycle = 7") == [(False,)]
    warnings = [e.user_message for e in instance.all_logs(result.run_id)
                if e.level == logging.WARNING and e.step_key == "warehouse__published"]
    assert any("published without 1 raw file(s) rejected whole" in w and f"{broken} (unreadable_file)" in w
               for w in warnings), warnings


def test_a_file_rejected_whole_whose_staged_issues_cannot_be_read_has_no_nan_for_detail(tmp_path):
    """The check no_file_rejected_whole gives each file's detail from the staged issues; where
    those cannot be read (a damaged issues.parquet, pandera_issues names it) the detail is
    unknown, and the table read 'nan' (a review's find)."""
    from iga_pipeline.defs.checks import _files_rejected_whole

    (tmp_path / "raw").mkdir()
    cycle6 = tmp_path / "wh" / "staging" / "cycle=6"
    cycle6.mkdir(parents=True)
    broken = "leverantorer/astorp/cykel6_90dagar.json"
    pd.DataFrame({"cycle": [6], "source_file": [broken], "status": ["rejected"],
                  "reason": ["unreadable_file"]}).to_parquet(cycle6 / "audit.parquet")
    (cycle6 / "issues.parquet").write_bytes(b"not parquet")
    check = _files_rejected_whole(IGAResource(raw_dir=str(tmp_path / "raw"),
                                              warehouse=str(tmp_path / "wh" / "iga.duckdb")))
    table = check.metadata["rejected whole"].value
    assert check.passed is False and broken in table and "unreadable_file" in table, table
    assert "nan" not in table, table


@pytest.mark.parametrize("selection, partition_key", [
    (None, "3"),  # the job ingest_cycle: raw/deliveries refuses first
    (AssetSelection.assets(*(harmonised_key(n) for n in HARMONISED)), "3"),  # the ingest alone, from the UI
    (AssetSelection.assets(*(mart_key(m.name) for m in MARTS)), None),  # the marts alone
], ids=["ingest_cycle", "harmonised", "marts"])
def test_a_run_in_an_instance_of_another_warehouse_fails_before_reading(site, tmp_path, selection, partition_key):
    """The deployment's side of one instance per warehouse (settings.claim_instance): a run in
    an instance that a build of another warehouse used first fails at once, saying why, and
    writes nothing, whichever step it starts at."""
    home = tmp_path / "home"
    home.mkdir()
    (home / INSTANCE_MARK).write_text(f"{tmp_path / 'other' / 'iga.duckdb'}\n")
    before = snapshot(site.live.parent)
    with DagsterInstance.local_temp(str(home)) as instance:
        if selection is None:
            result = site.run("ingest_cycle", partition_key="3", instance=instance)
        else:
            result = site.run("selected", partition_key=partition_key, instance=instance,
                              definitions=job_with(selection, "selected"))
        assert not result.success
        assert "holds the runs of the warehouse" in failure_message(result)
        assert not result.get_asset_materialization_events()
    assert snapshot(site.live.parent) == before


@pytest.mark.parametrize("job", ["build_all", "__ASSET_JOB"])
def test_a_run_that_would_ingest_but_names_no_cycle_fails_before_anything_is_recorded(site, job):
    """`dagster job launch -j build_all` without the range tags, or `dagster asset materialize
    --select '*'` without `--partition` (the implicit asset job): Dagster failed only the
    partitioned steps, and raw/inventory's materialisation made the automation rebuild and
    publish the warehouse (a review's find). Now each raw step refuses first, saying how."""
    before = snapshot(site.live.parent)
    instance = DagsterInstance.ephemeral()
    result = site.run(job, instance=instance)
    assert not result.success
    assert materialised(result) == set()
    assert {e.step_key for e in result.all_events if e.is_step_failure} == {"raw__deliveries",
                                                                             "raw__inventory"}
    assert failure_message(result).count(
        "names no cycle: choose the cycles (the launchpad's partitions, `--partition`), or launch "
        "build_all with the tags dagster/asset_partition_range_start=1 and "
        "dagster/asset_partition_range_end=8") == 2
    assert snapshot(site.live.parent) == before
    assert site.run(job, instance=instance, all_cycles=True).success, "the same run, naming the cycles, builds"
    assert site.run("list_unexpected_files", instance=instance).success, "a run that does not ingest needs none"


def test_a_run_of_the_ingest_without_raw_deliveries_that_names_no_cycle_records_nothing(site):
    """raw/inventory with the harmonised assets, raw/deliveries left out (a selection in the
    UI): the ingest is in `harmonised`, so the guard looks at every partitioned asset selected,
    not at raw/deliveries alone (a review's find)."""
    before = snapshot(site.live.parent)
    selection = AssetSelection.assets(INVENTORY, *[harmonised_key(n) for n in HARMONISED])
    result = site.run("inventory_and_ingest", definitions=job_with(selection, "inventory_and_ingest"))
    assert not result.success
    assert materialised(result) == set()
    assert "this run would ingest but names no cycle" in failure_message(result)
    assert snapshot(site.live.parent) == before


# --- the delivery sensor: cursor and idempotency ---------------------------------------------

@pytest.fixture
def raw_copy(tmp_path) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(BUNDLED_RAW, raw)
    return raw


def cycles_with_files(raw: Path) -> list[str]:
    return sorted({str(d.cycle) for d in discover(raw) if d.cycle is not None}, key=int)


def test_sensor_first_tick_asks_once_per_cycle_then_nothing(raw_copy):
    (raw_copy / "notes.txt").write_text("a file of no cycle: listed by the cycles' runs")
    requests, cursor, _ = tick(raw_copy, None)
    assert [r.partition_key for r in requests] == cycles_with_files(raw_copy) == [str(c) for c in range(1, 9)]
    assert {r.job_name for r in requests} == {"ingest_cycle"}
    assert len({r.run_key for r in requests}) == len(requests)
    assert all(r.run_key.startswith(f"cycle-{r.partition_key}-") for r in requests)
    assert all(r.tags.get("iga/trigger") == "raw_delivery_sensor" for r in requests)
    assert cursor

    again, cursor2, skip = tick(raw_copy, cursor)
    assert again == [] and skip is not None
    assert json.loads(cursor2) == json.loads(cursor)


def test_sensor_touch_without_change_asks_nothing(raw_copy):
    _, cursor, _ = tick(raw_copy, None)
    for p in (raw_copy / FU3_90, raw_copy / "kommuner/1277/deltagare_cykel5.csv"):
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    requests, cursor2, skip = tick(raw_copy, cursor)
    assert requests == [] and skip is not None
    requests, _, _ = tick(raw_copy, cursor2)
    assert requests == []


def test_sensor_changed_new_and_deleted_files_ask_for_their_cycle_only(raw_copy):
    first, cursor, _ = tick(raw_copy, None)
    first_keys = {r.run_key for r in first}

    # one file changed (same size: only the content tells)
    path = raw_copy / FU3_90
    path.write_bytes(path.read_bytes().replace(b";1;", b";3;", 1))
    requests, cursor, _ = tick(raw_copy, cursor)
    assert [r.partition_key for r in requests] == ["3"]
    assert requests[0].run_key not in first_keys
    assert tick(raw_copy, cursor)[0] == []

    # corrected back, same size, with its old mtime put back (`cp -p`, an unpacked archive)
    st = path.stat()
    time.sleep(0.05)  # past the kernel's coarse clock, so the change time moves
    path.write_bytes(path.read_bytes().replace(b";3;", b";1;", 1))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    requests, cursor, _ = tick(raw_copy, cursor)
    assert [r.partition_key for r in requests] == ["3"]

    # a new file for a cycle (the survey of cycle 5 arrives)
    survey = raw_copy / "enkater/enkat_cykel5.csv"
    assert not survey.exists()
    survey.write_bytes((raw_copy / "enkater/enkat_cykel3.csv").read_bytes())
    requests, cursor, _ = tick(raw_copy, cursor)
    assert [r.partition_key for r in requests] == ["5"]

    # a file taken back
    (raw_copy / "kommuner/1292/deltagare_cykel7.csv").unlink()
    requests, cursor, _ = tick(raw_copy, cursor)
    assert [r.partition_key for r in requests] == ["7"]

    # two cycles at once: one request each, in cycle order
    (raw_copy / "kommuner/1275/deltagare_cykel2.csv").write_bytes(b"changed")
    (raw_copy / "kommuner/1275/deltagare_cykel8.csv").write_bytes(b"changed")
    requests, cursor, _ = tick(raw_copy, cursor)
    assert [r.partition_key for r in requests] == ["2", "8"]

    # a file that belongs to no cycle asks for raw/inventory alone, once; a change of its
    # content asks for nothing (the inventory lists names); its going asks again
    stray = raw_copy / "README.txt"
    stray.write_text("not a delivery")
    requests, cursor, _ = tick(raw_copy, cursor)
    assert [(r.job_name, r.partition_key, r.tags["iga/files"]) for r in requests] == [
        ("list_unexpected_files", None, "1")]
    assert requests[0].run_key.startswith("inventory-")
    assert len(json.loads(cursor)["strays"]) == 1
    stray.write_text("still not a delivery, longer")
    assert tick(raw_copy, cursor)[0] == []
    stray.unlink()
    again, cursor, _ = tick(raw_copy, cursor)
    assert [r.job_name for r in again] == ["list_unexpected_files"]
    assert again[0].run_key != requests[0].run_key

    # with a cycle's file in the same tick, the cycle's run alone (it lists them too)
    stray.write_text("not a delivery")
    survey.write_bytes(survey.read_bytes() + b"\r\n")
    requests, cursor, _ = tick(raw_copy, cursor)
    assert [(r.job_name, r.partition_key) for r in requests] == [("ingest_cycle", "5")]


def test_sensor_runs_count_the_files_that_asked_for_them(raw_copy):
    """Each run the sensor asks for carries iga/files, the count of the files that made it ask
    (the Runs page shows it): every file of a cycle on the first tick, then those changed, new
    or gone; for raw/inventory, the files of no cycle that came or went."""
    requests, cursor, _ = tick(raw_copy, None)
    per_cycle = Counter(str(d.cycle) for d in discover(raw_copy) if d.cycle is not None)
    assert {r.partition_key: int(r.tags["iga/files"]) for r in requests} == per_cycle
    (raw_copy / FU3_90).write_bytes((raw_copy / FU3_90).read_bytes().replace(b";1;", b";3;", 1))
    (raw_copy / "enkater/enkat_cykel3.csv").unlink()
    requests, cursor, _ = tick(raw_copy, cursor)
    assert [(r.partition_key, r.tags["iga/files"]) for r in requests] == [("3", "2")]
    strays = [raw_copy / "LASMIG.txt", raw_copy / "kommuner/anteckningar.txt"]
    for stray in strays:
        stray.write_text("a file of no cycle")
    requests, cursor, _ = tick(raw_copy, cursor)
    assert [(r.job_name, r.tags["iga/files"]) for r in requests] == [("list_unexpected_files", "2")]
    for stray in strays:
        stray.unlink()
    requests, cursor, _ = tick(raw_copy, cursor)
    assert [(r.job_name, r.tags["iga/files"]) for r in requests] == [("list_unexpected_files", "2")]


def test_sensor_waits_for_a_file_still_arriving(raw_copy):
    """A delivery written in two parts (an upload): nothing is asked for while its file keeps
    changing, the earlier version stays in the cursor meanwhile (a file being rewritten is
    no deletion), and the whole file is asked for once it has been still for the settle
    time. A review once saw half a file ingested and published."""
    _, cursor, _ = tick(raw_copy, None)
    path, survey = raw_copy / FU3_90, raw_copy / "enkater/enkat_cykel5.csv"
    whole, changed = path.read_bytes(), path.read_bytes().replace(b";1;", b";3;", 1)
    path.write_bytes(changed[: len(changed) // 2])  # half of a corrected file ...
    survey.write_bytes((raw_copy / "enkater/enkat_cykel3.csv").read_bytes()[:40])  # ... and of a new one
    requests, still, skip = tick(raw_copy, cursor, settle_seconds=2)
    assert requests == [] and skip is not None
    # the tick says what it waits for (it said "no new or changed deliveries", and then that and
    # what it waited for: two reviews' finds)
    assert skip.skip_message == ("nothing to ingest yet; waiting: cycle(s) 3, 5 had a file changed or "
                                 "removed less than 2 s ago, ingested once still")
    kept = json.loads(still)["files"]
    assert kept[FU3_90] == json.loads(cursor)["files"][FU3_90] and "enkater/enkat_cykel5.csv" not in kept
    time.sleep(1)
    path.write_bytes(changed)  # the rest arrives
    survey.write_bytes((raw_copy / "enkater/enkat_cykel3.csv").read_bytes())
    assert tick(raw_copy, still, settle_seconds=2)[0] == []  # changed a moment ago: still waiting
    time.sleep(2.1)
    requests, after, _ = tick(raw_copy, still, settle_seconds=2)
    assert [r.partition_key for r in requests] == ["3", "5"]
    assert json.loads(after)["files"][FU3_90][2] != json.loads(cursor)["files"][FU3_90][2]  # the whole file's hash
    assert whole != changed


def test_sensor_waits_for_a_file_copied_in_with_an_old_modification_time(raw_copy):
    """`cp -p` or `rsync -t` give a file that is still arriving the sender's old mtime: its
    change time says it is new (a review's mutation looked at the mtime alone, unseen)."""
    _, cursor, _ = tick(raw_copy, None)
    path = raw_copy / FU3_90
    path.write_bytes(path.read_bytes().replace(b";1;", b";3;", 1))
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))
    requests, still, _ = tick(raw_copy, cursor, settle_seconds=2)
    assert requests == []
    time.sleep(2.1)
    assert [r.partition_key for r in tick(raw_copy, still, settle_seconds=2)[0]] == ["3"]


def test_sensor_holds_a_cycle_back_while_any_of_its_files_is_arriving(raw_copy):
    """A review's find (2026-12-02): a corrected end-of-cycle file had settled while the 90-day
    file of the same cycle was half written. The settled file asked for the cycle, whose ingest
    reads every file of it: the half file was staged and published. Now the whole cycle keeps
    its previous entries until every file of it has been still for the settle time; another
    cycle's settled change is asked for meanwhile. A file of that cycle new to the sensor is
    not recorded meanwhile either, settled or not (a review's mutation recorded it, unseen:
    had the arriving file come back unchanged, the new one would never have been asked for)."""
    survey = raw_copy / "enkater/enkat_cykel3.csv"
    survey_bytes = survey.read_bytes()
    survey.unlink()
    _, cursor, _ = tick(raw_copy, None)
    survey.write_bytes(survey_bytes)  # new to the sensor; settles with the files below
    end = raw_copy / "leverantorer/folkuniversitetet/cykel3_slut.csv"
    end.write_bytes(end.read_bytes().replace(b";1;", b";3;", 1))  # settles first ...
    other = raw_copy / "leverantorer/folkuniversitetet/cykel4_slut.csv"
    other.write_bytes(other.read_bytes().replace(b";1;", b";3;", 1))  # ... as does another cycle's file
    time.sleep(2.1)
    path = raw_copy / FU3_90
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # the 90-day file of the same cycle is arriving
    requests, still, _ = tick(raw_copy, cursor, settle_seconds=2)
    assert [r.partition_key for r in requests] == ["4"]
    before, kept = json.loads(cursor)["files"], json.loads(still)["files"]
    cycle3 = [f for f, e in before.items() if e[3] == 3]
    assert cycle3 and all(kept[f] == before[f] for f in cycle3)  # cycle 3 as it was
    assert "enkater/enkat_cykel3.csv" not in kept
    path.write_bytes(whole)
    time.sleep(2.1)
    requests, _, _ = tick(raw_copy, still, settle_seconds=2)
    assert [r.partition_key for r in requests] == ["3"]


def test_sensor_waits_before_taking_a_deleted_file_as_gone(raw_copy):
    """A review's find (2026-12-02): a 90-day file deleted and uploaded again 40 s later (an
    SFTP client's replace, an engineer's) was taken as gone at once, and its cycle was
    published as not followed up for 1.5 minutes. A deletion now waits until the folder it was
    in has been still for the settle time, as a new file does."""
    _, cursor, _ = tick(raw_copy, None)
    path = raw_copy / FU3_90
    whole = path.read_bytes()
    path.unlink()
    requests, still, _ = tick(raw_copy, cursor, settle_seconds=2)
    assert requests == [] and json.loads(still)["files"][FU3_90] == json.loads(cursor)["files"][FU3_90]
    time.sleep(0.5)
    path.write_bytes(whole)  # back again, the same content
    time.sleep(2.1)
    requests, still, _ = tick(raw_copy, still, settle_seconds=2)
    assert requests == []  # the same delivery: nothing to ingest
    path.unlink()
    assert tick(raw_copy, still, settle_seconds=2)[0] == []
    time.sleep(2.1)
    requests, after, _ = tick(raw_copy, still, settle_seconds=2)
    assert [r.partition_key for r in requests] == ["3"]  # gone for good, once its folder is still
    assert FU3_90 not in json.loads(after)["files"]


def test_sensor_waits_before_taking_a_deleted_folder_as_gone(raw_copy):
    """A municipality's whole folder removed (to be uploaded again) is dated by the nearest
    folder still there: its files are not gone until that has been still for the settle time
    (a review's mutation took them as gone at once, unseen)."""
    _, cursor, _ = tick(raw_copy, None)
    shutil.rmtree(raw_copy / "kommuner" / "1292")
    requests, still, _ = tick(raw_copy, cursor, settle_seconds=2)
    assert requests == []
    time.sleep(2.1)
    requests, after, _ = tick(raw_copy, still, settle_seconds=2)
    assert [r.partition_key for r in requests] == [str(c) for c in range(1, 9)]  # a register of each cycle
    assert not any(f.startswith("kommuner/1292/") for f in json.loads(after)["files"])


def test_sensor_lists_a_file_of_no_cycle_once_it_is_still_and_keeps_no_name_of_it(raw_copy):
    """An upload's temporary file, or an editor's lock file, comes and goes within the
    settle time: it asks for nothing. The cursor (Dagster stores and shows it) keeps an id
    keyed with the pseudonym key, neither the name nor the hashed name the warehouse shows
    (an unkeyed 10-digit hash, which a list of birth dates undoes; a review's find)."""
    _, cursor, _ = tick(raw_copy, None)
    upload = raw_copy / "kommuner/1292/.deltagare_cykel5.csv.Xa3k9"  # rsync's temporary name
    lock = raw_copy / "kommuner/1292/~$850101-2383 Anna Svensson.xlsx"
    upload.write_bytes(b"part of a delivery")
    lock.write_bytes(b"lock")
    assert tick(raw_copy, cursor, settle_seconds=2)[0] == []
    upload.unlink()
    assert tick(raw_copy, cursor, settle_seconds=2)[0] == []
    time.sleep(2.1)  # the lock file stays: now it is a file of no cycle, listed
    (request,), after, _ = tick(raw_copy, cursor, settle_seconds=2)
    assert request.job_name == "list_unexpected_files"
    (listed,) = [d.source_file for d in discover(raw_copy) if d.cycle is None]
    for text in (after, request.run_key, json.dumps(request.tags)):
        for needle in ("850101", "Svensson", "~$", listed, listed.rsplit("/", 1)[-1].split(".")[0][1:]):
            assert needle not in text, needle
    assert tick(raw_copy, after, settle_seconds=2)[0] == []
    # another key gives other ids: they cannot be matched to names without it
    context = build_sensor_context(cursor=after, resources={"iga": IGAResource(raw_dir=str(raw_copy),
                                                                                settle_seconds=0)})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET + "-rotated")
        result = raw_delivery_sensor(context)
    rotated, before = json.loads(result.cursor)["strays"], json.loads(after)["strays"]
    assert len(rotated) == len(before) == 1 and rotated != before


def test_sensor_run_keys_are_idempotent(raw_copy, tmp_path):
    first, cursor, _ = tick(raw_copy, None)
    # the same tick evaluated again (a daemon that died before it stored the cursor)
    assert [(r.partition_key, r.run_key) for r in tick(raw_copy, None)[0]] == \
        [(r.partition_key, r.run_key) for r in first]
    # the same content elsewhere, with other mtimes: the same keys
    other = tmp_path / "other-raw"
    shutil.copytree(raw_copy, other, copy_function=shutil.copyfile)
    assert [r.run_key for r in tick(other, None)[0]] == [r.run_key for r in first]

    path = raw_copy / FU3_90
    path.write_bytes(path.read_bytes().replace(b";1;", b";3;", 1))
    changed, _, _ = tick(raw_copy, cursor)
    assert [r.run_key for r in tick(raw_copy, cursor)[0]] == [r.run_key for r in changed]


def test_sensor_a_redelivered_earlier_version_is_not_swallowed_by_run_key_dedup(raw_copy):
    """Dagster launches one run per run_key per sensor, ever. Delivery v1, a correction v2,
    v1 sent again by mistake, then v2 again: the last one must still be ingested, so its run
    key must be one the sensor has never issued."""
    path = raw_copy / FU3_90
    v1 = path.read_bytes()
    v2 = v1.replace(b";1;", b";3;", 1)
    issued = []
    requests, cursor, _ = tick(raw_copy, None)
    issued += [r.run_key for r in requests]
    for content in (v2, v1, v2):
        path.write_bytes(content)
        requests, cursor, _ = tick(raw_copy, cursor)
        assert [r.partition_key for r in requests] == ["3"]
        assert requests[0].run_key not in issued, "Dagster would skip this run: run_key already used"
        issued.append(requests[0].run_key)


def test_sensor_survives_links_and_files_it_must_not_open(raw_copy, tmp_path):
    """A folder linked into the raw root, a dangling link, a delivery that links out of the raw
    root (refused, never opened: raw-deliveries.md), a link that loops: none of them may break every tick of the
    sensor, and a refused delivery still asks for its cycle (its ingestion records the refusal:
    test_input_limits.py)."""
    _, cursor, _ = tick(raw_copy, None)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "enkat.csv").write_text("svar_id,kommunkod,okad_mojlighet,tolk\n")
    (raw_copy / "arkiv").symlink_to(outside, target_is_directory=True)  # a folder, no cycle
    (raw_copy / "gammal.lnk").symlink_to(tmp_path / "missing")  # dangling, no cycle
    (raw_copy / "enkater/enkat_cykel5.csv").symlink_to(outside / "enkat.csv")  # out of the root
    (raw_copy / "enkater/enkat_cykel6.csv").symlink_to(tmp_path / "missing.csv")  # dangling
    (raw_copy / "enkater/enkat_cykel7.csv").symlink_to("enkat_cykel7.csv")  # a loop
    requests, cursor, _ = tick(raw_copy, cursor)
    # the refused deliveries are news for their cycles: ingestion records the refusal
    assert [r.partition_key for r in requests] == ["5", "6", "7"]
    assert tick(raw_copy, cursor)[0] == []


SCAN_AS_NOBODY = r"""
import json, os, sys
from iga_pipeline.defs.automation import scan
raw, unreadable = sys.argv[1:3]
os.chmod(unreadable, 0)
os.setgid(65534)
os.setuid(65534)
print(json.dumps(scan(__import__("pathlib").Path(raw), {})))
"""


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs root, to scan as another user")
def test_sensor_scans_past_a_file_it_may_not_read():
    """As `nobody` (root reads anything): an unreadable delivery must not stop every tick;
    it is fingerprinted by its size and time, so its cycle is asked for and ingestion
    records it as unreadable."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="iga-nobody-", dir="/tmp"))
    try:
        raw = root / "raw"
        shutil.copytree(BUNDLED_RAW, raw)
        for folder, _, files in os.walk(root):
            os.chmod(folder, 0o755)
            for f in files:
                os.chmod(Path(folder) / f, 0o644)
        victim = raw / "leverantorer" / "astorp" / "cykel8.json"
        r = subprocess.run([sys.executable, "-c", SCAN_AS_NOBODY, str(raw), str(victim)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-3000:]
        state = json.loads(r.stdout)
        assert state["leverantorer/astorp/cykel8.json"][2].startswith("unreadable:PermissionError")
        assert state["leverantorer/astorp/cykel8.json"][3] == 8
        assert len(state) == len([d for d in discover(raw) if d.cycle is not None])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_sensor_skips_when_the_raw_root_is_missing(tmp_path):
    requests, cursor, skip = tick(tmp_path / "nowhere", None)
    assert requests == [] and cursor is None
    assert skip is not None and "does not exist" in (skip.skip_message or "")


def test_the_sensor_as_deployed_waits_a_minute_for_files_to_settle(raw_copy, monkeypatch):
    """`dagster dev` ticks the sensor with the definitions' resource (the raw root from
    IGA_RAW_DIR): a file changed less than a minute ago may still be arriving. The bundled
    files, copied in a moment ago, are not asked for yet (the other tests tick without a wait)."""
    monkeypatch.setenv("IGA_RAW_DIR", str(raw_copy))
    result = raw_delivery_sensor(build_sensor_context(cursor=None, resources=defs.resources))
    assert isinstance(result, SensorResult) and not result.run_requests
    assert result.skip_reason.skip_message == (
        "nothing to ingest yet; waiting: cycle(s) 1, 2, 3, 4, 5, 6, 7, 8 had a file changed or "
        "removed less than 60 s ago, ingested once still")


def first_tick_and_its_run(site: Site):
    """A new deployment: the automation's first tick asks for raw/inventory alone, and its run
    follows. The instance, the tick's result and the run's."""
    instance = DagsterInstance.ephemeral()
    tick = evaluate_automation_conditions(defs=defs, instance=instance)
    assert {k for k in defs.resolve_all_asset_keys() if tick.get_num_requested(k)} == {INVENTORY}
    run = site.run("automation_run", instance=instance,
                   definitions=job_with(AssetSelection.assets(INVENTORY), "automation_run"))
    return instance, tick, run


@pytest.mark.slow
@pytest.mark.parametrize("ingested_by", ["sensor", "asset graph"])
def test_a_new_deployment_publishes_from_its_first_runs_and_the_automation_alone(tmp_path, ingested_by):
    """What `dagster dev` does on a fresh instance with deliveries in the raw root and no
    build ever run: the cycles are ingested (the sensor's first tick asks for every cycle
    and the queue runs those ingest runs; or someone materialises the harmonised
    partitions from the asset graph), and the automation then builds, checks and
    publishes the warehouse. Found running `dagster dev`: the marts read raw/inventory's
    file, which nothing had written, so the automation's first run failed."""
    site = Site(tmp_path)
    shutil.copytree(BUNDLED_RAW, site.raw)
    (site.raw / "LASMIG.txt").write_text("a file of no cycle\n")
    # The automation ticks all along: first it lists the files of no cycle, as nothing has yet.
    instance, before, first = first_tick_and_its_run(site)
    assert first.success, failure_message(first)
    requests, _, _ = tick(site.raw, None)
    assert sorted(int(r.partition_key) for r in requests) == list(range(1, 9))
    cycles_only = job_with(AssetSelection.assets(RAW, *(harmonised_key(n) for n in HARMONISED)), "cycles")
    for request in requests:
        ingest = (site.run("ingest_cycle", partition_key=request.partition_key, tags=request.tags,
                           instance=instance) if ingested_by == "sensor" else
                  site.run("cycles", partition_key=request.partition_key, instance=instance,
                           definitions=cycles_only))
        assert ingest.success, failure_message(ingest)

    after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor)
    requested = {k for k in defs.resolve_all_asset_keys() if after.get_num_requested(k)}
    assert {mart_key(m.name) for m in MARTS} | {PUBLISHED, PARQUET} <= requested
    follow = site.run("automation_run", instance=instance,
                      definitions=job_with(AssetSelection.assets(*requested), "automation_run"))
    assert follow.success, failure_message(follow)
    assert query(site.live, "SELECT count(*) FROM marts.fct_participation")[0][0] == 368
    assert query(site.live, "SELECT count(*) FROM marts.data_quality_issues "
                            "WHERE reason = 'unexpected_file'") == [(1,)]  # raw/inventory's row


def test_a_failed_first_run_of_raw_inventory_is_not_requested_again_at_every_tick(tmp_path):
    """On a new deployment the automation makes raw/inventory once. A run of it that failed
    (here: a folder where the warehouse file belongs) is not requested again at each tick
    of the automation, which would start a failing run every 30 s until the cause is found."""
    site = Site(tmp_path)
    site.raw.mkdir()
    site.live.mkdir(parents=True)
    instance, before, run = first_tick_and_its_run(site)
    assert not run.success and "is a folder" in failure_message(run)
    after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor)
    assert after.total_requested == 0


# --- the publish keeps the newest build live ---------------------------------------------------

def test_an_older_build_finishing_later_does_not_replace_a_newer_one(site):
    """A review's find (2026-12-02): a slow full build that read the staging before a late
    delivery's quick build, and published after it, put the delivery's cycle back as it was.
    The publish compares when each build read the staging (under its lock): the older one is
    refused (Superseded), and the newer stays live."""
    from iga_pipeline.settings import Paths
    from iga_pipeline.warehouse import build, publish

    paths = Paths(raw_dir=site.raw, warehouse=site.live)
    older = build.build_candidate(site.staging, build.candidate_path(site.live, "older"))
    build.build_candidate(site.staging, build.candidate_path(site.live, "newer"))
    assert build.staging_read_at(older) < build.staging_read_at(build.candidate_path(site.live, "newer"))
    publish.publish_build(paths, "newer")
    newer_live = site.live.stat().st_ino
    with pytest.raises(publish.Superseded, match="read .* s after this build read it"):
        publish.publish_build(paths, "older")
    assert site.live.stat().st_ino == newer_live and older.exists()


def test_a_build_superseded_when_its_run_publishes_says_so_and_leaves_nothing(site):
    """The publish step's side of the test above: the run of the build that read the staging
    first, publishing after a newer build went live, succeeds (the newer data are live),
    records that it did not publish and why, and discards its candidate, report and exports
    at once rather than leave them to the hourly sweep."""
    from iga_pipeline.settings import Paths
    from iga_pipeline.warehouse import build, publish

    run_id = str(uuid.uuid4())
    marts = AssetSelection.assets(*(mart_key(m.name) for m in MARTS))  # with their checks
    first = site.run("marts", run_id=run_id, definitions=job_with(marts, "marts"))
    assert first.success, failure_message(first)
    build.build_candidate(site.staging, build.candidate_path(site.live, "newer"))
    publish.publish_build(Paths(raw_dir=site.raw, warehouse=site.live), "newer")
    newer = site.live.stat().st_ino
    # the same build goes on (a re-execution's steps take the id of the run they re-execute)
    rest = site.run("rest", run_id=run_id,
                    definitions=job_with(AssetSelection.assets(REPORT, PARQUET, PUBLISHED), "rest"))
    assert rest.success, failure_message(rest)
    (published,) = [e.materialization.metadata for e in rest.get_asset_materialization_events()
                    if e.asset_key == PUBLISHED]
    assert published["published"].value is False
    assert "after this build read it" in published["why"].value
    assert site.live.stat().st_ino == newer
    assert not site.leftovers()
    assert not list(site.live.parent.glob(".parquet.*.pending"))
    assert not list((site.live.parent / "report").glob(".index.html.*.pending"))


def test_publishing_the_marts_without_the_report_and_the_exports_is_refused(site):
    """A review's find (2026-12-02): the marts and warehouse/published selected without the
    report and the Parquet exports put the warehouse live beside the older report and
    exports. All three go live together, or none."""
    selection = AssetSelection.assets(*(mart_key(m.name) for m in MARTS), PUBLISHED)
    live = site.live.read_bytes()
    result = site.run("marts_and_publish", definitions=job_with(selection, "marts_and_publish"))
    assert not result.success
    assert "the report and the Parquet exports of this run's candidate were not written" in failure_message(result)
    assert site.live.read_bytes() == live


def test_the_report_and_the_exports_materialised_on_their_own_go_live_at_once(site):
    """Materialised on their own (from the UI), the report and the Parquet exports are rendered
    from the live warehouse and replace the live ones at once, as their materialisations say:
    nothing is left pending for a publish that is not in the run."""
    page = site.live.parent / "report" / "index.html"
    page_before, exports = snapshot(page.parent)["index.html"], snapshot(site.parquet)
    result = site.run("report_and_exports",
                      definitions=job_with(AssetSelection.assets(REPORT, PARQUET), "report_and_exports"))
    assert result.success, failure_message(result)
    assert {e.asset_key: e.materialization.metadata["live"].value
            for e in result.get_asset_materialization_events()} == {REPORT: LIVE_NOW, PARQUET: LIVE_NOW}
    assert snapshot(page.parent)["index.html"][:2] != page_before[:2]  # written anew, in its place
    now = snapshot(site.parquet)
    assert set(now) == set(exports) and all(now[f][:2] != exports[f][:2] for f in now)
    assert not list(site.live.parent.glob(".parquet.*.pending"))
    assert not list(page.parent.glob(".index.html.*.pending"))


# --- a failed check blocks the publish --------------------------------------------------------

DUPLICATE_A_ROW = "SELECT * FROM {src} UNION ALL (SELECT * FROM {src} LIMIT 1)"
# 64 characters, so pandera's length check passes; not all hex, so the GX suite's pattern fails
NON_HEX_PERSON_KEYS = "SELECT * REPLACE ('z' || person_key[2:] AS person_key) FROM {src}"


@pytest.mark.slow
@pytest.mark.parametrize("failing", ["gx_fct_participation", "pandera_participations"])
def test_a_failed_check_blocks_the_publish(site, failing):
    """Staging of cycle 2 gets a duplicated participation (pandera's to find), or person_keys
    that are not hex (pandera checks their length only: Great Expectations' to find in the
    marts). Rebuilding the warehouse from it (the pandera checks, marts, checks, publish; not
    harmonised, which would rewrite staging) must stop at the failed check:
    warehouse/published and warehouse/parquet are not materialised and the live file stays
    byte for byte what it was."""
    victim = site.staging / "cycle=2" / "participations.parquet"
    pristine = victim.read_bytes()
    rewrite_parquet(victim, NON_HEX_PERSON_KEYS if failing.startswith("gx") else DUPLICATE_A_ROW)

    marts = AssetSelection.assets(*(mart_key(m.name) for m in MARTS))
    # the marts and all after them, after the pandera checks of staging
    selection = marts.downstream() | AssetSelection.checks(pandera_checks)
    definitions = job_with(selection, "republish")
    live = site.live.read_bytes()
    live_inode = site.live.stat().st_ino
    exports = snapshot(site.parquet)

    result = site.run("republish", definitions=definitions)
    assert not result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks[failing].passed is False
    if failing.startswith("gx"):
        assert "person_key_is_hex64" in checks[failing].metadata["failed"].value
        assert all(e.passed for name, e in checks.items() if name != failing)
        # a passing suite has no "failed" entry (it read "failed: none" in the UI)
        assert not [name for name, e in checks.items() if name.startswith("gx_") and e.passed
                    and "failed" in e.metadata]
        assert {mart_key(m.name) for m in MARTS} <= materialised(result)  # built, then stopped
    else:
        assert not any(k.path[0] == "marts" for k in materialised(result)), "marts ran past pandera"
        # staging stamped every file it wrote: the check read only the one changed since
        metadata = checks[failing].metadata
        assert (metadata["files"].value, metadata["files_read"].value) == (8, 1)
    after_marts = {k for k in defs.resolve_all_asset_keys() if k.path[0] not in ("raw", "harmonised", "marts")}
    assert {PUBLISHED, PARQUET} <= after_marts
    assert not materialised(result) & after_marts, "an asset after the marts ran past the check"
    assert site.live.read_bytes() == live and site.live.stat().st_ino == live_inode
    assert snapshot(site.parquet) == exports
    assert query(site.live, "SELECT count(*) FROM marts.fct_participation WHERE cycle = 2")[0][0] > 0

    if failing.startswith("pandera"):
        return
    # The same job over repaired staging publishes: it was the check that stopped it.
    victim.write_bytes(pristine)
    result = site.run("republish", definitions=definitions)
    assert result.success, failure_message(result)
    assert PUBLISHED in materialised(result)
    assert site.live.stat().st_ino != live_inode


@pytest.mark.slow
def test_the_automation_stops_at_a_failed_check_as_a_run_does(site, monkeypatch):
    """An ingest run whose pandera check fails (staging of cycle 2 broken meanwhile) has
    still refreshed its partition, and the warehouse automation takes that as its cue (the
    marts are one build: any mart whose own inputs passed asks for all of them). The marts
    must then refuse that staging, so nothing is published; once the check passes again,
    the automation publishes."""
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
    instance = DagsterInstance.ephemeral()  # its own: the shared build's instance stays clean
    assert site.run(all_cycles=True, instance=instance).success
    settled = evaluate_automation_conditions(defs=defs, instance=instance)
    assert settled.total_requested == 0
    every = set(defs.resolve_all_asset_keys())
    live = site.live.read_bytes()

    victim = site.staging / "cycle=2" / "participations.parquet"
    pristine = victim.read_bytes()
    rewrite_parquet(victim, DUPLICATE_A_ROW)
    ingest = site.run("ingest_cycle", partition_key="5", instance=instance)
    assert not ingest.success
    checks = {e.check_name: e for e in ingest.get_asset_check_evaluations()}
    assert checks["pandera_participations"].passed is False
    # cycle 5's run, cycle 2's file: the check names the file to stage again (a review's find)
    assert checks["pandera_participations"].metadata["failed_files"].value == "cycle=2/participations.parquet"
    after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    requested = {k for k in every if after.get_num_requested(k)}
    assert PUBLISHED in requested, requested  # the cue taken: the marts and what follows them
    follow = site.run("automation_run", instance=instance,
                      definitions=job_with(AssetSelection.assets(*requested), "automation_run"))
    assert not follow.success
    assert PUBLISHED not in materialised(follow) and PARQUET not in materialised(follow)
    assert "cycle=2/participations.parquet has not passed its pandera model" in failure_message(follow)
    assert "ingesting cycle 2 again stages it anew" in failure_message(follow)
    assert site.live.read_bytes() == live
    # the sensor ticks on (every 30 s) while someone finds and repairs the cause
    later = evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor)
    assert later.total_requested == 0

    victim.write_bytes(pristine)
    ingest = site.run("ingest_cycle", partition_key="5", instance=instance)
    assert ingest.success, failure_message(ingest)
    again = evaluate_automation_conditions(defs=defs, instance=instance, cursor=later.cursor)
    requested = {k for k in every if again.get_num_requested(k)}
    assert PUBLISHED in requested
    follow = site.run("automation_run", instance=instance,
                      definitions=job_with(AssetSelection.assets(*requested), "automation_run"))
    assert follow.success, failure_message(follow)
    assert PUBLISHED in materialised(follow)


@pytest.mark.slow
def test_a_damaged_staged_file_fails_the_checks_by_name(site, monkeypatch):
    """Another cycle's staged issues and audit cut short: cycle 5's ingest run fails at its
    blocking pandera check, which names both files; the warning names the audit. The checks
    once stopped with pyarrow's error, which named no file (a review's find)."""
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
    for name in ("issues", "audit"):
        victim = site.staging / "cycle=2" / f"{name}.parquet"
        victim.write_bytes(victim.read_bytes()[:100])
    ingest = site.run("ingest_cycle", partition_key="5", instance=DagsterInstance.ephemeral())
    assert not ingest.success
    checks = {e.check_name: e for e in ingest.get_asset_check_evaluations()}
    for name in ("issues", "audit"):
        assert checks[f"pandera_{name}"].passed is False
        assert checks[f"pandera_{name}"].metadata["failed_files"].value == f"cycle=2/{name}.parquet"
        assert "readable as Parquet" in checks[f"pandera_{name}"].metadata["by_check"].value
    assert checks["pandera_participations"].passed is True
    assert checks[NO_FILE_REJECTED].passed is False
    assert checks[NO_FILE_REJECTED].metadata["rejected whole"].value.endswith(
        "in the audits read; not readable: cycle=2/audit.parquet (ingest their cycles again)")


@pytest.mark.slow
def test_a_delivery_ingested_just_after_the_warehouse_run_is_published_too(site, monkeypatch):
    """Two deliveries close together (found by a review of a real deployment): the first one's
    warehouse run ends, and the second one's ingest ends after it, both before the automation's
    next tick. Dagster's eager() then takes the marts' own update as having handled the new
    input (it compares no times through its and/or), and the second delivery stayed
    unpublished until the nightly build. The marts must be asked for again."""
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
    instance = DagsterInstance.ephemeral()
    assert site.run(all_cycles=True, instance=instance).success
    every = set(defs.resolve_all_asset_keys())
    settled = evaluate_automation_conditions(defs=defs, instance=instance)
    assert settled.total_requested == 0

    def requested(result) -> set[AssetKey]:
        return {k for k in every if result.get_num_requested(k)}

    assert site.run("ingest_cycle", partition_key="3", instance=instance).success
    first = evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    assert PUBLISHED in requested(first)
    follow = site.run("automation_run", instance=instance,
                      definitions=job_with(AssetSelection.assets(*requested(first)), "automation_run"))
    assert follow.success, failure_message(follow)
    assert site.run("ingest_cycle", partition_key="5", instance=instance).success  # after it, same tick
    second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert {mart_key(m.name) for m in MARTS} | {PUBLISHED} <= requested(second)
    follow = site.run("automation_run", instance=instance,
                      definitions=job_with(AssetSelection.assets(*requested(second)), "automation_run"))
    assert follow.success, failure_message(follow)
    # ... and then nothing more: each delivery was published once.
    third = evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
    assert third.total_requested == 0


@pytest.mark.slow
def test_the_nightly_build_leaves_the_automation_nothing_to_do(site, monkeypatch):
    """The nightly build_all ingests every cycle and builds and publishes the warehouse after
    them: the automation, ticking all along, must not take those ingests for new input and
    build the warehouse a second time each night."""
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
    instance = DagsterInstance.ephemeral()
    assert site.run(all_cycles=True, instance=instance).success
    settled = evaluate_automation_conditions(defs=defs, instance=instance)
    assert settled.total_requested == 0
    nightly = site.run(all_cycles=True, instance=instance)
    assert nightly.success, failure_message(nightly)
    after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    assert after.total_requested == 0, {k for k in defs.resolve_all_asset_keys() if after.get_num_requested(k)}


def _built_and_settled(site, monkeypatch, tmp_path):
    """A Dagster instance on disk (the tests' threads share it) with every cycle built, and the
    automation's tick after it, which asks for nothing."""
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
    (tmp_path / "home").mkdir()
    instance = DagsterInstance.local_temp(str(tmp_path / "home"))
    assert site.run(all_cycles=True, instance=instance).success
    settled = evaluate_automation_conditions(defs=defs, instance=instance)
    assert settled.total_requested == 0
    return instance, settled


@pytest.mark.slow
def test_the_marts_wait_while_an_ingest_run_is_still_going(site, monkeypatch, tmp_path):
    """Two deliveries ingested one after the other (the queue runs two ingest runs at once):
    while cycle 5's run is still going, the automation does not build the warehouse from
    cycle 3's alone (a build that the next one would replace at once); once that run has
    ended, the marts and what follows them are asked for."""
    from iga_pipeline import staging

    instance, settled = _built_and_settled(site, monkeypatch, tmp_path)
    every = set(defs.resolve_all_asset_keys())
    assert site.run("ingest_cycle", partition_key="3", instance=instance).success
    done = {}
    with staging.locked(site.staging, cycle=5):  # another ingest of cycle 5: its run waits, in progress
        run = threading.Thread(target=lambda: done.update(result=site.run(
            "ingest_cycle", partition_key="5", instance=instance)))
        run.start()
        assert someone_waits_for(site.staging / ".lock-cycle=5", run), "cycle 5's run did not wait"
        during = evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
        assert during.total_requested == 0, {k for k in every if during.get_num_requested(k)}
    run.join(300)
    assert done["result"].success, failure_message(done["result"])
    after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=during.cursor)
    assert {mart_key(m.name) for m in MARTS} | {PUBLISHED, PARQUET} <= {
        k for k in every if after.get_num_requested(k)}
    instance.dispose()


def test_a_publish_waits_while_another_one_swaps_its_files(site):
    """Two builds publishing at once could leave the warehouse of one and the Parquet and
    report of the other (found by a review): a publish takes its turn (`publish.publishing`)."""
    inode = site.live.stat().st_ino
    done = {}
    with publishing(site.live.parent):  # another build, in the middle of its publish
        run = threading.Thread(target=lambda: done.update(result=site.run(partition_key="8")))
        run.start()
        deadline = time.monotonic() + 300
        while not list(site.live.parent.glob(".parquet.*.pending")) and time.monotonic() < deadline:
            time.sleep(0.1)  # until this run's exports are written: its publish is next
        assert list(site.live.parent.glob(".parquet.*.pending")), "the run wrote no exports in 300 s"
        assert someone_waits_for(site.live.parent / ".publish.lock", run), \
            "the run published while another publish held its turn"
        assert site.live.stat().st_ino == inode
    run.join(300)
    assert done["result"].success, failure_message(done["result"])
    assert site.live.stat().st_ino != inode and not list(site.live.parent.glob(".parquet.*.pending"))


def test_a_report_materialised_on_its_own_takes_its_turn_with_the_publishes(site):
    """A review's find (2026-12-04): the report materialised on its own (from the UI) renders
    from the live warehouse and replaced the page without waiting for a publish under way,
    so a build's publish during the rendering was followed by a page of the warehouse it had
    replaced. It takes its turn (`publish.publishing`), as the Parquet exports do."""
    page = site.live.parent / "report" / "index.html"
    before = page.stat().st_mtime_ns
    done = {}
    with publishing(site.live.parent):  # a build, in the middle of its publish
        run = threading.Thread(target=lambda: done.update(result=site.run(
            "report_only", definitions=job_with(AssetSelection.assets(REPORT), "report_only"))))
        run.start()
        assert someone_waits_for(site.live.parent / ".publish.lock", run), \
            "the report was rendered and replaced while a publish held its turn"
        assert page.stat().st_mtime_ns == before
    run.join(300)
    assert done["result"].success, failure_message(done["result"])
    assert page.stat().st_mtime_ns != before


def test_a_cycle_staged_under_another_key_stops_the_warehouse(site, monkeypatch):
    """A key changed between a full build and a one-cycle run would split every repeat
    participant's cycles under two keys: the marts refuse, and say what to do."""
    live = site.live.read_bytes()
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", "another secret, not the one staging was built with")
    result = site.run(partition_key="8")
    assert not result.success
    assert "another pseudonym key" in failure_message(result) and "full build" in failure_message(result)
    assert site.live.read_bytes() == live
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
    assert site.run(partition_key="8").success


def test_the_publish_is_never_requested_without_the_marts_of_its_run(site, monkeypatch):
    """warehouse/published swaps in its own run's candidate: after the marts alone were
    materialised (say from the UI), the automation must not start a publish without them."""
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
    instance = DagsterInstance.ephemeral()
    whole = site.run(all_cycles=True, instance=instance)
    assert whole.success, failure_message(whole)
    assert {e.materialization.metadata["publish"].value
            for e in whole.get_asset_materialization_events() if e.asset_key.path[0] == "marts"} == {
        PUBLISH_IN_RUN}
    settled = evaluate_automation_conditions(defs=defs, instance=instance)
    live = site.live.read_bytes()
    marts_only = site.run("marts_only", instance=instance, definitions=job_with(
        AssetSelection.assets(*(mart_key(m.name) for m in MARTS)), "marts_only"))
    assert marts_only.success, failure_message(marts_only)
    # ... and it says that it published nothing, in the run's log and on every mart
    assert site.live.read_bytes() == live
    logged = [r.user_message for r in instance.all_logs(marts_only.run_id)
              if r.level >= 30 and "does not include warehouse/published" in r.user_message]
    assert len(logged) == 1
    assert {e.materialization.metadata["publish"].value
            for e in marts_only.get_asset_materialization_events()} == {
        "not in this run (warehouse/published was not selected): nothing is published"}
    after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    requested = {k for k in defs.resolve_all_asset_keys() if after.get_num_requested(k)}
    assert PUBLISHED not in requested and PARQUET not in requested, requested
    for leftover in site.leftovers():  # the marts-only run's candidate, never published,
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()  # and its checks' verdicts


@pytest.mark.slow
def test_a_delivery_ingested_while_the_report_renders_on_its_own_is_published(site, monkeypatch, tmp_path):
    """The report (or the Parquet exports) materialised on its own from the UI is in progress
    when an ingest run ends: the automation's next tick must not ask for the marts and the
    publish without the report, a run whose publish refuses ("all three, or none"), after
    which nothing more is asked for and the delivery waits for the nightly build. Either the
    marts wait for the report's run, or the report goes with them: once that run is over,
    the delivery is published."""
    instance, settled = _built_and_settled(site, monkeypatch, tmp_path)
    every = set(defs.resolve_all_asset_keys())
    before = site.live.stat().st_ino
    assert site.run("ingest_cycle", partition_key="3", instance=instance).success
    done = {}
    with publishing(site.live.parent):  # a publish under way: the report rendered on its own waits its turn
        run = threading.Thread(target=lambda: done.update(result=site.run(
            "report_only", instance=instance, definitions=job_with(AssetSelection.assets(REPORT), "report_only"))))
        run.start()
        assert someone_waits_for(site.live.parent / ".publish.lock", run), "the report's run did not wait"
        during = evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    run.join(300)
    assert done["result"].success, failure_message(done["result"])
    cursor, published = during.cursor, []
    for tick_result in (during, None):  # this tick, and the next one
        if tick_result is None:
            tick_result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        requested = {k for k in every if tick_result.get_num_requested(k)}
        cursor = tick_result.cursor
        if not requested:
            continue
        assert {REPORT, PARQUET, PUBLISHED} <= requested, requested  # all three, or none
        follow = site.run("automation_run", instance=instance,
                          definitions=job_with(AssetSelection.assets(*requested), "automation_run"))
        assert follow.success, failure_message(follow)
        published += [e.materialization.metadata["published"].value
                      for e in follow.get_asset_materialization_events() if e.asset_key == PUBLISHED]
    assert published == [True]
    assert site.live.stat().st_ino != before
    instance.dispose()


def test_the_parquet_files_are_written_beside_the_checks_and_only_a_run_that_exports_starts_them(
        built, site, monkeypatch):
    """build_all's marts step starts the export on the second core (warehouse/export.py) and its
    Parquet step collects it: the files are those of the live warehouse. A run without the
    Parquet step starts none, so nothing is left to be published or removed."""
    from dagster import AssetRecordsFilter

    record = built.instance.fetch_materializations(AssetRecordsFilter(asset_key=PARQUET), limit=1).records[0]
    written_by = record.asset_materialization.metadata["written by"].value
    assert written_by == ("a process beside the checks" if settings.cpus() >= 2 else "this step")
    for mart in sorted(mart_tables(built.site.live)):
        (exported,) = query(built.site.live, "SELECT count(*) FROM read_parquet(?)",
                            [str(built.site.parquet / f"{mart}.parquet")])[0]
        assert exported == query(built.site.live, f"SELECT count(*) FROM marts.{mart}")[0][0], mart

    monkeypatch.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
    marts_only = site.run("marts_only", definitions=job_with(
        AssetSelection.assets(*(mart_key(m.name) for m in MARTS)), "marts_only"))
    assert marts_only.success, failure_message(marts_only)
    assert not list(site.live.parent.glob(".parquet.*.pending"))
    assert not [c for c in export._RUNNING if c.is_relative_to(site.root)]


# --- a reader holding the live file during a rebuild -------------------------------------------

@pytest.mark.slow
def test_a_reader_holding_the_live_file_keeps_its_version_during_a_rebuild(site, expected_key):
    redeliver_fu3_90d(site.raw, site.live, expected_key)
    reader = duckdb.connect(str(site.live), read_only=True)
    try:
        q = "SELECT completed, work_90d, studies_90d FROM marts.outcomes_by_cycle WHERE cycle = 3"
        before = reader.execute(q).fetchone()
        counts = {t: reader.execute(f"SELECT count(*) FROM marts.{t}").fetchone()[0]
                  for t in sorted(mart_tables(site.live))}

        result = site.run(partition_key="3")  # build_all for the late cycle: rebuild + publish
        assert result.success, failure_message(result)
        assert PUBLISHED in materialised(result)

        # the open connection still reads the old, complete warehouse
        assert reader.execute(q).fetchone() == before
        assert {t: reader.execute(f"SELECT count(*) FROM marts.{t}").fetchone()[0]
                for t in counts} == counts
        # a new reader (another process, as a BI tool would be) sees the new one
        out = subprocess.run(
            [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
                                   "print(list(c.execute(sys.argv[2]).fetchone()))", str(site.live), q],
            capture_output=True, text=True, timeout=60, env=_env())
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == [before[0], before[1] - 1, before[2] + 1]
    finally:
        reader.close()
    with duckdb.connect(str(site.live), read_only=True) as fresh:
        assert fresh.execute(q).fetchone() == (before[0], before[1] - 1, before[2] + 1)
    assert not site.leftovers()

    # The Parquet exports went live with the new warehouse, although this process held the old
    # one open (duckdb.connect(live) here would have handed back the old database).
    (exported,) = query(site.live, "SELECT completed, work_90d, studies_90d FROM read_parquet(?) "
                                   "WHERE cycle = 3", [str(site.parquet / "outcomes_by_cycle.parquet")])
    assert exported == (before[0], before[1] - 1, before[2] + 1)


READER = textwrap.dedent("""
    import json, sys, time
    import duckdb
    live, stop, out = sys.argv[1:4]
    Q = "SELECT work_90d, studies_90d FROM marts.outcomes_by_cycle WHERE cycle = 3"
    # a complete warehouse balances: the completers of outcomes_by_cycle are fct_participation's
    BALANCE = ("SELECT (SELECT sum(completed) FROM marts.outcomes_by_cycle) = "
               "(SELECT count(*) FROM marts.fct_participation WHERE completed)")
    held = duckdb.connect(live, read_only=True)  # opened once, before the swap
    seen, held_seen, errors, queries = [], [], [], 0
    deadline = time.monotonic() + 90
    print("ready", flush=True)
    while time.monotonic() < deadline:
        stopping = __import__("os").path.exists(stop)
        try:
            # a new connection each time; ATTACH, because duckdb.connect(live) would reuse
            # the database `held` keeps open in this process
            con = duckdb.connect()
            try:
                con.execute("ATTACH '" + live + "' AS w (READ_ONLY)")
                con.execute("USE w")
                value = list(con.execute(Q).fetchone())
                if not con.execute(BALANCE).fetchone()[0]:
                    errors.append("unbalanced warehouse")
            finally:
                con.close()
            queries += 1
            if not seen or seen[-1] != value:
                seen.append(value)
            held_value = list(held.execute(Q).fetchone())
            if not held_seen or held_seen[-1] != held_value:
                held_seen.append(held_value)
        except Exception as e:
            errors.append(repr(e))
        if stopping:
            break
        time.sleep(0.005)
    json.dump({"seen": seen, "held": held_seen, "errors": errors, "queries": queries},
              open(out, "w"))
""")


@pytest.mark.slow
def test_a_reader_process_querying_in_a_loop_never_sees_a_broken_warehouse(site, expected_key):
    before = list(cycle3_90d(site.live)[1:])
    redeliver_fu3_90d(site.raw, site.live, expected_key)
    script, stop, out = site.root / "reader.py", site.root / "stop", site.root / "reader.json"
    script.write_text(READER)
    proc = subprocess.Popen([sys.executable, str(script), str(site.live), str(stop), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(0.2)
        result = site.run(partition_key="3")
        assert result.success, failure_message(result)
        time.sleep(0.3)
        stop.touch()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    report = json.loads(out.read_text())
    after = [before[0] - 1, before[1] + 1]
    assert report["errors"] == []
    assert report["seen"] == [before, after], "new readers see the old version, then the new one"
    assert report["held"] == [before], "a connection opened before the swap keeps the old version"
    assert report["queries"] > 10


# --- a crash between build and swap ----------------------------------------------------------

BUILD = textwrap.dedent("""
    import sys
    from dagster import DagsterInstance
    from iga_pipeline.definitions import defs
    from iga_pipeline.defs.resources import IGAResource
    raw, live, partition, run_id = sys.argv[1:5]
    result = defs.resolve_job_def("build_all").execute_in_process(
        instance=DagsterInstance.get(), run_id=run_id, partition_key=partition,
        resources={"iga": IGAResource(raw_dir=raw, warehouse=live)},
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        raise_on_error=False)
    sys.exit(0 if result.success else 1)
""")


def _newest_mtime_ns(folder: Path) -> int:
    newest = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            try:
                newest = max(newest, os.stat(os.path.join(dirpath, name)).st_mtime_ns)
            except FileNotFoundError:
                pass
    return newest


def kill_build(site: Site, after_building: bool) -> None:
    """Run build_all for cycle 3 in its own process, on an instance in tmp_path, and SIGKILL it:
    as soon as its candidate file appears (mid-build), or, `after_building`, as soon as the
    run's event log says the marts step succeeded (the candidate is complete, closed, and the
    checks have not started writing anything)."""
    home = site.root / f"dagster_home_{uuid.uuid4().hex[:8]}"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    script = site.root / "build.py"
    script.write_text(BUILD)
    log_path = home / "build.log"
    run_id = str(uuid.uuid4())
    already = set(site.leftovers())
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    instance.get_runs(limit=1)  # its storage exists before the build's process opens it

    def marts_done() -> bool:
        try:
            events = instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS)
        except Exception:  # the run's SQLite log is being created or written: look again
            return False
        return any(e.step_key == "marts" for e in events)

    try:
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, str(script), str(site.raw), str(site.live), "3", run_id],
                stdout=log, stderr=subprocess.STDOUT, env={**_env(), "DAGSTER_HOME": str(home)},
                start_new_session=True)
            try:
                deadline = time.monotonic() + 180
                while True:
                    if proc.poll() is not None:
                        pytest.fail(f"the build ended (exit {proc.returncode}) before it was "
                                    "killed: " + log_path.read_text()[-3000:])
                    assert time.monotonic() < deadline, "the build never reached the moment to kill it"
                    if (marts_done() if after_building else set(site.leftovers()) - already):
                        break
                    time.sleep(0.01 if after_building else 0.002)
                assert sigkill_group(proc) == -signal.SIGKILL
            finally:
                if proc.poll() is None:
                    sigkill_group(proc)
    finally:
        instance.dispose()


@pytest.mark.slow
def test_builds_killed_before_the_swap_leave_the_live_warehouse_and_the_next_build_works(
        site, expected_key):
    """Two builds are killed with SIGKILL, one mid-build, one between build and swap. The live
    warehouse stays byte for byte as it was, and nothing is cleaned up by hand: the next
    normal build publishes, sweeps away what is over an hour old, and leaves alone what is
    younger (it could belong to a build still running)."""
    before = cycle3_90d(site.live)
    new = (before[0], before[1] - 1, before[2] + 1)
    live = site.live.read_bytes()
    entries = site.entries()
    redeliver_fu3_90d(site.raw, site.live, expected_key)

    kill_build(site, after_building=False)
    assert site.live.read_bytes() == live
    left_mid_build = site.entries() - entries
    assert {p.name for p in site.leftovers()} <= left_mid_build
    assert left_mid_build, "the kill left no candidate: it came too late"

    gx_before = _newest_mtime_ns(site.live.parent / "gx")
    kill_build(site, after_building=True)
    assert _newest_mtime_ns(site.live.parent / "gx") == gx_before, "killed too late: checks had begun"
    assert site.live.read_bytes() == live
    assert cycle3_90d(site.live) == before  # and it opens
    left_after_build = site.entries() - entries - left_mid_build
    (candidate,) = [site.live.parent / n for n in left_after_build
                    if CANDIDATE_MARK in n and not n.endswith(WAL_SUFFIX)]
    assert mart_tables(candidate) >= {m.name for m in MARTS}  # complete, never swapped in
    assert cycle3_90d(candidate) == new

    # Time passes for what the first one left.
    site.age([site.live.parent / name for name in left_mid_build], 2 * HOUR)
    result = site.run(partition_key="3")
    assert result.success, failure_message(result)
    assert cycle3_90d(site.live) == new
    assert site.entries() == entries | left_after_build


@pytest.mark.slow
def test_a_gx_store_file_cut_short_by_a_crash_does_not_block_later_builds(site):
    """What a SIGKILL during the Great Expectations step can leave behind (seen by killing
    builds at random moments of their checks): a store file truncated to nothing."""
    (victim, *_) = sorted(site.live.parent.glob("gx/**/validation_definitions/*.json"))
    victim.write_bytes(b"")
    result = site.run(partition_key="3")
    assert result.success, failure_message(result)


@pytest.mark.slow
def test_a_delivery_ingested_while_an_automation_run_publishes_is_published(site, monkeypatch, tmp_path):
    """An automation run (marts, report, exports, publish) whose marts are built and whose
    publish still waits when an ingest ends: the next tick asks for the marts again, and with
    them the publish, which that run still holds planned ('in progress'). Before O30's fix the
    tick asked for the marts, the report and the exports only: nothing published the delivery."""
    instance, settled = _built_and_settled(site, monkeypatch, tmp_path)
    everything = AssetSelection.assets(*[mart_key(m.name) for m in MARTS], REPORT, PARQUET, PUBLISHED)
    done = {}
    with publishing(site.live.parent):  # run A's publish waits here, its marts, report and exports done
        run = threading.Thread(target=lambda: done.update(result=site.run(
            "run_a", instance=instance, definitions=job_with(everything, "run_a"))))
        run.start()
        assert someone_waits_for(site.live.parent / ".publish.lock", run), "run A's publish did not wait"
        assert site.run("ingest_cycle", partition_key="3", instance=instance).success
        during = evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    run.join(300)
    assert done["result"].success, failure_message(done["result"])
    requested = {k for k in defs.resolve_all_asset_keys() if during.get_num_requested(k)}
    assert mart_key("outcomes_by_cycle") in requested, requested
    assert {REPORT, PARQUET, PUBLISHED} <= requested, requested
    instance.dispose()
