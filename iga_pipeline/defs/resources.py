"""The Dagster resource that gives every asset its paths and the pseudonym key."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from iga_pipeline.pseudonym import PseudonymKey, key_from_env
from iga_pipeline.settings import Paths, SettingError


class IGAResource(ConfigurableResource):
    """Where the raw deliveries are and where the warehouse goes.

    Empty strings mean: take IGA_RAW_DIR / IGA_WAREHOUSE from the environment
    at run time, falling back to the contract's defaults. A blank one (' ') is refused."""

    raw_dir: str = Field("", description="The raw root; empty: IGA_RAW_DIR, else data/raw.")
    warehouse: str = Field("", description="The live warehouse file; empty: IGA_WAREHOUSE, else "
                                           "warehouse/iga.duckdb. Staging, report and Parquet go beside it.")
    # True for `iga-pipeline build`: the ingest then hands a lone large cycle to a worker
    # and imports the later steps' libraries (scipy, GX, matplotlib; warm_up.py) in a
    # background thread meanwhile (the command waits for that thread before it ends).
    # Runs under `dagster dev` leave it False: the sensor's ingest runs end with the
    # ingest, and a `build_all` run there imports each library at its own step.
    in_process_run: bool = Field(False, description="Set by `iga-pipeline build` (a run in the "
                                                    "command's process); leave it false under dagster dev.")

    # A delivery file changed more recently than this is taken to be still arriving (an upload
    # or a copy in progress): the delivery sensor waits for it (automation.scan).
    settle_seconds: int = Field(60, description="The delivery sensor ingests a file only once it has not "
                                                "changed for this many seconds.")

    def paths(self) -> Paths:
        paths = Paths.from_env(self.raw_dir or None, self.warehouse or None)
        wrong = paths.problems()
        if wrong:  # a step that went on would replace, or read, what it must not
            raise SettingError("; ".join(wrong))
        return paths

    def pseudonym_key(self) -> PseudonymKey:
        return key_from_env()
