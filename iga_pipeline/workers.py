"""Worker processes that stage cycles (`python -m iga_pipeline._stage_worker`).

`staging.stage_cycles` shares cycles out over them. `iga-pipeline build --cycle N`
on a large raw root starts its cycle's worker once its settings are checked, before
it imports Dagster (`start_early`): the ingest of a late delivery then runs while
the build process imports pandas and Dagster and starts its run (about 1.3 s at 1M participations), and the run's ingest collects
it; a worker no run collected is stopped (`stop_early`). This module imports
nothing heavy, so that the worker starts at once.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

from iga_pipeline import process, settings

PROJECT_CYCLES = 8  # reference/cycles.csv; read without pandas, which this module must not import

# Below this many raw bytes in the cycles to ingest, starting worker processes
# (about 2 s: each imports pandas, pyarrow and pandera) costs more than it saves.
PARALLEL_FROM_BYTES = 16 * 2**20

SCRATCH_PREFIX = ".workers."  # the workers' results and stderr, in `.workers.<random>.tmp`


def child_env() -> dict[str, str]:
    """The environment for a `python -m iga_pipeline....` child: this process's, and its
    import path (a test's or a checkout's `iga_pipeline` rather than another one)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def _failure(proc, err: Path, share: list[int]) -> str:
    """What a worker that failed said on stderr (its end), for the cycles it had."""
    said = err.read_text("utf-8", "replace").strip()[-4000:]
    return f"cycles {share}: {said or f'ended with exit status {proc.returncode}, saying nothing'}"


class Workers:
    """Worker processes, started at once, each staging its share of the cycles."""

    def __init__(self, raw_root: Path, staging: Path, shares: list[list[int]], key):
        env = child_env()
        # in the staging folder, not the system's: what a build killed outright (SIGKILL) leaves
        # is removed an hour on, as its half-written cycles are (`staging.recover`)
        Path(staging).mkdir(parents=True, exist_ok=True)
        self.scratch = tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, suffix=".tmp", dir=staging)
        self.procs = []
        try:
            for i, share in enumerate(shares):
                out, err = Path(self.scratch.name) / f"worker-{i}.pkl", Path(self.scratch.name) / f"worker-{i}.err"
                with open(err, "wb") as err_file:
                    proc = subprocess.Popen([sys.executable, "-m", "iga_pipeline._stage_worker", str(out)],
                                            stdin=subprocess.PIPE, stderr=err_file, env=env)
                self.procs.append((proc, out, err, share))
            for proc, _, err, share in self.procs:
                try:
                    proc.stdin.write(pickle.dumps((Path(raw_root), Path(staging), share, key)))
                    proc.stdin.close()
                except BrokenPipeError:  # dead before it was given its cycles (killed, say)
                    proc.wait(timeout=30)
                    raise RuntimeError("staging failed in a worker process:\n" + _failure(proc, err, share)) from None
        except BaseException:  # one not started, or dead at once: none is left behind
            self.stop()
            raise

    def results(self) -> dict:
        """Wait for every worker: each cycle's `staging.Staged`, or RuntimeError with the failures."""
        try:
            failures = []
            for proc, _, err, share in self.procs:
                if proc.wait() != 0:
                    failures.append(_failure(proc, err, share))
            if failures:
                raise RuntimeError("staging failed in a worker process:\n" + "\n".join(failures))
            staged = {}
            for _, out, _, _ in self.procs:
                staged.update({s.cycle: s for s in pickle.loads(out.read_bytes())})
            return staged
        except BaseException:  # an interrupt while waiting: no worker outlives the wait
            self.stop()
            raise
        finally:
            self.scratch.cleanup()

    def stop(self) -> None:
        """End the workers still running. A worker ended midway leaves its cycle's staging as
        it was: each cycle folder is written beside it and renamed into place (staging.py)."""
        process.end(proc for proc, _, _, _ in self.procs)
        self.scratch.cleanup()


# Workers started by `start_early`, by what they stage, until the ingest collects them.
_EARLY: dict[tuple, Workers] = {}


def _early_key(raw_root: Path, staging: Path, cycles: list[int], key) -> tuple:
    return Path(raw_root).absolute(), Path(staging).absolute(), tuple(cycles), key.fingerprint("early workers")


def start_early(raw_root: Path, staging: Path, cycle: int, key) -> bool:
    """Start the worker for `cycle` now when the raw root is large, there are two cores or
    more and IGA_INGEST_WORKERS is not set; whether it was started. The run's ingest then
    uses it (`take_early`), whatever the size of the cycle's own files.

    Large means the raw root holds PARALLEL_FROM_BYTES or more per project cycle on
    average: the files are not yet sorted into cycles here (that needs the adapters'
    imports). The command has refused an unknown cycle before this; the worker itself
    refuses one too, and an empty raw root (`_stage_worker`), as the run would."""
    if settings.ingest_workers() is not None or settings.cpus() < 2:
        return False
    if _bytes_under(Path(raw_root)) < PARALLEL_FROM_BYTES * PROJECT_CYCLES:
        return False
    try:
        early = Workers(raw_root, staging, [[cycle]], key)
    except OSError:  # no process to be had (a limit reached): the run's ingest stages the cycle
        return False
    _EARLY[_early_key(raw_root, staging, [cycle], key)] = early
    return True


def take_early(raw_root: Path, staging: Path, cycles: list[int], key) -> Workers | None:
    """The worker `start_early` started for exactly these cycles, paths and key, if any."""
    if not _EARLY:
        return None
    return _EARLY.pop(_early_key(raw_root, staging, cycles, key), None)


def stop_early() -> None:
    """Stop the workers no ingest collected: the build ended without its run's ingest (a
    check of the CLI failed, the run failed before its ingest, an interrupt), and no
    warehouse would be built from what they stage."""
    while _EARLY:
        _EARLY.popitem()[1].stop()


def _bytes_under(folder: Path) -> int:
    total = 0
    for top, _, files in os.walk(folder):  # links to folders are not followed
        for name in files:
            try:
                total += os.stat(os.path.join(top, name)).st_size
            except OSError:
                pass
    return total
