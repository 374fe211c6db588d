"""The Parquet exports in a process beside the checks (warehouse/export.py): real DuckDB
files, real processes. The build's own use of it is in test_orchestration.py."""

from __future__ import annotations

import signal
from pathlib import Path

import duckdb
import pytest

from iga_pipeline import settings
from iga_pipeline.warehouse import export
from iga_pipeline.warehouse.duck import export_parquet

pytestmark = pytest.mark.skipif(settings.cpus() < 2, reason="started on two cores or more only")


@pytest.fixture
def warehouse(tmp_path) -> Path:
    """A warehouse file with two marts (and a table outside them, not exported)."""
    path = tmp_path / "iga.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.fct_participation AS SELECT i AS cycle, 'c' || i AS participation_id "
                "FROM range(1, 5001) t(i)")
    con.execute("CREATE TABLE marts.outcomes_by_cycle AS SELECT 3 AS cycle, 0.42 AS share")
    con.execute("CREATE TABLE main.other AS SELECT 1 AS x")
    con.close()
    return path


def _read(folder: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect()
    try:
        return {p.stem: con.execute(f"SELECT * FROM read_parquet('{p}') ORDER BY ALL").fetchall()
                for p in sorted(folder.glob("*.parquet"))}
    finally:
        con.close()


def test_the_export_beside_the_checks_writes_what_the_step_itself_would(warehouse, tmp_path):
    assert export.start(warehouse, tmp_path / "beside")
    rows, failed = export.collect(warehouse)
    assert failed is None
    assert rows == export_parquet(warehouse, tmp_path / "in-step") == {
        "fct_participation": 5000, "outcomes_by_cycle": 1}
    assert _read(tmp_path / "beside") == _read(tmp_path / "in-step")
    assert export.collect(warehouse) == (None, None)  # collected once; nothing is running now


def test_an_export_that_did_not_finish_is_said_so_and_not_used(warehouse, tmp_path):
    assert export.start(warehouse, tmp_path / "beside")
    proc, _ = export._RUNNING[warehouse.absolute()]
    proc.send_signal(signal.SIGKILL)
    assert export.collect(warehouse) == (None, f"exit status {-signal.SIGKILL}")


def test_a_candidate_that_cannot_be_read_fails_the_export_and_says_no_more(tmp_path):
    broken = tmp_path / "iga.duckdb"
    broken.write_bytes(b"not a database, and 050505-0505 is not in the answer" * 100)
    assert export.start(broken, tmp_path / "beside")
    rows, failed = export.collect(broken)
    assert rows is None and failed == "exit status 1"  # DuckDB's message stays in the process


def test_an_export_no_step_collected_is_stopped_and_what_it_wrote_removed(warehouse, tmp_path):
    out = tmp_path / "beside"
    assert export.start(warehouse, out)
    proc, _ = export._RUNNING[warehouse.absolute()]
    export.stop(warehouse)
    assert proc.poll() is not None  # ended (or stopped), and waited for
    assert proc.returncode == -signal.SIGTERM  # stopped, not waited for until it finished
    assert not out.exists() and not list(tmp_path.glob("beside.*.tmp"))  # nor its scratch folder
    assert export.collect(warehouse) == (None, None)


def test_an_export_that_finished_but_was_not_collected_is_removed_too(warehouse, tmp_path):
    """A blocking check failed after the export had written everything: what it wrote goes
    all the same (a mutation review's find: the test above stops it before it writes, so
    removing the folder only of an export that had to be killed went unseen)."""
    out = tmp_path / "beside"
    assert export.start(warehouse, out)
    proc, _ = export._RUNNING[warehouse.absolute()]
    proc.wait(timeout=60)
    assert proc.returncode == 0 and sorted(p.name for p in out.iterdir()) == [
        "fct_participation.parquet", "outcomes_by_cycle.parquet"]
    export.stop(warehouse)
    assert not out.exists()


def test_starting_again_stops_the_earlier_export_of_the_same_candidate(warehouse, tmp_path):
    """A retried step starts the export of the same candidate again: the earlier process is
    stopped and its folder removed, not left running unowned (a mutation review's find)."""
    assert export.start(warehouse, tmp_path / "first")
    first, _ = export._RUNNING[warehouse.absolute()]
    assert export.start(warehouse, tmp_path / "second")
    assert first.poll() is not None and not (tmp_path / "first").exists()
    rows, failed = export.collect(warehouse)
    assert failed is None and rows == {"fct_participation": 5000, "outcomes_by_cycle": 1}


def test_an_export_started_under_a_relative_path_is_collected_under_it(warehouse, tmp_path, monkeypatch):
    """IGA_WAREHOUSE may be relative: the export started for 'iga.duckdb' is the one collected
    for 'iga.duckdb' (a mutation review's find: every test gave absolute paths)."""
    monkeypatch.chdir(tmp_path)
    relative = Path(warehouse.name)
    assert export.start(relative, Path("beside"))
    rows, failed = export.collect(relative)
    assert failed is None and rows == {"fct_participation": 5000, "outcomes_by_cycle": 1}


def test_a_folder_with_a_quote_in_its_name_is_exported_to(warehouse, tmp_path):
    """The paths go into DuckDB's SQL as string literals (duck.quote): a quote in a folder's
    name must be written as part of it, not end the literal (a review's mutation left it
    unescaped and no test saw it)."""
    out = tmp_path / "Kommunens 'export'" / "parquet"
    assert export_parquet(warehouse, out) == {"fct_participation": 5000, "outcomes_by_cycle": 1}
    con = duckdb.connect()
    try:
        counts = {p.stem: con.execute("SELECT count(*) FROM read_parquet(?)", [str(p)]).fetchone()[0]
                  for p in sorted(out.glob("*.parquet"))}
    finally:
        con.close()
    assert counts == {"fct_participation": 5000, "outcomes_by_cycle": 1}


def test_an_export_killed_before_it_is_whole_leaves_no_folder_under_its_name(warehouse, tmp_path):
    """F12: the export wrote into its folder under the name the publish looks for, so a kill
    midway left some of the marts there, and a re-execution of the publish alone put them live
    as parquet/. It now writes beside it and renames the folder once every mart is written and
    flushed: here it is killed just before that rename (DuckDB's own writes cannot be stopped
    one by one from Python), and an earlier attempt's folder is gone all the same."""
    import os

    out = tmp_path / ".parquet.run-2.pending"
    out.mkdir()
    (out / "outcomes_by_cycle.parquet").write_bytes(b"an earlier attempt's")
    pid = os.fork()
    if pid == 0:  # the child: killed where the folder would get its name
        try:
            os.replace = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
            export_parquet(warehouse, out)
        finally:
            os._exit(1)
    assert os.waitpid(pid, 0)[1] == signal.SIGKILL
    assert not out.exists()
    [scratch] = tmp_path.glob(".parquet.run-2.pending.*.tmp")  # swept by publish.remove_stale, an hour on
    assert sorted(p.name for p in scratch.iterdir()) == ["fct_participation.parquet", "outcomes_by_cycle.parquet"]
    assert export_parquet(warehouse, out) == {"fct_participation": 5000, "outcomes_by_cycle": 1}
    assert _read(out) == _read(scratch)  # the next attempt's, whole, under the name
