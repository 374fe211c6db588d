"""Shared fixtures: a raw root in tmp_path, the pseudonym key, ingestion and the CLI build.

Raw files are written by `rawfiles.RawRoot` (the contract's formats, byte for
byte). Nothing is mocked: adapters read real files, `ingest` runs the real
`ingest_cycle`, `cli_build` runs the real `iga-pipeline build` in process.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import redirect_stderr, redirect_stdout, suppress
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # `import rawfiles` in any import mode

from rawfiles import Person, RawRoot  # noqa: E402

from iga_pipeline.ingest import CycleIngest, ingest_cycle  # noqa: E402
from iga_pipeline.pseudonym import PseudonymKey  # noqa: E402

TEST_SECRET = "iga-tests-secret-not-the-development-key"
TEST_KEY = PseudonymKey(TEST_SECRET.encode(), is_development=False)


CHROMIUM = Path(os.environ.get("IGA_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_or_skip() -> Path:
    """Debian's chromium (scripts/browser-deps.sh): a browser test is skipped without it, but
    fails in CI, where it must be there."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run scripts/browser-deps.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def expected_person_key(who: Person | str) -> str:
    """HMAC-SHA256 of the normalised personnummer, computed here independently."""
    pnr12 = who.pnr12 if isinstance(who, Person) else who
    return hmac.new(TEST_SECRET.encode(), pnr12.encode("ascii"), hashlib.sha256).hexdigest()


def expected_name_id(name: str, secret: str = TEST_SECRET) -> str:
    """A sender's own name (a stray file's, a worksheet's) as the warehouse shows it: the first
    10 hex digits of HMAC-SHA256 under the key, 0-9 written g-p (never shaped like a
    personnummer), computed here independently of pseudonym.py."""
    digest = hmac.new(secret.encode(), f"name|{name}".encode("utf-8", "surrogatepass"),
                      hashlib.sha256).hexdigest()[:10]
    return "".join("ghijklmnop"[int(c)] if c.isdigit() else c for c in digest)


def assert_audit_balances(audit: pd.DataFrame) -> None:
    """warehouse.md, 'Nothing lost': read = loaded + rejected + duplicates, for every file."""
    assert len(audit), "the audit is empty"
    for row in audit.to_dict("records"):
        assert row["rows_read"] == row["rows_loaded"] + row["rows_rejected"] + row["rows_duplicate"], row


@pytest.fixture
def expected_key():
    """expected_key(person or pnr12) -> the person_key the pipeline must produce."""
    return expected_person_key


@pytest.fixture
def key() -> PseudonymKey:
    return TEST_KEY


@pytest.fixture
def raw(tmp_path) -> RawRoot:
    return RawRoot(tmp_path / "raw")


@pytest.fixture
def ingest(raw, key):
    """ingest(cycle) -> CycleIngest for the raw root; the audit must balance."""

    def run(cycle: int) -> CycleIngest:
        result = ingest_cycle(raw.root, cycle, key)
        assert_audit_balances(result.audit)
        return result

    return run


# --- the headless build ----------------------------------------------------------------

@dataclass
class BuildResult:
    exit_code: int
    stdout: str
    stderr: str
    warehouse: Path

    def query(self, sql: str, params=None) -> list[tuple]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def frame(self, sql: str, params=None) -> pd.DataFrame:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql, params or []).df()
        finally:
            con.close()


def rewrite_parquet(path: Path, select: str) -> None:
    """Replace a staged file by a query over it (`{src}` in `select` stands for the file)."""
    con = duckdb.connect()
    try:
        query = select.format(src=f"read_parquet('{path}')")
        con.execute(f"COPY ({query}) TO '{path}.tmp' (FORMAT parquet)")
    finally:
        con.close()
    os.replace(f"{path}.tmp", path)


def sigkill_group(proc: subprocess.Popen) -> int:
    """SIGKILL a process started with `start_new_session` and every process of its group (its
    workers), and wait for it: its exit status (-9 if the kill ended it)."""
    with suppress(ProcessLookupError):  # the group gone already
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=30)


