"""Great Expectations on a large fact table: one cycle at a time, uniqueness over the table."""

from __future__ import annotations

import shutil

import duckdb
import pytest
from conftest import someone_waits_for

from iga_pipeline.quality import expectations
from iga_pipeline.synth import scale

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, cli_build):
    root = tmp_path_factory.mktemp("gx-batches")
    scale.generate_scaled(root / "raw", 1_200, seed=5)
    built = cli_build(root / "raw", root / "wh" / "iga.duckdb")
    assert built.exit_code == 0
    return built.warehouse


def _results(warehouse, tmp_path, batch_from_rows, monkeypatch):
    monkeypatch.setattr(expectations, "BATCH_FROM_ROWS", batch_from_rows)
    return expectations.run_suites(warehouse, tmp_path)


def test_batches_give_the_same_verdicts(warehouse, tmp_path, monkeypatch):
    whole = _results(warehouse, tmp_path / "whole", 10**9, monkeypatch)
    batched = _results(warehouse, tmp_path / "batched", 0, monkeypatch)
    assert whole == batched
    assert all(r.success for r in batched.values())
    pages = list((tmp_path / "batched" / "gx").rglob("validations/marts/fct_participation/**/*.html"))
    assert len(pages) == 8  # one validation per cycle
    # GX's template for secrets is gone (it was parsed at every store look-up: 0.15 s a run)
    assert not (tmp_path / "batched" / "gx" / "uncommitted" / "config_variables.yml").exists()
    # nor is any batch fingerprinted (every row hashed, for a marker nothing reads)
    results = list((tmp_path / "batched" / "gx" / "uncommitted" / "validations").rglob("*.json"))
    assert len(results) == 8 + len(expectations.SUITES) - 1  # one per cycle of fct_participation, one per other suite
    assert not [r for r in results if "pandas_data_fingerprint" in r.read_text()]


def test_a_duplicate_across_cycles_is_found(warehouse, tmp_path, monkeypatch):
    broken = tmp_path / "broken.duckdb"
    shutil.copyfile(warehouse, broken)
    con = duckdb.connect(str(broken))
    con.execute("""INSERT INTO marts.fct_participation
                   SELECT * REPLACE (2 AS cycle) FROM marts.fct_participation WHERE cycle = 3 LIMIT 1""")
    con.execute("UPDATE marts.fct_participation SET status_end = 'bogus' WHERE cycle = 5 AND rowid IN "
                "(SELECT min(rowid) FROM marts.fct_participation WHERE cycle = 5)")
    con.execute("UPDATE marts.fct_participation SET person_key = upper(person_key) WHERE cycle = 7 AND rowid IN "
                "(SELECT min(rowid) FROM marts.fct_participation WHERE cycle = 7)")
    con.close()
    for threshold in (10**9, 0):
        result = _results(broken, tmp_path / str(threshold), threshold, monkeypatch)["fct_participation"]
        assert not result.success
        assert set(result.failed) == {"expect_column_values_to_be_unique(participation_id): 2 unexpected",
                                      "expect_column_values_to_be_in_set(status_end): 1 unexpected",
                                      "expect_column_values_to_be_in_set(person_key_is_hex64): 1 unexpected"}


def _copy_with(warehouse, path, *sql):
    shutil.copyfile(warehouse, path)
    con = duckdb.connect(str(path))
    for statement in sql:
        con.execute(statement)
    con.close()
    return path


def test_unchanged_cycles_are_not_validated_again(warehouse, tmp_path, monkeypatch):
    root = tmp_path / "project"
    first = _results(warehouse, root, 10**9, monkeypatch)["fct_participation"]
    assert first.success and first.unchanged == ()

    again = _results(warehouse, root, 10**9, monkeypatch)["fct_participation"]
    assert again.success and again.unchanged == tuple(range(1, 9))
    # the check's metadata says no expectation was evaluated, not the suite's six
    assert (first.evaluated, again.evaluated) == (6, 0)

    # A late delivery for cycle 5: its staging (fingerprint) and its rows change. Only
    # cycle 5 is validated again, and a fault in it is found.
    late = _copy_with(warehouse, tmp_path / "late.duckdb",
                      "UPDATE staging.build_inputs SET fingerprint = 'new' WHERE name = 'cycle=5'",
                      "UPDATE marts.fct_participation SET status_end = 'bogus' WHERE cycle = 5 AND rowid IN "
                      "(SELECT min(rowid) FROM marts.fct_participation WHERE cycle = 5)")
    result = _results(late, root, 10**9, monkeypatch)["fct_participation"]
    assert result.unchanged == (1, 2, 3, 4, 6, 7, 8)
    assert not result.success
    assert result.failed == ("expect_column_values_to_be_in_set(status_end): 1 unexpected",)
    # It failed, so it is not remembered as passed: the next run validates it again.
    assert _results(late, root, 10**9, monkeypatch)["fct_participation"].unchanged == (1, 2, 3, 4, 6, 7, 8)


