"""The run of an `iga-pipeline build` killed outright is ended by the `gone_build_runs` sensor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TEST_SECRET, sigkill_group
from dagster import DagsterRunStatus, RunsFilter, SkipReason, build_sensor_context
from dagster._core.instance import DagsterInstance, InstanceRef

from iga_pipeline.defs.gone_runs import gone_build_runs

REPO = Path(__file__).resolve().parents[1]


def _tick(instance) -> str:
    said = gone_build_runs(build_sensor_context(instance=instance))
    assert isinstance(said, SkipReason)  # it asks for no run
    return said.skip_message


@pytest.mark.slow
def test_the_run_of_a_build_killed_outright_is_ended_and_a_running_one_is_not(tmp_path):
    """A concurrency review under `dagster dev`: an `iga-pipeline build` with the deployment's
    DAGSTER_HOME, killed with SIGKILL, left its run "started" (the daemon did not launch it,
    so cannot check it), and the automation asked for no warehouse build after the next
    delivery until the run was ended by hand (it would wait for the run's hour)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    instance.get_runs(limit=1)  # its storage exists before the build's process opens it
    env = {**os.environ, "DAGSTER_HOME": str(home), "IGA_PSEUDONYM_KEY": TEST_SECRET}
    build = subprocess.Popen(
        [sys.executable, "-m", "iga_pipeline.cli", "build", "--raw-dir", str(REPO / "data" / "raw"),
         "--warehouse", str(tmp_path / "wh" / "iga.duckdb")],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (started := instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))):
            assert build.poll() is None, f"the build ended (exit {build.returncode}) before its run started"
            assert time.monotonic() < deadline, "no run started"
            time.sleep(0.05)
        (run,) = started
        assert _tick(instance) == "no run of a gone iga-pipeline build"  # its process is there
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
        assert sigkill_group(build) == -signal.SIGKILL
    finally:
        if build.poll() is None:
            sigkill_group(build)

    try:
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED  # as the review saw
        assert _tick(instance) == f"ended 1 run(s) whose process was gone: {run.run_id}"
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
        assert _tick(instance) == "no run of a gone iga-pipeline build"
    finally:
        instance.dispose()
