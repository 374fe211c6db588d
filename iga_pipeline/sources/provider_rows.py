"""What the three providers' adapters share: the interventions frame, hours, warnings."""

from __future__ import annotations

import pandas as pd

from iga_pipeline.sources.common import Delivery

INTERVENTION_COLUMNS = ["source_row", "intervention", "hours"]

# One intervention of a six-month cycle cannot last longer than the longest cycle, around
# the clock (184 days): more is not hours but something else in the wrong column, such as a
# personnummer written as a number, and must not be stored as hours (docs/decisions.md).
MAX_HOURS = 24 * 184
# Hours are given to the hundredth at most (the contract's examples: 12,5 and 12.5). More
# decimals hold more digits than hours need, and a stored 1.7101124126 or 0.7202134115 was a
# personnummer after its first digit: such a value is refused.
HOURS_RULE = f"from 0 to {MAX_HOURS:,} with at most two decimals"


# A program's binary floating point writes 0.1 + 0.2 as 0.30000000000000004 (its
# hours were dropped). A number this close to a hundredth is that hundredth, and is
# stored as it (`hours_of`): what lies past its ninth decimal is kept nowhere.
FLOAT_TAIL = 1e-9


def hours_of(value) -> float | None:
    """A JSON number of hours as stored, or None when it is not hours: finite, from 0 to
    MAX_HOURS, at most two decimals but for a floating-point tail (10**400, Infinity and
    0.7202134115 are not hours; 0.30000000000000004 is 0.3, -2.8e-17 from 0.3 - 0.1 - 0.2
    is 0.0, never -0.0). One pass per value: this runs for every Åstorp intervention."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    hundredth = round(value, 2)
    if hundredth != value and not abs(value - hundredth) <= FLOAT_TAIL:  # NaN too
        return None
    return hundredth + 0.0 if 0 <= hundredth <= MAX_HOURS else None


def gives_90d_status(rows: pd.DataFrame) -> bool | None:
    """For a delivery with 90-day statuses (a Pethö workbook, a `_90dagar` file): whether a row
    gives one, valid or not (an empty one is no status); None for an end-of-cycle file. What
    rule R9 makes of it is ingest's: a Pethö cycle is followed up when its workbook gives one, a
    `_90dagar` file's cycle when the file is delivered."""
    return bool(rows["status_90d"].notna().any()) if "status_90d" in rows else None


def warning_issue(delivery: Delivery, row: str | None, reason: str, detail: str) -> dict:
    return {"source_file": delivery.source_file, "source_row": row,
            "severity": "warning", "reason": reason, "detail": detail}


def blank_to_na(s: pd.Series) -> pd.Series:
    return s.astype("string").str.strip().replace("", pd.NA)
