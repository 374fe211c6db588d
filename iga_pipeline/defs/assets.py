"""The asset graph, left to right:

    raw -> harmonised (per cycle) -> marts + evaluation (one DuckDB build) -> report, Parquet exports
        -> published warehouse
"""


import warnings
from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext, AssetKey, AssetSpec, AutomationCondition, BackfillPolicy, BetaWarning, Failure,
    MaterializeResult, MetadataValue, StaticPartitionsDefinition, TableColumn, TableSchema, asset, multi_asset,
)

from iga_pipeline import reference, settings, staging, warm_up
from iga_pipeline.defs.resources import IGAResource
from iga_pipeline.evaluation import EVALUATION_MARTS, queries
from iga_pipeline.pseudonym import development_key_said
from iga_pipeline.quality.expectations import SUITES
from iga_pipeline.sources.common import discover, sha256_of
from iga_pipeline.warehouse import build, duck, export, publish
from iga_pipeline.warehouse.catalog import HARMONISED, IN_THE_CONTRACT, MARTS

# The single-run backfill policy is beta in Dagster 1.13. Dagster is pinned (requirements.lock)
# and the runs it makes are tested, so its warning, printed at every code-server and run start
# (about 20 times a deployment's first minutes), says nothing an engineer can act on.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)

cycles_partitions = StaticPartitionsDefinition([str(c) for c in reference.cycles()])

RAW = AssetKey(["raw", "deliveries"])
INVENTORY = AssetKey(["raw", "inventory"])
PUBLISHED = AssetKey(["warehouse", "published"])
PARQUET = AssetKey(["warehouse", "parquet"])
REPORT = AssetKey(["report", "evaluation_report"])
NO_FILE_REJECTED = "no_file_rejected_whole"  # the one check that warns, not blocks (checks.py)
NO_PERSONNUMMER = "no_personnummer"


def gx_check(mart: str) -> str:
    """The name of the Great Expectations check of `mart`."""
    return f"gx_{mart}"


# The blocking checks of a candidate warehouse (defs/checks.py): each writes its verdict
# beside the candidate under its name, and warehouse/published publishes a candidate only
# once all have passed it (build.not_passed).
CANDIDATE_CHECKS = [*(gx_check(s.mart) for s in SUITES), NO_PERSONNUMMER]


# The report, the exports and the publish work on their own run's candidate warehouse,
# so the warehouse automation (defs/automation.py) requests them only together with the
# marts that build it (not after a run of the marts alone, say from the UI), and all three
# whenever the marts are, even one still running (a report started from the UI; the
# previous automation run's publish, waiting past its marts step): left out, the publish
# refuses without the other two or is not asked for, and nothing would ask for the marts
# again until the nightly build (O30). A run on its own waits its turn (publish.publishing).
# A failed pandera check does not stop the marts being requested (an ingest run that failed
# its check has still refreshed its partition): the marts step itself refuses staging that
# has not passed (staging.not_ready), on every path.
WITH_THE_MARTS = AutomationCondition.any_deps_match(
    AutomationCondition.will_be_requested()).with_label("with the marts")

