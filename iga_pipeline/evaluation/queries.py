"""Every SQL query the evaluation runs, in one place.

The evaluation reads the core marts (and the reference tables the build loads
from iga_pipeline/reference/) and hands plain DataFrames to pure functions.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from iga_pipeline.warehouse import build

CYCLES = """
SELECT o.cycle::INTEGER AS cycle, o.provider, o.target_group, o.followed_up,
       o.enrolled, o.completed, o.dropped_out,
       o.work_at_end, o.studies_at_end, o.other_at_end, o.unknown_at_end,
       o.work_90d, o.studies_90d, o.other_90d, o.unknown_90d,
       coalesce(s.questionnaires, 0)::BIGINT AS survey_questionnaires,
       coalesce(s.answered, 0)::BIGINT AS survey_answered,
       coalesce(s.large_or_very_large, 0)::BIGINT AS survey_large_or_very_large
FROM marts.outcomes_by_cycle AS o
LEFT JOIN marts.survey_by_cycle AS s USING (cycle)
ORDER BY o.cycle
"""

SUMMARY = """
SELECT scope, cycles, completed, work_at_end, studies_at_end, work_90d, studies_90d
FROM marts.outcomes_summary
"""

GOALS = "SELECT * FROM reference.goals"
BENCHMARKS = "SELECT benchmark_id, value, description, birth_regions FROM reference.benchmarks"
# Completers and those in work at 90 days per scope and birth region, for the benchmarks about
# a group of birth regions; summed over the regions they are outcomes_summary's (the same rows
# of intermediate.participation_by_scope, where rule R10's scopes are spelled).
BY_BIRTH_REGION = """
SELECT scope, birth_region, count_if(completed)::BIGINT AS completed,
       count_if(completed AND status_90d = 'work')::BIGINT AS work_90d
FROM intermediate.participation_by_scope GROUP BY scope, birth_region
"""
TABLE1_PUBLISHED = "SELECT * FROM reference.table1_published"
BUDGET = "SELECT item, sek FROM reference.budget"

# The unsuppressed counts per municipality and cycle (internal table).
MUNICIPALITY_COUNTS = """
SELECT municipality_code::VARCHAR AS municipality_code, municipality::VARCHAR AS municipality,
       cycle::INTEGER AS cycle, followed_up,
       enrolled::BIGINT AS enrolled, completed::BIGINT AS completed,
       dropped_out::BIGINT AS dropped_out,
       work_at_end::BIGINT AS work_at_end, studies_at_end::BIGINT AS studies_at_end,
       unknown_at_end::BIGINT AS unknown_at_end, other_at_end::BIGINT AS other_at_end,
       work_90d::BIGINT AS work_90d, studies_90d::BIGINT AS studies_90d,
       unknown_90d::BIGINT AS unknown_90d, other_90d::BIGINT AS other_90d
FROM intermediate.outcomes_by_cycle_municipality
ORDER BY municipality_code, cycle
"""

# ------------------------------------------------------------------ report

MART = "SELECT * FROM marts.{name}"

DROPOUTS = """
SELECT cycle::INTEGER AS cycle, dropout_reason, count(*)::BIGINT AS leavers
FROM marts.fct_participation
WHERE NOT completed
GROUP BY ALL
ORDER BY cycle, dropout_reason
"""

AUDIT_TOTALS = """
SELECT count(*)::BIGINT AS files,
       count_if(status = 'rejected')::BIGINT AS files_rejected,
       coalesce(sum(rows_read), 0)::BIGINT AS rows_read,
       coalesce(sum(rows_loaded), 0)::BIGINT AS rows_loaded,
       coalesce(sum(rows_rejected), 0)::BIGINT AS rows_rejected,
       coalesce(sum(rows_duplicate), 0)::BIGINT AS rows_duplicate
FROM marts.ingest_audit
"""

# The command line's summary: warnings, and folders that could not be listed (a rejection of
# no row whose "file" is not among the files read).
ISSUE_TOTALS = """
SELECT count_if(severity = 'warning'),
       count_if(severity = 'rejected' AND source_row IS NULL
                AND source_file NOT IN (SELECT source_file FROM marts.ingest_audit))
