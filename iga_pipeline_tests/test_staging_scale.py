"""Staging at scale: cycles in worker processes, staged files validated once, in chunks."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import sigkill_group, someone_waits_for

from iga_pipeline import settings, staging, validation, workers
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.synth import scale

KEY = PseudonymKey(b"staging-scale-test-key", is_development=False)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("scaled") / "raw"
    scale.generate_scaled(root, 1_200, seed=3)
    return root


def _frames(folder):
    return {p.relative_to(folder).as_posix(): pd.read_parquet(p)
            for p in sorted(folder.glob("cycle=*/*.parquet"))}


def _spy_on_processes(monkeypatch) -> list:
    """The arguments of every process started from now on (the real processes start)."""
    import subprocess

    started, real_popen = [], subprocess.Popen

    def popen(args, *a, **kw):
        started.append(args)
        return real_popen(args, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", popen)
    return started


def test_worker_processes_stage_exactly_what_one_process_stages(raw, tmp_path, monkeypatch):
    cycles = [1, 2, 5, 8]
    alone = list(staging.stage_cycles(raw, tmp_path / "alone", cycles, KEY, workers=1))
    started = _spy_on_processes(monkeypatch)
    shared = list(staging.stage_cycles(raw, tmp_path / "shared", cycles, KEY, workers=2))
    assert len(started) == 2 and all("iga_pipeline._stage_worker" in args for args in started), started
    assert [s.cycle for s in shared] == cycles == [s.cycle for s in alone]
    for a, b in zip(alone, shared):
        assert a.rows == b.rows and a.rejected == b.rejected
        pd.testing.assert_frame_equal(a.by_reason, b.by_reason)
        pd.testing.assert_frame_equal(a.audit, b.audit)
    one, two = _frames(tmp_path / "alone"), _frames(tmp_path / "shared")
    assert one.keys() == two.keys() and len(one) == 7 * len(cycles)
    for name in one:
        pd.testing.assert_frame_equal(one[name], two[name], obj=name)


def test_one_large_cycle_alone_is_staged_in_a_worker(raw, tmp_path, monkeypatch):
    """A late delivery's cycle: the build process only waits (and imports GX meanwhile)."""
    alone = list(staging.stage_cycles(raw, tmp_path / "alone", [5], KEY, workers=1))
    monkeypatch.delenv("IGA_INGEST_WORKERS", raising=False)
    started = _spy_on_processes(monkeypatch)
    monkeypatch.setattr(workers, "PARALLEL_FROM_BYTES", 1)
    in_worker = list(staging.stage_cycles(raw, tmp_path / "worker", [5], KEY, alone_in_worker=True))
    assert [args[-2] for args in started] == ["iga_pipeline._stage_worker"]
    assert in_worker[0].rows == alone[0].rows
    one, two = _frames(tmp_path / "alone"), _frames(tmp_path / "worker")
    assert one.keys() == two.keys() and len(one) == 7
    for name in one:
        pd.testing.assert_frame_equal(one[name], two[name], obj=name)

    started.clear()
    monkeypatch.setenv("IGA_INGEST_WORKERS", "1")  # the setting keeps it in this process
    list(staging.stage_cycles(raw, tmp_path / "setting", [5], KEY, alone_in_worker=True))
    assert started == []
    monkeypatch.delenv("IGA_INGEST_WORKERS")
    list(staging.stage_cycles(raw, tmp_path / "dagster", [5], KEY))  # a run under dagster dev
    assert started == []


def test_a_failing_worker_fails_the_staging(raw, tmp_path):
    with pytest.raises(RuntimeError, match="staging failed in a worker process"):
        list(staging.stage_cycles(raw, tmp_path / "stg", [2, 99], KEY, workers=2))


def test_a_worker_dead_before_it_is_given_its_cycles_fails_the_staging_as_clearly(raw, tmp_path, monkeypatch):
    """A worker killed as it starts (before the build has handed it its cycles: a broken pipe)
    fails the staging with the same message as one that fails later, and none is left."""
    real_popen = workers.subprocess.Popen
    started = []

    def dead_at_once(args, **kwargs):  # a real process, which ends before reading its stdin
        proc = real_popen([sys.executable, "-c", "import os; os._exit(9)"], **kwargs)
        proc.wait()
        started.append(proc)
        return proc

    monkeypatch.setattr(workers.subprocess, "Popen", dead_at_once)
    with pytest.raises(RuntimeError, match=r"staging failed in a worker process:\ncycles \[[23]\]: ended with exit "
                                           r"status 9, saying nothing"):
        list(staging.stage_cycles(raw, tmp_path / "stg", [2, 3], KEY, workers=2))
    assert started and all(p.poll() is not None for p in started)


def test_staged_files_are_validated_once_and_read_again_only_when_changed(raw, tmp_path, monkeypatch):
    list(staging.stage_cycles(raw, tmp_path, [2], KEY, workers=1))
    path = tmp_path / "cycle=2" / "participations.parquet"
    staging._stamp_path(path).unlink()  # as if staged before stamps: read and validated once
    rows, cases, read = staging.validate_staged([path], validation.Participation)
    assert cases is None and rows == len(pd.read_parquet(path)) and read == 1

    def no_reading(*args, **kwargs):
        raise AssertionError("an unchanged, valid file was read again")

    with monkeypatch.context() as mp:
        mp.setattr(staging.pq.ParquetFile, "iter_batches", no_reading)
        mp.setattr(staging.pd, "read_parquet", no_reading)
        assert staging.validate_staged([path], validation.Participation) == (rows, None, 0)

    frame = pd.read_parquet(path)
    frame.loc[len(frame) - 1, "participation_id"] = frame.loc[0, "participation_id"]  # far apart
    frame.loc[1, "gender"] = "X"
    frame.to_parquet(path, index=False)
    monkeypatch.setattr(staging, "VALIDATE_ROWS", 50)  # the duplicates end up in different chunks
    _, cases, _ = staging.validate_staged([path], validation.Participation)
    assert set(zip(cases["column"], cases["check"])) >= {("participation_id", "field_uniqueness"),
                                                          ("gender", "isin(['K', 'M'])")}
    assert set(cases["file"]) == {"cycle=2/participations.parquet"}


