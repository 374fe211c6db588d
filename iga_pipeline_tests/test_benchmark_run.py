"""The benchmarks: benchmarks/run.py reuses a synthetic data set only while everything that made
it is unchanged, and benchmarks/dev_runs.py reads runs and steps from a Dagster instance."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _benchmark(name: str = "run"):
    """benchmarks/<name>.py, loaded by path (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_data_set_is_made_again_when_any_module_of_the_generator_changes(tmp_path):
    run = _benchmark()
    for pattern in run.GENERATOR_SOURCES:
        for path in REPO.glob(pattern):
            if path.is_file():
                (tmp_path / path.relative_to(REPO)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, tmp_path / path.relative_to(REPO))
    before = run.generator_fingerprint(tmp_path)
    assert before == run.generator_fingerprint(REPO)
    for rel in ("iga_pipeline/synth/plan.py", "iga_pipeline/synth/names.py",
                "iga_pipeline/reference/outcome_codes.csv", "iga_pipeline/personnummer.py",
                "requirements.lock"):
        original = (tmp_path / rel).read_bytes()
        (tmp_path / rel).write_bytes(original + b"\n")
        assert run.generator_fingerprint(tmp_path) != before, rel
        (tmp_path / rel).write_bytes(original)
    assert run.generator_fingerprint(tmp_path) == before


def test_the_floor_loads_rows_with_too_many_fields_and_the_table_shows_the_load(tmp_path):
    """A review: with `ignore_errors` alone the floor left out the rows with too many fields
    (71 at 1M), and the table did not say when a measurement began on a busy machine."""
    import subprocess
    import sys

    run = _benchmark()
    raw = tmp_path / "raw"
    fu = raw / "leverantorer" / "folkuniversitetet" / "cykel2_slut.csv"
    fu.parent.mkdir(parents=True)
    rows = [f"{i};Åstorp;1" for i in range(30_000)]  # past the rows DuckDB samples for the columns
    fu.write_bytes("\n".join(["Personnummer;Kommun;Utfallskod", *rows, "x;Båstad;5;extra", ""]).encode("cp1252"))
    out = subprocess.run([sys.executable, "-c", run.FLOOR_SCRIPT, str(raw), str(tmp_path / "floor.duckdb")],
                         capture_output=True, text=True, check=True)
    assert "FLOOR files=1 rows=30001" in out.stdout

    summary = {"full_s": 2.0, "floor_s": 1.0, "incremental_s": 0.5, "full_over_floor": 2.0,
               "incremental_over_full": 0.25, "full_peak_mb": 10, "floor_peak_mb": 5,
               "incremental_peak_mb": 8, "max_load_before": 1.97}
    report = {"started": "now", "seed": 1, "repeat": 1, "repeat_up_to": 10, "wait_quiet": 120,
              "quiet_load": 0.7, "machine": {k: "?" for k in ("cpu", "cpus", "ram_gb", "os", "python", "duckdb",
                                                                "pandas", "pyarrow", "pandera", "dagster")},
              "sizes": [{"participations": 100, "raw_rows": 3, "raw_mb": 0.1, "summary": summary}]}
    table = run.markdown(report)
    assert table.splitlines()[6].endswith("| 8 | 1.97 |")
    assert "waited up to 120 s for the 1-minute load average to fall below 0.7" in table


@pytest.mark.slow
def test_the_deployment_benchmark_reads_each_run_and_its_steps_from_the_instance(tmp_path, cli_build):
    """benchmarks/dev_runs.py times a deployment from its instance: a build whose run went into a
    DAGSTER_HOME is found there, with each step's time, and its table shows them."""
    dev = _benchmark("dev_runs")
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    assert dev.run_records(home) == []
    build = cli_build(REPO / "data" / "raw", tmp_path / "wh" / "iga.duckdb", DAGSTER_HOME=str(home))
    assert build.exit_code == 0, build.stderr[-2000:]

    runs = dev.run_records(home, with_steps=True)
    assert [(r["job"], r["status"], r["partitions"]) for r in runs] == [("build_all", "SUCCESS", "1-8")]
    steps = runs[0]["steps"]
    assert {"harmonised", "marts", "gx_mart_checks", "warehouse__published"} <= set(steps), steps
    assert all(0 <= s < runs[0]["end"] - runs[0]["start"] + 1 for s in steps.values())
    assert runs[0]["created"] <= runs[0]["start"] <= runs[0]["end"]
    assert dev.wait_until_idle(home, idle=0, limit=30) == runs  # every run ended: settled at once

    result = {"participations": 368, "load_before": 0.1, "until_published_s": 9.9, "first_published_s": 9.9,
              "publishes": 1, "first_runs": dev._runs_brief(runs), "late_published_s": 70.0, "late_runs": [],
              "peak_tree_rss_mb": 500}
    table = dev.markdown({"stamp": "now", "commit": "abc1234", "machine": {}, "result": result})
    assert f"| first | build_all | 1-8 | SUCCESS | {round(runs[0]['end'] - runs[0]['start'], 1)} |" in table
    line = next(x for x in table.splitlines() if x.startswith("* first build_all: "))
    assert f"marts {steps['marts']}" in line and f"gx_mart_checks {steps['gx_mart_checks']}" in line
