"""marts.goal_attainment: the application's goals, per scope, by the rules of rules.md.

Every goal is a row of iga_pipeline/reference/goals.csv: its numerator and
denominator are sums/differences of named quantities (common.QUANTITIES), its
target a decimal, and `min_cycle_coverage`, when given, is the survey
coverage rule (HM1): the goal is `not_assessable` unless every cycle of the
scope has a survey with answered questionnaires for at least that share of the
cycle's completers (a cycle without completers needs the survey only). Nothing
here names a goal.

Status:
  * not_assessable: the coverage rule fails, or the denominator is 0 or unknown;
  * met: numerator / denominator >= target, compared exactly (9/20 meets 0.45);
  * not_met: otherwise.

Coverage (goals with a coverage rule only) = answered questionnaires in the
scope / completers in the scope: the share of the scope's completers the
value rests on. `cycles_covered` counts the scope's cycles that meet the
per-cycle rule, out of `cycles_in_scope`; a cycle without completers is
covered by any survey (half of none is reached), but not without one:
rules.md asks that "every cycle of the scope has a survey".
"""

from __future__ import annotations

from fractions import Fraction

import duckdb
import pandas as pd

from iga_pipeline.evaluation import queries
from iga_pipeline.evaluation.common import (
    OUTCOME_QUANTITIES, SCOPES, SURVEY_QUANTITIES, evaluate, exact, reaches, scope_cycles, share,
)

COLUMNS = ["goal_id", "scope", "description", "numerator", "denominator", "value", "target",
           "status", "coverage", "version", "revises", "numerator_definition",
           "denominator_definition", "cycles_in_scope", "cycles_covered"]

MET, NOT_MET, NOT_ASSESSABLE = "met", "not_met", "not_assessable"


def scope_quantities(cycles: pd.DataFrame, summary: pd.DataFrame) -> dict[str, dict[str, int | None]]:
    """scope -> {quantity: value}: outcome quantities from outcomes_summary, survey
    quantities summed over the scope's cycles."""
    in_scope = scope_cycles(cycles)
    by_scope = summary.set_index("scope")  # a row per scope, zeros where it has no cycle
    out: dict[str, dict[str, int | None]] = {}
    for scope in SCOPES:
        q: dict[str, int | None] = {}
        for name in OUTCOME_QUANTITIES:
            v = by_scope.at[scope, name]
            q[name] = None if pd.isna(v) else int(v)
        rows = cycles[cycles["cycle"].isin(in_scope[scope])]
        for name in SURVEY_QUANTITIES:
            q[name] = int(rows[name].fillna(0).sum())
        out[scope] = q
    return out


def coverage_rule(value) -> str | None:
    """A goal's `min_cycle_coverage`: None when it has none (empty, NULL or blank)."""
    if value is None or pd.isna(value) or not str(value).strip():
        return None
    return str(value).strip()


def coverage_check(cycles: pd.DataFrame, scope_cycle_ids: list[int], threshold) -> tuple[int, int]:
    """(cycles meeting the per-cycle survey coverage rule, cycles in the scope). A cycle
    without completers needs a survey too (at least one questionnaire): rules.md's "every
    cycle of the scope has a survey"."""
    rows = cycles[cycles["cycle"].isin(scope_cycle_ids)]
    covered = 0
    for row in rows.itertuples():
        completed = 0 if pd.isna(row.completed) else int(row.completed)
        answered = 0 if pd.isna(row.survey_answered) else int(row.survey_answered)
        surveyed = not pd.isna(row.survey_questionnaires) and row.survey_questionnaires > 0
        if reaches(answered, completed, threshold) if completed else surveyed:
            covered += 1
    return covered, len(rows)


