"""Python's cycle collector, kept out of the way of bulk work.

CPython frees most objects by reference counting; its cycle collector (`gc`)
runs besides, each time enough container objects (dicts, lists, ...) have been
made, and a full collection visits every such object the process holds. Two
patterns make that expensive here:

* decoding a large Åstorp export makes millions of dicts and lists, so the
  collector runs over and over while the heap grows; those objects refer to
  no others in a cycle, so reference counting frees them anyway (`paused`);
* `iga-pipeline build` imports Dagster, the definitions, scipy, Great
  Expectations and matplotlib, and every later full collection visits the
  objects of those modules again, though they live as long as the process
  (`freeze`).

Measured figures: docs/performance-history.md ("What made it faster").
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No cycle collection inside (for every thread of the process: the collector
    is process-wide). For work that makes many objects but no reference cycles;
    cycles made meanwhile by other code are found by the next collection after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def freeze() -> None:
    """Leave every object that exists now out of later collections (`gc.freeze`).

    For the end of a process's imports: its modules, classes and functions stay
    to the end anyway. An object frozen here is still freed by reference
    counting; only one caught in a reference cycle is never collected."""
    gc.freeze()
