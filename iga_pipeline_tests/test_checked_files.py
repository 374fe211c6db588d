"""Checked files kept between builds: the same frames as reading everything again,
and after a late delivery only the new file is read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from rawfiles import RawRoot, fu_end_row, people, register_row

from iga_pipeline import checked_files, ingest, staging
from iga_pipeline.ingest import CycleIngest, ingest_cycle
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.synth import scale

KEY = PseudonymKey(b"checked-files-test-key", is_development=False)
N = 1_200


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("checked") / "raw"
    scale.generate_scaled(root, N, seed=11)
    return root


def _assert_same(a: CycleIngest, b: CycleIngest) -> None:
    for name in CycleIngest.frame_names():
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)


class _Counting:
    """Counts which files the adapters really read (a spy around the real readers)."""

    def __init__(self, monkeypatch):
        self.read: list[str] = []
        for module, name in [(ingest.register, "read"), (ingest.survey, "read")]:
            monkeypatch.setattr(module, name, self._wrap(getattr(module, name)))
        monkeypatch.setattr(ingest.providers, "READERS",
                            {kind: self._wrap(f) for kind, f in ingest.providers.READERS.items()})

    def _wrap(self, reader):
        def wrapped(d, key):
            self.read.append(d.source_file)
            return reader(d, key)
        return wrapped


@pytest.mark.parametrize("cycle", [1, 3, 8])  # Pethö workbook, Folkuniversitetet CSV, Åstorp JSON
def test_kept_files_give_the_same_frames(raw, tmp_path, cycle, monkeypatch):
    fresh = ingest_cycle(raw, cycle, KEY)
    first = ingest_cycle(raw, cycle, KEY, kept=checked_files.CheckedFiles(tmp_path, cycle, KEY))
    _assert_same(fresh, first)

    spy = _Counting(monkeypatch)
    again = ingest_cycle(raw, cycle, KEY, kept=checked_files.CheckedFiles(tmp_path, cycle, KEY))
    _assert_same(fresh, again)
    assert [f for f in spy.read if "enkat" not in f] == []  # only the (unkept) survey is read again
    assert len(fresh.issues) > 0 and (fresh.issues["severity"] == "rejected").any()  # defects included


def test_a_kept_entry_holds_its_issues_masked(tmp_path):
    """An entry keeps the file's issues as they are staged: a row's values that make a
    personnummer together ('85010' in Kommun, '12383' in an hours column) are masked before
    it is written (a review's mutation kept them as read: the issues staged were masked
    again, the store beside them held both halves)."""
    raw = RawRoot(tmp_path / "raw")
    a, b = people(2)
    raw.register("1277", 2, [register_row(a, 2), register_row(b, 2)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(a, kommun="85010", hours=("12383", "", "", "")), fu_end_row(b)])
    stage = tmp_path / "staging"
    result = ingest_cycle(raw.root, 2, KEY, kept=checked_files.CheckedFiles(stage, 2, KEY))
    stored = pd.concat([pd.read_parquet(p) for p in (stage / ".checked" / "cycle=2").glob("*/issues.parquet")])
    for said in (" ".join(stored["detail"]), " ".join(result.issues["detail"])):
        assert "'#####'" in said and "85010" not in said and "12383" not in said, said


def test_a_late_delivery_reads_only_the_new_file(raw, tmp_path, monkeypatch):
    late_raw = tmp_path / "raw"
    scale.generate_scaled(late_raw, N, seed=11)
    stage = tmp_path / "staging"
    list(staging.stage_cycles(late_raw, stage, [8], KEY, workers=1))
    entries = sorted(p.name for p in (stage / ".checked" / "cycle=8").iterdir())

    late = scale.write_late_followup(late_raw, N, seed=11, cycle=8)
    spy = _Counting(monkeypatch)
    list(staging.stage_cycles(late_raw, stage, [8], KEY, workers=1))
    assert spy.read == [late]
    after = sorted(p.name for p in (stage / ".checked" / "cycle=8").iterdir())
    assert set(entries) < set(after) and len(after) == len(entries) + 1

    # The same staging as a build that reads every file.
    fresh = ingest_cycle(late_raw, 8, KEY)
    for name in CycleIngest.frame_names():
        pd.testing.assert_frame_equal(pd.read_parquet(stage / "cycle=8" / f"{name}.parquet"), _as_staged(getattr(fresh, name)),
                                      obj=name)


def _as_staged(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.read_parquet(_roundtrip(frame))


def _roundtrip(frame: pd.DataFrame):
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    buffer.seek(0)
    return buffer


def test_a_changed_file_alone_is_read_again_and_its_old_entry_goes(raw, tmp_path, monkeypatch):
    own = tmp_path / "raw"
    shutil.copytree(raw, own)
    stage = tmp_path / "staging"
    list(staging.stage_cycles(own, stage, [3], KEY, workers=1))
    before = {p.name for p in (stage / ".checked" / "cycle=3").iterdir()}

    changed = "kommuner/1277/deltagare_cykel3.csv"
    lines = (own / changed).read_bytes().splitlines(keepends=True)
    (own / changed).write_bytes(b"".join(lines[:-1]))  # its last row withdrawn
    spy = _Counting(monkeypatch)
    [staged] = staging.stage_cycles(own, stage, [3], KEY, workers=1)
    assert [f for f in spy.read if "enkat" not in f] == [changed]  # (the survey is never kept)
    after = {p.name for p in (stage / ".checked" / "cycle=3").iterdir()}
    assert len(after - before) == 1 and len(before - after) == 1  # the old version's entry removed
    audit = staged.audit.set_index("source_file")
    assert audit.loc[changed, "rows_read"] == len(lines) - 2  # header and the withdrawn row


def test_half_written_entries_go_once_they_are_an_hour_old(raw, tmp_path):
    """An entry a killed ingest left half written goes once it is RUN_MAX_SECONDS old; a
    younger one may be another run's, being written, and stays (a review's mutation swapped
    the two, unseen)."""
    import os
    import time

    stage = tmp_path / "staging"
    folder = stage / ".checked" / "cycle=3"
    folder.mkdir(parents=True)
    old, young = folder / ".a-killed.tmp", folder / ".b-writing.tmp"
    for entry in (old, young):
        entry.mkdir()
    hour_ago = time.time() - 3601
    os.utime(old, (hour_ago, hour_ago))
    list(staging.stage_cycles(raw, stage, [3], KEY, workers=1))
    assert not old.exists() and young.exists()


def test_a_changed_key_reads_every_file_again_and_old_entries_go(raw, tmp_path, monkeypatch):
    stage = tmp_path / "staging"
    list(staging.stage_cycles(raw, stage, [3], KEY, workers=1))
    before = {p.name for p in (stage / ".checked" / "cycle=3").iterdir()}

    other_key = PseudonymKey(b"another-secret", is_development=False)
    spy = _Counting(monkeypatch)
    list(staging.stage_cycles(raw, stage, [3], other_key, workers=1))
    assert len(spy.read) == len(before) + 1  # every kept file again, and the survey
    after = {p.name for p in (stage / ".checked" / "cycle=3").iterdir()}
    assert after.isdisjoint(before) and len(after) == len(before)  # the old key's entries removed


def test_a_damaged_entry_is_read_again(raw, tmp_path, monkeypatch):
    stage = tmp_path / "staging"
    first = list(staging.stage_cycles(raw, stage, [5], KEY, workers=1))
    for rows in (stage / ".checked" / "cycle=5").glob("*/rows.parquet"):
        rows.write_bytes(b"not parquet")
    spy = _Counting(monkeypatch)
    second = list(staging.stage_cycles(raw, stage, [5], KEY, workers=1))
    assert len(spy.read) > 1
    assert first[0].rows == second[0].rows
    pd.testing.assert_frame_equal(first[0].audit, second[0].audit)
    spy.read.clear()  # the damaged entries were replaced: the next build reads nothing again
    list(staging.stage_cycles(raw, stage, [5], KEY, workers=1))
    assert spy.read == []


_KILLED_PRUNE = """
import os, sys
from pathlib import Path
from iga_pipeline import checked_files
from iga_pipeline.pseudonym import PseudonymKey

