"""Pethö Consulting, cycle 1: one Excel workbook, a sheet per municipality (raw-deliveries.md §2)."""

from __future__ import annotations

import logging
import os
import re
import struct
import unicodedata
import warnings
import zipfile
import zlib
from collections import Counter

import pandas as pd

from iga_pipeline import personnummer, reference, settings
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.sources.common import AdapterOutput, Delivery, FileRejected, identity, issues_frame
from iga_pipeline.sources.masking import safe_path, safe_value
from iga_pipeline.sources.provider_rows import (
    INTERVENTION_COLUMNS, blank_to_na, gives_90d_status, warning_issue,
)

log = logging.getLogger(__name__)

PETHO_HEADER_ROW = 4
PETHO_REQUIRED = ["Personnr", "Insatser", "Status cykelslut", "Status 90 dagar"]


def read_petho(delivery: Delivery, key: PseudonymKey) -> AdapterOutput:
    # openpyxl's warnings quote what they found ("the serial value 5303118243 is outside the
    # limits for dates", a document property's name): a personnummer, a name. Only how many
    # there were is logged; the values they are about are read as openpyxl gives them.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records, unread = _petho_records(delivery, key)
    # The record is the process's, not this thread's: another thread's warnings meanwhile (Great
    # Expectations' deprecations, imported by the warm-up thread) are caught too, not openpyxl's.
    remarks = [w for w in caught if f"{os.sep}openpyxl{os.sep}" in w.filename]
    if remarks:
        log.warning("%s: %d remark(s) of openpyxl while reading the workbook, not shown (they may "
                    "quote cell values)", delivery.source_file, len(remarks))

    raw = pd.DataFrame(records, columns=["source_row", "municipality_code", "Personnr",
                                         "Insatser", "Status cykelslut", "Status 90 dagar"])
    rows = identity(delivery, raw["source_row"], raw["Personnr"].astype(object), key)
    rows["municipality_code"] = raw["municipality_code"].astype("string")
    # Texts compare case-insensitively after trimming (raw-deliveries.md §2).
    rows["status_end"] = _petho_status(raw["Status cykelslut"])
    rows["status_90d"] = _petho_status(raw["Status 90 dagar"])

    # Rows the contract does not read but that name someone: a trace, not a count.
    issues = [warning_issue(delivery, row, reason, detail) for row, reason, detail in unread]
    interventions = []
    names = reference.intervention_codes("petho")
    for source_row, cell in zip(raw["source_row"], raw["Insatser"]):
        for item in str(cell or "").split(","):
            item = item.strip()
            if not item:
                continue
            code = names.get(item.casefold())
            if code is None:
                issues.append(warning_issue(delivery, source_row, "invalid_code",
                                       f"Insatser: unknown intervention '{safe_value(item)}' ignored"))
            else:
                interventions.append((source_row, code, None))
    inter = pd.DataFrame(interventions, columns=INTERVENTION_COLUMNS).drop_duplicates(
        ["source_row", "intervention"])
    return AdapterOutput(rows, inter.astype({"hours": "Float64"}),
                         issues_frame(issues), gives_90d_status=gives_90d_status(rows))


