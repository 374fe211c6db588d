"""Input limits (issue 6, item 5): refused with a clear reason, never opened or followed.

* a file above IGA_MAX_FILE_MB;
* a workbook with a million rows (its declared dimension says so), and one
  whose dimension lies or is missing (rows are counted while reading,
  IGA_MAX_WORKBOOK_ROWS);
* a workbook that unpacks to more than IGA_MAX_WORKBOOK_MB (a zip bomb), one
  whose part holds more than it declares (its CRC made to match, too), one in
  bzip2 or LZMA, one of too many parts, one whose styles hold too many tags;
* a symbolic link to a file or a folder outside the raw root;
* something in the raw root that is not a regular file (a named pipe, a
  device, a socket): opening a pipe blocks for ever, reading a device may
  never end.

All through `ingest_cycle`, the path the build uses, under a hang guard.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import pandas as pd
import pytest
from conftest import expected_name_id
from rawfiles import RawRoot, people, register_row
from test_hostile_files import KEY, hang_guard

from iga_pipeline import staging
from iga_pipeline.ingest import ingest_cycle
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.sources import common, providers, register, survey

A, B, C = people(3)
REG2 = RawRoot.register_rel("1277", 2)
PETHO = RawRoot.PETHO_REL
SURVEY3 = RawRoot.survey_rel(3)


def whole_file_issue(result, source_file: str) -> tuple[str, str]:
    i = result.issues
    mine = i[(i["source_file"] == source_file) & i["source_row"].isna()]
    assert len(mine) == 1, mine
    a = result.audit.set_index("source_file").loc[source_file]
    assert (a["status"], a["reason"], a["rows_loaded"]) == ("rejected", mine["reason"].iloc[0], 0)
    return mine["reason"].iloc[0], mine["detail"].iloc[0]


@pytest.fixture
def opened(monkeypatch):
    """Records every file an adapter was asked to read."""
    calls = []
    for module, name in ((register, "read"), (survey, "read")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda d, key=None, _real=real: (calls.append(d.source_file),
                                                                           _real(d, key))[1])
    for kind, real in list(providers.READERS.items()):
        monkeypatch.setitem(providers.READERS, kind,
                            lambda d, key, _real=real: (calls.append(d.source_file), _real(d, key))[1])
    return calls


@pytest.fixture
def sheet_rows_read(monkeypatch):
    """Counts the rows openpyxl's read-only sheets yield (every pass over a sheet), so a test
    can show that reading stopped at a limit rather than only that the file was refused."""
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    count = [0]
    real = ReadOnlyWorksheet._cells_by_row

    def counting(self, *args, **kwargs):
        for row in real(self, *args, **kwargs):
            count[0] += 1
            yield row

    monkeypatch.setattr(ReadOnlyWorksheet, "_cells_by_row", counting)
    return count


# --- file size ---------------------------------------------------------------------------------------------

def test_a_file_above_the_size_limit_is_refused_unopened(raw, monkeypatch, opened):
    monkeypatch.setenv("IGA_MAX_FILE_MB", "0.01")  # 10 485 bytes
    raw.register("1277", 2, [register_row(A, 2, fornamn="x" * 20_000)])
    raw.register("1278", 2, [register_row(B, 2)])  # small: read as usual
    with hang_guard(30):
        result = ingest_cycle(raw.root, 2, KEY)
    reason, detail = whole_file_issue(result, REG2)
    assert reason == "unreadable_file"
    assert "IGA_MAX_FILE_MB" in detail and "limit" in detail
    assert opened == [RawRoot.register_rel("1278", 2)]
    assert result.audit.set_index("source_file").loc[REG2, "sha256"] is None  # not even hashed
    assert len(result.participations) == 1


def test_a_file_at_the_limit_is_read(raw, monkeypatch):
    path = raw.register("1277", 2, [register_row(A, 2)])
    monkeypatch.setenv("IGA_MAX_FILE_MB", str(path.stat().st_size / 1024 / 1024))
    result = ingest_cycle(raw.root, 2, KEY)
    assert result.audit.set_index("source_file").loc[REG2, "status"] == "loaded"


# --- huge workbooks ------------------------------------------------------------------------------------------

def write_big_workbook(path: Path, rows: int, dimension: str | None, stray_row: int | None = None,
                       long_name: int = 0) -> None:
    """A real .xlsx with one sheet 'Åstorp' of `rows` data rows, streamed (no openpyxl: fast).

    `dimension` is what the sheet declares (None: no <dimension> element); `stray_row`, if
    given, holds one formatted but empty cell (column F) far below the data; `long_name`
    characters fill the first data row's Namn cell (a column the contract does not read)."""
    def sheet():
        yield '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        yield '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        if dimension:
            yield f'<dimension ref="{dimension}"/>'
        yield '<sheetData>'
        yield ('<row r="1"><c r="A1" t="inlineStr"><is><t>IGA cykel 1</t></is></c></row>'
               '<row r="4">' + "".join(
                   f'<c r="{col}4" t="inlineStr"><is><t>{name}</t></is></c>' for col, name in
                   zip("ABCDE", ["Personnr", "Namn", "Insatser", "Status cykelslut", "Status 90 dagar"])) + '</row>')
        chunk = []
        for r in range(5, rows + 5):
            name = (f'<c r="B{r}" t="inlineStr"><is><t>{"x" * long_name}</t></is></c>'
                    if long_name and r == 5 else "")
            chunk.append(f'<row r="{r}"><c r="A{r}"><v>{5501010000 + r}</v></c>{name}'
                         f'<c r="C{r}" t="inlineStr"><is><t>Praktik</t></is></c>'
                         f'<c r="D{r}" t="inlineStr"><is><t>Anställd</t></is></c></row>')
            if len(chunk) == 20_000:
                yield "".join(chunk)
                chunk = []
        if stray_row:
            chunk.append(f'<row r="{stray_row}"><c r="F{stray_row}" s="1"/></row>')
        yield "".join(chunk) + "</sheetData></worksheet>"

    parts = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
        'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.'
        'org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.'
        'org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships"><sheets><sheet name="Åstorp" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
        'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
        'openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '</Relationships>',
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, text in parts.items():
            z.writestr(name, text)
        with z.open("xl/worksheets/sheet1.xml", "w") as f:
            for piece in sheet():
                f.write(piece.encode("utf-8"))


