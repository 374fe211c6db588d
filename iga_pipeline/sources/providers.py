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
import logging
import math
import re
import unicodedata
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from iga_pipeline import collector, personnummer, reference, settings
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.sources import text
from iga_pipeline.sources.common import (
    AdapterOutput, Delivery, FileRejected, issues_frame, safe_value,
)

INTERVENTION_COLUMNS = ["source_row", "intervention", "hours"]

log = logging.getLogger(__name__)


# One intervention of a six-month cycle cannot last longer than the longest cycle, around
# the clock (184 days): more is not hours but something else in the wrong column, such as a
# personnummer written as a number, and must not be stored as hours (docs/decisions.md).
MAX_HOURS = 24 * 184


def _is_hours(value) -> bool:
    """A JSON number of hours: finite, from 0 to MAX_HOURS (10**400 and Infinity are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value)) and 0 <= value <= MAX_HOURS
    except OverflowError:
        return False


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

    # openpyxl's warnings quote what they found ("the serial value 5303118243 is outside the
    # limits for dates", a document property's name): a personnummer, a name. Only how many
    # there were is logged; the values they are about are read as openpyxl gives them.
    with warnings.catch_warnings(record=True) as remarks:
        warnings.simplefilter("always")
        records = _petho_records(delivery, openpyxl)
    if remarks:
        log.warning("%s: %d remark(s) of openpyxl while reading the workbook, not shown (they may "
                    "quote cell values)", delivery.source_file, len(remarks))

    raw = pd.DataFrame(records, columns=["source_row", "municipality_code", "Personnr",
                                         "Insatser", "Status cykelslut", "Status 90 dagar"])
    rows = _identity(delivery, raw["source_row"], raw["Personnr"].astype(object), key)
    rows["municipality_code"] = raw["municipality_code"].astype("string")
    # Texts compare case-insensitively after trimming (raw-deliveries.md §2).
    rows["status_end"] = _petho_status(raw["Status cykelslut"])
    rows["status_90d"] = _petho_status(raw["Status 90 dagar"])
    followed_up = bool(rows["status_90d"].notna().any())

    interventions, issues = [], []
    names = reference.intervention_codes("petho")
    for source_row, cell in zip(raw["source_row"], raw["Insatser"]):
        for item in str(cell or "").split(","):
            item = item.strip()
            if not item:
                continue
            code = names.get(item.casefold())
            if code is None:
                issues.append(_warning(delivery, source_row, "invalid_code",
                                       f"Insatser: unknown intervention '{safe_value(item)}' ignored"))
            else:
                interventions.append((source_row, code, None))
    inter = pd.DataFrame(interventions, columns=INTERVENTION_COLUMNS).drop_duplicates(
        ["source_row", "intervention"])
    return AdapterOutput(rows, inter.astype({"hours": "Float64"}),
                         issues_frame(issues), followed_up=followed_up)


def _petho_records(delivery: Delivery, openpyxl) -> list[dict]:
    """The data rows of every worksheet named after a project municipality."""
    try:
        wb = openpyxl.load_workbook(delivery.path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, TypeError) as e:
        raise FileRejected("unreadable_file", f"not a readable xlsx workbook ({type(e).__name__})") from None
    codes = reference.municipality_codes_by_name()
    records: list[dict] = []
    try:
        named = {ws.title: _nfc(ws.title).strip().casefold() for ws in wb.worksheets}
        sheets = [ws for ws in wb.worksheets if named[ws.title] in codes]
        if not sheets:
            raise FileRejected("missing_columns", "no worksheet is named after a project municipality")
        twice = sorted(name for name, n in Counter(named[ws.title] for ws in sheets).items() if n > 1)
        if twice:  # "one worksheet per municipality": which one holds the truth would be a guess
            raise FileRejected("unreadable_file", "more than one worksheet for " + ", ".join(twice))
        for ws in sheets:
            problem = _unreadable_cells(delivery.path, ws)
            if problem:  # openpyxl reads such cells as empty: a status, even a follow-up, would vanish
                raise FileRejected("unreadable_file", f"sheet {safe_value(ws.title)}: {problem}")
            records.extend(_petho_sheet(ws, codes[named[ws.title]]))
    except FileRejected:
        raise
    except Exception as e:  # a corrupt part inside a valid zip
        raise FileRejected("unreadable_file", f"the workbook could not be read ({type(e).__name__})") from None
    finally:
        wb.close()
    return records


_CELL = re.compile(rb"<c\b[^>]*>(.*?)</c>", re.S)
_STORED_VALUE = re.compile(rb"<v>[^<]+</v>")
_MERGED = re.compile(rb'<mergeCell\b[^>]*\bref="[A-Z]+[0-9]+:[A-Z]+([0-9]+)"')


def _unreadable_cells(path, ws) -> str | None:
    """Cells of the sheet that openpyxl (read-only, data_only) reads as empty although they
    are not: formulas without a stored result (a workbook written by a program that does not
    compute formulas), and cells merged from the header row down (only the first holds the
    value). What is wrong, or None."""
    part = getattr(ws, "_worksheet_path", None)  # where openpyxl read the sheet from
    if part is None:
        return None
    with zipfile.ZipFile(path) as z:
        data = z.read(part)
    merged = sum(1 for m in _MERGED.finditer(data) if int(m.group(1)) >= PETHO_HEADER_ROW)
    if merged:
        return f"{merged} range(s) of merged cells below the title (unmerge them)"
    if b"<f" in data:
        unsaved = sum(1 for m in _CELL.finditer(data)
                      if b"<f" in m.group(1) and not _STORED_VALUE.search(m.group(1)))
        if unsaved:
            return f"{unsaved} formula cell(s) without a stored value (open and save the workbook in Excel)"
    return None


def _nfc(text: str) -> str:
    """Text in Unicode's composed form: 'Ä' typed as A and a combining diaeresis is 'Ä'."""
    return unicodedata.normalize("NFC", text)


