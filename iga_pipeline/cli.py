"""iga-pipeline: the headless build and the synthetic data generator.

    iga-pipeline build [--raw-dir DIR] [--warehouse FILE] [--cycle N]
    iga-pipeline synth [--out DIR] [--seed N] [--participations N [--late-followup CYCLE]]

Exit status of build (warehouse.md): 0 built; 3 built, but at least one raw
file was rejected whole (or a folder of the raw root could not be listed);
1 failed, a usage error included (the previous warehouse, Parquet folder and
report are left as they were).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path

from iga_pipeline import workers
from iga_pipeline.process import exit_without_teardown

EXIT_OK, EXIT_FAILED, EXIT_FILES_REJECTED = 0, 1, 3
# What `entry` says after a Ctrl-C: whether one came, whether the build's run had ended
# (`_build`), and whether a failed run's verdict was printed already.
_state = {"interrupted": False, "run_ended": False, "verdict_said": False}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iga-pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser(
        "build", help="materialise every asset and partition once, in process",
        description="Ingest the raw deliveries, build the warehouse, check it, write the report and the "
                    "Parquet exports, and publish them together (README, warehouse.md).",
        epilog="exit status: 0 built; 3 built, but a raw file was rejected whole (or a folder of the raw "
               "root could not be listed); 1 failed, a usage error included: the previous warehouse, "
               "Parquet folder and report are left as they were.")
    b.add_argument("--raw-dir", metavar="DIR", help="raw root (default: IGA_RAW_DIR or data/raw)")
    b.add_argument("--warehouse", metavar="FILE",
                   help="warehouse file (default: IGA_WAREHOUSE or warehouse/iga.duckdb)")
    b.add_argument("--cycle", type=int, metavar="N",
                   help="re-ingest only this cycle (1-8; say, after a late delivery), then rebuild and "
                        "publish the warehouse from every cycle's staging, as the delivery sensor does; "
                        "the other cycles must have been staged by a full build before")
    sub.add_parser("synth", add_help=False,
                   help="write a synthetic, deterministic set of raw deliveries (see synth --help)")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["synth"]:
        from iga_pipeline.synth.__main__ import main as synth_main
        try:
            return synth_main(argv[1:])
        except SystemExit as stop:  # argparse: a usage error is a failure, 1 as for build
            return EXIT_OK if stop.code in (0, None) else EXIT_FAILED
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # said by build's parser, with build's usage line (the top one lists no option)
            b.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as stop:  # argparse: 0 after --help, 2 for a usage error, which is a failure
        return EXIT_OK if stop.code in (0, None) else EXIT_FAILED
    return build(args.raw_dir, args.warehouse, args.cycle)


class _Version(argparse.Action):
    """`--version`: the installed package's version, read only when asked (a build run as
    another user may not read the packages' metadata)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the installed version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version
        try:
            said = version("iga-pipeline")
        except PackageNotFoundError:  # the source tree, not installed
            said = "(not installed)"
        print(f"{parser.prog} {said}")
        parser.exit()


