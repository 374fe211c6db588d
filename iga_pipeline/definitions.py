"""Everything Dagster loads: `dagster dev` (via workspace.yaml) and `iga-pipeline build`."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from iga_pipeline.defs import assets
from iga_pipeline.defs.resources import IGAResource

ALL_ASSETS = [
    assets.raw_deliveries,
    assets.raw_inventory,
    assets.harmonised,
    assets.marts,
    assets.published_warehouse,
]

build_all = define_asset_job(
    "build_all", selection=AssetSelection.all(),
    description="Every asset and every cycle partition once, then publish.",
)

defs = Definitions(
    assets=ALL_ASSETS,
    jobs=[build_all],
    resources={"iga": IGAResource()},
)
