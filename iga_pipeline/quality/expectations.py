"""Great Expectations 1.x suites for the marts, run directly (no dagster-ge).

Each suite validates a frame read from the candidate warehouse. Where an
expectation needs arithmetic across columns (work + studies + other +
unknown = completed; read = loaded + rejected + duplicates), the frame's SQL
computes a `*_balance` column and the suite expects it to be 0.

The file context lives in <warehouse dir>/gx/ (GX's own layout), and every
run refreshes the Data Docs at
<warehouse dir>/gx/uncommitted/data_docs/local_site/index.html.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from iga_pipeline.warehouse.build import open_readonly

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no phoning home: the network is closed


@dataclass(frozen=True)
class Suite:
    mart: str
    sql: str
    expectations: tuple  # (expectation class name, kwargs)
    # A large table is validated one batch per value of this column (one cycle at a time),
    # so pandas holds a cycle, not the table; uniqueness is then also checked over the table.
    batch_by: str | None = None


# Above this many rows a suite with `batch_by` is validated batch by batch.
BATCH_FROM_ROWS = 2_000_000


SHARE = dict(min_value=0, max_value=1)
SUITES: tuple[Suite, ...] = (
    Suite("outcomes_by_cycle", """
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
    Suite("outcomes_summary", "SELECT * FROM marts.outcomes_summary", (
        ("ExpectColumnValuesToBeInSet", dict(column="scope", value_set=["followed_up", "all"])),
        ("ExpectColumnValuesToBeUnique", dict(column="scope")),
        ("ExpectColumnValuesToBeBetween", dict(column="share_work_90d", **SHARE)),
        ("ExpectColumnValuesToBeBetween", dict(column="share_studies_90d", **SHARE)),
    )),
    Suite("fct_participation", "SELECT * FROM marts.fct_participation", batch_by="cycle", expectations=(
        ("ExpectColumnValuesToBeUnique", dict(column="participation_id")),
        ("ExpectColumnValuesToNotBeNull", dict(column="person_key")),
        ("ExpectColumnValuesToMatchRegex", dict(column="person_key", regex=r"^[0-9a-f]{64}$")),
        ("ExpectColumnValuesToBeInSet", dict(column="status_end",
                                             value_set=["work", "studies", "other", "unknown"])),
        ("ExpectColumnValuesToBeInSet", dict(column="birth_region",
                                             value_set=["sweden", "europe", "outside_europe", "unknown"])),
    )),
    Suite("ingest_audit", """
        SELECT *, rows_read - (rows_loaded + rows_rejected + rows_duplicate) AS balance
        FROM marts.ingest_audit""", (
        ("ExpectColumnValuesToBeInSet", dict(column="balance", value_set=[0])),
        ("ExpectColumnValuesToBeUnique", dict(column="source_file")),
        ("ExpectColumnValuesToMatchRegex", dict(column="sha256", regex=r"^[0-9a-f]{64}$")),
    )),
    Suite("data_quality_issues", "SELECT * FROM marts.data_quality_issues", (
        ("ExpectColumnValuesToBeInSet", dict(column="severity", value_set=["rejected", "warning"])),
        ("ExpectColumnValuesToNotBeNull", dict(column="reason")),
    )),
)


@dataclass(frozen=True)
class SuiteResult:
    mart: str
    success: bool
    failed: tuple[str, ...]  # "expectation(column): n unexpected"
    evaluated: int


