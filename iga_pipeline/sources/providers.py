"""The three providers' outcome deliveries, each to the same harmonised shape.

Every adapter returns one row per data row read, with
  source_row, person_key, pnr_error, municipality_code (the provider's claim,
  <NA> when it names no project municipality), and status_end / status_90d
  (the raw status code, trimmed; <NA> where empty or null; the column is
  absent when the file does not report that time point),
plus an interventions frame (source_row, intervention, hours).
"""

from __future__ import annotations

import json
import os
import zipfile

import pandas as pd

from iga_pipeline import personnummer, reference
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.sources import text
from iga_pipeline.sources.common import (
    AdapterOutput, Delivery, FileRejected, issues_frame, safe_value,
)

INTERVENTION_COLUMNS = ["source_row", "intervention", "hours"]


def _warning(delivery: Delivery, row: str, reason: str, detail: str) -> dict:
    return {"source_file": delivery.source_file, "source_row": row,
            "severity": "warning", "reason": reason, "detail": detail}


def _identity(delivery: Delivery, source_row: pd.Series, pnr_values: pd.Series,
              key: PseudonymKey) -> pd.DataFrame:
    start = reference.cycles()[delivery.cycle].start
    pnr = personnummer.normalise(pnr_values.reset_index(drop=True), start)
    return pd.DataFrame({
        "source_row": source_row.reset_index(drop=True).astype(str).astype("string"),
        "person_key": key.person_keys(pnr["pnr"]),
        "pnr_error": pnr["error"],
    })


def _blank_to_na(s: pd.Series) -> pd.Series:
    return s.astype("string").str.strip().replace("", pd.NA)


# --- Pethö Consulting: one workbook, one sheet per municipality ---------------

PETHO_HEADER_ROW = 4
PETHO_REQUIRED = ["Personnr", "Insatser", "Status cykelslut", "Status 90 dagar"]


def read_petho(delivery: Delivery, key: PseudonymKey) -> AdapterOutput:
    import openpyxl  # imported here: the other adapters do not need it

    try:
        wb = openpyxl.load_workbook(delivery.path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, TypeError) as e:
        raise FileRejected("unreadable_file", f"not a readable xlsx workbook ({type(e).__name__})") from None
    codes = reference.municipality_codes_by_name()
    records: list[dict] = []
    try:
        sheets = [ws for ws in wb.worksheets if ws.title.strip().casefold() in codes]
        if not sheets:
            raise FileRejected("missing_columns", "no worksheet is named after a project municipality")
        for ws in sheets:
            records.extend(_petho_sheet(ws, codes[ws.title.strip().casefold()]))
    except FileRejected:
        raise
    except Exception as e:  # a corrupt part inside a valid zip
        raise FileRejected("unreadable_file", f"the workbook could not be read ({type(e).__name__})") from None
    finally:
        wb.close()

    raw = pd.DataFrame(records, columns=["source_row", "municipality_code", "Personnr",
                                         "Insatser", "Status cykelslut", "Status 90 dagar"])
    rows = _identity(delivery, raw["source_row"], raw["Personnr"].astype(object), key)
    rows["municipality_code"] = raw["municipality_code"].astype("string")
    # Texts compare case-insensitively after trimming (raw-deliveries.md §2).
    rows["status_end"] = _blank_to_na(raw["Status cykelslut"]).str.casefold()
    rows["status_90d"] = _blank_to_na(raw["Status 90 dagar"]).str.casefold()
    followed_up = bool(rows["status_90d"].notna().any())

    interventions, warnings = [], []
    names = reference.intervention_codes("petho")
    for source_row, cell in zip(raw["source_row"], raw["Insatser"]):
        for item in str(cell or "").split(","):
            item = item.strip()
            if not item:
                continue
            code = names.get(item.casefold())
            if code is None:
                warnings.append(_warning(delivery, source_row, "invalid_code",
                                         f"Insatser: unknown intervention '{safe_value(item)}' ignored"))
            else:
                interventions.append((source_row, code, None))
    inter = pd.DataFrame(interventions, columns=INTERVENTION_COLUMNS).drop_duplicates(
        ["source_row", "intervention"])
    return AdapterOutput(delivery, rows, inter.astype({"hours": "Float64"}),
                         issues_frame(warnings), followed_up=followed_up)