FROM marts.data_quality_issues
"""

# The command line's summary: the files of the raw root no delivery of the contract names, not
# read (`unexpected_file` with no cycle; with one, it is unread content of a delivery). Those
# shown as named come first: a hashed component ('~' and a keyed id) tells an engineer nothing
# to rename, and five of them in enkater/ left a misnamed register among "and N more".
UNEXPECTED_FILES = """
SELECT source_file
FROM marts.data_quality_issues
WHERE reason = 'unexpected_file' AND cycle IS NULL
GROUP BY source_file
ORDER BY regexp_matches(source_file, '(^|/)~'), source_file
"""

AUDIT_BY_KIND = """
SELECT source_kind, count(*)::BIGINT AS files, count_if(status = 'rejected')::BIGINT AS files_rejected,
       sum(rows_read)::BIGINT AS rows_read, sum(rows_loaded)::BIGINT AS rows_loaded,
       sum(rows_rejected)::BIGINT AS rows_rejected, sum(rows_duplicate)::BIGINT AS rows_duplicate
FROM marts.ingest_audit
GROUP BY source_kind
ORDER BY CASE source_kind WHEN 'register' THEN 1 WHEN 'petho' THEN 2
                          WHEN 'folkuniversitetet' THEN 3 WHEN 'astorp' THEN 4 ELSE 5 END
"""

# The fingerprint input: one line per raw file, as `sha256sum` prints it.
AUDIT_HASHES = "SELECT sha256, source_file FROM marts.ingest_audit ORDER BY source_file"

# with the detail of each one's rejection of no row, as the run's log and the check give it
# (staging.rejected_whole, over the staged frames)
REJECTED_FILES = """
SELECT a.source_file, a.reason, coalesce(i.detail, '') AS detail, a.cycle
FROM marts.ingest_audit AS a
LEFT JOIN (SELECT source_file, min(detail) AS detail FROM marts.data_quality_issues
           WHERE severity = 'rejected' AND source_row IS NULL GROUP BY source_file) AS i USING (source_file)
WHERE a.status = 'rejected'
ORDER BY a.source_file
"""

# A file-level missing_outcome (a 90-day file that gives no status) is no completer: counted apart.
ISSUES_BY_REASON = """
SELECT severity, reason, (reason = 'missing_outcome' AND source_row IS NULL) AS statusless_file,
       count(*)::BIGINT AS issues
FROM marts.data_quality_issues
GROUP BY severity, reason, statusless_file
ORDER BY CASE severity WHEN 'rejected' THEN 1 ELSE 2 END, issues DESC, reason, statusless_file
"""


def frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    return con.execute(sql).df()


def cycles(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per cycle: Table 1's counts, follow-up and the survey."""
    return frame(con, CYCLES)


def summary(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return frame(con, SUMMARY)


def goals(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return frame(con, GOALS)


def benchmarks(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return frame(con, BENCHMARKS)


def by_birth_region(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return frame(con, BY_BIRTH_REGION)


def table1_published(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return frame(con, TABLE1_PUBLISHED)


def budget(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {row.item: int(row.sek) for row in frame(con, BUDGET).itertuples()}


def municipality_counts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return frame(con, MUNICIPALITY_COUNTS)


def pseudonym_key_kind(con: duckdb.DuckDBPyConnection) -> str | None:
    """Which key the warehouse's person_keys come from, as its build recorded it
    ('development', 'secret' or 'unknown'; warehouse/build.py), or None: not recorded."""
    return build.recorded_inputs(con).get(build.PSEUDONYM_KEY)  # {} without that table


def read_mart(con: duckdb.DuckDBPyConnection, name: str) -> pd.DataFrame:
    """A mart of the warehouse, whole, as a frame."""
    if not name.isidentifier():
        raise ValueError(f"not a mart name: {name!r}")
    return frame(con, MART.format(name=name))
