"""Åstorps kommun, cycles 5-8: a JSON export per cycle and time point (raw-deliveries.md §4)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from iga_pipeline import collector, reference
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.sources.common import (
    AdapterOutput, Delivery, FileRejected, issues_frame, safe_value,
)
from iga_pipeline.sources.provider_rows import INTERVENTION_COLUMNS, identity, is_hours, warning_issue

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
        # (sort key, issue): the key (entry number, part, position) puts the warnings in the
        # order a row-by-row read gives: per entry its kommunkod (0, 0), its status (0, 1),
        # its insatser list (1, 0), then each intervention in turn (2, n)
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
                self.warnings.append(((base + i + 1, 0, 0), warning_issue(
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
            self.warnings.append(((base + i + 1, 0, 1), warning_issue(
                delivery, str(base + i + 1), "missing_required",
                f"the entry has no key '{self.status_field}' (null would mean unknown): read as unknown")))
        if delivery.timepoint == "end":
            lists = [e.get("insatser") for e in dicts]
            for i, items in enumerate(lists):
                if items is not None and not isinstance(items, list):
                    self.warnings.append(((base + i + 1, 1, 0), warning_issue(
                        delivery, str(base + i + 1), "invalid_code", "insatser is not a list; ignored")))
            owner = [base + i for i, items in enumerate(lists, start=1) if isinstance(items, list) for _ in items]
            items = [item for items in lists if isinstance(items, list) for item in items]
            typ = [it.get("typ") if isinstance(it, dict) else None for it in items]
            hours = [it.get("timmar") if isinstance(it, dict) else None for it in items]
            resolve = {t: self.names.get(t.strip().upper()) for t in {t for t in typ if isinstance(t, str)}}
            intervention = [resolve[t] if isinstance(t, str) else None for t in typ]
            bad_hours = [h is not None and not is_hours(h) for h in hours]
            first = len(self.owner)
            for j, (i, t, code, bad) in enumerate(zip(owner, typ, intervention, bad_hours)):
                if code is None:
                    self.warnings.append(((i, 2, first + j), warning_issue(
                        delivery, str(i), "invalid_code", f"insatser: unknown typ '{safe_value(t)}' ignored")))
                elif bad:
                    self.warnings.append(((i, 2, first + j), warning_issue(
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
        rows = identity(delivery, pd.Series(range(1, self.n + 1)), pd.Series(self.pnrs, dtype=object), key)
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