def test_a_duplicate_across_cycles_is_found_when_cycles_are_skipped(warehouse, tmp_path, monkeypatch):
    root = tmp_path / "project"
    _results(warehouse, root, 10**9, monkeypatch)
    dup = _copy_with(warehouse, tmp_path / "dup.duckdb",
                     "UPDATE staging.build_inputs SET fingerprint = 'new' WHERE name = 'cycle=2'",
                     "INSERT INTO marts.fct_participation SELECT * REPLACE (2 AS cycle) "
                     "FROM marts.fct_participation WHERE cycle = 3 LIMIT 1")
    result = _results(dup, root, 10**9, monkeypatch)["fct_participation"]
    assert 3 in result.unchanged and 2 not in result.unchanged
    assert not result.success
    assert "expect_column_values_to_be_unique(participation_id): 2 unexpected" in result.failed


def test_new_sql_or_reference_data_validates_everything(warehouse, tmp_path, monkeypatch):
    root = tmp_path / "project"
    _results(warehouse, root, 10**9, monkeypatch)
    new_code = _copy_with(warehouse, tmp_path / "code.duckdb",
                          "UPDATE staging.build_inputs SET fingerprint = 'other' WHERE name = 'code'")
    assert _results(new_code, root, 10**9, monkeypatch)["fct_participation"].unchanged == ()


def _failed_suites(warehouse, tmp_path, monkeypatch, *sql) -> dict[str, tuple[str, ...]]:
    """Mart -> what failed, for the suites run over a copy of `warehouse` altered by `sql`."""
    broken = _copy_with(warehouse, tmp_path / "broken.duckdb", *sql)
    results = _results(broken, tmp_path / "project", 10**9, monkeypatch)
    return {m: r.failed for m, r in results.items() if not r.success}


def test_counts_that_do_not_add_up_fail_the_outcomes_by_cycle_suite(warehouse, tmp_path, monkeypatch):
    """Each balance of outcomes_by_cycle's suite fails on the row that breaks it, and a share
    above 1 fails its range (a review deleted a balance expectation and no test saw it)."""
    assert _failed_suites(
        warehouse, tmp_path, monkeypatch,
        "UPDATE marts.outcomes_by_cycle SET dropped_out = dropped_out + 1 WHERE cycle = 3",
        "UPDATE marts.outcomes_by_cycle SET work_at_end = work_at_end + 1 WHERE cycle = 4",
        "UPDATE marts.outcomes_by_cycle SET unknown_90d = unknown_90d + 1 WHERE cycle = 5",
        "UPDATE marts.outcomes_by_cycle SET share_studies_at_end = 1.5 WHERE cycle = 6") == {
        "outcomes_by_cycle": ("expect_column_values_to_be_between(share_studies_at_end): 1 unexpected",
                              "expect_column_values_to_be_in_set(end_balance): 1 unexpected",
                              "expect_column_values_to_be_in_set(balance_90d): 1 unexpected",
                              "expect_column_values_to_be_in_set(enrolled_balance): 1 unexpected"),
    }


def test_a_90_day_status_and_a_share_at_the_end_out_of_range_fail_their_suites(warehouse, tmp_path, monkeypatch):
    """fct_participation's suite checks status_90d against the code list as it does status_end
    (its NULLs, a cycle not followed up, pass), and outcomes_summary's the shares at the end
    as those at 90 days: its summary said so before it did (an audit of comments)."""
    assert _failed_suites(
        warehouse, tmp_path, monkeypatch,
        "UPDATE marts.fct_participation SET status_90d = 'bogus' WHERE rowid = "
        "(SELECT min(rowid) FROM marts.fct_participation WHERE status_90d IS NOT NULL)",
        "UPDATE marts.outcomes_summary SET share_work_at_end = 1.5 WHERE scope = 'all'") == {
        "fct_participation": ("expect_column_values_to_be_in_set(status_90d): 1 unexpected",),
        "outcomes_summary": ("expect_column_values_to_be_between(share_work_at_end): 1 unexpected",),
    }


