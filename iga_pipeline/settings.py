"""Where things are (the raw root, the warehouse file and its neighbours), and the
numeric settings (README, "Configuration"); what is wrong with them before anything
is read (`Paths.problems`); and which warehouse a DAGSTER_HOME holds
(`claim_instance`, `instance_problem`).

Read from the environment at call time (never at import), with the
contract's defaults: IGA_RAW_DIR (data/raw) and IGA_WAREHOUSE
(warehouse/iga.duckdb), relative to the working directory.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

# The longest a run may last: `dagster dev`'s instance ends a run still going after it
# (dagster/max_runtime, defs/automation.py). A half-written file or folder older than that
# (staging, checked rows, candidates, pending exports) is what a run that died left, and is
# removed; a younger one may be another run's, in progress. The 10M full build took 410-576 s
# in the benchmarks (docs/performance.md).
RUN_MAX_SECONDS = 3600


@dataclass(frozen=True)
class Paths:
    raw_dir: Path
    warehouse: Path

    @property
    def warehouse_dir(self) -> Path:
        return self.warehouse.parent

    @property
    def staging(self) -> Path:
        return self.warehouse_dir / "staging"

    @property
    def parquet(self) -> Path:
        return self.warehouse_dir / "parquet"

    @property
    def report_dir(self) -> Path:
        return self.warehouse_dir / "report"

    # A build renders the report and the Parquet files from its candidate
    # warehouse into these pending places; warehouse/published swaps them in
    # right after the warehouse itself.
    def pending_report(self, run_id: str) -> Path:
        return self.report_dir / f".index.html.{run_id}.pending"

    def pending_parquet(self, run_id: str) -> Path:
        return self.warehouse_dir / f".parquet.{run_id}.pending"

    def problems(self) -> list[str]:
        """Why these paths cannot be built, checked before anything is written: a publish
        replaces what is at the warehouse path (a review once lost a folder, the raw root
        with it, given as --warehouse)."""
        found = []
        w, raw = self.warehouse, self.raw_dir
        # compared as the folders they are: through links, and with any '..' gone
        real_raw, real_dir = _real(raw), _real(self.warehouse_dir)
        # os.path's tests, not Path's: a path in a folder this user may not enter is not one (Path's raise)
        if os.path.isdir(w):
            found.append(f"the warehouse {w} is a folder: name the warehouse file in it (say {w / 'iga.duckdb'})")
        elif os.path.isfile(w) and not _is_duckdb_file(w):
            found.append(f"the warehouse {w} is a file DuckDB did not write: a build would replace it")
        report = self.report_dir / "index.html"  # the one file of report/ a publish replaces
        if os.path.isdir(report) and not os.path.islink(report):  # never the pipeline's: a publish
            # moved it aside and removed it, its files with it, exit 0
            found.append(f"{report} is a folder, and a build would replace it with its report: move that folder away")
        # the folder the build writes in, or the nearest one it makes it in: a file there, or a folder
        # this user may not write to, failed the first step with a traceback
        made = next((p for p in (self.warehouse_dir, *self.warehouse_dir.parents) if os.path.exists(p)), None)
        where = f"the warehouse's folder {self.warehouse_dir}" + ("" if made == self.warehouse_dir
                                                                  else f" cannot be made: {made}")
        if made is not None and not os.path.isdir(made):
            found.append(f"{where} is a file")
        elif made is not None and not os.access(made, os.W_OK | os.X_OK):
            found.append(f"{where} is on a read-only file system" if _read_only_mount(made) else
                         f"{where} is not writable by this user: choose a warehouse in a folder it may write to")
        if _within(real_dir, real_raw):
            found.append(f"the warehouse {w} is inside the raw root {raw}: its files would be read as deliveries")
        if any(c in GLOB_CHARACTERS for c in str(self.warehouse_dir)):
            # DuckDB expands them in the staging's paths: 'wh[1]' read the staging of 'wh1'
            found.append(f"the warehouse's folder {self.warehouse_dir} holds one of {' '.join(GLOB_CHARACTERS)}, "
                         "which DuckDB reads as a pattern of file names: choose a folder without them")
        if not _utf8_name(self.warehouse):  # DuckDB and Arrow open a file by its name's UTF-8 bytes: a
            # name of other bytes failed after the whole ingest (a UnicodeEncodeError; under a Latin-1
            # locale, 'Ö' as the file system holds it was a FileNotFoundError) (a review's find)
            found.append("the warehouse's path is not UTF-8 as the file system holds it (in this locale), "
                         "and DuckDB and Arrow open files by UTF-8 names: choose a path that is, "
                         "or run in a UTF-8 locale")
        # The folders a build replaces whole (the Parquet exports on publish, the checks' `gx` on every
        # build): before a first build, such a folder the pipeline did not write (a warehouse put in a
        # home folder) lost its files, exit 0. A `gx` of a build that
        # failed is the pipeline's: it holds the checks' record of validated cycles; and so is a folder
        # a publish was ever begun in (its lock): one killed midway left no warehouse, the next undoes it.
        # A Parquet folder of nothing but the marts' exports is the pipeline's too: the warehouse
        # file deleted to build anew.
        if not os.path.lexists(w) and not os.path.lexists(self.warehouse_dir / ".publish.lock"):
            from iga_pipeline.warehouse.catalog import MARTS

            exports = {f"{m.name}.parquet" for m in MARTS}
            elsewhere = f"put the warehouse in a folder of its own (say {self.warehouse_dir / 'iga' / w.name})"
            for output, ours in ((self.parquet, lambda held: set(held) <= exports),
                                 (self.warehouse_dir / "gx", lambda held: "validated_cycles.json" in held)):
                try:
                    held = os.listdir(output)
                except OSError:
                    continue
                if held and not ours(held):
                    found.append(f"{output} holds files, and a first build would replace that folder with its own: "
                                 f"{elsewhere}, or move those files away")
            report_ours = _is_our_report(report) if os.path.isfile(report) else True
            if not report_ours:
                why = "is not" if report_ours is False else "cannot be read by this user, so may not be"
                found.append(f"{report} {why} this pipeline's report, and a first build would replace it with its own: "
                             f"{elsewhere}, or move that file away")
        # the folders a build writes, and replaces (the checks' `gx` beside them)
        for output in (self.staging, self.parquet, self.report_dir, self.warehouse_dir / "gx"):
            real = _real(output)
            if _within(real_raw, real):
                found.append(f"the raw root {raw} is inside {output}, a folder the build writes: "
                             "a build would replace or add to the deliveries")
            elif _within(real, real_raw):  # the folder is a link into the raw root
                found.append(f"{output}, a folder the build writes, is inside the raw root {raw}: "
                             "its files would be read as deliveries")
        return found

    @classmethod
    def from_env(cls, raw_dir: str | os.PathLike | None = None,
                 warehouse: str | os.PathLike | None = None) -> "Paths":
        for what, given in (("raw root", raw_dir), ("warehouse", warehouse)):
            if given is not None and not str(given).strip():  # a file or folder named ' ' (an audit's
                # note): a blank variable means unset, but a blank value given here is a mistake
                raise SettingError(f"the {what} is blank: name it, or leave it out")
        raw = raw_dir or _unless_blank("IGA_RAW_DIR") or "data/raw"
        wh = warehouse or _unless_blank("IGA_WAREHOUSE") or "warehouse/iga.duckdb"
        if str(wh).endswith(("/", os.sep)) or os.path.basename(wh) in (".", ".."):  # 'wh/' (and 'wh/.', which
            # Path reads as 'wh') built a file 'wh' and its staging, Parquet, report and gx folders beside it,
            # replacing any of those names there
            raise SettingError(f"the warehouse {wh} names a folder: name the warehouse file in it "
                               f"(say {Path(wh) / 'iga.duckdb'})")
        # '~' as Dagster reads DAGSTER_HOME: a quoted '~/wh/iga.duckdb' made a folder named '~'
        return cls(Path(raw).expanduser().absolute(), Path(wh).expanduser().absolute())


def _unless_blank(name: str) -> str | None:
    """Environment variable `name`, None when unset or blank, as the other settings read a blank
    value: IGA_WAREHOUSE=' ' built a file named ' ' in the working folder (an audit's note)."""
    value = os.environ.get(name, "")
    return value if value.strip() else None


GLOB_CHARACTERS = "*?[]\\"  # and '\\', which DuckDB reads as '/' (a file in another folder)


def _utf8_name(path: Path) -> bool:
    """Whether the bytes of `path` on the file system are its UTF-8 encoding."""
    try:
        return str(path).encode("utf-8") == os.fsencode(path)
    except UnicodeEncodeError:  # a byte of no character, kept as a lone surrogate
        return False


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _real(path: Path) -> Path:
    """`path` through its links, with '..' gone; if a link loops, only '..' gone (the build
    then fails where it opens it)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return Path(os.path.normpath(path))


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _is_duckdb_file(path: Path) -> bool:
    """An empty file, or one with DuckDB's magic bytes ('DUCK' after an 8-byte checksum)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return True  # not readable here: DuckDB says what is wrong when it opens it
    return head == b"" or head[8:12] == b"DUCK"


REPORT_GENERATOR = '<meta name="generator" content="iga-pipeline">'  # in the report's <head>


def _is_our_report(path: Path) -> bool | None:
    """A report this pipeline rendered: its generator tag, or (rendered before that tag was
    added, 2026-12-03) its title. None: not readable by this user, so not known to be ours
    (the publish replaces it all the same: renaming needs only its folder writable)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    return REPORT_GENERATOR.encode() in head or b"<title>Integration Genom Arbete" in head


class SettingError(ValueError):
    """An IGA_* variable with a value the pipeline cannot use; the message names it."""


def number(name: str, default: float, whole: bool = False) -> float:
    """The positive number in environment variable `name` (`default` when unset or blank)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or value == float("inf"):
        kind = "a whole number" if whole else "a number"
        raise SettingError(f"{name}={text!r} is not {kind} above 0")
    return value


def ingest_workers() -> int | None:
    """IGA_INGEST_WORKERS: cycles ingested at once; None when unset (staging decides)."""
    return int(number("IGA_INGEST_WORKERS", 0, whole=True)) or None


def megabytes(name: str, default: float) -> int:
    """A size in MB from environment variable `name`, in bytes, an MB being 2**20 bytes (a MiB;
    IGA_DUCKDB_MEMORY's sizes are DuckDB's, whose MB is 10**6): at least one byte, at most a
    petabyte (`1e-9` would be no byte, and `1e308` no whole number)."""
    size = number(name, default) * 1024 * 1024
    if not 1 <= size <= 1e9 * 1024 * 1024:
        text = os.environ.get(name, "").strip()
        raise SettingError(f"{name}={text!r} is not a size in MB from one byte (0.000001) to a petabyte (1e9)")
    return int(size)


def max_file_bytes() -> int:
    """The largest raw file the pipeline reads (IGA_MAX_FILE_MB, default 2048 MB)."""
    return megabytes("IGA_MAX_FILE_MB", 2048)


def max_workbook_rows() -> int:
    """The most data rows read from one worksheet (IGA_MAX_WORKBOOK_ROWS, default 100 000)."""
    return int(number("IGA_MAX_WORKBOOK_ROWS", 100_000, whole=True))


def max_workbook_bytes() -> int:
    """The most a workbook may unpack to (IGA_MAX_WORKBOOK_MB, default 512 MB): an .xlsx is a
    zip, and a few hundred kilobytes of it can inflate to gigabytes in memory."""
    return megabytes("IGA_MAX_WORKBOOK_MB", 512)


# The least memory a build's DuckDB is given: the bundled data built with 32 MB and failed
# with 10 MB (out of memory); larger data spill to disk beyond the limit.
MIN_DUCKDB_MEMORY = 30.5 * 2**20  # 32MB as DuckDB reads it back ('30.5 MiB': to a tenth of a MiB)
_BINARY_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}


