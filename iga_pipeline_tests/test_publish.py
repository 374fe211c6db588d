"""The publish (warehouse/publish.py): the warehouse, the Parquet folder and the
report go live together, or not at all. Real files in a temporary folder; the failure is
real too (a pending report that is a folder cannot be renamed over a file), and so are
the kills (SIGKILL of a forked process at each of the publish's file operations)."""

from __future__ import annotations

import errno
import itertools
import json
import os
import resource
import shutil
import signal
import time
from pathlib import Path

import pytest

from iga_pipeline.settings import RUN_MAX_SECONDS, Paths
from iga_pipeline.warehouse import build, publish

RUN = "run-2"


def _pending(paths: Paths, report_is_a_folder: bool = False) -> None:
    """What a build leaves for its publish: candidate, Parquet folder, report."""
    build.candidate_path(paths.warehouse, RUN).write_bytes(b"new warehouse")
    paths.pending_parquet(RUN).mkdir()
    (paths.pending_parquet(RUN) / "outcomes_by_cycle.parquet").write_bytes(b"new parquet")
    paths.report_dir.mkdir(exist_ok=True)
    if report_is_a_folder:
        paths.pending_report(RUN).mkdir()
        (paths.pending_report(RUN) / "stray").write_text("x")
    else:
        paths.pending_report(RUN).write_text("new report")


def _live(paths: Paths) -> dict[str, str | None]:
    def text(p: Path) -> str | None:
        return p.read_bytes().decode() if p.is_file() else None
    return {"warehouse": text(paths.warehouse),
            "parquet": text(paths.parquet / "outcomes_by_cycle.parquet"),
            "report": text(paths.report_dir / "index.html")}


def _set_aside_left(paths: Paths) -> list[str]:
    return sorted(p.name for p in [*paths.warehouse_dir.iterdir(), *paths.report_dir.iterdir()]
                  if p.name.endswith(".previous"))


@pytest.fixture
def paths(tmp_path) -> Paths:
    return _earlier_build(tmp_path)


def _earlier_build(folder: Path) -> Paths:
    """A live warehouse, Parquet folder and report from an earlier build."""
    paths = Paths(raw_dir=folder / "raw", warehouse=folder / "wh" / "iga.duckdb")
    paths.warehouse_dir.mkdir(parents=True)
    paths.warehouse.write_bytes(b"old warehouse")
    paths.parquet.mkdir()
    (paths.parquet / "outcomes_by_cycle.parquet").write_bytes(b"old parquet")
    paths.report_dir.mkdir()
    (paths.report_dir / "index.html").write_text("old report")
    return paths


def test_a_publish_puts_all_three_live_and_keeps_nothing_aside(paths):
    _pending(paths)
    publish.publish_build(paths, RUN)
    assert _live(paths) == {"warehouse": "new warehouse", "parquet": "new parquet", "report": "new report"}
    assert _set_aside_left(paths) == []
    assert not build.candidate_path(paths.warehouse, RUN).exists()


def test_a_swap_that_fails_puts_the_earlier_ones_back(paths):
    """The report's swap fails after the warehouse and the Parquet folder have gone live:
    both are put back, and the error is not swallowed. The new ones are pending again, so a
    re-execution of the step publishes them once the cause is mended."""
    _pending(paths, report_is_a_folder=True)
    with pytest.raises(OSError):
        publish.publish_build(paths, RUN)
    assert _live(paths) == {"warehouse": "old warehouse", "parquet": "old parquet", "report": "old report"}
    assert _set_aside_left(paths) == []
    assert build.candidate_path(paths.warehouse, RUN).read_bytes() == b"new warehouse"
    assert (paths.pending_parquet(RUN) / "outcomes_by_cycle.parquet").read_bytes() == b"new parquet"
    # the failure is dealt with here: no journal is left for the next publish to take for a kill
    assert not list(paths.warehouse_dir.glob(publish.JOURNAL_GLOB))

    shutil.rmtree(paths.pending_report(RUN))
    paths.pending_report(RUN).write_text("new report")
    assert publish.publish_build(paths, RUN) == []  # it repaired nothing: nothing was killed
    assert _live(paths) == {"warehouse": "new warehouse", "parquet": "new parquet", "report": "new report"}


