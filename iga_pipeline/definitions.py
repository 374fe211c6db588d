"""Everything Dagster loads: `dagster dev` (via workspace.yaml) and `iga-pipeline build`."""

from __future__ import annotations

from dagster import Definitions

from iga_pipeline.defs import assets, automation, checks, report
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

ALL_CHECKS = [*checks.pandera_checks, checks.gx_mart_checks]

defs = Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[automation.build_all, automation.ingest_cycle_job],
    schedules=[automation.nightly_build],
    sensors=[automation.raw_delivery_sensor, automation.warehouse_automation],
    resources={"iga": IGAResource()},
)
