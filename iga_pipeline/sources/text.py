"""Decoding and splitting delimited text deliveries, shared by the CSV adapters."""

from __future__ import annotations

import csv
import io

import pandas as pd

from iga_pipeline.sources.common import Delivery, FileRejected, safe_value

UTF8_BOM = b"\xef\xbb\xbf"


def decode(delivery: Delivery, encoding: str) -> str:
    """The file's text, or FileRejected('unreadable_file') with the reason.

    Windows-1252 decodes almost any byte string, so a UTF-8 file sent where
    Windows-1252 is expected would silently become mojibake (Ã¥ for å). We
    refuse it instead: text that is valid UTF-8 *and* has multi-byte
    sequences is UTF-8, not Windows-1252."""
    data = delivery.path.read_bytes()
    if not data.strip():
        raise FileRejected("unreadable_file", "the file is empty")
    if b"\x00" in data:
        raise FileRejected("unreadable_file", "the file contains NUL bytes: not a text file")
    if encoding == "utf-8":
        try:
            return data.removeprefix(UTF8_BOM).decode("utf-8")
        except UnicodeDecodeError as e:
            raise FileRejected(
                "unreadable_file", f"not valid UTF-8 (byte {e.start}); expected UTF-8"
            ) from None
    if encoding == "cp1252":
        if data.startswith(UTF8_BOM) or (not data.isascii() and _is_utf8(data)):
            raise FileRejected("unreadable_file", "the file is UTF-8; expected Windows-1252")
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError as e:
            raise FileRejected(
                "unreadable_file", f"byte {e.start} is not Windows-1252"
            ) from None
    raise ValueError(encoding)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def split(text: str, sep: str, required: list[str]) -> tuple[pd.DataFrame, list[dict]]:
    """Split delimited text into a frame of stripped strings ('' for empty).

    Returns the frame (with a 1-based `source_row`) and row issues for
    malformed rows (wrong number of fields), which are left out of the frame.
    Raises FileRejected when the header lacks a required column or repeats one."""
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), "")
    header = [h.strip() for h in next(csv.reader([header_line], delimiter=sep))]
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    missing = [c for c in required if c not in header]
    rows_guess = max(sum(1 for line in lines if line.strip()) - 1, 0)
    if missing:
        raise FileRejected(
            "missing_columns",
            "missing column(s): " + ", ".join(safe_value(m) for m in missing),
            rows_read=rows_guess,
        )
    if dupes:
        raise FileRejected(
            "unreadable_file",
            "repeated column(s) in the header: " + ", ".join(safe_value(d) for d in dupes),
            rows_read=rows_guess,
        )
    try:
        # The C parser raises on rows with too many fields but silently pads rows
        # with too few with ''; both are malformed, so both take the slow path.
        if any(len(fields) != len(header) for fields in csv.reader(io.StringIO(text), delimiter=sep)
               if any(f.strip() for f in fields)):
            raise pd.errors.ParserError("a row has another number of fields than the header")
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False,
            skip_blank_lines=True, engine="c", quoting=csv.QUOTE_MINIMAL,
        )
        issues: list[dict] = []
        frame.columns = [c.strip() for c in frame.columns]
        frame.insert(0, "source_row", range(1, len(frame) + 1))
    except pd.errors.ParserError:
        frame, issues = _split_slowly(text, sep, header)
    for column in frame.columns:
        if column != "source_row":
            frame[column] = frame[column].str.strip()
    return frame, issues


def _split_slowly(text: str, sep: str, header: list[str]) -> tuple[pd.DataFrame, list[dict]]:
    """Row by row, for the rare file with malformed rows: each one becomes an issue."""
    records, numbers, issues = [], [], []
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    next(reader, None)
    number = 0
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue
        number += 1
        if len(fields) != len(header):
            issues.append({
                "source_row": str(number), "severity": "rejected", "reason": "missing_required",
                "detail": f"the row has {len(fields)} fields, the header {len(header)}",
            })
            continue
        records.append(fields)
        numbers.append(number)
    frame = pd.DataFrame(records, columns=header, dtype=str)
    frame.insert(0, "source_row", numbers)
    return frame, issues
