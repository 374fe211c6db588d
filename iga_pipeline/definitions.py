"""Everything Dagster loads: `dagster dev` (via workspace.yaml) and `iga-pipeline build`."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from iga_pipeline.defs import assets, automation, checks, gone_runs, report
from iga_pipeline.defs.resources import IGAResource

ALL_ASSETS = [
    assets.raw_deliveries,
    assets.raw_inventory,
    assets.harmonised,
    assets.marts,
    assets.published_warehouse,
    assets.parquet_exports,
    report.evaluation_report,
]

ALL_CHECKS = [checks.pandera_checks, checks.gx_mart_checks, checks.no_personnummer]

defs = Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[automation.build_all, automation.ingest_cycle_job, automation.inventory_job],
    schedules=[automation.nightly_build],
    sensors=[automation.raw_delivery_sensor, automation.warehouse_automation, gone_runs.gone_build_runs],
    resources={"iga": IGAResource()},
    # Every run's steps in the run's own process, one after the other, as `iga-pipeline
    # build` does. Dagster's default starts a process per step, each importing Dagster,
    # pandas and this package again: under `dagster dev` the ingest run of a 300-person
    # cycle took 17 s that way, 1.6 s this way (docs/performance.md, "Under dagster dev").
    executor=in_process_executor,
)
