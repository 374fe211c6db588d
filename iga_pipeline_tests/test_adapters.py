"""Adapters: the bytes of each delivery kind -> the harmonised frame (raw-deliveries.md).

Every test writes real files with `rawfiles` and reads them with the real
adapter. What every adapter must guarantee: one row per data row, the
contract's columns in harmonised form, `person_key` = HMAC of the normalised
personnummer, and no personnummer or name anywhere in what it returns.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
import zipfile

import pandas as pd
import pytest
from conftest import expected_name_id
from rawfiles import (
    FU_END_COLUMNS, Person, astorp_entry, astorp_followup, fu_90_row, fu_end_row, petho_row, read,
    register_row,
)

from iga_pipeline.sources import providers, register, survey
from iga_pipeline.sources.common import classify

HEX64 = re.compile(r"[0-9a-f]{64}")

ALI = Person(dt.date(1985, 1, 1), 238, "Ali", "Hassanzadeh")
SARA = Person(dt.date(1990, 5, 5), 12, "Sára", "Öberg")
BO = Person(dt.date(1979, 3, 3), 55, "Bosse", "Ängquist", coordination=True)
ELIN = Person(dt.date(1962, 11, 30), 731, "Elin", "Åkesson")
OLD = Person(dt.date(1905, 3, 3), 401, "Methusela", "Gammelgård")  # 100+ on every cycle start
EVERYONE = [ALI, SARA, BO, ELIN, OLD]

REGISTER_OUT = ["source_row", "person_key", "pnr_error", "municipality_code", "kon", "fodelseland",
                "malgrupp", "cykel", "inskrivningsdatum", "utskrivningsdatum", "avbrott_orsak", "name_spelling"]
PERSONAL_COLUMNS = {"personnummer", "fornamn", "efternamn", "namn", "personnr", "pnr"}


def assert_no_personal_data(*frames: pd.DataFrame, persons=EVERYONE) -> None:
    """No column named like personal data, no cell containing a name or a personnummer."""
    needles = []
    for p in persons:
        needles += [p.first, p.last, p.name, str(p.as_number), *p.written_forms()]
    for frame in frames:
        assert not {c.casefold() for c in frame.columns} & PERSONAL_COLUMNS, list(frame.columns)
        for column in frame.columns:
            for cell in frame[column].astype(str):
                for needle in needles:
                    assert needle not in cell, f"{needle!r} leaked into column {column!r}"


def issue_list(issues: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(source_row, severity, reason) of each issue, in order; a NULL row as '<NA>'."""
    return list(issues[["source_row", "severity", "reason"]].fillna("<NA>").itertuples(index=False, name=None))


def assert_keys(rows: pd.DataFrame, expected: list[str]) -> None:
    keys = list(rows["person_key"])
    assert all(isinstance(k, str) and HEX64.fullmatch(k) for k in keys), keys
    assert keys == expected


# --- 1. municipality registers ----------------------------------------------------------

@pytest.mark.parametrize("bom", [True, False], ids=["utf8-bom", "utf8"])
def test_register_reads_every_written_form_into_the_harmonised_shape(raw, key, expected_key, bom):
    rows = [
        register_row(ALI, 2, form="YYMMDD-NNNC", kon="M", fodelseland="IQ"),
        register_row(SARA, 2, form="YYMMDDNNNC", fodelseland="SO", utskrivningsdatum="2009-09-01",
                     avbrott_orsak="flytt"),
        register_row(BO, 2, form="YYYYMMDDNNNC", fodelseland="BA"),
        register_row(ELIN, 2, form="YYYYMMDD-NNNC", fodelseland="SE", utskrivningsdatum=""),
        register_row(OLD, 2, form="YYMMDD+NNNC", fodelseland=""),
    ]
    path = raw.register("1278", 2, rows, bom=bom)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") == bom
    assert "Sára".encode("utf-8") in path.read_bytes()

    out = read(raw, "kommuner/1278/deltagare_cykel2.csv", register.read, key)

    got = out.rows
    assert list(got.columns) == REGISTER_OUT
    assert list(got["source_row"]) == ["1", "2", "3", "4", "5"]
    assert_keys(got, [expected_key(p) for p in EVERYONE])
    assert got["pnr_error"].isna().all()
    assert set(got["municipality_code"]) == {"1278"}
    assert list(got["kon"]) == ["M", "K", "K", "K", "K"]
    assert list(got["fodelseland"].fillna("")) == ["IQ", "SO", "BA", "SE", ""]
    assert list(got["cykel"]) == ["2"] * 5
    assert got.loc[1, "avbrott_orsak"] == "flytt" and got["avbrott_orsak"].isna().sum() == 4
    assert list(got["name_spelling"]) == [0] * 5  # each person's only row: no spelling to compare
    assert pd.isna(got.loc[3, "utskrivningsdatum"])  # empty exit date -> missing, not ''
    assert len(out.issues) == 0
    assert_no_personal_data(got, out.issues)


def test_name_spelling_tells_only_a_persons_own_rows_apart():
    """R5 compares the names as `name_spelling` (a review of the first version: numbered over
    the whole file, equal numbers showed that two people share a name; joined by a separator,
    'Ann\\x1fa' + 'Berg' and 'Ann' + 'a\\x1fBerg' were one spelling; 'Åsa' typed with a
    combining ring was another)."""
    from iga_pipeline.sources.register import _name_numbers

    first = ["Anna", "Anna", "Anna", "Anna", "Bo", "Ann\x1fa", "Ann", unicodedata.normalize("NFD", "Åsa"),
             "Åsa", "Eva", "EVA"]
    last = ["Berg", "Berg", "Berg", "Berg", "Ek", "Berg", "a\x1fBerg", "Lund", "Lund", "Ek", "Ek"]
    people = pd.Series(["a", "a", "b", "b", "c", "d", "d", "e", "e", "f", "f"], dtype="string")
    numbers = _name_numbers(pd.DataFrame({"fornamn": first, "efternamn": last}), people)
    assert numbers.tolist() == [1, 1, 1, 1, 0, 1, 2, 1, 1, 1, 2]


def test_name_spelling_compares_the_surname_as_well(raw, key):
    """A person's rows that differ in efternamn alone (a new surname) are two spellings, so R5
    rejects them as differing rows instead of counting them once as identical."""
    raw.register("1277", 2, [register_row(ALI, 2), register_row(ALI, 2, efternamn="Hassan"),
                             register_row(ALI, 2), register_row(SARA, 2)])
    got = read(raw, "kommuner/1277/deltagare_cykel2.csv", register.read, key).rows
    assert list(got["name_spelling"]) == [1, 2, 1, 0]


def test_register_key_is_the_same_for_every_form_of_one_person(raw, key, expected_key):
    """The normalised 12-digit value identifies the person, however it was written."""
    forms = ["YYMMDD-NNNC", "YYMMDDNNNC", "YYYYMMDDNNNC", "YYYYMMDD-NNNC"]
    raw.register("1277", 3, [register_row(BO, 3, form=f) for f in forms])
    out = read(raw, "kommuner/1277/deltagare_cykel3.csv", register.read, key)
    assert set(out.rows["person_key"]) == {expected_key(BO.pnr12)}
    assert BO.pnr12[6:8] == "63"  # samordningsnummer: day + 60 kept in the normalised value


def test_register_takes_a_short_personnummers_century_from_the_cycles_first_day(raw, key, expected_key):
    """raw-deliveries.md: a ten-digit form makes the person younger than 100 on the first day of
    the cycle. 100315-NNNC on 2010-01-01 (cycle 3's first day) is born in 1910, aged 99; read
    against the cycle's last day it would be a baby of 2010 (a review's mutation, unseen)."""
    born_1910 = Person(dt.date(1910, 3, 15), 123, "Hundra", "Årsson")
    raw.register("1277", 3, [register_row(born_1910, 3, form="YYMMDD-NNNC")])
    out = read(raw, "kommuner/1277/deltagare_cykel3.csv", register.read, key)
    assert list(out.rows["person_key"]) == [expected_key(born_1910.pnr12)]
    assert born_1910.pnr12.startswith("1910")


def test_register_marks_invalid_personnummer_without_a_key(raw, key):
    bad = ALI.pnr("YYMMDD-NNNC")[:-1] + str((int(ALI.pnr()[-1]) + 1) % 10)
    raw.register("1277", 2, [register_row(ALI, 2, personnummer=bad), register_row(SARA, 2)])
    got = read(raw, "kommuner/1277/deltagare_cykel2.csv", register.read, key).rows
    assert pd.isna(got.loc[0, "person_key"]) and got.loc[0, "pnr_error"] == "wrong_check_digit"
    assert pd.notna(got.loc[1, "person_key"]) and pd.isna(got.loc[1, "pnr_error"])


