"""How the data engineer's pipeline runs by itself (all started by `dagster dev`):

* `nightly_build`: every night at 02:30 Stockholm time, every cycle, then publish.
* `raw_delivery_sensor`: every 30 s, hashes the files under the raw root and
  asks for an ingest run of each cycle whose files are new, changed or gone.
  A file touched without a change in content requests nothing. A file of no
  cycle (misnamed, stray) that comes (and has been still for the settle time)
  or goes asks for a run of `raw/inventory` alone, unless a cycle's run (which
  lists them too) is asked for in the same tick. Run keys
  carry the cursor's generation (the count of ticks that asked for runs), so
  re-evaluating a tick gives the same keys (Dagster launches nothing twice)
  while a later delivery never reuses an earlier key, even when it brings
  back content seen before (v1, v2, v1, v2: Dagster skips a used key forever).
* `warehouse_automation`: the marts are requested once an ingest run has
  refreshed a cycle after their last build (`MARTS_AUTOMATION`, Dagster's
  eager with the update times compared), and everything after them with
  them (`WITH_THE_MARTS`): the warehouse is rebuilt and published from all
  cycles' staging. Both conditions are in `defs/assets.py`, on the assets
  they are set on; this sensor only evaluates them.
"""

import json
import time
from pathlib import Path

from dagster import (
    AssetSelection, AutomationConditionSensorDefinition, DefaultScheduleStatus,
    DefaultSensorStatus, RunRequest, ScheduleEvaluationContext, SensorEvaluationContext,
    SensorResult, SkipReason, define_asset_job, schedule, sensor,
)

from iga_pipeline.defs.assets import (
    BUILD_ALL, INVENTORY, RANGE_END, RANGE_START, RAW, cycles_partitions, harmonised_key,
)
from iga_pipeline.defs.resources import IGAResource
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.settings import RUN_MAX_SECONDS
from iga_pipeline.sources.common import Delivery, discover, sha256_of
from iga_pipeline.warehouse.catalog import HARMONISED

# A run the daemon launches again (run_retries, .dagster_home/dagster.yaml) runs every step
# again, a fresh build from the staging as it is then: what failed is the machine's, and may
# have left a step's files half-made. (From the failed step, Dagster's default, a retry once
# found no candidate warehouse, named after the failed run's id: it checked and exported the
# live warehouse and could not publish. The files are now named after the
# run group, `build_id`, which a re-execution from the UI relies on.)
RETRY_TAGS = {"dagster/retry_strategy": "ALL_STEPS"}

# Runs that ingest carry this tag: the instance (.dagster_home/dagster.yaml) runs at most
# two of them at once, however many cycles the delivery sensor asks for in one tick. It
# also ends any such run still going after an hour (run monitoring): the code server
# marks a run whose process dies as failed at once, but not while the code server itself is
# down, and such a run would hold its place in the queue, and hold up the automation, for
# ever. Ended as failed, it is launched again (run_retries). An hour is several times the 10M
# full build (docs/performance.md).
INGEST_TAGS = {"iga/ingest": "queued", "dagster/max_runtime": str(RUN_MAX_SECONDS), **RETRY_TAGS}
# `iga-pipeline build` runs in process, past the queue: its runs do not take a place in it.
# Nor are they retried by the daemon (.dagster_home/dagster.yaml): it can only launch again a
# run that it can launch at all, and the command's exit status tells its caller.
IN_PROCESS_TAGS = {"iga/ingest": "in-process", "dagster/max_retries": "0"}

build_all = define_asset_job(
    BUILD_ALL, selection=AssetSelection.all(), tags=INGEST_TAGS,
    description="Every asset and every cycle partition once, then publish.",
)

ingest_cycle_job = define_asset_job(
    "ingest_cycle",
    # raw/inventory too (the files of no cycle; not partitioned, and quick): the marts read its
    # file, and on a new deployment the sensor's runs are the only runs before the automation's.
    selection=AssetSelection.assets(RAW, INVENTORY, *[harmonised_key(n) for n in HARMONISED]),
    tags=INGEST_TAGS,
    description="Re-read one cycle's deliveries into staging, and list the files of no cycle; "
                "the warehouse follows by automation.",
)

inventory_job = define_asset_job(
    "list_unexpected_files", selection=AssetSelection.assets(INVENTORY), tags=INGEST_TAGS,
    description="List the files of the raw root that belong to no cycle (unexpected_file), when "
                "one comes or goes and no cycle changed; the warehouse follows by automation.",
)


def cycle_range_tags(first: str, last: str) -> dict[str, str]:
    """The tags that make a run cover the cycles first..last (a range run: one step per asset)."""
    return {RANGE_START: first, RANGE_END: last}


def all_cycles_tags() -> dict[str, str]:
    keys = cycles_partitions.get_partition_keys()
    return cycle_range_tags(keys[0], keys[-1])


