"""Import the libraries of the steps after the ingest while the ingest runs.

`iga-pipeline build` executes its steps in one process and ingests in worker
processes, so the build process mostly waits during the ingest. `start` uses
that time: a background thread of low priority imports, in the order the later
steps need them, scipy.stats (the Wilson intervals of the `marts` step, 0.48 s),
Great Expectations (the checks, 1.3 s more) and matplotlib (the report's
charts, 0.18 s); measured in a process that had imported the definitions.

A step calls `wait_for(module)` before its own import. It then never imports
beside the thread: Great Expectations imports scipy, and two threads importing
one package can each find the other's modules half made. Without a warm-up
started in the process (`dagster dev`'s runs), `wait_for` returns at once.

The same holds for a package the process already uses while the thread runs:
Dagster's storage queries SQLAlchemy on the main thread, and Great Expectations
imports `sqlalchemy.orm`, which hooks itself into SQLAlchemy's core as it is
being made. A query that met the hooks half made failed its step ("partially
initialized module 'sqlalchemy.orm.exc'": 2 of 6 bundled builds on a busy
machine, found by a review). Such packages (`FIRST`) are imported on the
calling thread, before the thread starts (0.04 s).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading

from iga_pipeline import collector

# In the order the steps after the ingest need them.
MODULES = ("scipy.stats", "great_expectations", "matplotlib.figure", "matplotlib.backends.backend_agg")
# Parts of packages the build process uses meanwhile that MODULES would import: imported first,
# on the calling thread (see above; iga_pipeline_tests/test_warm_up.py finds any other).
FIRST = ("sqlalchemy.orm",)

_thread: threading.Thread | None = None
_imported = {name: threading.Event() for name in MODULES}


def start() -> None:
    """Start the background imports (once per process; not when they are imported already)."""
    global _thread
    if _thread is not None or all(name in sys.modules for name in MODULES):
        return
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # as quality/expectations.py: no phoning home
    for name in FIRST:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - then the thread's import fails too, and the step's reports it
            pass

    def _import() -> None:
        try:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
            except (AttributeError, OSError):  # not Linux: same priority, still in the background
                pass
            for name in MODULES:
                try:
                    with collector.paused():
                        importlib.import_module(name)
                    collector.freeze()
                except Exception:  # noqa: BLE001 - the step's own import reports any problem
                    pass
                _imported[name].set()
        finally:
            for event in _imported.values():
                event.set()  # whatever happened: no step waits for nothing

    _thread = threading.Thread(target=_import, name="warm-up", daemon=True)
    _thread.start()


def wait_for(module: str) -> None:
    """Before importing `module`: wait until a warm-up started in this process has imported it."""
    if _thread is not None and module in _imported:
        _imported[module].wait()


def finish(timeout: float) -> None:
    """Wait (at most `timeout` s) for a warm-up still importing, say before the process
    ends: an import cut short could leave a half-written cache (matplotlib's font list)."""
    if _thread is not None:
        _thread.join(timeout)
