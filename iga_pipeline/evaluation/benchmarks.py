"""marts.benchmark_comparison: the project's share in work at 90 days against the ESF benchmarks.

For each benchmark (reference/benchmarks.csv) and scope, the project's figure
is work_90d / completed of the scope (outcomes_summary), with its 95% Wilson
score interval. Verdict: `above` when the interval lies wholly above the
benchmark (ci_low > benchmark), `below` when wholly below (ci_high <
benchmark), otherwise `inconclusive` (an interval touching the benchmark is
inconclusive). A scope without completers has no figure: NULLs and
`inconclusive`.

A benchmark about foreign-born participants (reference/benchmarks.csv,
`birth_regions`) is also compared like for like, after the contract's columns:
the project's completers of those birth regions only (`group_*`), with their own
interval and verdict. rules.md's verdict compares the whole project; born in
Sweden or of unknown birth region, a completer is in that figure but in no such
group. Benchmarks about all participants have NULL `group_*`.
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
           "project_value", "ci_low", "ci_high", "verdict", "confidence_level",
           # like for like, beyond the contract: the completers of the benchmark's birth regions
           "group_birth_regions", "group_numerator", "group_denominator", "group_value",
           "group_ci_low", "group_ci_high", "group_verdict"]

ABOVE, BELOW, INCONCLUSIVE = "above", "below", "inconclusive"


def wilson_interval(k: int, n: int) -> tuple[float, float] | None:
    """The Wilson score interval (CONFIDENCE) of k successes in n trials; None when n == 0."""
    if n <= 0:
        return None
    warm_up.wait_for("scipy.stats")
    from scipy.stats import binomtest  # imported here, not at every start (0.5 s)

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
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


def _group(by_region: pd.DataFrame, scope: str, regions: list[str], benchmark: float) -> dict:
    """The like-for-like columns of one benchmark and scope."""
    if not regions:
        return {}
    rows = by_region[(by_region["scope"] == scope) & by_region["birth_region"].isin(regions)]
    k, n = int(rows[NUMERATOR].sum()), int(rows[DENOMINATOR].sum())
    ci = wilson_interval(k, n)
    return {"group_birth_regions": " ".join(regions), "group_numerator": k, "group_denominator": n,
            "group_value": share(k, n), "group_ci_low": ci[0] if ci else None,
            "group_ci_high": ci[1] if ci else None, "group_verdict": verdict(ci, benchmark)}


def benchmark_comparison_frame(benchmarks: pd.DataFrame, summary: pd.DataFrame,
                               by_region: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per benchmark and scope (benchmarks in file order, then scopes). `by_region`:
    completers and work_90d per scope and birth region (queries.BY_BIRTH_REGION); without
    it, no like-for-like figures."""
    by_scope = summary.set_index("scope")
    rows = []
    for b in benchmarks.itertuples(index=False):
        regions = str(getattr(b, "birth_regions", "") or "").split() if by_region is not None else []
        for scope in SCOPES:
            k, n = int(by_scope.at[scope, NUMERATOR]), int(by_scope.at[scope, DENOMINATOR])
            ci = wilson_interval(k, n)
            rows.append({
                "benchmark_id": b.benchmark_id, "scope": scope, "description": b.description,
                "benchmark_value": float(b.value), "numerator": k, "denominator": n,
                "project_value": share(k, n),
                "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None,
                "verdict": verdict(ci, float(b.value)), "confidence_level": CONFIDENCE,
                **_group(by_region, scope, regions, float(b.value)),
            })
    out = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("numerator", "denominator", "group_numerator", "group_denominator"):
        out[c] = out[c].astype("Int64")
    for c in ("benchmark_value", "project_value", "ci_low", "ci_high", "confidence_level",
              "group_value", "group_ci_low", "group_ci_high"):
        out[c] = out[c].astype("Float64")
    for c in ("group_birth_regions", "group_verdict"):
        out[c] = out[c].astype("string")
    return out


def benchmark_comparison(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return benchmark_comparison_frame(queries.benchmarks(con), queries.summary(con),
                                      queries.by_birth_region(con))