def test_the_workbook_writer_makes_a_workbook_the_adapter_reads(raw):
    write_big_workbook(raw.path(PETHO), 3, "A1:E7")
    raw.register("1277", 1, [register_row(A, 1)])
    result = ingest_cycle(raw.root, 1, KEY)
    a = result.audit.set_index("source_file").loc[PETHO]
    assert (a["status"], a["rows_read"]) == ("loaded", 3)


@pytest.mark.slow
def test_a_workbook_with_a_million_rows_is_refused_at_the_limit(raw, sheet_rows_read):
    """Reading stops at the first row past the limit and refuses the sheet; what is beyond
    is never read: the sheet is read twice up to the limit (the rows, then the audit's count
    of them), never to its end (hang_guard only stops a test that would hang)."""
    write_big_workbook(raw.path(PETHO), 1_000_000, "A1:E1000004")
    raw.register("1277", 1, [register_row(A, 1)])
    with hang_guard(120):
        result = ingest_cycle(raw.root, 1, KEY)
    reason, detail = whole_file_issue(result, PETHO)
    assert reason == "unreadable_file"
    assert detail == "sheet Åstorp has more than 100000 data rows (IGA_MAX_WORKBOOK_ROWS)"
    assert len(result.participations) == 1
    assert sheet_rows_read[0] <= 2 * (100_000 + 2)


def test_a_workbook_that_unpacks_beyond_the_limit_is_refused_unopened(raw, monkeypatch):
    """An .xlsx is a zip: one cell of 300 MB fits in 600 KB of workbook, and took 647 MB of
    memory to read (2026-12-02). The size the parts unpack to is checked before openpyxl
    opens the file; the rest of the cycle is read."""
    import openpyxl

    opened = []
    real = openpyxl.load_workbook
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: (opened.append(a[0]), real(*a, **k))[1])
    write_big_workbook(raw.path(PETHO), 3, "A1:E7", long_name=3 * 2**20)
    assert raw.path(PETHO).stat().st_size < 50_000  # 3 MB of text, packed
    raw.register("1277", 1, [register_row(A, 1)])
    monkeypatch.setenv("IGA_MAX_WORKBOOK_MB", "2")
    result = ingest_cycle(raw.root, 1, KEY)
    reason, detail = whole_file_issue(result, PETHO)
    assert reason == "unreadable_file"
    assert detail == f"the workbook unpacks to more than the limit of {2 * 2**20:,} bytes (IGA_MAX_WORKBOOK_MB)"
    assert opened == [] and len(result.participations) == 1

    monkeypatch.setenv("IGA_MAX_WORKBOOK_MB", "4")  # the same workbook, under the limit: read
    result = ingest_cycle(raw.root, 1, KEY)
    a = result.audit.set_index("source_file").loc[PETHO]
    assert (a["status"], a["rows_read"]) == ("loaded", 3)


