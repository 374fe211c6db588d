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

A path's hashed components (a folder or file name the senders chose, `~` and a
keyed id: sources.masking.safe_path) are keyed with the pseudonym key. The log
outlives builds, so it records which key its names are keyed with (in the
Parquet file's metadata, written with it); the first ingest under another key
keys every hashed component of the log anew (`_names_keyed`). Such a path then
no longer matches its file's, which its cycle's ingest records as one path gone
and one new. Logs from before 2026-12-02 held unkeyed SHA-256 ids: the same.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from iga_pipeline import durable
from iga_pipeline.locks import flock
from iga_pipeline.pseudonym import PseudonymKey

LOG_NAME = "delivery_log.parquet"
COLUMNS = ["source_file", "sha256", "source_kind", "cycle", "first_built"]
NAMES_KEY = b"iga_names_key"  # the log file's metadata: the key its hashed names are keyed with
# A hashed path component: an id of PseudonymKey.name_id (a-p), or before 2026-12-02 an unkeyed
# SHA-256 (hex); an extension, or a worksheet's row, may follow.
_HASHED = re.compile(r"~[0-9a-p]{10}")


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


def record(staging: Path, audit: pd.DataFrame, cycles, key: PseudonymKey) -> int:
    """Add to the log what changed in `cycles`, whose files the audit lists in full: a row
    for each file whose hash differs from the log's last for its path, and a row with no
    hash for each file of those cycles that the log has and the audit no longer lists.

    Returns how many versions were new (removals not counted). Files never opened (sha256
    NULL: refused, unreadable) are present but not versions: nothing is added for them.
    `key`: the pseudonym key the audit's hashed names are keyed with."""
    Path(staging).mkdir(parents=True, exist_ok=True)
    # Runs of different cycles may finish together: one writer at a time. The one caller in
    # the pipeline (staging.write_cycle) holds the exclusive staging lock already; this lock
    # keeps the log whole for any other caller too.
    with flock(Path(staging) / ".delivery_log.lock"):
        return _record(staging, audit, {int(c) for c in cycles}, key)


def _names_key(path: Path) -> bytes | None:
    try:
        return (pq.read_schema(path).metadata or {}).get(NAMES_KEY)
    except (OSError, pa.ArrowException):
        return None


def _names_keyed(log: pd.DataFrame, key: PseudonymKey) -> pd.DataFrame:
    """The log with each hashed path component keyed anew under `key` (`~` and the id of the
    old id): no id made under another key, or unkeyed, stays in the log."""
    def rekeyed(path: str) -> str:
        return "/".join("~" + key.name_id(f"rekeyed|{m.group(0)}") + part[m.end():]
                        if (m := _HASHED.match(part)) else part for part in path.split("/"))

    return log.assign(source_file=log["source_file"].map(rekeyed, na_action="ignore").astype("string"))


def _record(staging: Path, audit: pd.DataFrame, cycles: set[int], key: PseudonymKey) -> int:
    path = log_path(staging)
    names_key = key.fingerprint("delivery log names").encode()
    log = read_log(staging)
    migrated = path.exists() and _names_key(path) != names_key
    if migrated:
        log = _names_keyed(log, key)
    last = last_versions(log).set_index("source_file")
    last_sha = {f: (None if pd.isna(h) else h) for f, h in last["sha256"].items()}
    seen = audit.loc[audit["sha256"].notna(), ["source_file", "sha256", "source_kind", "cycle"]]
    new = seen.loc[pd.Series([last_sha.get(f) != h for f, h in zip(seen["source_file"], seen["sha256"])],
                             index=seen.index, dtype=bool)]
    listed = set(audit["source_file"])
    of_cycles = last["cycle"].isin(list(cycles)).fillna(False)
    gone = last.loc[[f for f, h in last_sha.items() if h is not None and f not in listed and of_cycles[f]]]
    gone = gone.reset_index()[["source_file", "source_kind", "cycle"]].assign(sha256=pd.NA)
    if new.empty and gone.empty and path.exists() and not migrated:
        return 0
    types = {"source_file": "string", "sha256": "string", "source_kind": "string", "cycle": "Int64"}
    added = pd.concat([new.astype(types), gone.astype(types)], ignore_index=True).assign(
        first_built=pd.Timestamp(datetime.now(timezone.utc)))
    merged = pd.concat([log.astype(types), added], ignore_index=True)[COLUMNS]
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    table = pa.Table.from_pandas(merged, preserve_index=False)
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), NAMES_KEY: names_key}), tmp)
    durable.replace(tmp, path)
    return len(new)