def _petho_status(cells: pd.Series) -> pd.Series:
    """Known status texts, case-folded (the contract compares them case-insensitively);
    anything else as written, so that validation rejects it without echoing a
    name in lower case as if it were a code."""
    written = _blank_to_na(cells)
    folded = written.str.casefold()
    known = folded.isin(list(reference.outcome_codes("petho")))
    return folded.where(known | folded.isna(), written)


def _petho_sheet(ws, municipality_code: str) -> list[dict]:
    limit = settings.max_workbook_rows()
    # Read-only mode trusts the sheet's declared size, which tools other than Excel often
    # leave stale, and one stray formatted cell far below the data inflates: forget it, read
    # to the real end (the first empty row), and reject the sheet only if more than `limit`
    # rows of data are actually there.
    if hasattr(ws, "reset_dimensions"):
        ws.reset_dimensions()
    rows = ws.iter_rows(min_row=PETHO_HEADER_ROW, values_only=True)
    header = [_nfc(str(h)).strip() if h is not None else "" for h in next(rows, ())]
    repeated = sorted({h for h in header if h in PETHO_REQUIRED and header.count(h) > 1})
    if repeated:  # which of them holds the statuses would be a guess (as for a CSV header)
        raise FileRejected("unreadable_file",
                           f"sheet {safe_value(ws.title)}: repeated column(s) " + ", ".join(repeated))
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
            record[name] = _nfc(v).strip() if isinstance(v, str) else v
        out.append(record)
    return out


# --- Folkuniversitetet: Windows-1252 CSV, decimal comma, numeric codes ---------

_FU_HOURS = r"(\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)?(,\d+)?"
_GROUP_SPACE = r"[ \u00a0\u202f]"
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
    issues = [dict(m, source_file=delivery.source_file) for m in malformed]

    kommun = frame["Kommun"].reset_index(drop=True).str.casefold()
    rows["municipality_code"] = kommun.map(reference.municipality_codes_by_name()).astype("string")
    unknown = rows["municipality_code"].isna() & kommun.ne("")
    for r, name in zip(rows.loc[unknown, "source_row"], frame.loc[unknown.values, "Kommun"]):
        issues.append(_warning(delivery, r, "invalid_code",
                               f"Kommun '{safe_value(name)}' is not a project municipality"))
    rows[f"status_{tp}"] = _blank_to_na(frame["Utfallskod"].reset_index(drop=True))

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
            bad = given.ne("") & (hours.isna() | (hours < 0) | (hours > MAX_HOURS)
                                  | ~np.isfinite(hours.astype(float)))
            for r, v in zip(rows.loc[bad, "source_row"], given[bad]):
                issues.append(_warning(delivery, r, "invalid_code",
                                       f"{column}: '{safe_value(v)}' is not a number of hours; ignored"))
            keep = hours.notna() & (hours > 0) & ~bad
            parts.append(pd.DataFrame({"source_row": rows.loc[keep, "source_row"],
                                       "intervention": names[column], "hours": hours[keep]}))
    inter = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=INTERVENTION_COLUMNS)
    return AdapterOutput(rows, inter.astype({"hours": "Float64"}), issues_frame(issues))