def _with_styles(path: Path, formats: int) -> int:
    """Add a styles part of `formats` empty cell formats (<xf/>) to the workbook; its XML tags."""
    styles = ('<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.openxmlformats.org/'
              f'spreadsheetml/2006/main"><cellXfs count="{formats}">' + "<xf/>" * formats + "</cellXfs></styleSheet>")
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/styles.xml", styles)
    return styles.count("<")


def test_a_workbook_whose_styles_hold_too_many_tags_is_refused_unopened(raw, monkeypatch):
    """openpyxl makes objects of every element of a workbook's styles: 9.5 MB of <xf/>, far
    below IGA_MAX_WORKBOOK_MB, took 1,388 MB of memory and 63 s to open (a review; a known gap
    until 2026-12-05). Styles of more XML tags than Excel's own 64,000 cell formats need are
    refused before openpyxl opens the workbook; the rest of the cycle is read."""
    import openpyxl

    from iga_pipeline.sources import petho

    opened = []
    real = openpyxl.load_workbook
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: (opened.append(a[0]), real(*a, **k))[1])
    write_big_workbook(raw.path(PETHO), 3, "A1:E7")
    _with_styles(raw.path(PETHO), petho.MAX_STYLES_TAGS)
    assert raw.path(PETHO).stat().st_size < 100_000  # 5 MB of tags, packed
    raw.register("1277", 1, [register_row(A, 1)])
    result = ingest_cycle(raw.root, 1, KEY)
    reason, detail = whole_file_issue(result, PETHO)
    assert (reason, detail) == ("unreadable_file", "the workbook's styles hold more than 1,000,000 XML tags")
    assert opened == [] and len(result.participations) == 1

    for formats, read in ((20, True), (21, False)):  # the limit itself is read, one tag more is not
        write_big_workbook(raw.path(PETHO), 3, "A1:E7")
        tags = _with_styles(raw.path(PETHO), formats)
        monkeypatch.setattr(petho, "MAX_STYLES_TAGS", tags - formats + 20)
        a = ingest_cycle(raw.root, 1, KEY).audit.set_index("source_file").loc[PETHO]
        assert (a["status"], a["rows_read"]) == (("loaded", 3) if read else ("rejected", 0)), (formats, a)


def _lying(path: Path, part: str, declared: bytes) -> None:
    """Make `part`'s entry in the zip's central directory declare the size and CRC of
    `declared` (its first bytes, say), whatever it holds."""
    data = bytearray(path.read_bytes())
    at = data.rfind(part.encode()) - 46  # its entry in the central directory
    assert data[at:at + 4] == b"PK\x01\x02"
    data[at + 16:at + 20] = zlib.crc32(declared).to_bytes(4, "little")
    data[at + 24:at + 28] = len(declared).to_bytes(4, "little")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("crc", ["wrong", "of_what_it_declares"])
