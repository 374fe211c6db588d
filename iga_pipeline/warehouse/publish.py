"""Publish a build: its candidate warehouse, Parquet folder and report go live together.

`publish_build` swaps the three in, one rename each (`os.replace`, atomic on one
filesystem: a BI tool holding the live warehouse open keeps reading the old
version, the next open sees the new one). All or nothing:

* each previous version is kept aside until all three are live, and put back if
  a later swap fails (the command then exits 1 with everything as it was);
* what it swaps in is on disk first (`durable`), so that a power cut leaves no torn version;
* before the first swap the publish writes a journal of its swaps
  (`.publish.<run>.journal`), and removes it once all three are live. A journal
  that is still there when the next publish (or the next build's marts step)
  takes the lock is from a publish that was killed midway: `recover` finishes it
  if its warehouse went live (readers never see the data go back), and otherwise
  removes what it set aside. A failed publish marks its journal "undoing" before
  it undoes its swaps, and `recover` finishes such an undo, and undoes a publish
  it cannot finish. Either way one build's three are live, never a mixture of
  two builds.

It also removes what killed builds left behind (`remove_stale`, `discard_run`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

from iga_pipeline import durable
from iga_pipeline.locks import flock
from iga_pipeline.settings import RUN_MAX_SECONDS
from iga_pipeline.warehouse import export
from iga_pipeline.warehouse.build import (
    CANDIDATE_MARK, WAL_SUFFIX, candidate_path, discard, staging_read_at, wal_path,
)

log = logging.getLogger(__name__)


def publishing(folder: Path):
    """One publish at a time in the warehouse's folder (`<folder>/.publish.lock`, flock).

    A publish swaps in three things one after the other: the warehouse, the Parquet
    folder, the report. Two builds publishing at once (the nightly build beside the
    automation's run, a CLI build beside `dagster dev`) could leave them from two
    builds, or fail the second Parquet swap ('Directory not empty') after its
    warehouse had gone live."""
    return flock(Path(folder) / ".publish.lock")


def _check_publishable(candidate: Path) -> None:
    if wal_path(candidate).exists():
        raise RuntimeError("the candidate still has a write-ahead log: it was not checkpointed, so it "
                           "is not published; run the build again")


class Superseded(Exception):
    """The live warehouse was built from newer staging than this candidate: it stays live."""


def publish_build(paths, run_id: str) -> list[str]:
    """Publish the build `run_id`: its candidate as the live warehouse, then the Parquet folder
    and the report rendered from it, one publish at a time (`publishing`). Returns the names
    of what interrupted builds left and is now removed, finished or undone.

    All or nothing: each previous version is kept aside until all three are live, and put
    back if a later swap fails, so that a failed publish (exit status 1) leaves the previous
    warehouse, Parquet folder and report as they were; the new ones go back to their pending
    names, so that the run can be re-executed from this step. A kill midway is finished or
    undone by the next publish, or the next build's marts step (`recover`).

    Raises Superseded, publishing nothing, when the live warehouse was built from staging
    read after this candidate's: a slow full build that finished after a late delivery's
    quick one put the delivery's cycle back as it was."""
    candidate = candidate_path(paths.warehouse, run_id)
    swaps = [(candidate, paths.warehouse)]
    if paths.pending_parquet(run_id).exists():
        swaps.append((paths.pending_parquet(run_id), paths.parquet))
    if paths.pending_report(run_id).exists():
        swaps.append((paths.pending_report(run_id), paths.report_dir / "index.html"))
    with publishing(paths.warehouse_dir):
        repaired = _recover(paths)
        _check_publishable(candidate)
        live_read, candidate_read = staging_read_at(paths.warehouse), staging_read_at(candidate)
        if live_read and candidate_read and live_read > candidate_read:
            raise Superseded(f"the live warehouse was built from the staging as read "
                             f"{(live_read - candidate_read) / 1e9:.1f} s after this build read it")
        for new, _ in swaps:  # on disk before the journal names it: a power cut leaves no torn version
            durable.sync(new)
        journaled = [(new, live, _previous(live, run_id)) for new, live in swaps]
        journal = _write_journal(paths, run_id, journaled)
        done: list[tuple[Path, Path, Path | None]] = []  # (new, live path, the previous version set aside)
        try:
            for new, live in swaps:
                done.append((new, live, _set_aside(live, run_id)))
                os.replace(new, live)
            for folder in {live.parent for _, live, _ in done}:
                durable.fsync(folder)
        except BaseException:
            failed = _undo(paths, run_id, journaled)
            if failed:  # the publish's own error is raised
                log.error("a failed publish could not put back %s: the next build's recovery tries "
                          "again", "; ".join(failed))
            raise
        journal.unlink()  # the commit: from here on the new versions stay
        durable.fsync(journal.parent)
        for _, _, previous in done:
            durable.remove(previous)
        discard(candidate)  # live under its own name now: this removes its checks' verdicts
        return repaired + remove_stale(paths)


# --- the journal: a publish killed midway is finished or undone ---------------------------

JOURNAL_GLOB = ".publish.*.journal"


def _journal(paths, run_id: str) -> Path:
    return paths.warehouse_dir / f".publish.{run_id}.journal"


def _write_journal(paths, run_id: str, swaps: list[tuple[Path, Path, Path]], undoing: bool = False) -> Path:
    """Write down, before the first swap, each swap's three names (the new version's
    pending name, the live name, the name its previous version is kept under), relative
    to the warehouse folder; durable before any swap is made. Written again with `undoing`
    before the swaps are undone (`_undo`)."""
    folder = paths.warehouse_dir
    journal = _journal(paths, run_id)
    tmp = journal.with_name(f"{journal.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w") as f:
        json.dump({"run": run_id, "swaps": [[os.path.relpath(p, folder) for p in swap] for swap in swaps],
                   "undoing": undoing}, f)
    durable.replace(tmp, journal)
    return journal


def recover(paths) -> list[str]:
    """Finish or undo a publish that was killed midway, if any (its journal is still there).

    Once its warehouse has gone live, the publish is finished: its Parquet folder and
    report go live too, so that what readers have seen never goes back. Before that,
    nothing of it is live, and what it set aside is removed; its candidate and pending
    files are removed with the rest of the killed build, an hour on. A failed publish
    killed while undoing itself (its journal says "undoing"), or one that cannot be
    finished (the swap that failed fails again), is undone to the end. Takes the publish
    lock, so it never sees a publish that is running. Safe to repeat: a kill during a
    recovery leaves the rest to the next one. It also puts back a folder that `replace_dir`
    set aside and put nothing in the place of (a kill between its two renames). Returns
    what it dealt with."""
    if (not any(paths.warehouse_dir.glob(f"{JOURNAL_GLOB}*")) and not _set_aside_files(paths)
            and not _swapped_out(paths)):
        return []
    with publishing(paths.warehouse_dir):
        return _recover(paths)


# The folders `replace_dir` swaps (the Parquet exports materialised alone, the checks' gx/)
SWAPPED_FOLDERS = ("parquet", "gx")


def _swapped_out(paths) -> list[str]:
    """The folders `replace_dir` set aside and put nothing in the place of (looked at
    without the lock: `durable.put_back` looks again with it)."""
    return [name for name in SWAPPED_FOLDERS
            if not os.path.lexists(paths.warehouse_dir / name) and durable.left_aside(paths.warehouse_dir / name)]


def _set_aside_files(paths) -> list[Path]:
    """What publishes kept aside. With the publish lock held and no journal left, these are
    from publishes that were killed after their commit, before they removed them (or copies
    that a kill cut short: `_second_link`)."""
    return [*paths.warehouse_dir.glob(f".{paths.warehouse.name}.*.previous"),
            *paths.warehouse_dir.glob(".parquet.*.previous"),
            *paths.report_dir.glob(".index.html.*.previous")]


def _recover(paths) -> list[str]:
    """`recover`, with the publish lock held."""
    folder = paths.warehouse_dir
    dealt_with = []
    for journal in sorted(folder.glob(JOURNAL_GLOB)):
        try:
            recorded = json.loads(journal.read_text())
            run_id, swaps = recorded["run"], [[folder / name for name in swap] for swap in recorded["swaps"]]
            undoing = recorded.get("undoing", False)
        except (OSError, ValueError, KeyError, TypeError):  # never complete: it is renamed in whole
            log.error("%s cannot be read: the publish it records is left as it is", journal.name)
            continue
        (candidate, _, _), *rest = swaps  # the warehouse's swap comes first
        finished = False
        what = "undone: it had failed, and was undoing itself" if undoing else "undone: nothing of it went live"
        if not undoing and not os.path.lexists(candidate):  # the warehouse is live: the rest follows it
            try:
                for new, live, previous in rest:
                    if os.path.lexists(new):
                        if os.path.isdir(live):  # a folder (or a link to one) goes aside first
                            durable.remove(previous)
                            os.replace(live, previous)
                        os.replace(new, live)
                for swapped in {live.parent for _, live, _ in swaps}:
                    durable.fsync(swapped)
                finished, what = True, "finished: its Parquet folder and report are live"
            except OSError as e:  # rather than fail so at every build, with two builds' files live
                what = f"undone: it could not be finished ({e.__class__.__name__})"
        if finished:
            journal.unlink()
            durable.fsync(folder)
        else:
            failed = _undo(paths, run_id, swaps)
            if failed:
                raise RuntimeError(f"{journal.name}: a publish killed midway could not be undone: "
                                   f"{'; '.join(failed)}")
        for _, _, previous in swaps:
            durable.remove(previous)
        log.warning("%s: a publish killed midway was %s", journal.name, what)
        dealt_with.append(f"{journal.name} (a publish killed midway, {what})")
    for tmp in folder.glob(f"{JOURNAL_GLOB}.*.tmp"):  # killed before its journal was complete: nothing swapped
        tmp.unlink(missing_ok=True)
    for previous in _set_aside_files(paths):
        durable.remove(previous)
        dealt_with.append(previous.name)
    for name in SWAPPED_FOLDERS:  # as staging.recover puts a cycle's folder back
        old = durable.put_back(folder / name)
        if old is None:
            continue
        log.warning("%s: a swap of %s/ killed midway was undone", old.name, name)
        dealt_with.append(f"{old.name} (a swap of {name}/ killed midway, undone)")
    return dealt_with


# --- one swap, and undoing it ----------------------------------------------------------------

def _previous(live: Path, run_id: str) -> Path:
    return live.with_name(f".{live.name}.{run_id}.previous")


def _set_aside(live: Path, run_id: str) -> Path | None:
    """Keep `live`'s current version under another name until the publish is done. A file
    stays live meanwhile (a second link to it); a folder is moved (its swap is two renames)."""
    if not os.path.lexists(live):
        return None
    previous = _previous(live, run_id)
    durable.remove(previous)  # left by a killed publish of this very run
    if live.is_dir():  # a folder, or a link to one
        os.replace(live, previous)
    else:
        _second_link(live, previous)
    return previous


def _second_link(path: Path, other: Path) -> None:
    """`other` as a second name of `path` (a link itself, if `path` is a link); where the
    filesystem has no hard links, a copy, made under a name of its own and renamed to `other`
    once whole: a recovery trusts `other`, so it must never name half a copy (F9). A copy
    left by a kill is swept as a set-aside file (`_set_aside_files`)."""
    try:
        os.link(path, other, follow_symlinks=False)
        return
    except OSError:
        pass
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.previous")
    try:
        shutil.copy2(path, partial, follow_symlinks=False)
        durable.replace(partial, other)
    except BaseException:
        durable.remove(partial)
        raise


def _undo(paths, run_id: str, swaps: list[tuple[Path, Path, Path]]) -> list[str]:
    """Undo a publish's swaps (`swaps` as journaled): each new version back under its pending
    name, each previous one live again. The journal is marked "undoing" first, so that a kill
    midway leaves the rest to the next recovery, which undoes too, and removed at the end.
    Returns the swaps that could not be put back, and then leaves the journal, for the next
    recovery to try again."""
    try:
        _write_journal(paths, run_id, swaps, undoing=True)
    except OSError as e:  # undone all the same: only a kill meanwhile needs the mark
        log.error("a publish being undone could not mark its journal: %s", e)
    failed = []
    for new, live, previous in reversed(swaps):
        try:
            _put_back(new, live, previous if os.path.lexists(previous) else None)
        except OSError as e:  # go on with the others
            failed.append(f"{live.name}: {e}")
    if not failed:
        for folder in {live.parent for _, live, _ in swaps}:
            durable.fsync(folder)
        _journal(paths, run_id).unlink(missing_ok=True)
        durable.fsync(paths.warehouse_dir)
    return failed


def _put_back(new: Path, live: Path, previous: Path | None) -> None:
    """Undo one swap of a failed publish: the new version back under its pending name `new`,
    the previous one (`previous`, None if nothing was live before) live again. Safe to
    repeat after a kill at any point of it, as a recovery does (`_recover`)."""
    if os.path.lexists(live) and not os.path.lexists(new):  # the swap was made
        if (live.is_dir() and not live.is_symlink()) or previous is None:
            os.replace(live, new)
        else:
            _second_link(live, new)  # the live name stays taken until the previous one replaces it
    if previous is not None:
        # If the swap was never made, a file's `previous` is a second name of the live one
        # (rename(2) then does nothing, and the name is removed below) or a whole copy of it.
        os.replace(previous, live)
        durable.remove(previous)


def replace_dir(new: Path, target: Path) -> None:
    """Put folder `new` in place of folder `target`, flushed to disk (`durable.swap_dir`:
    a reader may, for an instant, find `target` missing, but never a mixture of two
    builds' files). The old folder is removed."""
    durable.sync(new)
    old = durable.swap_dir(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- what killed or failed builds left ------------------------------------------------------

def _candidates(target: Path) -> list[Path]:
    """Every build's candidate beside `target`, running or left by a kill. A candidate's
    write-ahead log goes with its candidate (`discard`), so it is listed only alone (the
    candidate gone: a kill between the two removals)."""
    target = Path(target)
    return [p for p in target.parent.glob(f"{target.name}{CANDIDATE_MARK}*")
            if not (p.name.endswith(WAL_SUFFIX) and p.with_name(p.name.removesuffix(WAL_SUFFIX)).exists())]


def discard_run(paths, run_id: str) -> None:
    """Remove what a failed run left: its candidate and its pending report and Parquet."""
    export.stop(candidate_path(paths.warehouse, run_id))  # the Parquet export beside the checks
    discard(candidate_path(paths.warehouse, run_id))
    shutil.rmtree(paths.pending_parquet(run_id), ignore_errors=True)
    report = paths.pending_report(run_id)
    try:
        report.unlink(missing_ok=True)
    except OSError:  # a read-only folder raises even for a file that is not there
        if os.path.lexists(report):
            raise


def remove_stale(paths) -> list[str]:
    """Remove candidates and pending files left by builds that were killed.

    Only what has not been touched for RUN_MAX_SECONDS goes, so that a build
    running at the same time keeps its own files."""
    now = time.time()
    found = [*_candidates(paths.warehouse),
             *paths.warehouse_dir.glob(".parquet.*.pending"), *paths.warehouse_dir.glob(".parquet.*.old"),
             *paths.warehouse_dir.glob(".parquet.*.tmp"),
             *paths.report_dir.glob(".index.html.*.pending"), *paths.warehouse_dir.glob(".gx.*.tmp"),
             *paths.warehouse_dir.glob(".gx.*.old")]
    removed = []
    for p in found:
        try:
            if now - p.stat().st_mtime < RUN_MAX_SECONDS:
                continue
        except FileNotFoundError:  # a concurrent build published or discarded it meanwhile
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:  # a candidate with its .wal and verdicts; any other file has neither, and just goes
            discard(p)
        removed.append(p.name)
    return removed