def run_cli_build(raw_dir: Path, warehouse: Path, *args: str, **env) -> BuildResult:
    """`iga-pipeline build --raw-dir D --warehouse F [args]` in process, with the test key."""
    code, out, err = run_cli(["build", "--raw-dir", str(raw_dir), "--warehouse", str(warehouse), *args], **env)
    return BuildResult(code, out, err, Path(warehouse))


def run_cli(argv: list[str], **env) -> tuple[int, str, str]:
    """`iga-pipeline ARGV` in process with the test key, `env` set (None: unset) and the
    variables that choose the paths, the instance and the environment unset otherwise:
    (exit status, stdout, stderr)."""
    from iga_pipeline import cli

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
        for name in ("DAGSTER_HOME", "IGA_ENV", "IGA_RAW_DIR", "IGA_WAREHOUSE"):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            if value is None:
                mp.delenv(name, raising=False)
            else:
                mp.setenv(name, value)
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def cli_build():
    return run_cli_build


def _hostile_cases() -> dict[str, int]:
    return dict(getattr(sys.modules.get("test_hostile_files"), "CASES", None) or {})


_CASES_OF_WORKERS: dict[str, int] = {}  # under pytest-xdist, what the workers counted


def pytest_configure(config):
    """Ctrl-C as Python has it, however the suite was started. A shell without job control
    starts `pytest ... &` with SIGINT ignored; Dagster's in-process runs then map SIGTERM to
    that too and leave it so (`dagster._utils.interrupts`), and every process a later test
    starts inherits both ignored: the Ctrl-C test of `cli._signals_held` and three tests that
    end child processes failed, depending on which files had shared their worker (2026-12-06)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _background_imports_ended():
    """After each test, what `iga-pipeline build` does before its process ends (`cli.entry`):
    wait for the background imports a build's run started (warm_up.py). A test's build runs
    in the test's process, which goes on: one that failed early left the thread importing,
    with the collector paused for the whole process, into the next test (a review's find,
    2026-12-06: test_collector's check of the collector then failed after it)."""
    yield
    warm_up = sys.modules.get("iga_pipeline.warm_up")
    if warm_up is not None:
        warm_up.finish(timeout=120)


def pytest_sessionfinish(session):
    """A pytest-xdist worker hands its count of hostile cases to the controller."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["hostile_cases"] = _hostile_cases()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):  # pytest-xdist's hook, in the controller
    for name, n in getattr(node, "workeroutput", {}).get("hostile_cases", {}).items():
        _CASES_OF_WORKERS[name] = _CASES_OF_WORKERS.get(name, 0) + n


def hostile_total(cases: dict[str, int]) -> int:
    """The cases run. A name with a comma ('text:register, rows counted') counts some of its
    generator's cases again, those that reached a point: not more cases."""
    return sum(n for name, n in cases.items() if ", " not in name)


def pytest_terminal_summary(terminalreporter):
    """How many generated and catalogued cases test_hostile_files.py ran (docs/reliability.md)."""
    cases = _hostile_cases() or _CASES_OF_WORKERS
    if cases:
        terminalreporter.write_line(f"[hostile files] {hostile_total(cases)} cases: "
                                    + ", ".join(f"{k}={v}" for k, v in sorted(cases.items())))


def someone_waits_for(lock: Path, thread: threading.Thread) -> bool:
    """Whether a flock of `lock` is blocked, waiting (a line `N: -> FLOCK ...` of /proc/locks
    naming its inode), before `thread` ends: a test sees a run or call wait for a lock, rather
    than asserting it is still going after a sleep."""
    inode = f":{lock.stat().st_ino}"
    deadline = time.monotonic() + 300
    while thread.is_alive() and time.monotonic() < deadline:
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "->" in fields and fields[-3].endswith(inode):
                return True
        time.sleep(0.05)
    return False