def goal_attainment_frame(goals: pd.DataFrame, cycles: pd.DataFrame,
                          summary: pd.DataFrame) -> pd.DataFrame:
    """One row per goal and scope (goals in file order, scopes followed_up then all)."""
    quantities = scope_quantities(cycles, summary)
    in_scope = scope_cycles(cycles)
    rows = []
    for goal in goals.itertuples(index=False):
        rule = coverage_rule(getattr(goal, "min_cycle_coverage", None))
        for scope in SCOPES:
            q = quantities[scope]
            num = evaluate(goal.numerator, q)
            den = evaluate(goal.denominator, q)
            coverage = covered = n_cycles = None
            assessable = True
            if rule is not None:
                covered, n_cycles = coverage_check(cycles, in_scope[scope], rule)
                assessable = covered == n_cycles
                coverage = share(q["survey_answered"], q["completed"])
            if den is None or den <= 0 or num is None or not assessable:
                status = NOT_ASSESSABLE
            else:
                status = MET if reaches(num, den, goal.target) else NOT_MET
            rows.append({
                "goal_id": goal.goal_id, "scope": scope, "description": goal.description,
                "numerator": num, "denominator": den, "value": share(num, den),
                "target": float(exact(goal.target)), "status": status, "coverage": coverage,
                "version": getattr(goal, "version", None) or None,
                "revises": (getattr(goal, "revises", "") or None),
                "numerator_definition": goal.numerator, "denominator_definition": goal.denominator,
                "cycles_in_scope": n_cycles, "cycles_covered": covered,
            })
    out = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("numerator", "denominator", "cycles_in_scope", "cycles_covered"):
        out[c] = out[c].astype("Int64")
    for c in ("value", "target", "coverage"):
        out[c] = out[c].astype("Float64")
    return out


def range_without_follow_up(goals: pd.DataFrame, cycles: pd.DataFrame,
                            summary: pd.DataFrame) -> dict[str, dict]:
    """goal_id -> {low, high, statuses} of scope `all` over every 90-day outcome the cycles
    not followed up could have had: R10 counts their completers with their end-of-cycle
    status, which the final report warns may understate the outcome (found work or studies
    after the cycle). A goal is a ratio of sums of counts, so its least and greatest values
    lie where those completers are all in work, all in studies, or all in neither. Goals the
    90-day outcome does not move (HM1) are left out; so is everything when every cycle was
    followed up. A NULL count of a cycle not followed up leaves the range unknown ({}): read
    as 0 it would miss outcomes (R4, never guessed); a NULL followed_up is not followed up
    (common.scope_cycles)."""
    open_cycles = cycles[~cycles["cycle"].isin(scope_cycles(cycles)["followed_up"])]
    counts = open_cycles[["completed", "work_at_end", "studies_at_end"]]
    if counts.isna().any().any():
        return {}
    completed = int(counts["completed"].sum())
    if not completed:
        return {}
    q = scope_quantities(cycles, summary)["all"]
    carried = {"work_90d": int(counts["work_at_end"].sum()),
               "studies_90d": int(counts["studies_at_end"].sum())}
    if None in (q["work_90d"], q["studies_90d"]):
        return {}
    corners = []
    for everyone_in in ("work_90d", "studies_90d", None):
        corner = dict(q)
        for name, n in carried.items():
            corner[name] = q[name] - n + (completed if name == everyone_in else 0)
        corners.append(corner)
    out = {}
    for goal in goals.itertuples(index=False):
        values, statuses = [], set()
        for corner in corners:
            num, den = evaluate(goal.numerator, corner), evaluate(goal.denominator, corner)
            if num is None or den is None or den <= 0:
                continue
            values.append(Fraction(num, den))
            statuses.add(MET if reaches(num, den, goal.target) else NOT_MET)
        if values and min(values) != max(values):
            out[goal.goal_id] = {"low": float(min(values)), "high": float(max(values)),
                                 "statuses": sorted(statuses)}
    return out


def goal_attainment(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return goal_attainment_frame(queries.goals(con), queries.cycles(con), queries.summary(con))
