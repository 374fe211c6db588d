"""Benchmark: the full build, its floor and the incremental run, at 100k, 1M and 10M participations.

    .venv/bin/python benchmarks/run.py                      # 100000 1000000 10000000
    .venv/bin/python benchmarks/run.py --sizes 100000 --repeat 3

For every N it measures, in one run and each as its own process:

* synth: `iga-pipeline synth --participations N` into benchmarks/data/<N>/raw
  (git-ignored; reused when it was made with the same N, seed and generator);
* full: `iga-pipeline build` from an empty warehouse folder (no staging);
* floor: DuckDB alone loading the same raw CSV and JSON files into tables of a
  DuckDB database file, with no validation (see `FLOOR_SQL`); the Pethö
  workbook (cycle 1, a few hundred rows, xlsx) is left out of the floor;
* incremental: one late 90-day delivery (cycle 8, Åstorp, as in the project's
  history it never came) dropped into the raw root, then
  `iga-pipeline build --cycle 8`: that partition is ingested again and the
  warehouse rebuilt from every cycle's staging, checked and published.

Wall time is measured around each process; peak memory by sampling the RSS of
the whole process tree every 50 ms (the sum over the processes alive at that
moment, so worker processes count), next to the kernel's own peak for the
largest single process (/usr/bin/time's "Maximum resident set size").

With `--steps`, one more full build and incremental run per size keep their runs
in a Dagster instance of their own, and each step's time (Dagster's step events)
and each cycle's staging time (the ingest's log) go into the results: where the
time goes, measured the same way every time.

Results: printed, and written to benchmarks/results/<timestamp>.json and .md
(and latest.json / latest.md), with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable)
CLI = [str(PYTHON), "-m", "iga_pipeline.cli"]
DATA = HERE / "data"
RESULTS = HERE / "results"
SEED = 2012
LATE_CYCLE = 8
LATE_FILE = f"leverantorer/astorp/cykel{LATE_CYCLE}_90dagar.json"
BENCH_KEY = "benchmark-secret-not-for-real-data"

# The floor: every CSV and JSON delivery into a table, nothing checked. The CSV
# files are read as text (all_varchar) with the contract's delimiters; JSON
# exports are unnested to one row per participant entry (a table holding one
# row with a list of a million entries would not be a comparable load).
FLOOR_SCRIPT = r'''
import duckdb, os, sys, time
from pathlib import Path
raw, db = Path(sys.argv[1]), sys.argv[2]
for p in (db, db + ".wal"):
    if os.path.exists(p):
        os.remove(p)
con = duckdb.connect(db)
files = rows = 0
for i, p in enumerate(sorted(x for x in raw.rglob("*") if x.is_file())):
    rel = p.relative_to(raw).as_posix()
    q = "'" + str(p).replace("'", "''") + "'"
    if p.suffix == ".csv":
        sep = "," if rel.startswith("enkater/") else ";"
        enc = ", encoding = 'latin-1'" if "folkuniversitetet" in rel else ""  # Windows-1252 files
        con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_csv({q}, delim = '{sep}', header = true, "
                    f"all_varchar = true, null_padding = true, strict_mode = false, ignore_errors = true{enc})")
    elif p.suffix == ".json":
        key = "uppfoljning" if rel.endswith("_90dagar.json") else "deltagare"
        con.execute(f"CREATE TABLE t{i} AS SELECT unnest({key}, recursive := true) "
                    f"FROM read_json({q}, maximum_object_size = 4000000000)")
    else:
        continue  # the Pethö workbook (xlsx): not in the floor
    files += 1
    rows += con.execute(f"SELECT count(*) FROM t{i}").fetchone()[0]
con.execute("CHECKPOINT")
con.close()
print(f"FLOOR files={files} rows={rows}")
'''


# --------------------------------------------------------------------- machine
def machine() -> dict:
    def read(path):
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu = re.search(r"model name\s*:\s*(.+)", read("/proc/cpuinfo"))
    mem = re.search(r"MemTotal:\s*(\d+) kB", read("/proc/meminfo"))
    versions = subprocess.run(
        [str(PYTHON), "-c", "import sys, duckdb, pandas, pyarrow, pandera, dagster, numpy; "
         "print(sys.version.split()[0], duckdb.__version__, pandas.__version__, pyarrow.__version__, "
         "pandera.__version__, dagster.__version__, numpy.__version__)"],
        capture_output=True, text=True, check=True).stdout.split()
    names = ["python", "duckdb", "pandas", "pyarrow", "pandera", "dagster", "numpy"]
    return {
        "cpu": cpu.group(1).strip() if cpu else platform.processor(),
        "cpus": os.cpu_count(),
        "ram_gb": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "os": f"{platform.system()} {platform.release()}",
        **dict(zip(names, versions)),
    }


# ------------------------------------------------------------------- measuring
def _parent_pids() -> dict[int, int]:
    """pid -> parent pid, for every process."""
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
                out[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return out


def _tree_rss(root: int) -> int:
    parents = _parent_pids()
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def run(cmd: list[str], env: dict | None = None, log: Path | None = None) -> dict:
    """Run a command; wall time, peak RSS of its process tree, the largest process's max RSS."""
    timed = ["/usr/bin/time", "-v", *cmd] if Path("/usr/bin/time").exists() else cmd
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    load = os.getloadavg()[0]
    started = time.monotonic()
    proc = subprocess.Popen(timed, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    if log:
        log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{out}\n--- stderr\n{err}\n")
    max_rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    return {
        "seconds": round(wall, 2),
        "peak_tree_rss_mb": round(peak[0] / 2**20),
        "max_process_rss_mb": round(int(max_rss.group(1)) / 1024) if max_rss else None,
        "exit": proc.returncode,
        "load_before": round(load, 2),
        "stdout": out,
        "stderr": err,
    }


def wait_quiet(limit_s: float, threshold: float) -> None:
    """Other work on the machine skews the figures: wait (up to limit_s) for a low load. It
    then measures anyway; the load each measurement began at is kept (`load_before`), and the
    table shows the highest."""
    until = time.monotonic() + limit_s
    while os.getloadavg()[0] > threshold and time.monotonic() < until:
        time.sleep(5)


def best(runs: list[dict]) -> dict:
    return min(runs, key=lambda r: r["seconds"])


# ------------------------------------------------------- a Dagster instance's runs
def run_records(home: Path, with_steps: bool = False) -> list[dict]:
    """Every run of the instance at `home`, oldest first: job, status, partitions, created,
    started and ended (epoch seconds), and with `with_steps` each step's seconds (from its
    start event to its success or failure) and each cycle's, as its ingest logged them
    ("cycle 5: ... staged in 4.62 s": the wall time of `staging.stage_cycle` in its
    process). Dagster is imported here, in this process: the first call, before the
    deployment starts, does it (a process per call would take a core from the deployment
    every few seconds). `all_logs` is not marked public in Dagster 1.13; the slow tests in
    iga_pipeline_tests/test_benchmark_run.py run it."""
    from dagster import DagsterEventType, DagsterInstance

    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)  # what DagsterInstance.get() reads
    try:
        instance = DagsterInstance.get()
    finally:
        if before is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = before

    def steps(run_id: str) -> dict[str, dict[str, float]]:
        start, took, cycles = {}, {}, {}
        ends = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
        for e in instance.all_logs(run_id):
            kind = e.dagster_event.event_type if e.dagster_event else None
            if kind == DagsterEventType.STEP_START:
                start[e.step_key] = e.timestamp
            elif kind in ends and e.step_key in start:
                took[e.step_key] = round(e.timestamp - start[e.step_key], 2)
            elif kind is None and (staged := _STAGED.match(e.user_message or "")):
                cycles[staged["cycle"]] = float(staged["seconds"])
        return {"steps": took, "cycles": cycles}

    with instance:
        runs = [{
            "job": r.dagster_run.job_name, "status": r.dagster_run.status.value,
            "created": r.create_timestamp.timestamp(), "start": r.start_time, "end": r.end_time,
            "partitions": r.dagster_run.tags.get("dagster/partition") or "-".join(filter(None, [
                r.dagster_run.tags.get("dagster/asset_partition_range_start"),
                r.dagster_run.tags.get("dagster/asset_partition_range_end")])),
            **(steps(r.dagster_run.run_id) if with_steps else {"steps": {}, "cycles": {}}),
        } for r in instance.get_run_records()]
    return sorted(runs, key=lambda r: r["created"])