def test_a_damaged_staged_file_fails_its_model_by_name_and_the_others_are_still_checked(raw, tmp_path):
    """A staged file cut short (the staging folder is the pipeline's own, but a disk or a
    hand can damage it): its check fails naming it, with no value, instead of stopping the
    check with pyarrow's error, which named no file (a review's find)."""
    list(staging.stage_cycles(raw, tmp_path, [2, 3], KEY, workers=1))
    damaged, sound = tmp_path / "cycle=2" / "issues.parquet", tmp_path / "cycle=3" / "issues.parquet"
    damaged.write_bytes(damaged.read_bytes()[:100])
    staging._stamp_path(sound).unlink()  # read, not skipped by its stamp
    rows, cases, read = staging.validate_staged([damaged, sound], validation.Issue)
    assert read == 2 and rows == len(pd.read_parquet(sound))
    assert cases[["file", "column", "check"]].to_dict("records") == [
        {"file": "cycle=2/issues.parquet", "column": "(whole file)",
         "check": "readable as Parquet (ArrowInvalid); ingest its cycle again"}]
    assert staging.validated_before(sound, validation.Issue)  # the sound one passed and is stamped


def test_an_audit_that_loses_rows_fails_its_model(raw, tmp_path):
    """warehouse.md's "nothing lost", per file, in the staged audit: a file whose rows read
    are more than loaded + rejected + duplicates fails `nothing_lost` of pandera's Audit."""
    list(staging.stage_cycles(raw, tmp_path / "stg", [2], KEY, workers=1))
    path = tmp_path / "stg" / "cycle=2" / "audit.parquet"
    assert staging.validate_staged([path], validation.Audit)[1] is None
    audit = pd.read_parquet(path)
    audit.loc[0, "rows_read"] += 1
    audit.to_parquet(path, index=False)
    _, cases, _ = staging.validate_staged([path], validation.Audit)
    assert set(cases["check"]) == {"nothing_lost"} and set(cases["index"]) == {0}


def test_staged_files_are_marked_validated_only_as_they_would_pass_when_read_back(raw, tmp_path, monkeypatch):
    """Staging marks each file it writes validated without reading it back (the frames
    passed their models in memory): read back and validated, every one passes."""
    list(staging.stage_cycles(raw, tmp_path / "stg", list(range(1, 9)), KEY, workers=1))
    files = sorted((tmp_path / "stg").glob("cycle=*/*.parquet"))
    checked = [(f, model) for f in files for name, model in validation.HARMONISED_MODELS.items()
               if f.stem == name]
    assert len(checked) == 8 * 7  # every staged frame has a model
    assert all(staging.validated_before(f, model) for f, model in checked)
    # the stamp names the model: a file stamped for one model has not passed another (a changed
    # model, or pandera's version, must validate again; a review's mutation left it out, unseen)
    assert not any(staging.validated_before(f, validation.Issue) for f, model in checked
                   if model is not validation.Issue)
    for f, _ in checked:
        staging._stamp_path(f).unlink()
    for f, model in checked:
        rows, cases, _ = staging.validate_staged([f], model)
        assert cases is None, (f, cases)
        assert rows == len(pd.read_parquet(f))

    monkeypatch.setenv("PANDERA_VALIDATION_DEPTH", "SCHEMA_ONLY")  # the data would go unchecked
    list(staging.stage_cycles(raw, tmp_path / "schema-only", [2], KEY, workers=1))
    written = sorted((tmp_path / "schema-only").glob("cycle=2/*.parquet"))
    assert written and not any(staging._stamp_path(f).exists() for f in written)
    participations = tmp_path / "schema-only" / "cycle=2" / "participations.parquet"
    assert staging.validate_staged([participations], validation.Participation)[1] is None
    assert not staging._stamp_path(participations).exists()


