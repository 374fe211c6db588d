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


def test_the_comparison_counts_a_row_that_differs_in_any_column_it_names_both_ways(tmp_path, sql_probe):
    """A review: compare() was only ever run on equal outputs, so a column left out of its lists, a
    one-way EXCEPT, a set EXCEPT (issues compared as kinds, not counts) or both sides read from the
    probe's folder all still gave 0. Two outputs that differ in one value of one column: 2 rows."""
    import datetime

    import pandas as pd

    rows = {
        "participations": [
            {"participation_id": "c6-a", "person_key": "ka", "cycle": 6, "municipality_code": "1277",
             "gender": "K", "birth_region": "sweden", "target_group": "A",
             "enrolled_on": datetime.date(2024, 1, 2), "exited_on": datetime.date(2024, 5, 1),
             "completed": True, "dropout_reason": None},
            {"participation_id": "c6-b", "person_key": "kb", "cycle": 7, "municipality_code": "1278",
             "gender": "M", "birth_region": "unknown", "target_group": "B",
             "enrolled_on": datetime.date(2024, 1, 3), "exited_on": None,
             "completed": False, "dropout_reason": "ARB"}],
        "outcomes": [
            {"participation_id": "c6-a", "timepoint": "end", "status_detail": "work", "status_class": "job",
             "municipality_code": "1277", "source_row": 1},
            {"participation_id": "c6-b", "timepoint": "90d", "status_detail": "study", "status_class": "edu",
             "municipality_code": "1278", "source_row": 2}],
        "interventions": [
            {"participation_id": "c6-a", "intervention": "coaching", "hours": 1.5},
            {"participation_id": "c6-b", "intervention": "language", "hours": 2.5}],
        "issues": [{"severity": "rejected", "reason": "invalid_code"},
                   {"severity": "warning", "reason": "duplicate_row"}],
    }

    def write(folder, tables):
        folder.mkdir(exist_ok=True)
        for table, records in tables.items():
            pd.DataFrame(records).to_parquet(folder / f"{table}.parquet")

    write(tmp_path / "a", rows)
    write(tmp_path / "b", rows)
    assert sql_probe.compare(tmp_path / "a", tmp_path / "b") == {
        "participations": 0, "outcomes": 0, "interventions": 0, "issues": 0}
    for table, records in rows.items():
        for column in records[0]:
            changed = [dict(records[0], **{column: records[1][column]}), records[1]]
            write(tmp_path / "b", {**rows, table: changed})
            differ = sql_probe.compare(tmp_path / "a", tmp_path / "b")
            assert differ == {t: 2 if t == table else 0 for t in rows}, (table, column)
    write(tmp_path / "b", {**rows, "issues": [*rows["issues"], rows["issues"][1]]})  # one warning more
    assert sql_probe.compare(tmp_path / "a", tmp_path / "b")["issues"] == 1
    assert sql_probe.compare(tmp_path / "b", tmp_path / "a")["issues"] == 1


def test_a_repeated_row_with_other_hours_keeps_the_earliest_rows_hours_as_the_pipeline_does(tmp_path, sql_probe):
    """A review: the generator never repeats a row with other hours, so the probe's "earliest row's
    hours" (ingest._interventions) was never compared; taking the latest row's gave 0 rows differing."""
    import json

    raw = tmp_path / "raw"
    scale.generate_scaled(raw, 2_000, seed=7)
    export = raw / "leverantorer" / "astorp" / "cykel8.json"
    data = json.loads(export.read_text(encoding="utf-8"))
    entry = next(e for e in data["deltagare"] if e.get("insatser"))
    again = json.loads(json.dumps(entry))
    again["insatser"][0]["timmar"] = 7.25  # the same person and status, a row later, other hours
    data["deltagare"].append(again)
    export.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    key = key_from_env({})
    out = tmp_path / "sql"
    out.mkdir()
    sql_probe.probe(raw, 8, out, key.secret, threads=1)
    staging.stage_cycle(raw, tmp_path / "staging", 8, key)
    assert sql_probe.compare(out, tmp_path / "staging" / "cycle=8") == {
        "participations": 0, "outcomes": 0, "interventions": 0, "issues": 0}


def test_the_command_times_both_ingests_and_exits_0_only_when_their_rows_agree(tmp_path, sql_probe, monkeypatch,
                                                                                 capsys):
    """A review: main() ran in no test, so its exit code, the folders it compares and the times it
    prints (docs/performance.md's table) could go wrong unseen."""
    import re

    raw = tmp_path / "raw"
    scale.generate_scaled(raw, 2_000, seed=7)
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", "benchmark-secret-not-for-real-data")
    assert sql_probe.main(["--raw", str(raw), "--cycle", "8", "--repeat", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    times = re.findall(r"cycle 8: ([\d.]+) s \(CPU ([\d.]+) s\)", out)
    assert len(times) == 2 and all(float(wall) > 0 and float(cpu) > 0 for wall, cpu in times), out
    assert "'participations': 0, 'outcomes': 0, 'interventions': 0, 'issues': 0}" in out
    with pytest.raises(SystemExit):  # a cycle of another source: refused, not compared
        sql_probe.main(["--raw", str(raw), "--cycle", "2"])

    export = raw / "leverantorer" / "astorp" / "cykel8.json"  # white space the probe leaves out (a tab)
    export.write_text(export.read_text(encoding="utf-8").replace('"pnr": "', '"pnr": "\\t', 1), encoding="utf-8")
    assert sql_probe.main(["--raw", str(raw), "--cycle", "8", "--repeat", "1", "--threads", "1"]) == 1
    assert "'participations': 0, 'outcomes': 0," not in capsys.readouterr().out