def test_a_part_that_holds_more_than_it_declares_is_refused_unread(raw, monkeypatch, crc):
    """The limit cannot trust the sizes a zip declares: Python's zipfile unpacks a deflated
    part whole before it cuts it to its declared size, and a part whose declared size and CRC
    are those of its first bytes even passes its CRC check (a review's find: 300 MB behind a
    workbook.xml of 1 KB, read, 769 MB of memory). Each part is unpacked and counted first."""
    write_big_workbook(raw.path(PETHO), 3, "A1:E7", long_name=3 * 2**20)
    sheet = zipfile.ZipFile(raw.path(PETHO)).read("xl/worksheets/sheet1.xml")
    _lying(raw.path(PETHO), "xl/worksheets/sheet1.xml", sheet[:1000] if crc == "of_what_it_declares" else
           bytes(1000))
    assert sum(i.file_size for i in zipfile.ZipFile(raw.path(PETHO)).infolist()) < 2**20
    raw.register("1277", 1, [register_row(A, 1)])
    with hang_guard(30):
        result = ingest_cycle(raw.root, 1, KEY)
    reason, detail = whole_file_issue(result, PETHO)
    assert (reason, detail) == ("unreadable_file", "a part of the workbook holds other than the size it declares")
    assert len(result.participations) == 1


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_a_workbook_compressed_as_excel_never_does_is_refused_unread(raw, method):
    """bzip2 and LZMA parts are unpacked by zipfile with no bound at all (a review: 2.2 GB of
    memory for a workbook of 2.6 KB); Excel writes stored or deflated parts only."""
    write_big_workbook(raw.path(PETHO), 3, "A1:E7")
    parts = {i.filename: zipfile.ZipFile(raw.path(PETHO)).read(i.filename)
             for i in zipfile.ZipFile(raw.path(PETHO)).infolist()}
    with zipfile.ZipFile(raw.path(PETHO), "w", compression=method) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    raw.register("1277", 1, [register_row(A, 1)])
    result = ingest_cycle(raw.root, 1, KEY)
    reason, detail = whole_file_issue(result, PETHO)
    assert (reason, detail) == ("unreadable_file", f"a part of the workbook is compressed with method {method}, "
                                                   "which Excel does not use")


def test_a_workbook_with_an_encrypted_part_is_refused_as_encrypted(raw):
    """zipfile refuses an encrypted part only when openpyxl reads it (a RuntimeError, "the file
    could not be parsed"); the parts' count finds the flag first and says what it is."""
    write_big_workbook(raw.path(PETHO), 3, "A1:E7")
    data = bytearray(raw.path(PETHO).read_bytes())
    part = b"xl/worksheets/sheet1.xml"
    central, local = data.rfind(part) - 46, data.find(part) - 30
    assert data[central:central + 4] == b"PK\x01\x02" and data[local:local + 4] == b"PK\x03\x04"
    data[central + 8] |= 1  # general purpose flag, bit 0: encrypted
    data[local + 6] |= 1
    raw.path(PETHO).write_bytes(bytes(data))
    raw.register("1277", 1, [register_row(A, 1)])
    result = ingest_cycle(raw.root, 1, KEY)
    assert whole_file_issue(result, PETHO) == ("unreadable_file", "the workbook is encrypted")
    assert len(result.participations) == 1


def test_a_broken_deflate_stream_is_refused_as_unreadable_not_a_crash(raw):
    """openpyxl let zlib's error escape from deep inside its reading ('the file could not be
    parsed', a traceback in the log); the parts' count finds it first and says what it is."""
    write_big_workbook(raw.path(PETHO), 300, "A1:E304")
    data = bytearray(raw.path(PETHO).read_bytes())
    part = next(i for i in zipfile.ZipFile(raw.path(PETHO)).infolist() if i.filename.endswith("sheet1.xml"))
    start = part.header_offset + 30 + len(part.filename) + 40
    data[start:start + 200] = b"\xff" * 200
    raw.path(PETHO).write_bytes(bytes(data))
    raw.register("1277", 1, [register_row(A, 1)])
    result = ingest_cycle(raw.root, 1, KEY)
    reason, detail = whole_file_issue(result, PETHO)
    assert (reason, detail) == ("unreadable_file", "not a readable xlsx workbook (a part of it is broken)")
    assert len(result.participations) == 1


