"""Where things are: the raw root, the warehouse file and its neighbours.

Read from the environment at call time (never at import), with the
contract's defaults: IGA_RAW_DIR (data/raw) and IGA_WAREHOUSE
(warehouse/iga.duckdb), relative to the working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    raw_dir: Path
    warehouse: Path

    @property
    def warehouse_dir(self) -> Path:
        return self.warehouse.parent

    @property
    def staging(self) -> Path:
        return self.warehouse_dir / "staging"

    @property
    def parquet(self) -> Path:
        return self.warehouse_dir / "parquet"

    @property
    def report_dir(self) -> Path:
        return self.warehouse_dir / "report"

    # A build renders the report and the Parquet files from its candidate
    # warehouse into these pending places; warehouse/published swaps them in
    # right after the warehouse itself.
    def pending_report(self, run_id: str) -> Path:
        return self.report_dir / f".index.html.{run_id}.pending"

    def pending_parquet(self, run_id: str) -> Path:
        return self.warehouse_dir / f".parquet.{run_id}.pending"

    @classmethod
    def from_env(cls, raw_dir: str | os.PathLike | None = None,
                 warehouse: str | os.PathLike | None = None) -> "Paths":
        raw = raw_dir or os.environ.get("IGA_RAW_DIR") or "data/raw"
        wh = warehouse or os.environ.get("IGA_WAREHOUSE") or "warehouse/iga.duckdb"
        return cls(Path(raw).absolute(), Path(wh).absolute())
