"""marts.benchmark_comparison: the project's share in work at 90 days against the ESF benchmarks.

For each benchmark (reference/benchmarks.csv) and scope, the project's figure
is work_90d / completed of the scope (outcomes_summary), with its 95% Wilson
score interval. Verdict: `above` when the interval lies wholly above the
benchmark (ci_low > benchmark), `below` when wholly below (ci_high <
benchmark), otherwise `inconclusive` (an interval touching the benchmark is
inconclusive). A scope without completers has no figure: NULLs and
`inconclusive`.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from iga_pipeline import warm_up
from iga_pipeline.evaluation import queries
from iga_pipeline.evaluation.common import SCOPES, share

CONFIDENCE = 0.95
# The project's comparable figure (rules.md, Benchmarks): the share in work at 90 days.
NUMERATOR, DENOMINATOR = "work_90d", "completed"

COLUMNS = ["benchmark_id", "scope", "description", "benchmark_value", "numerator", "denominator",
           "project_value", "ci_low", "ci_high", "verdict", "confidence_level"]

ABOVE, BELOW, INCONCLUSIVE = "above", "below", "inconclusive"


def wilson_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The Wilson score interval of k successes in n trials; None when n == 0."""
    if n <= 0:
        return None
    warm_up.wait_for("scipy.stats")
    from scipy.stats import binomtest  # imported here, not at every start (0.5 s)

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def verdict(ci: tuple[float, float] | None, benchmark: float) -> str:
    if ci is None:
        return INCONCLUSIVE
    low, high = ci
    if low > benchmark:
        return ABOVE
    if high < benchmark:
        return BELOW
    return INCONCLUSIVE


def benchmark_comparison_frame(benchmarks: pd.DataFrame, summary: pd.DataFrame,
                               confidence: float = CONFIDENCE) -> pd.DataFrame:
    """One row per benchmark and scope (benchmarks in file order, then scopes)."""
    by_scope = summary.set_index("scope")
    rows = []
    for b in benchmarks.itertuples(index=False):
        for scope in SCOPES:
            if scope in by_scope.index:
                k, n = int(by_scope.loc[scope, NUMERATOR]), int(by_scope.loc[scope, DENOMINATOR])
            else:
                k, n = 0, 0
            ci = wilson_interval(k, n, confidence)
            rows.append({
                "benchmark_id": b.benchmark_id, "scope": scope, "description": b.description,
                "benchmark_value": float(b.value), "numerator": k, "denominator": n,
                "project_value": share(k, n),
                "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None,
                "verdict": verdict(ci, float(b.value)), "confidence_level": confidence,
            })
    out = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("numerator", "denominator"):
        out[c] = out[c].astype("Int64")
    for c in ("benchmark_value", "project_value", "ci_low", "ci_high", "confidence_level"):
        out[c] = out[c].astype("Float64")
    return out


def benchmark_comparison(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return benchmark_comparison_frame(queries.benchmarks(con), queries.summary(con))
