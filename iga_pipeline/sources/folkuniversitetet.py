"""Folkuniversitetet, cycles 2-4: two CSV files per cycle (raw-deliveries.md §3)."""

from __future__ import annotations

import pandas as pd

from iga_pipeline import reference
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.sources import text
from iga_pipeline.sources.common import AdapterOutput, Delivery, identity, issues_frame
from iga_pipeline.sources.masking import safe_value
from iga_pipeline.sources.provider_rows import (
    HOURS_RULE, INTERVENTION_COLUMNS, MAX_HOURS, blank_to_na, gives_90d_status, warning_issue,
)


_FU_HOURS = r"(\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)?(,\d{1,2})?"  # HOURS_RULE
_GROUP_SPACE = r"[ \u00a0\u202f]"
FU_HOURS = ["Timmar validering", "Timmar yrkesprövning", "Timmar samhällsorientering",
            "Timmar jobbsökning"]
# The header of each file, as raw-deliveries.md gives it: every column is required (a file
# without one is rejected whole, missing_columns); any other column is read and left unused.
FU_COLUMNS = {
    "end": ["Personnummer", "Kommun", *FU_HOURS, "Utfallskod", "Utfallsdatum"],
    "90d": ["Personnummer", "Kommun", "Utfallskod", "Uppföljningsdatum"],
}


def read_folkuniversitetet(delivery: Delivery, key: PseudonymKey) -> AdapterOutput:
    tp = delivery.timepoint
    frame, malformed = text.split(text.decode(delivery, "cp1252"), ";", FU_COLUMNS[tp])
    rows = identity(delivery, frame["source_row"], frame["Personnummer"], key)
    issues = [dict(m, source_file=delivery.source_file) for m in malformed]

    kommun = frame["Kommun"].reset_index(drop=True).str.casefold()
    rows["municipality_code"] = kommun.map(reference.municipality_codes_by_name()).astype("string")
    unknown = rows["municipality_code"].isna() & kommun.ne("")
    for r, name in zip(rows.loc[unknown, "source_row"], frame.loc[unknown.values, "Kommun"]):
        issues.append(warning_issue(delivery, r, "invalid_code",
                               f"Kommun '{safe_value(name)}' is not a project municipality"))
    rows[f"status_{tp}"] = blank_to_na(frame["Utfallskod"].reset_index(drop=True))

    parts = []
    if tp == "end":
        names = reference.intervention_codes("folkuniversitetet")
        for column in FU_HOURS:
            given = frame[column].reset_index(drop=True)
            # the contract's decimal comma, digits grouped by spaces or not ('1 234,5'); a point or an
            # exponent is not read ('1.234' could be a thousand)
            written = given.str.fullmatch(_FU_HOURS)
            digits = given.str.replace(_GROUP_SPACE, "", regex=True).str.replace(",", ".", regex=False)
            hours = pd.to_numeric(digits.where(written, None), errors="coerce")
            # digits only, so never negative nor infinite (one too long for a float is not read: NA)
            bad = given.ne("") & (hours.isna() | (hours > MAX_HOURS))
            for r, v in zip(rows.loc[bad, "source_row"], given[bad]):
                issues.append(warning_issue(delivery, r, "invalid_code",
                                       f"{column}: '{safe_value(v)}' is not a number of hours ({HOURS_RULE}); ignored"))
            keep = hours.notna() & (hours > 0) & ~bad
            parts.append(pd.DataFrame({"source_row": rows.loc[keep, "source_row"],
                                       "intervention": names[column], "hours": hours[keep]}))
    inter = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=INTERVENTION_COLUMNS)
    return AdapterOutput(rows, inter.astype({"hours": "Float64"}), issues_frame(issues), gives_90d_status(rows))
