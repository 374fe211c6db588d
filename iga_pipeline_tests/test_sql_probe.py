"""benchmarks/sql_probe.py (the row rules in DuckDB SQL, a measurement) still gives what the
pipeline gives: docs/performance.md quotes its time as that of the same work."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from iga_pipeline import staging
from iga_pipeline.pseudonym import key_from_env
from iga_pipeline.synth import scale

PROBE = Path(__file__).resolve().parents[1] / "benchmarks" / "sql_probe.py"


@pytest.fixture(scope="module")
def sql_probe():
    spec = importlib.util.spec_from_file_location("sql_probe", PROBE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("cycle", [6, 8])  # 8: not followed up, no 90-day export
def test_the_probe_gives_the_pipelines_rows(tmp_path, sql_probe, cycle):
    raw = tmp_path / "raw"
    scale.generate_scaled(raw, 8_000, seed=7)  # 1 row in 2,000 broken per defect kind: some of each
    key = key_from_env({})
    out = tmp_path / "sql"
    out.mkdir()
    counts = sql_probe.probe(raw, cycle, out, key.secret, threads=1)
    staging.stage_cycle(raw, tmp_path / "staging", cycle, key)
    assert counts["participations"] > 900 and counts["issues"] > 0
    assert sql_probe.compare(out, tmp_path / "staging" / f"cycle={cycle}") == {
        "participations": 0, "outcomes": 0, "interventions": 0, "issues": 0}