# --- Åstorps kommun: JSON exports ----------------------------------------------

ASTORP_BATCH = 50_000  # entries turned into columns at a time
# An export up to this many characters has its participant list decoded in one call of the
# json module (C), a larger one entry by entry (a Python loop), so that a 10M-scale export
# never exists as a million dicts at once (docs/performance-history.md).
ASTORP_WHOLE_LIST_CHARS = 32 * 2**20


def read_astorp(delivery: Delivery, key: PseudonymKey) -> AdapterOutput:
    data = delivery.path.read_bytes()
    try:  # a byte-order mark, as Windows tools write one, is read past (RFC 8259 allows that)
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRejected("unreadable_file", "not valid UTF-8") from None
    del data
    list_key = "uppfoljning" if delivery.timepoint == "90d" else "deltagare"
    columns = _AstorpColumns(delivery)
    try:
        # The participant list is turned into columns a batch of entries at a time; above
        # ASTORP_WHOLE_LIST_CHARS it is also decoded entry by entry, so that a million-entry
        # export never exists as a million dicts.
        # Decoded JSON holds no reference cycles: no collector runs over it (collector.py).
        with collector.paused():
            doc = _stream_json_export(text, list_key, columns.add)
    except Exception:  # anything unusual (invalid JSON included): the whole document at once
        columns = _AstorpColumns(delivery)
        top = _TopLevel(list_key)
        try:
            with collector.paused():
                doc = json.loads(text, object_pairs_hook=top.hook)
        except json.JSONDecodeError as e:
            # the json module's messages are its own fixed words ("Expecting value", "Unexpected
            # UTF-8 BOM ..."), never the document's text
            raise FileRejected("unreadable_file",
                               f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
        if isinstance(doc, dict) and top.lists > 1:  # json.loads keeps the last: the others would vanish
            raise FileRejected("unreadable_file", f"the export has the list '{list_key}' {top.lists} times",
                               rows_read=top.entries)
        if isinstance(doc, dict) and isinstance(doc.get(list_key), list):
            entries = doc[list_key]
            _in_batches(entries, columns.add)
            doc[list_key] = _Parsed(len(entries))
    del text
    if not isinstance(doc, dict) or not isinstance(doc.get(list_key), _Parsed):
        raise FileRejected("missing_columns", f"the export has no list '{list_key}'")
    stated = doc.get("cykel")
    # a JSON number is its value (6.0 is 6); a string as written ("03" is not 3: decisions.md)
    same = (stated == delivery.cycle if isinstance(stated, (int, float)) and not isinstance(stated, bool)
            else str(stated).strip() == str(delivery.cycle))
    if stated is not None and not same:
        raise FileRejected("cycle_mismatch", f"the export says cykel {safe_value(stated)}, "
                                             f"the file name cycle {delivery.cycle}",
                           rows_read=doc[list_key].entries)
    return columns.output(key)


class _TopLevel:
    """An object_pairs_hook for json.loads that notes how often the outermost object
    (the last one the hook sees) names the participant list, and their entries."""

    def __init__(self, list_key: str):
        self.list_key, self.lists, self.entries = list_key, 0, 0

    def hook(self, pairs: list) -> dict:
        lists = [v for k, v in pairs if k == self.list_key]
        self.lists = len(lists)
        self.entries = sum(len(v) for v in lists if isinstance(v, list))
        return dict(pairs)


_JSON_SPACE = " \t\n\r"  # what the json module skips between tokens


class _NotStreamable(Exception):
    pass


@dataclass(frozen=True)
class _Parsed:
    """Stands in the document for the participant list once its entries are columns."""

    entries: int


def _stream_json_export(text: str, list_key: str, on_batch) -> dict:
    """json.loads for an export object, except that the array under `list_key` goes to
    `on_batch` in lists of ASTORP_BATCH entries (and is replaced by `_Parsed(length)`).

    Values are decoded by the json module itself (raw_decode); this only walks the
    top-level object and the array. Anything it does not expect (another shape,
    the key twice, an error) raises, and the caller parses the document whole:
    what json.loads accepts or rejects stays exactly that."""
    decoder = json.JSONDecoder()
    n = len(text)

    def skip(i: int) -> int:
        while i < n and text[i] in _JSON_SPACE:
            i += 1
        return i

    doc: dict = {}
    i = skip(0)
    if text[i: i + 1] != "{":
        raise _NotStreamable
    i = skip(i + 1)
    if text[i: i + 1] == "}":
        i += 1
    else:
        while True:
            if text[i: i + 1] != '"':
                raise _NotStreamable
            name, i = json.decoder.scanstring(text, i + 1)
            i = skip(i)
            if text[i: i + 1] != ":":
                raise _NotStreamable
            i = skip(i + 1)
            if name == list_key:
                if name in doc or text[i: i + 1] != "[":
                    raise _NotStreamable
                count, i = _stream_array(decoder, text, i, skip, on_batch)
                doc[name] = _Parsed(count)
            else:
                doc[name], i = decoder.raw_decode(text, i)
            i = skip(i)
            if text[i: i + 1] == ",":
                i = skip(i + 1)
                continue
            if text[i: i + 1] == "}":
                i += 1
                break
            raise _NotStreamable
    if skip(i) != n:
        raise _NotStreamable
    return doc


def _in_batches(entries: list, on_batch) -> None:
    for at in range(0, len(entries), ASTORP_BATCH):
        on_batch(entries[at: at + ASTORP_BATCH])


def _stream_array(decoder, text: str, i: int, skip, on_batch) -> tuple[int, int]:
    if len(text) <= ASTORP_WHOLE_LIST_CHARS:
        entries, i = decoder.raw_decode(text, i)  # text[i] is '[': a list
        _in_batches(entries, on_batch)
        return len(entries), i
    count, batch = 0, []
    i = skip(i + 1)
    if text[i: i + 1] == "]":
        return 0, i + 1
    while True:
        value, i = decoder.raw_decode(text, i)
        batch.append(value)
        count += 1
        if len(batch) == ASTORP_BATCH:
            on_batch(batch)
            batch = []
        i = skip(i)
        if text[i: i + 1] == ",":
            i = skip(i + 1)
            continue
        if text[i: i + 1] == "]":
            if batch:
                on_batch(batch)
            return count, i + 1
        raise _NotStreamable


class _AstorpColumns:
    """The columns of an Åstorp export, filled a batch of entries at a time.

    Column by column (one comprehension each, no per-entry branching in Python
    beyond what the types demand); warnings keep the order of a row-by-row read."""

    def __init__(self, delivery: Delivery):
        self.delivery = delivery
        self.status_field = "status" if delivery.timepoint == "90d" else "status_cykelslut"
        self.names = reference.intervention_codes("astorp")
        self.municipalities = reference.municipalities()
        self.n = 0
        self.pnrs: list = []
        self.kommun: list = []
        self.status: list = []
        self.owner: list[int] = []
        self.intervention: list = []
        self.hours: list = []
        self.warnings: list[tuple[tuple, dict]] = []
        self.with_status = 0  # entries that have the status key
        self.with_pnr = 0  # entries that name someone
        self.shared: dict = {}  # one object per distinct short value (codes repeat a million times)

    def add(self, entries: list) -> None:
        delivery, base, share = self.delivery, self.n, self.shared.setdefault
        dicts = [e if isinstance(e, dict) else {} for e in entries]
        self.pnrs += [p if p.__class__ is str else _astorp_pnr(p) for p in [e.get("pnr") for e in dicts]]
        kommun = [c.strip() if c.__class__ is str else (None if c is None else str(c).strip())
                  for c in [e.get("kommunkod") for e in dicts]]
        for i, code in enumerate(kommun):
            if code is not None and code not in self.municipalities:
                self.warnings.append(((base + i + 1, 0, 0), _warning(
                    delivery, str(base + i + 1), "invalid_code",
                    f"kommunkod '{safe_value(code)}' is not a project municipality")))
                kommun[i] = None
        self.kommun += [None if c is None else share(c, c) for c in kommun]
        status = [s.strip() if s.__class__ is str else (None if s is None else f"<{type(s).__name__}>")
                  for s in [e.get(self.status_field) for e in dicts]]
        self.status += [None if s is None else share(s, s) for s in status]
        # null is the contract's "unknown"; a key not there at all is something else (a renamed
        # field): traced per entry, and an export where no entry has it is rejected whole (output)
        absent = [i for i, e in enumerate(entries) if isinstance(e, dict) and self.status_field not in e]
        self.with_status += len(dicts) - len(absent)
        self.with_pnr += sum(1 for e in dicts if "pnr" in e)
        for i in absent:
            self.warnings.append(((base + i + 1, 0, 1), _warning(
                delivery, str(base + i + 1), "missing_required",
                f"the entry has no key '{self.status_field}' (null would mean unknown): read as unknown")))
        if delivery.timepoint == "end":
            lists = [e.get("insatser") for e in dicts]
            for i, items in enumerate(lists):
                if items is not None and not isinstance(items, list):
                    self.warnings.append(((base + i + 1, 1, 0), _warning(
                        delivery, str(base + i + 1), "invalid_code", "insatser is not a list; ignored")))
            owner = [base + i for i, items in enumerate(lists, start=1) if isinstance(items, list) for _ in items]
            items = [item for items in lists if isinstance(items, list) for item in items]
            typ = [it.get("typ") if isinstance(it, dict) else None for it in items]
            hours = [it.get("timmar") if isinstance(it, dict) else None for it in items]
            resolve = {t: self.names.get(t.strip().upper()) for t in {t for t in typ if isinstance(t, str)}}
            intervention = [resolve[t] if isinstance(t, str) else None for t in typ]
            bad_hours = [h is not None and not _is_hours(h) for h in hours]
            first = len(self.owner)
            for j, (i, t, code, bad) in enumerate(zip(owner, typ, intervention, bad_hours)):
                if code is None:
                    self.warnings.append(((i, 2, first + j), _warning(
                        delivery, str(i), "invalid_code", f"insatser: unknown typ '{safe_value(t)}' ignored")))
                elif bad:
                    self.warnings.append(((i, 2, first + j), _warning(
                        delivery, str(i), "invalid_code",
                        f"insatser: timmar '{safe_value(hours[j])}' is not a number of hours")))
            keep = [code is not None for code in intervention]
            self.owner += [i for i, k in zip(owner, keep) if k]
            self.intervention += [code for code in intervention if code is not None]
            self.hours += [None if b or h is None else float(h)
                           for h, b, k in zip(hours, bad_hours, keep) if k]
        self.n += len(entries)

    def output(self, key: PseudonymKey) -> AdapterOutput:
        delivery = self.delivery
        if self.with_pnr and not self.with_status:  # entries for people, none with a status key
            raise FileRejected("missing_columns", f"no entry has the key '{self.status_field}'",
                               rows_read=self.n)
        rows = _identity(delivery, pd.Series(range(1, self.n + 1)), pd.Series(self.pnrs, dtype=object), key)
        self.pnrs = []
        rows["municipality_code"] = pd.Series(self.kommun, dtype="string")
        rows[f"status_{delivery.timepoint}"] = pd.Series(self.status, dtype="string").replace("", pd.NA)
        if delivery.timepoint == "end":
            inter = pd.DataFrame({
                "source_row": pd.Series(self.owner, dtype="int64").astype(str).to_numpy(dtype=object),
                "intervention": np.array(self.intervention, dtype=object),
                "hours": np.array(self.hours, dtype=object),
            }, columns=INTERVENTION_COLUMNS)
        else:
            inter = pd.DataFrame(columns=INTERVENTION_COLUMNS)
        self.warnings.sort(key=lambda w: w[0])
        return AdapterOutput(rows, inter.astype({"hours": "Float64"}),
                             issues_frame([w for _, w in self.warnings]))


def _astorp_pnr(pnr):
    """A JSON value in the pnr field that is not a string: numbers are read like Excel numbers."""
    if isinstance(pnr, bool) or not isinstance(pnr, (str, int, float, type(None))):
        return "<not a personnummer>"  # a list, object or boolean: invalid, never missing
    return pnr


READERS = {
    "petho": read_petho,
    "folkuniversitetet": read_folkuniversitetet,
    "astorp": read_astorp,
}