@pytest.mark.parametrize("env, checks", [
    ({}, True),
    ({"PANDERA_VALIDATION_ENABLED": "off"}, False),  # pandera: only true, True and 1 mean on
    ({"PANDERA_VALIDATION_ENABLED": "TRUE"}, False),
    ({"PANDERA_VALIDATION_DEPTH": "SCHEMA_ONLY"}, False),
    ({"PANDERA_VALIDATION_DEPTH": "SCHEMA_AND_DATA"}, True),
])
def test_staged_rows_count_as_checked_exactly_when_pandera_checks_data(env, checks):
    """What validation.checks_data says is what pandera does, in a fresh interpreter."""
    import os
    import subprocess
    import sys

    code = (
        "import pandas as pd, pandera.pandas as pa\n"
        "from iga_pipeline import validation\n"
        "schema = pa.DataFrameSchema({'a': pa.Column(int, pa.Check.ge(0))})\n"
        "try:\n"
        "    schema.validate(pd.DataFrame({'a': [-1]}))\n"
        "    checked = False\n"
        "except pa.errors.SchemaError:\n"
        "    checked = True\n"
        "print(checked, validation.checks_data())\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PANDERA_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**clean, **env})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(checks), str(checks)]


def test_unstamped_staging_is_not_refused_while_pandera_checks_no_data(raw, tmp_path, monkeypatch):
    """With pandera's data checks switched off nothing is stamped, and the marts do not ask for
    stamps: the staging goes in as the operator chose, rather than being refused for ever."""
    monkeypatch.setenv("PANDERA_VALIDATION_DEPTH", "SCHEMA_ONLY")
    list(staging.stage_cycles(raw, tmp_path, [2], KEY, workers=1))
    staging.write_inventory(raw, tmp_path)
    assert not list(tmp_path.glob("cycle=2/.pandera-*.ok"))
    assert staging.not_ready(tmp_path, [2], KEY) == []


def test_pandera_switched_off_in_process_counts_as_unchecked():
    from pandera.config import config_context

    assert validation.checks_data()
    with config_context(validation_enabled=False):
        assert not validation.checks_data()


def test_a_foreign_id_in_memory_leaves_the_file_to_the_check(raw, tmp_path, monkeypatch):
    real = staging.write_cycle

    def write_with_a_foreign_id(folder, result, key=None, **kwargs):
        ids = result.participations["participation_id"].copy()
        ids.iloc[0] = "c4" + ids.iloc[0][2:]
        result.participations["participation_id"] = ids
        return real(folder, result, key, **kwargs)

    monkeypatch.setattr(staging, "write_cycle", write_with_a_foreign_id)
    list(staging.stage_cycles(raw, tmp_path, [3], KEY, workers=1))
    folder = tmp_path / "cycle=3"
    assert not staging._stamp_path(folder / "participations.parquet").exists()
    assert staging._stamp_path(folder / "outcomes.parquet").exists()
    _, cases, _ = staging.validate_staged([folder / "participations.parquet"], validation.Participation)
    assert cases["check"].tolist() == ["starts with 'c3-' (the cycle of its folder)"]


def test_a_participation_id_of_another_cycle_fails(raw, tmp_path):
    list(staging.stage_cycles(raw, tmp_path, [3], KEY, workers=1))
    path = tmp_path / "cycle=3" / "participations.parquet"
    frame = pd.read_parquet(path)
    frame.loc[0, "participation_id"] = "c4" + frame.loc[0, "participation_id"][2:]
    frame.to_parquet(path, index=False)
    _, cases, _ = staging.validate_staged([path], validation.Participation)
    assert cases["check"].tolist() == ["starts with 'c3-' (the cycle of its folder)"]


def test_each_row_of_a_duplicated_id_is_one_failure_case(raw, tmp_path):
    """A participation_id staged twice is two failure cases of field_uniqueness, one per row,
    however the file is chunked: not one (the first row missed) nor four (the chunk's check too)."""
    list(staging.stage_cycles(raw, tmp_path, [3], KEY, workers=1))
    path = tmp_path / "cycle=3" / "participations.parquet"
    frame = pd.read_parquet(path)
    frame.loc[1, "participation_id"] = frame.loc[0, "participation_id"]  # in one chunk
    frame.to_parquet(path, index=False)
    _, cases, _ = staging.validate_staged([path], validation.Participation)
    unique = cases[cases["check"] == "field_uniqueness"]
    assert unique["failure_case"].tolist() == [frame.loc[0, "participation_id"]] * 2


def test_an_empty_staged_file_without_a_column_fails_its_model(tmp_path):
    """An empty staged file is validated too (its columns, as pandera reads them), not passed
    for want of rows."""
    path = tmp_path / "cycle=2" / "survey_responses.parquet"
    path.parent.mkdir()
    columns = list(validation.SurveyResponse.to_schema().columns)
    pd.DataFrame({c: pd.Series(dtype="string") for c in columns[1:]}).to_parquet(path, index=False)
    rows, cases, read = staging.validate_staged([path], validation.SurveyResponse)
    assert (rows, read) == (0, 1)
    assert cases is not None and columns[0] in set(cases["failure_case"].astype(str))
    assert not staging.validated_before(path, validation.SurveyResponse)


def test_a_staged_file_that_is_gone_fails_its_model_by_name(tmp_path):
    """A staged file removed (by a hand, stamp left or not) fails its check naming it, as a
    damaged one does, rather than stopping the check with the error of the file system."""
    folder = tmp_path / "cycle=2"
    folder.mkdir()
    stamped, unstamped = folder / "issues.parquet", folder / "audit.parquet"
    staging._stamp_path(stamped).write_text("1:2:3")
    rows, cases, _ = staging.validate_staged([stamped, unstamped], validation.Issue)
    assert rows == 0
    assert cases[["file", "column", "check"]].to_dict("records") == [
        {"file": f"cycle=2/{name}", "column": "(whole file)",
         "check": "readable as Parquet (FileNotFoundError); ingest its cycle again"}
        for name in ("issues.parquet", "audit.parquet")]


def test_a_late_delivery_build_starts_its_worker_before_its_run(raw, tmp_path, monkeypatch):
    """`iga-pipeline build --cycle N` on a large raw root: the cycle's worker is running
    before the Dagster run starts (it ingests while the build imports Dagster), and the
    run's ingest uses that worker rather than starting a second one."""
    import subprocess

    from conftest import run_cli_build
    from iga_pipeline import cli

    warehouse = tmp_path / "wh" / "iga.duckdb"
    assert run_cli_build(raw, warehouse).exit_code == 0
    before = _frames(warehouse.parent / "staging")
    started, at_run = [], []
    real_popen, real_run = subprocess.Popen, cli.run_build_job

    def popen(args, *a, **kw):
        if "iga_pipeline._stage_worker" in args:  # not the Parquet export beside the checks
            started.append(args)
        return real_popen(args, *a, **kw)

    def run_build_job(*a, **kw):
        at_run.append(len(started))
        return real_run(*a, **kw)

    collected = []
    real_take = workers.take_early

    def take_early(*a, **kw):
        collected.append(real_take(*a, **kw))
        return collected[-1]

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(cli, "run_build_job", run_build_job)
    monkeypatch.setattr(workers, "take_early", take_early)
    monkeypatch.setattr("os.cpu_count", lambda: 2)  # a one-core runner would stage in process
    # the bundled-size raw root of this test: no early worker, the cycle staged in process
    assert run_cli_build(raw, warehouse, "--cycle", "5", IGA_INGEST_WORKERS=None).exit_code == 0
    assert (started, at_run) == ([], [0])

    monkeypatch.setattr(workers, "PARALLEL_FROM_BYTES", 1)  # as if the raw root were large
    build = run_cli_build(raw, warehouse, "--cycle", "5", IGA_INGEST_WORKERS=None)
    assert build.exit_code == 0, build.stderr
    assert [args[-2] for args in started] == ["iga_pipeline._stage_worker"]  # one worker, the early one
    assert at_run == [0, 1]  # started before the run
    assert [type(w) for w in collected] == [type(None), workers.Workers]  # ... and the run's ingest used it
    after = _frames(warehouse.parent / "staging")
    assert before.keys() == after.keys()
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)


def test_no_process_to_be_had_leaves_the_late_delivery_to_the_run(raw, tmp_path, monkeypatch):
    import subprocess

    def popen(*a, **kw):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.delenv("IGA_INGEST_WORKERS", raising=False)
    monkeypatch.setattr(workers, "PARALLEL_FROM_BYTES", 1)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr(subprocess, "Popen", popen)
    assert workers.start_early(raw, tmp_path / "staging", 5, KEY) is False
    assert workers._EARLY == {}


