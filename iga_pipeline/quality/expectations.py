"""Great Expectations 1.x suites for the marts, run directly (no dagster-ge).

Each suite validates a frame read from the candidate warehouse. Where an
expectation needs arithmetic across columns (work + studies + other +
unknown = completed; read = loaded + rejected + duplicates), the frame's SQL
computes a balance column (`end_balance`, `balance_90d`, `balance`, ...) and
the suite expects it to be 0. The pattern of `person_key` is matched in SQL too
(`person_key_is_hex64`, expected True): GX's pandas engine matches it value by
value in Python.

The file context lives in <warehouse dir>/gx/ (GX's own layout), and every
run refreshes the Data Docs at
<warehouse dir>/gx/uncommitted/data_docs/local_site/index.html.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from iga_pipeline import reference, warm_up
from iga_pipeline.evaluation import suppression
from iga_pipeline.warehouse.duck import open_readonly, quote

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no phoning home: the network is closed


@dataclass(frozen=True)
class Suite:
    mart: str
    summary: str  # what the suite makes sure of, in plain words (the check's description)
    sql: str
    expectations: tuple  # (expectation class name, kwargs)
    # A large table is validated one batch per value of this column (one cycle at a time),
    # so pandas holds a cycle, not the table; uniqueness is then also checked over the table.
    batch_by: str | None = None


# Above this many rows a suite with `batch_by` is validated batch by batch.
BATCH_FROM_ROWS = 2_000_000


SHARE = dict(min_value=0, max_value=1)
_Z95 = 1.959963984540054  # the normal quantile of a 95% interval (scipy.stats.norm.ppf(0.975))


def _wilson(k: str, n: str, low: str, high: str) -> str:
    """SQL: whether `low` and `high` are the 95% Wilson score interval of `k` of `n` (to 1e-9),
    or both NULL when `n` is 0, as evaluation/benchmarks.py computes them with scipy."""
    p, z2 = f"({k}::DOUBLE / {n})", f"{_Z95 ** 2!r}"
    centre = f"({p} + {z2} / (2 * {n}))"
    half = f"({_Z95!r} * sqrt({p} * (1 - {p}) / {n} + {z2} / (4 * {n} * {n})))"
    return (f"coalesce(CASE WHEN {n} = 0 THEN {low} IS NULL AND {high} IS NULL "
            f"ELSE abs({low} - ({centre} - {half}) / (1 + {z2} / {n})) < 1e-9 "
            f"AND abs({high} - ({centre} + {half}) / (1 + {z2} / {n})) < 1e-9 END, false)")


def _verdict(low: str, high: str) -> str:
    """SQL: the verdict an interval gives against benchmark_value (evaluation/benchmarks.verdict)."""
    return (f"CASE WHEN {low} IS NULL THEN 'inconclusive' WHEN {low} > benchmark_value THEN 'above' "
            f"WHEN {high} < benchmark_value THEN 'below' ELSE 'inconclusive' END")


_BIRTH_REGIONS = "[" + ", ".join(f"'{r}'" for r in reference.BIRTH_REGIONS) + "]"  # a SQL list
# outcomes_by_municipality's counts (the 90-day ones are NULL by design where a cycle is not
# followed up; any other NULL is a suppressed cell), as evaluation/suppression.py publishes
# them. The range 1-4 in the suite below is warehouse.md's, written again on purpose: the
# check holds the mart to the contract, not to the code that made it.
_END_COUNTS = tuple(c for c in suppression.PUBLISHED if c not in suppression.AT_90D)
_COUNTS_90D = tuple(c for c in suppression.PUBLISHED if c in suppression.AT_90D)
SUITES: tuple[Suite, ...] = (
    Suite("outcomes_by_cycle", "shares between 0 and 1; the statuses add up to the completers, "
          "completers and drop-outs to the enrolled; one row per cycle", """
        SELECT *,
               completed - (work_at_end + studies_at_end + other_at_end + unknown_at_end) AS end_balance,
               CASE WHEN followed_up THEN completed - (work_90d + studies_90d + other_90d + unknown_90d)
                    ELSE 0 END AS balance_90d,
               enrolled - (completed + dropped_out) AS enrolled_balance
        FROM marts.outcomes_by_cycle""", (
        ("ExpectColumnValuesToBeBetween", dict(column="share_work_at_end", **SHARE)),
        ("ExpectColumnValuesToBeBetween", dict(column="share_studies_at_end", **SHARE)),
        ("ExpectColumnValuesToBeBetween", dict(column="share_work_90d", **SHARE)),
        ("ExpectColumnValuesToBeBetween", dict(column="share_studies_90d", **SHARE)),
        ("ExpectColumnValuesToBeInSet", dict(column="end_balance", value_set=[0])),
        ("ExpectColumnValuesToBeInSet", dict(column="balance_90d", value_set=[0])),
        ("ExpectColumnValuesToBeInSet", dict(column="enrolled_balance", value_set=[0])),
        ("ExpectColumnValuesToBeUnique", dict(column="cycle")),
    )),
    Suite("outcomes_summary", "one row per scope (followed_up, all); shares between 0 and 1",
          "SELECT * FROM marts.outcomes_summary", (
        ("ExpectColumnValuesToBeInSet", dict(column="scope", value_set=["followed_up", "all"])),
        ("ExpectColumnValuesToBeUnique", dict(column="scope")),
        ("ExpectColumnValuesToBeBetween", dict(column="share_work_at_end", **SHARE)),
        ("ExpectColumnValuesToBeBetween", dict(column="share_studies_at_end", **SHARE)),
        ("ExpectColumnValuesToBeBetween", dict(column="share_work_90d", **SHARE)),
        ("ExpectColumnValuesToBeBetween", dict(column="share_studies_90d", **SHARE)),
    )),
    # person_key's pattern is matched by DuckDB: GX's pandas engine turns each value into a
    # Python str and runs Python's re on it (1.2 s of the checks' 1.9 s at 1M rows).
    Suite("fct_participation", "one row per participation; every person_key a 64-digit hex "
          "pseudonym; statuses and birth regions from the code lists", """
        SELECT *, regexp_full_match(person_key, '[0-9a-f]{64}') AS person_key_is_hex64
        FROM marts.fct_participation""", batch_by="cycle", expectations=(
        ("ExpectColumnValuesToBeUnique", dict(column="participation_id")),
        ("ExpectColumnValuesToNotBeNull", dict(column="person_key")),
        ("ExpectColumnValuesToBeInSet", dict(column="person_key_is_hex64", value_set=[True])),
        ("ExpectColumnValuesToBeInSet", dict(column="status_end", value_set=list(reference.OUTCOME_CLASSES))),
        # NULL where the cycle is not followed up: a set expectation passes NULLs
        ("ExpectColumnValuesToBeInSet", dict(column="status_90d", value_set=list(reference.OUTCOME_CLASSES))),
        ("ExpectColumnValuesToBeInSet", dict(column="birth_region", value_set=list(reference.BIRTH_REGIONS))),
    )),
    Suite("ingest_audit", "nothing lost: per file, rows read = loaded + rejected + duplicates "
          "collapsed; one row per file; a SHA-256 for each file opened", """
        SELECT *, rows_read - (rows_loaded + rows_rejected + rows_duplicate) AS balance
        FROM marts.ingest_audit""", (
        ("ExpectColumnValuesToBeInSet", dict(column="balance", value_set=[0])),
        ("ExpectColumnValuesToBeUnique", dict(column="source_file")),
        ("ExpectColumnValuesToMatchRegex", dict(column="sha256", regex=r"^[0-9a-f]{64}$")),
    )),
    Suite("data_quality_issues", "every issue is rejected or warning, and has a reason",
          "SELECT * FROM marts.data_quality_issues", (
        ("ExpectColumnValuesToBeInSet", dict(column="severity", value_set=["rejected", "warning"])),
        ("ExpectColumnValuesToNotBeNull", dict(column="reason")),
    )),
    Suite("outcomes_by_municipality", "small-count control: no count from 1 to 4 is published, and "
          "every row with a hidden count says suppressed; one row per municipality and cycle", f"""
        SELECT *, concat_ws('/', municipality_code, cycle) AS municipality_cycle,
               {" + ".join(f"coalesce(({c} BETWEEN 1 AND 4)::INT, 0)" for c in _END_COUNTS + _COUNTS_90D)}
                   AS small_counts_published,
               coalesce(NOT coalesce(suppressed, false)
                        AND ({" OR ".join(f"{c} IS NULL" for c in _END_COUNTS)}
                             OR (followed_up AND ({" OR ".join(f"{c} IS NULL" for c in _COUNTS_90D)}))),
                        false) AS hidden_without_suppressed
        FROM marts.outcomes_by_municipality""", (
        ("ExpectColumnValuesToBeInSet", dict(column="small_counts_published", value_set=[0])),
        ("ExpectColumnValuesToBeInSet", dict(column="hidden_without_suppressed", value_set=[False])),
        ("ExpectColumnValuesToBeUnique", dict(column="municipality_cycle")),
        ("ExpectColumnValuesToNotBeNull", dict(column="municipality_code")),
    )),
    Suite("goal_attainment", "one row per goal and scope; the status is met, not_met or "
          "not_assessable, and a goal assessed is met exactly when its value reaches the target", """
        SELECT *, concat_ws('/', goal_id, scope) AS goal_scope,
               coalesce(CASE status WHEN 'met' THEN value >= target WHEN 'not_met' THEN value < target
                                    WHEN 'not_assessable' THEN true END, false) AS status_agrees
        FROM marts.goal_attainment""", (
        ("ExpectColumnValuesToBeUnique", dict(column="goal_scope")),
        ("ExpectColumnValuesToNotBeNull", dict(column="goal_id")),
        ("ExpectColumnValuesToNotBeNull", dict(column="scope")),
        ("ExpectColumnValuesToBeInSet", dict(column="status", value_set=["met", "not_met", "not_assessable"])),
        ("ExpectColumnValuesToBeInSet", dict(column="status_agrees", value_set=[True])),
        ("ExpectColumnValuesToBeBetween", dict(column="value", **SHARE)),
    )),
    Suite("benchmark_comparison", "one row per benchmark and scope; the project's share lies in its "
          "confidence interval, and the verdict is what the interval says against the benchmark; the "
          "same for the like-for-like group of a benchmark about some birth regions, which lies "
          "within the scope's completers (no group figures without a group)", """
        SELECT *, concat_ws('/', benchmark_id, scope) AS benchmark_scope,
               coalesce(CASE WHEN ci_low IS NULL AND ci_high IS NULL THEN true
                             ELSE ci_low <= project_value AND project_value <= ci_high END,
                        false) AS value_in_interval,
               coalesce(verdict = """ + _verdict("ci_low", "ci_high") + """, false) AS verdict_agrees,
               -- like for like: every group_* NULL without a group; with one, valid regions, a
               -- group within the scope, its share within its interval, and its own verdict
               coalesce(CASE WHEN group_birth_regions IS NULL THEN
                                 group_numerator IS NULL AND group_denominator IS NULL AND group_value IS NULL
                                 AND group_ci_low IS NULL AND group_ci_high IS NULL AND group_verdict IS NULL
                             ELSE list_has_all(""" + _BIRTH_REGIONS + """,
                                               string_split(group_birth_regions, ' '))
                                  AND 0 <= group_numerator AND group_numerator <= group_denominator
                                  AND group_numerator <= numerator AND group_denominator <= denominator
                                  AND CASE WHEN group_denominator = 0 THEN
                                               group_value IS NULL AND group_ci_low IS NULL
                                               AND group_ci_high IS NULL AND group_verdict = 'inconclusive'
                                           ELSE abs(group_value - group_numerator / group_denominator) < 1e-12
                                               AND group_ci_low <= group_value AND group_value <= group_ci_high
                                               AND group_verdict = """ + _verdict("group_ci_low", "group_ci_high")
               + """ END END,
                        false)
               -- the group is the one reference/benchmarks.csv gives the benchmark
               AND group_birth_regions IS NOT DISTINCT FROM (
                   SELECT nullif(r.birth_regions, '') FROM reference.benchmarks AS r
                   WHERE r.benchmark_id = b.benchmark_id) AS group_agrees,
               confidence_level = 0.95
               AND """ + _wilson("numerator", "denominator", "ci_low", "ci_high") + """
               AND (group_birth_regions IS NULL
                    OR """ + _wilson("group_numerator", "group_denominator", "group_ci_low", "group_ci_high") + """)
                   AS intervals_are_wilson
        FROM marts.benchmark_comparison AS b""", (
        ("ExpectColumnValuesToBeUnique", dict(column="benchmark_scope")),
        ("ExpectColumnValuesToNotBeNull", dict(column="benchmark_id")),
        ("ExpectColumnValuesToNotBeNull", dict(column="scope")),
        ("ExpectColumnValuesToBeInSet", dict(column="value_in_interval", value_set=[True])),
        ("ExpectColumnValuesToBeInSet", dict(column="verdict_agrees", value_set=[True])),
        ("ExpectColumnValuesToBeInSet", dict(column="group_agrees", value_set=[True])),
        ("ExpectColumnValuesToBeInSet", dict(column="intervals_are_wilson", value_set=[True])),
    )),
    Suite("published_reconciliation", "one row per cell of the printed Table 1, each compared",
          """SELECT *, concat_ws('/', row_label, column_name) AS cell FROM marts.published_reconciliation""", (
        ("ExpectColumnValuesToBeUnique", dict(column="cell")),
        ("ExpectColumnValuesToNotBeNull", dict(column="row_label")),
        ("ExpectColumnValuesToNotBeNull", dict(column="column_name")),
        ("ExpectColumnValuesToNotBeNull", dict(column="matches")),
        ("ExpectColumnValuesToBeInSet", dict(column="unit", value_set=["count", "percent"])),
    )),
    Suite("cost_efficiency", "one row per metric; every cost positive", "SELECT * FROM marts.cost_efficiency", (
        ("ExpectColumnValuesToBeUnique", dict(column="metric")),
        ("ExpectColumnValuesToNotBeNull", dict(column="metric")),
        ("ExpectColumnValuesToBeBetween", dict(column="value_sek", min_value=0, strict_min=True)),
    )),
)


@dataclass(frozen=True)
class SuiteResult:
    mart: str
    success: bool
    failed: tuple[str, ...]  # "expectation(column): n unexpected"
    evaluated: int
    # batch_by values not validated again: they passed in an earlier run, unchanged since
    unchanged: tuple = ()


def run_suites(warehouse_file: Path, project_root: Path) -> dict[str, SuiteResult]:
    """Validate every suite against the warehouse file; refresh the Data Docs.

    `project_root` is the folder that holds GX's `gx/` folder (the warehouse folder).
    GX rewrites its JSON stores in place, and a build killed meanwhile would
    leave a truncated file that breaks every later run; so each run builds a
    fresh GX project in a temporary sibling and swaps it in when done.

    Cycles of a `batch_by` suite whose rows passed before and cannot have changed
    since (the same staged files, SQL, reference data and suites: see
    `_validated_cycles`) are not validated again; after a late delivery only its
    cycle is. Uniqueness is then checked over the whole table in DuckDB."""
    import shutil

    from iga_pipeline.warehouse.publish import publishing, replace_dir

    project_root = Path(project_root)
    scratch = project_root / f".gx.{uuid.uuid4().hex[:8]}.tmp"
    try:
        before = _read_stamp(project_root / "gx")
        results, stamp = _run_suites(warehouse_file, scratch, before)
        (scratch / "gx" / STAMP).write_text(json.dumps(stamp, indent=1, sort_keys=True))
        # Two builds' checks may end together (the automation's run beside `iga-pipeline build`):
        # their swaps take turns, with each other and with a publish (its lock, beside `gx/`).
        # Interleaved, one swap's rename met the other's folder ('Directory not empty') and
        # failed its checks, leaving a `.gx.*.old`.
        with publishing(project_root):
            replace_dir(scratch / "gx", project_root / "gx")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return results


# What passed before, per cycle of the batched suites: <gx>/validated_cycles.json.
STAMP = "validated_cycles.json"


def _suites_fingerprint() -> str:
    """The suites, this module's code and the libraries that evaluate them."""
    import importlib.metadata

    versions = [importlib.metadata.version(n) for n in ("great_expectations", "pandas", "pyarrow", "duckdb")]
    text = repr(SUITES) + repr(versions) + Path(__file__).read_text(encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_stamp(gx_dir: Path) -> dict:
    try:
        stamp = json.loads((gx_dir / STAMP).read_text())
        return stamp if isinstance(stamp, dict) else {}
    except (OSError, ValueError):
        return {}


def _validated_cycles(before: dict, inputs: dict, suites: str, mart: str) -> set[int]:
    """Cycles whose rows of `mart` passed in an earlier run and are the same rows now.

    A cycle's rows of the per-cycle marts are a function of its staged files, the
    SQL and the reference data (what the incremental build relies on too); so the
    same fingerprints of those, checked by the same suites, mean the same verdict."""
    if not inputs or before.get("suites") != suites or before.get("code") != inputs.get("code"):
        return set()
    from iga_pipeline.staging import cycle_of  # the build's inputs name the cycles' folders

    passed = before.get("cycles", {}).get(mart, {})
    return {cycle_of(name) for name, fp in passed.items()
            if name.startswith("cycle=") and inputs.get(name) == fp}


def _run_suites(warehouse_file: Path, project_root: Path, before: dict) -> tuple[dict[str, SuiteResult], dict]:
    """Every suite over its mart; with the stamp of the cycles whose rows passed (`before`:
    the last run's stamp, whose cycles are not validated again while unchanged)."""
    warm_up.wait_for("great_expectations")
    from iga_pipeline.warehouse.build import recorded_inputs

    context, batch_def = _gx_context(project_root)
    con = open_readonly(warehouse_file)
    results: dict[str, SuiteResult] = {}
    inputs, suites = recorded_inputs(con), _suites_fingerprint()  # {}: validate everything
    stamp: dict = {"suites": suites, "code": inputs.get("code"), "cycles": {}}
    try:
        for suite_def in SUITES:
            validated = _validated_cycles(before, inputs, suites, suite_def.mart) if suite_def.batch_by else set()
            results[suite_def.mart], cycles_passed = _run_suite(context, batch_def, con, suite_def, validated)
            if suite_def.batch_by:
                stamp["cycles"][suite_def.mart] = {
                    f"cycle={c}": inputs[f"cycle={c}"] for c in cycles_passed if f"cycle={c}" in inputs}
    finally:
        con.close()
    context.build_data_docs()  # once, with every suite's new results (not once per checkpoint)
    _logo_from_the_site(data_docs_index(project_root).parent)
    return results, stamp


def _gx_context(project_root: Path):
    """The file context under `project_root`, and the one batch definition every suite uses."""
    import great_expectations as gx
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every pandas batch under this many bytes (pd.util.hash_pandas_object,
    # then md5) for a batch marker that nothing reads: 1.2-1.5 s of the checks at 1M rows.
    pandas_execution_engine.HASH_THRESHOLD = 0

    context = gx.get_context(mode="file", project_root_dir=str(project_root))
    # GX reads and parses this template (for secrets: none here) at every look-up of a
    # store or setting, some 250 times a run; without it the look-ups find nothing at once.
    (project_root / "gx" / "uncommitted" / "config_variables.yml").unlink(missing_ok=True)
    context.variables.progress_bars = {"globally": False}
    # One data asset for every suite: each validation is handed its own frame, and the
    # suite's name (marts.<mart>) says what was validated. An asset per mart cost two
    # writes of GX's YAML configuration each (0.05 s a suite), a checkpoint another.
    source = _get_or(lambda: context.data_sources.get("marts"),
                     lambda: context.data_sources.add_pandas("marts"))
    asset = _get_or(lambda: source.get_asset("frame"), lambda: source.add_dataframe_asset(name="frame"))
    batch_def = _get_or(lambda: asset.get_batch_definition("whole"),
                        lambda: asset.add_batch_definition_whole_dataframe("whole"))
    return context, batch_def


def _run_suite(context, batch_def, con, suite_def: Suite, validated: set[int]) -> tuple[SuiteResult, list[int]]:
    """One suite over its mart, a batch of cycles at a time for a per-cycle mart (`validated`:
    cycles that passed before, unchanged, not read). Returns its result and the cycles whose
    rows passed (skipped ones included): what the next run may skip."""
    import great_expectations as gx

    # Only the columns the expectations look at: the results are the same, and a
    # fact table of millions of rows stays a few columns wide in pandas.
    columns = ", ".join(f'"{c}"' for c in dict.fromkeys(k["column"] for _, k in suite_def.expectations))
    query = f"SELECT {columns} FROM ({suite_def.sql})"
    batches, skipped, values = [None], [], []
    if suite_def.batch_by:
        batches, skipped, values = _plan_batches(con, suite_def, validated)
    suite = gx.ExpectationSuite(name=f"marts.{suite_def.mart}")
    for name, kwargs in suite_def.expectations:
        suite.add_expectation(getattr(gx.expectations, name)(**kwargs))
    suite = context.suites.add_or_update(suite)
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"validate_{suite_def.mart}", data=batch_def, suite=suite))
    success, unexpected = True, {}  # (type, column) -> unexpected rows, over all batches
    cycles_passed = list(skipped)
    for batch in batches:
        where = "" if batch is None else (
            f' WHERE "{suite_def.batch_by}" IN ({", ".join(map(_literal, batch))})')
        frame = _arrow_frame(con, query + where)
        run = validation.run(batch_parameters={"dataframe": frame})  # its result stored
        del frame
        success &= bool(run.success)
        if run.success:
            cycles_passed += values if batch is None else batch
        _tally(run, unexpected)
    if batches != [None]:  # each batch is unique: is the table?
        for column, dupes in _duplicates_over_table(con, suite_def).items():
            success = False
            unexpected[("expect_column_values_to_be_unique", column)] = dupes  # as GX names its type
    failed = [f"{kind}({column}): {n} unexpected" for (kind, column), n in unexpected.items() if n]
    evaluated = len(suite_def.expectations) if batches else 0  # 0: every cycle passed before
    return SuiteResult(suite_def.mart, success, tuple(failed), evaluated, tuple(skipped)), cycles_passed