def build(raw_dir: str | None = None, warehouse: str | None = None, cycle: int | None = None) -> int:
    from iga_pipeline.pseudonym import PseudonymKeyError, key_from_env
    from iga_pipeline.settings import Paths, SettingError

    for option, given in (("--raw-dir", raw_dir), ("--warehouse", warehouse)):
        if given == "":  # `--warehouse "$WH"`, WH unset: it built the default warehouse
            print(f"error: {option} is empty (an unset variable?): name the "
                  + ("raw root" if option == "--raw-dir" else "warehouse file") + ", or leave the option out",
                  file=sys.stderr)
            return EXIT_FAILED
    if cycle is not None:
        from iga_pipeline import reference
        if cycle not in reference.cycles():  # said first: before any banner, worker or folder
            print(f"error: --cycle {cycle} is not one of the project's cycles "
                  f"({min(reference.cycles())}-{max(reference.cycles())})", file=sys.stderr)
            return EXIT_FAILED
    try:
        paths = Paths.from_env(raw_dir, warehouse)
    except SettingError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    try:
        os.listdir(paths.raw_dir)
    except OSError as e:
        # said here, before Dagster starts: a raw root this user may not read would otherwise read
        # as "no cycle has any delivery", and one in a folder it may not enter would end in a traceback
        why = {FileNotFoundError: "does not exist", NotADirectoryError: "is not a folder",
               PermissionError: "cannot be read by this user (its permissions, or a folder's above it)",
               }.get(type(e), f"cannot be read: {e.strerror or e}")
        print(f"error: the raw root {paths.raw_dir} {why}", file=sys.stderr)
        return EXIT_FAILED
    wrong = paths.problems()
    for problem in wrong:
        print(f"error: {problem}", file=sys.stderr)
    if wrong:
        return EXIT_FAILED
    try:
        key = key_from_env()
    except PseudonymKeyError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    from iga_pipeline.settings import setting_problems
    wrong = setting_problems() + _dagster_home_problems(paths.warehouse)
    for problem in wrong:
        print(f"error: {problem}", file=sys.stderr)
    if wrong:
        return EXIT_FAILED
    if cycle is not None:
        # A late delivery: its cycle's ingest starts at once, in a worker, while this process
        # imports pandas and Dagster and starts the run, whose ingest collects it (workers.py).
        workers.start_early(paths.raw_dir, paths.staging, cycle, key)
    try:
        return _build(paths, key, cycle)
    finally:
        workers.stop_early()  # a worker started early that no ingest collected: of no use now


def _build(paths, key, cycle: int | None) -> int:
    if key.is_development:
        from iga_pipeline.pseudonym import development_key_said
        said = development_key_said()  # said alike by the run's warning, for a run started in the UI
        print("!" * 78 + f"\n!! IGA_PSEUDONYM_KEY {said}: person_key uses the PUBLIC development key.\n"
              "!! Fine for the bundled synthetic data; set a secret before building real data.\n"
              + "!" * 78, file=sys.stderr)

    job_name = "build_all"
    if cycle is not None:
        from iga_pipeline import reference
        from iga_pipeline.staging import missing_cycles
        missing = [c for c in missing_cycles(paths.staging, reference.cycles()) if c != cycle]
        if missing:
            print(f"warning: no staging yet for cycle(s) {', '.join(map(str, missing))}: cycle {cycle} is "
                  "staged, but no warehouse is built without them (run a full build first)", file=sys.stderr)
            job_name = "ingest_cycle"  # the delivery sensor's job: the marts would only refuse

    had_warehouse = paths.warehouse.exists()
    started = time.monotonic()
    try:
        result = run_build_job(paths, cycle, job_name)
    except InstanceError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    _state["run_ended"] = True
    elapsed = time.monotonic() - started
    if result.success and job_name == "ingest_cycle":
        print(f"cycle {cycle} was staged; build failed; " + ("the previous warehouse was left as it was"
                                                              if had_warehouse else "no warehouse was built"),
              file=sys.stderr)
        return EXIT_FAILED
    if not result.success:
        return _failed(result, paths, had_warehouse)
    for published in result.asset_materializations_for_node("warehouse__published"):
        if "why" in published.metadata:  # publish.Superseded: the live warehouse is newer
            print(f"note: this build's warehouse was not published: {published.metadata['why'].value}; "
                  "the live one, shown below, is newer", file=sys.stderr)
    return summarise(paths, elapsed, cycle)


def _an_interrupt(err) -> bool:
    """Whether a step's error, or an error it was raised from, is what an interrupt becomes:
    Dagster's error, raised by its handler; or, where the signal lands in a DuckDB query, the
    RuntimeError DuckDB (2.0) raises instead of the handler's error (the build said "error in
    marts: RuntimeError: Query interrupted": an operations review's find)."""
    while err is not None:
        if err.cls_name == "DagsterExecutionInterruptedError" or (
                err.cls_name == "RuntimeError" and err.message.strip().endswith(": Query interrupted")):
            return True
        err = err.cause or err.context
    return False