# The marts: AutomationCondition.eager(), except in how it tells whether an input's update
# came after the marts' own. eager() resets on the marts' update or request in the same tick
# as an input's update, whichever came first: its and/or carry no times. So an ingest that
# ended after a warehouse run but before the next tick (two deliveries close together) was
# taken as handled, and stayed unpublished until the nightly build (found by a review).
# Here an input's update counts when it came after both the marts' last request (a failed
# build is not retried until new input comes) and their last update (a build_all run, which
# updates its inputs first, asks for nothing more); the times are the events' own.
_INPUT_UPDATED = AutomationCondition.any_deps_match(AutomationCondition.newly_updated())
MARTS_AUTOMATION = (
    (AutomationCondition.newly_missing().since_last_handled()
     | (_INPUT_UPDATED.since(AutomationCondition.newly_requested())
        & _INPUT_UPDATED.since(AutomationCondition.newly_updated())))
    & ~AutomationCondition.any_deps_missing()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("eager, input updates timed")


def harmonised_key(name: str) -> AssetKey:
    return AssetKey(["harmonised", name])


def mart_key(name: str) -> AssetKey:
    return AssetKey(["marts", name])


def input_key(name: str) -> AssetKey:
    """A catalog input: a harmonised frame, another mart, or a full key such as raw/inventory."""
    if "/" in name:
        return AssetKey(name.split("/"))
    return harmonised_key(name) if name in HARMONISED else mart_key(name)


@asset(
    key=RAW, group_name="raw", partitions_def=cycles_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    description="The raw files delivered for a cycle (registers, provider files, survey): "
                "hashed (SHA-256) without being parsed; shows their count, bytes and kinds, and "
                "each file's SHA-256 (as marts.ingest_audit and marts.delivery_history name them).",
)
def raw_deliveries(context: AssetExecutionContext, iga: IGAResource) -> MaterializeResult:
    refuse_a_run_of_no_cycle(context)
    refuse_another_warehouse(context, iga)
    paths = iga.paths()
    manifest = []
    cycles = {int(key) for key in context.partition_keys}
    for d in discover(paths.raw_dir, iga.pseudonym_key()):  # once for all the run's cycles
        if d.cycle not in cycles or d.refused:
            continue  # another cycle's, or recorded as a rejected file by ingestion; never opened
        try:
            size, digest = d.path.stat().st_size, sha256_of(d.path)
        except OSError:  # unreadable: ingestion rejects it whole and says why
            size, digest = 0, None
        manifest.append({"cycle": d.cycle, "source_file": d.source_file, "kind": d.kind,
                         "bytes": size, "sha256": digest})
    frame = pd.DataFrame(manifest, columns=["cycle", "source_file", "kind", "bytes", "sha256"])
    n = len(context.partition_keys)
    return MaterializeResult(metadata={
        _of_the_run("files", n): len(frame),
        _of_the_run("bytes", n): int(frame["bytes"].sum()),
        "files_by_kind": MetadataValue.md(
            (frame.groupby(["kind", "cycle"]).size().unstack(fill_value=0) if n > 1  # a column per cycle
             else frame.groupby("kind").size().rename("files").to_frame()).to_markdown()),
        "files_hashed": MetadataValue.md(  # the versions this run saw; a file left unread has none
            frame.assign(sha256=frame["sha256"].fillna("(unreadable)"))
            .sort_values(["cycle", "source_file"]).to_markdown(index=False)),
    })


BUILD_ALL = "build_all"  # the job of every asset (defs/automation.py)
# The tags that name a run's cycles: one partition, or a range of them.
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
CYCLE_TAGS = ("dagster/partition", RANGE_START, RANGE_END)


def refuse_another_warehouse(context, iga: IGAResource) -> None:
    """Fail a run in a Dagster instance that holds another warehouse's runs
    (`settings.claim_instance`; the first run to use the instance records its own)."""
    if context.instance.is_ephemeral:  # a test's, or a CLI build's without DAGSTER_HOME
        return
    problem = settings.claim_instance(Path(context.instance.root_directory), iga.paths().warehouse)
    if problem:
        raise Failure(description=f"{problem}. Nothing was read or published.")


def refuse_a_run_of_no_cycle(context: AssetExecutionContext) -> None:
    """Fail a run that selects a partitioned asset (raw/deliveries, harmonised) but names no
    cycle, before any of its steps records anything.

    Such a run (`dagster job launch -j build_all` without the range tags; `dagster asset
    materialize --select '*'` without `--partition`) cannot ingest, and Dagster failed only its
    partitioned steps: `raw/inventory` was materialised, and the automation took that for new
    input and rebuilt and published the warehouse from the staging as it was. Both raw
    assets call this first."""
    layer = context.job_def.asset_layer
    partitioned = any(layer.asset_graph.get(k).partitions_def is not None for k in layer.selected_asset_keys)
    if partitioned and not any(tag in context.run.tags for tag in CYCLE_TAGS):
        keys = cycles_partitions.get_partition_keys()
        raise Failure(description=(
            f"this run would ingest but names no cycle: choose the cycles (the launchpad's "
            f"partitions, `--partition`), or launch {BUILD_ALL} with the tags "
            f"{RANGE_START}={keys[0]} and {RANGE_END}={keys[-1]} (README, 'Running the nightly "
            f"job now'). Nothing was read or published."))


def _of_the_run(name: str, partitions: int) -> str:
    """A metadata label. Dagster keeps one result for every partition of a range run (build_all)
    and shows it on each cycle: the label of a run of several cycles says it counts them all."""
    return name if partitions == 1 else f"{name}, all {partitions} cycles of the run"


@asset(
    key=INVENTORY, group_name="raw",
    description="Files under the raw root that match no delivery pattern (unexpected_file): never "
                "read, and listed here as marts.data_quality_issues names them (a name a sender chose "
                "is shown as ~ and a keyed id: docs/decisions.md, 'Paths').",
    # Every ingest run and build refreshes it. On a new deployment the automation makes it
    # once, whatever ingests the cycles (the marts read its file); not again after a failure.
    automation_condition=(AutomationCondition.missing() & ~AutomationCondition.in_progress()
                          & ~AutomationCondition.execution_failed()).with_label("missing, not failed"),
)
def raw_inventory(context: AssetExecutionContext, iga: IGAResource) -> MaterializeResult:
    refuse_a_run_of_no_cycle(context)
    refuse_another_warehouse(context, iga)
    paths = iga.paths()
    found = staging.write_inventory(paths.raw_dir, paths.staging, iga.pseudonym_key())
    # Which files, not only how many (a review dropped a misnamed delivery and saw "2"): the
    # rows the warehouse reads, so named as there, masked alike.
    listed = pd.read_parquet(paths.staging / staging.INVENTORY_ISSUES,
                             columns=["source_file", "severity", "reason", "detail"])
    return MaterializeResult(metadata={
        "unexpected_files": found,
        "files": MetadataValue.md(listed.sort_values("source_file").to_markdown(index=False)
                                  if len(listed) else "none"),
    })


@multi_asset(
    specs=[AssetSpec(harmonised_key(name), group_name="harmonised", deps=[RAW], kinds={"pandas", "parquet"},
                     description=_desc) for name, _desc in [
        ("participations", "Accepted register rows: one row per participation, no personal data."),
        ("outcomes", "Accepted provider statuses, one row per participation and time point. "
                     "Staged and checked; the warehouse reads the statuses from the participations, "
                     "which carry them (status_end, status_90d), so no mart depends on this one."),
        ("interventions", "Interventions per participation, with hours where given."),
        ("survey_responses", "Anonymous survey answers."),
        ("followup", "Whether each cycle was followed up at 90 days (rule R9)."),
        ("issues", "Rejected rows and warnings of the cycle's files."),
        ("audit", "Per raw file: rows read, loaded, rejected, collapsed."),
    ]],
    partitions_def=cycles_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    can_subset=False,
)
def harmonised(context: AssetExecutionContext, iga: IGAResource):
    """Adapters + validation for each cycle; Parquet per cycle under warehouse/staging."""
    settings.require_valid()  # before anything is read: a bad IGA_MAX_FILE_MB would refuse every file
    refuse_another_warehouse(context, iga)  # a run from the UI may start here
    paths = iga.paths()
    key = iga.pseudonym_key()
    if iga.in_process_run:
        warm_up.start()  # the steps after the ingest then find their libraries imported
    if key.is_development and not iga.in_process_run:  # `iga-pipeline build` has said it in its banner
        context.log.warning(f"IGA_PSEUDONYM_KEY {development_key_said()}: "
                            "person_key uses the PUBLIC development key")
    per_cycle, by_reason = [], []
    cycles = [int(partition) for partition in context.partition_keys]
    for staged in staging.stage_cycles(paths.raw_dir, paths.staging, cycles, key,
                                       alone_in_worker=iga.in_process_run):
        if staged.new_versions:
            context.log.info(f"cycle {staged.cycle}: {staged.new_versions} delivery version(s) seen for the first time")
        whole = f" ({staged.files_rejected} file(s) rejected whole)" if staged.files_rejected else ""
        context.log.info(
            f"cycle {staged.cycle}: {staged.rows['participations']} participations, "
            f"{staged.rejected} raw rows rejected{whole}, staged in {staged.seconds:.2f} s"
        )
        # A file rejected whole leaves the run green (bad input is recorded, the build goes on):
        # the run says it where a deployment's engineer looks, by name as in the warehouse (and
        # the check no_file_rejected_whole fails). A review saw a broken re-send go unnoticed.
        for source_file, reason, detail in staged.rejected_whole:
            context.log.warning(f"cycle {staged.cycle}: {source_file} rejected whole: {reason}"
                                + (f" ({detail})" if detail else ""))
        per_cycle.append({"cycle": staged.cycle, **staged.rows, "files_rejected": staged.files_rejected})
        by_reason.append(staged.by_reason)
    counts = pd.DataFrame(per_cycle).set_index("cycle")
    for name in HARMONISED:
        metadata = {_of_the_run("rows", len(cycles)): int(counts[name].sum())}
        if len(cycles) > 1:
            metadata["rows by cycle"] = MetadataValue.md(counts[[name]].rename(columns={name: "rows"}).to_markdown())
        if name == "audit":
            metadata["files rejected whole"] = int(counts["files_rejected"].sum())
        if name == "issues" and by_reason:
            reasons = pd.concat(by_reason).groupby(["severity", "reason"])["issues"].sum().reset_index()
            if len(reasons):
                metadata["by_reason"] = MetadataValue.md(reasons.to_markdown(index=False))
        yield MaterializeResult(asset_key=harmonised_key(name), metadata=metadata)


def build_id(context) -> str:
    """What names a build's candidate warehouse, pending report and Parquet: the run's id,
    or a re-execution's (a retry, or one launched from the UI) first run's. A re-execution
    from the failed step so goes on with the candidate its group built; one of every step
    builds it again. (Named after each run, a re-execution found none.)"""
    return context.run.root_run_id or context.run.run_id


def candidate_for(context, iga: IGAResource):
    """This build's candidate warehouse file (named after `build_id`) and the paths; every step
    of the warehouse, its checks, report, exports and publish start here."""
    refuse_another_warehouse(context, iga)
    paths = iga.paths()
    return build.candidate_path(paths.warehouse, build_id(context)), paths


@multi_asset(
    specs=[AssetSpec(mart_key(m.name), group_name=m.group,
                     description=f"{m.description} (one row per {m.grain})",
                     deps=[input_key(i) for i in m.inputs], kinds={"duckdb"},
                     tags={"contract": "warehouse.md" if m.name in IN_THE_CONTRACT else "extension"},
                     automation_condition=MARTS_AUTOMATION,
                     metadata={"columns": MetadataValue.md(
                         "| column | meaning |\n|---|---|\n" + "\n".join(
                             f"| `{c}` | {d} |" for c, d in m.columns.items()))})
           for m in MARTS],
    can_subset=False,
)
def marts(context: AssetExecutionContext, iga: IGAResource):
    """All marts in one DuckDB build, into a candidate file beside the live warehouse.

    Nothing is published here: the candidate goes live in warehouse/published,
    after the blocking checks have passed."""
    candidate, paths = candidate_for(context, iga)
    for cycle in staging.recover(paths.staging):
        context.log.warning(f"cycle {cycle}: restored its staging, left aside by an interrupted run")
    key = iga.pseudonym_key()
    for cycle in staging.log_unlogged(paths.staging, key):
        context.log.warning(f"cycle {cycle}: its versions recorded in the delivery log, which an "
                            "interrupted run had staged but not logged")
    for journal in publish.recover(paths):
        context.log.warning(f"cleaned up {journal}, left by an interrupted build")
    # No cycle is swapped while the build reads, nor before the marts' materialisations are
    # recorded: an ingest that waited for the build is recorded after them, which the
    # automation reads as "an input newer than the marts" (MARTS_AUTOMATION).
    with staging.locked(paths.staging, shared=True):
        missing = staging.missing_cycles(paths.staging, reference.cycles())
        if missing:
            raise RuntimeError(
                f"cycle(s) {', '.join(map(str, missing))} have no staged data: the warehouse would "
                "lack them. Materialise their harmonised partitions first (iga-pipeline build does all).")
        problems = staging.not_ready(paths.staging, reference.cycles(), key)
        if problems:
            raise RuntimeError("the staging cannot go into the warehouse:\n" + "\n".join(problems))
        # A re-execution builds its group's candidate again: the report and exports rendered from
        # the earlier one must not go live with it.
        publish.discard_run(paths, build_id(context))
        build.build_candidate(paths.staging, candidate, EVALUATION_MARTS, previous=paths.warehouse)
        context.log.info(f"warehouse built: {build.build_mode(candidate)}")  # 'full', 'cycles 8', ...
        if _in_this_run(context, PARQUET):  # exported beside the checks, collected by parquet_exports
            export.start(candidate, paths.pending_parquet(build_id(context)))
        published = _in_this_run(context, PUBLISHED)
        if not published:  # the marts alone (say from the UI): say so, rather than leave it to be found
            context.log.warning(
                "this run does not include warehouse/published: its warehouse is built and checked "
                "as a candidate, and not published (the live warehouse is left as it was). To "
                "publish, materialise warehouse/published with the marts (Materialize all), or "
                "run build_all.")
        yield from _mart_results(candidate, published)


def _in_this_run(context, key: AssetKey) -> bool:
    """Whether this run materialises `key` too: a run of a job (`build_all`) names no assets
    of its own, and materialises the job's; the automation's runs name theirs."""
    return key in (context.run.asset_selection or context.job_def.asset_layer.selected_asset_keys)


def preview_markdown(frame: pd.DataFrame) -> str:
    """A mart as a Markdown table for the UI: shares to three decimals, NULL written as NULL
    (pandas would show a missing count as <NA> and a missing share as nan)."""
    def cell(value):
        if pd.isna(value):
            return "NULL"
        return f"{value:.3f}" if isinstance(value, float) else str(value)
    return frame.astype(object).map(cell).to_markdown(index=False, disable_numparse=True)


# What a mart's materialisation says of its publish (the run's warehouse/published records
# whether it took place: the blocking checks come after the marts).
PUBLISH_IN_RUN = ("in this run, once the blocking checks pass "
                  "(warehouse/published's 'published' says whether it did)")
PUBLISH_NOT_IN_RUN = "not in this run (warehouse/published was not selected): nothing is published"
# Whether the report's or the exports' files at `path` are already this run's.
LIVE_WITH_THE_PUBLISH = ("pending: goes live with this run's warehouse/published, whose 'published' says whether "
                         "it did (a materialisation's metadata is not changed later)")
LIVE_NOW = "now: rendered from the live warehouse"


def _mart_results(candidate, published: bool):
    """One MaterializeResult per mart, with its row count and columns (the UI's Columns
    tab: names, DuckDB types, meanings), whether this run is to publish it, and a preview
    or breakdown where useful."""
    con = duck.open_readonly(candidate)
    try:
        types: dict[str, list[tuple[str, str]]] = {}  # mart -> its columns and their DuckDB types
        for table, column, data_type in con.execute(
                "SELECT table_name, column_name, data_type FROM duckdb_columns() "
                "WHERE schema_name = 'marts' ORDER BY table_name, column_index").fetchall():
            types.setdefault(table, []).append((column, data_type))
        for m in MARTS:
            rows = con.execute(f"SELECT count(*) FROM marts.{m.name}").fetchone()[0]
            metadata = {"dagster/row_count": rows, "dagster/column_schema": TableSchema(columns=[
                TableColumn(column, data_type, description=m.columns.get(column))
                for column, data_type in types.get(m.name, [])]),
                "publish": PUBLISH_IN_RUN if published else PUBLISH_NOT_IN_RUN}
            if m.name in ("outcomes_by_cycle", "outcomes_summary"):
                metadata["preview"] = MetadataValue.md(preview_markdown(con.execute(f"SELECT * FROM marts.{m.name}").df()))
            if m.name == "data_quality_issues":
                by_reason = con.execute(
                    "SELECT severity, reason, count(*) AS rows FROM marts.data_quality_issues "
                    "GROUP BY ALL ORDER BY severity, reason").df()
                metadata["by_reason"] = MetadataValue.md(by_reason.to_markdown(index=False))
            yield MaterializeResult(asset_key=mart_key(m.name), metadata=metadata)
    finally:
        con.close()


@asset(
    key=PUBLISHED, group_name="warehouse",
    deps=[*(mart_key(m.name) for m in MARTS), REPORT, PARQUET],
    automation_condition=WITH_THE_MARTS,
    kinds={"duckdb"},
    description="The live warehouse file (warehouse/iga.duckdb), its Parquet folder and its "
                "report: this run's candidate, swapped in once every blocking check has passed "
                "(atomically for the warehouse; all three, or none of them).",
)
def published_warehouse(context: AssetExecutionContext, iga: IGAResource) -> MaterializeResult:
    candidate, paths = candidate_for(context, iga)
    if not candidate.exists():
        raise FileNotFoundError(
            "no candidate warehouse was built in this run (or the run it re-executes); materialise "
            "the marts in the same run")
    # The Parquet files and the report rendered from this candidate go live with it; an
    # export beside the checks that no Parquet step collected is not among them.
    export.stop(candidate)
    # All three or none: a publish step selected without the report or the exports (or
    # re-executed alone after they failed) would put the warehouse live beside older ones.
    missing = [what for what, path in (("the report", paths.pending_report(build_id(context))),
                                       ("the Parquet exports", paths.pending_parquet(build_id(context))))
               if not path.exists()]
    if missing:
        raise Failure(f"{' and '.join(missing)} of this run's candidate were not written: nothing is "
                      "published. Materialise them in the same run (Materialize all, or build_all).")
    # Dagster's blocking checks stop this step within their run only; the verdicts beside the
    # candidate also hold for a re-execution of this step alone.
    refused = build.not_passed(candidate, CANDIDATE_CHECKS)
    if refused:
        raise Failure("this run's candidate warehouse has not passed every blocking check, so it is "
                      "not published: " + ", ".join(refused))
    what = _what_is_published(candidate)
    try:
        cleaned = publish.publish_build(paths, build_id(context))
    except publish.Superseded as e:
        publish.discard_run(paths, build_id(context))
        context.log.warning(f"not published, and discarded: {e}. It stays live; this build's "
                            "data are no newer.")
        return MaterializeResult(metadata={"path": MetadataValue.path(str(paths.warehouse)),
                                           "published": False, "why": str(e)})
    for name in cleaned:
        context.log.info(f"cleaned up {name}, left by an interrupted build")
    if what["rejected"]:
        # A file rejected whole is only a warning (no_file_rejected_whole, on harmonised/audit),
        # yet it can change Table 1: a 90-day file lost takes its cycle out of the Delsumma. A
        # review saw such a warehouse published with nothing said where the publish is read.
        context.log.warning(f"published without {len(what['rejected'])} raw file(s) rejected whole, whose "
                            f"rows it lacks: {', '.join(what['rejected'])} (marts.ingest_audit; the check "
                            f"{NO_FILE_REJECTED} on harmonised/audit)")
    return MaterializeResult(metadata={
        "path": MetadataValue.path(str(paths.warehouse)),
        "bytes": paths.warehouse.stat().st_size,
        "published": True,
        "files rejected whole": MetadataValue.md(what["table"]),
        "followed up at 90 days": what["followed_up"],
    })


def _what_is_published(candidate: Path) -> dict:
    """What a publish puts live that changes the figures without failing a check: the raw files
    rejected whole (their rows are not in it; as the report's data quality section lists them)
    and the cycles followed up at 90 days (Table 1's Delsumma)."""
    con = duck.open_readonly(candidate)
    try:
        rejected = queries.frame(con, queries.REJECTED_FILES)
        cycles = queries.cycles(con)
    finally:
        con.close()
    yes, no = (", ".join(map(str, cycles.loc[cycles["followed_up"] == flag, "cycle"]))
               for flag in (True, False))
    return {
        "rejected": [f"{r.source_file} ({r.reason})" for r in rejected.itertuples()],
        "table": rejected.to_markdown(index=False) if len(rejected) else "none",
        "followed_up": f"cycles {yes or 'none'}" + (f"; not followed up: {no}" if no else ""),
    }


@asset(
    key=PARQUET, group_name="warehouse", deps=[mart_key(m.name) for m in MARTS],
    automation_condition=WITH_THE_MARTS, kinds={"parquet"},
    description="Every mart as Parquet under warehouse/parquet/, for tools that prefer files "
                "to a database. Written from this run's candidate and published with it; "
                "materialised on its own, written from the live warehouse and replaced at once.",
)
def parquet_exports(context: AssetExecutionContext, iga: IGAResource) -> MaterializeResult:
    candidate, paths = candidate_for(context, iga)
    written_by = "this step"
    if candidate.exists():
        rows, failed = export.collect(candidate)  # the export the marts step started, if any
        if rows is not None:
            written_by = "a process beside the checks"
        else:
            if failed:
                context.log.warning(f"the Parquet export beside the checks did not finish ({failed}): "
                                    "exporting here")
            rows = duck.export_parquet(candidate, paths.pending_parquet(build_id(context)))
    else:  # materialised on its own: export the live warehouse
        fresh = paths.pending_parquet(build_id(context))
        with publish.publishing(paths.warehouse_dir):  # the live warehouse stays while it is exported
            rows = duck.export_parquet(paths.warehouse, fresh)
            publish.replace_dir(fresh, paths.parquet)
    return MaterializeResult(metadata={
        "path": MetadataValue.path(str(paths.parquet)), "files": len(rows), "written by": written_by,
        "live": LIVE_WITH_THE_PUBLISH if candidate.exists() else LIVE_NOW,
        "rows": MetadataValue.md(pd.Series(rows, name="rows").to_frame().to_markdown()),
    })
