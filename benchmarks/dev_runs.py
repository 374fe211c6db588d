"""Benchmark of the deployment: `dagster dev` at N participations, from nothing to published, then
one late delivery (what `docs/performance.md`, "Under `dagster dev`", reports).

    .venv/bin/python benchmarks/dev_runs.py --participations 1000000

1. The raw root of `benchmarks/run.py` for N (made by `iga-pipeline synth` if missing), without
   the late file; a new DAGSTER_HOME holding a copy of `.dagster_home/dagster.yaml`; an empty
   warehouse folder (`benchmarks/data/<N>/dev/`).
2. `dagster dev` starts; its delivery sensor asks for a run per cycle, the instance runs them
   two at a time, and the warehouse automation builds and publishes the warehouse. Measured:
   the time until its last publish before the deployment settles (the automation may
   publish more than once; the first publish is reported too), and each run's time (from
   the run records).
3. Once every run has ended and no new one came for `--idle` seconds, cycle 8's 90-day export is
   written (`synth --late-followup 8`). Measured: the time from its writing until the warehouse
   file is replaced, and each run's time. The sensor waits until a delivery has been still for a
   minute, and ticks every 30 s: most of that time is waiting, not work.

Peak memory is the largest sum of the resident memory of `dagster dev` and every process under
it (webserver, daemon, code server, runs, ingest workers), sampled every 0.2 s.
Results are printed and written to benchmarks/results/<UTC timestamp>-dev.json and .md.
Not a test: at 1M it takes about eight minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

# benchmarks/run.py: the data, the machine, the memory sampling (loaded by path: benchmarks/ is no package)
_spec = importlib.util.spec_from_file_location("iga_benchmark_run", Path(__file__).resolve().parent / "run.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


class Deployment:
    """`dagster dev` in a session of its own, with its process tree's memory and the warehouse
    file's appearances sampled in a thread."""

    def __init__(self, home: Path, raw: Path, warehouse: Path, port: int, log: Path):
        env = {**os.environ, "DAGSTER_HOME": str(home), "IGA_RAW_DIR": str(raw),
               "IGA_WAREHOUSE": str(warehouse), "IGA_PSEUDONYM_KEY": bench.BENCH_KEY}
        self.warehouse = warehouse
        self.started = time.monotonic()
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [str(bench.VENV_BIN / "dagster"), "dev", "-w", "workspace.yaml", "-p", str(port)],
            cwd=bench.REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.peak = 0
        self.published: list[float] = []  # monotonic times at which the warehouse file was (re)placed
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        seen = None
        while not self._done.is_set():
            self.peak = max(self.peak, bench._tree_rss(self.proc.pid))
            try:
                stat = self.warehouse.stat()
                version = (stat.st_ino, stat.st_mtime_ns)  # os.replace: a new inode
            except OSError:
                version = None
            if version is not None and version != seen:
                self.published.append(time.monotonic())
                seen = version
            self._done.wait(0.2)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Ctrl-C for `dagster dev` (it stops its processes), then SIGKILL for whatever of its
        session is left: a process that outlived it, or `dagster dev` itself after 30 s."""
        self._done.set()
        self._sampler.join()
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


run_records = bench.run_records  # each run of an instance and its steps' times


def wait_until_idle(home: Path, idle: float, limit: float, after: float = 0, alive=lambda: True) -> list[dict]:
    """Wait until a run created after `after` (epoch s) exists, every run has ended and none
    ended or was created for `idle` s; return the runs created after `after`. Stops at once
    when `alive()` says the deployment has ended."""
    until = time.time() + limit
    while time.time() < until:
        time.sleep(5)
        if not alive():
            raise SystemExit("`dagster dev` ended before its runs settled (its log says why)")
        runs = [r for r in run_records(home) if r["created"] >= after]
        ended = all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)
        last = max((r["end"] or r["created"] for r in runs), default=None)
        if runs and ended and time.time() - last >= idle:
            return [r for r in run_records(home, with_steps=True) if r["created"] >= after]
    raise SystemExit(f"the deployment did not settle within {limit:.0f} s")


def _runs_brief(runs: list[dict]) -> list[dict]:
    return [{"job": r["job"], "partitions": r["partitions"], "status": r["status"],
             "seconds": round(r["end"] - r["start"], 1) if r["start"] and r["end"] else None,
             "steps": r["steps"]} for r in runs]


def wait_until_settled(raw: Path) -> None:
    """Wait until every raw file and folder has been still for the delivery sensor's settle
    time, as the sensor tells (mtime or ctime): data just made, or the late file removed by
    the run before (its folder changes), would otherwise add that wait to the first figure."""
    from iga_pipeline.defs.resources import IGAResource

    settle = IGAResource().settle_seconds  # the deployment's default
    newest = max(max(st.st_mtime, st.st_ctime) for st in (p.stat() for p in [raw, *raw.rglob("*")]))
    time.sleep(max(0.0, newest + settle + 1 - time.time()))


def measure(n: int, seed: int, port: int, idle: float, limit: float) -> dict:
    raw, _ = bench.synth(n, seed)
    (raw / bench.LATE_FILE).unlink(missing_ok=True)
    wait_until_settled(raw)
    folder = bench.DATA / str(n) / "dev"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    home = Path(tempfile.mkdtemp(prefix="iga-dev-home-"))
    shutil.copy(bench.REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    warehouse = folder / "warehouse" / "iga.duckdb"
    run_records(home)  # imports Dagster here before the deployment starts (and finds no run)
    bench.wait_quiet(120, 0.7)
    load = os.getloadavg()[0]
    dep = Deployment(home, raw, warehouse, port, folder / "dagster-dev.log")
    try:
        first = wait_until_idle(home, idle, limit, alive=dep.alive)
        if not dep.published:
            raise SystemExit(f"nothing was published; see {folder / 'dagster-dev.log'}")
        first_published = dep.published[0] - dep.started
        until_published = dep.published[-1] - dep.started  # the automation may publish more than once
        publishes = len(dep.published)
        print(f"[{n:,}] published {until_published:.1f} s after `dagster dev` started "
              f"({len(dep.published)} publish(es), the first at {first_published:.1f} s); {len(first)} runs",
              flush=True)

        subprocess.run([*bench.CLI, "synth", "--participations", str(n), "--seed", str(seed), "--out", str(raw),
                        "--late-followup", str(bench.LATE_CYCLE)], check=True, capture_output=True, cwd=bench.REPO)
        written, written_at = time.monotonic(), time.time()
        late = wait_until_idle(home, idle, limit, after=written_at, alive=dep.alive)
        again = [t for t in dep.published if t > written]  # phase 1 had settled: no publish of its own is left
        if not again:
            raise SystemExit("the late delivery was not published")
        late_published = again[0] - written
        print(f"[{n:,}] the late delivery published {late_published:.1f} s after it was written; "
              f"{len(late)} runs", flush=True)
    finally:
        dep.stop()
        (raw / bench.LATE_FILE).unlink(missing_ok=True)
        shutil.rmtree(home, ignore_errors=True)
    not_succeeded = [r["status"] for r in first + late if r["status"] != "SUCCESS"]
    if not_succeeded:
        print(f"[{n:,}] warning: {len(not_succeeded)} run(s) did not succeed: {not_succeeded}", flush=True)
    return {
        "participations": n, "load_before": round(load, 2), "runs_not_succeeded": len(not_succeeded),
        "until_published_s": round(until_published, 1), "first_published_s": round(first_published, 1),
        "publishes": publishes, "first_runs": _runs_brief(first),
        "late_published_s": round(late_published, 1), "late_runs": _runs_brief(late),
        "peak_tree_rss_mb": round(dep.peak / 2**20),
    }


def markdown(report: dict) -> str:
    r = report["result"]
    lines = [f"# `dagster dev` at {r['participations']:,} participations ({report['stamp']})", "",
             f"Machine: {json.dumps(report['machine'])}", "",
             f"Code: `{report['commit']}` (this script: sha256 `{report.get('script_sha256', '?')}`)", "",
             f"* from `dagster dev` started to the warehouse published: {r['until_published_s']} s "
             f"({r['publishes']} publish(es), the first at {r['first_published_s']} s)",
             f"* from the late delivery written to the warehouse published again: {r['late_published_s']} s",
             f"* peak memory of the deployment: {r['peak_tree_rss_mb']:,} MB",
             f"* load average when it started: {r['load_before']}",
             f"* runs that did not succeed: {r.get('runs_not_succeeded', 0)}", "",
             "| phase | job | partitions | status | s |", "|---|---|---|---|---:|"]
    for phase in ("first_runs", "late_runs"):
        for run in r[phase]:
            lines.append(f"| {phase.split('_')[0]} | {run['job']} | {run['partitions']} | {run['status']} "
                         f"| {run['seconds']} |")
    lines += ["", "Steps of the runs that build the warehouse (s):", ""]
    for phase in ("first_runs", "late_runs"):
        for run in r[phase]:
            if any(step.startswith("marts") for step in run["steps"]):
                took = ", ".join(f"{k} {v}" for k, v in sorted(run["steps"].items(), key=lambda kv: -kv[1]))
                lines.append(f"* {phase.split('_')[0]} {run['job']}: {took}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--participations", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=bench.SEED)
    p.add_argument("--port", type=int, default=3077)
    p.add_argument("--idle", type=float, default=65, help="no new run for this long: settled (s)")
    p.add_argument("--limit", type=float, default=3600, help="give up after (s), per phase")
    args = p.parse_args(argv)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                            cwd=bench.REPO).stdout.strip()
    script = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]  # this file, committed or not
    report = {"stamp": stamp, "commit": commit, "script_sha256": script, "machine": bench.machine(),
              "result": measure(args.participations, args.seed, args.port, args.idle, args.limit)}
    bench.RESULTS.mkdir(exist_ok=True)
    (bench.RESULTS / f"{stamp}-dev.json").write_text(json.dumps(report, indent=1) + "\n")
    (bench.RESULTS / f"{stamp}-dev.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