def test_a_worker_no_run_collected_is_stopped(raw, tmp_path, monkeypatch):
    """`iga-pipeline build --cycle N` that ends before its run's ingest (a check of the CLI,
    an error, an interrupt) stops its early worker rather than waiting for it."""
    monkeypatch.delenv("IGA_INGEST_WORKERS", raising=False)
    monkeypatch.setattr(workers, "PARALLEL_FROM_BYTES", 1)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert workers.start_early(raw, tmp_path / "staging", 5, KEY) is True
    (early,) = workers._EARLY.values()
    (proc, *_), = early.procs
    workers.stop_early()
    assert workers._EARLY == {} and proc.returncode is not None
    assert not __import__("pathlib").Path(early.scratch.name).exists()
    # stopped at once, not waited for while it staged its cycle (a review dropped the terminate)
    assert proc.returncode != 0 and not (tmp_path / "staging" / "cycle=5").exists()
    staged = list(staging.stage_cycles(raw, tmp_path / "staging", [5], KEY, workers=1))  # the next ingest
    assert staged[0].rows["participations"] > 0


def test_the_early_start_counts_the_projects_cycles():
    from iga_pipeline import reference

    assert workers.PROJECT_CYCLES == len(reference.cycles())


def test_workers_are_chosen_by_size(raw, monkeypatch):
    monkeypatch.delenv("IGA_INGEST_WORKERS", raising=False)
    assert staging.ingest_workers(staging.raw_bytes(raw, [2, 3])) == 1  # a few hundred kilobytes: not worth a process
    monkeypatch.setattr(workers, "PARALLEL_FROM_BYTES", 1)
    assert staging.ingest_workers(staging.raw_bytes(raw, [2, 3])) == min(2, settings.cpus())
    # a cycle that would need more memory than the machine has: one at a time
    largest = max(staging.raw_bytes(raw, [2, 3]).values())
    monkeypatch.setattr(staging, "MEMORY_PER_RAW_BYTE", staging._available_memory() // largest + 1)
    assert staging.ingest_workers(staging.raw_bytes(raw, [2, 3])) == 1  # no memory for two at once
    monkeypatch.setenv("IGA_INGEST_WORKERS", "3")
    assert staging.ingest_workers(staging.raw_bytes(raw, [2, 3])) == 3


def test_the_memory_workers_may_use_is_the_cgroups(raw, tmp_path, monkeypatch):
    """'As many as CPUs and memory allow' read the host's MemAvailable: in a container, or a
    service with a MemoryMax, of 2 GiB, cycles that need over 1 GiB each were ingested two
    at once (an audit of comments against the code; IGA_DUCKDB_MEMORY's bound reads the cgroups)."""
    from iga_pipeline import settings

    monkeypatch.delenv("IGA_INGEST_WORKERS", raising=False)
    monkeypatch.setattr(workers, "PARALLEL_FROM_BYTES", 1)  # large
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    largest = max(staging.raw_bytes(raw, [2, 3]).values())
    monkeypatch.setattr(staging, "MEMORY_PER_RAW_BYTE", 2**30 // largest + 1)  # over 1 GiB a cycle
    (tmp_path / "cgroup").mkdir()
    (tmp_path / "cgroup" / "memory.max").write_text(f"{2 * 2**30}\n")
    (tmp_path / "proc_cgroup").write_text("0::/\n")
    monkeypatch.setattr(settings, "CGROUP_ROOT", tmp_path / "cgroup")
    monkeypatch.setattr(settings, "PROC_CGROUP", tmp_path / "proc_cgroup")
    assert staging.ingest_workers(staging.raw_bytes(raw, [2, 3])) == 1


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_setaffinity"), reason="Linux's CPU affinity")
def test_the_cores_counted_are_those_this_process_may_run_on(raw, tmp_path, monkeypatch):
    """'Two cores or more' (start_early), 'as many as CPUs allow': os.cpu_count() counted the
    machine's cores, so a build confined to one of them (taskset, a container's cpuset) started
    an early worker, and two workers, to share it (an audit of comments against the code)."""
    import os

    monkeypatch.delenv("IGA_INGEST_WORKERS", raising=False)
    monkeypatch.setattr(workers, "PARALLEL_FROM_BYTES", 1)  # large
    monkeypatch.setattr("os.cpu_count", lambda: 2)  # the machine's two
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(mine)})  # this process: one of them
    try:
        assert staging.ingest_workers(staging.raw_bytes(raw, [2, 3])) == 1
        assert workers.start_early(raw, tmp_path / "staging", 5, KEY) is False
    finally:
        os.sched_setaffinity(0, mine)
        workers.stop_early()


def test_one_large_cycle_stays_in_this_process_on_one_core(raw, tmp_path, monkeypatch):
    """A late delivery's cycle is handed to a worker only when a second core can run it
    beside this process: on one core it is staged here, no process started."""
    monkeypatch.delenv("IGA_INGEST_WORKERS", raising=False)
    monkeypatch.setattr(workers, "PARALLEL_FROM_BYTES", 1)  # large
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    started = _spy_on_processes(monkeypatch)
    (staged,) = staging.stage_cycles(raw, tmp_path, [5], KEY, alone_in_worker=True)
    assert started == [] and staged.rows["participations"] > 0


def test_a_worker_stages_nothing_for_a_cycle_not_the_projects_nor_from_an_empty_raw_root(raw, tmp_path):
    """The worker checks what the run would (`start_early` starts it before the run has
    read the raw root): it fails saying why, and leaves nothing in the staging folder (the
    workers' scratch folder, made there, is gone too)."""
    with pytest.raises(RuntimeError, match=r"cycle\(s\) \[99\] are not the project's: nothing was staged"):
        workers.Workers(raw, tmp_path / "stg", [[99]], KEY).results()
    empty = tmp_path / "mnt"
    empty.mkdir()
    with pytest.raises(RuntimeError, match="no cycle has any delivery in the raw root"):
        workers.Workers(empty, tmp_path / "stg", [[5]], KEY).results()
    assert list((tmp_path / "stg").glob("*")) == []  # dot files too


def test_an_empty_staged_file_is_validated_and_stamped_like_any_other(raw, tmp_path):
    """A cycle without a survey stages an empty survey_responses.parquet. When its stamp goes
    stale (a new pandera, a changed model), the check must stamp it again, or the marts would
    refuse the staging while the check says it passed."""
    list(staging.stage_cycles(raw, tmp_path, [2, 3], KEY, workers=1))
    staging.write_inventory(raw, tmp_path)
    files = [tmp_path / f"cycle={c}" / "survey_responses.parquet" for c in (2, 3)]
    assert len(pd.read_parquet(files[0])) == 0 and len(pd.read_parquet(files[1])) > 0
    for path in files:
        staging._stamp_path(path).write_text("stale")
    assert len(staging.not_ready(tmp_path, [2, 3], KEY)) == 2  # the marts would refuse both
    rows, cases, _ = staging.validate_staged(files, validation.SurveyResponse)
    assert cases is None and rows == len(pd.read_parquet(files[1]))
    assert staging.not_ready(tmp_path, [2, 3], KEY) == []