def test_the_evaluators_marts_are_checked(warehouse, tmp_path, monkeypatch):
    """A published count of 3, a goal said met below its target, a verdict the interval does not
    support, a negative cost: each fails its mart's suite, and only that expectation."""
    assert _failed_suites(
        warehouse, tmp_path, monkeypatch,
        "UPDATE marts.outcomes_by_municipality SET enrolled = 3 WHERE rowid = "
        "(SELECT min(rowid) FROM marts.outcomes_by_municipality WHERE enrolled >= 5)",
        "UPDATE marts.goal_attainment SET status = 'met' WHERE rowid = "
        "(SELECT min(rowid) FROM marts.goal_attainment WHERE status = 'not_met')",
        "UPDATE marts.benchmark_comparison SET verdict = 'below' WHERE rowid = "
        "(SELECT min(rowid) FROM marts.benchmark_comparison WHERE verdict <> 'below')",
        "UPDATE marts.cost_efficiency SET value_sek = -value_sek WHERE rowid = "
        "(SELECT min(rowid) FROM marts.cost_efficiency)") == {
        "outcomes_by_municipality": ("expect_column_values_to_be_in_set(small_counts_published): 1 unexpected",),
        "goal_attainment": ("expect_column_values_to_be_in_set(status_agrees): 1 unexpected",),
        "benchmark_comparison": ("expect_column_values_to_be_in_set(verdict_agrees): 1 unexpected",),
        "cost_efficiency": ("expect_column_values_to_be_between(value_sek): 1 unexpected",),
    }
    assert all(r.success for r in _results(warehouse, tmp_path / "clean", 10**9, monkeypatch).values())


def test_like_for_like_figures_that_do_not_hold_together_fail(warehouse, tmp_path, monkeypatch):
    """The like-for-like columns of benchmark_comparison (a review passed four wrong rows through
    the first version of the check): a verdict turned round, more in work than completers, a
    group larger than its scope, a birth region that does not exist, a group figure on a
    benchmark about all participants. Each row fails the suite."""
    def row(benchmark: str, scope: str) -> str:
        return f"benchmark_id = '{benchmark}' AND scope = '{scope}'"

    assert _failed_suites(
        warehouse, tmp_path, monkeypatch,
        "UPDATE marts.benchmark_comparison SET group_verdict = CASE WHEN group_verdict = 'below' THEN 'above' "
        f"ELSE 'below' END WHERE {row('ESF_FOREIGN_BORN_EUROPE', 'followed_up')}",
        f"UPDATE marts.benchmark_comparison SET group_numerator = group_denominator + 7 "
        f"WHERE {row('ESF_FOREIGN_BORN_EUROPE', 'all')}",
        f"UPDATE marts.benchmark_comparison SET group_denominator = denominator + 111 "
        f"WHERE {row('ESF_FOREIGN_BORN_MIN', 'followed_up')}",
        f"UPDATE marts.benchmark_comparison SET group_birth_regions = 'eurpoe' WHERE {row('ESF_FOREIGN_BORN_MIN', 'all')}",
        f"UPDATE marts.benchmark_comparison SET group_value = 0.9 WHERE {row('ESF_NATIONAL', 'all')}") == {
        "benchmark_comparison": ("expect_column_values_to_be_in_set(group_agrees): 5 unexpected",
                                 # the two counts changed under their interval
                                 "expect_column_values_to_be_in_set(intervals_are_wilson): 2 unexpected"),
    }
    # A second review: another benchmark's group, a comparison dropped, an interval made up.
    assert _failed_suites(
        warehouse, tmp_path, monkeypatch,
        f"UPDATE marts.benchmark_comparison SET group_birth_regions = 'sweden' WHERE {row('ESF_FOREIGN_BORN_EUROPE', 'all')}",
        "UPDATE marts.benchmark_comparison SET group_birth_regions = NULL, group_numerator = NULL, "
        "group_denominator = NULL, group_value = NULL, group_ci_low = NULL, group_ci_high = NULL, "
        f"group_verdict = NULL WHERE {row('ESF_FOREIGN_BORN_MIN', 'all')}",
        "UPDATE marts.benchmark_comparison SET ci_low = least(ci_low, project_value) - 0.01 "
        f"WHERE {row('ESF_NATIONAL', 'all')}") == {
        "benchmark_comparison": ("expect_column_values_to_be_in_set(group_agrees): 2 unexpected",
                                 "expect_column_values_to_be_in_set(intervals_are_wilson): 1 unexpected"),
    }