def _petho_records(delivery: Delivery, key: PseudonymKey) -> tuple[list[dict], list[tuple]]:
    """The data rows of every worksheet named after a project municipality, and what was
    left unread although it names someone: (source_row, reason, detail) for a warning."""
    _refuse_a_bomb(delivery.path)
    # Imported here: the other adapters do not need openpyxl. Its ExcelReader is what
    # openpyxl.load_workbook uses, kept here for the parts it found.
    from openpyxl.reader.excel import ExcelReader

    try:
        reader = ExcelReader(delivery.path, read_only=True, data_only=True)
        reader.read()
        wb = reader.wb
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, TypeError) as e:
        raise FileRejected("unreadable_file", f"not a readable xlsx workbook ({type(e).__name__})") from None
    codes = reference.municipality_codes_by_name()
    records: list[dict] = []
    unread: list[tuple] = []
    try:
        # openpyxl leaves out, without a word, a worksheet the workbook names whose part is not
        # in the zip: its rows would vanish untraced (H20)
        lost = sum(rel.target not in reader.valid_files for _, rel in reader.parser.find_sheets())
        if lost:
            raise FileRejected("unreadable_file", f"{lost} worksheet(s) the workbook names are missing from it")
        named = {ws.title: _nfc(ws.title).strip().casefold() for ws in wb.worksheets}
        sheets = [ws for ws in wb.worksheets if named[ws.title] in codes]
        if not sheets:
            raise FileRejected("missing_columns", "no worksheet is named after a project municipality")
        twice = sorted(name for name, n in Counter(named[ws.title] for ws in sheets).items() if n > 1)
        if twice:  # "one worksheet per municipality": which one holds the truth would be a guess
            raise FileRejected("unreadable_file", "more than one worksheet for " + ", ".join(twice),
                               rows_read=_data_rows(sheets))
        for ws in sheets:
            try:
                try:
                    sheet_records, below, columns = _petho_sheet(ws, codes[named[ws.title]])
                except FileRejected as e:
                    # A header cell hidden by a merge, or a formula openpyxl reads as empty (the
                    # header's own, perhaps), is what makes a column look missing: say so.
                    hidden = e.reason == "missing_columns" and _unreadable_cells(
                        delivery.path, ws, None, PETHO_HEADER_ROW - 1)
                    if hidden:
                        raise FileRejected("unreadable_file", f"sheet {safe_value(ws.title)}: {hidden}") from None
                    raise
                problem = _unreadable_cells(delivery.path, ws, columns, PETHO_HEADER_ROW + len(sheet_records))
                if problem:  # openpyxl reads such cells as empty: a status, even a follow-up, would vanish
                    raise FileRejected("unreadable_file", f"sheet {safe_value(ws.title)}: {problem}")
            except FileRejected as e:
                e.rows_read = _data_rows(sheets)  # the audit counts what the rejection holds back
                raise
            records.extend(sheet_records)
            unread.extend(below)
        for position, ws in enumerate(wb.worksheets, start=1):
            if named[ws.title] not in codes:
                try:
                    unread.extend(_ignored_sheet(ws, position, key))
                except Exception:  # a sheet the contract ignores must not cost the workbook
                    log.warning("%s: worksheet %d is not a municipality's and could not be read; "
                                "ignored", delivery.source_file, position)
    except FileRejected:
        raise
    except Exception as e:  # a corrupt part inside a valid zip
        raise FileRejected("unreadable_file", f"the workbook could not be read ({type(e).__name__})") from None
    finally:
        wb.close()
    return records, unread


# An .xlsx from Excel (or LibreOffice, openpyxl) has a few dozen parts, each stored or deflated.
MAX_WORKBOOK_PARTS = 10_000
# openpyxl makes objects of every element of the styles, the one part it reads whole into
# objects, at hundreds of bytes each: 9.5 MB of <xf/> took 1,388 MB and 63 s (a review). Excel's
# own ceiling, 64,000 cell formats each with a font and a fill of its own, is 499,749 tags
# (written by openpyxl 3.1.5); a million <xf/> took 645 MB and 18.6 s to open (2026-12-05).
STYLES_PART, MAX_STYLES_TAGS = "xl/styles.xml", 1_000_000
_STORED_OR_DEFLATED = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_CHUNK = 1 << 20


