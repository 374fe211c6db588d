"""The bundled data, built end to end through the CLI, reproduces Table 1 cell for cell."""

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest

from iga_pipeline import cli, reference

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("bundled") / "iga.duckdb"
    with pytest.MonkeyPatch.context() as mp:  # the default build, whatever the caller's shell sets
        for name in ("DAGSTER_HOME", "IGA_ENV", "IGA_PSEUDONYM_KEY", "IGA_RAW_DIR", "IGA_WAREHOUSE"):
            mp.delenv(name, raising=False)
        code = cli.main(["build", "--raw-dir", str(REPO / "data" / "raw"), "--warehouse", str(warehouse)])
    con = duckdb.connect(str(warehouse), read_only=True)
    yield code, con, warehouse
    con.close()


def pct(share: float) -> int:
    return int((Decimal(repr(share)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_default_build_exits_zero(built):
    code, _, _ = built
    assert code == 0


def test_table1_counts_per_cycle(built):
    _, con, _ = built
    printed = reference.table1_published().set_index("row_label")
    rows = con.execute("""
        SELECT cycle, completed, work_at_end, studies_at_end, work_90d, studies_90d, followed_up
        FROM marts.outcomes_by_cycle ORDER BY cycle""").fetchall()
    assert [r[0] for r in rows] == list(range(1, 9))
    for cycle, completed, we, se, w90, s90, followed in rows:
        p = printed.loc[f"Cykel {cycle}"]
        assert (completed, we, se) == (p.completed, p.work_at_end, p.studies_at_end), cycle
        if cycle == 8:
            assert not followed and w90 is None and s90 is None
        else:
            assert followed and (w90, s90) == (p.work_90d, p.studies_90d), cycle


def test_table1_delsumma_and_totalt(built):
    _, con, _ = built
    printed = reference.table1_published().set_index("row_label")
    summary = {r[0]: r[1:] for r in con.execute("""
        SELECT scope, cycles, completed, work_at_end, studies_at_end, work_90d, studies_90d,
               share_work_at_end, share_studies_at_end, share_work_90d, share_studies_90d
        FROM marts.outcomes_summary""").fetchall()}
    for scope, label, cycles in (("followed_up", "Delsumma", "1-7"), ("all", "TOTALT", "1-8")):
        got = summary[scope]
        p = printed.loc[label]
        assert got[0] == cycles
        assert got[1:6] == (p.completed, p.work_at_end, p.studies_at_end, p.work_90d, p.studies_90d)
        # Shares are unrounded fractions; rounded half up they give the printed whole percent.
        assert got[6] == pytest.approx(p.work_at_end / p.completed, abs=1e-12)
        assert [pct(s) for s in got[6:10]] == [p.share_work_at_end, p.share_studies_at_end,
                                               p.share_work_90d, p.share_studies_90d]


def test_each_cycles_shares_are_of_its_completers(built):
    """warehouse.md's shares per cycle are its counts over its completers, not over everyone
    enrolled (a review's mutation divided by `enrolled` and no test saw it); NULL at 90 days
    where the cycle was not followed up."""
    _, con, _ = built
    rows = con.execute("""
        SELECT cycle, enrolled, completed, work_at_end, studies_at_end, work_90d, studies_90d,
               share_work_at_end, share_studies_at_end, share_work_90d, share_studies_90d
        FROM marts.outcomes_by_cycle ORDER BY cycle""").fetchall()
    assert all(enrolled > completed > 0 for _, enrolled, completed, *_ in rows)  # the two differ
    for cycle, _, completed, *figures in rows:
        for count, share in zip(figures[:4], figures[4:]):
            if count is None:
                assert share is None, cycle
            else:
                assert share == pytest.approx(count / completed, abs=1e-12), cycle


def test_every_90_day_count_is_null_where_the_cycle_was_not_followed_up(built):
    """warehouse.md: unknown_90d is NULL when not followed up, as work_90d and studies_90d are
    (a review's mutations gave unknown_90d and other_90d 0 in cycle 8 and no test saw it);
    where a cycle was followed up, its four outcome classes sum to its completers."""
    _, con, _ = built
    rows = con.execute("""
        SELECT cycle, followed_up, completed, work_at_end + studies_at_end + other_at_end + unknown_at_end,
               work_90d, studies_90d, other_90d, unknown_90d
        FROM marts.outcomes_by_cycle ORDER BY cycle""").fetchall()
    assert [cycle for cycle, followed, *_ in rows if not followed] == [8]
    for cycle, followed, completed, at_end, *at_90d in rows:
        assert at_end == completed, cycle
        if followed:
            assert None not in at_90d and sum(at_90d) == completed, cycle
        else:
            assert at_90d == [None, None, None, None], cycle


def test_early_leavers_and_repeat_participants(built):
    _, con, _ = built
    dropped = con.execute("SELECT sum(dropped_out) FROM marts.outcomes_by_cycle").fetchone()[0]
    reasons = dict(con.execute("""SELECT dropout_reason, count(*) FROM marts.fct_participation
                                  WHERE NOT completed GROUP BY ALL""").fetchall())
    assert dropped > 0 and sum(reasons.values()) == dropped
    assert set(reasons) <= reference.register_codes("avbrott_orsak") and len(reasons) >= 3
    repeaters = con.execute("""SELECT count(*) FROM (SELECT person_key FROM marts.fct_participation
                               GROUP BY person_key HAVING count(DISTINCT cycle) > 1)""").fetchone()[0]
    assert repeaters > 0


def test_every_row_level_defect_is_present(built):
    _, con, _ = built
    reasons = {r[0] for r in con.execute("SELECT DISTINCT reason FROM marts.data_quality_issues").fetchall()}
    assert reasons == {
        "invalid_personnummer", "invalid_date", "invalid_code", "missing_required", "cycle_mismatch",
        "conflicting_enrollment", "conflicting_duplicate", "orphan_outcome", "duplicate_row",
        "missing_outcome", "municipality_mismatch",
    }


def test_nothing_lost(built):
    _, con, _ = built
    unbalanced = con.execute("""SELECT count(*) FROM marts.ingest_audit
        WHERE rows_read <> rows_loaded + rows_rejected + rows_duplicate""").fetchone()[0]
    assert unbalanced == 0
    rejected_rows = con.execute("SELECT sum(rows_rejected) FROM marts.ingest_audit").fetchone()[0]
    rejected_issues = con.execute("""SELECT count(*) FROM marts.data_quality_issues
        WHERE severity = 'rejected' AND source_row IS NOT NULL""").fetchone()[0]
    assert rejected_rows == rejected_issues > 0
    files = {p.relative_to(REPO / "data" / "raw").as_posix()
             for p in (REPO / "data" / "raw").rglob("*") if p.is_file()}
    audited = {r[0] for r in con.execute("SELECT source_file FROM marts.ingest_audit").fetchall()}
    assert audited == files


def test_contract_columns(built):
    _, con, _ = built
    expected = {
        "outcomes_by_cycle": "cycle provider target_group enrolled completed dropped_out work_at_end "
                             "studies_at_end unknown_at_end followed_up work_90d studies_90d unknown_90d "
                             "share_work_at_end share_studies_at_end share_work_90d share_studies_90d",
        "outcomes_summary": "scope cycles completed work_at_end studies_at_end work_90d studies_90d "
                            "share_work_at_end share_studies_at_end share_work_90d share_studies_90d",
        "fct_participation": "participation_id person_key cycle municipality_code municipality provider "
                             "target_group gender birth_region completed dropout_reason status_end "
                             "status_end_detail status_90d status_90d_detail",
        "fct_intervention": "participation_id intervention hours",
        "data_quality_issues": "source_file source_row severity reason detail",
        "ingest_audit": "source_file source_kind status rows_read rows_loaded rows_rejected "
                        "rows_duplicate sha256 reason",
        "outcomes_by_municipality": "municipality_code municipality cycle enrolled completed dropped_out "
                                    "work_at_end studies_at_end unknown_at_end followed_up work_90d "
                                    "studies_90d unknown_90d suppressed",
    }
    for table, columns in expected.items():
        got = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' "
            "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()]
        assert got[: len(columns.split())] == columns.split(), table


def test_survey_counts_are_zero_not_null_in_cycles_without_a_survey(built):
    """warehouse.md: counts are integers (large_or_very_large was NULL in the seven cycles
    without a survey, a review's find)."""
    _, con, _ = built
    rows = con.execute("SELECT cycle, questionnaires, answered, large_or_very_large FROM marts.survey_by_cycle "
                       "ORDER BY cycle").fetchall()
    assert len(rows) == 8 and all(None not in row for row in rows), rows
    assert [r for r in rows if r[1] == 0] and all(r[3] == 0 for r in rows if r[1] == 0)


def test_survey_coverage_is_answered_questionnaires_over_completers(built):
    """The catalog's `coverage` (answered / completed): a questionnaire left unanswered does
    not count (a review's mutation counted questionnaires and no test saw it)."""
    _, con, _ = built
    rows = con.execute("SELECT cycle, questionnaires, answered, completed, coverage FROM marts.survey_by_cycle "
                       "ORDER BY cycle").fetchall()
    assert any(questionnaires > answered for _, questionnaires, answered, _, _ in rows)  # they differ
    for cycle, _, answered, completed, coverage in rows:
        assert coverage == pytest.approx(answered / completed, abs=1e-12), cycle


def test_parquet_exports_match_the_warehouse(built):
    _, con, warehouse = built
    parquet = warehouse.parent / "parquet"
    for table in ("outcomes_by_cycle", "fct_participation", "data_quality_issues"):
        n = con.execute(f"SELECT count(*) FROM marts.{table}").fetchone()[0]
        m = con.execute(f"SELECT count(*) FROM read_parquet('{parquet / (table + '.parquet')}')").fetchone()[0]
        assert n == m > 0


def test_data_quality_issues_are_in_one_order_whatever_the_build(built):
    """The mart, and so its Parquet export, lists the issues in one order: no tie of its sort
    is left to the order the staged issues were read in. The bundled data has a row with a
    missing status both at the end of the cycle and at 90 days (one source row, one reason,
    two details) 12 times; a review found such rows swapped from build to build of the same
    files (16 orders in 27 builds), the Parquet file's bytes differing with them."""
    _, con, warehouse = built
    order = (r"cycle NULLS FIRST, source_file, severity, "
             r"try_cast(regexp_extract(source_row, '(\d+)$', 1) AS INTEGER) NULLS FIRST, reason")
    ties = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT * FROM marts.data_quality_issues) "
                       f"GROUP BY {order.replace(' NULLS FIRST', '')} HAVING count(*) > 1").fetchall()
    assert ties, "the bundled data no longer has rows that tie on the mart's first keys"
    export = warehouse.parent / "parquet" / "data_quality_issues.parquet"
    for relation in ("marts.data_quality_issues", f"read_parquet('{export}')"):
        rows = con.execute(f"SELECT * FROM {relation}").fetchall()
        assert rows == con.execute(f"SELECT * FROM {relation} ORDER BY {order}, source_row, detail").fetchall()


def test_catalog_describes_every_mart_column(built):
    """The catalog (and so docs/bi-columns.md and the asset metadata) matches the warehouse."""
    from iga_pipeline.warehouse.catalog import MARTS

    _, con, _ = built
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'").fetchall()}
    assert tables == {m.name for m in MARTS}
    for m in MARTS:
        got = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' "
            "AND table_name = ? ORDER BY ordinal_position", [m.name]).fetchall()]
        assert got == list(m.columns), m.name


