from __future__ import annotations

from dagster import ConfigurableResource

from iga_pipeline.pseudonym import PseudonymKey, key_from_env
from iga_pipeline.settings import Paths


class IGAResource(ConfigurableResource):
    """Where the raw deliveries are and where the warehouse goes.

    Empty strings mean: take IGA_RAW_DIR / IGA_WAREHOUSE from the environment
    at run time, falling back to the contract's defaults."""

    raw_dir: str = ""
    warehouse: str = ""
    # True for `iga-pipeline build`, whose run goes on from the ingest to the checks: the
    # ingest then hands a lone large cycle to a worker and warms up the checks meanwhile.
    # (Runs under `dagster dev` also execute their steps in one process, definitions.py,
    # but an ingest run ends with the ingest: nothing to warm up for.)
    in_process_run: bool = False

    def paths(self) -> Paths:
        return Paths.from_env(self.raw_dir or None, self.warehouse or None)

    def pseudonym_key(self) -> PseudonymKey:
        return key_from_env()
