"""The Dagster definitions: loadable, described, grouped, and the graph as committed.

The asset graph is compared with a snapshot (snapshots/asset_graph.json), so
a change to the lineage shows up in review. After an intended change:

    IGA_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest iga_pipeline_tests/test_definitions.py
"""

import json
import os
import warnings
from pathlib import Path

import pytest

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


@pytest.fixture(scope="module")
def defs():
    warnings.filterwarnings("ignore")
    from iga_pipeline.definitions import defs

    return defs


def graph_of(defs) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitioned": node.partitions_def is not None,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
        }
    checks = sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys)
    return {"assets": assets, "checks": checks}


def test_asset_graph_matches_snapshot(defs):
    current = graph_of(defs)
    if os.environ.get("IGA_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(current, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert current == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_every_asset_is_described_and_grouped(defs):
    graph = defs.resolve_asset_graph()
    assert graph.get_all_asset_keys()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name and node.group_name != "default", key
        assert (node.description or "").strip(), key


def test_lineage_reads_left_to_right(defs):
    """raw -> harmonised -> marts -> evaluation -> report -> warehouse: no edge goes backwards."""
    order = {"raw": 0, "harmonised": 1, "marts": 2, "evaluation": 3, "report": 4, "warehouse": 5}
    graph = defs.resolve_asset_graph()
    edges = 0
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        for parent in node.parent_keys:
            assert order[graph.get(parent).group_name] <= order[node.group_name], (parent, key)
            edges += 1
    assert edges, "no edge was looked at"


def test_checks_are_blocking_but_the_ingest_warning(defs):
    """Every check stops what follows it, but the ingest's warning that a file was rejected
    whole: bad input is recorded and the build goes on without it."""
    graph = defs.resolve_asset_graph()
    assert graph.asset_check_keys
    for check_key in graph.asset_check_keys:
        from dagster import AssetCheckKey

        from iga_pipeline.defs.assets import NO_FILE_REJECTED, harmonised_key

        warning = check_key == AssetCheckKey(harmonised_key("audit"), NO_FILE_REJECTED)
        assert graph.get_check_spec(check_key).blocking is not warning, check_key


def test_the_publish_waits_for_every_check_of_the_marts(defs):
    """warehouse/published asks each check of the candidate for its verdict (CANDIDATE_CHECKS):
    a check of the marts left out of that list would not stop a re-executed publish."""
    from iga_pipeline.defs.assets import CANDIDATE_CHECKS

    graph = defs.resolve_asset_graph()
    on_the_marts = {k.name for k in graph.asset_check_keys if k.asset_key.path[0] == "marts"}
    assert on_the_marts == set(CANDIDATE_CHECKS) and len(CANDIDATE_CHECKS) == 11


def test_jobs_schedule_and_sensors(defs):
    from dagster import AssetKey, DefaultScheduleStatus, DefaultSensorStatus, build_schedule_context

    assert {j.name for j in defs.resolve_all_job_defs()} >= {"build_all", "ingest_cycle"}
    schedule = defs.resolve_schedule_def("nightly_build")
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name, schedule.default_status) == (
        "30 2 * * *", "Europe/Stockholm", "build_all", DefaultScheduleStatus.RUNNING)
    # every cycle in one run: without the range the run fails at its first step (README)
    (request,) = schedule.evaluate_tick(build_schedule_context()).run_requests
    assert (request.tags["dagster/asset_partition_range_start"],
            request.tags["dagster/asset_partition_range_end"]) == ("1", "8")
    sensor = defs.resolve_sensor_def("raw_delivery_sensor")
    assert ([t.job_name for t in sensor.targets], sensor.minimum_interval_seconds, sensor.default_status) == (
        ["ingest_cycle", "list_unexpected_files"], 30, DefaultSensorStatus.RUNNING)
    gone = defs.resolve_sensor_def("gone_build_runs")  # asks for no run: it ends those of killed builds
    assert (gone.targets, gone.minimum_interval_seconds, gone.default_status) == (
        [], 60, DefaultSensorStatus.RUNNING)
    # the sensor's run of the files of no cycle makes raw/inventory and nothing else
    assert defs.resolve_job_def("list_unexpected_files").asset_layer.selected_asset_keys == {
        AssetKey(["raw", "inventory"])}