def test_a_cycle_is_not_swapped_while_a_build_reads_the_staging(raw, tmp_path):
    """Runs overlap under `dagster dev`: a warehouse build holds the staging lock shared
    while it reads; an ingest of a cycle then waits for it at its swap, and two ingests
    of one cycle take turns (no half-swapped folder, no error, nothing left behind)."""
    import threading
    import time

    from iga_pipeline.ingest import ingest_cycle

    list(staging.stage_cycles(raw, tmp_path, [2], KEY, workers=1))
    staging.write_inventory(raw, tmp_path)
    before = (tmp_path / "cycle=2" / "participations.parquet").stat().st_ino
    result = ingest_cycle(raw, 2, KEY)
    errors = []

    def write():
        try:
            staging.write_cycle(tmp_path, result, KEY, mark_valid=True)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    with staging.locked(tmp_path, shared=True):
        writers = [threading.Thread(target=write) for _ in range(2)]
        for w in writers:
            w.start()
        time.sleep(1.0)
        assert all(w.is_alive() for w in writers)  # waiting at the swap
        assert (tmp_path / "cycle=2" / "participations.parquet").stat().st_ino == before
    for w in writers:
        w.join(30)
    assert not errors and not any(w.is_alive() for w in writers)
    assert (tmp_path / "cycle=2" / "participations.parquet").stat().st_ino != before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".cycle=")) == []
    assert staging.not_ready(tmp_path, [2], KEY) == []  # stamped before the swap, still valid after


def test_a_build_never_reads_a_cycle_whose_versions_the_delivery_log_lacks_yet(raw, tmp_path):
    """The marts refuse a cycle whose staged versions are not the delivery log's last (O13). An
    ingest wrote the log after its swap, outside the staging lock: a build that read the staging
    between the two, while another cycle's ingest held the log's lock or only while the log was
    written, was refused ("the delivery log lacks what cycle(s) 2 were built from: ingest them
    again"), exit 1, though nothing was wrong (a concurrency review's find: two `build --cycle`
    loops on two cycles, 1 build of 16 refused; a reader beside an ingest, 66 reads of 400). The
    log is written with the swap, under the staging lock, so a reader waits for both."""
    import shutil
    import threading

    from iga_pipeline.locks import flock

    root = tmp_path / "raw"
    shutil.copytree(raw, root)
    stage = tmp_path / "staging"
    cycles = sorted({int(p.name.removesuffix(".csv").rsplit("cykel", 1)[1])
                     for p in root.glob("kommuner/*/deltagare_cykel*.csv")})
    list(staging.stage_cycles(root, stage, cycles, KEY, workers=1))
    staging.write_inventory(root, stage, KEY)
    assert staging.not_ready(stage, cycles, KEY) == []
    register = sorted(root.glob("kommuner/*/deltagare_cykel2.csv"))[0]
    register.write_bytes(b"".join(register.read_bytes().splitlines(keepends=True)[:-1]))  # re-sent, a row less
    found: list[str] = []

    def read():  # as the marts step reads the staging
        with staging.locked(stage, shared=True):
            found.extend(staging.not_ready(stage, cycles, KEY))

    with flock(stage / ".delivery_log.lock"):  # another cycle's ingest, writing the log
        ingest = threading.Thread(target=staging.stage_cycle, args=(root, stage, 2, KEY))
        ingest.start()
        assert someone_waits_for(stage / ".delivery_log.lock", ingest), "the ingest did not wait for the log"
        reader = threading.Thread(target=read)
        reader.start()
        someone_waits_for(stage / ".lock", reader)  # the reader waits for the swap and the log (or has read)
    ingest.join()
    reader.join()
    assert found == []
    assert staging.not_ready(stage, cycles, KEY) == []


def test_readers_of_the_staging_share_its_lock(tmp_path):
    """The staging lock taken shared (the marts' build, the pandera checks) lets other readers
    in at once; only a swap (exclusive) waits for them."""
    import threading

    got = {}

    def take(name, shared):
        with staging.locked(tmp_path, shared=shared):
            got[name] = True

    with staging.locked(tmp_path, shared=True):
        reader = threading.Thread(target=take, args=("reader", True))
        writer = threading.Thread(target=take, args=("writer", False))
        reader.start()
        reader.join(10)
        assert got == {"reader": True}
        writer.start()
        assert someone_waits_for(tmp_path / ".lock", writer), "the swap did not wait for the readers"
    writer.join(10)
    assert got == {"reader": True, "writer": True}


def test_recover_waits_for_a_swap_under_way(tmp_path):
    """Between write_cycle's renames (under the staging lock) the cycle's folder is set aside
    and the new one not yet in place: `recover` waits rather than put the old one back, which
    would fail the swap."""
    import threading

    old = tmp_path / ".cycle=3.aaaa.old"
    old.mkdir()
    restored = []
    with staging.locked(tmp_path):  # a write_cycle between its two renames
        worker = threading.Thread(target=lambda: restored.append(staging.recover(tmp_path)))
        worker.start()
        assert someone_waits_for(tmp_path / ".lock", worker), "recover did not wait for the lock"
        assert old.exists() and not (tmp_path / "cycle=3").exists()
    worker.join(10)
    assert restored == [[3]] and (tmp_path / "cycle=3").is_dir()


def test_recover_removes_half_written_folders_once_they_are_an_hour_old(tmp_path):
    import os
    import time

    old, young = tmp_path / ".cycle=3.aaaa.tmp", tmp_path / ".cycle=3.bbbb.tmp"
    for folder in (old, young):
        folder.mkdir()
        (folder / "participations.parquet").write_bytes(b"half")
    hour_ago = time.time() - 3601
    os.utime(old, (hour_ago, hour_ago))
    assert staging.recover(tmp_path) == []
    assert not old.exists() and young.exists()  # the young one may be another run's, being written