def test_a_parquet_folder_that_is_a_link_is_put_back_as_the_link(paths, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    paths.parquet.rename(elsewhere)
    paths.parquet.symlink_to(elsewhere, target_is_directory=True)
    _pending(paths, report_is_a_folder=True)
    with pytest.raises(OSError):
        publish.publish_build(paths, RUN)
    assert paths.parquet.is_symlink() and paths.parquet.resolve() == elsewhere.resolve()
    assert _live(paths) == {"warehouse": "old warehouse", "parquet": "old parquet", "report": "old report"}


def test_a_folder_swap_killed_between_its_renames_is_undone_by_the_next_recovery(paths):
    """`replace_dir` (the checks' gx/, or parquet/ exported alone) killed after its first rename
    left the old folder aside and none in its place; it was deleted an hour later, parquet/
    missing till the next publish and every cycle checked again (a review). The next recovery
    puts it back, as staging's does, and leaves a folder aside alone while one is in place."""
    (paths.warehouse_dir / "gx").mkdir()
    (paths.warehouse_dir / "gx" / "validated_cycles.json").write_text("{}")
    for name in publish.SWAPPED_FOLDERS:  # replace_dir's first rename, then the kill
        os.replace(paths.warehouse_dir / name, paths.warehouse_dir / f".{name}.0123abcd.old")
    (paths.warehouse_dir / ".gx.4567cdef.old").mkdir()  # an older one, left by another kill
    os.utime(paths.warehouse_dir / ".gx.4567cdef.old", ns=(0, 0))
    dealt_with = publish.recover(paths)
    assert len(dealt_with) == 2 and _live(paths)["parquet"] == "old parquet"
    assert (paths.warehouse_dir / "gx" / "validated_cycles.json").read_text() == "{}"
    assert [p.name for p in paths.warehouse_dir.glob(".*.old")] == [".gx.4567cdef.old"]
    assert publish.recover(paths) == []  # gx/ is in place: the older one waits for remove_stale


def test_a_first_publish_that_fails_leaves_no_warehouse(tmp_path):
    paths = Paths(raw_dir=tmp_path / "raw", warehouse=tmp_path / "wh" / "iga.duckdb")
    paths.warehouse_dir.mkdir()
    paths.report_dir.mkdir()
    (paths.report_dir / "index.html").write_text("a report of no build")
    _pending(paths, report_is_a_folder=True)
    with pytest.raises(OSError):
        publish.publish_build(paths, RUN)
    assert _live(paths) == {"warehouse": None, "parquet": None, "report": "a report of no build"}
    assert not paths.parquet.exists()
    assert build.candidate_path(paths.warehouse, RUN).read_bytes() == b"new warehouse"


def test_a_candidate_with_a_write_ahead_log_is_not_published(paths):
    """A candidate whose changes are still in its WAL (`<candidate>.wal`) is refused before
    any swap: renamed live without it, the warehouse would lose what the WAL holds (a
    mutation review's find: with the guard removed every publish test still passed)."""
    _pending(paths)
    candidate = build.candidate_path(paths.warehouse, RUN)
    build.wal_path(candidate).write_bytes(b"unreplayed changes")
    with pytest.raises(RuntimeError, match="write-ahead log"):
        publish.publish_build(paths, RUN)
    assert _live(paths) == OLD
    assert candidate.read_bytes() == b"new warehouse"


def test_a_journal_left_half_written_is_removed_by_the_next_publish(paths):
    """A publish killed while writing its journal leaves `.publish.<run>.journal.<hex>.tmp`
    (nothing was swapped yet); the next publish removes it (a mutation review's find: no
    test looked for it, so it could stay for good)."""
    half = paths.warehouse_dir / ".publish.run-1.journal.0123abcd.tmp"
    half.write_text('{"run": "run-1", "swa')
    _pending(paths)
    publish.publish_build(paths, RUN)
    assert _live(paths) == NEW
    assert not half.exists()


def _an_hour_old(*paths: Path) -> None:
    """Date files and folders a minute past RUN_MAX_SECONDS ago: what a killed build left."""
    then = time.time() - RUN_MAX_SECONDS - 60
    for p in paths:
        os.utime(p, (then, then))


def test_a_publish_removes_only_what_is_an_hour_old(paths):
    """A publish sweeps away what killed builds left, over RUN_MAX_SECONDS old, and leaves
    alone a younger candidate and pending Parquet folder and report: they may be another
    build's, running now (a mutation review's find: a sweep ignoring the age passed the
    publish tests; only a slow whole-build test saw it)."""
    _pending(paths)
    running, killed = "run-9", "run-0"
    def exporting(run: str) -> Path:  # the scratch folder of an export (duck.export_parquet, F12)
        return paths.pending_parquet(run).with_name(f"{paths.pending_parquet(run).name}.0123abcd.tmp")

    for run in (running, killed):
        build.candidate_path(paths.warehouse, run).write_bytes(run.encode())
        paths.pending_parquet(run).mkdir()
        exporting(run).mkdir()
        paths.pending_report(run).write_text(run)
    _an_hour_old(build.candidate_path(paths.warehouse, killed), paths.pending_parquet(killed),
                 paths.pending_report(killed), exporting(killed))
    removed = publish.publish_build(paths, RUN)
    assert _live(paths) == NEW
    assert build.candidate_path(paths.warehouse, running).exists()
    assert paths.pending_parquet(running).is_dir() and paths.pending_report(running).exists()
    assert exporting(running).is_dir()
    assert not build.candidate_path(paths.warehouse, killed).exists()
    assert not paths.pending_parquet(killed).exists() and not paths.pending_report(killed).exists()
    assert not exporting(killed).exists()
    assert len(removed) == 4


def test_a_write_ahead_log_whose_candidate_is_gone_is_swept_once_an_hour_old(paths):
    """A build killed between removing its candidate and its candidate's WAL leaves the WAL
    alone; a later publish sweeps it once it is an hour old. A WAL beside its candidate is
    left to go with the candidate (a mutation review found that such a WAL was never swept)."""
    _pending(paths)
    orphan, young_orphan, running = (build.wal_path(build.candidate_path(paths.warehouse, run))
                                     for run in ("run-0", "run-8", "run-9"))
    for wal in (orphan, young_orphan, running):
        wal.write_bytes(b"log")
    build.candidate_path(paths.warehouse, "run-9").write_bytes(b"a build running now")
    _an_hour_old(orphan, running)  # a running build's WAL is written; its database file may be older
    removed = publish.publish_build(paths, RUN)
    assert _live(paths) == NEW
    assert removed == [orphan.name]
    assert not orphan.exists() and young_orphan.exists() and running.exists()


# --- kills --------------------------------------------------------------------------------------

OLD = {"warehouse": "old warehouse", "parquet": "old parquet", "report": "old report"}
NEW = {"warehouse": "new warehouse", "parquet": "new parquet", "report": "new report"}
# What a publish changes the folders with; sendfile is how shutil.copy2 fills a copy (where
# there are no hard links), so that a kill can fall inside one.
FILE_OPERATIONS = ("replace", "link", "unlink", "rmdir", "sendfile")


def _killed(work, at: int, after: bool, setup=None) -> bool:
    """Run `work` in a forked process that SIGKILLs itself just before (or just after) its
    `at`-th file operation, `setup` run first. Returns whether it was killed (False: it ended
    before that)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns to pytest
        try:
            if setup is not None:
                setup()
            calls = itertools.count(1)

            def stopping(real):
                def operation(*args, **kwargs):
                    n = next(calls)
                    if n == at and not after:
                        os.kill(os.getpid(), signal.SIGKILL)
                    try:
                        return real(*args, **kwargs)
                    finally:  # after it, whether it did its work or raised
                        if n == at and after:
                            os.kill(os.getpid(), signal.SIGKILL)
                return operation

            for name in FILE_OPERATIONS:
                setattr(os, name, stopping(getattr(os, name)))
            work()
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) or os.WEXITSTATUS(status) == 0, "the work failed without being killed"
    return os.WIFSIGNALED(status)


def _kill_points(tmp_path: Path, name: str):
    """(paths, point, after, warehouse_live) for each point at which a publish can be killed,
    each in a fresh folder with an earlier build live and this build pending; the publish is
    already killed there, and `warehouse_live` says whether its warehouse had gone live."""
    for after in (False, True):
        for at in itertools.count(1):
            paths = _earlier_build(tmp_path / f"{name}-{int(after)}-{at}")
            _pending(paths)
            if not _killed(lambda: publish.publish_build(paths, RUN), at, after):
                assert _live(paths) == NEW  # the publish ran to its end before its at-th operation
                break
            yield paths, at, after, _live(paths)["warehouse"] == "new warehouse"


def _assert_whole_after_recovery(paths: Paths, where: str) -> None:
    """After recovery, one build's three are live, never a mixture, and nothing is kept
    aside; the new build's if its warehouse had gone live. If it is the earlier build's,
    this one is still pending, and a publish puts it live."""
    live = _live(paths)
    assert live in (OLD, NEW), f"{where}: {live}"
    assert not list(paths.warehouse_dir.glob(publish.JOURNAL_GLOB)), where
    assert _set_aside_left(paths) == [], where
    if live == OLD:
        assert build.candidate_path(paths.warehouse, RUN).read_bytes() == b"new warehouse", where
        publish.publish_build(paths, RUN)
        assert _live(paths) == NEW, where


def _no_hard_links(*args, **kwargs):
    raise OSError(errno.EPERM, "hard links are not supported here")  # as on some network shares


@pytest.mark.parametrize("hard_links", [True, False], ids=["hard links", "copies"])
def test_a_publish_killed_at_any_point_is_finished_or_undone_by_the_next_build(tmp_path, monkeypatch, hard_links):
    """A kill at each file operation of a publish (before it and after it), then what the next
    build does before its own publish (the marts step's `recover`): undone before the
    warehouse's swap, finished after it. Where the file system has no hard links, the live
    warehouse is set aside as a copy (`_second_link`): the same promises hold."""
    if not hard_links:
        monkeypatch.setattr(os, "link", _no_hard_links)
    points, seen = 0, set()
    for paths, at, after, warehouse_live in _kill_points(tmp_path, "kill"):
        points += 1
        publish.recover(paths)
        assert (_live(paths) == NEW) == warehouse_live  # finished once readers saw the new warehouse
        _assert_whole_after_recovery(paths, f"killed {'after' if after else 'before'} operation {at}")
        seen.add(warehouse_live)
    assert seen == {True, False}
    # 3 swaps: set aside, swap, commit, removals; before and after each (on 2026-12-01: 24 points
    # with hard links; 13 with copies, whose copying is no operation of FILE_OPERATIONS)
    assert points >= (20 if hard_links else 10)


def test_a_recovery_killed_at_any_point_is_finished_by_the_next(tmp_path):
    """Two kills: the publish, then the recovery of it, each at every point."""
    points = 0
    for paths, at, after, _ in _kill_points(tmp_path, "twice"):
        for again in itertools.count(1):
            copy = _earlier_build(paths.warehouse_dir.parent.with_name(f"{paths.warehouse_dir.parent.name}-{again}"))
            _pending(copy)
            assert _killed(lambda: publish.publish_build(copy, RUN), at, after)
            if not _killed(lambda: publish.recover(copy), again, after=False):
                break
            points += 1
            publish.recover(copy)
            _assert_whole_after_recovery(copy, f"publish killed at {at} ({after}), its recovery at {again}")
    assert points >= 40  # 84 on 2026-12-01


def test_a_publish_killed_after_its_warehouse_went_live_is_finished_by_the_next_publish(tmp_path):
    """Readers have seen the new warehouse: the next publish (another run's) first puts its
    Parquet folder and report live beside it, never the previous ones back."""
    paths = _earlier_build(tmp_path / "site")
    _pending(paths)
    killed_at = None  # the first operation after which the new warehouse is live
    for at in itertools.count(1):
        trial = _earlier_build(tmp_path / f"t{at}")
        _pending(trial)
        assert _killed(lambda: publish.publish_build(trial, RUN), at, after=True)
        if _live(trial)["warehouse"] == "new warehouse":
            killed_at = at
            break
    assert _killed(lambda: publish.publish_build(paths, RUN), killed_at, after=True)
    assert _live(paths) == {"warehouse": "new warehouse", "parquet": "old parquet", "report": "old report"}

    other = "run-3"
    build.candidate_path(paths.warehouse, other).write_bytes(b"third warehouse")
    publish.publish_build(paths, other)
    assert _live(paths) == {"warehouse": "third warehouse", "parquet": "new parquet", "report": "new report"}
    assert _set_aside_left(paths) == []


def _failed_and_killed(folder: Path, at: int, after: bool, mended: bool = True,
                       setup=None) -> tuple[Paths, bool] | None:
    """A publish whose report swap fails, SIGKILLed at its `at`-th file operation, then, if
    `mended`, the failure's cause mended: (paths, whether its journal says it was undoing
    itself); None if it ended (undone in full) before that operation."""
    paths = _earlier_build(folder)
    _pending(paths, report_is_a_folder=True)

    def failing_publish():
        with pytest.raises(OSError):
            publish.publish_build(paths, RUN)

    if not _killed(failing_publish, at, after, setup):
        assert _live(paths) == OLD
        return None
    undoing = any(json.loads(j.read_text())["undoing"] for j in paths.warehouse_dir.glob(publish.JOURNAL_GLOB))
    if mended:
        shutil.rmtree(paths.pending_report(RUN))
        paths.pending_report(RUN).write_text("new report")
    return paths, undoing


@pytest.mark.parametrize("mended", [True, False], ids=["cause mended", "cause still there"])
@pytest.mark.parametrize("hard_links", [True, False], ids=["hard links", "copies"])
def test_a_failed_publish_killed_while_undoing_itself_is_undone_by_the_next_recovery(tmp_path, monkeypatch,
                                                                                      hard_links, mended):
    """F7 (reliability-history.md): the report's swap fails, and the publish is killed at each
    file operation of its undo. It had marked its journal "undoing" first, so the next recovery
    finishes the undo, even if it is killed itself at any point: the earlier build stays live
    whole. (A kill between the warehouse's re-linking and its previous version's return was
    taken for a publish that never went live: the kept copy of the old warehouse was deleted,
    the new one live beside the old report.) A kill before the mark is the kill of a publish
    midway: finished if the failure's cause is mended, else undone (it failed at every
    recovery). Without hard links a kill can fall inside a copy (F9): the copy is renamed into
    place whole, so neither the live warehouse nor the pending one is ever half a copy."""
    if not hard_links:
        monkeypatch.setattr(os, "link", _no_hard_links)
    marked = recoveries_killed = 0
    for after in (False, True):
        for at in itertools.count(1):
            killed = _failed_and_killed(tmp_path / f"undo-{int(after)}-{at}", at, after, mended)
            if killed is None:
                break
            paths, undoing = killed
            where = f"killed {'after' if after else 'before'} operation {at}"
            publish.recover(paths)
            if undoing or not mended:
                marked += undoing
                assert _live(paths) == OLD, where
            if not mended:
                assert not list(paths.warehouse_dir.glob(f"{publish.JOURNAL_GLOB}*")), where
                assert _set_aside_left(paths) == [], where
                assert build.candidate_path(paths.warehouse, RUN).read_bytes() == b"new warehouse", where
                continue
            _assert_whole_after_recovery(paths, where)
            for again in itertools.count(1) if undoing else ():
                paths, _ = _failed_and_killed(tmp_path / f"undo-{int(after)}-{at}-{again}", at, after)
                if not _killed(lambda: publish.recover(paths), again, after=False):
                    break
                recoveries_killed += 1
                publish.recover(paths)
                assert _live(paths) == OLD, f"{where}, its recovery at {again}"
                _assert_whole_after_recovery(paths, f"{where}, its recovery at {again}")
    print(f"{marked} kills after the mark, {recoveries_killed} of their recoveries killed")
    assert marked >= 6
    assert recoveries_killed >= (20 if mended else 0)


def _copies_up_to(limit: int):
    """No hard links, and no file written past `limit` bytes (RLIMIT_FSIZE: the write fails with
    EFBIG, as on a full disk with ENOSPC): a copy of a larger file fails partway."""
    def setup():
        os.link = _no_hard_links
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return setup


@pytest.mark.parametrize("large", ["old warehouse", "new warehouse"])
def test_a_copy_that_fails_partway_never_goes_live(tmp_path, large):
    """F9: without hard links a publish copies. A copy that fails partway left half a file
    under a name a recovery trusts: the old warehouse's copy set aside (its swap then failed,
    the publish undone and killed before its journal went) was put live torn by the next
    recovery. Now a copy is renamed into place once whole. And when the undo itself cannot put
    a swap back (here the copy of the large new warehouse back to its pending name), the
    journal stays, and the next recovery undoes it: before, the mixture stayed for good."""
    limit = 64 * 1024
    seen = 0
    for at in itertools.count(1):
        paths = _earlier_build(tmp_path / f"{at}")
        _pending(paths, report_is_a_folder=True)
        file = paths.warehouse if large == "old warehouse" else build.candidate_path(paths.warehouse, RUN)
        whole = file.read_bytes() + b"x" * (3 * limit)
        file.write_bytes(whole)

        def failing_publish():
            with pytest.raises(OSError):
                publish.publish_build(paths, RUN)

        if not _killed(failing_publish, at, True, _copies_up_to(limit)):
            break
        seen += 1
        publish.recover(paths)
        where = f"killed after operation {at}"
        assert paths.warehouse.read_bytes() == (whole if large == "old warehouse" else b"old warehouse"), where
        assert _live(paths)["report"] == "old report", where
        assert _live(paths)["parquet"] == "old parquet", where
        assert not list(paths.warehouse_dir.glob(f"{publish.JOURNAL_GLOB}*")), where
        assert _set_aside_left(paths) == [], where
    assert seen >= 3
