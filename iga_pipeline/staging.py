"""Staging: the harmonised frames of each cycle as Parquet, one folder per partition.

    <staging>/cycle=<N>/<frame>.parquet     written by ingestion of cycle N
    <staging>/inventory_issues.parquet      files that belong to no cycle

Each folder is written to a temporary sibling and renamed into place, so a
crash mid-write never leaves a half-written partition behind.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pandas as pd

from iga_pipeline.ingest import CycleIngest


def cycle_dir(staging: Path, cycle: int) -> Path:
    return Path(staging) / f"cycle={cycle}"


def write_cycle(staging: Path, result: CycleIngest) -> Path:
    staging = Path(staging)
    staging.mkdir(parents=True, exist_ok=True)
    final = cycle_dir(staging, result.cycle)
    tmp = staging / f".cycle={result.cycle}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()
    for name in CycleIngest.frame_names():
        getattr(result, name).to_parquet(tmp / f"{name}.parquet", index=False)
    old = None
    if final.exists():
        old = staging / f".cycle={result.cycle}.{uuid.uuid4().hex}.old"
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_frame(staging: Path, cycle: int, name: str) -> pd.DataFrame:
    return pd.read_parquet(cycle_dir(staging, cycle) / f"{name}.parquet")


def write_inventory_issues(staging: Path, issues: pd.DataFrame) -> Path:
    staging = Path(staging)
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / "inventory_issues.parquet"
    tmp = staging / f".inventory_issues.{uuid.uuid4().hex}.tmp"
    issues.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path