def test_the_warehouse_automation_ticks_every_30_s_over_every_asset_from_the_start(defs):
    """`dagster dev` starts the automation with the deployment (README), ticking every 30 s
    (docs/performance.md, "Under dagster dev"), over every asset that has a condition: the
    marts, what follows them, and raw/inventory on a new deployment."""
    from dagster import DefaultSensorStatus

    sensor = defs.resolve_sensor_def("warehouse_automation")
    assert (sensor.default_status, sensor.minimum_interval_seconds) == (DefaultSensorStatus.RUNNING, 30)
    graph = defs.resolve_asset_graph()
    automated = {k for k in graph.get_all_asset_keys() if graph.get(k).automation_condition is not None}
    assert {k.path[0] for k in automated} == {"raw", "marts", "report", "warehouse"}
    assert automated <= sensor.asset_selection.resolve(graph)


def test_the_instance_runs_at_most_two_ingest_runs_at_once(defs, tmp_path):
    """The delivery sensor's first tick asks for eight ingest runs. The instance of
    `dagster dev` (.dagster_home/dagster.yaml, committed) queues every run of the jobs
    that ingest behind a limit of two on their tag, and ends any of them still going
    after its maximum run time (run monitoring), so that a run whose worker died does not
    keep its place for ever; and it launches a failed run again once. `iga-pipeline build`
    runs carry another value of the tag (not queued), and are not retried."""
    import shutil

    from dagster import DagsterInstance
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._core.scheduler.instigation import TickStatus

    from iga_pipeline.defs.automation import IN_PROCESS_TAGS, INGEST_TAGS

    key = "iga/ingest"
    for name in ("build_all", "ingest_cycle", "list_unexpected_files"):
        tags = defs.resolve_job_def(name).tags
        assert tags.get(key) == INGEST_TAGS[key] != IN_PROCESS_TAGS[key], name
        # the 10M full build: 541.0 s on 2026-12-02, 575.6 s on 2026-12-03 (docs/performance-history.md):
        # a limit under twice that would end the nightly build of such a deployment as failed
        assert 2 * 576 < int(tags["dagster/max_runtime"]) <= 24 * 3600, name
    # the automation's runs too: one whose process died would hold the automation up
    assert defs.resolve_sensor_def("warehouse_automation").run_tags["dagster/max_runtime"] == \
        INGEST_TAGS["dagster/max_runtime"]
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(Path(__file__).parents[1] / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert instance.run_monitoring_enabled
        # a failed run is launched again once (test_deployment.py plays it), not a CLI build's
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert instance.run_retries_retry_on_asset_or_op_failure  # a worker killed fails a step
        assert not instance.telemetry_enabled  # the network is closed: no script, no console error
        assert not instance.nux_enabled
        # sensor ticks that asked for nothing: kept a day; the others as long as Dagster keeps them
        retention = instance.get_tick_retention_settings(InstigatorType.SENSOR)
    assert retention[TickStatus.SKIPPED] == 1
    assert retention[TickStatus.SUCCESS] == retention[TickStatus.FAILURE] == -1  # for ever
    assert IN_PROCESS_TAGS["dagster/max_retries"] == "0"
    # a retry runs every step again (a run's candidate warehouse is named after its run id)
    assert all(defs.resolve_job_def(n).tags["dagster/retry_strategy"] == "ALL_STEPS"
               for n in ("build_all", "ingest_cycle", "list_unexpected_files"))
    assert defs.resolve_sensor_def("warehouse_automation").run_tags["dagster/retry_strategy"] == "ALL_STEPS"
    assert all("dagster/max_retries" not in defs.resolve_job_def(n).tags for n in ("build_all", "ingest_cycle", "list_unexpected_files"))
    assert [limit for limit in limits if limit["key"] == key] == [
        {"key": key, "value": INGEST_TAGS[key], "limit": 2}]


def test_the_deployments_resource_takes_the_paths_of_the_environment(defs, tmp_path, monkeypatch):
    """`dagster dev` (workspace.yaml) runs every step with the definitions' resource: the paths
    of IGA_RAW_DIR and IGA_WAREHOUSE, and not `iga-pipeline build`'s run in its own process
    (which warms the later steps' imports up, and says the development key in its banner
    rather than in the run's log)."""
    iga = defs.resources["iga"]
    monkeypatch.setenv("IGA_RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("IGA_WAREHOUSE", str(tmp_path / "wh" / "iga.duckdb"))
    paths = iga.paths()
    assert (paths.raw_dir, paths.warehouse) == (tmp_path / "raw", tmp_path / "wh" / "iga.duckdb")
    assert iga.in_process_run is False


def test_every_job_executes_its_steps_in_the_runs_process(defs):
    """A new process per step imports everything again: under `dagster dev` the ingest run
    of a 300-person cycle took 17 s that way, 1.6 s in the run's process
    (docs/performance.md). The automation's runs use Dagster's implicit asset job, which
    takes the same executor."""
    from dagster import in_process_executor

    jobs = list(defs.resolve_all_job_defs())
    assert {j.name for j in jobs} >= {"build_all", "ingest_cycle"}
    for job in jobs:
        assert job.executor_def is in_process_executor, job.name


def test_the_lineage_names_the_staged_frames_the_sql_reads():
    """The graph's edges from harmonised frames to marts are those the warehouse SQL reads,
    and the warehouse loads no staged frame that nothing reads (staging.outcomes once)."""
    import re

    from iga_pipeline.warehouse import build, catalog

    sql = {p.name: p.read_text() for p in build.sql_files()}
    loaded = set(re.findall(r"CREATE OR REPLACE TABLE staging\.(\w+)", sql.pop("10_staging.sql")))
    read = set(re.findall(r"\bstaging\.(\w+)", "\n".join(sql.values()))) & set(catalog.HARMONISED)
    in_catalog = {i for m in catalog.MARTS for i in m.inputs if i in catalog.HARMONISED}
    assert in_catalog == read
    assert loaded & set(catalog.HARMONISED) <= read


def test_the_ingest_and_the_catalog_name_the_same_frames():
    """The harmonised assets are made from the catalog's list; the ingest returns its own."""
    from iga_pipeline.ingest import CycleIngest
    from iga_pipeline.warehouse.catalog import HARMONISED

    assert CycleIngest.frame_names() == list(HARMONISED)


def test_the_marts_of_the_contract_are_told_apart_from_the_extensions(defs):
    """warehouse.md's marts carry the tag contract=warehouse.md in the UI; the project's own
    marts contract=extension."""
    from iga_pipeline.defs.assets import mart_key
    from iga_pipeline.warehouse.catalog import MARTS

    graph = defs.resolve_asset_graph()
    tags = {m.name: graph.get(mart_key(m.name)).tags.get("contract") for m in MARTS}
    assert {name for name, tag in tags.items() if tag == "extension"} == {"delivery_history", "survey_by_cycle"}
    assert {name for name, tag in tags.items() if tag == "warehouse.md"} == set(tags) - {
        "delivery_history", "survey_by_cycle"}
    assert len(tags) == 13


def test_the_ui_preview_of_a_mart_writes_null_alike_for_counts_and_shares():
    """A cycle not followed up has NULL counts (Int64) and NULL shares (float) at 90 days: the
    preview says NULL for both, not <NA> beside nan."""
    import pandas as pd

    from iga_pipeline.defs.assets import preview_markdown

    frame = pd.DataFrame({"cycle": [7, 8], "work_90d": pd.array([14, None], dtype="Int64"),
                          "share_work_90d": [14 / 33, float("nan")], "followed_up": [True, False]})
    text = preview_markdown(frame)
    assert "nan" not in text and "<NA>" not in text
    last = [cell.strip() for cell in text.splitlines()[-1].strip("|").split("|")]
    assert last == ["8", "NULL", "NULL", "False"]
    assert "0.424" in text.splitlines()[-2]


def test_a_pandera_rule_written_as_a_method_is_described_in_words_not_by_its_name(defs):
    """A review's find: the UI described pandera_interventions as 'hours >= 0, <= 4416,
    hundredths' (the method `_hundredths`, its underscore a second space), not what it asks."""
    from dagster import AssetCheckKey

    from iga_pipeline.defs.assets import harmonised_key

    graph = defs.resolve_asset_graph()
    text = graph.get_check_spec(AssetCheckKey(harmonised_key("interventions"), "pandera_interventions")).description
    assert "hours >= 0, <= 4416, hours have at most two decimals" in text, text
    for key in graph.asset_check_keys:
        assert "  " not in graph.get_check_spec(key).description, key


def test_every_asset_shows_the_kinds_of_what_it_writes(defs):
    """The UI draws each asset's kinds on its node and filters the graph by them: the staged
    frames are pandas written as Parquet, the marts and the live warehouse DuckDB, the exports
    Parquet, the report HTML; the raw files are read as they come (no kind)."""
    graph = defs.resolve_asset_graph()
    expected = {"raw": set(), "harmonised": {"pandas", "parquet"}, "marts": {"duckdb"}, "report": {"html"}}
    kinds = {key.to_user_string(): set(graph.get(key).kinds) for key in graph.get_all_asset_keys()}
    assert kinds.pop("warehouse/published") == {"duckdb"}
    assert kinds.pop("warehouse/parquet") == {"parquet"}
    assert kinds and {name: expected[name.split("/")[0]] for name in kinds} == kinds


def test_a_backfill_of_the_cycles_is_one_run_and_a_step_makes_its_whole_output(defs):
    """A backfill of every cycle from the UI (the partitions of raw/deliveries and harmonised)
    is one run of one step per asset, as build_all's range run is, not a run per cycle queued
    behind the limit of two; and selecting one staged frame or one mart (in the UI, or in a
    job) takes its step's every other output with it: the ingest stages all seven frames and
    the marts step builds every mart, so a lone one would leave the others changed on disk but
    not recorded."""
    from dagster import AssetSelection, BackfillPolicy

    from iga_pipeline.defs.assets import RAW, harmonised_key, mart_key
    from iga_pipeline.warehouse.catalog import HARMONISED, MARTS

    graph = defs.resolve_asset_graph()
    partitioned = {k for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is not None}
    assert partitioned == {RAW, *(harmonised_key(n) for n in HARMONISED)}
    for key in partitioned:
        assert graph.get(key).backfill_policy == BackfillPolicy.single_run(), key
    for whole in ([harmonised_key(n) for n in HARMONISED], [mart_key(m.name) for m in MARTS]):
        for key in whole:
            assert AssetSelection.assets(key).required_multi_asset_neighbors().resolve(graph) == set(whole), key


def test_every_mart_says_its_grain_and_its_columns_before_it_is_built(defs):
    """A mart's page in the UI describes it with its grain, and its definition lists each column
    with the catalog's meaning (shown before any materialisation, and on a mart that failed to
    build), as the DuckDB table comments do (test_bundled_build.py)."""
    from iga_pipeline.defs.assets import mart_key
    from iga_pipeline.warehouse.catalog import MARTS

    graph = defs.resolve_asset_graph()
    for m in MARTS:
        node = graph.get(mart_key(m.name))
        assert node.description == f"{m.description} (one row per {m.grain})", m.name
        header, rule, *rows = node.metadata["columns"].value.splitlines()
        assert (header, rule) == ("| column | meaning |", "|---|---|"), m.name
        assert rows == [f"| `{c}` | {d} |" for c, d in m.columns.items()] and rows, m.name


def test_the_automation_names_its_conditions_as_the_ui_labels_them(defs):
    """The UI shows each automated asset's condition by its label (the expanded tree otherwise),
    and the automation's description names the marts' one by that label: the two agree."""
    graph = defs.resolve_asset_graph()
    labels = {key.to_user_string(): graph.get(key).automation_condition.get_label()
              for key in graph.get_all_asset_keys() if graph.get(key).automation_condition is not None}
    assert all(labels.values()), labels
    by_group = {}
    for name, label in labels.items():
        by_group.setdefault(name.split("/")[0], set()).add(label)
    assert by_group == {"raw": {"missing, not failed"}, "marts": {"eager, input updates timed"},
                        "report": {"with the marts"}, "warehouse": {"with the marts"}}
    description = defs.resolve_sensor_def("warehouse_automation").description
    assert "(the marts' condition: 'eager, input updates timed')" in description, description


def test_the_descriptions_name_the_files_where_a_deployment_finds_them(defs, monkeypatch):
    """The published warehouse, its report and its Parquet exports are described by where the
    default deployment (no IGA_WAREHOUSE) puts them, relative to the working directory."""
    from iga_pipeline.defs.assets import PARQUET, PUBLISHED, REPORT
    from iga_pipeline.settings import Paths

    monkeypatch.delenv("IGA_WAREHOUSE", raising=False)
    paths = Paths.from_env()
    graph = defs.resolve_asset_graph()

    def said(path: Path) -> str:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()

    for key, where in ((PUBLISHED, said(paths.warehouse)), (REPORT, said(paths.report_dir / "index.html")),
                       (PARQUET, said(paths.parquet) + "/")):
        assert where in graph.get(key).description, (key, where)


def test_each_great_expectations_check_lists_its_suites_expectations(defs):
    """A mart's check in the UI says what its suite asks: the mart it reads, and every
    expectation with its column, as the suite (quality/expectations.py) runs them."""
    from dagster import AssetCheckKey

    from iga_pipeline.defs.assets import mart_key
    from iga_pipeline.quality.expectations import SUITES

    graph = defs.resolve_asset_graph()
    assert SUITES
    for s in SUITES:
        text = graph.get_check_spec(AssetCheckKey(mart_key(s.mart), f"gx_{s.mart}")).description
        listed = text.split(f"Great Expectations suite marts.{s.mart}: ", 1)[1]
        assert listed.split("; ") == [f"{name}({kwargs.get('column', '')})" for name, kwargs in s.expectations], s.mart
        assert text.startswith(s.summary[:1].upper() + s.summary[1:]), s.mart