def _tally(run, unexpected: dict) -> None:
    """Add one batch's unexpected rows to `unexpected`, per (expectation type, column); '?'
    where GX gave no count."""
    for r in run.results:
        cfg = r.expectation_config
        key = (cfg.type, cfg.kwargs.get("column", ""))
        count = r.result.get("unexpected_count")
        if not r.success:
            known = unexpected.get(key, 0)
            unexpected[key] = "?" if count is None or known == "?" else known + count
        else:
            unexpected.setdefault(key, 0)


# GX's page header fetches its logo from GX's server with the time and this project's GX id in
# the address, whatever GX_ANALYTICS_ENABLED says; the site holds the same logo itself.
_REMOTE_LOGO = re.compile(rb'"https://great-expectations-web-assets\.s3\.[^"/]+/logo-long\.png[^"]*"')


def _logo_from_the_site(site: Path) -> None:
    """Point every Data Docs page's logo at the copy in the site's static/images/ (the pages'
    bytes otherwise as GX wrote them)."""
    logo = site / "static" / "images" / "logo-long.png"
    for page in site.rglob("*.html"):
        html = page.read_bytes()
        local = f'"{os.path.relpath(logo, page.parent)}"'.encode()
        changed = _REMOTE_LOGO.sub(lambda _: local, html)
        if changed != html:
            page.write_bytes(changed)