def max_workbook_rows() -> int:
    """The most data rows read from one worksheet (IGA_MAX_WORKBOOK_ROWS, default 100 000)."""
    return int(os.environ.get("IGA_MAX_WORKBOOK_ROWS", "100000"))


def _petho_sheet(ws, municipality_code: str) -> list[dict]:
    limit = max_workbook_rows()
    declared = ws.max_row or 0  # from the sheet's dimension; may be absent
    if declared - PETHO_HEADER_ROW > limit:
        raise FileRejected("unreadable_file", f"sheet {safe_value(ws.title)} declares {declared} rows, "
                                              f"above the limit of {limit} (IGA_MAX_WORKBOOK_ROWS)")
    rows = ws.iter_rows(min_row=PETHO_HEADER_ROW, values_only=True)
    header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
    missing = [c for c in PETHO_REQUIRED if c not in header]
    if missing:
        raise FileRejected(
            "missing_columns",
            f"sheet {safe_value(ws.title)}: missing column(s) " + ", ".join(missing),
        )
    at = {name: header.index(name) for name in PETHO_REQUIRED}
    out = []
    for offset, values in enumerate(rows):
        if values is None or all(v is None or str(v).strip() == "" for v in values):
            break  # data end at the first entirely empty row
        if offset >= limit:
            raise FileRejected("unreadable_file", f"sheet {safe_value(ws.title)} has more than {limit} "
                                                  "data rows (IGA_MAX_WORKBOOK_ROWS)")
        values = list(values) + [None] * (len(header) - len(values))
        record = {"source_row": f"{ws.title}!{PETHO_HEADER_ROW + 1 + offset}",
                  "municipality_code": municipality_code}
        for name, i in at.items():
            v = values[i]
            record[name] = v.strip() if isinstance(v, str) else v
        out.append(record)
    return out


# --- Folkuniversitetet: Windows-1252 CSV, decimal comma, numeric codes ---------

FU_HOURS = ["Timmar validering", "Timmar yrkesprövning", "Timmar samhällsorientering",
            "Timmar jobbsökning"]
FU_COLUMNS = {
    "end": ["Personnummer", "Kommun", *FU_HOURS, "Utfallskod", "Utfallsdatum"],
    "90d": ["Personnummer", "Kommun", "Utfallskod", "Uppföljningsdatum"],
}


def read_folkuniversitetet(delivery: Delivery, key: PseudonymKey) -> AdapterOutput:
    tp = delivery.timepoint
    frame, malformed = text.split(text.decode(delivery, "cp1252"), ";", FU_COLUMNS[tp])
    rows = _identity(delivery, frame["source_row"], frame["Personnummer"], key)
    warnings = [dict(m, source_file=delivery.source_file) for m in malformed]

    kommun = frame["Kommun"].reset_index(drop=True).str.casefold()
    rows["municipality_code"] = kommun.map(reference.municipality_codes_by_name()).astype("string")
    unknown = rows["municipality_code"].isna() & kommun.ne("")
    for r, name in zip(rows.loc[unknown, "source_row"], frame.loc[unknown.values, "Kommun"]):
        warnings.append(_warning(delivery, r, "invalid_code",
                                 f"Kommun '{safe_value(name)}' is not a project municipality"))
    rows[f"status_{tp}"] = _blank_to_na(frame["Utfallskod"].reset_index(drop=True))

    parts = []
    if tp == "end":
        names = reference.intervention_codes("folkuniversitetet")
        for column in FU_HOURS:
            given = frame[column].reset_index(drop=True)
            hours = pd.to_numeric(given.str.replace(",", ".", regex=False), errors="coerce")
            bad = given.ne("") & (hours.isna() | (hours < 0))
            for r, v in zip(rows.loc[bad, "source_row"], given[bad]):
                warnings.append(_warning(delivery, r, "invalid_code",
                                         f"{column}: '{safe_value(v)}' is not a number of hours; ignored"))
            keep = hours.notna() & (hours > 0)
            parts.append(pd.DataFrame({"source_row": rows.loc[keep, "source_row"],
                                       "intervention": names[column], "hours": hours[keep]}))
    inter = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=INTERVENTION_COLUMNS)
    return AdapterOutput(delivery, rows, inter.astype({"hours": "Float64"}), issues_frame(warnings))