real_unlink = os.unlink
def unlink(path, *args, **kwargs):  # the kill point: right after the removal's first file
    real_unlink(path, *args, **kwargs)
    os.kill(os.getpid(), 9)
os.unlink = unlink
# a fresh CheckedFiles has used nothing: its prune removes every entry of the cycle
checked_files.CheckedFiles(Path(sys.argv[1]), int(sys.argv[2]), PseudonymKey(sys.argv[3].encode(), is_development=False)).prune()
"""


def test_a_removal_cut_short_leaves_no_half_entry_for_the_next_build(raw, tmp_path):
    """F6: `prune` removed an entry in place; killed after its first file, it left the entry
    under its own name without that file, and `load` took it for the file's rows: without its
    interventions, every later build of the cycle failed (KeyError: 'source_row') until the
    store was deleted by hand (a review, with real kills). An entry is now renamed before it
    is removed, and `load` requires every frame its meta.json lists."""
    import signal
    import subprocess
    import sys

    stage = tmp_path / "staging"
    [first] = staging.stage_cycles(raw, stage, [8], KEY, workers=1)
    folder = stage / ".checked" / "cycle=8"
    whole = {entry.name: sorted(p.name for p in entry.iterdir()) for entry in folder.iterdir()}
    killed = subprocess.run([sys.executable, "-c", _KILLED_PRUNE, str(stage), "8", KEY.secret.decode()])
    assert killed.returncode == -signal.SIGKILL
    left = {entry.name: sorted(p.name for p in entry.iterdir()) for entry in folder.iterdir()
            if not entry.name.endswith(".tmp")}  # under its own name, an entry is whole or gone
    assert len(left) == len(whole) - 1 and all(files == whole[name] for name, files in left.items())
    [again] = staging.stage_cycles(raw, stage, [8], KEY, workers=1)
    assert again.rows == first.rows


def test_an_entry_missing_a_frame_is_read_again(raw, tmp_path, monkeypatch):
    """An entry whose meta.json lists a frame that is not there (a store from before F6's
    fix, or damage) is dropped and its file read again, not taken as a file without it."""
    stage = tmp_path / "staging"
    [first] = staging.stage_cycles(raw, stage, [8], KEY, workers=1)
    dropped = list((stage / ".checked" / "cycle=8").glob("*/interventions.parquet"))
    assert dropped  # Åstorp's exports have interventions
    for path in dropped:
        path.unlink()
    spy = _Counting(monkeypatch)
    [again] = staging.stage_cycles(raw, stage, [8], KEY, workers=1)
    assert len([f for f in spy.read if "enkat" not in f]) == len(dropped)
    assert again.rows == first.rows


def test_nothing_is_kept_while_pandera_is_switched_off(raw, tmp_path, monkeypatch):
    monkeypatch.setenv("PANDERA_VALIDATION_DEPTH", "SCHEMA_ONLY")  # rows would pass unchecked
    (staged,) = staging.stage_cycles(raw, tmp_path, [5], KEY, workers=1)
    assert staged.rows["participations"] > 0 and (tmp_path / "cycle=5").is_dir()  # staged all the same
    assert not (tmp_path / ".checked").exists()


def test_a_lower_workbook_limit_reads_the_workbook_again(raw, tmp_path, monkeypatch):
    list(staging.stage_cycles(raw, tmp_path, [1], KEY, workers=1))
    monkeypatch.setenv("IGA_MAX_WORKBOOK_ROWS", "10")
    spy = _Counting(monkeypatch)
    staged = list(staging.stage_cycles(raw, tmp_path, [1], KEY, workers=1))
    assert any(f.endswith(".xlsx") for f in spy.read)
    audit = staged[0].audit.set_index("source_kind").loc["petho"]
    assert audit["status"] == "rejected"


def test_keeping_is_best_effort(raw, tmp_path):
    (tmp_path / ".checked").mkdir(parents=True)
    (tmp_path / ".checked" / "cycle=5").write_text("not a folder")  # nothing can be kept there
    staged = list(staging.stage_cycles(raw, tmp_path, [5], KEY, workers=1))
    assert staged[0].rows["participations"] > 0
    assert (tmp_path / "cycle=5" / "participations.parquet").is_file()


def test_the_fingerprint_covers_every_module_the_ingest_runs():
    """Every module of the package that is loaded to ingest a file is hashed into the
    entries' key: an edit to any of them (whitespace.py was once missed) reads files again."""
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, iga_pipeline.ingest, iga_pipeline.checked_files\n"
         "print('\\n'.join(m.__file__ for n, m in sys.modules.items()\n"
         "                 if n.startswith('iga_pipeline') and getattr(m, '__file__', None)))"],
        capture_output=True, text=True, check=True).stdout.split()
    hashed = {str(p) for p in checked_files.fingerprinted_files()}
    assert {str(Path(f).resolve()) for f in loaded} - {str(Path(h).resolve()) for h in hashed} == set()
    assert any(p.name == "whitespace.py" for p in checked_files.fingerprinted_files())


