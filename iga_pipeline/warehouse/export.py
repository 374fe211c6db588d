"""The Parquet exports in a process of their own, beside the checks.

`python -m iga_pipeline.warehouse.export CANDIDATE OUT_DIR` writes every mart of a
candidate warehouse as Parquet (`duck.export_parquet`) and prints the row counts.

The marts step starts it as soon as the candidate is built (`start`): the exports
(1 s at 1M participations, 6 s at 10M) then run, DuckDB on one thread, on the second
core while the build process runs the Great Expectations checks and renders the
report, which leave that core idle. The Parquet step collects it (`collect`).
Anything but a clean finish (no process to be had, a failure, a kill) and the Parquet
step exports in its own process as before: the process beside the checks only saves
time and decides nothing. One the run did not collect (a blocking check failed first)
is stopped and its folder removed (`stop`): before a publish, when a failed build is
discarded, and when the process that started it exits.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import sys
from pathlib import Path

from iga_pipeline import process, settings
from iga_pipeline.workers import child_env

# The exports started and not yet collected, by candidate file.
_RUNNING: dict[Path, tuple[subprocess.Popen, Path]] = {}


def start(candidate: Path, out_dir: Path) -> bool:
    """Start exporting `candidate` into `out_dir` beside this process, on two cores or
    more; whether it was started."""
    if settings.cpus() < 2:
        return False
    stop(candidate)  # one of an earlier attempt of the same build: its folder is rewritten
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "iga_pipeline.warehouse.export", str(candidate), str(out_dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    except OSError:  # no process to be had: the Parquet step exports itself
        return False
    _RUNNING[Path(candidate).absolute()] = (proc, Path(out_dir))
    return True


def collect(candidate: Path) -> tuple[dict[str, int] | None, str | None]:
    """Wait for the export started for `candidate`: (rows per mart, None) when it finished
    cleanly; (None, why not) when it did not; (None, None) when none was started here."""
    entry = _RUNNING.pop(Path(candidate).absolute(), None)
    if entry is None:
        return None, None
    proc, _ = entry
    out, _err = proc.communicate()  # its error text is not passed on: the step's own export reports
    if proc.returncode == 0:
        try:
            return {str(k): int(v) for k, v in json.loads(out).items()}, None
        except (ValueError, AttributeError):
            return None, "its output could not be read"
    return None, f"exit status {proc.returncode}"


def stop(candidate: Path | None = None) -> None:
    """End the export started for `candidate` (every one, without), if not collected, and
    remove what it wrote: a folder it did not finish must never be published."""
    keys = list(_RUNNING) if candidate is None else [Path(candidate).absolute()]
    for key in keys:
        entry = _RUNNING.pop(key, None)
        if entry is None:
            continue
        proc, out_dir = entry
        process.end([proc])
        for written in [out_dir, *out_dir.parent.glob(f"{out_dir.name}.*.tmp")]:  # whole, or not yet
            shutil.rmtree(written, ignore_errors=True)


atexit.register(stop)


def main(argv: list[str]) -> int:
    from iga_pipeline.warehouse.duck import export_parquet

    candidate, out_dir = map(Path, argv)
    rows = export_parquet(candidate, out_dir, threads=1)  # the core the checks leave idle; flushed
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    process.exit_without_teardown(main(sys.argv[1:]))