_STAGED = re.compile(r"cycle (?P<cycle>\d+): .*, staged in (?P<seconds>[\d.]+) s$")  # defs/assets.py


# ------------------------------------------------------------------ one size
# requirements.lock: numpy does not promise the same random draws across its versions
GENERATOR_SOURCES = ("iga_pipeline/synth/*.py", "iga_pipeline/reference/*", "iga_pipeline/personnummer.py",
                     "requirements.lock")


def generator_fingerprint(root: Path = REPO) -> str:
    """Of every file the scaled generator's output depends on: its own modules (scale.py
    draws on plan.py, names.py and writers.py), the reference tables, the personnummer rules,
    and the pinned versions (numpy's random draws)."""
    import hashlib

    digest = hashlib.sha256()
    for pattern in GENERATOR_SOURCES:
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def synth(n: int, seed: int) -> tuple[Path, dict]:
    folder = DATA / str(n)
    raw = folder / "raw"
    marker = folder / "synth.json"
    fingerprint = generator_fingerprint()
    if marker.exists():
        meta = json.loads(marker.read_text())
        if meta.get("seed") == seed and meta.get("generator") == fingerprint and raw.is_dir():
            (raw / LATE_FILE).unlink(missing_ok=True)
            return raw, meta
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    r = run([*CLI, "synth", "--participations", str(n), "--seed", str(seed), "--out", str(raw)],
            log=folder / "synth.log")
    if r["exit"] != 0:
        raise SystemExit(f"synth {n} failed:\n{r['stderr'][-3000:]}")
    summary = json.loads(r["stdout"])
    meta = {"seed": seed, "generator": fingerprint, "synth_seconds": r["seconds"],
            "synth_peak_mb": r["peak_tree_rss_mb"], "rows": summary["rows"], "bytes": summary["bytes"],
            "participations": summary["participations"]}
    marker.write_text(json.dumps(meta, indent=2))
    return raw, meta