def test_the_scratch_folder_of_a_build_killed_outright_is_removed_an_hour_on(raw, tmp_path):
    """A build killed with SIGKILL while its workers ran left their scratch folder (results,
    stderr) in the system's temporary folder, and nothing removed it (an operations review's
    find). It is now in the staging folder, and goes as a half-written cycle does."""
    import os
    import subprocess
    import time

    staged = tmp_path / "staging"
    script = ("import sys, time\n"
              "from pathlib import Path\n"
              "from iga_pipeline import workers\n"
              "from iga_pipeline.pseudonym import PseudonymKey\n"
              "w = workers.Workers(Path(sys.argv[1]), Path(sys.argv[2]), [[2], [3]],\n"
              "                    PseudonymKey(b'staging-scale-test-key', is_development=False))\n"
              "print(w.scratch.name, flush=True)\n"
              "time.sleep(600)\n")
    build = subprocess.Popen([sys.executable, "-c", script, str(raw), str(staged)], stdout=subprocess.PIPE,
                             text=True, start_new_session=True, env=workers.child_env())
    scratch = Path(build.stdout.readline().strip())
    assert sigkill_group(build) == -9
    build.stdout.close()
    assert scratch.parent == staged and scratch.is_dir()  # what the kill left, where a build looks
    assert staging.recover(staged) == [] and scratch.is_dir()  # young: it may be a running build's
    hour_ago = time.time() - 3601
    os.utime(scratch, (hour_ago, hour_ago))
    # and the files a kill left half-written: the delivery log's, the inventory's, a pandera stamp's
    (staged / "cycle=2").mkdir()
    half_written = [staged / ".delivery_log.parquet.0123abcd.tmp", staged / "cycle=2" / ".pandera-followup.ok.89.tmp",
                    staged / ".inventory_issues.parquet.4567.tmp"]
    for file in half_written:
        file.write_bytes(b"PAR1")
    for file in half_written[:2]:
        os.utime(file, (hour_ago, hour_ago))
    assert staging.recover(staged) == []
    assert not scratch.exists()
    assert [file.exists() for file in half_written] == [False, False, True]  # a young one may be being written


def test_recover_puts_back_the_newest_of_several_folders_set_aside(tmp_path):
    """Kills between write_cycle's two renames in two builds leave two `.old` folders of a
    cycle: the newer one goes back, the older goes (a review's mutation restored the oldest)."""
    import os
    import time

    older, newer = tmp_path / ".cycle=3.aaaa.old", tmp_path / ".cycle=3.bbbb.old"
    for folder, marker in ((older, "older"), (newer, "newer")):
        folder.mkdir()
        (folder / "marker").write_text(marker)
    hour_ago = time.time() - 3600
    os.utime(older, (hour_ago, hour_ago))
    assert staging.recover(tmp_path) == [3]
    assert (tmp_path / "cycle=3" / "marker").read_text() == "newer"
    assert not older.exists() and not newer.exists()


def test_recover_puts_back_the_last_folder_set_aside_not_one_half_removed(tmp_path):
    """A swap's removal of the folder it set aside was cut short (a kill in `rmtree`), then the
    next swap was killed between its renames: two `.old` folders of the cycle, the half-removed
    one modified last. Recovery put that one back, by modification time, and removed the
    complete one: the cycle lost files, and the build, which reads what is there, would not
    have said so (a review). The swaps' own order decides."""
    import os
    import time

    from iga_pipeline import durable

    def folder(name: str) -> Path:
        (tmp_path / name).mkdir()
        for frame in ("participations", "followup", "interventions"):
            (tmp_path / name / f"{frame}.parquet").write_text(name)
        return tmp_path / name

    live = staging.cycle_dir(tmp_path, 3)
    folder("v0").rename(live)
    half_removed = durable.swap_dir(folder("v1"), live)
    hour_ago = time.time() - 3600
    os.utime(live, (hour_ago, hour_ago))  # v1, written an hour before its successor's swap
    (half_removed / "followup.parquet").unlink()  # the removal, cut short: modified now
    with pytest.raises(FileNotFoundError):  # the next swap, killed between its two renames:
        durable.swap_dir(tmp_path / "v2-never-written", live)  # v1 aside, nothing in its place
    assert not live.exists() and len(durable.left_aside(live)) == 2
    assert staging.recover(tmp_path) == [3]
    assert sorted(p.name for p in live.iterdir()) == ["followup.parquet", "interventions.parquet",
                                                      "participations.parquet"]
    assert {p.read_text() for p in live.iterdir()} == {"v1"}
    assert durable.left_aside(live) == []


def test_an_ingest_killed_between_its_swap_and_the_delivery_log_is_logged_by_the_next_build(raw, tmp_path):
    """F8 (reliability-history.md): an ingest of cycle 5, one of its files changed and one
    removed, SIGKILLed after its folder was swapped in and before the delivery log recorded
    its versions. The log lagged: the marts were refused (`not_ready`) for a cycle no build
    was asked to ingest, and the removal went unrecorded. The folder says so (`UNLOGGED`);
    the marts step's `log_unlogged` records what the ingest would have, once."""
    import os
    import shutil
    import signal

    from iga_pipeline import history

    root, stage = tmp_path / "raw", tmp_path / "staging"
    shutil.copytree(raw, root)
    list(staging.stage_cycles(root, stage, [2, 5], KEY, workers=1))
    staging.write_inventory(root, stage)
    assert staging.not_ready(stage, [2, 5], KEY) == []
    assert not list(stage.glob(f"cycle=*/{staging.UNLOGGED}"))  # a whole ingest leaves none
    changed, removed = "leverantorer/astorp/cykel5.json", "leverantorer/astorp/cykel5_90dagar.json"
    with open(root / changed, "a") as f:
        f.write("\n")  # the same document, another version
    (root / removed).unlink()

    pid = os.fork()
    if pid == 0:  # the child: killed where the log would have taken the versions
        try:
            history.record = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
            staging.stage_cycle(root, stage, 5, KEY)
        finally:
            os._exit(1)
    assert os.waitpid(pid, 0)[1] == signal.SIGKILL
    assert (stage / "cycle=5" / staging.UNLOGGED).exists()
    assert any("lacks what cycle(s) 5" in p for p in staging.not_ready(stage, [2, 5], KEY))

    assert staging.log_unlogged(stage, PseudonymKey(b"another key", is_development=False)) == []
    assert staging.log_unlogged(stage, KEY) == [5]
    assert staging.not_ready(stage, [2, 5], KEY) == []
    last = history.last_versions(history.read_log(stage)).set_index("source_file")["sha256"]
    assert last[changed] == hashlib.sha256((root / changed).read_bytes()).hexdigest()
    assert pd.isna(last[removed])  # recorded as gone
    log = history.read_log(stage)
    assert staging.log_unlogged(stage, KEY) == [] and history.read_log(stage).equals(log)

    # A marked folder whose audit cannot be read stops no build there: not_ready says what is wrong.
    (stage / "cycle=2" / staging.UNLOGGED).touch()
    (stage / "cycle=2" / "audit.parquet").write_bytes(b"not Parquet")
    assert staging.log_unlogged(stage, KEY) == [] and (stage / "cycle=2" / staging.UNLOGGED).exists()
    assert any("cycle=2/audit.parquet" in p for p in staging.not_ready(stage, [2, 5], KEY))


