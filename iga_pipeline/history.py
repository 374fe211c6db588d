"""Every version of every delivery ever built: the delivery log.

The raw root holds one file per path; a provider who re-sends a corrected
file replaces the old one there. The warehouse is rebuilt from the raw root,
so without a log the old version would vanish without a trace. After each
ingest, the (source_file, sha256) pairs it read are added to
<staging>/delivery_log.parquet with the time they were first built; the
warehouse turns the log into marts.delivery_history (current, superseded,
or removed).

Building twice from the same files adds nothing, so the marts stay identical.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from iga_pipeline.locks import flock

LOG_NAME = "delivery_log.parquet"
COLUMNS = ["source_file", "sha256", "source_kind", "cycle", "first_built"]


def log_path(staging: Path) -> Path:
    return Path(staging) / LOG_NAME


def read_log(staging: Path) -> pd.DataFrame:
    path = log_path(staging)
    if path.exists():
        return pd.read_parquet(path)
    return pd.DataFrame({"source_file": pd.Series(dtype="string"), "sha256": pd.Series(dtype="string"),
                         "source_kind": pd.Series(dtype="string"), "cycle": pd.Series(dtype="Int64"),
                         "first_built": pd.Series(dtype="datetime64[us, UTC]")})


def record(staging: Path, audit: pd.DataFrame, now: datetime | None = None) -> int:
    """Add the audit's (source_file, sha256) pairs that the log does not have yet.

    Returns how many versions were new. Files never opened (sha256 NULL) are
    not versions and are skipped."""
    Path(staging).mkdir(parents=True, exist_ok=True)
    # Runs of different cycles may finish together: one writer at a time.
    with flock(Path(staging) / ".delivery_log.lock"):
        return _record(staging, audit, now)


def _record(staging: Path, audit: pd.DataFrame, now: datetime | None) -> int:
    log = read_log(staging)
    seen = audit.loc[audit["sha256"].notna(), ["source_file", "sha256", "source_kind", "cycle"]]
    known = set(zip(log["source_file"], log["sha256"]))
    is_new = [pair not in known for pair in zip(seen["source_file"], seen["sha256"])]
    new = seen.loc[pd.Series(is_new, index=seen.index, dtype=bool)]
    path = log_path(staging)
    if new.empty and path.exists():
        return 0
    new = new.assign(first_built=pd.Timestamp(now or datetime.now(timezone.utc)))
    merged = pd.concat([log, new.astype({"source_file": "string", "sha256": "string",
                                         "source_kind": "string", "cycle": "Int64"})],
                       ignore_index=True)[COLUMNS]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    merged.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return len(new)
