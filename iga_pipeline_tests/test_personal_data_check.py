"""The asset check `no_personnummer` (quality/personal_data.py, defs/checks.py).

A personnummer in any written form anywhere in a warehouse file fails it, by table.column
and count, and no digit of it reaches the check's metadata; the pipeline's own hex keys
and digests, dates and row numbers do not trip it; columns of short values are not read.
Last, a real build: a warehouse built by `iga-pipeline build`'s job passes, and a
personnummer slipped into its staging stops the next build before the publish.

Nothing is mocked: DuckDB files in tmp_path, the check run through Dagster.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import uuid
from pathlib import Path

import duckdb
import pytest
from conftest import TEST_SECRET, rewrite_parquet, run_cli_build
from dagster import AssetSelection, DagsterInstance, Definitions, define_asset_job
from rawfiles import Person, RawRoot, fu_90_row, fu_end_row, people, register_row

from iga_pipeline.definitions import defs
from iga_pipeline.defs import checks
from iga_pipeline.defs.assets import PARQUET, PUBLISHED, REPORT, mart_key
from iga_pipeline.defs.resources import IGAResource
from iga_pipeline.quality import personal_data
from iga_pipeline.warehouse.build import wal_path
from iga_pipeline.warehouse.catalog import MARTS

pytestmark = [
    pytest.mark.filterwarnings("ignore::dagster.BetaWarning"),
    pytest.mark.filterwarnings("ignore::dagster.PreviewWarning"),
]

WHO = Person(dt.date(1985, 1, 1), 238)
OLD = Person(dt.date(1905, 3, 3), 401)  # 100 or older: the '+' form
FORMS = [(WHO, "YYMMDD-NNNC"), (WHO, "YYMMDDNNNC"), (OLD, "YYMMDD+NNNC"), (WHO, "YYYYMMDDNNNC"),
         (WHO, "YYYYMMDD-NNNC"), (Person(dt.date(1979, 3, 3), 55, coordination=True), "YYMMDD-NNNC")]


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
    for name in ("DAGSTER_HOME", "IGA_ENV", "IGA_RAW_DIR", "IGA_WAREHOUSE"):
        monkeypatch.delenv(name, raising=False)


def make_warehouse(path: Path, *sql: str) -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA marts; CREATE SCHEMA staging")
        con.execute("""CREATE TABLE marts.data_quality_issues AS
                       SELECT 'rejected' AS severity, 'invalid_date' AS reason, 'kommuner/1277/deltagare_cykel'
                              || (i % 8 + 1) || '.csv' AS source_file, (i + 2)::VARCHAR AS source_row,
                              'inskrivningsdatum is not a date YYYY-MM-DD (got ''2011-05-03'')' AS detail,
                              i % 8 + 1 AS cycle
                       FROM range(200) r(i)""")
        con.execute("CREATE TABLE staging.issues AS SELECT * FROM marts.data_quality_issues")
        for statement in sql:
            con.execute(statement)
    finally:
        con.close()
    return path


def run_check(warehouse: Path, raw: Path | None = None, selection=None, name: str = "scan",
              run_id: str | None = None):
    """The project's definitions run in process with a job over `selection` (default: the
    check alone, which then scans the live file `warehouse`). A run id given again stands for
    a re-execution of that run: its steps carry on the same build (candidate)."""
    selection = selection or AssetSelection.checks(checks.no_personnummer)
    merged = Definitions.merge(defs, Definitions(jobs=[define_asset_job(name, selection=selection)]))
    return merged.resolve_job_def(name).execute_in_process(
        instance=DagsterInstance.ephemeral(), run_id=run_id,
        resources={"iga": IGAResource(raw_dir=str(raw or warehouse.parent / "raw"), warehouse=str(warehouse))},
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}}, raise_on_error=False)


def the_check(result):
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "no_personnummer"]
    return evaluation


def said(evaluation) -> str:
    """The text the check shows in the UI: its description and its metadata, but the counts
    (which must be counts: whole numbers)."""
    spec = defs.resolve_asset_graph().get_check_spec(evaluation.asset_check_key)
    texts = [v.value for v in evaluation.metadata.values() if not isinstance(v.value, int)]
    assert {k for k, v in evaluation.metadata.items() if isinstance(v.value, int)} == {
        "columns_scanned", "columns_skipped_by_length", "columns_exempt", "values_scanned",
        "distinct_values_tested"}
    return "\n".join([spec.description, *texts])


def assert_no_digits_of(person: Person, text: str, window: int = 4) -> None:
    """No `window` digits in a row of the personnummer (birth date, serial, check digit) in `text`."""
    digits = person.pnr12
    for run in re.findall(f"[0-9]{{{window},}}", text):
        assert not any(run[i:i + window] in digits for i in range(len(run) - window + 1)), run


@pytest.mark.parametrize("person, form", FORMS, ids=[f for _, f in FORMS[:-1]] + ["samordningsnummer"])
def test_a_personnummer_in_free_text_fails_the_check_by_table_column_and_count(tmp_path, person, form):
    pnr = person.pnr(form)
    warehouse = make_warehouse(
        tmp_path / "iga.duckdb",
        f"UPDATE marts.data_quality_issues SET detail = 'the row names {pnr}; see the file' WHERE source_row = '7'",
        f"UPDATE staging.issues SET detail = '{pnr}' WHERE source_row IN ('7', '8')")
    scan = personal_data.scan(warehouse)
    assert scan.found == {("marts", "data_quality_issues", "detail"): 1, ("staging", "issues", "detail"): 2}

    result = run_check(warehouse)
    evaluation = the_check(result)
    assert evaluation.passed is False
    assert evaluation.metadata["found"].value == (
        "| table.column | values like a personnummer |\n|---|---|\n"
        "| marts.data_quality_issues.detail | 1 |\n| staging.issues.detail | 2 |")
    assert evaluation.metadata["scanned_file"].value == "live"
    assert checks.failure_details(evaluation.metadata) == evaluation.metadata["found"].value  # what the CLI prints
    assert_no_digits_of(person, said(evaluation))
    for event in result.all_events:  # nor in anything else the run recorded
        assert pnr not in str(event) and person.pnr12 not in str(event)


def test_a_bare_ten_digit_column_and_a_space_written_personnummer_are_found(tmp_path):
    """The shortest written form (YYMMDDNNNC, ten characters) is long enough to be read, and a
    space between the date and the four digits is a separator (a review's mutations of
    SHORTEST and of the pattern went unseen)."""
    spaced = WHO.pnr("YYMMDD-NNNC").replace("-", " ")
    warehouse = make_warehouse(
        tmp_path / "iga.duckdb",
        f"CREATE TABLE marts.bare AS SELECT '{WHO.pnr('YYMMDDNNNC')}' AS v",
        f"UPDATE marts.data_quality_issues SET detail = 'x {spaced} x' WHERE source_row = '9'")
    scan = personal_data.scan(warehouse)
    assert scan.found == {("marts", "bare", "v"): 1, ("marts", "data_quality_issues", "detail"): 1}


def test_hex_digests_dates_row_numbers_and_the_pipelines_keys_do_not_trip_it(tmp_path):
    sha = hashlib.sha256(b"a delivery").hexdigest()
    digit_rich = "ab" + "0123456789" + "cd" + "987654321012" + "ef" * 19  # 64 hex: ten and twelve digits in a row
    assert len(digit_rich) == 64
    warehouse = make_warehouse(
        tmp_path / "iga.duckdb",
        f"""CREATE TABLE marts.lookalikes AS SELECT * FROM (VALUES
            ('{sha}'), ('{digit_rich}'), ('{digit_rich[:16]}'), ('c3-0123456789abcdef'),
            ('2011-05-03'), ('2011-05-03T08:30:00'), ('20110503'), ('row 123456789'),
            ('Båstad!12345'), ('12345678901'), ('1234567890123'), ('cost 1 234 567 890 kr')) t(detail)""",
        # the pipeline's own columns, holding what it writes there (a 10-digit byte count too)
        f"""CREATE TABLE staging.build_inputs AS SELECT * FROM (VALUES
            ('code', '{sha}'), ('full_build_bytes', '1572986880')) t(name, fingerprint)""",
        f"""CREATE TABLE marts.fct_participation AS SELECT
            '{digit_rich}' AS person_key, 'c1-0123456789012345' AS participation_id, 1 AS cycle""",
        f"CREATE TABLE staging.survey_responses AS SELECT '{digit_rich[:16]}' AS response_id, '{sha}' AS sha256",
        # and one personnummer, so that the scan is seen to find what it should
        f"UPDATE marts.data_quality_issues SET detail = 'x {WHO.pnr()} x' WHERE source_row = '9'")
    scan = personal_data.scan(warehouse)
    assert scan.found == {("marts", "data_quality_issues", "detail"): 1}
    assert ("marts", "lookalikes", "detail") in scan.counts
    assert set(scan.exempt) == {("marts", "fct_participation", "person_key"),
                                ("marts", "fct_participation", "participation_id"),
                                ("staging", "build_inputs", "fingerprint"),
                                ("staging", "survey_responses", "response_id"),
                                ("staging", "survey_responses", "sha256")}
    # the byte count is what the exemption is for: in any other column it would count
    con = duckdb.connect(str(warehouse))
    con.execute("UPDATE staging.build_inputs SET name = fingerprint")
    con.close()
    assert personal_data.scan(warehouse).found[("staging", "build_inputs", "name")] == 1


def test_ten_digits_at_the_end_of_a_hex_digest_do_not_trip_it(tmp_path):
    """The match must start after something that is not a hex digit: a digest that ends in ten
    or twelve digits after a letter a-f is no personnummer, in any column. A leading bound of
    'not a digit' (a mutation review's find: the digests of the other test have their digit
    runs inside, where the trailing bound already refuses them) failed builds on such digests."""
    tail10 = "ef" * 27 + "0123456789"
    tail12 = "ab" * 26 + "198501012382"
    assert len(tail10) == len(tail12) == 64
    warehouse = make_warehouse(
        tmp_path / "iga.duckdb",
        f"CREATE TABLE marts.digests AS SELECT * FROM (VALUES ('{tail10}'), ('{tail12}'), ('{tail10[-16:]}')) "
        "t(digest)",
        f"UPDATE marts.data_quality_issues SET detail = 'x {WHO.pnr()} x' WHERE source_row = '9'")
    scan = personal_data.scan(warehouse)
    assert ("marts", "digests", "digest") in scan.counts
    assert scan.found == {("marts", "data_quality_issues", "detail"): 1}


def test_a_column_without_statistics_is_searched_not_skipped(tmp_path):
    """DuckDB's statistics say nothing of an empty table's column: the scan searches it rather
    than counting it as skipped by length (a mutation review's find: taking 'no statistics'
    as 'short' was seen only in the check's metadata, which no test read for it)."""
    warehouse = make_warehouse(tmp_path / "iga.duckdb", "CREATE TABLE marts.empty (note VARCHAR)")
    scan = personal_data.scan(warehouse)
    assert scan.counts[("marts", "empty", "note")] == 0
    assert ("marts", "empty", "note") not in scan.skipped_short


def test_a_personnummer_in_a_column_of_another_type_that_holds_text_is_found(tmp_path):
    """The scan read VARCHAR columns only (an audit of comments: "every text column"): a list,
    struct, map, JSON, ENUM or BLOB column holding one passed. Each is read as text now."""
    pnr = WHO.pnr()
    warehouse = make_warehouse(tmp_path / "iga.duckdb", f"""
        CREATE TABLE marts.nested AS SELECT
            ['a', '{pnr}'] AS list, {{'who': '{pnr}'}} AS struct, MAP {{'k': '{pnr}'}} AS map,
            '{{"pnr": "{pnr}"}}'::JSON AS json, '{pnr}'::ENUM('{pnr}', 'x') AS enum, '{pnr}'::BLOB AS blob,
            ['short'] AS clean, 8501012382 AS number""")
    found = personal_data.scan(warehouse).found
    assert found == {("marts", "nested", c): 1 for c in ("list", "struct", "map", "json", "enum", "blob")}


def test_a_column_of_short_values_is_not_read(tmp_path):
    warehouse = make_warehouse(tmp_path / "iga.duckdb",
                               "CREATE TABLE marts.codes AS SELECT (i % 1000)::VARCHAR AS code, "
                               "repeat('x', i % 9) AS up_to_eight, 'K' AS gender FROM range(5000) r(i)")
    scan = personal_data.scan(warehouse)
    short = {("marts", "codes", "code"), ("marts", "codes", "up_to_eight"), ("marts", "codes", "gender"),
             ("marts", "data_quality_issues", "severity"), ("marts", "data_quality_issues", "source_row"),
             ("staging", "issues", "severity"), ("staging", "issues", "source_row")}
    assert set(scan.skipped_short) == short
    assert not short & set(scan.counts)
    assert scan.values == 200 * 6  # the three long columns of each issues table
    assert scan.distinct_values == 2 * (1 + 1 + 8)  # reason, detail, source_file (one per cycle)
    assert the_check(run_check(warehouse)).metadata["columns_skipped_by_length"].value == len(short)

    # One long value makes the column read again, even before the file is checkpointed
    # (DuckDB's statistics follow updates; a write-ahead log is replayed on opening).
    con = duckdb.connect(str(warehouse))
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.execute(f"UPDATE marts.codes SET code = '{WHO.pnr()}' WHERE code = '17'")
    con.close()
    assert wal_path(warehouse).exists()
    scan = personal_data.scan(warehouse)
    assert scan.found == {("marts", "codes", "code"): 5}
    assert ("marts", "codes", "code") not in scan.skipped_short


# --- a real build -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small warehouse built by the job `iga-pipeline build` runs: (raw root, live file, result)."""
    from iga_pipeline import cli
    from iga_pipeline.settings import Paths

    root = tmp_path_factory.mktemp("built")
    raw = RawRoot(root / "raw")
    a, b, c = people(3)
    raw.register("1277", 1, [register_row(a, 1), register_row(b, 1)])
    raw.register("1257", 4, [register_row(c, 4)])
    raw.folkuniversitetet(4, "slut", [fu_end_row(c, kommun="Örkelljunga", utfallskod="1")])
    raw.folkuniversitetet(4, "90dagar", [fu_90_row(c, kommun="Örkelljunga", utfallskod="3")])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
        for name in ("DAGSTER_HOME", "IGA_ENV", "IGA_RAW_DIR", "IGA_WAREHOUSE"):
            mp.delenv(name, raising=False)
        result = cli.run_build_job(Paths.from_env(raw.root, root / "warehouse" / "iga.duckdb"))
    return raw.root, root / "warehouse" / "iga.duckdb", result


def test_the_build_runs_the_check_on_its_candidate_and_passes(built):
    _, live, result = built
    assert result.success
    evaluation = the_check(result)
    assert evaluation.passed
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert metadata["scanned_file"] == "candidate"
    assert metadata["found"] == "none"
    assert metadata["columns_scanned"] >= 10 and metadata["values_scanned"] > 0
    assert metadata["columns_exempt"] >= 8  # person_key, participation_id, sha256, ... in marts and staging
    assert PUBLISHED in {m.asset_key for m in result.asset_materializations_for_node("warehouse__published")}
    assert live.exists()


def _copy_of(built, tmp_path) -> tuple[Path, Path]:
    """The built site's raw root and warehouse folder, copied: (the copy, its live warehouse)."""
    raw, live, _ = built
    site = tmp_path / "site"
    shutil.copytree(raw, site / "raw")
    shutil.copytree(live.parent, site / "warehouse")
    return site, site / "warehouse" / "iga.duckdb"


def test_a_personnummer_in_the_staging_stops_the_build_before_the_publish(built, tmp_path):
    """A personnummer slipped into one cycle's staged issues, as an adapter that let one through
    into a detail would stage it: the next build of the warehouse (the staged files' pandera
    checks, marts, checks, publish) carries it into staging.issues and marts.data_quality_issues
    of its candidate; the check fails there, and the live warehouse stays as it was."""
    site, live = _copy_of(built, tmp_path)
    before = live.read_bytes()
    pnr = WHO.pnr("YYYYMMDD-NNNC")
    rewrite_parquet(site / "warehouse" / "staging" / "cycle=1" / "issues.parquet",
                    f"SELECT * FROM {{src}} UNION ALL BY NAME SELECT 'warning' AS severity, 'invalid_code' AS reason, "
                    f"'kommuner/1277/deltagare_cykel1.csv' AS source_file, '3' AS source_row, "
                    f"'a remark: {pnr}' AS detail, 1 AS cycle")

    marts = AssetSelection.assets(*(mart_key(m.name) for m in MARTS))
    selection = marts.downstream() | AssetSelection.checks(checks.pandera_checks)
    result = run_check(live, site / "raw", selection, "rebuild")
    assert not result.success
    evaluation = the_check(result)
    assert evaluation.passed is False
    assert evaluation.metadata["scanned_file"].value == "candidate"
    assert evaluation.metadata["found"].value.splitlines()[2:] == [
        "| marts.data_quality_issues.detail | 1 |", "| staging.issues.detail | 1 |"]
    assert_no_digits_of(WHO, said(evaluation))
    assert not result.asset_materializations_for_node("warehouse__published")
    assert live.read_bytes() == before


def test_a_publish_run_after_the_check_failed_does_not_publish_its_candidate(built, tmp_path):
    """Dagster's blocking check stops the publish within its own run only. A later run of the
    same build (a re-execution of the report, the exports and the publish, which carries on
    with the candidate of the run it re-executes) reads the check's verdict kept beside the
    candidate: the publish refuses, naming the check, and the live warehouse stays."""
    site, live = _copy_of(built, tmp_path)
    before = live.read_bytes()
    rewrite_parquet(site / "warehouse" / "staging" / "cycle=1" / "issues.parquet",
                    f"SELECT * REPLACE ('a remark: {WHO.pnr()}' AS detail) FROM {{src}}")
    build_id = str(uuid.uuid4())
    marts = AssetSelection.assets(*(mart_key(m.name) for m in MARTS))  # with their checks
    first = run_check(live, site / "raw", marts | AssetSelection.checks(checks.pandera_checks), "marts",
                      run_id=build_id)
    assert not first.success and the_check(first).passed is False
    assert all(e.passed for e in first.get_asset_check_evaluations() if e.check_name != "no_personnummer")

    rest = run_check(live, site / "raw", AssetSelection.assets(REPORT, PARQUET, PUBLISHED), "rest", run_id=build_id)
    assert not rest.success
    (refusal,) = [e.step_failure_data.error.message for e in rest.all_events if e.is_step_failure]
    assert refusal.strip().endswith("has not passed every blocking check, so it is not published: "
                                    "no_personnummer (failed)")
    assert live.read_bytes() == before


def test_the_checks_run_on_their_own_read_the_live_warehouse_and_leave_no_verdict(built, tmp_path):
    """The checks of the marts run from the UI without the marts check the live warehouse
    (their metadata say so) and record no verdict: there is no candidate for one, and its
    folder of verdicts would lie beside the live file until a publish swept it an hour on."""
    site, live = _copy_of(built, tmp_path)
    entries = sorted(p.name for p in live.parent.iterdir())
    result = run_check(live, site / "raw", AssetSelection.checks(checks.gx_mart_checks, checks.no_personnummer),
                       "checks")
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 11 and all(e.passed for e in evaluations)
    assert {e.metadata["scanned_file" if e.check_name == "no_personnummer" else "validated_file"].value
            for e in evaluations} == {"live"}
    assert sorted(p.name for p in live.parent.iterdir()) == entries


def test_iga_pipeline_build_names_the_columns_and_keeps_the_previous_warehouse(built, tmp_path):
    """The same through `iga-pipeline build --cycle 4` (which stages cycle 4 again and leaves
    cycle 1's staging as it is): exit 1, the check named with table.column and count on
    stderr, no digit of the personnummer said anywhere, the previous warehouse kept."""
    site, live = _copy_of(built, tmp_path)
    before = live.read_bytes()
    rewrite_parquet(site / "warehouse" / "staging" / "cycle=1" / "issues.parquet",
                    f"SELECT * REPLACE ('{WHO.pnr('YYMMDDNNNC')} again' AS detail) FROM {{src}}")
    ((rows,),) = duckdb.sql(f"SELECT count(*) FROM '{site}/warehouse/staging/cycle=1/issues.parquet'").fetchall()
    assert rows > 0

    build = run_cli_build(site / "raw", live, "--cycle", "4")
    assert build.exit_code == 1, build.stdout + build.stderr
    said_on_stderr = build.stderr.split("check no_personnummer of marts/fct_participation failed:", 1)[1]
    assert f"| marts.data_quality_issues.detail | {rows} |" in said_on_stderr
    assert f"| staging.issues.detail | {rows} |" in said_on_stderr
    # (six digits in a row: the log's lines carry run ids and process ids)
    assert_no_digits_of(WHO, build.stdout + build.stderr, window=6)
    assert live.read_bytes() == before
