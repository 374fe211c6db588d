"""marts.published_reconciliation: every cell of the report's Table 1 against the warehouse.

The printed table is reference data (reference/table1_published.csv). Each
cell is recomputed from outcomes_by_cycle (rows `Cykel N`), from the
followed-up cycles among the rows printed above it (`Delsumma`: cycles 1-7,
the followed_up scope of R10 as long as cycle 8 has no follow-up; should
cycle 8's arrive, the printed Delsumma still sums 1-7) or from outcomes_summary
(`TOTALT` = scope all).
Counts compare as integers; percentages as whole percent rounded half up
from the exact fraction (rule R11). `published` is NULL where the report
prints `-`; a cell matches when both sides are equal or both are NULL.
"""

from __future__ import annotations

import re

import duckdb
import pandas as pd

from iga_pipeline.evaluation import queries
from iga_pipeline.evaluation.common import evaluate, half_up_percent, scope_cycles

# Table 1's columns: (unit, numerator, denominator); counts have no denominator.
TABLE1_COLUMNS: dict[str, tuple[str, str, str | None]] = {
    "completed": ("count", "completed", None),
    "work_at_end": ("count", "work_at_end", None),
    "share_work_at_end": ("percent", "work_at_end", "completed"),
    "studies_at_end": ("count", "studies_at_end", None),
    "share_studies_at_end": ("percent", "studies_at_end", "completed"),
    "share_total_at_end": ("percent", "work_at_end + studies_at_end", "completed"),
    "work_90d": ("count", "work_90d", None),
    "share_work_90d": ("percent", "work_90d", "completed"),
    "studies_90d": ("count", "studies_90d", None),
    "share_studies_90d": ("percent", "studies_90d", "completed"),
    "share_total_90d": ("percent", "work_90d + studies_90d", "completed"),
}
# Row labels of the printed table -> where the warehouse keeps the row.
SUMMARY_ROWS = {"TOTALT": "all"}
# The subtotal of the followed-up cycles printed above it.
SUBTOTAL_ROW = "Delsumma"
_COUNTS = ("completed", "work_at_end", "studies_at_end", "work_90d", "studies_90d")
CYCLE_ROW = re.compile(r"^Cykel (\d+)$")

COLUMNS = ["row_label", "column_name", "published", "recomputed", "matches", "unit",
           "numerator", "denominator", "row_order", "column_order"]


def _row_values(label: str, cycles: pd.DataFrame, summary: pd.DataFrame,
                printed_above: list[int]) -> dict[str, object]:
    m = CYCLE_ROW.match(label)
    if m:
        rows = cycles[cycles["cycle"] == int(m.group(1))]
    elif label == SUBTOTAL_ROW:
        if not printed_above:  # a reordered reference table: the subtotal would sum nothing
            raise ValueError(f"Table 1's {SUBTOTAL_ROW} has no cycle row printed above it "
                             "(reference/table1_published.csv)")
        rows = cycles[cycles["cycle"].isin(subtotal_cycles(printed_above, cycles))]
        return {c: int(rows[c].sum()) for c in _COUNTS} if len(rows) else {}
    elif label in SUMMARY_ROWS:
        rows = summary[summary["scope"] == SUMMARY_ROWS[label]]
    else:
        raise ValueError(f"Table 1 row label not understood: {label!r} (reference/table1_published.csv)")
    if rows.empty:
        return {}
    return {k: (None if pd.isna(v) else v) for k, v in rows.iloc[0].to_dict().items()}


def printed_above_subtotal(published: pd.DataFrame) -> list[int]:
    """The cycles of the `Cykel N` rows printed above Table 1's Delsumma."""
    above = []
    for label in published["row_label"]:
        if label == SUBTOTAL_ROW:
            break
        if m := CYCLE_ROW.match(label):
            above.append(int(m.group(1)))
    return above


def subtotal_cycles(printed_above: list[int], cycles: pd.DataFrame) -> list[int]:
    """The cycles the printed Delsumma is recomputed from: those printed above it that are
    followed up now."""
    return sorted(set(printed_above) & set(scope_cycles(cycles)["followed_up"]))


def published_reconciliation_frame(published: pd.DataFrame, cycles: pd.DataFrame,
                                   summary: pd.DataFrame) -> pd.DataFrame:
    """One row per printed cell, in the printed order (row by row, left to right)."""
    columns = [c for c in published.columns if c != "row_label"]
    unknown = [c for c in columns if c not in TABLE1_COLUMNS]
    if unknown:
        raise ValueError(f"Table 1 columns not understood: {unknown} (reference/table1_published.csv)")
    out = []
    printed_above = printed_above_subtotal(published)
    for i, row in enumerate(published.itertuples(index=False)):
        label = row.row_label
        values = _row_values(label, cycles, summary, printed_above)
        for j, col in enumerate(columns):
            unit, num_expr, den_expr = TABLE1_COLUMNS[col]
            num = evaluate(num_expr, values) if values else None
            den = evaluate(den_expr, values) if (values and den_expr) else None
            if unit == "count":
                recomputed = num
            else:
                recomputed = half_up_percent(num, den)
            printed = getattr(row, col)
            printed = None if pd.isna(printed) else int(printed)
            out.append({
                "row_label": label, "column_name": col, "published": printed,
                "recomputed": recomputed, "matches": printed == recomputed, "unit": unit,
                "numerator": num if unit == "percent" else None,
                # no share recomputed (a cycle not followed up): no denominator to divide by either
                "denominator": den if num is not None else None, "row_order": i + 1, "column_order": j + 1,
            })
    frame = pd.DataFrame(out, columns=COLUMNS)
    for c in ("published", "recomputed", "numerator", "denominator", "row_order", "column_order"):
        frame[c] = frame[c].astype("Int64")
    frame["matches"] = frame["matches"].astype(bool)
    return frame


def published_reconciliation(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return published_reconciliation_frame(queries.table1_published(con), queries.cycles(con),
                                          queries.summary(con))