def _rezipped(path: Path, first: tuple[str, bytes] | None = None) -> None:
    """The workbook at `path` written again, with an extra stored part `first` before the others."""
    old = zipfile.ZipFile(path)
    parts = [(i.filename, old.read(i.filename)) for i in old.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        if first:
            z.writestr(zipfile.ZipInfo(first[0]), first[1])  # ZipInfo: stored
        for name, data in parts:
            z.writestr(name, data)


def test_one_broken_part_openpyxl_never_reads_does_not_switch_the_count_off(raw):
    """A review: a first part with a broken header made the count give up, and a bzip2 sheet
    of 300 MB behind it was then read (1,075 MB of memory). Every part is counted, or the
    workbook refused."""
    write_big_workbook(raw.path(PETHO), 3, "A1:E7")
    _rezipped(raw.path(PETHO), first=("docProps/junk.bin", b"x" * 100))
    data = bytearray(raw.path(PETHO).read_bytes())
    assert data[:4] == b"PK\x03\x04"
    data[:4] = b"XXXX"  # the first part's local header, which openpyxl never looks at
    raw.path(PETHO).write_bytes(bytes(data))
    raw.register("1277", 1, [register_row(A, 1)])
    result = ingest_cycle(raw.root, 1, KEY)
    assert whole_file_issue(result, PETHO) == ("unreadable_file", "not a readable xlsx workbook (a part of it is broken)")


def test_parts_that_overlap_are_refused_before_they_are_unpacked_again_and_again(raw):
    """A review: 9,990 directory entries pointing at one stream of empty deflate blocks unpack
    to nothing, under any limit, and took 194 s to count."""
    write_big_workbook(raw.path(PETHO), 3, "A1:E7")
    data = raw.path(PETHO).read_bytes()
    end = data.rfind(b"PK\x05\x06")
    count, size, offset = struct.unpack("<HII", data[end + 10:end + 20])
    entry_length = 46 + int.from_bytes(data[offset + 28:offset + 30], "little") + int.from_bytes(
        data[offset + 30:offset + 32], "little") + int.from_bytes(data[offset + 32:offset + 34], "little")
    entry = data[offset:offset + entry_length]  # the first part's entry in the central directory
    copies = b"".join(entry for _ in range(200))  # the same part, 200 times more
    central = data[offset:offset + size] + copies
    raw.path(PETHO).write_bytes(data[:offset] + central + struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, count + 200, count + 200, len(central), offset, 0))
    raw.register("1277", 1, [register_row(A, 1)])
    result = ingest_cycle(raw.root, 1, KEY)
    assert whole_file_issue(result, PETHO) == ("unreadable_file",
                                               "the workbook's parts overlap or claim more than the file holds")


def test_a_workbook_of_too_many_parts_is_refused_before_its_directory_is_read(raw):
    write_big_workbook(raw.path(PETHO), 3, "A1:E7")
    with zipfile.ZipFile(raw.path(PETHO), "a") as z:
        for i in range(10_001):
            z.writestr(f"customXml/item{i}.xml", b"")
    raw.register("1277", 1, [register_row(A, 1)])
    result = ingest_cycle(raw.root, 1, KEY)
    assert whole_file_issue(result, PETHO) == ("unreadable_file", "the workbook has more than 10,000 parts")


def _sheet_check(tmp_path: Path, cells: bytes) -> str | None:
    """petho._unreadable_cells on a workbook whose only part is a sheet of `cells`."""
    import types

    from iga_pipeline.sources import petho

    path = tmp_path / "sheet.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"<worksheet><sheetData>" + cells + b"</sheetData></worksheet>")
    return petho._unreadable_cells(path, types.SimpleNamespace(_worksheet_path="xl/worksheets/sheet1.xml"), [],
                                   petho.PETHO_HEADER_ROW)  # no column read: the formulas alone


def test_a_sheet_written_with_a_namespace_prefix_is_checked_too(tmp_path):
    """A fix review's find: some writers put a sheet's elements under a prefix (`<x:c>`), which
    openpyxl reads but the searches for formulas and merged cells missed: a formula without a
    stored result, or a merged status, was read as an empty status."""
    import types

    from iga_pipeline.sources import petho

    path = tmp_path / "sheet.xlsx"
    ns = types.SimpleNamespace(_worksheet_path="xl/worksheets/sheet1.xml")

    def sheet(body: bytes) -> None:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(ns._worksheet_path, b'<x:worksheet xmlns:x="http://schemas.openxmlformats.org/'
                       b'spreadsheetml/2006/main"><x:sheetData>' + body + b"</x:worksheet>")

    sheet(b'<x:row r="5"><x:c r="E5" t="str"><x:f>"Anst\xc3\xa4lld"</x:f></x:c></x:row></x:sheetData>')
    assert petho._unreadable_cells(path, ns, [], petho.PETHO_HEADER_ROW) == \
        "1 formula cell(s) without a stored value (open and save the workbook in Excel)"
    sheet(b'</x:sheetData><x:mergeCells count="1"><x:mergeCell ref="E5:E6"/></x:mergeCells>')
    assert petho._unreadable_cells(path, ns, [1, 3, 4, 5], 6) == \
        "1 range(s) of merged cells over the rows and columns read (unmerge them)"