def _refuse_a_bomb(path) -> None:
    """Refuse a workbook that unpacks to more than IGA_MAX_WORKBOOK_MB before openpyxl opens
    it. An .xlsx is a zip: 600 KB of it held one cell of 300 MB (647 MB of memory to read),
    and openpyxl holds a cell, a sheet's shared strings and (_unreadable_cells) a sheet's XML
    whole in memory. The sizes a zip declares cannot be trusted: Python's zipfile unpacks a
    deflated part whole before cutting it to its declared size, and a bzip2 or LZMA part
    without any bound (2.2 GB of memory for a 2.6 KB workbook). So each
    part is unpacked here, a megabyte at a time, counting what it really holds: a part that
    holds more than it declares, a method other than stored or deflated (Excel writes no
    other), encryption, too many parts, parts that overlap and a broken part reject the
    workbook, and so do styles of more than MAX_STYLES_TAGS tags. A file that is no zip is
    left to openpyxl to refuse, with its own reason. The limits bound the bytes unpacked and
    the styles' tags, not openpyxl's memory: docs/reliability.md, "Known gaps"."""
    limit = settings.max_workbook_bytes()
    too_many = FileRejected("unreadable_file", f"the workbook has more than {MAX_WORKBOOK_PARTS:,} parts")
    try:
        f = open(path, "rb")
    except OSError:
        return
    with f:
        try:
            # The part count from the zip's end record, read as zipfile reads it, before the
            # whole directory is (400,000 parts: 156 MB and 5 s in infolist()).
            end_record = getattr(zipfile, "_EndRecData", None)
            end = end_record(f) if end_record else None
            if end and end[getattr(zipfile, "_ECD_ENTRIES_TOTAL", 4)] > MAX_WORKBOOK_PARTS:
                raise too_many
            z = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error):
            return  # no zip: openpyxl refuses it with its own reason
        with z:
            parts = z.infolist()
            if len(parts) > MAX_WORKBOOK_PARTS:
                raise too_many
            # Parts side by side hold no more than the file: more means parts that overlap,
            # each unpacked again (a review: 9,990 parts on one stream, 194 s to count).
            if sum(part.compress_size for part in parts) > os.fstat(f.fileno()).st_size:
                raise FileRejected("unreadable_file", "the workbook's parts overlap or claim more "
                                                      "than the file holds")
            unpacked = 0
            try:
                for part in parts:
                    unpacked += _unpacked_size(f, part, limit - unpacked,
                                               MAX_STYLES_TAGS if part.filename == STYLES_PART else None)
            except _TooLarge:
                raise FileRejected("unreadable_file", f"the workbook unpacks to more than the limit of "
                                                      f"{limit:,} bytes (IGA_MAX_WORKBOOK_MB)") from None
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error, zlib.error):
                # Every part is counted or the workbook refused: one broken part that openpyxl
                # never reads must not switch the count off for the others.
                # openpyxl let zlib's error escape from deep inside its reading.
                raise FileRejected("unreadable_file", "not a readable xlsx workbook (a part of it is "
                                                      "broken)") from None


class _TooLarge(Exception):
    pass


def _unpacked_size(f, part: zipfile.ZipInfo, room: int, max_tags: int | None = None) -> int:
    """What `part` really unpacks to, read from the file `f` with at most a megabyte unpacked at
    a time; _TooLarge past `room` bytes. FileRejected for a part zipfile would read otherwise
    than counted here, and for one holding more than `max_tags` XML tags (when given)."""
    if part.flag_bits & 0x1:
        raise FileRejected("unreadable_file", "the workbook is encrypted")
    if part.compress_type not in _STORED_OR_DEFLATED:
        raise FileRejected("unreadable_file", f"a part of the workbook is compressed with method "
                                              f"{part.compress_type}, which Excel does not use")
    f.seek(part.header_offset)
    header = f.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("no local header")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    f.seek(part.header_offset + 30 + name_length + extra_length)
    left = part.compress_size  # what zipfile feeds its decompressor, no more
    inflate = zlib.decompressobj(-15) if part.compress_type == zipfile.ZIP_DEFLATED else None
    size = tags = 0
    while left > 0 and not (inflate and inflate.eof):
        data = f.read(min(left, _CHUNK))
        if not data:
            break
        left -= len(data)
        while True:  # a megabyte out at a time, until the input is used and nothing is pending
            if inflate is None:
                out, data = data, b""
            else:
                out = inflate.decompress(data, _CHUNK)
                data = inflate.unconsumed_tail
            size += len(out)
            if size > room:
                raise _TooLarge
            if max_tags is not None:
                tags += out.count(b"<")
                if tags > max_tags:
                    raise FileRejected("unreadable_file", f"the workbook's styles hold more than "
                                                          f"{max_tags:,} XML tags")
            if inflate is None or inflate.eof or not (data or out):
                break
    if size != part.file_size:
        raise FileRejected("unreadable_file", "a part of the workbook holds other than the size it declares")
    return size


