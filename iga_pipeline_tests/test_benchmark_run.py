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


def test_the_floor_splits_each_file_by_its_delimiter_and_unnests_both_json_exports(tmp_path):
    """On a scaled data set: every CSV table has the columns of its file's header, each
    Åstorp export one row per entry of its list (deltagare, or uppfoljning at 90 days), and
    the workbook is not counted among the files loaded."""
    import json
    import subprocess
    import sys

    import duckdb

    run = _benchmark()
    raw = tmp_path / "raw"
    subprocess.run([*run.CLI, "synth", "--participations", "400", "--seed", "3", "--out", str(raw)],
                   check=True, capture_output=True, cwd=REPO)
    db = tmp_path / "floor.duckdb"
    out = subprocess.run([sys.executable, "-c", run.FLOOR_SCRIPT, str(raw), str(db)],
                         capture_output=True, text=True, check=True)
    files = sorted(p for p in raw.rglob("*") if p.is_file())
    assert {p.suffix for p in files} == {".csv", ".json", ".xlsx"}
    expected_rows, con = 0, duckdb.connect(str(db), read_only=True)
    try:
        for i, p in enumerate(files):
            if p.suffix == ".csv":
                header = p.read_bytes().split(b"\n")[0].removeprefix(b"\xef\xbb\xbf").decode("latin-1")
                fields = max(header.split(";"), header.split(","), key=len)
                columns = [r[0] for r in con.execute(f"DESCRIBE t{i}").fetchall()]  # a row too long adds one
                assert len(fields) > 1 and len(columns) >= len(fields) and columns[0] == fields[0].strip(), p
                expected_rows += con.execute(f"SELECT count(*) FROM t{i}").fetchone()[0]
            elif p.suffix == ".json":
                (entries,) = [v for v in json.loads(p.read_text(encoding="utf-8")).values() if isinstance(v, list)]
                assert con.execute(f"SELECT count(*) FROM t{i}").fetchone()[0] == len(entries), p
                assert {r[0] for r in con.execute(f"DESCRIBE t{i}").fetchall()} == set(entries[0]), p
                expected_rows += len(entries)
    finally:
        con.close()
    loaded = sum(p.suffix in (".csv", ".json") for p in files)
    assert f"FLOOR files={loaded} rows={expected_rows}" in out.stdout


def test_peak_memory_is_the_sum_over_the_process_tree(tmp_path):
    """A process and its child, each holding memory: the benchmark's tree RSS is their resident
    memory summed (as `ps` reads it, not their past peaks), and a measured run's peak counts
    both, above the largest single process that /usr/bin/time reports."""
    import subprocess
    import sys

    run = _benchmark()
    child = ("import sys; x = b'1' * (160 << 20); del x; y = b'1' * (40 << 20); "
             "print('ready', flush=True); sys.stdin.read()")
    parent = (f"import subprocess, sys; y = b'1' * (40 << 20); "
              f"c = subprocess.Popen([sys.executable, '-c', {child!r}], stdin=subprocess.PIPE, "
              f"stdout=subprocess.PIPE, text=True); print(c.stdout.readline().strip(), flush=True); "
              f"sys.stdin.read(); c.stdin.close(); c.wait()")
    proc = subprocess.Popen([sys.executable, "-c", parent], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        tree = run._tree_rss(proc.pid)
        ps = subprocess.run(["ps", "-o", "rss=", "-p", str(proc.pid), "--ppid", str(proc.pid)],
                            capture_output=True, text=True, check=True).stdout.split()
    finally:
        proc.stdin.close()
        proc.wait(30)
    assert len(ps) == 2
    assert 80 << 20 < tree and abs(tree - sum(int(kb) for kb in ps) * 1024) < 16 << 20

    script = tmp_path / "two.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "y = b'1' * (100 << 20)\n"
        "code = \"import time; x = b'1' * (100 << 20); time.sleep(1.5)\"\n"
        "subprocess.run([sys.executable, '-c', code], check=True)\n"
        "del y\n"
        "time.sleep(0.5)\n")  # the peak, not the last sample
    measured = run.run([sys.executable, str(script)])
    assert measured["exit"] == 0
    assert measured["peak_tree_rss_mb"] >= 200
    if measured["max_process_rss_mb"] is not None:  # /usr/bin/time is there to say it
        assert 200 > measured["max_process_rss_mb"] >= 100


