"""Municipality participant registers: kommuner/<kommunkod>/deltagare_cykel<N>.csv.

UTF-8 (a byte-order mark is allowed), ';' delimited. The register is the
master list: only its rows create participations (rules R2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.sources import text
from iga_pipeline.sources.common import AdapterOutput, Delivery, identity, issues_frame

COLUMNS = [
    "personnummer", "fornamn", "efternamn", "kon", "fodelseland", "malgrupp", "cykel",
    "inskrivningsdatum", "utskrivningsdatum", "avbrott_orsak",
]
# What leaves the adapter: no personnummer, no names (only `name_spelling`, a number: _name_numbers).
KEPT = ["kon", "fodelseland", "malgrupp", "cykel", "inskrivningsdatum", "utskrivningsdatum", "avbrott_orsak"]


def read(delivery: Delivery, key: PseudonymKey) -> AdapterOutput:
    frame, malformed = text.split(text.decode(delivery, "utf-8"), ";", COLUMNS)
    rows = identity(delivery, frame["source_row"], frame["personnummer"], key)
    rows["municipality_code"] = delivery.municipality_code
    for column in KEPT:
        rows[column] = frame[column].astype("string").replace("", pd.NA)
    rows["name_spelling"] = _name_numbers(frame, rows["person_key"])
    issues = issues_frame(malformed)
    issues["source_file"] = delivery.source_file
    return AdapterOutput(rows, issues=issues)


def _name_numbers(frame: pd.DataFrame, person_keys: pd.Series) -> np.ndarray:
    """Which of a person's spellings of the names each row gives, as a number: rows of one
    person in this file give the same number exactly when they give the same fornamn and
    efternamn (compared as a pair, in Unicode's composed form NFC, as the Pethö adapter does:
    'Å' typed as A and a combining ring is 'Å'; letter case counts). R5 can so tell identical
    rows from differing ones ("identical content") while the names stay here. The numbers are
    counted per person (1, 2, ... in the order the spellings come), so they say nothing of
    whether two people share a name; a person's only row in the file gives 0."""
    numbers = np.zeros(len(frame), dtype="int32")
    repeated = person_keys.duplicated(keep=False).to_numpy()
    if repeated.any():
        names = frame.loc[repeated, ["fornamn", "efternamn"]].astype(str)  # only these: a hot path
        rows = pd.DataFrame({
            "person": person_keys.to_numpy()[repeated],
            "first": names["fornamn"].str.normalize("NFC").to_numpy(),
            "last": names["efternamn"].str.normalize("NFC").to_numpy(),
        })
        spelling = rows.groupby(["person", "first", "last"], sort=False, dropna=False).ngroup()
        numbers[repeated] = spelling.groupby(rows["person"].to_numpy(), sort=False, dropna=False).rank(
            method="dense").to_numpy(dtype="int32")
    return numbers
