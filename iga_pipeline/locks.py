"""Advisory file locks (flock) that order the runs sharing a folder.

Runs of `dagster dev` (two ingests at a time, the nightly build, the automation's
warehouse runs) and `iga-pipeline build` can overlap; the locks are how they
take turns where they share files: the staging folder (staging.locked), the
delivery log (history.py) and the publish of a warehouse (warehouse.publish.publishing). A lock is released when
its holder ends, however it ends (a killed process included).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def flock(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold the lock of file `path` (made if missing): exclusive, or shared with other
    shared holders. Not re-entrant: a process must not take a lock it holds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