@schedule(job=build_all, cron_schedule="30 2 * * *", execution_timezone="Europe/Stockholm",
          default_status=DefaultScheduleStatus.RUNNING,
          description="Nightly: every cycle's deliveries, the warehouse, the checks, the publish.")
def nightly_build(context: ScheduleEvaluationContext) -> RunRequest:
    return RunRequest(run_key=None, tags=all_cycles_tags())


# What the cursor keeps of a file: a list (JSON), read by these positions.
SIZE, MTIME, SHA256, CYCLE, CTIME = range(5)


def scan(raw_dir: Path, previous: dict[str, list], settle_seconds: float = 0,
         found: list[Delivery] | None = None, waiting: set[int] | None = None) -> dict[str, list]:
    """{source_file: [size, mtime_ns, sha256, cycle, ctime_ns]} for every delivery of a cycle
    (of `found`, the raw root's files as `discover` lists them, if given).

    A file changed (mtime or ctime) less than `settle_seconds` ago may still be arriving:
    it keeps its previous entry (a new one is left out) until it has been still that
    long, so that no half-written delivery is ingested (a half-written delivery was once published).
    Every file of its cycle keeps its previous entry meanwhile: the cycle's ingest reads
    all of them, so a settled file beside it would have brought the half-written one in.

    A file deleted waits the same: while the folder it was in has changed within
    `settle_seconds`, its cycle keeps its previous entries (deleted, then uploaded again).

    A file whose size, mtime and ctime are unchanged keeps its previous hash;
    any other file is hashed again, so a touch without a change costs one read
    and requests nothing. The ctime (which no copy can set) catches a corrected
    file of the same size copied over with its mtime kept (`cp -p`, an archive). Files of
    no cycle are left to `stray_ids`. A refused delivery (a link out of the raw root or to nothing,
    a file too large) is never opened: the link itself is fingerprinted, so
    its cycle is still asked for and ingestion records the refusal.

    `waiting`, if given, gets the cycles held back so (the sensor says so in its tick)."""
    state = {}
    arriving: set[int] = set() if waiting is None else waiting  # cycles with a file still arriving
    for d in discover(raw_dir) if found is None else found:
        if d.cycle is None:
            continue
        try:
            st = d.path.lstat() if d.refused else d.path.stat()
        except OSError:
            continue  # gone since it was listed: left out, like a deleted file
        old = previous.get(d.source_file)
        # (an entry of an older cursor has no ctime: its file is hashed again)
        if old and old[SIZE] == st.st_size and old[MTIME] == st.st_mtime_ns and old[CTIME:] == [st.st_ctime_ns]:
            state[d.source_file] = old
            continue
        if time.time() - max(st.st_mtime, st.st_ctime) < settle_seconds:  # still arriving
            arriving.add(d.cycle)
            continue
        try:
            digest = (f"refused:{st.st_size}:{st.st_mtime_ns}" if d.refused
                      else sha256_of(d.path))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue  # gone (or not a file) since it was listed: left out like a deleted file
        except OSError as e:  # not readable (permissions): its cycle is still asked for, and
            digest = f"unreadable:{type(e).__name__}:{st.st_size}:{st.st_mtime_ns}"  # ingestion says why
        state[d.source_file] = [st.st_size, st.st_mtime_ns, digest, d.cycle, st.st_ctime_ns]
    if settle_seconds:  # a file gone a moment ago may be coming back (deleted, then uploaded
        now = time.time()  # again: a review saw the cycle published without it meanwhile)
        for name, old in previous.items():
            if name not in state and old[CYCLE] not in arriving and _folder_changed_within(
                    Path(raw_dir), name, settle_seconds, now):
                arriving.add(old[CYCLE])
    if arriving:  # the cycle as it was: its files' previous entries, deleted ones included
        state = {f: e for f, e in state.items() if e[CYCLE] not in arriving}
        state.update({f: e for f, e in previous.items() if e[CYCLE] in arriving})
    return state


def _folder_changed_within(raw_dir: Path, source_file: str, seconds: float, now: float) -> bool:
    """Whether the folder a file was in (or, if that went too, the nearest one left) had an
    entry added or removed less than `seconds` ago: a deletion leaves no file to date, but it
    dates its folder. Any entry counts, so this errs on the side of waiting."""
    folder = (raw_dir / source_file).parent
    while folder != raw_dir and raw_dir in folder.parents and not folder.is_dir():
        folder = folder.parent
    try:
        return now - folder.stat().st_mtime < seconds
    except OSError:
        return False


def changed_cycles(previous: dict[str, list], current: dict[str, list]) -> dict[int, list[str]]:
    """Cycle -> the files (new, changed by content, or deleted) that concern it."""
    changed: dict[int, list[str]] = {}
    for name in sorted(set(previous) | set(current)):
        old, new = previous.get(name), current.get(name)
        if old and new and old[SHA256] == new[SHA256]:
            continue
        cycle = (new or old)[CYCLE]
        if cycle is not None:
            changed.setdefault(int(cycle), []).append(name)
    return changed