def duckdb_memory() -> str | None:
    """IGA_DUCKDB_MEMORY as DuckDB reads it (a size: 2GB, 512MB); None when unset."""
    setting = os.environ.get("IGA_DUCKDB_MEMORY", "").strip()
    if not setting:
        return None
    import duckdb

    too_small = SettingError(f"IGA_DUCKDB_MEMORY={setting!r} is less than the 32MB a build needs")
    try:  # DuckDB's own reading of it, on a database of nothing
        # DuckDB reads '-1' (any negative) and 'none' as no limit at all
        if "'" in setting or setting.startswith("-") or setting == "none":
            raise duckdb.Error("a quote, or no limit")
        with duckdb.connect() as con:
            con.execute(f"SET memory_limit = '{setting}'")
            read = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]  # '61.0 MiB'
    except duckdb.OutOfMemoryException:  # '1KB', '0GB': too little to set it at all
        raise too_small from None
    except duckdb.Error:
        raise SettingError(f"IGA_DUCKDB_MEMORY={setting!r} is not a size DuckDB knows "
                           "(say 2GB or 512MB)") from None
    amount, unit = read.split()
    limit = float(amount) * _BINARY_UNITS.get(unit, 1)
    if limit < MIN_DUCKDB_MEMORY:
        raise too_small
    memory = usable_memory()
    if limit > memory:  # DuckDB would run out of memory before it spills
        raise SettingError(f"IGA_DUCKDB_MEMORY={setting!r} is more than this machine's "
                           f"{memory / 2**30:.1f} GiB of memory: DuckDB would run out of it before "
                           "it spills to disk (say at most half of it)")
    return setting


