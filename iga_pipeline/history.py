"""Every version of every delivery ever built: the delivery log.

The raw root holds one file per path; a provider who re-sends a corrected
file replaces the old one there. The warehouse is rebuilt from the raw root,
so without a log the old version would vanish without a trace. After each
ingest of a cycle, a row is added to <staging>/delivery_log.parquet for
each of its files whose content differs from the last the log has for that
path (a new file, a new version, or an earlier version back again), and one
with no hash for each file the log had that is gone; each row has the time
it was first built. The warehouse turns the log into marts.delivery_history:
one row per period in which a version was the file's (current, superseded,
or removed), from `first_built` until `ended`.

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


def last_versions(log: pd.DataFrame) -> pd.DataFrame:
    """The log's last row for each path: the version its cycle's last ingest read (sha256
    missing once that ingest found the file gone)."""
    return log.drop_duplicates("source_file", keep="last")


def record(staging: Path, audit: pd.DataFrame, cycles, now: datetime | None = None) -> int:
    """Add to the log what changed in `cycles`, whose files the audit lists in full: a row
    for each file whose hash differs from the log's last for its path, and a row with no
    hash for each file of those cycles that the log has and the audit no longer lists.

    Returns how many versions were new (removals not counted). Files never opened (sha256
    NULL: refused, unreadable) are present but not versions: nothing is added for them."""
    Path(staging).mkdir(parents=True, exist_ok=True)
    # Runs of different cycles may finish together: one writer at a time.
    with flock(Path(staging) / ".delivery_log.lock"):
        return _record(staging, audit, {int(c) for c in cycles}, now)


def _record(staging: Path, audit: pd.DataFrame, cycles: set[int], now: datetime | None) -> int:
    log = read_log(staging)
    last = last_versions(log).set_index("source_file")
    last_sha = {f: (None if pd.isna(h) else h) for f, h in last["sha256"].items()}
    seen = audit.loc[audit["sha256"].notna(), ["source_file", "sha256", "source_kind", "cycle"]]
    new = seen.loc[pd.Series([last_sha.get(f) != h for f, h in zip(seen["source_file"], seen["sha256"])],
                             index=seen.index, dtype=bool)]
    listed = set(audit["source_file"])
    of_cycles = last["cycle"].isin(list(cycles)).fillna(False)
    gone = last.loc[[f for f, h in last_sha.items() if h is not None and f not in listed and of_cycles[f]]]
    gone = gone.reset_index()[["source_file", "source_kind", "cycle"]].assign(sha256=pd.NA)
    path = log_path(staging)
    if new.empty and gone.empty and path.exists():
        return 0
    types = {"source_file": "string", "sha256": "string", "source_kind": "string", "cycle": "Int64"}
    added = pd.concat([new.astype(types), gone.astype(types)], ignore_index=True).assign(
        first_built=pd.Timestamp(now or datetime.now(timezone.utc)))
    merged = pd.concat([log.astype(types), added], ignore_index=True)[COLUMNS]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    merged.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return len(new)