def measure(n: int, args) -> dict:
    raw, meta = synth(n, args.seed)
    folder = DATA / str(n)
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    warehouse = folder / "warehouse" / "iga.duckdb"
    env = {"IGA_PSEUDONYM_KEY": BENCH_KEY, "DAGSTER_HOME": None}  # an ephemeral Dagster instance
    result = {"participations": n, "raw_rows": meta["rows"], "raw_mb": round(meta["bytes"] / 2**20, 1),
              "synth_seconds": meta["synth_seconds"], "full": [], "floor": [], "incremental": []}

    repeat = args.repeat if n <= args.repeat_up_to else 1
    for i in range(repeat):
        print(f"[{n:,}] full build {i + 1}/{repeat} ...", flush=True)
        result["full"].append(_brief(full_build(n, raw, warehouse, env, logs / f"full-{i + 1}.log", args)))

        print(f"[{n:,}] floor {i + 1}/{repeat} ...", flush=True)
        wait_quiet(args.wait_quiet, args.quiet_load)
        r = run([str(PYTHON), "-c", FLOOR_SCRIPT, str(raw), str(folder / "floor.duckdb")],
                log=logs / f"floor-{i + 1}.log")
        if r["exit"] != 0:
            raise SystemExit(f"floor of {n} failed:\n{r['stderr'][-3000:]}")
        brief = _brief(r)
        brief["loaded"] = re.search(r"FLOOR (.*)", r["stdout"]).group(1)
        result["floor"].append(brief)
        for p in (folder / "floor.duckdb", folder / "floor.duckdb.wal"):
            p.unlink(missing_ok=True)

        print(f"[{n:,}] incremental {i + 1}/{repeat} (late delivery, cycle {LATE_CYCLE}) ...", flush=True)
        result["incremental"].append(_brief(late_build(n, raw, warehouse, env, logs / f"incremental-{i + 1}.log",
                                                       args)))

    full, floor, inc = best(result["full"]), best(result["floor"]), best(result["incremental"])
    result["summary"] = {
        "full_s": full["seconds"], "floor_s": floor["seconds"], "incremental_s": inc["seconds"],
        "full_over_floor": round(full["seconds"] / floor["seconds"], 2),
        "incremental_over_full": round(inc["seconds"] / full["seconds"], 3),
        "full_peak_mb": max(r["peak_tree_rss_mb"] for r in result["full"]),
        "floor_peak_mb": max(r["peak_tree_rss_mb"] for r in result["floor"]),
        "incremental_peak_mb": max(r["peak_tree_rss_mb"] for r in result["incremental"]),
        # wait_quiet gives up after --wait-quiet s: the highest load a measurement began at
        "max_load_before": max(r["load_before"] for k in ("full", "floor", "incremental") for r in result[k]),
    }
    if args.steps:
        result["steps"] = measure_steps(n, raw, warehouse, env, logs, args)
    if not args.keep_warehouse:
        shutil.rmtree(warehouse.parent, ignore_errors=True)
    return result


