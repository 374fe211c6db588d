"""The evaluator's report: warehouse/report/index.html.

In a build the report is rendered from this run's candidate warehouse
*before* the publish, as a pending file that warehouse/published swaps in
right after the warehouse: so a report that fails to render stops the
publish (the previous warehouse and report stay), and a published warehouse
always has its report. Materialised on its own (from the UI), it renders
from the live warehouse and replaces the page directly, once no publish is
under way."""

from contextlib import nullcontext

from dagster import (
    AssetExecutionContext, MaterializeResult, MetadataValue, asset,
)

from iga_pipeline.defs.assets import (
    LIVE_NOW, LIVE_WITH_THE_PUBLISH, REPORT, WITH_THE_MARTS, build_id, candidate_for, mart_key, preview_markdown,
)
from iga_pipeline.defs.resources import IGAResource
from iga_pipeline.evaluation import EVALUATION_MARTS
from iga_pipeline.evaluation.report import write_report
from iga_pipeline.warehouse.duck import open_readonly
from iga_pipeline.warehouse.publish import publishing

# Every mart the page reads (besides the evaluation marts themselves).
READS = ("outcomes_by_cycle", "outcomes_summary", "survey_by_cycle", "fct_participation",
         "ingest_audit", "data_quality_issues")


@asset(
    key=REPORT, group_name="report", kinds={"html"},
    deps=[mart_key(name) for name in dict.fromkeys([*EVALUATION_MARTS, *READS])],
    automation_condition=WITH_THE_MARTS,
    description="A self-contained HTML page for the project owner (warehouse/report/index.html): "
                "Table 1 recomputed beside the printed one, goal attainment, the ESF comparison "
                "with intervals, cost per outcome, early leavers and data quality. Rendered from "
                "this run's candidate warehouse and published together with it.",
)
def evaluation_report(context: AssetExecutionContext, iga: IGAResource) -> MaterializeResult:
    candidate, paths = candidate_for(context, iga)
    if candidate.exists():
        source, out = candidate, paths.pending_report(build_id(context))
    elif paths.warehouse.exists():
        source, out = paths.warehouse, paths.report_dir / "index.html"
    else:
        raise FileNotFoundError(f"no warehouse to report on at {paths.warehouse}: build one first "
                                "(iga-pipeline build, or materialise the marts)")
    # Rendered from the live warehouse, the page replaces the live one: it takes its turn with
    # the publishes (as parquet_exports does), or a build's publish during the rendering would
    # be followed by this page of the warehouse it replaced.
    with publishing(paths.warehouse_dir) if source == paths.warehouse else nullcontext():
        out = write_report(source, out)
        con = open_readonly(source)
        try:
            flagged = con.execute(
                "SELECT row_label, column_name, published, recomputed FROM marts.published_reconciliation "
                "WHERE NOT matches ORDER BY row_order, column_order").df()
            # with the target met or not, and the survey's coverage that makes HM1 assessable
            goals = con.execute(
                "SELECT goal_id, scope, numerator, denominator, value, target, status, coverage "
                "FROM marts.goal_attainment").df()
        finally:
            con.close()
    context.log.info(f"wrote {out}")
    return MaterializeResult(metadata={
        # where it is read: a build's pending file is renamed to index.html when it is published
        "path": MetadataValue.path(str(paths.report_dir / "index.html")),
        "live": LIVE_WITH_THE_PUBLISH if source == candidate else LIVE_NOW,
        "bytes": out.stat().st_size,
        # the print's misprints, or the data's differences from it (a delivery lost): the page says
        # which; here both are only cells that differ (an evaluator's review saw "misprints" of data)
        "cells_differing_from_print": len(flagged),
        "differences_from_print": MetadataValue.md(preview_markdown(flagged)),
        "goals": MetadataValue.md(preview_markdown(goals)),
    })

