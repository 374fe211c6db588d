"""Municipality participant registers: kommuner/<kommunkod>/deltagare_cykel<N>.csv.

UTF-8 (a byte-order mark is allowed), ';' delimited. The register is the
master list: only its rows create participations (rules R2).
"""

from __future__ import annotations

import pandas as pd

from iga_pipeline import personnummer, reference
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.sources import text
from iga_pipeline.sources.common import AdapterOutput, Delivery, issues_frame

COLUMNS = [
    "personnummer", "fornamn", "efternamn", "kon", "fodelseland", "malgrupp", "cykel",
    "inskrivningsdatum", "utskrivningsdatum", "avbrott_orsak",
]
# What leaves the adapter: no personnummer, no names.
KEPT = ["kon", "fodelseland", "malgrupp", "cykel", "inskrivningsdatum", "utskrivningsdatum", "avbrott_orsak"]


def read(delivery: Delivery, key: PseudonymKey) -> AdapterOutput:
    frame, malformed = text.split(text.decode(delivery, "utf-8"), ";", COLUMNS)
    start = reference.cycles()[delivery.cycle].start
    pnr = personnummer.normalise(frame["personnummer"], start)
    rows = pd.DataFrame({
        "source_row": frame["source_row"].astype(str).astype("string"),
        "person_key": key.person_keys(pnr["pnr"]),
        "pnr_error": pnr["error"],
        "municipality_code": delivery.municipality_code,
    })
    for column in KEPT:
        rows[column] = frame[column].astype("string").replace("", pd.NA)
    issues = issues_frame(malformed)
    issues["source_file"] = delivery.source_file
    return AdapterOutput(rows, issues=issues)
