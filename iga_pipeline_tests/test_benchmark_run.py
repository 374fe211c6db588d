"""benchmarks/run.py reuses a synthetic data set only while everything that made it is unchanged."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run_module():
    spec = importlib.util.spec_from_file_location("bench_run", REPO / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_data_set_is_made_again_when_any_module_of_the_generator_changes(tmp_path):
    run = _run_module()
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