# --- 2. Pethö Consulting ----------------------------------------------------------------

def write_petho(raw, **kwargs):
    return raw.petho({
        "Åstorp": [
            petho_row(ALI, insatser="Validering, Praktik", status_end="Anställd", status_90d="Anställd"),
            petho_row(BO, as_number=True, insatser="VALIDERING ,praktik,  arbetscoachning ",
                      status_end="  eget FÖRETAG ", status_90d=None, kommentar=f"ringde {SARA.first}"),
            petho_row(SARA, insatser="yrkesprövning", status_end=None, status_90d="  okänt"),
        ],
        "Båstad": [
            petho_row(ELIN, as_number=True, insatser="Samhällsorientering,Jobbsökning",
                      status_end="STUDIER", status_90d="Annat projekt"),
        ],
    }, after_blank={"Åstorp": [petho_row(OLD, status_end="Sjukskriven")]}, **kwargs)


def test_petho_reads_every_municipality_sheet(raw, key, expected_key):
    write_petho(raw)
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    got = out.rows

    assert list(got.columns) == ["source_row", "person_key", "pnr_error", "municipality_code",
                                 "status_end", "status_90d"]
    # The Info sheet is ignored; OLD comes after the first empty row and is ignored.
    assert list(got["source_row"]) == ["Åstorp!5", "Åstorp!6", "Åstorp!7", "Båstad!5"]
    assert list(got["municipality_code"]) == ["1277", "1277", "1277", "1278"]
    # Number-typed Personnr (the dash lost) gives the same key as the text form.
    assert_keys(got, [expected_key(p) for p in (ALI, BO, SARA, ELIN)])
    assert got["pnr_error"].isna().all()
    # Status texts compare case-insensitively after trimming; empty is missing.
    assert list(got["status_end"].fillna("<NA>")) == ["anställd", "eget företag", "<NA>", "studier"]
    assert list(got["status_90d"].fillna("<NA>")) == ["anställd", "<NA>", "okänt", "annat projekt"]
    assert out.gives_90d_status is True

    inter = out.interventions.sort_values(["source_row", "intervention"])
    assert list(inter.itertuples(index=False, name=None)) == [
        ("Båstad!5", "civic_orientation", pd.NA), ("Båstad!5", "job_search", pd.NA),
        ("Åstorp!5", "internship", pd.NA), ("Åstorp!5", "validation", pd.NA),
        ("Åstorp!6", "internship", pd.NA), ("Åstorp!6", "job_coaching", pd.NA),
        ("Åstorp!6", "validation", pd.NA),
        ("Åstorp!7", "vocational_trial", pd.NA),
    ]
    # OLD is not read, but leaves a trace: a person below the data's end (row 8 is empty).
    assert issue_list(out.issues) == [("Åstorp!9", "warning", "unexpected_file")]
    assert "(Åstorp!8)" in out.issues["detail"].iloc[0]
    assert_no_personal_data(got, out.interventions, out.issues)


def test_a_petho_row_of_blank_cells_ends_the_data_as_an_empty_row_does(raw, key):
    """raw-deliveries.md §2: a sheet's data end at its first entirely empty row, and a row
    whose cells hold only spaces is empty (a review's mutation read on past it, unseen)."""
    raw.petho({"Perstorp": [petho_row(SARA), [" ", "  ", None, " ", "", None], petho_row(OLD)]})
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    assert list(out.rows["source_row"]) == ["Perstorp!5"]
    assert issue_list(out.issues) == [("Perstorp!7", "warning", "unexpected_file")]
    assert out.issues["detail"].iloc[0].startswith(
        "1 row(s) with a personnummer or a status below the sheet's first empty row (Perstorp!6)")


def test_petho_rows_left_unread_that_name_someone_are_warned_about(raw, key):
    """Contract §2: data end at the first empty row, and a sheet not named after a
    municipality is ignored. A footnote below the data or an Info sheet is no one; a
    misspelt municipality's sheet, or people below an empty row, are, and must leave a
    trace (nothing dropped without one)."""
    raw.petho({
        "Båstad": [petho_row(ELIN)],
        "Åstrop": [petho_row(ALI), petho_row(BO, as_number=True), petho_row(None, personnr="n/a")],
        "Perstorp": [petho_row(SARA)],
        "Örkelljunga": [],
    }, after_blank={"Båstad": [["Sammanställt av Pethö Consulting 2009."],
                               ["", "556036-0793", "0701234567", "  ", " "]],  # an org and a phone number
                    "Perstorp": [["Sena tillägg:"], petho_row(OLD), petho_row(BO)],
                    # a review: a name with a status, a personnummer in the Namn column
                    "Örkelljunga": [["", f"{SARA.first} {SARA.last}", "", " anställd "], ["", ELIN.pnr()]]})
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)

    assert list(out.rows["source_row"]) == ["Båstad!5", "Perstorp!5"]
    assert issue_list(out.issues) == [("Perstorp!8", "warning", "unexpected_file"),
                                      ("Örkelljunga!6", "warning", "unexpected_file"),
                                      (f"~{expected_name_id('Åstrop')}!4", "warning", "unknown_municipality")]
    below, later, sheet = out.issues["detail"]
    assert below.startswith("2 row(s) with a personnummer or a status below the sheet's first empty row "
                            "(Perstorp!6)")
    assert later.startswith("2 row(s) with a personnummer or a status below the sheet's first empty row "
                            "(Örkelljunga!5)")
    # 'Åstrop' is a sender's text that could be a name: hashed in the row and the detail alike
    # (as file names are), and the sheet is found by its position (Info is the first).
    assert sheet.startswith(f"worksheet 3 (~{expected_name_id('Åstrop')}) has Pethö's header and 2 row(s)")
    assert_no_personal_data(out.rows, out.interventions, out.issues)


def _rewrite_sheet(path, part: str, edit) -> None:
    """Rewrite one part of a workbook (a zip) with `edit(bytes) -> bytes`."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        data = {name: z.read(name) for name in z.namelist()}
    data[part] = edit(data[part])
    with zipfile.ZipFile(path, "w") as z:
        for name, content in data.items():
            z.writestr(name, content)


def test_a_status_in_decomposed_unicode_below_the_data_is_warned_about(raw, key):
    """A data row's status is read in composed form ('Anställd' typed as a and a combining
    diaeresis is Anställd); below the data's end it names someone alike, not only when composed."""
    nfd = unicodedata.normalize("NFD", "Anställd")
    assert nfd != "Anställd"
    raw.petho({"Åstorp": [petho_row(ALI)]}, info_sheet=False, after_blank={"Åstorp": [["", None, None, nfd]]})
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    assert issue_list(out.issues) == [("Åstorp!7", "warning", "unexpected_file")]


def test_a_personnummer_stored_as_a_decimal_below_the_data_is_warned_about(raw, key):
    """A number cell written as 7903630551.0 is read as a personnummer in a data row; below
    the data's end it is someone too (a review's find)."""
    path = raw.petho({"Åstorp": [petho_row(ALI), petho_row(BO, as_number=True)]}, info_sheet=False,
                     after_blank={"Åstorp": [petho_row(BO, as_number=True)]})
    number = str(BO.as_number).encode()
    _rewrite_sheet(path, "xl/worksheets/sheet1.xml",
                   lambda xml: xml.replace(b"<v>" + number + b"</v>", b"<v>" + number + b".0</v>"))
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    assert out.rows["pnr_error"].isna().all() and len(out.rows) == 2
    assert issue_list(out.issues) == [("Åstorp!8", "warning", "unexpected_file")]


def test_an_unreadable_cell_below_the_data_does_not_cost_the_workbook(raw, key):
    """The contract does not read below a sheet's first empty row; searching there for people
    must not reject the workbook (a review's find: a cell openpyxl cannot parse, far below)."""
    path = raw.petho({"Åstorp": [petho_row(ALI)]}, info_sheet=False,
                     after_blank={"Åstorp": [petho_row(BO)]})
    filler = b"".join(b'<row r="%d"><c r="G%d" s="0"/></row>' % (r, r) for r in range(30, 3000))
    broken = b'<row r="5000"><c r="A5000" t="n"><v>n/a</v></c></row>'
    _rewrite_sheet(path, "xl/worksheets/sheet1.xml",
                   lambda xml: xml.replace(b"</sheetData>", filler + broken + b"</sheetData>"))
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    assert list(out.rows["source_row"]) == ["Åstorp!5"]
    # BO, above the broken cell, is still found
    assert issue_list(out.issues) == [("Åstorp!7", "warning", "unexpected_file")]