def stray_ids(found: list[Delivery], previous: set[str], settle_seconds: float, key: PseudonymKey) -> list[str]:
    """An id for each file of no cycle (raw/inventory lists them by name): the name keyed
    with the pseudonym key (HMAC), so that the cursor, which Dagster stores and shows, holds
    no name of a file, nor an unkeyed hash that a list of names or birth dates would undo.
    Such a file is never opened. A new one counts once it has been still for
    `settle_seconds`: an upload's temporary file or an editor's lock file comes and goes."""
    ids = set()
    for d in found:
        if d.cycle is not None:
            continue
        sid = key.fingerprint(f"stray|{d.source_file}")[:16]
        if sid not in previous:
            try:
                st = d.path.lstat()
            except OSError:
                continue  # gone since it was listed
            if time.time() - max(st.st_mtime, st.st_ctime) < settle_seconds:
                continue  # still arriving, or about to go
        ids.add(sid)
    return sorted(ids)


@sensor(jobs=[ingest_cycle_job, inventory_job], minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="New or changed raw files (by content hash) -> an ingest run per affected cycle; "
                    "a file of no cycle that comes or goes -> a run of raw/inventory.")
def raw_delivery_sensor(context: SensorEvaluationContext, iga: IGAResource):
    raw_dir = iga.paths().raw_dir
    if not raw_dir.is_dir():
        return SkipReason(f"raw root {raw_dir} does not exist")
    generation, previous, previous_strays = load_cursor(context.cursor)
    key = iga.pseudonym_key()
    found = discover(raw_dir, key)
    waiting: set[int] = set()
    current = scan(raw_dir, previous, iga.settle_seconds, found, waiting)
    strays = stray_ids(found, set(previous_strays), iga.settle_seconds, key)
    changed = changed_cycles(previous, current)
    strays_changed = set(strays) ^ set(previous_strays)
    held = (f"waiting: cycle(s) {', '.join(map(str, sorted(waiting)))} had a file changed or removed "
            f"less than {iga.settle_seconds:g} s ago, ingested once still" if waiting else None)
    if not changed and not strays_changed:
        reason = f"nothing to ingest yet; {held}" if held else "no new or changed deliveries"
        return SensorResult(skip_reason=SkipReason(reason), cursor=dump_cursor(generation, current, strays))
    if held:
        context.log.info(held)
    generation += 1
    requests = []
    for cycle, files in sorted(changed.items()):
        digest = sha256_of_text("|".join(f"{f}:{current[f][SHA256] if f in current else None}" for f in files))
        requests.append(RunRequest(
            job_name=ingest_cycle_job.name,
            partition_key=str(cycle), run_key=f"cycle-{cycle}-{generation}-{digest[:16]}",
            tags={"iga/trigger": "raw_delivery_sensor", "iga/files": str(len(files))},
        ))
        context.log.info(f"cycle {cycle}: {len(files)} new or changed file(s)")
    if strays_changed and not changed:  # a cycle's run lists the files of no cycle too
        digest = sha256_of_text("|".join(strays))
        requests.append(RunRequest(
            job_name=inventory_job.name, run_key=f"inventory-{generation}-{digest[:16]}",
            tags={"iga/trigger": "raw_delivery_sensor", "iga/files": str(len(strays_changed))},
        ))
        context.log.info(f"{len(strays_changed)} file(s) of no cycle came or went")
    return SensorResult(run_requests=requests, cursor=dump_cursor(generation, current, strays))


CURSOR_VERSION = 2


def load_cursor(text: str | None) -> tuple[int, dict[str, list], list[str]]:
    """(generation, files, stray ids) of a cursor. The first version was the files mapping
    alone; the second had no stray ids before 2026-12-01 (its first tick then lists them)."""
    if not text:
        return 0, {}, []
    data = json.loads(text)
    if isinstance(data, dict) and data.get("version") == CURSOR_VERSION:
        return int(data["generation"]), dict(data["files"]), list(data.get("strays", []))
    return 0, data, []


def dump_cursor(generation: int, files: dict[str, list], strays: list[str]) -> str:
    return json.dumps({"version": CURSOR_VERSION, "generation": generation, "files": files,
                       "strays": strays}, sort_keys=True)


def sha256_of_text(text: str) -> str:
    import hashlib
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


warehouse_automation = AutomationConditionSensorDefinition(
    "warehouse_automation", target=AssetSelection.all(), default_status=DefaultSensorStatus.RUNNING,
    # A run still going after this is ended (run monitoring, .dagster_home/dagster.yaml): a
    # run whose process died would otherwise stay "in progress" and hold the automation up.
    run_tags={"dagster/max_runtime": INGEST_TAGS["dagster/max_runtime"], **RETRY_TAGS},
    description="After an ingest run has refreshed a cycle, rebuilds the marts from every cycle's "
                "staging, checks them, and publishes the warehouse with its report and Parquet "
                "(the marts' condition: 'eager, input updates timed'); also makes raw/inventory "
                "once on a new deployment.",
)
