"""The deployment's own daemon: a run that fails is launched again, and publishes.

The real `dagster-daemon` runs on the project's workspace.yaml with the committed
instance configuration (.dagster_home/dagster.yaml) in tmp_path. A `build_all` run
is launched through the instance's queue, as the nightly schedule would, and one of
its ingest worker processes is killed (SIGKILL, as the kernel kills for memory).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from iga_pipeline_tests.test_ui import _stop

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TIMEOUT_S = 240


def _dagster(args: list[str], env: dict, log: Path) -> None:
    with log.open("a") as out:
        subprocess.run([str(BIN / "dagster"), *args, "-w", str(REPO / "workspace.yaml")], cwd=REPO, env=env,
                       stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True, timeout=120)


def _workers_of(home: Path) -> list[int]:
    """The ingest worker processes of runs on this instance (DAGSTER_HOME in their environment)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:  # ended meanwhile, or not ours to read
            continue
        if b"iga_pipeline._stage_worker" in cmdline and f"DAGSTER_HOME={home}\0".encode() in environ:
            found.append(int(proc.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the worker through /proc (Linux)")
def test_a_run_whose_ingest_worker_was_killed_is_launched_again_and_publishes(tmp_path):
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._core.instance.ref import InstanceRef

    home = tmp_path / "dagster_home"
    home.mkdir()
    config = (REPO / ".dagster_home" / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(config)  # telemetry off in it: the network is closed
    shutil.copytree(REPO / "data" / "raw", tmp_path / "raw")
    warehouse = tmp_path / "warehouse" / "iga.duckdb"
    env = {**os.environ, "DAGSTER_HOME": str(home), "IGA_RAW_DIR": str(tmp_path / "raw"),
           "IGA_WAREHOUSE": str(warehouse), "PYTHONWARNINGS": "ignore",
           "IGA_INGEST_WORKERS": "2"}  # the bundled cycles in worker processes, as large ones are
    log = tmp_path / "dagster.log"
    # Only the run launched here: the sensors would ask for runs of their own.
    for sensor in ("raw_delivery_sensor", "warehouse_automation"):
        _dagster(["sensor", "stop", sensor], env, log)

    with log.open("a") as out:
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                                  cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    try:
        tags = {"dagster/asset_partition_range_start": "1", "dagster/asset_partition_range_end": "8"}
        _dagster(["job", "launch", "-j", "build_all", "--tags", json.dumps(tags)], env, log)
        deadline = time.monotonic() + TIMEOUT_S
        killed = None
        while killed is None:
            assert daemon.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, "no ingest worker appeared:\n" + log.read_text()[-4000:]
            assert not any(r.is_finished for r in instance.get_runs()), "the run ended before a kill"
            for pid in _workers_of(home):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:  # it ended meanwhile: the next one
                    continue
                killed = pid
                break
            time.sleep(0.05)

        while True:
            runs = instance.get_runs()  # newest first
            if any(r.status == DagsterRunStatus.SUCCESS for r in runs) or \
                    sum(r.status == DagsterRunStatus.FAILURE for r in runs) > 1:
                break
            assert time.monotonic() < deadline, (f"runs: {[(r.run_id, r.status) for r in runs]}\n"
                                                 + log.read_text()[-4000:])
            time.sleep(0.5)

        retry, failed = runs
        assert failed.status == DagsterRunStatus.FAILURE
        assert failed.tags["dagster/will_retry"] == "true"
        assert retry.status == DagsterRunStatus.SUCCESS, log.read_text()[-4000:]
        assert retry.parent_run_id == failed.run_id and retry.tags["dagster/retry_number"] == "1"
        failures = [e.dagster_event for e in instance.all_logs(failed.run_id)
                    if e.dagster_event and e.dagster_event.is_step_failure]
        assert [f.step_key for f in failures] == ["harmonised"]
        # every step again, not from the failed one: a run's candidate warehouse is named after
        # its run id, and a retry from the failed step found none (a review's find)
        started = {e.dagster_event.step_key for e in instance.all_logs(retry.run_id)
                   if e.dagster_event and e.dagster_event.is_step_start}
        assert {"raw__deliveries", "harmonised", "marts", "warehouse__published"} <= started, started
        assert "staging failed in a worker process" in failures[0].step_failure_data.error.to_string()
    finally:
        _stop(daemon)
        instance.dispose()

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("SELECT sum(completed) FROM marts.outcomes_by_cycle").fetchone()[0] > 0
        assert con.execute("SELECT count(DISTINCT cycle) FROM marts.fct_participation").fetchone()[0] == 8
    finally:
        con.close()


def _bundled_site(tmp_path, monkeypatch) -> Path:
    """The bundled raw root copied into tmp_path, for runs in process (the settings from the
    environment, as a reconstructable job reads them); the warehouse path."""
    shutil.copytree(REPO / "data" / "raw", tmp_path / "raw")
    warehouse = tmp_path / "warehouse" / "iga.duckdb"
    for name in ("DAGSTER_HOME", "IGA_ENV", "IGA_INGEST_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IGA_RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("IGA_WAREHOUSE", str(warehouse))
    return warehouse


def _build_all():
    """build_all, for Dagster to load again by reference (a re-execution needs that)."""
    from iga_pipeline.definitions import defs

    return defs.resolve_job_def("build_all")


def test_a_run_re_executed_from_its_failed_step_publishes_its_own_build(tmp_path, monkeypatch):
    """A run that failed after its marts step (the report could not be written), re-executed
    from the failed step once the fault is gone: the re-execution goes on with its group's
    candidate warehouse and publishes it. Before, the files were named after each run's id:
    the re-execution found no candidate, rendered the report from the live warehouse and
    could not publish (found by a review, for the daemon's retries)."""
    from dagster import DagsterInstance, ReexecutionOptions, execute_job, reconstructable

    from iga_pipeline.defs.automation import all_cycles_tags

    warehouse = _bundled_site(tmp_path, monkeypatch)
    job = reconstructable(_build_all)
    config = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}

    def answers() -> int:
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            return con.execute("SELECT questionnaires FROM marts.survey_by_cycle WHERE cycle = 3").fetchone()[0]
        finally:
            con.close()

    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        with execute_job(job, instance, tags=all_cycles_tags(), run_config=config) as first:
            assert first.success
        before = answers()
        with (tmp_path / "raw" / "enkater" / "enkat_cykel3.csv").open("a", encoding="utf-8") as f:
            f.write("999,1277,4,nej\n")  # one more questionnaire of cycle 3
        report = warehouse.parent / "report"
        shutil.rmtree(report)
        report.write_text("not a folder")  # the report cannot be written: the run fails there
        with execute_job(job, instance, tags=all_cycles_tags(), run_config=config,
                         raise_on_error=False) as failed:
            assert not failed.success
            failed_steps = [e.step_key for e in failed.all_events if e.is_step_failure]
            failed_id = failed.run_id
        assert failed_steps == ["report__evaluation_report"] and answers() == before

        report.unlink()  # the fault is gone
        options = ReexecutionOptions.from_failure(failed_id, instance)
        with execute_job(job, instance, run_config=config, reexecution_options=options,
                         raise_on_error=False) as again:
            assert again.success, [e.message for e in again.all_events if e.is_failure]
            ran = {e.step_key for e in again.all_events if e.is_step_start}
        assert "marts" not in ran and "report__evaluation_report" in ran  # from the failed step
        assert answers() == before + 1  # the failed run's build, published
        assert (report / "index.html").is_file()


def _republish():
    """The pandera checks of staging, the marts and everything after them (not the ingest,
    which would write staging again): for Dagster to load again by reference."""
    from dagster import AssetSelection, Definitions, define_asset_job

    from iga_pipeline.definitions import defs
    from iga_pipeline.defs.assets import mart_key
    from iga_pipeline.defs.checks import pandera_checks
    from iga_pipeline.warehouse.catalog import MARTS

    selection = (AssetSelection.assets(*(mart_key(m.name) for m in MARTS)).downstream()
                 | AssetSelection.checks(pandera_checks))
    job = define_asset_job("republish", selection=selection)
    return Definitions.merge(defs, Definitions(jobs=[job])).resolve_job_def("republish")


def test_a_publish_re_executed_alone_publishes_nothing_its_checks_refused(tmp_path, monkeypatch):
    """A review's find (2026-12-02): Dagster's blocking checks stop the publish within their
    run only. Re-executing the skipped publish step alone ("Re-execute selected" in the UI)
    put a candidate that had failed its Great Expectations check live. Now each check's
    verdict is kept beside the candidate, and the publish refuses without a pass from every
    one. The staging is broken as in test_orchestration's test_a_failed_check_blocks_the_publish:
    person_keys that are not hex."""
    from conftest import rewrite_parquet
    from dagster import DagsterInstance, ReexecutionOptions, execute_job, reconstructable

    from iga_pipeline.defs.automation import all_cycles_tags

    warehouse = _bundled_site(tmp_path, monkeypatch)
    config = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        with execute_job(reconstructable(_build_all), instance, tags=all_cycles_tags(), run_config=config) as first:
            assert first.success
        live = warehouse.read_bytes()
        rewrite_parquet(warehouse.parent / "staging" / "cycle=2" / "participations.parquet",
                        "SELECT * REPLACE ('z' || person_key[2:] AS person_key) FROM {src}")
        job = reconstructable(_republish)
        with execute_job(job, instance, run_config=config, raise_on_error=False) as refused:
            assert not refused.success
            failed = {e.check_name for e in refused.get_asset_check_evaluations() if not e.passed}
            refused_id = refused.run_id
        assert failed == {"gx_fct_participation"} and warehouse.read_bytes() == live

        # The steps the check skipped, re-executed without it: the report and the exports are
        # written, and the publish refuses the candidate for its check's verdict.
        options = ReexecutionOptions(parent_run_id=refused_id, step_selection=[
            "report__evaluation_report", "warehouse__parquet", "warehouse__published"])
        with execute_job(job, instance, run_config=config, reexecution_options=options,
                         raise_on_error=False) as again:
            assert not again.success
            failures = {e.step_key: e.step_failure_data.error.message for e in again.all_events
                        if e.is_step_failure}
        assert list(failures) == ["warehouse__published"], failures
        said = failures["warehouse__published"]
        assert "has not passed every blocking check" in said and "gx_fct_participation (failed)" in said, said
        assert warehouse.read_bytes() == live


def test_a_re_executed_marts_build_does_not_publish_the_report_of_the_one_before(tmp_path, monkeypatch):
    """A review's find (2026-12-02): a run whose publish failed left its report and exports
    pending; re-executing its pandera checks, marts, checks and publish over changed staging
    put the new warehouse live beside the old report. A new candidate now discards its
    group's pending report and exports, and the publish refuses without them."""
    from conftest import rewrite_parquet
    from dagster import DagsterInstance, ReexecutionOptions, execute_job, reconstructable

    from iga_pipeline.defs.automation import all_cycles_tags

    warehouse = _bundled_site(tmp_path, monkeypatch)
    config = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    (tmp_path / "home").mkdir()
    live_report, exports = warehouse.parent / "report" / "index.html", warehouse.parent / "parquet"
    job = reconstructable(_republish)
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        with execute_job(reconstructable(_build_all), instance, tags=all_cycles_tags(), run_config=config) as first:
            assert first.success
        live, report = warehouse.read_bytes(), live_report.read_bytes()
        shutil.rmtree(exports)
        exports.write_text("not a folder")  # the publish cannot put the exports there: it fails
        # and keeps the report and the exports pending
        with execute_job(job, instance, run_config=config, raise_on_error=False) as failed:
            assert [e.step_key for e in failed.all_events if e.is_step_failure] == ["warehouse__published"]
            failed_id = failed.run_id
        exports.unlink()  # the fault is gone; the staging of cycle 3 changes meanwhile
        rewrite_parquet(warehouse.parent / "staging" / "cycle=3" / "survey_responses.parquet",
                        "SELECT * FROM {src} LIMIT 10")
        options = ReexecutionOptions(parent_run_id=failed_id, step_selection=[
            "pandera_checks", "marts", "gx_mart_checks", "marts__fct_participation_no_personnummer",
            "warehouse__published"])
        with execute_job(job, instance, run_config=config, reexecution_options=options,
                         raise_on_error=False) as again:
            failures = {e.step_key: e.step_failure_data.error.message for e in again.all_events
                        if e.is_step_failure}
        assert list(failures) == ["warehouse__published"], failures
        assert "the report and the Parquet exports of this run's candidate were not written" in \
            failures["warehouse__published"]
        assert warehouse.read_bytes() == live and live_report.read_bytes() == report
