"""The evaluator's marts and report, computed from the core marts.

Pure functions over a DuckDB connection (or DataFrames): no Dagster here.
`EVALUATION_MARTS` is what `warehouse.build.build_candidate(..., evaluation_marts=...)`
runs after the SQL files, in this order; each result is stored as marts.<name>.

`outcomes_by_municipality` is built here, not in SQL: primary and
complementary suppression of small counts (evaluation/suppression.py,
docs/evaluation.md).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pandas as pd

from iga_pipeline.evaluation.benchmarks import benchmark_comparison
from iga_pipeline.evaluation.cost import cost_efficiency
from iga_pipeline.evaluation.goals import goal_attainment
from iga_pipeline.evaluation.reconciliation import published_reconciliation
from iga_pipeline.evaluation.suppression import outcomes_by_municipality

EVALUATION_MARTS: dict[str, Callable[[duckdb.DuckDBPyConnection], pd.DataFrame]] = {
    "outcomes_by_municipality": outcomes_by_municipality,
    "goal_attainment": goal_attainment,
    "benchmark_comparison": benchmark_comparison,
    "published_reconciliation": published_reconciliation,
    "cost_efficiency": cost_efficiency,
}

__all__ = ["EVALUATION_MARTS"]