def test_formula_cells_are_checked_in_one_pass_and_an_empty_result_is_a_result(tmp_path):
    """A review: with a dropdown's <formula1> in the sheet, every formatted empty cell made the
    check scan to the next </c> (4,000 rows: 93 s); and Excel's <v/> for a formula whose result
    is the empty string rejected the workbook, which saving again in Excel cannot mend."""
    empty_rows = b"".join(b'<row r="%d">' % r + b"".join(b'<c r="%s%d" s="2"/>' % (c, r) for c in (b"A", b"B", b"C"))
                          + b"</row>" for r in range(50, 20_050))
    with hang_guard(30):
        assert _sheet_check(tmp_path, empty_rows + b'<dataValidation><formula1>"a,b"</formula1></dataValidation>') is None
    assert _sheet_check(tmp_path, b'<c r="E5" t="str"><f>IF(D5="x","","?")</f><v/></c>') is None
    assert _sheet_check(tmp_path, b'<c r="E5" t="str"><f>IF(D5="x","","?")</f><v></v></c>') is None
    # openpyxl writes <v /> for a result it never computed (no t="str"): still refused
    assert _sheet_check(tmp_path, b'<c r="E5"><f>D5</f></c><c r="F5" s="1"/><c r="G5"><f>D5</f><v>1</v></c>'
                        b'<c r="H5"><f>D5</f><v /></c>'
                        ) == "2 formula cell(s) without a stored value (open and save the workbook in Excel)"


def test_a_stray_cell_far_below_the_data_does_not_reject_the_sheet(raw):
    """A formatted empty cell in row 150,000 makes the sheet declare 150,000 rows, above the
    limit; the data (3 rows) end at the first empty row, and are read."""
    write_big_workbook(raw.path(PETHO), 3, "A1:F150000", stray_row=150_000)
    raw.register("1277", 1, [register_row(A, 1)])
    result = ingest_cycle(raw.root, 1, KEY)
    a = result.audit.set_index("source_file").loc[PETHO]
    assert (a["status"], a["rows_read"]) == ("loaded", 3)
    assert result.followup["followed_up"].tolist() == [False]  # no 90-day statuses in these rows


@pytest.mark.parametrize("dimension", [None, "A1:E7"], ids=["no-dimension", "lying-dimension"])
def test_a_workbook_that_hides_its_size_is_cut_off_while_reading(raw, monkeypatch, dimension, sheet_rows_read):
    """A sheet that declares no size, or too small a one, is refused once its rows pass the
    limit, before the rest are read (a review: only the refusal was checked)."""
    monkeypatch.setenv("IGA_MAX_WORKBOOK_ROWS", "1000")
    write_big_workbook(raw.path(PETHO), 50_000, dimension)
    raw.register("1277", 1, [register_row(A, 1)])
    with hang_guard(60):
        result = ingest_cycle(raw.root, 1, KEY)
    reason, detail = whole_file_issue(result, PETHO)
    assert reason == "unreadable_file" and "IGA_MAX_WORKBOOK_ROWS" in detail
    assert 1_000 < sheet_rows_read[0] <= 2 * (1_000 + 2)


@pytest.mark.parametrize("dimension", ["A1:E7", "A1"], ids=["understated", "A1-only"])
def test_a_stale_dimension_does_not_cut_the_sheet_short(raw, dimension):
    """Rows beyond the declared dimension are rows: 50 written, 50 read (not 3, not a missing header)."""
    write_big_workbook(raw.path(PETHO), 50, dimension)
    raw.register("1277", 1, [register_row(A, 1)])
    result = ingest_cycle(raw.root, 1, KEY)
    a = result.audit.set_index("source_file").loc[PETHO]
    assert (a["status"], a["rows_read"]) == ("loaded", 50)


# --- links out of the raw root -----------------------------------------------------------------------------------