def full_build(n: int, raw: Path, warehouse: Path, env: dict, log: Path, args) -> dict:
    """`iga-pipeline build` of the data without the late delivery, into an empty warehouse
    folder (no staging), measured once the machine is quiet."""
    (raw / LATE_FILE).unlink(missing_ok=True)
    shutil.rmtree(warehouse.parent, ignore_errors=True)
    wait_quiet(args.wait_quiet, args.quiet_load)
    r = run([*CLI, "build", "--raw-dir", str(raw), "--warehouse", str(warehouse)], env=env, log=log)
    if r["exit"] != 0:
        raise SystemExit(f"full build of {n} failed (exit {r['exit']}, {log.name}):\n{r['stderr'][-3000:]}")
    return r


def late_build(n: int, raw: Path, warehouse: Path, env: dict, log: Path, args) -> dict:
    """The late delivery written into the raw data, then `iga-pipeline build --cycle` of its
    cycle after a full build, measured once the machine is quiet; the late delivery is then
    taken out again (the next full build is without it)."""
    subprocess.run([*CLI, "synth", "--participations", str(n), "--seed", str(args.seed), "--out", str(raw),
                    "--late-followup", str(LATE_CYCLE)], check=True, capture_output=True, cwd=REPO)
    wait_quiet(args.wait_quiet, args.quiet_load)
    r = run([*CLI, "build", "--raw-dir", str(raw), "--warehouse", str(warehouse), "--cycle", str(LATE_CYCLE)],
            env=env, log=log)
    if r["exit"] != 0:
        raise SystemExit(f"incremental build of {n} failed (exit {r['exit']}, {log.name}):\n{r['stderr'][-3000:]}")
    (raw / LATE_FILE).unlink(missing_ok=True)
    return r


