"""Decoding and splitting delimited text deliveries, shared by the CSV adapters."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from iga_pipeline.sources.common import Delivery, FileRejected
from iga_pipeline.sources.masking import safe_value
from iga_pipeline.whitespace import WHITESPACE

UTF8_BOM = b"\xef\xbb\xbf"
# What ends a line of a delimited delivery: CR, LF or CRLF, for the header, the rows and the
# count of a file rejected whole alike (not str.splitlines, which also breaks at \x1c or U+2028)
_LINE_END = re.compile(r"\r\n|\r|\n")
# Control bytes no text delivery holds (tab, LF, FF, CR and NUL aside)
_CONTROL = re.compile(rb"[\x01-\x08\x0b\x0e-\x1f\x7f]")


def _utf16_without_mark(data: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when the bytes read as mostly Latin text in UTF-16 (every
    other byte NUL, the rest almost never), else None: such a file was once called "not a text
    file" (a review)."""
    if len(data) < 4:
        return None
    data = data[: len(data) // 2 * 2]  # a stray last byte aside
    even, odd = data[0::2].count(0), data[1::2].count(0)
    half = len(data) // 2
    if odd >= 0.9 * half and even <= 0.1 * half:
        return "utf-16-le"
    if even >= 0.9 * half and odd <= 0.1 * half:
        return "utf-16-be"
    return None


def decode(delivery: Delivery, encoding: str) -> str:
    """The file's text, or FileRejected('unreadable_file') with the reason.

    Windows-1252 decodes almost any byte string, so a UTF-8 file sent where
    Windows-1252 is expected would silently become mojibake (Ã¥ for å). We
    refuse it instead: text that is valid UTF-8 *and* has multi-byte
    sequences is UTF-8, not Windows-1252."""
    data = delivery.path.read_bytes()
    if not data.strip():
        raise FileRejected("unreadable_file", "the file is empty")
    expected = "UTF-8" if encoding == "utf-8" else "Windows-1252"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16's byte-order marks
        raise FileRejected("unreadable_file", f"the file is UTF-16; expected {expected}",
                           rows_read=_data_lines(data.decode("utf-16", "replace")))
    utf16 = _utf16_without_mark(data)
    if utf16:
        raise FileRejected("unreadable_file", f"the file is UTF-16 without a byte-order mark; expected {expected}",
                           rows_read=_data_lines(data.decode(utf16, "replace")))
    if b"\x00" in data:
        # a text file with a stray NUL has its lines counted; a binary one (other control
        # bytes too: a workbook, a PDF) has no rows to count
        rows = _data_lines(data) if not _CONTROL.search(data.replace(b"\x00", b"")) else 0
        raise FileRejected("unreadable_file", "the file contains NUL bytes: not a text file", rows_read=rows)
    if encoding == "utf-8":
        try:
            return data.removeprefix(UTF8_BOM).decode("utf-8")
        except UnicodeDecodeError as e:
            raise FileRejected(
                "unreadable_file", f"not valid UTF-8 (byte {e.start}); expected UTF-8",
                rows_read=_data_lines(data),
            ) from None
    if encoding == "cp1252":
        if data.startswith(UTF8_BOM) or (not data.isascii() and _is_utf8(data)):
            raise FileRejected("unreadable_file", "the file is UTF-8; expected Windows-1252",
                               rows_read=_data_lines(data))
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError as e:
            raise FileRejected(
                "unreadable_file", f"byte {e.start} is not Windows-1252", rows_read=_data_lines(data)
            ) from None
    raise ValueError(encoding)


def _data_lines(text: str | bytes) -> int:
    """The data rows of a delimited file rejected whole, for the audit: its lines that are not
    blank, less the header. A file in the wrong encoding is counted in a lenient decoding."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return max(sum(1 for line in _LINE_END.split(text) if line.strip()) - 1, 0)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


# Every character Python's str.strip() removes, as RE2 escapes: the vectorised
# checks below must agree with str.strip() exactly.
_RE2_SPACE = "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE)
_RE2_SPACE_IN_LINE = "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE if c not in "\r\n")


# A blank line is left out of the rows: nothing but white space (str.strip() leaves nothing),
# as the header is the first line that is not blank. pandas' C parser skips only lines of
# spaces and tabs (PANDAS_BLANK); a file with another blank line (a no-break space alone)
# takes a path that leaves it out itself. A line of only delimiters (';;;;') is a row of
# empty fields on every path, so it is rejected as missing_required, never dropped untraced.
PANDAS_BLANK = re.compile(r"^[ \t]*\r?$")


def split(text: str, sep: str, required: list[str]) -> tuple[pd.DataFrame, list[dict]]:
    """Split delimited text into a frame of stripped strings ('' for empty).

    Returns the frame (with a 1-based `source_row`) and row issues for
    malformed rows (wrong number of fields), which are left out of the frame.
    Raises FileRejected when the header lacks a required column or repeats one.

    Rows are told apart from malformed ones without a Python loop over the
    rows: for text without quote characters or lone carriage returns (what
    senders write) every line is a record, so the field count of every line is
    counted in Arrow's C++ kernels. Anything else takes the exact row-by-row
    path (`_split_exactly`)."""
    header_line = _first_nonblank_line(text)
    header = [h.strip() for h in next(csv.reader([header_line], delimiter=sep))]
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    missing = [c for c in required if c not in header]
    if missing or dupes:
        rows_guess = _data_lines(text)
    if missing:
        raise FileRejected(
            "missing_columns",
            "missing column(s): " + ", ".join(missing),  # the contract's names, not the sender's
            rows_read=rows_guess,
        )
    if dupes:
        raise FileRejected(
            "unreadable_file",
            # the sender's names quoted, as every value a detail shows: mask_split_values then masks
            # digits they hold together ('85010' and '12383' made a personnummer: P12)
            "repeated column(s) in the header: " + ", ".join(d if d in required else f"'{safe_value(d)}'"
                                                             for d in dupes),
            rows_read=rows_guess,
        )
    if ('"' in text or text.count("\r") != text.count("\r\n") or not text[:1].strip()
            or len(set(header)) != len(header)):
        return _split_exactly(text, sep, header)
    lines = pc.split_pattern(pa.array([text], pa.large_string()), "\n").flatten()
    fields = pc.add(pc.count_substring(lines, sep), 1)
    nonblank = pc.invert(pc.match_substring_regex(lines, f"^[{_RE2_SPACE}]*$"))
    malformed = pc.and_(nonblank, pc.not_equal(fields, len(header)))
    # blank, yet not skipped by pandas: to be left out by _split_malformed
    unskipped = pc.and_(pc.invert(nonblank), pc.invert(pc.match_substring_regex(lines, PANDAS_BLANK.pattern)))
    every_line_a_row = not (pc.any(malformed).as_py() or pc.any(unskipped).as_py())
    frame = _read_whole(text, sep) if every_line_a_row else None
    if frame is not None:
        issues = []
    else:  # malformed rows, a blank line pandas would not skip, or the C parser refused
        frame, issues = _split_malformed(lines, fields, nonblank, malformed, header, sep)
    # str.strip() on every cell, unless no field starts or ends with white space
    edge = f"(^|{re.escape(sep)})[{_RE2_SPACE_IN_LINE}]|[{_RE2_SPACE_IN_LINE}]({re.escape(sep)}|\r?$)"
    if pc.any(pc.match_substring_regex(lines, edge)).as_py():
        for column in frame.columns:
            if column != "source_row":
                frame[column] = frame[column].str.strip()
    return frame, issues


def _read_whole(text: str, sep: str) -> pd.DataFrame | None:
    """Quote-free text whose every non-blank line has the header's fields, by pandas' C
    parser, rows numbered 1..; None if the parser refuses it (a blank row of too many
    delimiters, say)."""
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False,
            skip_blank_lines=True, engine="c", quoting=csv.QUOTE_MINIMAL,
        )
    except pd.errors.ParserError:
        return None
    frame.columns = [c.strip() for c in frame.columns]
    frame.insert(0, "source_row", range(1, len(frame) + 1))
    return frame


def _first_nonblank_line(text: str) -> str:
    """The first line that is not blank ('' if none), reading only as far as it."""
    start = 0
    for end in _LINE_END.finditer(text):
        if text[start:end.start()].strip():
            return text[start:end.start()]
        start = end.end()
    return text[start:] if text[start:].strip() else ""


def _malformed(number, fields: int, header: list[str]) -> dict:
    """The issue of data row `number`, which has `fields` fields where the header has more or fewer."""
    return {"source_row": str(number), "severity": "rejected", "reason": "missing_required",
            "detail": f"the row has {fields} fields, the header {len(header)}"}


def _split_malformed(lines, fields, nonblank, malformed, header, sep):
    """`_split_exactly`'s result for quote-free text: issues for malformed rows, the rest parsed."""
    body = slice(1, None)  # the first line is the header (text starts with it)
    nonblank_np = nonblank.to_numpy(zero_copy_only=False)[body]
    malformed_np = malformed.to_numpy(zero_copy_only=False)[body]
    counts = fields.to_numpy(zero_copy_only=False)[body]
    numbers = np.cumsum(nonblank_np)  # data row number of every non-blank line
    issues = [_malformed(number, count, header)
              for number, count in zip(numbers[malformed_np], counts[malformed_np])]
    good = nonblank_np & ~malformed_np
    kept = pc.filter(lines.slice(1), pa.array(good))
    rows = "\n".join(kept.to_pylist())
    frame = pd.read_csv(
        io.StringIO(rows), sep=sep, header=None, names=header, dtype=str,
        keep_default_na=False, na_filter=False, skip_blank_lines=False, engine="c",
        quoting=csv.QUOTE_NONE,
    ) if len(kept) else pd.DataFrame(columns=header, dtype=str)
    frame.insert(0, "source_row", numbers[good])
    return frame, issues


def _split_exactly(text: str, sep: str, header: list[str]) -> tuple[pd.DataFrame, list[dict]]:
    """The row-by-row reference, for text with quotes or lone carriage returns.

    One physical line is one record (CR, LF or CRLF end a line), as the
    contract's deliveries are written, so a quote left open cannot swallow
    the lines after it: it only makes its own line malformed, or its last
    field run to the end of the line. Each line is split by the csv module;
    `_split_lines` rejects the malformed rows as missing_required with the
    field counts. (pandas parsed the text here when every line had the
    header's number of fields; but a quote opened in a line's last field and
    closed in the next line's joined the two lines into one row, and the
    second line was in no table and no issue.)"""
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    lines = _LINE_END.split(text)
    records = [next(csv.reader([line], delimiter=sep), []) for line in lines if line.strip()]
    return _split_lines(records[1:], header)  # records[0]: the header


def _split_lines(nonblank: list[list[str]], header: list[str]) -> tuple[pd.DataFrame, list[dict]]:
    """The non-blank records after the header, numbered 1.., malformed ones as issues."""
    rows, numbers, issues = [], [], []
    for number, fields in enumerate(nonblank, start=1):
        if len(fields) != len(header):
            issues.append(_malformed(number, len(fields), header))
            continue
        rows.append([f.strip() for f in fields])
        numbers.append(number)
    frame = pd.DataFrame(rows, columns=header, dtype=str)
    frame.insert(0, "source_row", numbers)
    return frame, issues