def test_a_broken_sheet_that_the_contract_ignores_does_not_cost_the_workbook(raw, key):
    path = write_petho(raw)

    def cut_off(xml: bytes) -> bytes:
        assert b"Resultatrapport" in xml  # the Info sheet
        # Its size is declared (openpyxl reads that when it opens the workbook); its rows are cut off.
        return (b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b'<dimension ref="A1:F6"/><sheetData><row r="4"><c r=')

    _rewrite_sheet(path, "xl/worksheets/sheet1.xml", cut_off)
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    assert list(out.rows["source_row"]) == ["Åstorp!5", "Åstorp!6", "Åstorp!7", "Båstad!5"]


def test_a_capitalised_status_below_a_petho_sheets_end_is_warned_about(raw, key):
    """A status is recognised below the data as in it, case-insensitively: 'Anställd' as the
    contract writes it, with no personnummer beside it, still names someone."""
    raw.petho({"Åstorp": [petho_row(ALI)]}, info_sheet=False,
              after_blank={"Åstorp": [["", None, None, "Anställd"]]})
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    assert list(out.rows["source_row"]) == ["Åstorp!5"]
    assert issue_list(out.issues) == [("Åstorp!7", "warning", "unexpected_file")]


def test_a_personnummer_of_nine_digits_below_the_data_is_warned_about(raw, key):
    """A personnummer stored as a number loses its leading zero: born in 1905 (YYMMDD starts
    with 0), it has nine digits. Below the data's end it still names someone."""
    assert len(str(OLD.as_number)) == 9
    raw.petho({"Åstorp": [petho_row(ALI)]}, info_sheet=False,
              after_blank={"Åstorp": [petho_row(OLD, as_number=True, status_end=None)]})
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    assert issue_list(out.issues) == [("Åstorp!7", "warning", "unexpected_file")]
    assert_no_personal_data(out.rows, out.issues)


def test_an_ignored_sheet_whose_name_has_a_digit_is_hashed(raw, key):
    """A sheet not read but holding people is warned about under its name, hashed when the
    name holds a digit at all, even one shaped like a code ('Åstorp2', which safe_path would
    show): digits in the names of two sheets can make a personnummer together."""
    raw.petho({"Åstorp": [petho_row(ALI)], "Åstorp2": [petho_row(BO)]}, info_sheet=False)
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    hashed = f"~{expected_name_id('Åstorp2')}"
    assert issue_list(out.issues) == [(f"{hashed}!4", "warning", "unknown_municipality")]
    assert out.issues["detail"].iloc[0].startswith(f"worksheet 2 ({hashed}) has Pethö's header")
    assert "Åstorp2" not in " ".join(out.issues["detail"])


def test_petho_header_names_are_trimmed(raw, key):
    """Header cells with spaces around a column's name ('Status 90 dagar ', as a typist leaves
    them) name that column: the sheet is read, not rejected for a column missing."""
    raw.petho({"Åstorp": [petho_row(ALI, status_90d="Studier")]},
              columns=[" Personnr", "Namn", "Insatser ", "Status cykelslut", " Status 90 dagar  ", "Kommentar"])
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    assert out.rows[["source_row", "status_end", "status_90d"]].values.tolist() == [
        ["Åstorp!5", "anställd", "studier"]]
    assert list(out.interventions["intervention"]) == ["validation"]


def test_petho_number_personnr_is_a_real_excel_number(raw):
    """The builder really writes a number cell (what openpyxl returns as int)."""
    import openpyxl

    write_petho(raw)
    wb = openpyxl.load_workbook(raw.root / "leverantorer/petho/cykel1_resultat.xlsx")
    assert wb.sheetnames == ["Info", "Åstorp", "Båstad"]
    ws = wb["Åstorp"]
    assert ws["A2"].value == "Rapportdatum" and ws["A3"].value is None
    assert ws["A4"].value == "Personnr" and isinstance(ws["A6"].value, int)
    assert all(c.value is None for c in ws[8]) and ws["A9"].value == OLD.pnr()


def test_petho_without_any_90_day_status_is_not_followed_up(raw, key):
    raw.petho({"Örkelljunga": [petho_row(ALI, status_90d=None), petho_row(SARA, status_90d="  ")]})
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    assert out.gives_90d_status is False
    assert out.rows["status_90d"].isna().all()
    assert set(out.rows["municipality_code"]) == {"1257"}


def test_petho_unknown_intervention_is_a_warning_not_a_rejection(raw, key):
    raw.petho({"Perstorp": [petho_row(ALI, insatser="Validering, Simning")]})
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    assert list(out.interventions["intervention"]) == ["validation"]
    assert out.issues[["source_row", "severity", "reason"]].values.tolist() == [
        ["Perstorp!5", "warning", "invalid_code"]]


def test_an_unknown_petho_status_is_kept_as_written_not_case_folded(raw, key):
    """Only the contract's status texts are case-folded (`_petho_status`): anything else stays
    as written, so that validation rejects it without echoing a name in lower case as a code."""
    raw.petho({"Perstorp": [petho_row(ALI, status_end="Pensionär", status_90d=" ANSTÄLLD ")]})
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    assert out.rows[["status_end", "status_90d"]].values.tolist() == [["Pensionär", "anställd"]]


def test_petho_insatser_read_each_intervention_once_and_skip_empty_items(raw, key):
    """Insatser is a comma-separated list (raw-deliveries.md §2): an empty cell or an empty
    item between commas is no intervention and no warning, and one named twice in a row
    (in any case) is one intervention."""
    raw.petho({"Perstorp": [petho_row(ALI, insatser=None), petho_row(SARA, insatser="Praktik, ,praktik,Validering,")]})
    out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    inter = out.interventions.sort_values(["source_row", "intervention"])
    assert list(inter[["source_row", "intervention"]].itertuples(index=False, name=None)) == [
        ("Perstorp!6", "internship"), ("Perstorp!6", "validation")]
    assert len(out.issues) == 0, out.issues


def test_petho_statuses_harmonise_through_ingest(raw, ingest, expected_key):
    """The same workbook, through ingest_cycle: harmonised detail and class per time point."""
    raw.register("1277", 1, [register_row(p, 1) for p in (ALI, BO, SARA)])
    raw.register("1278", 1, [register_row(ELIN, 1)])
    write_petho(raw)
    result = ingest(1)

    p = result.participations
    columns = ["municipality_code", "status_end_detail", "status_end", "status_90d_detail", "status_90d"]
    by_person = dict(zip(p["person_key"], p[columns].values.tolist()))
    k = expected_key
    assert by_person[k(ALI)] == ["1277", "employment", "work", "employment", "work"]
    assert by_person[k(BO)] == ["1277", "self_employment", "work", "unknown", "unknown"]
    assert by_person[k(SARA)] == ["1277", "unknown", "unknown", "unknown", "unknown"]
    assert by_person[k(ELIN)] == ["1278", "education", "studies", "programme", "studies"]
    assert result.followup["followed_up"].tolist() == [True]
    assert set(result.interventions["hours"].isna()) == {True}  # Pethö gives no hours


# --- 3. Folkuniversitetet --------------------------------------------------------------

def test_folkuniversitetet_end_file_cp1252_decimal_comma_and_empty_hours(raw, key, expected_key):
    path = raw.folkuniversitetet(3, "slut", [
        fu_end_row(ALI, kommun="Åstorp", hours=(12.5, "", 3, ""), utfallskod="1"),
        fu_end_row(SARA, kommun="Örkelljunga", hours=("0", "0,0", "", "0,00"), utfallskod="9"),
        fu_end_row(BO, kommun="ÄNGELHOLM", hours=("0,75", 40, "", "1 ,5"), utfallskod=""),
        fu_end_row(ELIN, kommun="Båstad", hours=(1, 2, 3, 4), utfallskod="3"),
    ])
    data = path.read_bytes()
    assert "Å".encode("cp1252") in data and b"\r\n" in data and b"12,5" in data
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # really Windows-1252, not UTF-8

    out = read(raw, "leverantorer/folkuniversitetet/cykel3_slut.csv", providers.read_folkuniversitetet, key)
    got = out.rows
    assert list(got.columns) == ["source_row", "person_key", "pnr_error", "municipality_code", "status_end"]
    assert list(got["source_row"]) == ["1", "2", "3", "4"]
    assert_keys(got, [expected_key(p) for p in (ALI, SARA, BO, ELIN)])
    assert list(got["municipality_code"]) == ["1277", "1257", "1292", "1278"]
    assert list(got["status_end"].fillna("<NA>")) == ["1", "9", "<NA>", "3"]

    hours = {(r, i): h for r, i, h in out.interventions.itertuples(index=False, name=None)}
    assert hours == {
        ("1", "validation"): 12.5, ("1", "civic_orientation"): 3.0,
        ("3", "validation"): 0.75, ("3", "vocational_trial"): 40.0,
        ("4", "validation"): 1.0, ("4", "vocational_trial"): 2.0,
        ("4", "civic_orientation"): 3.0, ("4", "job_search"): 4.0,
    }  # empty or zero hours: no intervention at all; '1 ,5' is no number (a warning, below)
    assert out.issues[["source_row", "severity", "reason"]].values.tolist() == [
        ["3", "warning", "invalid_code"]]
    assert_no_personal_data(got, out.interventions, out.issues)