def test_every_mart_and_column_carries_its_meaning_for_bi_tools(built):
    """The catalog's descriptions are DuckDB comments in the warehouse, which Metabase,
    Superset and DBeaver show beside the names (an exploratory review found bare names)."""
    from iga_pipeline.warehouse.catalog import MARTS

    _, con, _ = built
    tables = dict(con.execute("SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'marts'").fetchall())
    columns = {(t, c): comment for t, c, comment in con.execute(
        "SELECT table_name, column_name, comment FROM duckdb_columns() WHERE schema_name = 'marts'").fetchall()}
    for m in MARTS:
        assert tables[m.name] == f"{m.description} One row per {m.grain}.", m.name
        for column, meaning in m.columns.items():
            assert columns[(m.name, column)] == meaning, (m.name, column)


def test_bi_column_reference_is_generated():
    from iga_pipeline.warehouse.columns_doc import render

    assert (REPO / "docs" / "bi-columns.md").read_text(encoding="utf-8") == render()


def test_a_column_shared_by_marts_has_one_type(built):
    """BI tools join the marts on their shared columns (cycle, municipality_code, ...):
    one type each. `completed` is the exception by the contract: a flag per
    participation in fct_participation, a count in the aggregates."""
    _, con, _ = built
    types: dict[str, set[str]] = {}
    for column, data_type in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'marts'").fetchall():
        types.setdefault(column, set()).add(data_type)
    assert types["cycle"] == {"INTEGER"}
    assert {c: t for c, t in types.items() if len(t) > 1 and c != "completed"} == {}


def test_the_reference_goals_say_null_where_a_goal_has_no_value(built):
    _, con, _ = built
    rows = dict(con.execute("SELECT goal_id, (revises, min_cycle_coverage) FROM reference.goals").fetchall())
    assert rows == {"HM1": (None, "0.5"), "HM2": (None, None), "HM2_rev": ("HM2", None), "DM1": (None, None)}
