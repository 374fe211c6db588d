"""Runs of `iga-pipeline build` whose process is gone: ended as failed.

An `iga-pipeline build` with a deployment's DAGSTER_HOME runs in its own process, which
the daemon did not launch and so cannot check. Killed outright (SIGKILL, the kernel's OOM
killer), it leaves its run "started", and a run in progress holds up the warehouse
automation until run monitoring ends it after its `dagster/max_runtime` (an hour). So
each such run records its process (`process_tags`), and `gone_build_runs` ends the run of
a process that is gone, on the same machine and in the same process namespace (where a
process id means the same process); any other run is left to run monitoring.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterRunStatus, DefaultSensorStatus, RunsFilter, SensorEvaluationContext, SkipReason, sensor

from iga_pipeline.defs.automation import IN_PROCESS_TAGS

PROCESS_TAG = "iga/pid"
# This boot of this machine, and this process id namespace: a process id names one process
# only within both (another container or a reboot reuses them).
WHERE_TAG = "iga/pid-namespace"


def _where() -> str | None:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:  # not Linux, or /proc not mounted: such runs are left to run monitoring
        return None


def process_tags() -> dict[str, str]:
    """This process, for the run `iga-pipeline build` starts in it."""
    where = _where()
    return {PROCESS_TAG: str(os.getpid()), WHERE_TAG: where} if where else {}


def _gone(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):  # another user's process (it exists), or no process id
        return False
    return False


def runs_of_gone_processes(instance) -> list:
    """The runs in progress of `iga-pipeline build` on this machine whose process is gone."""
    where = _where()
    if where is None:
        return []
    in_progress = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
    runs = instance.get_runs(RunsFilter(statuses=in_progress,
                                        tags={**IN_PROCESS_TAGS, WHERE_TAG: where}))
    return [run for run in runs if _gone(run.tags.get(PROCESS_TAG, ""))]


@sensor(minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description="Ends as failed the run of an `iga-pipeline build` killed outright (its process "
                    "gone, on this machine): left started, it would hold up the warehouse automation "
                    "for an hour.")
def gone_build_runs(context: SensorEvaluationContext):
    ended = []
    for run in runs_of_gone_processes(context.instance):
        context.instance.report_run_failed(
            run, f"its process ({run.tags[PROCESS_TAG]}, iga-pipeline build) is gone: killed outright")
        ended.append(run.run_id)
    return SkipReason(f"ended {len(ended)} run(s) whose process was gone: {', '.join(ended)}" if ended
                      else "no run of a gone iga-pipeline build")