def test_ending_child_processes_kills_those_that_ignore_the_request(tmp_path):
    """`process.end` (the ingest workers, the Parquet export): a child that ends when asked
    ends so; one that ignores SIGTERM is killed once the grace is over; pipes are closed."""
    import signal
    import subprocess
    import sys

    from iga_pipeline import process

    ignores = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    obeys = "import time; print('ready', flush=True); time.sleep(60)"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
             for code in (ignores, ignores, obeys)]
    for proc in procs:
        assert proc.stdout.readline() == b"ready\n"  # its handler is in place
    process.end(procs, grace=1)
    assert [proc.returncode for proc in procs] == [-signal.SIGKILL, -signal.SIGKILL, -signal.SIGTERM]
    assert all(proc.stdin.closed and proc.stdout.closed for proc in procs)


def test_a_second_ingest_of_a_cycle_lists_the_raw_files_after_the_first_has_written(raw, tmp_path):
    """An ingest holds its cycle's lock from the listing of the raw files to the swap: one
    that starts meanwhile waits, then lists, so a delivery that arrived during the first
    is in what stays staged (the last to write is the last to list)."""
    import shutil
    import threading
    import time

    root = tmp_path / "raw"
    shutil.copytree(raw, root)
    late = root / "leverantorer" / "astorp" / "cykel5_90dagar.json"
    held = late.read_bytes()
    late.unlink()
    stage = tmp_path / "staging"
    done = []
    with staging.locked(stage, cycle=5):  # an ingest of cycle 5 in progress
        worker = threading.Thread(target=lambda: done.append(staging.stage_cycle(root, stage, 5, KEY)))
        worker.start()
        time.sleep(1.0)
        assert worker.is_alive() and not (stage / "cycle=5").exists()  # waiting, nothing listed yet
        late.write_bytes(held)  # arrives while the first ingest runs
    worker.join(60)
    assert done and "leverantorer/astorp/cykel5_90dagar.json" in set(done[0].audit["source_file"])


def test_an_ingest_does_not_wait_for_another_cycles(raw, tmp_path):
    """Each cycle has its own lock: an ingest of cycle 2 goes on while cycle 5's is under way
    (`dagster dev` runs two ingests at a time)."""
    import threading

    done = []
    with staging.locked(tmp_path, cycle=5):  # an ingest of cycle 5 in progress
        worker = threading.Thread(target=lambda: done.append(staging.stage_cycle(raw, tmp_path, 2, KEY)))
        worker.start()
        worker.join(60)
        assert done and (tmp_path / "cycle=2" / "participations.parquet").exists()


def test_the_warehouse_builds_from_the_steps_alone_and_names_what_is_missing(raw, tmp_path):
    """No Dagster: staging writes all the warehouse reads (the delivery log with each cycle),
    the inventory is one call, and without it the marts are refused with the asset to run."""
    import duckdb

    from iga_pipeline import reference
    from iga_pipeline.evaluation import EVALUATION_MARTS
    from iga_pipeline.warehouse import build

    cycles = list(reference.cycles())
    list(staging.stage_cycles(raw, tmp_path / "staging", cycles, KEY, workers=1))
    assert [p for p in staging.not_ready(tmp_path / "staging", cycles, KEY)
            if "raw/inventory" in p]
    staging.write_inventory(raw, tmp_path / "staging")
    assert staging.not_ready(tmp_path / "staging", cycles, KEY) == []
    build.build_candidate(tmp_path / "staging", tmp_path / "iga.duckdb", EVALUATION_MARTS)
    con = duckdb.connect(str(tmp_path / "iga.duckdb"), read_only=True)
    files = con.execute("SELECT count(*) FROM marts.ingest_audit").fetchone()[0]
    assert con.execute("SELECT count(*) FROM marts.delivery_history WHERE status = 'current'"
                       ).fetchone()[0] == files > 0


def test_the_marts_are_refused_while_the_delivery_log_lacks_a_staged_version(raw, tmp_path):
    """The log deleted, then one cycle ingested again: the log exists but lacks the others'
    versions, and delivery_history would lose them (a review's find: only its existence was
    checked)."""
    from iga_pipeline import history

    cycles = [2, 3]
    list(staging.stage_cycles(raw, tmp_path, cycles, KEY, workers=1))
    staging.write_inventory(raw, tmp_path)
    assert staging.not_ready(tmp_path, cycles, KEY) == []
    history.log_path(tmp_path).unlink()
    list(staging.stage_cycles(raw, tmp_path, [2], KEY, workers=1))
    assert [p for p in staging.not_ready(tmp_path, cycles, KEY) if "delivery log" in p] == [
        "the delivery log (delivery_log.parquet) lacks what cycle(s) 3 were built from: ingest them "
        "again (iga-pipeline build)"]


def test_a_cycle_without_deliveries_is_staged_and_refused_only_when_every_cycle_is(raw, tmp_path):
    """One cycle's files removed is a removal: its staging is empty and the marts go on.
    Staging in which no cycle has a delivery is refused (more likely a share not mounted)."""
    import shutil

    from iga_pipeline.ingest import deliveries_for_cycle

    root = tmp_path / "raw"
    shutil.copytree(raw, root)
    stage = tmp_path / "staging"
    list(staging.stage_cycles(root, stage, [2, 3], KEY, workers=1))
    for d in deliveries_for_cycle(root, 3):
        d.path.unlink()
    list(staging.stage_cycles(root, stage, [3], KEY, workers=1))
    staging.write_inventory(root, stage)
    assert len(pd.read_parquet(stage / "cycle=3" / "audit.parquet")) == 0
    assert staging.not_ready(stage, [2, 3], KEY) == []
    assert [p for p in staging.not_ready(stage, [3], KEY) if "no cycle has any delivery" in p]