def cpus() -> int:
    """The cores this process may run on: the machine's (`os.cpu_count`), or fewer when its CPU
    affinity says so (`taskset`, a container's cpuset)."""
    machine = os.cpu_count() or 1
    try:
        return max(1, min(machine, len(os.sched_getaffinity(0))))
    except (AttributeError, OSError):  # not Linux
        return machine


CGROUP_ROOT, PROC_CGROUP = Path("/sys/fs/cgroup"), Path("/proc/self/cgroup")


def usable_memory() -> int:
    """The memory this process may use, in bytes: the machine's, or the lowest memory limit of
    its cgroups when lower (a container's, or a service's: `_cgroup_limits`)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        memory = 8 * 2**30
    return min([memory, *_cgroup_limits()])


def _cgroup_limits() -> list[int]:
    """The memory limits of this process's cgroup and the ones above it: cgroup v2's memory.max
    and v1's memory.limit_in_bytes ('max', or a huge number, for none). Only v2's at the root was
    read: a v1 host's container limit, and a systemd service's MemoryMax, were not. A
    container sees its own cgroup as the root, whatever /proc names."""
    places = [(CGROUP_ROOT, "memory.max"), (CGROUP_ROOT / "memory", "memory.limit_in_bytes")]
    try:
        lines = PROC_CGROUP.read_text().splitlines()  # '0::/system.slice/x.service', '4:memory:/docker/...'
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "" or "memory" in controllers.split(","):
            base, name = places[0] if controllers == "" else places[1]
            folder = base / path.strip("/")
            while folder != base and ".." not in path.split("/"):  # '..': outside this namespace, its root read
                places.append((folder, name))
                folder = folder.parent
    limits = []
    for folder, name in places:
        try:
            text = (folder / name).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            limits.append(int(text))
    return limits


def setting_problems() -> list[str]:
    """What is wrong with the IGA_* settings, checked before a build starts: a bad value
    would otherwise fail a step halfway, or reject every file it concerns."""
    found = []
    for read in (ingest_workers, max_file_bytes, max_workbook_rows, max_workbook_bytes, duckdb_memory):
        try:
            read()
        except SettingError as e:
            found.append(str(e))
    return found


def require_valid() -> None:
    """Raise SettingError with every problem of the settings (for the steps of a run)."""
    found = setting_problems()
    if found:
        raise SettingError("; ".join(found))


# --- one Dagster instance, one warehouse ----------------------------------------------------

INSTANCE_MARK = "iga-warehouse"  # in the instance's folder: the warehouse whose runs it holds


def claim_instance(home: Path, warehouse: Path) -> str | None:
    """Record that the Dagster instance in `home` holds the runs of `warehouse` (the first run
    to use it records it); a problem, if it holds another warehouse's.

    Runs of two warehouses in one instance mix their materialisations, and the deployment's
    automation then takes a CLI build's marts of another warehouse for its own, so a delivery
    it had ingested was never published. The record appears
    whole or not at all (a link of a complete temporary file): two first runs at once each
    read one warehouse or the other, never an empty name."""
    mark = Path(home) / INSTANCE_MARK
    if not mark.exists():
        tmp = mark.with_name(f".{INSTANCE_MARK}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_text(str(Path(warehouse).resolve()) + "\n", encoding="utf-8")
            os.link(tmp, mark)  # fails if another run recorded one meanwhile: that one holds
        except OSError:
            pass  # recorded by another run, or a read-only instance folder (Dagster says so)
        finally:
            tmp.unlink(missing_ok=True)
    return instance_problem(home, warehouse)


def instance_problem(home: Path, warehouse: Path) -> str | None:
    """Whether the instance in `home` holds another warehouse's runs (recording nothing)."""
    mark = Path(home) / INSTANCE_MARK
    mine = str(Path(warehouse).resolve())
    try:
        recorded = mark.read_text(encoding="utf-8").strip()
    except OSError:
        return None  # none recorded yet (or unreadable: Dagster will say so itself)
    if recorded == mine:
        return None
    return (f"the Dagster instance {home} holds the runs of the warehouse {recorded}, not of "
            f"{mine}: one instance's runs of two warehouses mix, and its automation would take "
            f"this build's marts for its own. Give this warehouse a DAGSTER_HOME of its own (or "
            f"unset DAGSTER_HOME), or, if the warehouse has moved, delete {mark}")