# A formula's stored result. An empty one (<v/>, <v></v>) is the empty string only in a cell
# of type t="str", as Excel writes it; openpyxl writes <v /> for a result it never computed.
_STORED_VALUE = re.compile(rb"<v>[^<]+</v>")
# A formula: <f>, <f t="shared" .../>; not <family> (a rich-text run's font).
_FORMULA = re.compile(rb"<f[\s/>]")
_EMPTY_VALUE = re.compile(rb"<v>\s*</v>|<v\s*/>")
_STRING_TYPE = re.compile(rb"""\bt\s*=\s*["']str["']""")


def _formulas_without_value(data: bytes) -> int:
    """The formula cells of a sheet's XML with no stored result, in one pass: each cell's
    content ends at its </c>, and a cell opened with no content (<c .../>) has none. (A
    regular expression lazily matching '<c ...>(.*?)</c>' ran from every empty cell to the
    next '</c>': 93 s for a sheet of 4,000 rows.)"""
    unsaved = 0
    for chunk in data.split(b"</c>")[:-1]:
        start = max(chunk.rfind(b"<c "), chunk.rfind(b"<c>"))
        if start < 0:
            continue
        tag_end = chunk.find(b">", start)
        tag, body = chunk[start:tag_end], chunk[tag_end + 1:]
        if not _FORMULA.search(body) or _STORED_VALUE.search(body):
            continue
        if _EMPTY_VALUE.search(body) and _STRING_TYPE.search(tag):
            continue  # Excel's result of a formula that gives the empty string
        unsaved += 1
    return unsaved


_MERGED = re.compile(rb'<mergeCell\b[^>]*\bref="([A-Z]+)([0-9]+):([A-Z]+)([0-9]+)"')


def _hides_a_read_cell(merge: re.Match, columns: list[int] | None, last_row: int) -> bool:
    """Whether a merged range covers a cell the adapter reads other than the range's first
    (openpyxl gives only the first cell a value): a cell of `columns` (1-based; None: any)
    from the header row to the row after `last_row`. That row too: a merge can itself make
    the row that seems to end the data empty. A footnote merged below the
    data, or a comment over columns that are not read, hides nothing (before 2026-12-03 such
    workbooks were rejected whole)."""
    from openpyxl.utils import column_index_from_string

    first_col, last_col = column_index_from_string(merge[1].decode()), column_index_from_string(merge[3].decode())
    first_row = int(merge[2])
    rows = range(max(first_row, PETHO_HEADER_ROW), min(int(merge[4]), last_row + 1) + 1)
    cols = range(first_col, last_col + 1) if columns is None else [c for c in columns if first_col <= c <= last_col]
    if not rows or not cols:
        return False
    return not (len(rows) == 1 and rows[0] == first_row and list(cols) == [first_col])


def _sheet_xml(path, ws) -> bytes | None:
    """The sheet's XML as written, its tags without a namespace prefix (some writers put the
    sheet's elements under one, `<x:c>`, which the searches here would miss)."""
    part = getattr(ws, "_worksheet_path", None)  # where openpyxl read the sheet from
    if part is None:
        return None
    with zipfile.ZipFile(path) as z:
        data = z.read(part)
    prefix = re.search(rb"<([A-Za-z_][\w.-]*):worksheet\b", data)
    if prefix:
        data = data.replace(b"<" + prefix[1] + b":", b"<").replace(b"</" + prefix[1] + b":", b"</")
    return data


