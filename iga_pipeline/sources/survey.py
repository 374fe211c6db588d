"""The anonymous participant survey: enkater/enkat_cykel<N>.csv (UTF-8, ',').

`svar_id` leaves this adapter keyed (`PseudonymKey.survey_ids`), never as
written: the survey is anonymous, whatever a sender put in the column. What
validation needs to know of the raw id, that it names a personnummer,
comes as `svar_id_error`."""

from __future__ import annotations

import unicodedata

import pandas as pd

from iga_pipeline import personnummer, reference
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.sources import text
from iga_pipeline.sources.common import AdapterOutput, Delivery, issues_frame

COLUMNS = ["svar_id", "kommunkod", "okad_mojlighet", "tolk"]
# A personnummer (or samordningsnummer) in one of its written forms, not among other digits
PERSONNUMMER_FORM = r"(?<!\d)(\d{6}[-+]?\d{4}|\d{8}-?\d{4})(?!\d)"
# digits in a row that could hide one and are too many to tell: 11, or more than 12
UNTELLABLE_DIGITS = r"(?<!\d)(?:\d{11}|\d{13,})(?!\d)"
# a personnummer's two groups (6 or 8 digits, then 4) apart by white space, dots, underscores
# or slashes, around its `-` or `+` or without one: `19911203 2587`, `19680621.9140`
SPACED_PERSONNUMMER = r"(?<!\d)(\d{6}|\d{8})[\s._/]*([-+]?)[\s._/]*(\d{4})(?!\d)"


def read(delivery: Delivery, key: PseudonymKey) -> AdapterOutput:
    frame, malformed = text.split(text.decode(delivery, "utf-8"), ",", COLUMNS)
    rows = pd.DataFrame({"source_row": frame["source_row"].astype(str).astype("string")})
    for column in COLUMNS:
        rows[column] = frame[column].astype("string").replace("", pd.NA)
    raw_id = rows["svar_id"]
    rows["svar_id_error"] = pd.Series(pd.NA, index=rows.index, dtype="string").mask(
        _names_a_personnummer(raw_id, reference.cycles()[delivery.cycle].start), "personnummer")
    rows["svar_id"] = key.survey_ids(raw_id)
    issues = issues_frame(malformed)
    issues["source_file"] = delivery.source_file
    return AdapterOutput(rows, issues=issues)


def _ascii_digits(value: str) -> str:
    """`value` with every decimal digit of any script written 0-9 (NFKC alone leaves some)."""
    return "".join(str(unicodedata.decimal(c)) if unicodedata.category(c) == "Nd" else c
                   for c in unicodedata.normalize("NFKC", value))


def _names_a_personnummer(raw_id: pd.Series, reference_date) -> pd.Series:
    """Whether each id holds a valid personnummer (date and check digit, personnummer.py), its
    digits in any script and its two groups apart or not (`19911203 2587`: a review passed
    those), or digits in a row that could hide one. An id of six digits, or a number with a
    prefix, is an id: survey tools number their answers (such ids were once all rejected);
    so are dates and times spaced otherwise (`2010/03/15/001`, `20100315 142312`)."""
    raw_id = raw_id.map(lambda v: v if v.isascii() else _ascii_digits(v), na_action="ignore").astype("string")
    joined = raw_id.str.replace(SPACED_PERSONNUMMER, r"\1\2\3", regex=True)
    found = joined.str.extractall(PERSONNUMMER_FORM)[0]
    valid = personnummer.normalise(found.astype(object).reset_index(drop=True), reference_date)["error"].isna()
    named = raw_id.index.isin(found.index.get_level_values(0)[valid.to_numpy()])
    untellable = raw_id.str.contains(UNTELLABLE_DIGITS, regex=True).fillna(False).to_numpy(bool)
    return pd.Series(named | untellable, index=raw_id.index)
