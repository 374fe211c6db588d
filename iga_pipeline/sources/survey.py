"""The anonymous participant survey: enkater/enkat_cykel<N>.csv (UTF-8, ',')."""

from __future__ import annotations

import pandas as pd

from iga_pipeline.sources import text
from iga_pipeline.sources.common import AdapterOutput, Delivery, issues_frame

COLUMNS = ["svar_id", "kommunkod", "okad_mojlighet", "tolk"]


def read(delivery: Delivery, key=None) -> AdapterOutput:
    frame, malformed = text.split(text.decode(delivery, "utf-8"), ",", COLUMNS)
    rows = pd.DataFrame({"source_row": frame["source_row"].astype(str).astype("string")})
    for column in COLUMNS:
        rows[column] = frame[column].astype("string").replace("", pd.NA)
    issues = issues_frame(malformed)
    issues["source_file"] = delivery.source_file
    return AdapterOutput(delivery, rows, issues=issues)