def test_folkuniversitetet_90_day_file(raw, key, expected_key):
    raw.folkuniversitetet(4, "90dagar", [
        fu_90_row(ALI, kommun="Perstorp", utfallskod="2", datum="2011-03-31"),
        fu_90_row(SARA, kommun="Ängelholm", utfallskod="7"),
    ])
    out = read(raw, "leverantorer/folkuniversitetet/cykel4_90dagar.csv",
               providers.read_folkuniversitetet, key)
    got = out.rows
    assert list(got.columns) == ["source_row", "person_key", "pnr_error", "municipality_code", "status_90d"]
    assert_keys(got, [expected_key(ALI), expected_key(SARA)])
    assert list(got["municipality_code"]) == ["1275", "1292"]
    assert list(got["status_90d"]) == ["2", "7"]
    assert len(out.interventions) == 0
    assert_no_personal_data(got, out.issues)


def test_a_folkuniversitetet_row_without_a_kommun_has_no_municipality_and_no_warning(raw, key):
    """An empty Kommun names no municipality (<NA>); only a name that is no project
    municipality's is warned about."""
    raw.folkuniversitetet(2, "slut", [fu_end_row(ALI, kommun=""), fu_end_row(SARA, kommun="Malmö")])
    out = read(raw, "leverantorer/folkuniversitetet/cykel2_slut.csv", providers.read_folkuniversitetet, key)
    assert list(out.rows["municipality_code"].fillna("<NA>")) == ["<NA>", "<NA>"]
    assert issue_list(out.issues) == [("2", "warning", "invalid_code")]
    assert out.issues["detail"].iloc[0].endswith("is not a project municipality")


def test_folkuniversitetet_hours_up_to_the_limit_are_kept_and_above_it_dropped(raw, key):
    """HOURS_RULE is 'from 0 to 4,416': 4 416 hours are hours; 4 417 are not, and the
    intervention is dropped with a warning, not kept with them."""
    raw.folkuniversitetet(2, "slut", [fu_end_row(ALI, hours=("4 416", "4 417", "4416,00", ""))])
    out = read(raw, "leverantorer/folkuniversitetet/cykel2_slut.csv", providers.read_folkuniversitetet, key)
    assert list(out.interventions.itertuples(index=False, name=None)) == [
        ("1", "validation", 4416.0), ("1", "civic_orientation", 4416.0)]
    assert issue_list(out.issues) == [("1", "warning", "invalid_code")]
    detail = out.issues["detail"].iloc[0]
    assert detail.startswith("Timmar yrkesprövning: ") and "is not a number of hours" in detail, detail


def test_a_provider_takes_a_short_personnummers_century_from_the_cycles_first_day(raw, key, expected_key):
    """As for the register: 100315NNNC in cycle 3 (2010-01-01 .. 2010-06-30) is born in 1910,
    99 on the cycle's first day; against its last day it would be a baby of 2010."""
    born_1910 = Person(dt.date(1910, 3, 15), 123, "Hundra", "Årsson")
    raw.folkuniversitetet(3, "slut", [fu_end_row(born_1910)])
    out = read(raw, "leverantorer/folkuniversitetet/cykel3_slut.csv", providers.read_folkuniversitetet, key)
    assert list(out.rows["person_key"]) == [expected_key(born_1910.pnr12)]
    assert born_1910.pnr12.startswith("1910") and out.rows["pnr_error"].isna().all()


def test_folkuniversitetet_codes_harmonise_through_ingest(raw, ingest, expected_key):
    raw.register("1277", 2, [register_row(p, 2) for p in (ALI, SARA, BO)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(ALI, utfallskod="2"), fu_end_row(SARA, utfallskod="4"),
                                      fu_end_row(BO, utfallskod="6")])
    raw.folkuniversitetet(2, "90dagar", [fu_90_row(ALI, utfallskod="1"), fu_90_row(SARA, utfallskod="5")])
    result = ingest(2)
    p = result.participations.set_index("person_key")
    assert p.loc[expected_key(ALI), ["status_end_detail", "status_90d_detail", "status_90d"]].tolist() == [
        "self_employment", "employment", "work"]
    assert p.loc[expected_key(SARA), ["status_end_detail", "status_end", "status_90d_detail"]].tolist() == [
        "programme", "studies", "job_seeking"]
    # BO is missing from the follow-up file: unknown at 90 days (R9).
    assert p.loc[expected_key(BO), ["status_end_detail", "status_90d_detail"]].tolist() == [
        "sick_leave", "unknown"]
    assert result.followup["followed_up"].tolist() == [True]


@pytest.mark.parametrize("provider", ["folkuniversitetet", "astorp"])
@pytest.mark.parametrize("empty", ["no rows", "rows without a status"])
def test_a_90_day_file_that_gives_no_status_is_a_follow_up_and_says_so(raw, ingest, provider, empty):
    """R9 leaves "delivered 90-day statuses" to raw-deliveries.md, which says for these two
    providers: "A cycle is followed up when its `_90dagar` file has been delivered." So a
    header-only CSV, an export with an empty list, or rows whose status is empty (`;;;` rows,
    `{}` entries) make the cycle followed up, every completer unknown at 90 days (R9: missing
    from the follow-up), and a file-level warning says why (a review of 2026-12-03; an earlier
    review had read R9 alone, as for Pethö, and made such a cycle not followed up)."""
    cycle = 3 if provider == "folkuniversitetet" else 6
    raw.register("1277", cycle, [register_row(p, cycle) for p in (ALI, SARA)])

    def deliver(statuses):
        if provider == "folkuniversitetet":
            raw.folkuniversitetet(cycle, "slut", [fu_end_row(p, utfallskod="1") for p in (ALI, SARA)])
            return raw.folkuniversitetet(cycle, "90dagar", [fu_90_row(p, utfallskod=s) for p, s in statuses])
        raw.astorp(cycle, [astorp_entry(p, status="ANST") for p in (ALI, SARA)])
        return raw.astorp(cycle, [astorp_followup(p, s) for p, s in statuses], followup=True)

    given = [] if empty == "no rows" else [(ALI, ""), (SARA, "")]
    ninety = deliver(given).relative_to(raw.root).as_posix()
    result = ingest(cycle)
    assert result.followup["followed_up"].tolist() == [True]
    assert result.participations["status_90d"].tolist() == ["unknown", "unknown"]
    said = result.issues[(result.issues["source_file"] == ninety) & (result.issues["reason"] == "missing_outcome")]
    assert said[["source_row", "severity"]].fillna("-").values.tolist() == [["-", "warning"]]
    assert said["detail"].iloc[0] == (f"the 90-day file gives no status: cycle {cycle} is followed up (its file "
                                      "was delivered), every completer unknown at 90 days")
    assert result.audit.set_index("source_file").loc[ninety, ["status", "rows_read"]].tolist() == [
        "loaded", len(given)]

    deliver([(ALI, "x")])  # one status, invalid: followed up, everyone unknown at 90 days, no file warning
    result = ingest(cycle)
    assert result.followup["followed_up"].tolist() == [True]
    assert result.participations["status_90d"].tolist() == ["unknown", "unknown"]
    assert not ((result.issues["source_file"] == ninety) & result.issues["source_row"].isna()).any()

    if provider == "astorp":  # a review: a status given twice, the empty one last, is a status given
        path = raw.root / ninety
        path.write_text(path.read_text().replace('"status": "x"', '"status": "ASOK", "status": ""'))
        result = ingest(cycle)
        assert _issues(result, "conflicting_duplicate") == [("1", "rejected")]
        assert result.followup["followed_up"].tolist() == [True]

    (raw.root / ninety).write_bytes(b"\x00\xff not a delivery")  # rejected whole: counts nowhere (R4)
    result = ingest(cycle)
    assert result.audit.set_index("source_file").loc[ninety, "status"] == "rejected"
    assert result.followup["followed_up"].tolist() == [False]
    assert result.participations["status_90d"].isna().all()