def run_suites(warehouse_file: Path, project_root: Path) -> dict[str, SuiteResult]:
    """Validate every suite against the warehouse file; refresh the Data Docs.

    `project_root` is the folder that holds GX's `gx/` folder (the warehouse folder).
    GX rewrites its JSON stores in place, and a build killed meanwhile would
    leave a truncated file that breaks every later run; so each run builds a
    fresh GX project in a temporary sibling and swaps it in when done."""
    import shutil

    from iga_pipeline.warehouse.build import replace_dir

    project_root = Path(project_root)
    scratch = project_root / f".gx.{uuid.uuid4().hex[:8]}.tmp"
    try:
        results = _run_suites(warehouse_file, scratch)
        replace_dir(scratch / "gx", project_root / "gx")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def _run_suites(warehouse_file: Path, project_root: Path) -> dict[str, SuiteResult]:
    import great_expectations as gx

    context = gx.get_context(mode="file", project_root_dir=str(project_root))
    context.variables.progress_bars = {"globally": False}
    source = _get_or(lambda: context.data_sources.get("marts"),
                     lambda: context.data_sources.add_pandas("marts"))
    con = open_readonly(warehouse_file)
    results: dict[str, SuiteResult] = {}
    try:
        for suite_def in SUITES:
            # Only the columns the expectations look at: the results are the same, and a
            # fact table of millions of rows stays a few columns wide in pandas.
            columns = ", ".join(f'"{c}"' for c in dict.fromkeys(k["column"] for _, k in suite_def.expectations))
            query = f"SELECT {columns} FROM ({suite_def.sql})"
            batches = [None]
            if suite_def.batch_by and con.execute(
                    f"SELECT count(*) FROM ({suite_def.sql})").fetchall()[0][0] > BATCH_FROM_ROWS:
                batches = [v for (v,) in con.execute(
                    f'SELECT DISTINCT "{suite_def.batch_by}" FROM ({suite_def.sql}) ORDER BY 1').fetchall()]
            asset = _get_or(lambda: source.get_asset(suite_def.mart),
                            lambda: source.add_dataframe_asset(name=suite_def.mart))
            batch_def = _get_or(lambda: asset.get_batch_definition("whole"),
                                lambda: asset.add_batch_definition_whole_dataframe("whole"))
            suite = gx.ExpectationSuite(name=f"marts.{suite_def.mart}")
            for name, kwargs in suite_def.expectations:
                suite.add_expectation(getattr(gx.expectations, name)(**kwargs))
            suite = context.suites.add_or_update(suite)
            validation = context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=f"validate_{suite_def.mart}", data=batch_def, suite=suite))
            checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
                name=f"checkpoint_{suite_def.mart}", validation_definitions=[validation], actions=[]))
            success, unexpected = True, {}  # (type, column) -> unexpected rows, over all batches
            for value in batches:
                where = "" if value is None else f' WHERE "{suite_def.batch_by}" = {_literal(value)}'
                frame = _arrow_frame(con, query + where)
                run = checkpoint.run(batch_parameters={"dataframe": frame})
                del frame
                success &= bool(run.success)
                for validation_result in run.run_results.values():
                    for r in validation_result.results:
                        cfg = r.expectation_config
                        key = (cfg.type, cfg.kwargs.get("column", ""))
                        count = r.result.get("unexpected_count")
                        if not r.success:
                            known = unexpected.get(key, 0)
                            unexpected[key] = "?" if count is None or known == "?" else known + count
                        else:
                            unexpected.setdefault(key, 0)
            if len(batches) > 1:  # batches are unique each: is the table?
                for name, kwargs in suite_def.expectations:
                    if name == "ExpectColumnValuesToBeUnique":
                        column = kwargs["column"]
                        dupes = con.execute(
                            f'SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM ({suite_def.sql}) '
                            f'WHERE "{column}" IS NOT NULL GROUP BY "{column}" HAVING count(*) > 1)').fetchall()[0][0]
                        key = (_snake(name), column)
                        if dupes:
                            success = False
                            unexpected[key] = int(dupes)
            failed = [f"{kind}({column}): {n} unexpected" for (kind, column), n in unexpected.items() if n]
            results[suite_def.mart] = SuiteResult(suite_def.mart, success, tuple(failed),
                                                  len(suite_def.expectations))
    finally:
        con.close()
    context.build_data_docs()  # once, with every suite's new results (not once per checkpoint)
    return results


def _literal(value) -> str:
    return str(int(value)) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


def _snake(name: str) -> str:
    """ExpectColumnValuesToBeUnique -> expect_column_values_to_be_unique (GX's config type)."""
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


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
