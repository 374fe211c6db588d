"""The anonymous participant survey: enkater/enkat_cykel<N>.csv (UTF-8, ',').

`svar_id` leaves this adapter keyed (`PseudonymKey.survey_ids`), never as
written: the survey is anonymous, whatever a sender put in the column. What
validation needs to know of the raw id, that it looks like a personnummer,
comes as `svar_id_error`."""

from __future__ import annotations

import pandas as pd

from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.sources import text
from iga_pipeline.sources.common import AdapterOutput, Delivery, issues_frame

COLUMNS = ["svar_id", "kommunkod", "okad_mojlighet", "tolk"]
PERSONNUMMER_LIKE = r"\d{6}"  # six digits in a row: all or part of a personnummer


def read(delivery: Delivery, key: PseudonymKey) -> AdapterOutput:
    frame, malformed = text.split(text.decode(delivery, "utf-8"), ",", COLUMNS)
    rows = pd.DataFrame({"source_row": frame["source_row"].astype(str).astype("string")})
    for column in COLUMNS:
        rows[column] = frame[column].astype("string").replace("", pd.NA)
    raw_id = rows["svar_id"]
    rows["svar_id_error"] = pd.Series(pd.NA, index=rows.index, dtype="string").mask(
        raw_id.str.contains(PERSONNUMMER_LIKE, regex=True).fillna(False).astype(bool), "personnummer")
    rows["svar_id"] = key.survey_ids(raw_id)
    issues = issues_frame(malformed)
    issues["source_file"] = delivery.source_file
    return AdapterOutput(delivery, rows, issues=issues)
