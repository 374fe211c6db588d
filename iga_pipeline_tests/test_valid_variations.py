"""Valid deliveries written the way real senders' tools write them (raw-deliveries.md).

A review of 2026-12-05 went through raw-deliveries.md sentence by sentence and built the
deliveries below by hand (not with `iga_pipeline.synth`, whose writers share the adapters'
assumptions). Each one is valid under the contract and has to read exactly like its plain
twin: the same rows, keys, statuses and interventions, with no rejection and no warning.
All of them passed when they were written: they guard against regressions, they do not
reproduce a bug. Every person is made up (valid Luhn digit, invented names).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import pandas as pd
import pytest
from rawfiles import REGISTER_COLUMNS, Person, astorp_entry, fu_end_row, petho_row, read, register_row

from iga_pipeline.sources import providers, register

PETHO_REL = "leverantorer/petho/cykel1_resultat.xlsx"

ADA = Person(dt.date(1975, 4, 12), 311, "Ada", "Provsson")
BEA = Person(dt.date(1980, 1, 11), 322, "Bea", "Provdotter", coordination=True)
CID = Person(dt.date(1978, 6, 6), 366, "Cid", "Testberg")
# 100 on the first day of cycle 5 (2011-01-01) to the day: `+` in a ten-digit form
HUNDRED = Person(dt.date(1911, 1, 1), 823, "Hundra", "Årsdag")
# born on a leap day of the century before cycle 7's (2012-01-01): 120229-NNNC is 1912
LEAP = Person(dt.date(1912, 2, 29), 845, "Skott", "Dagsson")


def _petho(raw):
    raw.petho({
        "Åstorp": [petho_row(ADA, insatser="validering, PRAKTIK", status_end=" anställd ",
                             status_90d="EGET FÖRETAG"),
                   petho_row(BEA, insatser="Yrkesprövning,Samhällsorientering", status_end="studier",
                             status_90d="annat projekt")],
        "Båstad": [petho_row(CID, as_number=True, insatser="JOBBSÖKNING , Arbetscoachning",
                             status_end="Föräldraledig", status_90d=None)],
    })


def _as_read(out) -> tuple:
    rows = out.rows.sort_values("source_row").reset_index(drop=True)
    inter = out.interventions.sort_values(["source_row", "intervention"]).reset_index(drop=True)
    return rows, inter


def _rezip(path, transform=lambda name, data: data, *, streamed: bool = False) -> None:
    """Write the workbook's parts again; `streamed`: as Java's ZipOutputStream (Apache POI)
    writes them, each part followed by a data descriptor and flagged UTF-8 (flags 0x0808)."""
    with zipfile.ZipFile(path) as z:
        parts = [(i.filename, transform(i.filename, z.read(i.filename))) for i in z.infolist()]
    out = io.BytesIO()

    class Unseekable(io.RawIOBase):  # zipfile writes data descriptors to a stream it cannot seek
        def writable(self):
            return True

        def write(self, data):
            return out.write(data)

    original = zipfile.ZipInfo._encodeFilenameFlags
    if streamed:
        zipfile.ZipInfo._encodeFilenameFlags = lambda info: (original(info)[0], original(info)[1] | 0x800)
    try:
        with zipfile.ZipFile(Unseekable() if streamed else out, "w") as z:
            for name, data in parts:
                info = zipfile.ZipInfo(name, date_time=(2009, 10, 9, 12, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, data)
    finally:
        zipfile.ZipInfo._encodeFilenameFlags = original
    path.write_bytes(out.getvalue())


def _same_as_plain(raw, key, change) -> None:
    _petho(raw)
    plain = read(raw, PETHO_REL, providers.read_petho, key)
    change(raw.root / PETHO_REL)
    varied = read(raw, PETHO_REL, providers.read_petho, key)
    for a, b in zip(_as_read(plain), _as_read(varied)):
        pd.testing.assert_frame_equal(a, b)
    assert varied.issues.empty and plain.issues.empty
    assert varied.gives_90d_status is True


def test_the_plain_petho_workbook_reads_every_allowed_spelling(raw, key, expected_key):
    _petho(raw)
    out = read(raw, PETHO_REL, providers.read_petho, key)
    assert list(out.rows["person_key"]) == [expected_key(p) for p in (ADA, BEA, CID)]
    assert list(out.rows["status_end"]) == ["anställd", "studier", "föräldraledig"]
    assert list(out.rows["status_90d"].fillna("<NA>")) == ["eget företag", "annat projekt", "<NA>"]
    assert sorted(out.interventions["intervention"]) == [
        "civic_orientation", "internship", "job_coaching", "job_search", "validation", "vocational_trial"]


def test_a_workbook_zipped_as_java_writes_it_reads_like_the_original(raw, key):
    """Data descriptors after each part and the UTF-8 name flag (Apache POI, any JVM)."""
    _same_as_plain(raw, key, lambda path: _rezip(path, streamed=True))


def test_a_formula_with_its_stored_result_is_read_as_the_result(raw, key):
    """Excel stores every formula's result; a status typed as a formula reads as its text."""
    replaced = []

    def formula(name, data):
        if name != "xl/worksheets/sheet2.xml":  # Åstorp's sheet (sheet1 is Info)
            return data
        text, n = re.subn(r'<c r="D5"[^>]*>.*?</c>',
                          '<c r="D5" t="str"><f>TRIM(" anställd ")</f><v>anställd</v></c>', data.decode())
        replaced.append(n)
        return text.encode()
    _same_as_plain(raw, key, lambda path: _rezip(path, formula))
    assert replaced == [1]