def _merges_hiding(data: bytes, columns: list[int] | None, last_row: int) -> str | None:
    merged = sum(1 for m in _MERGED.finditer(data) if _hides_a_read_cell(m, columns, last_row))
    return f"{merged} range(s) of merged cells over the rows and columns read (unmerge them)" if merged else None


def _unreadable_cells(path, ws, columns: list[int] | None, last_row: int) -> str | None:
    """Cells of the sheet that openpyxl (read-only, data_only) reads as empty although they
    are not: merged cells over what is read (`columns`, None for any, from the header row to
    `last_row`: `_hides_a_read_cell`), and formulas without a stored result (a workbook written by a
    program that does not compute formulas). What is wrong, or None."""
    data = _sheet_xml(path, ws)
    if data is None:
        return None
    merged = _merges_hiding(data, columns, last_row)
    if merged:
        return merged
    if _FORMULA.search(data):
        unsaved = _formulas_without_value(data)
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
    written = blank_to_na(cells)
    folded = written.str.casefold()
    known = folded.isin(list(reference.outcome_codes("petho")))
    return folded.where(known | folded.isna(), written)


# A cell that holds a personnummer, in any of the forms a sheet has them: with or without
# the dash or century, or a number (which loses a leading zero).
_LOOKS_LIKE_PNR = re.compile(r"([0-9]{2})?[0-9]{6}[-+][0-9]{4}|[0-9]{9,12}")


def _names_someone(value) -> bool:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a number cell stored as 7903630551.0, as a data row may hold it
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return False
    return bool(_LOOKS_LIKE_PNR.fullmatch(str(value).strip()))


def _ignored_sheet(ws, position: int, key: PseudonymKey) -> list[tuple]:
    """A sheet named after no project municipality is ignored (raw-deliveries.md §2), but one
    with Pethö's header and rows that hold a personnummer is most likely a municipality's sheet
    under a misspelt name ('Åstrop'): a warning says so. An 'Info' sheet of text gives none."""
    header, rows = _header_and_rows(ws)
    if "Personnr" not in header:
        return []
    people = len(_rows_naming_someone(rows, header.index("Personnr")))
    if not people:
        return []
    # The sheet's name is the sender's text: kept if it looks like a code, else a stable keyed
    # hash (as for file names, safe_path), so that the issue still has a row and is not "whole file".
    # A name with a digit is hashed whatever it holds: two sheets named '85010' and '12383' made
    # a personnummer between their issues.
    name = "~" + key.name_id(ws.title) if any(c.isdigit() for c in ws.title) else safe_path(ws.title, key)
    return [(f"{name}!{PETHO_HEADER_ROW}", "unknown_municipality",
             f"worksheet {position} ({name}) has Pethö's header and {people} row(s) "
             "with a personnummer, but its name is no project municipality's: not read")]


def _header_and_rows(ws):
    """The sheet's header (row 4, names in composed form and trimmed) and an iterator over the
    rows below it. Read-only mode trusts the sheet's declared size, which tools other than Excel
    often leave stale, and one stray formatted cell far below the data inflates: it is
    forgotten, so that the rows are read to their real end."""
    if hasattr(ws, "reset_dimensions"):
        ws.reset_dimensions()
    rows = ws.iter_rows(min_row=PETHO_HEADER_ROW, values_only=True)
    return [_nfc(str(h)).strip() if h is not None else "" for h in next(rows, ())], rows


def _empty(values) -> bool:
    """Whether a sheet's row is entirely empty: where its data end (raw-deliveries.md §2)."""
    return values is None or all(v is None or str(v).strip() == "" for v in values)