def test_the_figures_are_the_best_of_the_runs_and_a_quiet_machine_is_not_waited_for():
    """best-of-N keeps the fastest run; wait_quiet returns at once when the load is below the
    threshold, and after its limit otherwise."""
    import time

    run = _benchmark()
    runs = [{"seconds": 3.0, "n": 1}, {"seconds": 1.5, "n": 2}, {"seconds": 2.0, "n": 3}]
    assert run.best(runs)["n"] == 2
    started = time.monotonic()
    run.wait_quiet(10, float("inf"))
    run.wait_quiet(0, -1.0)
    assert time.monotonic() - started < 2


def test_the_data_set_is_reused_only_for_its_seed_and_without_the_late_delivery(tmp_path, monkeypatch):
    """benchmarks/data/<N> is reused for the same seed and generator, with an earlier run's late
    delivery taken out (the full build is of the data without it); another seed makes it anew."""
    run = _benchmark()
    monkeypatch.setattr(run, "DATA", tmp_path / "data")
    raw, meta = run.synth(400, 3)
    assert meta["seed"] == 3 and meta["participations"] == 400 and (raw / "kommuner").is_dir()
    (raw / run.LATE_FILE).write_text("{}")
    kept = raw / "kept.txt"
    kept.write_text("the same data set")
    assert run.synth(400, 3) == (raw, meta)
    assert kept.is_file() and not (raw / run.LATE_FILE).exists()
    again, other = run.synth(400, 4)
    assert again == raw and other["seed"] == 4 and not kept.exists()


@pytest.mark.slow
def test_one_size_is_measured_full_floor_and_incremental_and_its_ratios_are_of_those_runs(tmp_path, monkeypatch):
    """measure() at a small size, twice (a size up to --repeat-up-to is repeated): a full build
    from an empty warehouse, the floor, and the run of cycle 8 alone after its late export
    arrived; the summary keeps the fastest of each, and its ratios divide those."""
    import argparse

    run = _benchmark()
    monkeypatch.setattr(run, "DATA", tmp_path / "data")
    args = argparse.Namespace(seed=3, repeat=2, repeat_up_to=400, wait_quiet=0, quiet_load=0.7,
                              keep_warehouse=True)
    result = run.measure(400, args)
    full, floor, inc = (result[k] for k in ("full", "floor", "incremental"))
    assert [len(full), len(floor), len(inc)] == [2, 2, 2]
    assert all(r["exit"] == 0 and r["peak_tree_rss_mb"] > 0 for r in full + floor + inc)
    assert all(0 < r["job_seconds"] <= r["seconds"] for r in full + inc)
    best = [min(r["seconds"] for r in runs) for runs in (full, floor, inc)]
    s = result["summary"]
    assert [s["full_s"], s["floor_s"], s["incremental_s"]] == best
    assert s["full_over_floor"] == round(best[0] / best[1], 2)
    assert s["incremental_over_full"] == round(best[2] / best[0], 3)
    assert s["full_peak_mb"] == max(r["peak_tree_rss_mb"] for r in full)
    logs = tmp_path / "data" / "400" / "logs"
    assert all("--cycle 8" in (logs / f"incremental-{i}.log").read_text().splitlines()[0] for i in (1, 2))
    raw = tmp_path / "data" / "400" / "raw"
    assert not (raw / run.LATE_FILE).exists()  # taken out again: the next full build is without it