def _failed(result, paths, had_warehouse: bool) -> int:
    """Say why the run failed (each cause once, every failed check), discard what it left
    and say what stays published."""
    failures = [event for event in result.all_events if event.is_step_failure]
    errors = [event.step_failure_data.error for event in failures]
    # Ctrl-C or SIGTERM during the run: Dagster's handler ended it (`entry`), said as such
    # (it was 'error in harmonised: dagster._core.errors.DagsterExecutionInterruptedError')
    interrupted = any(_an_interrupt(err) for err in errors)
    said: dict[str, list[str]] = {}  # one line per cause: an empty raw root fails two steps alike
    for event, err in zip(failures if not interrupted else [], errors):
        message = err.cause.message if err and err.cause else (err.message if err else "")
        said.setdefault(message.strip(), []).append(event.step_key)
    for message, steps in said.items():
        print(f"error in {', '.join(steps)}: {message}", file=sys.stderr)
    if not failures:  # the run failed outside any step: what Dagster says of it
        for event in result.all_events:
            if event.is_run_failure:
                print(f"error: {event.message}", file=sys.stderr)
    from iga_pipeline.defs.checks import failure_details
    for check in result.get_asset_check_evaluations():
        if not check.passed:
            print(f"check {check.check_name} of {check.asset_key.to_user_string()} failed:\n"
                  + _indent(failure_details(check.metadata)), file=sys.stderr)
    from iga_pipeline.warehouse import publish
    # a Ctrl-C now (the second, after the one that ended the run) lets the cleanup end and
    # the line be said whole and once (CI's find: the verdict cut short, then another)
    with _signals_held():
        publish.discard_run(paths, result.run_id)
        print(("interrupted; " if interrupted else "build failed; ")
              + ("the previous warehouse was left as it was" if had_warehouse else "no warehouse was published"),
              file=sys.stderr)
        _state["verdict_said"] = True
    return EXIT_FAILED