def test_the_import_walk_follows_relative_imports_and_imports_inside_functions(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {"__init__.py": "", "a.py": "from .sub import b\n", "sub/__init__.py": "",
             "sub/b.py": "def f():\n    from ..c import X\n    from . import d\n",
             "c.py": "import pkg.e as e\nX = 1\n", "sub/d.py": "", "e.py": "", "unused.py": ""}
    for name, text in files.items():
        (pkg / name).write_text(text)
    found = {p.relative_to(pkg).as_posix() for p in checked_files.modules_reached(tmp_path, ["pkg.a"])}
    assert found == set(files) - {"unused.py"}


@pytest.mark.parametrize("kind", ["register", "survey"])  # read_checked (kept) and read (not kept)
@pytest.mark.parametrize("change", ["swap once", "chmod once", "swap always"])
def test_a_file_changed_while_it_is_read_is_read_again(raw, tmp_path, monkeypatch, kind, change):
    """A review: a delivery replaced by another version while the adapter read it, and put
    back before the read ended, was loaded with the other version's rows under its own
    sha256 (in the audit, and in the checked-files store for every later build). Now a file
    that changed meanwhile is read again: once steady, its own rows; a change of its
    metadata alone (a chmod) costs a second read, not the file; a file that changes at every
    read is rejected for this build."""
    import os

    copy = tmp_path / "raw"
    shutil.copytree(raw, copy)
    module = ingest.register if kind == "register" else ingest.survey
    rel = "kommuner/1277/deltagare_cykel3.csv" if kind == "register" else "enkater/enkat_cykel3.csv"
    path = copy / rel
    lines = path.read_bytes().splitlines(keepends=True)
    real, reads = module.read, []

    def changing(d, key):
        if d.source_file != rel:
            return real(d, key)
        reads.append(rel)
        if change == "chmod once" and len(reads) == 1:
            os.chmod(d.path, d.path.stat().st_mode)  # the same mode: the inode's change time moves
            return real(d, key)
        if change != "swap always" and len(reads) > 1:
            return real(d, key)
        other, original = tmp_path / "other.csv", tmp_path / "original.csv"
        other.write_bytes(b"".join(lines + lines[-1:]))  # the other version: its last row twice
        os.link(d.path, original)
        os.replace(other, d.path)
        try:
            return real(d, key)
        finally:
            os.replace(original, d.path)  # the first version back: same inode, size and mtime

    kept = tmp_path / "kept"
    monkeypatch.setattr(module, "read", changing)
    got = ingest_cycle(copy, 3, KEY, kept=checked_files.CheckedFiles(kept, 3, KEY))
    monkeypatch.setattr(module, "read", real)
    fresh = ingest_cycle(copy, 3, KEY)
    audit = got.audit.set_index("source_file").loc[rel]
    if change == "swap always":
        assert len(reads) == ingest.READ_ATTEMPTS
        assert (audit["status"], audit["reason"]) == ("rejected", "unreadable_file")
        said = got.issues[(got.issues["source_file"] == rel) & got.issues["source_row"].isna()]
        assert said["detail"].tolist() == [f"the file changed while it was read, {ingest.READ_ATTEMPTS} times "
                                           "(still being written?): the build after its next change reads it again"]
        assert not (got.issues["source_file"] == rel).sum() > 1  # the attempts' own issues are gone
        # its rows are held back, not lost: those of the version read last (its last row twice)
        assert audit["rows_read"] == audit["rows_rejected"] == fresh.audit.set_index("source_file").loc[
            rel, "rows_read"] + 1
    else:
        assert len(reads) == 2
        _assert_same(fresh, got)  # the file's own rows, issues and audit, once each

    spy = _Counting(monkeypatch)
    again = ingest_cycle(copy, 3, KEY, kept=checked_files.CheckedFiles(kept, 3, KEY))
    _assert_same(fresh, again)
    assert (rel in spy.read) == (change == "swap always" or kind == "survey")  # only a steady read is kept