def test_a_null_where_a_value_belongs_fails_the_evaluators_suites(warehouse, tmp_path, monkeypatch):
    """Great Expectations' set and range expectations pass NULLs: the suites must not."""
    assert _failed_suites(
        warehouse, tmp_path, monkeypatch,
        "UPDATE marts.goal_attainment SET status = NULL WHERE rowid = (SELECT min(rowid) FROM marts.goal_attainment)",
        "UPDATE marts.benchmark_comparison SET verdict = NULL WHERE rowid = "
        "(SELECT min(rowid) FROM marts.benchmark_comparison)",
        "UPDATE marts.published_reconciliation SET row_label = NULL WHERE rowid = "
        "(SELECT min(rowid) FROM marts.published_reconciliation)") == {
        "goal_attainment": ("expect_column_values_to_be_in_set(status_agrees): 1 unexpected",),
        "benchmark_comparison": ("expect_column_values_to_be_in_set(verdict_agrees): 1 unexpected",),
        "published_reconciliation": ("expect_column_values_to_not_be_null(row_label): 1 unexpected",),
    }


def test_the_bounds_of_the_suites_hold_at_their_edges(warehouse, tmp_path, monkeypatch):
    """Values just past each bound fail their suite (a review loosened each bound and no test saw
    it): a published count of 4 (the small-count control is 1 to 4, not 1 to 3), a 90-day count
    hidden on a followed-up row that does not say suppressed, a cost of 0 (costs are strictly
    positive), and a NULL person_key (which the hex pattern, a set expectation, lets through)."""
    assert _failed_suites(
        warehouse, tmp_path, monkeypatch,
        "UPDATE marts.outcomes_by_municipality SET enrolled = 4 WHERE rowid = "
        "(SELECT min(rowid) FROM marts.outcomes_by_municipality WHERE enrolled >= 5)",
        "UPDATE marts.outcomes_by_municipality SET work_90d = NULL WHERE rowid = "
        "(SELECT max(rowid) FROM marts.outcomes_by_municipality WHERE followed_up AND NOT suppressed "
        "AND enrolled >= 5 AND work_90d IS NOT NULL)",
        "UPDATE marts.cost_efficiency SET value_sek = 0 WHERE rowid = (SELECT min(rowid) FROM marts.cost_efficiency)",
        "UPDATE marts.fct_participation SET person_key = NULL WHERE rowid = "
        "(SELECT min(rowid) FROM marts.fct_participation WHERE cycle = 4)") == {
        "outcomes_by_municipality": ("expect_column_values_to_be_in_set(small_counts_published): 1 unexpected",
                                     "expect_column_values_to_be_in_set(hidden_without_suppressed): 1 unexpected"),
        "cost_efficiency": ("expect_column_values_to_be_between(value_sek): 1 unexpected",),
        "fct_participation": ("expect_column_values_to_not_be_null(person_key): 1 unexpected",),
    }


def test_the_checks_swap_their_folder_in_only_in_the_publish_turn(warehouse, tmp_path):
    """Every build's checks swap a fresh `gx/` in beside the warehouse (two renames). Two builds
    checking at once (the automation's run beside `iga-pipeline build`) interleaved them: one
    rename met the other's folder ('Directory not empty'), the checks failed, and a `.gx.*.old`
    was left (a concurrency review: 8 of 600 swaps of two processes). The swap now takes the
    publish's lock, beside the warehouse, as each publish does: so it waits while one is held."""
    import threading

    from iga_pipeline.warehouse.publish import publishing

    folder = tmp_path / "wh"
    shutil.copytree(warehouse.parent, folder, ignore=shutil.ignore_patterns("gx"))
    results = {}
    with publishing(folder):  # another build's swap, or its publish
        checks = threading.Thread(target=lambda: results.update(expectations.run_suites(folder / warehouse.name, folder)))
        checks.start()
        assert someone_waits_for(folder / ".publish.lock", checks), "the swap did not wait for the lock"
        assert not (folder / "gx").exists()
    checks.join()
    assert results and all(r.success for r in results.values())
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".gx")) == []
    assert (folder / "gx" / expectations.STAMP).is_file()
