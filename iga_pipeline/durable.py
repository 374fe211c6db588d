"""Writes that survive a power cut, not only a killed process.

A rename is atomic for every process reading the folder, but after a power cut the file
system may keep the rename and lose the data written before it: a torn file under the new
name. So what was written is flushed to disk (`sync`) before the rename, and the rename
itself (`fsync` of the folder) after it. `replace` does all three.

A folder cannot be renamed over a folder that holds files, so one is replaced by two renames
(`swap_dir`): the old one aside, the new one in its place. A kill between the two leaves the
old one aside and nothing in its place; `put_back` undoes that. What a swap or a killed
write left goes with `remove`."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path


def fsync(path: Path) -> None:
    """Flush one file, or one folder's names (not its files), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync(path: Path) -> None:
    """Flush a file, or a folder with everything in it, to disk."""
    path = Path(path)
    if path.is_dir():
        for entry in path.iterdir():
            sync(entry)
    fsync(path)


def replace(src: Path, dst: Path) -> None:
    """`os.replace(src, dst)`, durable: src's content before the rename, the rename after it."""
    sync(src)
    os.replace(src, dst)
    fsync(Path(dst).parent)


def swap_dir(new: Path, target: Path) -> Path | None:
    """Put the folder `new`, flushed already, in place of the folder `target`: `target` aside
    to `.<name>.<time>-<hex>.old` beside it, `new` renamed into place, the renames flushed. A reader
    may, for an instant, find `target` missing, but never a mixture of two folders' files.
    Returns where the old folder went (None if there was none), for the caller to remove."""
    new, target = Path(new), Path(target)
    old = None
    if os.path.lexists(target):
        old = target.with_name(f".{target.name}.{time.time_ns()}-{uuid.uuid4().hex[:6]}.old")
        os.replace(target, old)
    os.replace(new, target)
    fsync(target.parent)
    return old


def left_aside(target: Path) -> list[Path]:
    """The folders `swap_dir` set aside for `target` and nobody removed, the last set aside
    first. The order is the swaps' (the time in the name), not the folders' modification
    times: a folder whose removal was cut short has a newer one than the folder a later swap
    set aside, and must not be the one put back."""
    target = Path(target)

    def swapped_at(aside: Path) -> tuple[int, int]:
        stamp = aside.name[len(target.name) + 2:].partition("-")[0]
        try:  # a name without a time (not swap_dir's): by its modification time, before the rest
            return (int(stamp), 0) if stamp.isdigit() else (-1, aside.stat().st_mtime_ns)
        except FileNotFoundError:  # removed meanwhile
            return (-1, -1)

    return sorted(target.parent.glob(f".{target.name}.*.old"), key=swapped_at, reverse=True)


def put_back(target: Path) -> Path | None:
    """Undo a `swap_dir` killed between its two renames: with `target` missing, the folder
    set aside for it last goes back in its place. Returns that folder's name as it was
    (None if nothing was put back). The caller holds whatever lock its swaps take."""
    target = Path(target)
    aside = left_aside(target)
    if not aside or os.path.lexists(target):
        return None
    os.replace(aside[0], target)
    fsync(target.parent)
    return aside[0]


def remove(path: Path | None) -> None:
    """Remove `path`, whatever it is: a folder with all it holds, a file, a link (not what it
    points to); nothing if nothing is there."""
    if path is None or not os.path.lexists(path):
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