def test_a_link_to_a_file_outside_the_raw_root_is_refused_not_followed(raw, tmp_path, opened):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.mkfifo(outside / "pipe")  # were the link followed, opening it would block for ever
    (outside / "register.csv").write_text(raw.register("1278", 2, [register_row(B, 2)]).read_text())
    raw.path(REG2).symlink_to(outside / "register.csv")
    raw.path(SURVEY3).symlink_to(outside / "pipe")
    with hang_guard(30):
        r2, r3 = ingest_cycle(raw.root, 2, KEY), ingest_cycle(raw.root, 3, KEY)
    for result, rel in ((r2, REG2), (r3, SURVEY3)):
        reason, detail = whole_file_issue(result, rel)
        assert reason == "unreadable_file" and "outside the raw root" in detail
    assert REG2 not in opened and SURVEY3 not in opened
    assert len(r2.participations) == 1  # only kommuner/1278's own register


def test_a_link_inside_the_raw_root_is_followed(raw):
    real = raw.register("1278", 2, [register_row(B, 2)])
    raw.path(REG2).symlink_to(real)
    result = ingest_cycle(raw.root, 2, KEY)
    assert result.audit.set_index("source_file").loc[REG2, "status"] == "loaded"


def test_a_linked_folder_outside_the_raw_root_is_not_walked(raw, tmp_path, opened):
    outside = tmp_path / "elsewhere"
    RawRoot(outside).register("1277", 2, [register_row(C, 2)])
    (raw.root / "kommuner").mkdir(parents=True)
    (raw.root / "kommuner" / "1277").symlink_to(outside / "kommuner" / "1277", target_is_directory=True)
    raw.register("1278", 2, [register_row(B, 2)])
    result = ingest_cycle(raw.root, 2, KEY)
    assert REG2 not in set(result.audit["source_file"]) and REG2 not in opened
    assert len(result.participations) == 1
    found = [d for d in common.discover(raw.root) if d.source_file == "kommuner/1277"]
    assert len(found) == 1 and found[0].problem is not None  # recorded, not silently skipped