def measure_steps(n: int, raw: Path, warehouse: Path, env: dict, logs: Path, args) -> dict:
    """Where the time goes: one more full build and incremental run, as measured above but
    with their runs kept in a Dagster instance of their own (a temporary DAGSTER_HOME), and
    each step's seconds read from its events. Not counted in the figures above: the instance
    writes every event to SQLite, which the measured builds (an ephemeral instance) do not."""
    home = Path(tempfile.mkdtemp(prefix="iga-bench-home-"))
    try:
        shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
        kept = {**env, "DAGSTER_HOME": str(home)}
        print(f"[{n:,}] steps: full build and incremental with their runs kept ...", flush=True)
        timed = [full_build(n, raw, warehouse, kept, logs / "steps-full.log", args),
                 late_build(n, raw, warehouse, kept, logs / "steps-incremental.log", args)]
        runs = run_records(home, with_steps=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if len(runs) != 2:
        raise SystemExit(f"expected the two builds' runs in the instance, found {len(runs)}")
    return {kind: {"seconds": t["seconds"], "run_s": round(r["end"] - r["start"], 2), "steps": r["steps"],
                   "cycles": r["cycles"]}
            for kind, t, r in zip(("full", "incremental"), timed, runs)}


def steps_markdown(size: dict) -> list[str]:
    """A size's step times: one row per step, in the order the full build ran them (the runs'
    steps run one after the other, and run_records keeps the order they ended in)."""
    steps = size["steps"]
    names = list(dict.fromkeys([*steps["full"]["steps"], *steps["incremental"]["steps"]]))
    lines = [f"### Steps at {size['participations']:,} participations", "",
             "| step | full s | incremental s |", "|---|---:|---:|"]
    for name in names:
        lines.append(f"| {name} | {steps['full']['steps'].get(name, '-')} "
                     f"| {steps['incremental']['steps'].get(name, '-')} |")
    outside = {k: round(v["seconds"] - sum(v["steps"].values()), 2) for k, v in steps.items()}
    lines += [f"| outside the steps (start-up, the run around them, exit) | {outside['full']} "
              f"| {outside['incremental']} |",
              f"| the whole command | {steps['full']['seconds']} | {steps['incremental']['seconds']} |", ""]
    for kind in ("full", "incremental"):
        cycles = steps[kind].get("cycles")
        if cycles:
            lines.append(f"* {kind}: each cycle staged in (s, the wall time in its process) "
                         + ", ".join(f"{c}: {s}" for c, s in sorted(cycles.items(), key=lambda i: int(i[0]))))
    return lines + [""]


def _brief(r: dict) -> dict:
    built = re.search(r"Built .* in ([\d.]+) s", r["stdout"])
    return {k: r[k] for k in ("seconds", "peak_tree_rss_mb", "max_process_rss_mb", "exit", "load_before")} | (
        {"job_seconds": float(built.group(1))} if built else {})


# --------------------------------------------------------------------- report
TARGETS = {
    "full_over_floor_at_1M": 3.0, "full_peak_mb_at_1M": 2048, "full_peak_mb_at_10M": 8192,
    "incremental_over_full": 0.25,
}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"# Benchmark {report['started']}",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['ram_gb']} GB RAM, {m['os']}; Python {m['python']}, "
        f"DuckDB {m['duckdb']}, pandas {m['pandas']}, pyarrow {m['pyarrow']}, pandera {m['pandera']}, "
        f"Dagster {m['dagster']}. Seed {report['seed']}; best of {report['repeat']} per figure up to "
        f"{report['repeat_up_to']:,} participations, one measurement above.",
        "",
        "| participations | raw rows | raw MB | synth s | full build s | floor s | build / floor | full peak MB "
        "| floor peak MB | incremental s | incremental / full | incremental peak MB | highest load at a start |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["sizes"]:
        s = r["summary"]
        lines.append(
            f"| {r['participations']:,} | {r['raw_rows']:,} | {r['raw_mb']} | {r['synth_seconds']} "
            f"| {s['full_s']} | {s['floor_s']} "
            f"| {s['full_over_floor']} | {s['full_peak_mb']:,} | {s['floor_peak_mb']:,} | {s['incremental_s']} "
            f"| {s['incremental_over_full']} | {s['incremental_peak_mb']:,} | {s.get('max_load_before', '?')} |")
    lines += ["", "Synth: `iga-pipeline synth` making the data set, wall time, when it was made (a data set "
              "made by an earlier run with the same seed and generator is reused, with its time).",
              "Peak MB: the sum of the RSS of the process tree, sampled every 50 ms.",
              "Floor: DuckDB loading the same CSV and JSON files into tables of a database file, "
              "no validation (rows with too many fields read too); the cycle-1 workbook (xlsx) is not in "
              "the floor.",
              f"Load: each measurement waited up to {report.get('wait_quiet', '?')} s for the 1-minute load "
              f"average to fall below {report.get('quiet_load', '?')}, then began anyway; a highest load above "
              "it means a measurement began on a machine that was not quiet.", ""]
    if any("steps" in size for size in report["sizes"]):
        lines += ["## Where the time goes (`--steps`)", "",
                  "One more full build and incremental run per size, their runs kept in a Dagster "
                  "instance (events written to SQLite, which the builds above do not do); each step "
                  "from its start event to its end.", ""]
        for size in report["sizes"]:
            if "steps" in size:
                lines += steps_markdown(size)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--repeat", type=int, default=1, help="measure each figure this many times; keep the best")
    parser.add_argument("--repeat-up-to", type=int, default=2_000_000,
                        help="sizes above this are measured once whatever --repeat says")
    parser.add_argument("--wait-quiet", type=float, default=120,
                        help="before each measurement wait up to this many seconds for the load to drop")
    parser.add_argument("--quiet-load", type=float, default=0.7, help="what counts as a quiet machine (loadavg)")
    parser.add_argument("--keep-warehouse", action="store_true")
    parser.add_argument("--steps", action="store_true",
                        help="then one more full build and incremental run per size, with each step's time")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    report = {"started": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "seed": args.seed,
              "repeat": args.repeat, "repeat_up_to": args.repeat_up_to, "wait_quiet": args.wait_quiet,
              "quiet_load": args.quiet_load, "machine": machine(),
              "targets": TARGETS, "sizes": []}
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = report["started"].replace(":", "").replace("-", "")
    for n in args.sizes:
        report["sizes"].append(size := measure(n, args))
        s = size["summary"]
        print(f"[{n:,}] synth {size['synth_seconds']} s, "
              f"full {s['full_s']} s (peak {s['full_peak_mb']:,} MB), floor {s['floor_s']} s, "
              f"build/floor {s['full_over_floor']}, incremental {s['incremental_s']} s "
              f"({s['incremental_over_full']} of the full build); highest load at a start "
              f"{s['max_load_before']}", flush=True)
        for name in (f"{stamp}.json", "latest.json"):  # written after every size: a long run keeps its figures
            (args.out / name).write_text(json.dumps(report, indent=2) + "\n")
        for name in (f"{stamp}.md", "latest.md"):
            (args.out / name).write_text(markdown(report))
    print()
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