def test_folkuniversitetet_without_90_day_file_is_not_followed_up(raw, ingest):
    raw.register("1277", 3, [register_row(ALI, 3)])
    raw.folkuniversitetet(3, "slut", [fu_end_row(ALI, utfallskod="1")])
    result = ingest(3)
    assert result.followup["followed_up"].tolist() == [False]
    assert result.participations["status_90d"].isna().all()
    assert result.participations["status_end"].tolist() == ["work"]


# --- 4. Åstorps kommun -------------------------------------------------------------------

def test_astorp_end_export(raw, key, expected_key):
    path = raw.astorp(6, [
        astorp_entry(ALI, kommunkod="1277", insatser=[("VALIDERING", 12.5), ("PRAKTIK", 80)], status="ANST"),
        astorp_entry(SARA, kommunkod="1278", insatser=[("COACHNING", None), ("jobbsokning", 3)], status=None,
                     form="YYMMDD-NNNC"),
        astorp_entry(BO, kommunkod="1292", insatser=[], status="  STUD "),
        astorp_entry(ELIN, kommunkod=None, insatser=None, status="OKAND"),
    ])
    doc = json.loads(path.read_text("utf-8"))
    assert doc["deltagare"][1]["status_cykelslut"] is None  # JSON null, as the contract allows

    out = read(raw, "leverantorer/astorp/cykel6.json", providers.read_astorp, key)
    got = out.rows
    assert list(got.columns) == ["source_row", "person_key", "pnr_error", "municipality_code", "status_end"]
    assert list(got["source_row"]) == ["1", "2", "3", "4"]
    assert_keys(got, [expected_key(p) for p in (ALI, SARA, BO, ELIN)])
    assert list(got["municipality_code"].fillna("<NA>")) == ["1277", "1278", "1292", "<NA>"]
    assert list(got["status_end"].fillna("<NA>")) == ["ANST", "<NA>", "STUD", "OKAND"]

    inter = out.interventions.sort_values(["source_row", "intervention"])
    assert list(inter.itertuples(index=False, name=None)) == [
        ("1", "internship", 80.0), ("1", "validation", 12.5),
        ("2", "job_coaching", pd.NA), ("2", "job_search", 3.0),
    ]
    assert str(out.interventions["hours"].dtype) == "Float64"
    assert len(out.issues) == 0
    assert_no_personal_data(got, out.interventions, out.issues)


def test_astorp_followup_export(raw, key, expected_key):
    raw.astorp(7, [astorp_followup(ALI, "FTG"), astorp_followup(SARA, None)], followup=True)
    out = read(raw, "leverantorer/astorp/cykel7_90dagar.json", providers.read_astorp, key)
    got = out.rows
    assert list(got.columns) == ["source_row", "person_key", "pnr_error", "municipality_code", "status_90d"]
    assert_keys(got, [expected_key(ALI), expected_key(SARA)])
    assert list(got["status_90d"].fillna("<NA>")) == ["FTG", "<NA>"]
    assert len(out.interventions) == 0


def test_an_astorp_kommunkod_of_no_project_municipality_is_missing_with_a_warning(raw, key):
    """The providers' frame has <NA> where the claim names no project municipality
    (providers.py); the code as written is only in the warning."""
    raw.astorp(5, [astorp_entry(ALI, kommunkod="1280"), astorp_entry(SARA, kommunkod=" 1278 ")])
    out = read(raw, "leverantorer/astorp/cykel5.json", providers.read_astorp, key)
    assert list(out.rows["municipality_code"].fillna("<NA>")) == ["<NA>", "1278"]
    assert issue_list(out.issues) == [("1", "warning", "invalid_code")]
    assert out.issues["detail"].iloc[0] == "kommunkod '1280' is not a project municipality"


def test_astorp_insatser_of_odd_shapes(raw, key):
    """A typ with spaces around it is its type (as a status or kommunkod is); true is no
    number of hours (JSON's boolean is not 1); an insatser that is no list is ignored with
    a warning, never silently."""
    not_a_list = astorp_entry(BO, insatser=None)
    not_a_list["insatser"] = "VALIDERING"
    raw.astorp(5, [astorp_entry(ALI, insatser=[(" praktik ", 8)]),
                   astorp_entry(SARA, insatser=[("VALIDERING", True)]), not_a_list])
    out = read(raw, "leverantorer/astorp/cykel5.json", providers.read_astorp, key)
    assert list(out.interventions.itertuples(index=False, name=None)) == [
        ("1", "internship", 8.0), ("2", "validation", pd.NA)]
    assert issue_list(out.issues) == [("2", "warning", "invalid_code"), ("3", "warning", "invalid_code")]
    assert "is not a number of hours" in out.issues["detail"].iloc[0]
    assert out.issues["detail"].iloc[1] == "insatser is not a list; ignored"


def test_astorp_null_status_is_unknown_after_ingest(raw, ingest, expected_key):
    raw.register("1277", 5, [register_row(p, 5) for p in (ALI, SARA)])
    raw.astorp(5, [astorp_entry(ALI, status=None), astorp_entry(SARA, status="PROJ")])
    result = ingest(5)
    p = result.participations.set_index("person_key")
    assert p.loc[expected_key(ALI), ["status_end_detail", "status_end"]].tolist() == ["unknown", "unknown"]
    assert p.loc[expected_key(SARA), ["status_end_detail", "status_end"]].tolist() == ["programme", "studies"]
    hours = result.interventions.set_index("participation_id")["hours"]
    assert sorted(hours.tolist()) == [12.5, 12.5]
    assert result.followup["followed_up"].tolist() == [False]


# --- 5. survey ---------------------------------------------------------------------------

def test_survey_reads_anonymous_answers(raw, key):
    raw.survey(3, [
        {"svar_id": "1", "kommunkod": "1277", "okad_mojlighet": "5", "tolk": "ja"},
        {"svar_id": "2", "kommunkod": "1257", "okad_mojlighet": "", "tolk": "nej"},
        {"svar_id": "3", "kommunkod": "1292", "okad_mojlighet": "2", "tolk": ""},
        {"svar_id": "LINDQVISTUS", "kommunkod": "1277", "okad_mojlighet": "4", "tolk": "nej"},
        {"svar_id": "8501012382", "kommunkod": "1277", "okad_mojlighet": "4", "tolk": "nej"},
        {"svar_id": "", "kommunkod": "1277", "okad_mojlighet": "4", "tolk": "nej"},
    ])
    out = read(raw, "enkater/enkat_cykel3.csv", survey.read, key)
    got = out.rows
    assert list(got.columns) == ["source_row", "svar_id", "kommunkod", "okad_mojlighet", "tolk", "svar_id_error"]
    ids = got["svar_id"]
    # keyed, never as written: whatever a sender put in the column stays in the adapter
    assert ids[:5].str.fullmatch(r"[0-9a-f]{16}").all() and ids[:5].is_unique and pd.isna(ids[5])
    assert ids.tolist()[:5] == key.survey_ids(pd.Series(["1", "2", "3", "LINDQVISTUS", "8501012382"])).tolist()
    assert got["svar_id_error"].fillna("").tolist() == ["", "", "", "", "personnummer", ""]
    assert got.drop(columns=["svar_id", "svar_id_error"]).fillna("<NA>").values.tolist()[:3] == [
        ["1", "1277", "5", "ja"], ["2", "1257", "<NA>", "nej"], ["3", "1292", "2", "<NA>"]]


@pytest.mark.parametrize("svar_id,names_one", [
    ("100001", False), ("2010-0003", False), ("E3-000004", False), ("850101", False),  # ids, a date
    ("8501012383", False),  # ten digits, but the check digit is wrong: no personnummer
    ("8501012382", True), ("850101-2382", True), ("19850101-2382", True), ("198501012382", True),
    ("850161-2389", True),  # a samordningsnummer
    ("id 850101+2382.", True), ("12345678901", True), ("1234567890123", True),
    # a review: spaced, dotted or in other digits, they passed
    ("19850101 2382", True), ("19850101.2382", True), ("850101 - 2382", True), ("850101_/2382", True),
    ("１９８５０１０１２３８２", True), ("٨٥٠١٠١٢٣٨٢", True), ("850101\u00a02382", True),
    ("2010 0003", False), ("100001 2", False), ("1.5", False), ("A-100 200", False),
    # dates, times and numbers spaced otherwise stay ids (the fix's review)
    ("2010/03/15/001", False), ("20100315_001", False), ("1277_2010_000123", False), ("20100315 142312", False),
    ("201003151423", False),  # twelve digits, a time stamp and no personnummer (wrong check digit): an id
    ("2010.03.15 14.23.12", False), ("12 345 678 901", False), ("v1.2.3.4.5.6.7.8.9.10", False),
])
def test_a_survey_id_is_rejected_only_when_it_names_a_personnummer(raw, key, svar_id, names_one):
    """The contract gives svar_id no form: any id is an answer's, unless it holds a valid
    personnummer or samordningsnummer, or digits too many to tell (11, or over 12)."""
    from iga_pipeline.personnummer import normalise_one
    assert normalise_one("850101-2382", dt.date(2010, 1, 1))[1] is None  # the test's personnummer
    raw.survey(3, [{"svar_id": svar_id, "kommunkod": "1277", "okad_mojlighet": "4", "tolk": "nej"}])
    got = read(raw, "enkater/enkat_cykel3.csv", survey.read, key).rows
    assert got["svar_id_error"].fillna("").tolist() == (["personnummer"] if names_one else [""])