def _data_rows(sheets: list) -> int:
    """The data rows of the municipalities' sheets (each to its first empty row), for the audit
    of a workbook rejected whole; 0 if a sheet holds more than IGA_MAX_WORKBOOK_ROWS of them
    or cannot be read to its end (refused unread, as a file over IGA_MAX_FILE_MB)."""
    limit, total = settings.max_workbook_rows(), 0
    try:
        for ws in sheets:
            _, rows = _header_and_rows(ws)
            for n, values in enumerate(rows):
                if _empty(values):
                    break
                if n >= limit:
                    return 0
                total += 1
    except Exception:  # noqa: BLE001 - a cell openpyxl cannot parse: not countable
        return 0
    return total


def _rows_naming_someone(rows, column: int) -> list[int]:
    """The offsets of the rows (at most IGA_MAX_WORKBOOK_ROWS of them read) whose `column`
    holds a personnummer. These are rows the contract does not read: a cell openpyxl cannot
    parse ends the search, not the workbook."""
    return _rows_where(rows, lambda values: _names_someone_in(values, column))


def _names_someone_in(values, column: int) -> bool:
    return len(values) > column and _names_someone(values[column])


def _rows_like_a_persons(rows, column: int, statuses: list[int]) -> list[int]:
    """The offsets of the rows that look like a person's: below a sheet's data, a personnummer
    in the Personnr `column` (H12), a valid one (date and check digit) in any other cell, or
    a known status in a status column (a review: a name beside `Anställd`, or a personnummer
    under Namn, left no trace). A footnote, an organisation or phone number, has none."""
    known = set(reference.outcome_codes("petho")) - {""}
    start = reference.cycles()[1].start  # Pethö ran cycle 1

    def valid(value) -> bool:
        return _names_someone(value) and personnummer.normalise_one(value, start)[1] is None

    return _rows_where(rows, lambda values: _names_someone_in(values, column) or any(
        valid(v) for v in values) or any(
        i < len(values) and isinstance(values[i], str) and _nfc(values[i]).strip().casefold() in known
        for i in statuses))


def _rows_where(rows, test) -> list[int]:
    found = []
    try:
        for offset, values in zip(range(settings.max_workbook_rows()), rows):
            if values and test(values):
                found.append(offset)
    except Exception as e:  # noqa: BLE001 - the message could quote the cell
        log.warning("Pethö workbook: a cell outside the data could not be read (%s); the rows from "
                    "there on were not searched for people", type(e).__name__)
    return found


def _petho_sheet(ws, municipality_code: str) -> tuple[list[dict], list[tuple], list[int]]:
    """The sheet's data rows, the warnings for rows below them that name someone, and the
    columns read (1-based)."""
    limit = settings.max_workbook_rows()
    # Read to the real end (the first empty row), and reject the sheet only if more than
    # `limit` rows of data are actually there.
    header, rows = _header_and_rows(ws)
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
    read = sorted(i + 1 for i in at.values())
    out = []
    for offset, values in enumerate(rows):
        if _empty(values):
            # Data end at the first entirely empty row; a note below it is fine, a person not.
            return out, _below_the_end(ws.title, PETHO_HEADER_ROW + 1 + offset, rows, at["Personnr"],
                                       [at["Status cykelslut"], at["Status 90 dagar"]]), read
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
    return out, [], read


def _below_the_end(title: str, empty_row: int, rows, column: int, statuses: list[int]) -> list[tuple]:
    """A warning for rows below a sheet's first empty row that look like a person's (a
    personnummer, or a status): the contract ends the data there, so they are not read."""
    people = _rows_like_a_persons(rows, column, statuses)
    if not people:
        return []
    return [(f"{title}!{empty_row + 1 + people[0]}", "unexpected_file",
             f"{len(people)} row(s) with a personnummer or a status below the sheet's first empty row "
             f"({title}!{empty_row}) not read: the data end there")]
