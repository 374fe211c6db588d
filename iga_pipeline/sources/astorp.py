"""Åstorps kommun, cycles 5-8: a JSON export per cycle and time point (raw-deliveries.md §4)."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from iga_pipeline import collector, personnummer, reference
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.sources.common import AdapterOutput, Delivery, FileRejected, identity, issues_frame
from iga_pipeline.sources.masking import safe_value
from iga_pipeline.sources.provider_rows import (
    HOURS_RULE, INTERVENTION_COLUMNS, gives_90d_status, hours_of, warning_issue,
)

ASTORP_BATCH = 50_000  # entries turned into columns at a time
# An export up to this many characters has its participant list decoded in one call of the
# json module (C), a larger one entry by entry (a Python loop), so that a 10M-scale export
# never exists as a million dicts at once (docs/performance-history.md).
ASTORP_WHOLE_LIST_CHARS = 32 * 2**20
_ABSENT = object()  # a key not in the object (JSON null is None)


def read_astorp(delivery: Delivery, key: PseudonymKey) -> AdapterOutput:
    data = delivery.path.read_bytes()
    try:  # a byte-order mark, as Windows tools write one, is read past (RFC 8259 allows that)
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRejected("unreadable_file", "not valid UTF-8") from None
    del data
    list_key = "uppfoljning" if delivery.timepoint == "90d" else "deltagare"
    columns = _AstorpColumns(delivery)
    doc, cycles, pairs = _parse(text, list_key, columns, dict)
    if _may_repeat_keys(text, columns):
        # json keeps the last of a key given twice in one object: decoded again, noting every
        # repeat, so that an entry that gives a key it reads twice is not silently half read
        columns = _AstorpColumns(delivery, repeats=True)
        doc, cycles, pairs = _parse(text, list_key, columns, _noting_repeats)
    del text
    if isinstance(doc, list):  # the list without its object (or the object inside a list)
        # the rows read: an item that is the export's object counts its list's entries
        rows = sum(len(item[list_key]) if isinstance(item, dict) and isinstance(item.get(list_key), list) else 1
                   for item in doc)
        holding = f" holding {rows} entries" if rows != len(doc) else ""
        raise FileRejected("missing_columns", f"the export is a list of {len(doc)} item(s){holding}, not an "
                                              f"object with the list '{list_key}'", rows_read=rows)
    if not isinstance(doc, dict) or not isinstance(doc.get(list_key), _Parsed):
        raise FileRejected("missing_columns", f"the export has no list '{list_key}'")
    for stated in cycles:  # a cykel given twice: each value
        # a JSON number is its value (6.0 is 6); a string as written ("03" is not 3: decisions.md)
        same = (stated == delivery.cycle if isinstance(stated, (int, float)) and not isinstance(stated, bool)
                else str(stated).strip() == str(delivery.cycle))
        if stated is not None and not same:
            raise FileRejected("cycle_mismatch", f"the export says cykel {safe_value(stated)}, "
                                                 f"the file name cycle {delivery.cycle}",
                               rows_read=doc[list_key].entries)
    out = columns.output(key)
    unread = _unread_content(delivery, pairs, list_key)
    if unread:  # a trace, not a count (as Pethö's rows below a sheet's end: H12)
        out.issues = pd.concat([out.issues, issues_frame(unread)], ignore_index=True)
    return out


_CONTRACT_KEYS = ("leverantor", "cykel", "levererad", "deltagare", "uppfoljning")  # raw-deliveries.md §4


def _unread_content(delivery: Delivery, pairs: list[tuple], list_key: str) -> list[dict]:
    """A warning (`unexpected_file`, no row) for each non-empty list or object among the
    export's top-level `pairs` (every one, a key given twice included) other than its participant
    list: the end-of-cycle export's `uppfoljning`, say, whose statuses count only from the
    `_90dagar` file. A scalar is harmless and ignored."""
    unread = []
    for name, value in pairs:
        if name == list_key or not isinstance(value, (list, dict)) or not value:
            continue
        what = f"a list of {len(value)} item(s)" if isinstance(value, list) else f"an object of {len(value)} key(s)"
        shown = name if name in _CONTRACT_KEYS else safe_value(name)  # a sender's key could be anything
        unread.append(warning_issue(delivery, None, "unexpected_file",
                                    f"the export's '{shown}' ({what}) is not read: "
                                    f"this file's data is its list '{list_key}' only"))
    return unread


def _parse(text: str, list_key: str, columns: "_AstorpColumns", make_object) -> tuple[object, list, list]:
    """The export's top-level value, its participant list turned into `columns`, every
    value the top-level object gives `cykel`, and its other (key, value) pairs (a key given
    twice, twice). `make_object(pairs)` makes every object inside the list (`dict`, or
    `_noting_repeats`)."""
    try:
        # The participant list is turned into columns a batch of entries at a time; above
        # ASTORP_WHOLE_LIST_CHARS it is also decoded entry by entry, so that a million-entry
        # export never exists as a million dicts.
        # Decoded JSON holds no reference cycles: no collector runs over it (collector.py).
        with collector.paused():
            doc = _stream_json_export(text, list_key, columns.add, make_object)
        # streamed: no key given twice
        return doc, [doc["cykel"]] if "cykel" in doc else [], [(k, v) for k, v in doc.items() if k != list_key]
    except Exception:  # anything unusual (invalid JSON included): the whole document at once
        pass
    columns.clear()
    top = _TopLevel(list_key, make_object)
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
    # json.loads keeps the last cykel: every one is checked. The pairs leave out the participant
    # list, now columns: kept, its decoded entries would live on beside them.
    return doc, top.cycles, [(k, v) for k, v in top.pairs if k != list_key]


class _TopLevel:
    """An object_pairs_hook for json.loads that notes how often the outermost object
    (the last one the hook sees) names the participant list, and their entries, the
    values it gives `cykel`, and its pairs."""

    def __init__(self, list_key: str, make_object=dict):
        self.list_key, self.lists, self.entries, self.make_object = list_key, 0, 0, make_object
        self.cycles: list = []
        self.pairs: list = []

    def hook(self, pairs: list) -> dict:
        lists = [v for k, v in pairs if k == self.list_key]
        self.lists = len(lists)
        self.entries = sum(len(v) for v in lists if isinstance(v, list))
        self.cycles = [v for k, v in pairs if k == "cykel"]
        self.pairs = pairs
        return self.make_object(pairs)


_JSON_SPACE = " \t\n\r"  # what the json module skips between tokens


class _NotStreamable(Exception):
    pass


@dataclass(frozen=True)
class _Parsed:
    """Stands in the document for the participant list once its entries are columns."""

    entries: int


def _stream_json_export(text: str, list_key: str, on_batch, make_object=dict) -> dict:
    """json.loads for an export object, except that the array under `list_key` goes to
    `on_batch` in lists of ASTORP_BATCH entries (and is replaced by `_Parsed(entries)`).

    Values are decoded by the json module itself (raw_decode); this only walks the
    top-level object and the array. Anything it does not expect (another shape,
    the key twice, an error) raises, and the caller parses the document whole:
    what json.loads accepts or rejects stays exactly that. `make_object(pairs)` makes the
    objects inside the top-level one."""
    decoder = json.JSONDecoder() if make_object is dict else json.JSONDecoder(object_pairs_hook=make_object)
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
            if name in doc:  # a key given twice: json.loads, whose hook sees both (_TopLevel)
                raise _NotStreamable
            if name == list_key:
                if text[i: i + 1] != "[":
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

    def __init__(self, delivery: Delivery, repeats: bool = False):
        self.delivery = delivery
        self.repeats = repeats  # entries decoded by _noting_repeats: resolve what they repeat
        self.status_field = "status" if delivery.timepoint == "90d" else "status_cykelslut"
        # the keys read, of an entry and of an intervention (_may_repeat_keys)
        end = delivery.timepoint == "end"
        self.entry_keys = ("pnr", "kommunkod", self.status_field, *(("insatser",) if end else ()))
        self.item_keys = ("typ", "timmar") if end else ()
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
        self.no_status: list[int] = []  # the entries (from 0) that have no status key
        self.keys_read = Counter()  # how many entries (interventions) have each key read: "pnr", someone
        self.rejected: dict[int, tuple[str, str]] = {}  # entry number -> (reason, detail): the adapter rejects it
        self.shared: dict = {}  # one object per distinct short value (codes repeat a million times)

    def clear(self) -> None:
        self.__init__(self.delivery, self.repeats)

    def add(self, entries: list) -> None:
        delivery, base, share = self.delivery, self.n, self.shared.setdefault
        if self.repeats:
            entries = [self._resolve(base + i + 1, e) if isinstance(e, dict) else e for i, e in enumerate(entries)]
        dicts = [e if isinstance(e, dict) else {} for e in entries]
        others = [i for i, e in enumerate(entries) if not isinstance(e, dict)]
        for i in others:  # a string, a number, a list or null where a person's entry belongs
            self.rejected[base + i + 1] = ("missing_required", f"the entry is {_json_kind(entries[i])}, not an "
                                           "object of keys: nothing of it is read")
        # each key read as written out here, inline for speed; _as_read reads a repeated one alike
        self.pnrs += [p if p.__class__ is str else _astorp_pnr(p) for p in self._values(dicts, "pnr")]
        kommun = [c.strip() if c.__class__ is str else (None if c is None else str(c).strip())
                  for c in self._values(dicts, "kommunkod")]
        for i, code in enumerate(kommun):
            if code is not None and code not in self.municipalities:
                self.warnings.append(((base + i + 1, 0, 0), warning_issue(
                    delivery, str(base + i + 1), "invalid_code",
                    f"kommunkod '{safe_value(code)}' is not a project municipality")))
                kommun[i] = None
        self.kommun += [None if c is None else share(c, c) for c in kommun]
        status = [s.strip() if s.__class__ is str else (None if s is None else f"<{type(s).__name__}>")
                  for s in self._values(dicts, self.status_field)]
        self.status += [None if s is None else share(s, s) for s in status]
        # null is the contract's "unknown"; a key not there at all is something else (a renamed
        # field): traced per entry, and an export where no entry that names a person has it is
        # rejected whole (output)
        absent = [i for i, e in enumerate(entries) if isinstance(e, dict) and self.status_field not in e]
        self.no_status += [base + i for i in absent]
        for i in absent:
            self.warnings.append(((base + i + 1, 0, 1), warning_issue(
                delivery, str(base + i + 1), "missing_required",
                f"the entry has no key '{self.status_field}' (null would mean unknown): read as unknown")))
        if delivery.timepoint == "end":
            lists = self._values(dicts, "insatser")
            for i, items in enumerate(lists):
                if items is not None and not isinstance(items, list):
                    self.warnings.append(((base + i + 1, 1, 0), warning_issue(
                        delivery, str(base + i + 1), "invalid_code", "insatser is not a list; ignored")))
            owner = [base + i for i, items in enumerate(lists, start=1) if isinstance(items, list) for _ in items]
            items = [item if isinstance(item, dict) else {}  # another JSON value: no typ, no timmar
                     for items in lists if isinstance(items, list) for item in items]
            typ = self._values(items, "typ")
            hours = self._values(items, "timmar")
            resolve = {t: self.names.get(t.strip().upper()) for t in {t for t in typ if isinstance(t, str)}}
            intervention = [resolve[t] if isinstance(t, str) else None for t in typ]
            as_read = [None if h is None else hours_of(h) for h in hours]
            bad_hours = [h is not None and r is None for h, r in zip(hours, as_read)]
            first = len(self.owner)
            for j, (i, t, code, bad) in enumerate(zip(owner, typ, intervention, bad_hours)):
                if code is None:
                    self.warnings.append(((i, 2, first + j), warning_issue(
                        delivery, str(i), "invalid_code", f"insatser: unknown typ '{safe_value(t)}' ignored")))
                elif bad:
                    self.warnings.append(((i, 2, first + j), warning_issue(
                        delivery, str(i), "invalid_code",
                        f"insatser: timmar '{safe_value(hours[j])}' is not a number of hours ({HOURS_RULE})")))
            keep = [code is not None for code in intervention]
            self.owner += [i for i, k in zip(owner, keep) if k]
            self.intervention += [code for code in intervention if code is not None]
            self.hours += [r for r, k in zip(as_read, keep) if k]
        self.n += len(entries)

    def _values(self, objects: list[dict], name: str) -> list:
        """Each object's `name`, None where it has none; counts the objects that have it
        (`keys_read`, which _may_repeat_keys compares with the text)."""
        values = [o.get(name, _ABSENT) for o in objects]
        absent = values.count(_ABSENT)
        self.keys_read[name] += len(values) - absent
        return [None if v is _ABSENT else v for v in values] if absent else values

    def _resolve(self, n: int, entry: dict) -> dict:
        """Entry number `n` as decoded by _noting_repeats. A key read that it gives more than
        once, with values that read differently (`_as_read`), is not read: which holds would
        be a guess. For the personnummer or the status the entry is rejected; a kommunkod is
        read as missing and an insatser list ignored, as a wrong one is; an intervention
        whose typ differs is ignored, and one whose timmar differ has no hours."""
        def differs(obj: dict, name: str) -> int:  # how often obj gives `name`, if differently; else 0
            given = getattr(obj, "repeats", {}).get(name, ())
            return len(given) if len({repr(self._as_read(name, v)) for v in given}) > 1 else 0

        given, entry = entry, dict(entry)
        for name in ("pnr", self.status_field):
            times = differs(given, name)
            if times and n not in self.rejected:
                self.rejected[n] = ("conflicting_duplicate", f"the entry gives {name} {times} times, with "
                                                             "different values: which holds would be a guess")
        if differs(given, self.status_field):  # rejected, but it gave a status (R9: the cycle's follow-up)
            read = [self._as_read(self.status_field, v) for v in given.repeats[self.status_field]]
            entry[self.status_field] = next((r for r in read if r), None)
        for name, what in (("kommunkod", "read as missing"), ("insatser", "ignored")):
            times = differs(given, name) if name in self.entry_keys else 0
            if times:
                entry[name] = None
                self.warnings.append(((n, 1 if name == "insatser" else 0, 0), warning_issue(
                    self.delivery, str(n), "invalid_code",
                    f"the entry gives {name} {times} times, with different values: {what}")))
        items = entry.get("insatser")
        if self.item_keys and isinstance(items, list) and any(isinstance(it, _Repeated) for it in items):
            kept = []
            for it in items:
                typ, hours = (differs(it, "typ"), differs(it, "timmar")) if isinstance(it, _Repeated) else (0, 0)
                if typ:
                    self._item_warning(n, f"an intervention gives typ {typ} times, with different values; ignored")
                    continue
                if hours:
                    self._item_warning(n, f"an intervention gives timmar {hours} times, with different values: "
                                          "no hours")
                    it = {**it, "timmar": None}
                kept.append(it)
            entry["insatser"] = kept
        return entry

    def _item_warning(self, n: int, detail: str) -> None:
        self.warnings.append(((n, 1, 1), warning_issue(self.delivery, str(n), "invalid_code", "insatser: " + detail)))

    def _as_read(self, name: str, value):
        """A value of a key read as `add` reads it (the same expressions: keep them alike):
        two values that read alike are one value."""
        if name == "pnr":
            return personnummer.normalise_one(value if value.__class__ is str else _astorp_pnr(value),
                                              reference.cycles()[self.delivery.cycle].start)
        if name == "kommunkod":
            return value.strip() if isinstance(value, str) else (None if value is None else str(value).strip())
        if name == self.status_field:  # "" (or spaces) is null, as `output` reads it
            return (value.strip() or None) if isinstance(value, str) else (
                None if value is None else f"<{type(value).__name__}>")
        if name == "typ":
            return self.names.get(value.strip().upper()) if isinstance(value, str) else None
        if name == "timmar":
            hours = hours_of(value)  # None for None too
            return "<not hours>" if hours is None and value is not None else hours
        if name == "insatser":  # a list: its interventions as read; anything else is ignored
            return ([(self._as_read("typ", it.get("typ")), self._as_read("timmar", it.get("timmar")))
                     if isinstance(it, dict) else None for it in value] if isinstance(value, list)
                    else None if value is None else "<not a list>")
        return value

    def output(self, key: PseudonymKey) -> AdapterOutput:
        delivery = self.delivery
        if self.n and not self.keys_read["pnr"]:  # entries, none with a personnummer: a renamed key, or none
            raise FileRejected("missing_columns", "no entry has the key 'pnr'", rows_read=self.n)
        rows = identity(delivery, pd.Series(range(1, self.n + 1)), pd.Series(self.pnrs, dtype=object), key)
        self.pnrs = []
        # entries that name someone (a personnummer, valid or not), none with a status key
        names_someone = rows["pnr_error"].ne(personnummer.MISSING).fillna(True).to_numpy(dtype=bool)
        with_status = names_someone.copy()
        with_status[self.no_status] = False
        if names_someone.any() and not with_status.any():
            raise FileRejected("missing_columns", f"no entry naming a person has the key '{self.status_field}'",
                               rows_read=self.n)
        rows["municipality_code"] = pd.Series(self.kommun, dtype="string")
        rows[f"status_{delivery.timepoint}"] = pd.Series(self.status, dtype="string").replace("", pd.NA)
        gives_status = gives_90d_status(rows)  # before the entries rejected here go: they gave their statuses
        if delivery.timepoint == "end":
            inter = pd.DataFrame({
                "source_row": pd.Series(self.owner, dtype="int64").astype(str).to_numpy(dtype=object),
                "intervention": np.array(self.intervention, dtype=object),
                "hours": np.array(self.hours, dtype=object),
            }, columns=INTERVENTION_COLUMNS)
        else:
            inter = pd.DataFrame(columns=INTERVENTION_COLUMNS)
        issues = self.warnings
        if self.rejected:  # rejected here, by the adapter: one issue per entry, and nothing else of it
            gone = pd.Series([str(n) for n in self.rejected], dtype="string")
            rows = rows[~rows["source_row"].isin(gone)].reset_index(drop=True)
            inter = inter[~inter["source_row"].isin(gone)].reset_index(drop=True)
            issues = [w for w in issues if w[0][0] not in self.rejected] + [
                ((n, -1, 0), {"source_file": delivery.source_file, "source_row": str(n), "severity": "rejected",
                              "reason": reason, "detail": detail})
                for n, (reason, detail) in self.rejected.items()]
        issues.sort(key=lambda w: w[0])
        return AdapterOutput(rows, inter.astype({"hours": "Float64"}), issues_frame([w for _, w in issues]),
                             gives_status)


def _json_kind(value) -> str:
    """What a JSON value is, in words, never the value (it could be a personnummer or a name)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    return {str: "a string", list: "a list"}.get(type(value), "a number")