def _dagster_home_problems(warehouse: Path) -> list[str]:
    """What Dagster would refuse in DAGSTER_HOME (with a traceback, after the imports), and an
    instance that holds another warehouse's runs: the run is recorded there when it is set
    (README), else in a temporary instance."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return []
    home = os.path.expanduser(home)  # as Dagster reads it ('~/dagster_home')
    if not os.path.isabs(home):
        return [f"DAGSTER_HOME={home!r} is not an absolute path (say DAGSTER_HOME=$PWD/.dagster_home)"]
    if not os.path.isdir(home):
        return [f"DAGSTER_HOME={home!r} is not an existing folder: create it (mkdir -p), or unset it"]
    from iga_pipeline.settings import instance_problem

    problem = instance_problem(Path(home), warehouse)  # the run's first step records it
    return [problem] if problem else []


class InstanceError(RuntimeError):
    """The Dagster instance in DAGSTER_HOME cannot be loaded; the message says why."""


def run_build_job(paths, cycle: int | None = None, job_name: str = "build_all"):
    """Run the build_all job (or another) in process: every cycle partition (or only `cycle`)
    in one run."""
    warnings.filterwarnings("ignore", module="dagster")
    from iga_pipeline import collector

    with collector.paused():  # the imports and the instance: no collection halfway
        from dagster import DagsterInstance, mem_io_manager

        from iga_pipeline.definitions import defs
        from iga_pipeline.defs.assets import cycles_partitions
        from iga_pipeline.defs.automation import IN_PROCESS_TAGS, cycle_range_tags
        from iga_pipeline.defs.gone_runs import process_tags
        from iga_pipeline.defs.resources import IGAResource

        keys = cycles_partitions.get_partition_keys() if cycle is None else [str(cycle)]
        try:
            instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
        except Exception as e:  # a dagster.yaml Dagster cannot read: an 80-line traceback
            said = " ".join(str(e).split()).split(" Expected: ")[0][:300]  # not the whole schema it expected
            raise InstanceError(f"DAGSTER_HOME={os.environ.get('DAGSTER_HOME')!r}: Dagster cannot load the instance "
                                f"there ({type(e).__name__}: {said}): fix its dagster.yaml, or unset DAGSTER_HOME"
                                ) from None
        job = defs.resolve_job_def(job_name).with_logger_defs({"console": _console_logger()})
    collector.freeze()  # ... nor in any later one: they stay to the end of the process
    run_id = str(uuid.uuid4())  # named here, so that a run left unbegun can be ended (below)
    # The steps hand each other nothing through an IO manager; Dagster's default one made the
    # ephemeral instance a folder in the system's temporary folder, which a build killed
    # outright left there for good (a review's find: one folder per kill).
    try:
        return job.execute_in_process(
            instance=instance,
            resources={"iga": IGAResource(raw_dir=str(paths.raw_dir), warehouse=str(paths.warehouse),
                                          in_process_run=True), "io_manager": mem_io_manager},
            tags={**cycle_range_tags(keys[0], keys[-1]), **IN_PROCESS_TAGS, **process_tags()},
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            raise_on_error=False,
            run_id=run_id,
        )
    except BaseException:
        _end_unbegun_run(instance, run_id)
        raise


def _end_unbegun_run(instance, run_id: str) -> None:
    """End as failed this command's run if it is recorded but did not end: a Ctrl-C or SIGTERM
    while Dagster creates it and records its planned materialisations (before Dagster's own
    handler ends a run that has begun) left it "not started" in DAGSTER_HOME for good (an
    operations review's find), beside 'interrupted; the previous warehouse was left as it was'."""
    with _signals_held():
        try:
            run = instance.get_run_by_id(run_id)
            if run is not None and not run.is_finished:
                instance.report_run_failed(run, "iga-pipeline build stopped (interrupted, or failed) "
                                                "before its run had ended")
        except Exception:  # the instance itself failing: the interrupt, or the error, is what to say
            pass


def _console_logger():
    """Dagster's console logger without the run's failure events: each failed step's record
    carries its whole stack trace (a hundred lines for an empty raw root), each
    step after it says it is not executed, and the command prints each failure itself, in a line
    (`_failed`). Warnings, and errors logged as text by the steps, still show."""
    import logging

    from dagster import LoggerDefinition, colored_console_logger

    def not_a_failure_event(record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        skipped = str(meta.get("orig_message", "")).endswith("Not executing.")  # the steps after one that failed
        return record.levelno < logging.ERROR or (meta.get("dagster_event") is None and not skipped)

    def create(init_context):
        log = colored_console_logger.logger_fn(init_context)
        for handler in log.handlers:
            handler.addFilter(not_a_failure_event)
        return log

    return LoggerDefinition(create, config_schema=colored_console_logger.config_schema,
                            description="The console, without the run's errors (the command prints them).")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines())


def summarise(paths, elapsed: float, cycle: int | None = None) -> int:
    """Print the summary of the built warehouse; return the exit status it implies: 3
    (EXIT_FILES_REJECTED) when a raw file was rejected whole or a folder could not be
    listed, else 0. The warehouse's figures decide both."""
    from iga_pipeline.evaluation.queries import AUDIT_TOTALS, ISSUE_TOTALS, UNEXPECTED_FILES
    from iga_pipeline.warehouse.duck import open_readonly

    con = open_readonly(paths.warehouse)
    try:
        audit = con.execute(AUDIT_TOTALS).fetchone()
        warnings_, unlisted = con.execute(ISSUE_TOTALS).fetchone()
        table1 = table1_rows(con)
        unexpected = [f for (f,) in con.execute(UNEXPECTED_FILES).fetchall()]
    finally:
        con.close()
    files, rejected_files, read, loaded, rejected, dup = audit
    print(f"Built {paths.warehouse} in {elapsed:.1f} s, from every cycle's deliveries (this run's and earlier):")
    print(f"  raw files: {files} ({rejected_files} rejected whole)")
    print(f"  rows read: {read}  loaded: {loaded}  rejected: {rejected}  duplicates collapsed: {dup}"
          f"  warnings: {warnings_}")
    print("\nTable 1, recomputed: completers (the printed table's 'Deltagare'), in work (Arbete)"
          " and studies (Studier) at the end of the cycle and after 90 days")
    for line in format_table1(table1):
        print("  " + line)
    if footnote := table1_footnote(table1):
        print("  " + footnote)
    if unlisted:
        print(f"\n{unlisted} folder(s) of the raw root could not be listed: their files are missing; "
              "see marts.data_quality_issues", file=sys.stderr)
    if unexpected:  # warnings, not a failure: a misnamed delivery would otherwise pass unseen
        named = ", ".join(unexpected[:UNEXPECTED_NAMED]) + (
            f" and {len(unexpected) - UNEXPECTED_NAMED} more" if len(unexpected) > UNEXPECTED_NAMED else "")
        print(f"\n{len(unexpected)} file(s) of the raw root match no delivery of the contract and were not "
              f"read: {named}; see marts.data_quality_issues (unexpected_file)", file=sys.stderr)
    if rejected_files:
        # the warehouse's count, of every cycle; the run's log named those of the cycles it read
        print(f"\n{rejected_files} raw file(s) were rejected whole"
              + (f", of every cycle (this run read cycle {cycle}'s alone)" if cycle is not None else "")
              + ": see marts.ingest_audit", file=sys.stderr)
    if rejected_files or unlisted:
        return EXIT_FILES_REJECTED
    return EXIT_OK


UNEXPECTED_NAMED = 5  # the closing summary names this many unexpected files, and counts the rest


def format_table1(rows: list[tuple]) -> list[str]:
    """`table1_rows` as lines of text: each column as wide as its widest cell (a
    national build's counts run to six digits and more), '-' where a cycle was not
    followed up at 90 days."""
    header = ["", "Deltagare", "Arbete", "Studier", "Totalt", "Arbete", "Studier", "Totalt"]
    cells = []
    for label, completed, *counts in rows:
        row = [label, str(completed)]
        for work, studies in (counts[0:2], counts[2:4]):
            row += (["-"] * 3 if work is None else
                    [_n_pct(work, completed), _n_pct(studies, completed), _pct(work + studies, completed)])
        cells.append(row)
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        return " | ".join(["  ".join(parts[:2]), "  ".join(parts[2:5]), "  ".join(parts[5:])])

    return [line(header), *(line(row) for row in cells)]


def table1_rows(con) -> list[tuple]:
    """Table 1 in its printed shape, recomputed: (label, completed, work_at_end, studies_at_end,
    work_90d, studies_90d) per cycle, the subtotal (Delsumma, over the followed-up cycles its
    label names) after the last of them (before the total when it names none), the total
    (TOTALT) last."""
    return [row[:-1] for row in con.execute("""
        SELECT 'Cykel ' || cycle, completed, work_at_end, studies_at_end, work_90d, studies_90d,
               cycle AS k
        FROM marts.outcomes_by_cycle
        UNION ALL
        SELECT CASE scope WHEN 'followed_up' THEN 'Delsumma' ELSE 'TOTALT' END
                   || ' (' || coalesce(nullif(cycles, ''), 'none') || ')',
               completed, work_at_end, studies_at_end, work_90d, studies_90d,
               CASE scope WHEN 'followed_up'
                    THEN coalesce(try_cast(regexp_extract(cycles, '(\\d+)$', 1) AS INTEGER) + 0.5, 1e9 - 1)
                    ELSE 1e9 END
        FROM marts.outcomes_summary
        ORDER BY k""").fetchall()]


def table1_footnote(rows: list[tuple]) -> str | None:
    """What the report's TOTALT footnote says (rule R10), when a cycle was not followed up."""
    not_followed = [label.removeprefix("Cykel ") for label, *counts in rows
                    if label.startswith("Cykel ") and counts[3] is None]
    if not not_followed:
        return None
    from iga_pipeline.evaluation.report import named_cycles

    its = "their statuses" if len(not_followed) > 1 else "its status"
    return (f"* after 90 days TOTALT counts {named_cycles(not_followed)} (not followed up) with {its} "
            "at the end of the cycle (rule R10)")


def _pct(count: int, total: int) -> str:
    """count/total as whole percent, rounded half up (rule R11)."""
    from iga_pipeline.evaluation.common import half_up_percent
    percent = half_up_percent(count, total)
    return "-" if percent is None else f"{percent}%"


def _n_pct(count: int, total: int) -> str:
    return f"{count} {_pct(count, total)}"


@contextlib.contextmanager
def _signals_held():
    """The first Ctrl-C or SIGTERM waits until the block has run, then reaches the handler it
    would have; a second one meanwhile (a write that blocks: stderr's reader stalled) goes at once.

    The handlers are swapped, not the signals masked: another thread may take a masked
    signal, and Python runs its handler in the main thread all the same."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept: dict[int, object] = {}
    held: list[int] = []
    done = False

    def give_back() -> None:  # SIGINT last and in `finally`: one arriving between finds `hold`
        try:
            if signal.SIGTERM in kept:
                signal.signal(signal.SIGTERM, kept[signal.SIGTERM])
        finally:
            if signal.SIGINT in kept:
                signal.signal(signal.SIGINT, kept[signal.SIGINT])

    def hold(signum, frame) -> None:
        if held or done:  # a second one, or one while the handlers are given back: at once
            give_back()
            signal.raise_signal(signum)
        else:
            held.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.signal(signum, hold)
        kept[signum] = previous if previous is not None else signal.SIG_DFL
    try:
        yield
    finally:
        done = True
        give_back()
        for signum in held[:1]:
            signal.raise_signal(signum)


def _interrupt(signum, frame) -> None:
    _state["interrupted"] = True
    raise KeyboardInterrupt


def _unraisable(unraisable) -> None:
    """A KeyboardInterrupt raised where Python cannot raise it (a weakref or garbage collection
    callback: SQLAlchemy's, as Dagster's storage starts) is dropped, with "Exception ignored in",
    and the build went on, published and exited 0 (an operations review's find). The signal is
    sent again, to the handler in place when it arrives: this command's, or Dagster's in the run.
    It is sent from a thread a moment later: sent at once, it reached the handler still inside
    the callback (a test's find), and was dropped again."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        again = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
        again.daemon = True
        again.start()
    else:
        sys.__unraisablehook__(unraisable)


def _not_the_interrupt(record: logging.LogRecord) -> bool:
    """False for a library's log record of this command's own KeyboardInterrupt: SQLAlchemy, when
    the handler runs while it closes a connection, logs the interrupt with a traceback and raises
    it again (a fresh clone's run of `lost_in_a_callback`). The command says it was interrupted
    itself; the traceback only told the operator of SQLAlchemy's connection."""
    return not (record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt))


def entry() -> None:
    """The `iga-pipeline` command: `main`, then exit without tearing the interpreter down.

    Ctrl-C and SIGTERM stop it with exit status 1, as warehouse.md promises for a failed
    build (they ended it with 130 or 143 and a traceback before the run began). During the
    run Dagster takes both signals (its own handler, SIGTERM mapped to SIGINT as Dagster's
    CLI does), ends the run, and the build fails as any failed run does.

    Freeing the objects of Dagster, Great Expectations and pandas one by one at exit
    took 1.4 s after an incremental build at 1M participations (measured). Everything
    a build writes is closed by then (warehouse, Parquet, report, Dagster's storage),
    so the command runs the exit handlers, flushes its output and ends the process;
    with a thread still working it takes the ordinary exit instead."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.unraisablehook = _unraisable
    logging.lastResort.addFilter(_not_the_interrupt)
    try:
        code = main()
    except BaseException:  # an interrupt, or what one became (an import it cut short)
        if not _state["interrupted"]:
            raise
        if not _state["verdict_said"]:  # a second Ctrl-C after the failed run's verdict: said already
            print("interrupted; " + ("the build had ended" if _state["run_ended"]
                                     else "the previous warehouse was left as it was"), file=sys.stderr)
        code = EXIT_FAILED
    warm_up = sys.modules.get("iga_pipeline.warm_up")
    if warm_up is not None:
        try:
            warm_up.finish(timeout=120)  # a build that failed early: let its imports end
        except KeyboardInterrupt:  # a second Ctrl-C meanwhile (seconds after 'interrupted; ...'): end now,
            pass                   # not with a traceback; a cache cut short is rebuilt
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)  # a thread still working: the ordinary exit, which waits for it
    exit_without_teardown(code)


if __name__ == "__main__":
    entry()