def test_survey_through_ingest(raw, ingest):
    raw.survey(3, [
        {"svar_id": "1", "kommunkod": "1277", "okad_mojlighet": "5", "tolk": "JA"},
        {"svar_id": "2", "kommunkod": "1257", "okad_mojlighet": "", "tolk": "nej"},
    ])
    responses = ingest(3).survey_responses
    assert responses["increased_chance"].tolist() == [5, pd.NA]
    assert responses["interpreter"].tolist() == [True, False]
    assert responses["municipality_code"].tolist() == ["1277", "1257"]


def test_builder_writes_the_contract_headers(raw):
    """A guard on the builder itself: header lines exactly as raw-deliveries.md prints them."""
    reg = raw.register("1277", 2, [])
    assert reg.read_text("utf-8").splitlines()[0] == (
        "personnummer;fornamn;efternamn;kon;fodelseland;malgrupp;cykel;"
        "inskrivningsdatum;utskrivningsdatum;avbrott_orsak")
    fu = raw.folkuniversitetet(2, "slut", [])
    assert fu.read_bytes().decode("cp1252").splitlines()[0] == ";".join(FU_END_COLUMNS) == (
        "Personnummer;Kommun;Timmar validering;Timmar yrkesprövning;Timmar samhällsorientering;"
        "Timmar jobbsökning;Utfallskod;Utfallsdatum")
    fu90 = raw.folkuniversitetet(2, "90dagar", [])
    assert fu90.read_bytes().decode("cp1252").splitlines()[0] == (
        "Personnummer;Kommun;Utfallskod;Uppföljningsdatum")
    sv = raw.survey(3, [])
    assert sv.read_text("utf-8").splitlines()[0] == "svar_id,kommunkod,okad_mojlighet,tolk"


# --- review finds (third round): what a sender changes without saying so ------------------

def _issues(result, reason: str) -> list[tuple[str, str]]:
    i = result.issues
    return list(zip(i.loc[i["reason"] == reason, "source_row"], i.loc[i["reason"] == reason, "severity"]))


def test_an_astorp_export_without_its_status_key_is_rejected_not_read_as_unknown(raw, ingest):
    """A renamed key ("Status") once loaded a whole export as 'unknown' with no issue; null is
    the contract's unknown, a key not there is not. One entry without it: a warning."""
    raw.register("1277", 5, [register_row(p, 5) for p in (ALI, SARA)])
    raw.astorp(5, [astorp_entry(ALI), astorp_entry(SARA)])
    doc = json.loads((raw.root / raw.astorp_rel(5)).read_text())
    for entry in doc["deltagare"]:
        entry["Status"] = entry.pop("status_cykelslut")
    raw.write_text(raw.astorp_rel(5), json.dumps(doc))
    result = ingest(5)
    audit = result.audit.set_index("source_file").loc[raw.astorp_rel(5)]
    assert (audit["status"], audit["reason"], audit["rows_read"]) == ("rejected", "missing_columns", 2)

    # an entry that names no one does not vouch for the key (a docs audit: it kept the export loaded)
    raw.write_text(raw.astorp_rel(5), json.dumps(
        {**doc, "deltagare": doc["deltagare"] + [{"kommunkod": "1277", "status_cykelslut": "ANST"}]}))
    audit = ingest(5).audit.set_index("source_file").loc[raw.astorp_rel(5)]
    assert (audit["status"], audit["reason"], audit["rows_read"]) == ("rejected", "missing_columns", 3)

    doc["deltagare"][0]["status_cykelslut"] = "ANST"
    raw.write_text(raw.astorp_rel(5), json.dumps(doc))
    result = ingest(5)
    assert _issues(result, "missing_required") == [("2", "warning")]
    assert result.audit.set_index("source_file").loc[raw.astorp_rel(5), "status"] == "loaded"


@pytest.mark.parametrize("no_one", [None, "", "  "], ids=["null", "empty", "spaces"])
def test_an_astorp_entry_whose_pnr_names_no_one_does_not_vouch_for_the_status_key(raw, ingest, no_one):
    """A pnr that is null or blank names no one (the personnummer is missing), as an entry
    without the key does: beside people whose entries all lack the status key, it once kept the
    export loaded, every status read as unknown. An export that names no one at all is not
    rejected for its status key: each entry is, for its missing personnummer."""
    raw.register("1277", 5, [register_row(p, 5) for p in (ALI, SARA)])
    entries = [astorp_entry(p) for p in (ALI, SARA)]
    for entry in entries:
        entry["Status"] = entry.pop("status_cykelslut")
    no_ones = [{"pnr": no_one, "kommunkod": "1277", "status_cykelslut": "ANST"}]
    raw.write_text(raw.astorp_rel(5), json.dumps({"cykel": 5, "deltagare": entries + no_ones}))
    audit = ingest(5).audit.set_index("source_file").loc[raw.astorp_rel(5)]
    assert (audit["status"], audit["reason"], audit["rows_read"]) == ("rejected", "missing_columns", 3)

    raw.write_text(raw.astorp_rel(5), json.dumps({"cykel": 5, "deltagare": no_ones * 2}))
    result = ingest(5)
    assert _issues(result, "missing_required") == [("1", "rejected"), ("2", "rejected")]
    audit = result.audit.set_index("source_file").loc[raw.astorp_rel(5)]
    assert (audit["status"], audit["rows_read"], audit["rows_rejected"]) == ("loaded", 2, 2)


def test_a_list_an_astorp_export_holds_beside_its_own_is_warned_about_not_dropped(raw, ingest):
    """An end-of-cycle export that also carries `uppfoljning` (statuses that count only from
    the `_90dagar` file, raw-deliveries.md §4) or any other list: a trace, as Pethö's rows
    below a sheet's end (H12); the header's scalars and an empty list are no one."""
    raw.register("1277", 5, [register_row(p, 5) for p in (ALI, SARA)])
    raw.astorp(5, [astorp_entry(ALI), astorp_entry(SARA)])
    doc = json.loads((raw.root / raw.astorp_rel(5)).read_text())
    doc["uppfoljning"] = [{"pnr": ALI.pnr12, "status": "ANST"}, {"pnr": SARA.pnr12, "status": "STUD"}]
    doc["19850101-2383"] = {"status": "ANST"}
    doc["exporterad_av"], doc["bilagor"] = "system 2.1", []
    raw.write_text(raw.astorp_rel(5), json.dumps(doc))
    result = ingest(5)

    unread = result.issues[result.issues["reason"] == "unexpected_file"]
    assert unread[["source_file", "severity"]].drop_duplicates().values.tolist() == [[raw.astorp_rel(5), "warning"]]
    assert unread["source_row"].isna().all()
    assert sorted(unread["detail"]) == [
        "the export's '########-####' (an object of 1 key(s)) is not read: "
        "this file's data is its list 'deltagare' only",
        "the export's 'uppfoljning' (a list of 2 item(s)) is not read: this file's data is its list 'deltagare' only",
    ]
    assert result.followup["followed_up"].tolist() == [False]  # the statuses did not count
    assert result.audit.set_index("source_file").loc[raw.astorp_rel(5), "status"] == "loaded"
    assert_no_personal_data(result.issues)

    # a review: a list under a header key, and a key given twice (json keeps the last, empty one)
    text = json.dumps({"leverantor": "Åstorps kommun", "cykel": 5, "levererad": [{"status": "ASOK"}],
                       "deltagare": doc["deltagare"], "uppfoljning": doc["uppfoljning"]})
    raw.write_text(raw.astorp_rel(5), text[:-1] + ', "uppfoljning": []}')
    details = ingest(5).issues.query("reason == 'unexpected_file'")["detail"].tolist()
    # (decoded whole, for the repeat: the pairs kept for this leave out the participant list)
    from iga_pipeline.sources import astorp

    d = classify(raw.root, raw.root / raw.astorp_rel(5))
    _, _, pairs = astorp._parse(text[:-1] + ', "uppfoljning": []}', "deltagare", astorp._AstorpColumns(d), dict)
    assert [k for k, _ in pairs] == ["leverantor", "cykel", "levererad", "uppfoljning", "uppfoljning"]
    assert sorted(d.split(" is not read")[0] for d in details) == [
        "the export's 'levererad' (a list of 1 item(s))", "the export's 'uppfoljning' (a list of 2 item(s))"]