def test_a_delivery_refused_unopened_does_not_count_as_missing_from_the_delivery_log(raw, tmp_path):
    """A delivery never opened (a folder named as a file) has no sha256 in the audit, nor in
    the delivery log: the marts are not refused for it."""
    import shutil

    root = tmp_path / "raw"
    shutil.copytree(raw, root)
    (root / "leverantorer" / "astorp" / "cykel2_90dagar.json").mkdir()
    stage = tmp_path / "staging"
    (staged,) = staging.stage_cycles(root, stage, [2], KEY, workers=1)
    staging.write_inventory(root, stage)
    assert staged.audit["sha256"].isna().sum() == 1
    assert staging.not_ready(stage, [2], KEY) == []


def test_an_empty_raw_root_leaves_the_inventory_as_it_was(raw, tmp_path):
    staging.write_inventory(raw, tmp_path)
    before = (tmp_path / staging.INVENTORY_ISSUES).read_bytes()
    empty = tmp_path / "mnt"
    empty.mkdir()
    with pytest.raises(staging.EmptyRawRoot):
        staging.write_inventory(empty, tmp_path)
    assert (tmp_path / staging.INVENTORY_ISSUES).read_bytes() == before


def test_the_inventory_leaves_no_temporary_file(raw, tmp_path):
    """The inventory is written beside its place and renamed: nothing else stays behind."""
    for _ in range(2):
        staging.write_inventory(raw, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [staging.INVENTORY_ISSUES]


def test_a_second_export_of_one_build_replaces_what_the_first_left(tmp_path):
    """A retry of a run group exports into the same pending folder; it once failed there
    (FileExistsError) and the build could never publish (a review's find)."""
    import duckdb

    from iga_pipeline.warehouse import duck

    wh = tmp_path / "iga.duckdb"
    con = duckdb.connect(str(wh))
    con.execute("CREATE SCHEMA marts; CREATE TABLE marts.t AS SELECT 1 AS x")
    con.close()
    out = tmp_path / ".parquet.run.pending"
    out.mkdir()
    (out / "t.parquet").write_bytes(b"half written")
    assert duck.export_parquet(wh, out) == {"t": 1}
    assert duck.export_parquet(wh, out) == {"t": 1}


def test_a_process_of_the_package_ends_without_teardown_but_with_its_exit_handlers():
    """The command, the ingest workers and the Parquet exports end by `exit_without_teardown`
    (an ingest worker once aborted in native code in the interpreter's teardown, after every
    cycle had been staged): the exit handlers still run, the output is flushed, the status kept."""
    import subprocess
    import sys

    code = ("import atexit, sys; from iga_pipeline.process import exit_without_teardown; "
            "atexit.register(lambda: print('handler ran')); print('output', end=''); "
            "sys.stderr.write('error output'); exit_without_teardown(3)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (3, "outputhandler ran\n", "error output")


def test_an_early_worker_needs_two_cores_and_a_raw_root_large_per_cycle(raw, tmp_path, monkeypatch):
    """`start_early` starts no worker on one core, nor when the raw root holds less than
    PARALLEL_FROM_BYTES per project cycle on average (a review started it on one core, and
    compared the whole raw root with one cycle's threshold, and no test saw either)."""
    monkeypatch.delenv("IGA_INGEST_WORKERS", raising=False)
    try:
        monkeypatch.setattr(workers, "PARALLEL_FROM_BYTES", 1)
        monkeypatch.setattr("os.cpu_count", lambda: 1)
        assert workers.start_early(raw, tmp_path / "staging", 5, KEY) is False
        monkeypatch.setattr("os.cpu_count", lambda: 2)
        # twice the threshold in all: large for one cycle, small for eight
        monkeypatch.setattr(workers, "PARALLEL_FROM_BYTES", workers._bytes_under(raw) // 2)
        assert workers.start_early(raw, tmp_path / "staging", 5, KEY) is False
        assert workers._EARLY == {}
    finally:
        workers.stop_early()


def test_workers_started_before_one_that_cannot_start_are_stopped(raw, tmp_path, monkeypatch):
    """A second worker that cannot be started (no process to be had) stops the first, which
    would otherwise wait for its cycles for ever (a review dropped the stop; no test saw it)."""
    real_popen, started = workers.subprocess.Popen, []

    def popen(args, **kwargs):
        if started:
            raise OSError(11, "Resource temporarily unavailable")
        started.append(real_popen(args, **kwargs))
        return started[-1]

    monkeypatch.setattr(workers.subprocess, "Popen", popen)
    try:
        with pytest.raises(OSError):
            workers.Workers(raw, tmp_path / "staging", [[2], [3]], KEY)
        assert len(started) == 1 and started[0].poll() is not None
    finally:
        for proc in started:
            proc.kill()
            proc.wait()


def test_collected_workers_leave_no_scratch_folder(raw, tmp_path):
    """The workers' results are read from a temporary folder, removed once they are collected
    (a review left it, one folder per ingest, and no test saw it)."""
    running = workers.Workers(raw, tmp_path / "staging", [[2]], KEY)
    assert set(running.results()) == {2}
    assert not __import__("pathlib").Path(running.scratch.name).exists()


def test_a_cycle_build_that_fails_before_its_run_stops_its_early_worker(raw, tmp_path, monkeypatch):
    """`build --cycle N` whose run cannot start (a dagster.yaml Dagster cannot read) stops the
    worker it started early, which would otherwise go on staging after the build said it failed
    (a review dropped `stop_early` from the command; the test of `stop_early` alone passed)."""
    import subprocess

    from conftest import run_cli_build

    started, real_popen = [], subprocess.Popen

    def popen(args, *a, **kw):
        proc = real_popen(args, *a, **kw)
        if "iga_pipeline._stage_worker" in args:
            started.append(proc)
        return proc

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(workers, "PARALLEL_FROM_BYTES", 1)  # as if the raw root were large
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("run_storage: [unclosed\n")
    try:
        build = run_cli_build(raw, tmp_path / "wh" / "iga.duckdb", "--cycle", "5", IGA_INGEST_WORKERS=None,
                              DAGSTER_HOME=str(home))
        assert build.exit_code == 1 and "Dagster cannot load the instance" in build.stderr, build.stderr
        assert len(started) == 1 and started[0].returncode is not None  # waited for: ended
        assert workers._EARLY == {}
    finally:
        workers.stop_early()
