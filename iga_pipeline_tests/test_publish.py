"""The publish (warehouse/build.publish_build): the warehouse, the Parquet folder and the
report go live together, or not at all. Real files in a temporary folder; the failure is
real too (a pending report that is a folder cannot be renamed over a file)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from iga_pipeline.settings import Paths
from iga_pipeline.warehouse import build

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
    """A live warehouse, Parquet folder and report from an earlier build."""
    paths = Paths(raw_dir=tmp_path / "raw", warehouse=tmp_path / "wh" / "iga.duckdb")
    paths.warehouse_dir.mkdir()
    paths.warehouse.write_bytes(b"old warehouse")
    paths.parquet.mkdir()
    (paths.parquet / "outcomes_by_cycle.parquet").write_bytes(b"old parquet")
    paths.report_dir.mkdir()
    (paths.report_dir / "index.html").write_text("old report")
    return paths


def test_a_publish_puts_all_three_live_and_keeps_nothing_aside(paths):
    _pending(paths)
    build.publish_build(paths, RUN)
    assert _live(paths) == {"warehouse": "new warehouse", "parquet": "new parquet", "report": "new report"}
    assert _set_aside_left(paths) == []
    assert not build.candidate_path(paths.warehouse, RUN).exists()


def test_a_swap_that_fails_puts_the_earlier_ones_back(paths):
    """The report's swap fails after the warehouse and the Parquet folder have gone live:
    both are put back, and the error is not swallowed. The new ones are pending again, so a
    re-execution of the step publishes them once the cause is mended."""
    _pending(paths, report_is_a_folder=True)
    with pytest.raises(OSError):
        build.publish_build(paths, RUN)
    assert _live(paths) == {"warehouse": "old warehouse", "parquet": "old parquet", "report": "old report"}
    assert _set_aside_left(paths) == []
    assert build.candidate_path(paths.warehouse, RUN).read_bytes() == b"new warehouse"
    assert (paths.pending_parquet(RUN) / "outcomes_by_cycle.parquet").read_bytes() == b"new parquet"

    shutil.rmtree(paths.pending_report(RUN))
    paths.pending_report(RUN).write_text("new report")
    build.publish_build(paths, RUN)
    assert _live(paths) == {"warehouse": "new warehouse", "parquet": "new parquet", "report": "new report"}


def test_a_parquet_folder_that_is_a_link_is_put_back_as_the_link(paths, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    paths.parquet.rename(elsewhere)
    paths.parquet.symlink_to(elsewhere, target_is_directory=True)
    _pending(paths, report_is_a_folder=True)
    with pytest.raises(OSError):
        build.publish_build(paths, RUN)
    assert paths.parquet.is_symlink() and paths.parquet.resolve() == elsewhere.resolve()
    assert _live(paths) == {"warehouse": "old warehouse", "parquet": "old parquet", "report": "old report"}


def test_a_first_publish_that_fails_leaves_no_warehouse(tmp_path):
    paths = Paths(raw_dir=tmp_path / "raw", warehouse=tmp_path / "wh" / "iga.duckdb")
    paths.warehouse_dir.mkdir()
    paths.report_dir.mkdir()
    (paths.report_dir / "index.html").write_text("a report of no build")
    _pending(paths, report_is_a_folder=True)
    with pytest.raises(OSError):
        build.publish_build(paths, RUN)
    assert _live(paths) == {"warehouse": None, "parquet": None, "report": "a report of no build"}
    assert not paths.parquet.exists()
    assert build.candidate_path(paths.warehouse, RUN).read_bytes() == b"new warehouse"