def _petho_edit(raw, edit) -> None:
    import openpyxl

    path = raw.root / raw.PETHO_REL
    wb = openpyxl.load_workbook(path)
    edit(wb)
    wb.save(path)


def test_a_petho_sheet_with_a_repeated_status_column_or_two_sheets_of_one_municipality_is_rejected(raw, ingest):
    """Which column, or which sheet, holds the statuses would be a guess: the first was used."""
    raw.register("1277", 1, [register_row(ALI, 1)])
    raw.petho({"Åstorp": [petho_row(ALI, status_90d="Anställd")]})

    def repeat_column(wb):
        wb["Åstorp"].cell(row=4, column=7, value="Status 90 dagar")

    _petho_edit(raw, repeat_column)
    audit = ingest(1).audit.set_index("source_file").loc[raw.PETHO_REL]
    # rows_read: the data rows the rejection holds back, counted (decisions.md), as for a CSV
    assert (audit["status"], audit["reason"], audit["rows_read"]) == ("rejected", "unreadable_file", 1)

    raw.petho({"Åstorp": [petho_row(ALI, status_90d="Anställd")]})

    def second_sheet(wb):
        wb.copy_worksheet(wb["Åstorp"]).title = "ÅSTORP "

    _petho_edit(raw, second_sheet)
    audit = ingest(1).audit.set_index("source_file").loc[raw.PETHO_REL]
    assert (audit["status"], audit["reason"], audit["rows_read"]) == ("rejected", "unreadable_file", 2)


def test_petho_names_and_texts_in_decomposed_unicode_are_the_same_text(raw, ingest, expected_key):
    import unicodedata

    nfd = lambda t: unicodedata.normalize("NFD", t)  # noqa: E731
    raw.register("1292", 1, [register_row(ALI, 1)])
    raw.petho({nfd("Ängelholm"): [petho_row(ALI, status_end=nfd("Anställd"), insatser=nfd("Samhällsorientering"))]})
    result = ingest(1)
    p = result.participations.set_index("person_key")
    assert p.loc[expected_key(ALI), "status_end_detail"] == "employment"
    assert result.interventions["intervention"].tolist() == ["civic_orientation"]
    assert result.issues.empty, result.issues


def test_a_survey_answer_id_with_other_answers_counts_nowhere_and_a_repeat_counts_once(raw, ingest):
    raw.survey(3, [
        {"svar_id": "1", "kommunkod": "1277", "okad_mojlighet": "5", "tolk": "nej"},
        {"svar_id": "2", "kommunkod": "1292", "okad_mojlighet": "5", "tolk": "nej"},
        {"svar_id": "1", "kommunkod": "1277", "okad_mojlighet": "1", "tolk": "ja"},
        {"svar_id": "2", "kommunkod": "1292", "okad_mojlighet": "5", "tolk": "NEJ"},
        {"svar_id": "1", "kommunkod": "1277", "okad_mojlighet": "5", "tolk": "nej"},  # a copy of row 1
    ])
    result = ingest(3)
    assert len(result.survey_responses) == 1 and result.survey_responses["municipality_code"].tolist() == ["1292"]
    # the copy of a conflicting answer counts nowhere either, and is said to (a review saw it
    # called "counted once")
    assert _issues(result, "conflicting_duplicate") == [("1", "rejected"), ("3", "rejected"), ("5", "rejected")]
    assert _issues(result, "duplicate_row") == [("4", "warning")]
    audit = result.audit.set_index("source_file").loc["enkater/enkat_cykel3.csv"]
    assert (audit["rows_read"], audit["rows_loaded"], audit["rows_rejected"], audit["rows_duplicate"]) == (5, 1, 3, 1)


def test_a_petho_workbook_with_formulas_not_computed_is_rejected(raw, ingest):
    """openpyxl writes formulas without their results, and reads such a cell as empty: cycle 1
    was then silently not followed up (a review's find)."""
    raw.register("1277", 1, [register_row(ALI, 1), register_row(SARA, 1)])
    raw.petho({"Åstorp": [petho_row(ALI, status_90d="Anställd"), petho_row(SARA, status_90d="Studier")]})

    def formulas(wb):
        ws = wb["Åstorp"]
        ws["E5"] = '="Anställd"'
        ws["E6"] = "=D6"

    _petho_edit(raw, formulas)
    audit = ingest(1).audit.set_index("source_file").loc[raw.PETHO_REL]
    assert (audit["status"], audit["reason"], audit["rows_read"]) == ("rejected", "unreadable_file", 2)
    i = ingest(1).issues
    assert "2 formula cell(s) without a stored value" in i.loc[i["source_row"].isna(), "detail"].iloc[0]


@pytest.mark.parametrize("case", ["header_by_formula", "formula_and_a_missing_column"])
def test_a_petho_sheet_missing_a_column_with_a_formula_not_computed_says_the_formula(raw, ingest, case):
    """A header written as a formula (`="Personnr"`) reads as empty, so the column looked
    missing: `missing_columns` for a column in plain view. A formula without a stored result
    rejects the sheet before a column missing is named (the order test_hostile_files.py
    expects; its generator found the second case)."""
    raw.register("1277", 1, [register_row(ALI, 1), register_row(SARA, 1)])
    raw.petho({"Åstorp": [petho_row(ALI, status_90d="Anställd"), petho_row(SARA, status_90d="Studier")]})

    def edit(wb):
        ws = wb["Åstorp"]
        if case == "header_by_formula":
            ws["A4"] = '="Personnr"'
        else:
            ws["B5"] = "=A1"         # in Namn, a column not read
            ws["A4"] = "Namn"         # and Personnr missing

    _petho_edit(raw, edit)
    result = ingest(1)
    audit = result.audit.set_index("source_file").loc[raw.PETHO_REL]
    assert (audit["status"], audit["reason"], audit["rows_read"]) == ("rejected", "unreadable_file", 2)
    detail = result.issues.loc[result.issues["source_file"] == raw.PETHO_REL, "detail"].item()
    assert "1 formula cell(s) without a stored value" in detail


def test_folkuniversitetet_hours_are_read_with_the_decimal_comma_only(raw, key):
    """'1.234' could be a thousand: a point or an exponent is refused with a warning (they were
    read as decimals); digits grouped by spaces are read (they were refused)."""
    raw.folkuniversitetet(2, "slut", [
        fu_end_row(ALI, hours=("1 234,5", "1.234", "1e3", "12,5")),
        fu_end_row(SARA, hours=("1\xa0234", "", "12.5", ",5")),
        # past the clock's hours, and digits beyond what a float holds: refused too
        fu_end_row(ALI, hours=("4 417", "9" * 400, "4 416", ""))])
    out = read(raw, "leverantorer/folkuniversitetet/cykel2_slut.csv", providers.read_folkuniversitetet, key)
    assert sorted(out.interventions["hours"].tolist()) == [0.5, 12.5, 1234.0, 1234.5, 4416.0]
    assert out.issues["detail"].str.contains("is not a number of hours").sum() == 5


def test_hours_have_at_most_two_decimals(raw, key):
    """More decimals hold more digits than hours need: 1,7101124126 was stored as hours, a
    personnummer after its first digit (a review's find, 2026-12-02). Refused with a warning,
    as other unreadable hours are: a Folkuniversitetet intervention is dropped, an Åstorp one
    kept with unknown hours."""
    raw.folkuniversitetet(2, "slut", [fu_end_row(ALI, hours=("12,25", "1,7101124126", "0,125", ""))])
    out = read(raw, "leverantorer/folkuniversitetet/cykel2_slut.csv", providers.read_folkuniversitetet, key)
    assert out.interventions["hours"].tolist() == [12.25]
    assert out.issues["detail"].str.contains("at most two decimals").sum() == 2
    assert not out.issues["detail"].str.contains("7101124126").any()
    raw.astorp(5, [astorp_entry(ALI, insatser=[("VALIDERING", 12.25), ("PRAKTIK", 0.7202134115)])])
    out = read(raw, "leverantorer/astorp/cykel5.json", providers.read_astorp, key)
    assert out.interventions["hours"].astype(object).where(out.interventions["hours"].notna(), None).tolist() == [12.25, None]
    assert out.issues["detail"].str.contains("at most two decimals").sum() == 1