# --- Åstorps kommun: JSON exports ----------------------------------------------

def read_astorp(delivery: Delivery, key: PseudonymKey) -> AdapterOutput:
    data = delivery.path.read_bytes()
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise FileRejected("unreadable_file", "not valid UTF-8") from None
    except json.JSONDecodeError as e:
        raise FileRejected("unreadable_file", f"not valid JSON (line {e.lineno}, column {e.colno})") from None
    list_key = "uppfoljning" if delivery.timepoint == "90d" else "deltagare"
    if not isinstance(doc, dict) or not isinstance(doc.get(list_key), list):
        raise FileRejected("missing_columns", f"the export has no list '{list_key}'")
    stated = doc.get("cykel")
    if stated is not None and str(stated).strip() != str(delivery.cycle):
        raise FileRejected("cycle_mismatch", f"the export says cykel {safe_value(stated)}, "
                                             f"the file name cycle {delivery.cycle}",
                           rows_read=len(doc[list_key]))
    entries = doc[list_key]
    status_field = "status" if delivery.timepoint == "90d" else "status_cykelslut"
    warnings, pnrs, kommun, status, inter = [], [], [], [], []
    names = reference.intervention_codes("astorp")
    municipalities = reference.municipalities()
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            entry = {}
        pnr = entry.get("pnr")
        if isinstance(pnr, bool) or not isinstance(pnr, (str, int, float, type(None))):
            pnr = "<not a personnummer>"  # a list, object or boolean: invalid, never missing
        pnrs.append(pnr)  # a JSON number is read like an Excel number
        code = entry.get("kommunkod")
        code = str(code).strip() if code is not None else None
        if code is not None and code not in municipalities:
            warnings.append(_warning(delivery, str(i), "invalid_code",
                                     f"kommunkod '{safe_value(code)}' is not a project municipality"))
            code = None
        kommun.append(code)
        s = entry.get(status_field)
        status.append(s.strip() if isinstance(s, str) else (None if s is None else f"<{type(s).__name__}>"))
        items = entry.get("insatser") if delivery.timepoint == "end" else None
        if items is not None and not isinstance(items, list):
            warnings.append(_warning(delivery, str(i), "invalid_code", "insatser is not a list; ignored"))
            items = None
        for item in items or []:
            typ = item.get("typ") if isinstance(item, dict) else None
            intervention = names.get(typ.strip().upper()) if isinstance(typ, str) else None
            hours = item.get("timmar") if isinstance(item, dict) else None
            if intervention is None:
                warnings.append(_warning(delivery, str(i), "invalid_code",
                                         f"insatser: unknown typ '{safe_value(typ)}' ignored"))
                continue
            if hours is not None and (isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours < 0):
                warnings.append(_warning(delivery, str(i), "invalid_code",
                                         f"insatser: timmar '{safe_value(hours)}' is not a number of hours"))
                hours = None
            inter.append((str(i), intervention, None if hours is None else float(hours)))
    rows = _identity(delivery, pd.Series(range(1, len(entries) + 1)), pd.Series(pnrs, dtype=object), key)
    rows["municipality_code"] = pd.Series(kommun, dtype="string")
    rows[f"status_{delivery.timepoint}"] = pd.Series(status, dtype="string").replace("", pd.NA)
    interventions = pd.DataFrame(inter, columns=INTERVENTION_COLUMNS).astype({"hours": "Float64"})
    return AdapterOutput(delivery, rows, interventions, issues_frame(warnings))


READERS = {
    "petho": read_petho,
    "folkuniversitetet": read_folkuniversitetet,
    "astorp": read_astorp,
}