def _duplicates_over_table(con, suite_def: Suite) -> dict[str, int]:
    """Column -> rows that repeat a value, for the suite's uniqueness expectations, counted by
    DuckDB over the whole table (a suite validated batch by batch sees one batch at a time)."""
    found = {}
    for name, kwargs in suite_def.expectations:
        if name == "ExpectColumnValuesToBeUnique":
            column = kwargs["column"]
            dupes = con.execute(
                f'SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM ({suite_def.sql}) '
                f'WHERE "{column}" IS NOT NULL GROUP BY "{column}" HAVING count(*) > 1)').fetchall()[0][0]
            if dupes:
                found[column] = int(dupes)
    return found


def _plan_batches(con, suite_def: Suite, validated: set[int]) -> tuple[list, list[int], list]:
    """The batches to validate (lists of `batch_by` values; [None] = the whole table at
    once), the values left out because they passed before (`_validated_cycles`), and
    every value in the table.

    A table above BATCH_FROM_ROWS is validated a value at a time, so pandas holds
    one cycle of it, not the table."""
    values = [v for (v,) in con.execute(
        f'SELECT DISTINCT "{suite_def.batch_by}" FROM ({suite_def.sql}) ORDER BY 1').fetchall()]
    todo = [v for v in values if v not in validated]
    skipped = [v for v in values if v in validated]
    if not skipped:
        rows = con.execute(f"SELECT count(*) FROM ({suite_def.sql})").fetchall()[0][0]
        return ([[v] for v in values] if rows > BATCH_FROM_ROWS else [None]), [], values
    rows = con.execute(f'SELECT count(*) FROM ({suite_def.sql}) WHERE "{suite_def.batch_by}" IN '
                       f'({", ".join(map(_literal, todo)) or "NULL"})').fetchall()[0][0]
    return ([[v] for v in todo] if rows > BATCH_FROM_ROWS else [todo] if todo else []), skipped, values


def _literal(value) -> str:
    return str(int(value)) if isinstance(value, int) else quote(value)


def _arrow_frame(con, sql: str):
    """The query's result in pandas, text as Arrow-backed strings (a third of the memory of
    Python str objects, and faster to check); the expectations give the same results."""
    import pandas as pd
    import pyarrow as pa

    def mapper(arrow_type):
        return pd.StringDtype("pyarrow") if pa.types.is_string(arrow_type) or pa.types.is_large_string(
            arrow_type) else None

    return con.sql(sql).to_arrow_table().to_pandas(types_mapper=mapper)


def data_docs_index(project_root: Path) -> Path:
    return Path(project_root) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def _get_or(get, create):
    try:
        return get()
    except Exception:  # GX raises several kinds of "not found"
        return create()