def test_hours_with_a_floating_point_tail_are_their_hundredth(raw, key):
    """A review's find: 0.30000000000000004, what a program writes for 0.1 + 0.2, was refused
    as more than two decimals and the hours were lost. Within 1e-9 of a hundredth a number is
    that hundredth, stored as it; 0.3001 still has too many decimals."""
    raw.astorp(5, [astorp_entry(ALI, insatser=[("VALIDERING", 0.1 + 0.2), ("PRAKTIK", 12.5 + 1e-12),
                                               ("COACHNING", 0.3001), ("JOBBSOKNING", 0.3 - 0.1 - 0.2),
                                               ("YRKESPROVNING", 4416.000000000001)])])
    assert "0.30000000000000004" in (raw.root / "leverantorer/astorp/cykel5.json").read_text()
    out = read(raw, "leverantorer/astorp/cykel5.json", providers.read_astorp, key)
    hours = out.interventions["hours"].astype(object).where(out.interventions["hours"].notna(), None).tolist()
    assert hours == [0.3, 12.5, None, 0.0, 4416.0]  # -2.8e-17 is 0, 4416 plus a tail is 4416
    assert str(hours[3]) == "0.0"  # not -0.0
    assert out.issues["detail"].str.contains("at most two decimals").sum() == 1


def test_a_petho_sheet_with_merged_cells_in_its_rows_is_rejected(raw, ingest):
    """Merged status cells were read as empty below their first row: unknown statuses, with a
    detail saying the provider reported them so (a review's find). A merged title is fine."""
    raw.register("1277", 1, [register_row(ALI, 1), register_row(SARA, 1)])
    raw.petho({"Åstorp": [petho_row(ALI, status_90d="Anställd"), petho_row(SARA, status_90d="Anställd")]})
    _petho_edit(raw, lambda wb: wb["Åstorp"].merge_cells("A1:F1"))
    assert ingest(1).audit.set_index("source_file").loc[raw.PETHO_REL, "status"] == "loaded"
    _petho_edit(raw, lambda wb: wb["Åstorp"].merge_cells("E5:E6"))
    audit = ingest(1).audit.set_index("source_file").loc[raw.PETHO_REL]
    assert (audit["status"], audit["reason"], audit["rows_read"]) == ("rejected", "unreadable_file", 2)


def test_merged_cells_that_hide_nothing_read_leave_a_petho_sheet_loaded(raw, ingest):
    """A review's find: any merge from the header row down rejected the workbook, so a footnote
    merged below the data, or comments merged over columns not read, made every cycle-1
    status unknown. Only a merge over the columns read, in the data's rows, hides a value."""
    raw.register("1277", 1, [register_row(ALI, 1), register_row(SARA, 1)])
    raw.petho({"Åstorp": [petho_row(ALI, status_90d="Anställd"), petho_row(SARA, status_90d="Studier")]})

    def footnote_and_comments(wb):
        ws = wb["Åstorp"]
        ws["A9"] = "Källa: Pethö Consulting"
        ws.merge_cells("A9:F9")      # below the empty row that ends the data
        ws.merge_cells("F4:H4")      # the Kommentar header over two empty columns
        ws.merge_cells("F5:F6")      # one comment for both rows: Kommentar is not read
        ws.merge_cells("A5:B5")      # Personnr first: only Namn, not read, is hidden

    _petho_edit(raw, footnote_and_comments)
    result = ingest(1)
    assert result.audit.set_index("source_file").loc[raw.PETHO_REL, "status"] == "loaded"
    assert sorted(result.participations["status_90d"]) == ["studies", "work"]
    _petho_edit(raw, lambda wb: wb["Åstorp"].merge_cells("C6:D6"))  # Insatser over a status
    audit = ingest(1).audit.set_index("source_file").loc[raw.PETHO_REL]
    assert (audit["status"], audit["reason"]) == ("rejected", "unreadable_file")


@pytest.mark.parametrize("case", ["tall_row", "two_row_header", "header_from_above"])
def test_merged_cells_that_make_the_data_end_or_hide_a_header_still_reject_the_sheet(raw, ingest, case):
    """A fix review's finds: merges can themselves empty the row that seems to end the data
    (row 5 made one tall row over an empty row 6: Sára, on row 7, was dropped with a warning),
    and a header cell hidden by a merge gave `missing_columns` for a column in plain view."""
    raw.register("1277", 1, [register_row(ALI, 1), register_row(SARA, 1)])
    raw.petho({"Åstorp": [petho_row(ALI, status_90d="Anställd"), petho_row(SARA, status_90d="Anställd")]})

    def edit(wb):
        ws = wb["Åstorp"]
        if case == "tall_row":
            ws.insert_rows(6)
            for col in "ABCDEF":
                ws.merge_cells(f"{col}5:{col}6")
        elif case == "two_row_header":
            ws.insert_rows(5)
            for col in "ABCDEF":
                ws.merge_cells(f"{col}4:{col}5")
        else:
            ws["E3"], ws["E4"] = ws["E4"].value, None  # as Excel keeps it: in the range's first cell
            ws.merge_cells("E3:E4")

    _petho_edit(raw, edit)
    result = ingest(1)
    audit = result.audit.set_index("source_file").loc[raw.PETHO_REL]
    assert (audit["status"], audit["reason"]) == ("rejected", "unreadable_file")
    detail = result.issues.loc[result.issues["source_file"] == raw.PETHO_REL, "detail"].item()
    assert "merged cells over the rows and columns read" in detail, detail


def test_a_petho_comment_in_rich_text_is_not_taken_for_a_formula(raw, ingest):
    """A review's find: a comment with a bold word, stored inline (as openpyxl and other
    programs write rich text), holds <family val="2"/>, which the search for a formula's <f
    matched: the workbook was rejected whole as holding formulas without a stored value."""
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont

    raw.register("1277", 1, [register_row(ALI, 1)])
    raw.petho({"Åstorp": [petho_row(ALI, status_90d="Anställd")]})

    def bold_comment(wb):
        wb["Åstorp"]["F5"] = CellRichText(TextBlock(InlineFont(b=True, rFont="Calibri", family=2), "Obs:"),
                                          " ring tillbaka")

    _petho_edit(raw, bold_comment)
    with zipfile.ZipFile(raw.root / raw.PETHO_REL) as z:
        sheets = b"".join(z.read(n) for n in z.namelist() if n.startswith("xl/worksheets/sheet"))
    assert b"<family" in sheets and b"<f>" not in sheets  # the case as the review found it
    result = ingest(1)
    assert result.audit.set_index("source_file").loc[raw.PETHO_REL, "status"] == "loaded"
    assert result.participations["status_90d"].tolist() == ["work"]


def test_the_staged_interventions_model_refuses_hours_no_adapter_gives():
    """The staged model checks HOURS_RULE again (a blocking asset check): hours over 4,416 or
    with more than two decimals never reach the warehouse, whichever adapter let them by."""
    import pandera.errors

    from iga_pipeline.validation import Intervention

    frame = pd.DataFrame({"participation_id": ["a", "b", "c", "d"], "intervention": "validation",
                          "hours": [12.25, 0.29, None, 4416.0]})
    Intervention.validate(frame)
    for hours in (0.7202134115, 4416.5):
        with pytest.raises(pandera.errors.SchemaError):
            Intervention.validate(frame.assign(hours=[12.25, hours, None, 1.0]))


def test_petho_counts_only_openpyxl_remarks_not_another_threads_warnings(raw, key, caplog, recwarn):
    """The workbook's reader records openpyxl's warnings to count them (they may quote cells),
    but Python's record is the whole process's: a warning of another thread meanwhile (Great
    Expectations' deprecations, imported by the warm-up thread during the ingest; they showed
    as a test's '2 warnings' in some runs) was counted as openpyxl's remark about the workbook."""
    import threading
    import warnings

    write_petho(raw)
    reading = threading.Event()
    reading.set()

    def other_thread():
        while reading.is_set():
            warnings.warn("another thread's deprecation", DeprecationWarning, stacklevel=1)

    other = threading.Thread(target=other_thread)
    with caplog.at_level("WARNING"):  # recwarn keeps the other thread's warnings outside the reader's record
        other.start()
        try:
            out = read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
        finally:
            reading.clear()
            other.join()
    assert len(out.rows) == 4
    assert "remark(s) of openpyxl" not in caplog.text

    import openpyxl  # and a remark of openpyxl's own is still counted

    workbook = raw.root / "leverantorer" / "petho" / "cykel1_resultat.xlsx"
    wb = openpyxl.load_workbook(workbook)
    wb["Båstad"]["A5"].number_format = "yyyy-mm-dd"  # ELIN's personnummer, a number: no date
    wb.save(workbook)
    caplog.clear()
    with caplog.at_level("WARNING"):
        read(raw, "leverantorer/petho/cykel1_resultat.xlsx", providers.read_petho, key)
    assert "1 remark(s) of openpyxl" in caplog.text