def test_a_linked_folder_outside_the_raw_root_says_why(raw, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (raw.root / "kommuner").mkdir(parents=True)
    (raw.root / "kommuner" / "1277").symlink_to(outside, target_is_directory=True)
    found = [d for d in common.discover(raw.root) if d.source_file == "kommuner/1277"]
    assert "outside the raw root" in found[0].problem[1]


def test_names_that_are_not_utf8_on_disk_are_recorded_hashed(raw, tmp_path):
    """'Åstorp' in Latin-1, as Windows zip tools write it: Python sees lone surrogates,
    which no Parquet file or DuckDB table can hold. The build goes on."""
    raw.register("1277", 2, [register_row(A, 2)])
    (raw.root / "kommuner" / "1277" / os.fsdecode(b"Protokoll_\xc5storp.txt")).write_text("stray")
    (raw.root / "kommuner" / os.fsdecode(b"\xc5storp")).mkdir()
    raw.write_text("kommuner/" + os.fsdecode(b"\xc5storp") + "/deltagare_cykel2.csv", "x")
    found = {d.source_file: d for d in common.discover(raw.root)}
    names = sorted(found)
    assert names[0] == REG2 and names[1].startswith("kommuner/1277/~") and names[1].endswith(".txt"), names
    assert names[2].startswith("kommuner/~") and names[2].endswith("/deltagare_cykel2.csv")
    assert found[names[2]].problem[0] == "unknown_municipality"
    assert staging.write_inventory(raw.root, tmp_path / "staging") == 1  # what raw/inventory does
    with hang_guard():
        result = ingest_cycle(raw.root, 2, KEY)
    staging.write_cycle(tmp_path / "staging", result)
    assert result.audit.set_index("source_file").loc[REG2, "rows_loaded"] == 1


# --- not regular files ---------------------------------------------------------------------------------------------

def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _zero_device(path: Path) -> None:
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # what /dev/zero is
    except PermissionError:
        pytest.skip("mknod is not permitted here")


def _socket(path: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    _SOCKETS.append(s)


_SOCKETS: list = []


def test_a_file_named_after_a_person_is_recorded_under_a_keyed_hash(raw, tmp_path, key):
    """An unkeyed hash of a name is undone by trying every birth date (a review found
    '~d80fb2a592.pdf' to be sha256('850101-2382.pdf') among 22 million candidates in 88 s):
    the warehouse shows an HMAC under the pseudonym key, which changes with the key."""
    raw.register("1277", 2, [register_row(A, 2)])
    names = ["850101-2382.pdf", "Samira Al-Hassan.txt", "Zlatimira Hodzic.19850101", "850101.2382"]
    for name in names:
        raw.write_text(f"kommuner/1277/{name}", "stray")
    other = PseudonymKey(b"another-key-of-this-deployment", is_development=False)
    shown = sorted(d.source_file for d in common.discover(raw.root, key) if d.cycle is None)
    # an extension with a digit is not kept: it could be a birth date or the last four digits
    kept = {"850101-2382.pdf": ".pdf", "Samira Al-Hassan.txt": ".txt"}
    assert shown == sorted(f"kommuner/1277/~{expected_name_id(n)}{kept.get(n, '')}" for n in names)
    for name in names:
        unkeyed = hashlib.sha256(name.encode()).hexdigest()[:10]
        assert not any(unkeyed in s for s in shown)
    assert not set(shown) & {d.source_file for d in common.discover(raw.root, other)}
    staging.write_inventory(raw.root, tmp_path / "staging", key)  # what raw/inventory writes
    written = pd.read_parquet(tmp_path / "staging" / staging.INVENTORY_ISSUES)["source_file"]
    assert sorted(written) == shown


@pytest.mark.parametrize("make", [_fifo, _zero_device, _socket], ids=["named-pipe", "device", "socket"])
def test_something_that_is_not_a_regular_file_is_refused_unopened(raw, make):
    raw.register("1277", 3, [register_row(A, 3)])
    make(raw.path(SURVEY3))
    try:
        with hang_guard(30):  # a pipe, if opened, blocks for ever
            result = ingest_cycle(raw.root, 3, KEY)
    finally:
        while _SOCKETS:
            _SOCKETS.pop().close()
    reason, detail = whole_file_issue(result, SURVEY3)
    assert reason == "unreadable_file" and "regular file" in detail
    assert len(result.participations) == 1


@pytest.mark.parametrize("holds", [[], ["deltagare.csv"]], ids=["empty", "with-a-file"])
def test_a_folder_named_as_a_delivery_is_refused_and_recorded(raw, holds):
    """A review: an empty folder named `deltagare_cykel3.csv` left no audit row and no issue;
    the cycle only lacked its register."""
    raw.register("1278", 3, [register_row(B, 3)])
    folder = raw.path("kommuner/1277/deltagare_cykel3.csv")
    folder.mkdir(parents=True)
    for name in holds:
        (folder / name).write_text("stray")
    result = ingest_cycle(raw.root, 3, KEY)
    reason, detail = whole_file_issue(result, "kommuner/1277/deltagare_cykel3.csv")
    assert reason == "unreadable_file" and detail == "not a regular file (a pipe, device, socket or folder)"
    assert len(result.participations) == 1  # kommuner/1278's register
    inside = [d for d in common.discover(raw.root, KEY) if d.path.parent == folder]
    assert [(d.kind, d.problem[0]) for d in inside] == [("unexpected", "unexpected_file")] * len(holds)


def test_a_link_that_loops_is_refused_and_the_rest_is_read(raw):
    raw.register("1278", 2, [register_row(B, 2)])
    raw.path(REG2).parent.mkdir(parents=True, exist_ok=True)
    raw.path(REG2).symlink_to(raw.path(REG2).name)  # points at itself
    with hang_guard(30):
        result = ingest_cycle(raw.root, 2, KEY)
    reason, detail = whole_file_issue(result, REG2)
    assert reason == "unreadable_file" and "loops" in detail and "1277" not in detail
    assert len(result.participations) == 1  # kommuner/1278's register


def test_a_file_gone_since_the_listing_is_recorded_not_a_crash(raw):
    gone = raw.root / "kommuner" / "1277" / "deltagare_cykel2.csv"  # listed, then removed
    found = common.classify(raw.root, gone)
    assert found.refused and found.problem[0] == "unreadable_file"
    assert "FileNotFoundError" in found.problem[1] and str(raw.root) not in found.problem[1]