def test_decorations_of_a_report_workbook_change_nothing_read(raw, key):
    """An Excel table over the data, a logo, a comment on a header cell, a drop-down list of
    the statuses, an autofilter, frozen panes and print titles: what a report template has."""
    import openpyxl
    from openpyxl.comments import Comment
    from openpyxl.drawing.image import Image
    from openpyxl.worksheet.datavalidation import DataValidation
    from openpyxl.worksheet.table import Table
    from PIL import Image as Picture

    def decorate(path):
        logo = path.parent / "logo.png"
        Picture.new("RGB", (40, 20), (200, 0, 0)).save(logo)
        wb = openpyxl.load_workbook(path)
        for n, ws in enumerate(wb.worksheets):
            if ws.title == "Info":
                ws.sheet_state = "hidden"
                continue
            last = 4 + sum(1 for r in range(5, ws.max_row + 1) if ws.cell(r, 1).value is not None)
            ws.add_table(Table(displayName=f"Tabell{n}", ref=f"A4:F{last}"))
            ws.add_image(Image(str(logo)), "H1")
            ws["D4"].comment = Comment("Status vid cykelns slut", "Prov")
            statuses = DataValidation(type="list", formula1='"Anställd,Eget företag,Studier,Okänt"')
            ws.add_data_validation(statuses)
            statuses.add("D5:E200")
            ws.freeze_panes = "A5"
            ws.print_title_rows = "4:4"
        wb.save(path)
        logo.unlink()
    _same_as_plain(raw, key, decorate)


@pytest.mark.parametrize("shift", [0, 1])
def test_petho_columns_in_another_order_or_not_from_column_a(raw, key, shift):
    def reorder(path):
        import openpyxl
        wb = openpyxl.load_workbook(path)
        for ws in wb.worksheets:
            if ws.title == "Info":
                continue
            rows = [[ws.cell(r, c).value for c in range(1, 7)] for r in range(4, ws.max_row + 1)]
            for r in range(4, ws.max_row + 1):
                for c in range(1, 8):
                    ws.cell(r, c).value = None
            order = [1, 5, 4, 0, 3, 2]  # Namn, Kommentar, Status 90 dagar, Personnr, ...
            for i, row in enumerate(rows):
                for j, k in enumerate(order):
                    ws.cell(4 + i, 1 + shift + j).value = row[k]
        wb.save(path)
    _same_as_plain(raw, key, reorder)


# --- registers: what a CSV writer may do -------------------------------------------------

def _register_text(rows, *, quote_all: bool, newline: str) -> str:
    import csv
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator=newline,
                        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerow(REGISTER_COLUMNS)
    writer.writerows([[r[c] for c in REGISTER_COLUMNS] for r in rows])
    return out.getvalue()


@pytest.mark.parametrize("quote_all, newline", [(True, "\r\n"), (False, "\r"), (True, "\r")])
def test_a_register_quoted_or_with_mac_line_ends_reads_like_the_plain_one(raw, key, quote_all, newline):
    """Quoted fields (a name holding the delimiter among them) and the classic Mac's CR line
    ends: the contract fixes the delimiter and the header, not the writer's quoting or lines."""
    rows = [register_row(ADA, 3, fornamn="Ada;Maria"), register_row(BEA, 3, form="YYYYMMDD-NNNC"),
            register_row(CID, 3, form="YYMMDDNNNC", avbrott_orsak="flytt", utskrivningsdatum="2010-03-01"),
            register_row(LEAP, 3, efternamn="D'Provsson", fodelseland="")]
    rel = "kommuner/1277/deltagare_cykel3.csv"
    raw.write_text(rel, _register_text(rows, quote_all=False, newline="\n"))
    plain = read(raw, rel, register.read, key)
    raw.write_bytes(rel, b"\xef\xbb\xbf" + _register_text(rows, quote_all=quote_all, newline=newline).encode())
    varied = read(raw, rel, register.read, key)
    pd.testing.assert_frame_equal(plain.rows, varied.rows)
    assert varied.issues.empty and varied.rows["pnr_error"].isna().all()


# --- providers: the forms of the personnummer section, anywhere -----------------------------

def test_plus_form_and_leap_day_in_a_provider_export_give_the_registers_keys(raw, key, expected_key):
    """`+` for someone exactly 100 on the cycle's first day, and 29 February of a century
    ago in a ten-digit form, name the same people as the register's twelve digits."""
    raw.astorp(5, [astorp_entry(HUNDRED, pnr=HUNDRED.pnr("YYMMDD+NNNC"))])
    raw.astorp(7, [astorp_entry(LEAP, pnr=LEAP.pnr("YYMMDD-NNNC"))])
    raw.register("1277", 5, [register_row(HUNDRED, 5, form="YYYYMMDD-NNNC")])
    raw.register("1277", 7, [register_row(LEAP, 7, form="YYYYMMDDNNNC")])
    for cycle, person in ((5, HUNDRED), (7, LEAP)):
        out = read(raw, f"leverantorer/astorp/cykel{cycle}.json", providers.read_astorp, key)
        reg = read(raw, f"kommuner/1277/deltagare_cykel{cycle}.csv", register.read, key)
        assert list(out.rows["person_key"]) == list(reg.rows["person_key"]) == [expected_key(person)]


def test_folkuniversitetet_hours_grouped_by_a_no_break_space(raw, key):
    """Swedish Excel groups thousands with a no-break space (0xA0 in Windows-1252)."""
    raw.folkuniversitetet(2, "slut", [fu_end_row(ADA, hours=("1\u00a0034,5", "12,5", "", "0,25"))])
    out = read(raw, "leverantorer/folkuniversitetet/cykel2_slut.csv", providers.read_folkuniversitetet, key)
    assert out.issues.empty
    assert dict(zip(out.interventions["intervention"], out.interventions["hours"])) == {
        "validation": 1034.5, "vocational_trial": 12.5, "job_search": 0.25}
