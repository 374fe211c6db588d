"""How this package's processes end: the command, its ingest workers, its Parquet exports."""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import NoReturn


def exit_without_teardown(code: int) -> NoReturn:
    """Run the exit handlers, flush the output and end the process, without the interpreter's
    teardown.

    Everything a process of this package writes is closed by the time it ends. The teardown
    only frees every object one by one (1.4 s after an incremental build at 1M participations,
    measured in the command), and in an ingest worker it once aborted in native code after
    every cycle had been staged ("terminate called without an active exception", a CI run of
    test_deployment.py on 2026-12-01), which failed the run."""
    atexit._run_exitfuncs()  # what would run at exit anyway: temporary folders removed, logs flushed
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def end(procs: Iterable[subprocess.Popen], grace: float = 10) -> None:
    """End child processes: each still running is asked to (SIGTERM), all at once, and those
    that have not ended `grace` seconds later are killed. Their pipes are closed, unread."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a write the child never read: a broken pipe
                    pipe.close()