def _astorp_pnr(pnr):
    """A JSON value in the pnr field that is not a string: numbers are read like Excel numbers."""
    if isinstance(pnr, bool) or not isinstance(pnr, (str, int, float, type(None))):
        return "<not a personnummer>"  # a list, object or boolean: invalid, never missing
    return pnr


class _Repeated(dict):
    """A JSON object that gives some key more than once; json keeps the last value, and
    `repeats` every value of each such key, in order."""

    repeats: dict


def _noting_repeats(pairs: list) -> dict:
    """An object_pairs_hook: the object json.loads makes, noting any key it gives more than once."""
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    noted = _Repeated(obj)
    given: dict = {}
    for name, value in pairs:
        given.setdefault(name, []).append(value)
    noted.repeats = {name: values for name, values in given.items() if len(values) > 1}
    return noted


# An escape that spells one of the keys' characters (a-z, _): "p\u006er" is the key "pnr".
# (It may also be text after an escaped backslash: then the export is only decoded again.)
_ESCAPED_KEY_CHARACTER = re.compile(r"\\u00(?:[67][0-9a-fA-F]|5[fF])")


def _may_repeat_keys(text: str, columns: _AstorpColumns) -> bool:
    """Whether some object of the export may give a key the adapter reads more than once.

    Unless an escape spells one (`_ESCAPED_KEY_CHARACTER`), a key is written as itself:
    `"pnr"` is in the text once for every key pnr and every string value "pnr", anywhere
    in the export. The count equals that of the entries decoded with the key only if no
    entry gave it twice (json keeps one). Otherwise, or when the counts differ: maybe."""
    if _ESCAPED_KEY_CHARACTER.search(text):
        return True
    return any(text.count(f'"{name}"') != columns.keys_read[name]
               for name in (*columns.entry_keys, *columns.item_keys))
