"""marts.cost_efficiency: what an outcome cost, from the budget in the contract.

Scope `all` (the budget paid for all eight cycles; cycle 8's 90-day status is
its end status carried forward, rule R10). Each metric is published twice:
over the total budget (29 090 968 SEK, which includes the public
compensation paid to participants) and over the ESF support alone
(12 464 585 SEK). `value_sek` is the unrounded quotient; NULL when the
denominator is 0.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from iga_pipeline.evaluation import queries
from iga_pipeline.evaluation.common import evaluate

SCOPE = "all"

# budget items (reference/budget.csv) the metrics divide, with their metric prefix.
BUDGET_ITEMS = (("total", "total_budget"), ("esf_support", "esf_support"))
# (metric suffix, denominator expression, description); quantities from outcomes_summary,
# plus `enrolled` (every counted participation, early leavers included).
DENOMINATORS = (
    ("per_completer", "completed", "per completer"),
    ("per_completer_in_work_or_studies_90d", "work_90d + studies_90d",
     "per completer in work or studies at 90 days"),
    ("per_completer_in_work_90d", "work_90d", "per completer in work at 90 days"),
    ("per_participation", "enrolled", "per participation (early leavers included)"),
)

COLUMNS = ["metric", "value_sek", "numerator_sek", "denominator", "budget_item",
           "denominator_definition", "scope", "description"]


def cost_efficiency_frame(budget: dict[str, int], quantities: dict[str, int]) -> pd.DataFrame:
    """`quantities`: completed, work_90d, studies_90d (scope all) and enrolled."""
    labels = {"total": "Total budget", "esf_support": "ESF support"}
    rows = []
    for item, prefix in BUDGET_ITEMS:
        sek = int(budget[item])
        for suffix, expr, what in DENOMINATORS:
            den = evaluate(expr, quantities)
            rows.append({
                "metric": f"{prefix}_{suffix}",
                "value_sek": (sek / den) if den else None,
                "numerator_sek": sek, "denominator": den, "budget_item": item,
                "denominator_definition": expr, "scope": SCOPE,
                "description": f"{labels.get(item, item)} {what}",
            })
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["value_sek"] = out["value_sek"].astype("Float64")
    out["numerator_sek"] = out["numerator_sek"].astype("Int64")
    out["denominator"] = out["denominator"].astype("Int64")
    return out


def cost_efficiency(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    summary = queries.summary(con).set_index("scope")
    cycles = queries.cycles(con)
    q = {k: int(summary.at[SCOPE, k]) for k in ("completed", "work_90d", "studies_90d")}
    q["enrolled"] = int(cycles["enrolled"].fillna(0).sum())
    return cost_efficiency_frame(queries.budget(con), q)
