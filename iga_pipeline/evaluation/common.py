"""Small shared pieces: scopes, quantities, expressions, exact rounding and comparison."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction

import pandas as pd

# Rule R10: 'followed_up' (Table 1's Delsumma) and 'all' (TOTALT).
SCOPES = ("followed_up", "all")

# The quantities an expression in goals.csv may name. Outcome quantities are
# taken per scope from marts.outcomes_summary (so scope 'all' carries end
# statuses forward, rule R10); survey quantities are summed over the scope's
# cycles from marts.survey_by_cycle.
OUTCOME_QUANTITIES = ("completed", "work_at_end", "studies_at_end", "work_90d", "studies_90d")
SURVEY_QUANTITIES = ("survey_answered", "survey_large_or_very_large")
QUANTITIES = OUTCOME_QUANTITIES + SURVEY_QUANTITIES

_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|[+-])")


def parse_expression(text: str, allowed: Iterable[str] = QUANTITIES) -> list[tuple[int, str]]:
    """'work_90d + studies_90d' -> [(+1, 'work_90d'), (+1, 'studies_90d')].

    Only sums and differences of known quantity names: nothing is eval'ed."""
    allowed = set(allowed)
    tokens = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot parse expression {text!r} at {text[pos:]!r}")
        tokens.append(m.group(1))
        pos = m.end()
    terms: list[tuple[int, str]] = []
    sign = 1
    expect_name = True
    for tok in tokens:
        if expect_name:
            if tok in "+-":
                raise ValueError(f"expression {text!r}: operator where a quantity was expected")
            if tok not in allowed:
                raise ValueError(f"expression {text!r}: unknown quantity {tok!r} "
                                 f"(known: {', '.join(sorted(allowed))})")
            terms.append((sign, tok))
            expect_name = False
        else:
            if tok not in "+-":
                raise ValueError(f"expression {text!r}: quantity where an operator was expected")
            sign = 1 if tok == "+" else -1
            expect_name = True
    if expect_name:
        raise ValueError(f"expression {text!r} is empty or ends with an operator")
    return terms


def evaluate(text: str, values: Mapping[str, object]) -> int | None:
    """The integer value of an expression; None when any quantity is missing (NULL)."""
    total = 0
    for sign, name in parse_expression(text, values.keys() | set(QUANTITIES)):
        v = values.get(name)
        if v is None or pd.isna(v):
            return None
        total += sign * int(v)
    return total


def exact(value: object) -> Fraction:
    """A target or a threshold as an exact fraction ('0.45' -> 9/20, 0.45 -> 9/20)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        value = repr(value)  # the shortest decimal that round-trips: what the CSV said
    return Fraction(Decimal(str(value).strip()))


def reaches(numerator: int, denominator: int, target: object) -> bool:
    """numerator / denominator >= target, exactly (no floating point at the boundary)."""
    if denominator <= 0:
        raise ValueError("reaches() needs a positive denominator")
    return Fraction(numerator, denominator) >= exact(target)


def half_up_percent(numerator: int | None, denominator: int | None) -> int | None:
    """A share as whole percent rounded half up, in exact integer arithmetic (R11)."""
    if numerator is None or denominator is None or pd.isna(numerator) or pd.isna(denominator):
        return None
    numerator, denominator = int(numerator), int(denominator)
    if denominator <= 0:
        return None
    # floor(100 n / d + 1/2) = floor((200 n + d) / 2d)
    return (200 * numerator + denominator) // (2 * denominator)


def share(numerator: int | None, denominator: int | None) -> float | None:
    if numerator is None or denominator is None or pd.isna(numerator) or pd.isna(denominator):
        return None
    return None if int(denominator) <= 0 else int(numerator) / int(denominator)


def scope_cycles(cycles: pd.DataFrame) -> dict[str, list[int]]:
    """The cycles of each scope: followed-up cycles, and every cycle."""
    ordered = cycles.sort_values("cycle")
    followed = ordered.loc[ordered["followed_up"].fillna(False).astype(bool), "cycle"]
    return {"followed_up": [int(c) for c in followed], "all": [int(c) for c in ordered["cycle"]]}
