"""Writes that survive a power cut, not only a killed process.

A rename is atomic for every process reading the folder, but after a power cut the file
system may keep the rename and lose the data written before it: a torn file under the new
name. So what was written is flushed to disk (`sync`) before the rename, and the rename
itself (`fsync` of the folder) after it. `replace` does all three."""

from __future__ import annotations

import os
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
