"""Every row-level reason of warehouse.md, through `ingest_cycle` (rules R4-R9).

Each test writes a tiny raw root, ingests one cycle and checks the exact
issue (reason, severity, source_file, source_row), what was counted, and the
audit of every file (the `ingest` fixture asserts read = loaded + rejected +
duplicates for every file; the tests check the numbers themselves as well).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pandas as pd
import pytest
from conftest import expected_name_id
from iga_pipeline import staging
from iga_pipeline.sources.masking import safe_path, safe_value
from rawfiles import (
    FU_END_COLUMNS, PETHO_COLUMNS, REGISTER_COLUMNS, Person, astorp_entry, astorp_followup, fu_90_row, fu_end_row, people, petho_row, register_row,
)

A, B, C, D = people(4)
REG1, REG2, REG5 = ("kommuner/1277/deltagare_cykel1.csv", "kommuner/1277/deltagare_cykel2.csv",
                    "kommuner/1277/deltagare_cykel5.csv")
REG2_BASTAD = "kommuner/1278/deltagare_cykel2.csv"
FU2, FU2_90 = ("leverantorer/folkuniversitetet/cykel2_slut.csv",
               "leverantorer/folkuniversitetet/cykel2_90dagar.csv")
PETHO = "leverantorer/petho/cykel1_resultat.xlsx"
AST5, AST5_90 = "leverantorer/astorp/cykel5.json", "leverantorer/astorp/cykel5_90dagar.json"
SURVEY3 = "enkater/enkat_cykel3.csv"


# Tests without a provider delivery: every completer is also a missing_outcome
# warning (tested on its own below), which these tests leave aside.
NO_PROVIDER = ("missing_outcome",)


def issues(result, reason: str | None = None, *, ignore: tuple[str, ...] = ()) -> list[tuple]:
    """(source_file, source_row, severity, reason) of the issues, sorted."""
    i = result.issues
    if reason is not None:
        i = i[i["reason"] == reason]
    i = i[~i["reason"].isin(ignore)]
    return sorted(i[["source_file", "source_row", "severity", "reason"]].itertuples(index=False, name=None))


def audit(result, source_file: str) -> tuple:
    """(status, rows_read, rows_loaded, rows_rejected, rows_duplicate) of one file."""
    a = result.audit.set_index("source_file").loc[source_file]
    return (a["status"], a["rows_read"], a["rows_loaded"], a["rows_rejected"], a["rows_duplicate"])


def keys(result) -> set[str]:
    return set(result.participations["person_key"])


def wrong_check_digit(pnr: str) -> str:
    return pnr[:-1] + str((int(pnr[-1]) + 1) % 10)


def with_luhn(nine: str, sep: str = "-") -> str:
    from iga_pipeline.personnummer import luhn_check_digit
    return f"{nine[:6]}{sep}{nine[6:]}{luhn_check_digit(nine)}"


# --- R4: invalid register rows ------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    wrong_check_digit(A.pnr()),                 # Luhn
    with_luhn("850230123"),                     # 30 February
    with_luhn("851301123"),                     # month 13
    "85-01-01-2383", "abc", "8501012383X", "19850101+2383",  # not a recognised form
], ids=["check-digit", "feb-30", "month-13", "dashes", "letters", "trailing-letter", "12-digit-plus"])
def test_register_invalid_personnummer(raw, ingest, expected_key, bad):
    raw.register("1277", 2, [register_row(B, 2), register_row(A, 2, personnummer=bad), register_row(C, 2)])
    result = ingest(2)
    assert issues(result, ignore=NO_PROVIDER) == [(REG2, "2", "rejected", "invalid_personnummer")]
    assert keys(result) == {expected_key(B), expected_key(C)}
    assert audit(result, REG2) == ("loaded", 3, 2, 1, 0)
    assert not result.issues["detail"].str.contains(bad, regex=False).any()  # never echoes the value


def test_a_register_row_that_ends_on_its_enrolment_day_is_loaded(raw, ingest, expected_key):
    """Only an exit *before* the enrolment is an invalid date: leaving on the day one enrols
    is a (short) participation (a review's mutation rejected it, unseen)."""
    raw.register("1277", 2, [register_row(A, 2, inskrivningsdatum="2009-07-05", utskrivningsdatum="2009-07-05",
                                          avbrott_orsak="flytt"),
                             register_row(B, 2)])
    result = ingest(2)
    assert issues(result, ignore=NO_PROVIDER) == []
    assert keys(result) == {expected_key(A), expected_key(B)}
    assert audit(result, REG2) == ("loaded", 2, 2, 0, 0)


@pytest.mark.parametrize("field,value", [
    ("inskrivningsdatum", "2009-13-01"),
    ("inskrivningsdatum", "2009-02-30"),
    ("inskrivningsdatum", "05/07/2009"),
    ("inskrivningsdatum", "2009-7-5"),
    ("utskrivningsdatum", "2009-12-32"),
    ("utskrivningsdatum", "igår"),
    ("utskrivningsdatum", "2009-07-01"),  # before the enrolment date 2009-07-05
])
def test_register_invalid_date(raw, ingest, expected_key, field, value):
    raw.register("1277", 2, [register_row(A, 2, **{field: value}), register_row(B, 2)])
    result = ingest(2)
    assert issues(result, ignore=NO_PROVIDER) == [(REG2, "1", "rejected", "invalid_date")]
    assert keys(result) == {expected_key(B)}
    assert audit(result, REG2) == ("loaded", 2, 1, 1, 0)
    detail = result.issues.loc[result.issues["reason"] == "invalid_date", "detail"].item()
    if value == "2009-07-01":  # a check of the whole row: said once, not once per column
        assert detail == "utskrivningsdatum is before inskrivningsdatum"
    else:
        assert detail == f"{field} is not a date YYYY-MM-DD (got '{safe_value(value, date=True)}')"  # 'igår' described


@pytest.mark.parametrize("field,value", [
    ("kon", "X"), ("kon", "kvinna"), ("malgrupp", "asyl"), ("avbrott_orsak", "semester"),
    ("fodelseland", "XX"), ("fodelseland", "Irak"),
])
def test_register_invalid_code(raw, ingest, expected_key, field, value):
    raw.register("1277", 2, [register_row(B, 2), register_row(C, 2), register_row(A, 2, **{field: value})])
    result = ingest(2)
    assert issues(result, ignore=NO_PROVIDER) == [(REG2, "3", "rejected", "invalid_code")]
    assert keys(result) == {expected_key(B), expected_key(C)}
    assert audit(result, REG2) == ("loaded", 3, 2, 1, 0)


def test_a_country_code_iso_withdrew_after_the_project_began_is_valid(raw, ingest, expected_key):
    """A review's find: AN (the Netherlands Antilles) was ISO 3166-1's until 2010-12-15, so a
    register of 2009-2010 may use it; it was rejected as invalid_code and not counted."""
    raw.register("1277", 2, [register_row(A, 2, fodelseland="AN")])
    result = ingest(2)
    assert issues(result, ignore=NO_PROVIDER) == []
    assert result.participations.set_index("person_key").loc[expected_key(A), "birth_region"] == "outside_europe"


@pytest.mark.parametrize("field", ["personnummer", "kon", "malgrupp", "cykel", "inskrivningsdatum"])
def test_register_missing_required(raw, ingest, expected_key, field):
    raw.register("1277", 2, [register_row(A, 2, **{field: ""}), register_row(B, 2)])
    result = ingest(2)
    assert issues(result, ignore=NO_PROVIDER) == [(REG2, "1", "rejected", "missing_required")]
    assert keys(result) == {expected_key(B)}
    assert audit(result, REG2) == ("loaded", 2, 1, 1, 0)


@pytest.mark.parametrize("fields", [3, 9, 11], ids=["3-fields", "9-fields", "11-fields"])
def test_register_row_with_the_wrong_number_of_fields_is_missing_required(raw, ingest, expected_key, fields):
    full = list(register_row(A, 2).values())  # 10 fields
    row = full[:fields] if fields < 10 else full + ["extra"] * (fields - 10)
    raw.register("1277", 2, [register_row(B, 2), row, register_row(C, 2)])
    result = ingest(2)
    assert issues(result, ignore=NO_PROVIDER) == [(REG2, "2", "rejected", "missing_required")]
    assert keys(result) == {expected_key(B), expected_key(C)}
    assert audit(result, REG2) == ("loaded", 3, 2, 1, 0)


def test_register_cycle_mismatch(raw, ingest, expected_key):
    raw.register("1277", 2, [register_row(A, 2), register_row(B, 2, cykel="3"), register_row(C, 2, cykel="02")])
    result = ingest(2)
    assert issues(result, ignore=NO_PROVIDER) == [(REG2, "2", "rejected", "cycle_mismatch"),
                              (REG2, "3", "rejected", "cycle_mismatch")]
    assert keys(result) == {expected_key(A)}
    assert audit(result, REG2) == ("loaded", 3, 1, 2, 0)


def test_one_issue_per_row_even_when_several_checks_fail(raw, ingest):
    raw.register("1277", 2, [register_row(A, 2, personnummer="x", kon="X", inskrivningsdatum="?")])
    result = ingest(2)
    assert issues(result) == [(REG2, "1", "rejected", "invalid_personnummer")]
    assert audit(result, REG2) == ("loaded", 1, 0, 1, 0)


def test_a_row_failing_several_checks_is_named_by_the_first_reason_of_the_priority(raw, ingest):
    """validation.REASON_PRIORITY: missing_required before cycle_mismatch, cycle_mismatch before
    invalid_date, invalid_date before invalid_code; the detail says every check, in that order
    (a review's mutation swapped two of them, unseen)."""
    raw.register("1277", 2, [register_row(A, 2, kon="", cykel="3"),
                             register_row(B, 2, cykel="3", inskrivningsdatum="igår"),
                             register_row(C, 2, inskrivningsdatum="igår", kon="X")])
    result = ingest(2)
    assert issues(result) == [(REG2, "1", "rejected", "missing_required"),
                              (REG2, "2", "rejected", "cycle_mismatch"),
                              (REG2, "3", "rejected", "invalid_date")]
    assert result.issues.set_index("source_row").loc["2", "detail"] == (
        "cykel differs from the file name's cycle 2 (got '3'); "
        "inskrivningsdatum is not a date YYYY-MM-DD (got '<text of 4 characters>')")


# --- R4: invalid provider rows --------------------------------------------------------------

def test_provider_invalid_personnummer_in_every_provider(raw, ingest):
    bad = wrong_check_digit(A.pnr("YYMMDDNNNC"))
    raw.register("1277", 1, [register_row(p, 1) for p in (A, B)])
    raw.petho({"Åstorp": [petho_row(B), petho_row(None, personnr=int(bad)), petho_row(None, personnr="12345")]})
    raw.register("1277", 2, [register_row(p, 2) for p in (A, B)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A, personnummer=bad), fu_end_row(B)])
    raw.register("1277", 5, [register_row(p, 5) for p in (A, B)])
    raw.astorp(5, [astorp_entry(B), astorp_entry(A, pnr="19850101-238")])

    r1, r2, r5 = ingest(1), ingest(2), ingest(5)
    assert issues(r1, "invalid_personnummer") == [(PETHO, "Åstorp!6", "rejected", "invalid_personnummer"),
                                                  (PETHO, "Åstorp!7", "rejected", "invalid_personnummer")]
    assert audit(r1, PETHO) == ("loaded", 3, 1, 2, 0)
    assert issues(r2, "invalid_personnummer") == [(FU2, "1", "rejected", "invalid_personnummer")]
    assert audit(r2, FU2) == ("loaded", 2, 1, 1, 0)
    assert issues(r5, "invalid_personnummer") == [(AST5, "2", "rejected", "invalid_personnummer")]
    assert audit(r5, AST5) == ("loaded", 2, 1, 1, 0)


def test_provider_missing_personnummer(raw, ingest):
    raw.register("1277", 2, [register_row(A, 2)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A), fu_end_row(B, personnummer="")])
    raw.register("1277", 1, [register_row(A, 1)])
    raw.petho({"Åstorp": [petho_row(None, personnr=None, status_end="Studier"), petho_row(A)]})
    raw.register("1277", 5, [register_row(A, 5)])
    raw.astorp(5, [astorp_entry(A), {"kommunkod": "1277", "status_cykelslut": "ANST"},
                   astorp_entry(None, pnr="  ")])
    r1, r2, r5 = ingest(1), ingest(2), ingest(5)
    assert issues(r2, "missing_required") == [(FU2, "2", "rejected", "missing_required")]
    assert issues(r1, "missing_required") == [(PETHO, "Åstorp!5", "rejected", "missing_required")]
    assert issues(r5, "missing_required") == [(AST5, "2", "rejected", "missing_required"),
                                              (AST5, "3", "rejected", "missing_required")]
    assert audit(r5, AST5) == ("loaded", 3, 1, 2, 0)


def test_provider_unknown_status_is_invalid_code_and_the_completer_becomes_unknown(raw, ingest, expected_key):
    raw.register("1277", 1, [register_row(p, 1) for p in (A, B)])
    raw.petho({"Åstorp": [petho_row(A, status_end="Pensionär"), petho_row(B, status_90d="Anställd ja")]})
    raw.register("1277", 2, [register_row(A, 2)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A, utfallskod="8")])
    raw.register("1277", 5, [register_row(p, 5) for p in (A, B)])
    raw.astorp(5, [astorp_entry(A, status="anst"), astorp_entry(B, status="ANSTÄLLD")])

    r1, r2, r5 = ingest(1), ingest(2), ingest(5)
    assert issues(r1, "invalid_code") == [(PETHO, "Åstorp!5", "rejected", "invalid_code"),
                                          (PETHO, "Åstorp!6", "rejected", "invalid_code")]
    assert issues(r2, "invalid_code") == [(FU2, "1", "rejected", "invalid_code")]
    assert issues(r5, "invalid_code") == [(AST5, "1", "rejected", "invalid_code"),
                                          (AST5, "2", "rejected", "invalid_code")]
    # R8: the completers have no valid status: unknown, each with a missing_outcome warning.
    assert r2.participations["status_end"].tolist() == ["unknown"]
    assert issues(r2, "missing_outcome") == [(REG2, "1", "warning", "missing_outcome")]
    assert set(r5.participations["status_end_detail"]) == {"unknown"}
    assert audit(r1, PETHO) == ("loaded", 2, 0, 2, 0)


def test_survey_rejections(raw, ingest, key):
    raw.survey(3, [
        {"svar_id": "1", "kommunkod": "1277", "okad_mojlighet": "4", "tolk": "ja"},
        {"svar_id": "2", "kommunkod": "9999", "okad_mojlighet": "4", "tolk": "ja"},
        {"svar_id": "3", "kommunkod": "1277", "okad_mojlighet": "6", "tolk": "nej"},
        {"svar_id": "4", "kommunkod": "1277", "okad_mojlighet": "1", "tolk": "kanske"},
        {"svar_id": "", "kommunkod": "1277", "okad_mojlighet": "1", "tolk": "nej"},
        {"svar_id": "1", "kommunkod": "1277", "okad_mojlighet": "4", "tolk": "ja"},
    ])
    result = ingest(3)
    assert issues(result) == [
        (SURVEY3, "2", "rejected", "invalid_code"), (SURVEY3, "3", "rejected", "invalid_code"),
        (SURVEY3, "4", "rejected", "invalid_code"), (SURVEY3, "5", "rejected", "missing_required"),
        (SURVEY3, "6", "warning", "duplicate_row"),
    ]
    assert result.survey_responses["response_id"].tolist() == key.survey_ids(pd.Series(["1"])).tolist()
    assert audit(result, SURVEY3) == ("loaded", 6, 1, 4, 1)


def test_a_survey_answer_without_its_municipality_is_missing_required(raw, ingest, key):
    """kommunkod is required: an answer that does not say its municipality counts nowhere
    (a review's mutation made the column optional, and no test saw it)."""
    raw.survey(3, [{"svar_id": "1", "kommunkod": "1277", "okad_mojlighet": "4", "tolk": "ja"},
                   {"svar_id": "2", "kommunkod": "", "okad_mojlighet": "5", "tolk": "nej"}])
    result = ingest(3)
    assert issues(result) == [(SURVEY3, "2", "rejected", "missing_required")]
    assert result.issues["detail"].tolist() == ["kommunkod is empty"]
    assert result.survey_responses["response_id"].tolist() == key.survey_ids(pd.Series(["1"])).tolist()
    assert audit(result, SURVEY3) == ("loaded", 2, 1, 1, 0)


# --- R5: conflicting enrollment ---------------------------------------------------------------

def test_conflicting_enrollment_in_two_municipalities(raw, ingest, expected_key):
    raw.register("1277", 2, [register_row(A, 2), register_row(B, 2)])
    raw.register("1278", 2, [register_row(C, 2), register_row(A, 2, form="YYYYMMDDNNNC")])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A), fu_end_row(B)])
    result = ingest(2)
    assert issues(result, "conflicting_enrollment") == [
        (REG2, "1", "rejected", "conflicting_enrollment"),
        (REG2_BASTAD, "2", "rejected", "conflicting_enrollment")]
    assert keys(result) == {expected_key(B), expected_key(C)}  # A is counted nowhere
    # The provider row for A has no accepted register row left (R6).
    assert issues(result, "orphan_outcome") == [(FU2, "1", "rejected", "orphan_outcome")]
    detail = result.issues.loc[result.issues["reason"] == "conflicting_enrollment", "detail"].iloc[0]
    assert REG2 in detail and REG2_BASTAD in detail
    assert audit(result, REG2) == ("loaded", 2, 1, 1, 0)
    assert audit(result, REG2_BASTAD) == ("loaded", 2, 1, 1, 0)
    assert audit(result, FU2) == ("loaded", 2, 1, 1, 0)


def test_conflicting_enrollment_two_differing_rows_in_one_file(raw, ingest, expected_key):
    raw.register("1277", 2, [
        register_row(A, 2, kon="K"), register_row(B, 2),
        register_row(A, 2, kon="M"), register_row(A, 2, kon="K", form="YYYYMMDD-NNNC", fornamn="Other"),
    ])
    result = ingest(2)
    # Row 3 differs from row 1 in kon, row 4 in the name (and in how the personnummer is
    # written): all three are rejected, each a differing row of one participation.
    assert issues(result, ignore=NO_PROVIDER) == [
        (REG2, "1", "rejected", "conflicting_enrollment"),
        (REG2, "3", "rejected", "conflicting_enrollment"),
        (REG2, "4", "rejected", "conflicting_enrollment"),
    ]
    assert keys(result) == {expected_key(B)}
    assert audit(result, REG2) == ("loaded", 4, 1, 3, 0)


def test_an_identical_copy_of_a_conflicting_register_row_is_rejected_with_it(raw, ingest, expected_key):
    """R5: a participation with differing register rows is not counted; an identical copy of
    one of those rows is rejected as conflicting too, not collapsed as a duplicate (a review's
    mutation made it a `duplicate_row` warning and no test saw it)."""
    raw.register("1277", 2, [register_row(A, 2), register_row(A, 2), register_row(B, 2),
                             register_row(A, 2, kon="M")])
    result = ingest(2)
    assert issues(result, ignore=NO_PROVIDER) == [
        (REG2, "1", "rejected", "conflicting_enrollment"),
        (REG2, "2", "rejected", "conflicting_enrollment"),
        (REG2, "4", "rejected", "conflicting_enrollment"),
    ]
    assert keys(result) == {expected_key(B)}
    assert audit(result, REG2) == ("loaded", 4, 1, 3, 0)


def test_a_register_row_repeated_with_another_spelling_of_the_name_is_a_differing_row(
        raw, ingest, expected_key):
    """R5 counts once rows "with identical content"; a copy with another spelling of the name
    is a different row, so both are rejected (a review: the names were left out of the
    comparison, and the copy was counted once as "identical"). A copy whose personnummer is
    only written another way is identical: counted once."""
    raw.register("1277", 2, [register_row(A, 2), register_row(B, 2),
                             register_row(A, 2, fornamn=A.first + "a"),
                             register_row(B, 2, form="YYYYMMDD-NNNC")])
    result = ingest(2)
    assert issues(result, ignore=NO_PROVIDER) == [
        (REG2, "1", "rejected", "conflicting_enrollment"),
        (REG2, "3", "rejected", "conflicting_enrollment"),
        (REG2, "4", "warning", "duplicate_row"),
    ]
    assert keys(result) == {expected_key(B)}
    assert audit(result, REG2) == ("loaded", 4, 1, 2, 1)


# --- R5: conflicting provider rows -------------------------------------------------------------

def test_conflicting_duplicate_rejects_all_rows_and_the_status_becomes_unknown(raw, ingest, expected_key):
    raw.register("1277", 2, [register_row(A, 2), register_row(B, 2)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A, utfallskod="1"), fu_end_row(B, utfallskod="3"),
                                      fu_end_row(A, utfallskod="5", kommun="Båstad")])
    result = ingest(2)
    assert issues(result, "conflicting_duplicate") == [
        (FU2, "1", "rejected", "conflicting_duplicate"), (FU2, "3", "rejected", "conflicting_duplicate")]
    p = result.participations.set_index("person_key")
    assert p.loc[expected_key(A), ["status_end", "status_end_detail"]].tolist() == ["unknown", "unknown"]
    assert p.loc[expected_key(B), "status_end_detail"] == "education"
    assert issues(result, "missing_outcome") == [(REG2, "1", "warning", "missing_outcome")]
    assert result.issues.loc[result.issues["reason"] == "missing_outcome", "detail"].tolist() == [
        "completer without a valid status at the end of the cycle: "
        "the rows from Folkuniversitetet disagree (conflicting_duplicate)"]
    assert issues(result, "municipality_mismatch") == []  # a rejected row warns of nothing else
    assert audit(result, FU2) == ("loaded", 3, 1, 2, 0)


def test_conflicting_duplicate_across_petho_sheets(raw, ingest, expected_key):
    raw.register("1277", 1, [register_row(A, 1)])
    raw.petho({"Åstorp": [petho_row(A, status_end="Anställd", status_90d="Anställd")],
               "Båstad": [petho_row(A, as_number=True, status_end="Anställd", status_90d="Studier")]})
    result = ingest(1)
    assert issues(result, "conflicting_duplicate") == [
        (PETHO, "Båstad!5", "rejected", "conflicting_duplicate"),
        (PETHO, "Åstorp!5", "rejected", "conflicting_duplicate")]
    assert result.participations[["status_end", "status_90d"]].values.tolist() == [["unknown", "unknown"]]
    assert audit(result, PETHO) == ("loaded", 2, 0, 2, 0)


@pytest.mark.parametrize("provider", ["petho", "astorp"])
def test_provider_rows_whose_codes_mean_the_same_status_agree(raw, ingest, expected_key, provider):
    """Pethö's "Okänt" and an empty cell, Åstorp's OKAND and null: both unknown (raw-deliveries.md),
    so two such rows for one participation repeat each other; they do not disagree (R5)."""
    if provider == "petho":
        cycle, source = 1, PETHO
        raw.register("1277", 1, [register_row(A, 1)])
        raw.petho({"Åstorp": [petho_row(A, status_end="Okänt", status_90d="Studier"),
                              petho_row(A, status_end=None, status_90d="Studier")]})
        rows = ("Åstorp!5", "Åstorp!6")
    else:
        cycle, source = 5, AST5
        raw.register("1277", 5, [register_row(A, 5)])
        raw.astorp(5, [astorp_entry(A, status="OKAND"), astorp_entry(A, status=None)])
        rows = ("1", "2")
    result = ingest(cycle)
    assert issues(result, "conflicting_duplicate") == []
    assert issues(result, "duplicate_row") == [(source, rows[1], "warning", "duplicate_row")]
    p = result.participations.set_index("person_key").loc[expected_key(A)]
    assert p["status_end_detail"] == "unknown"
    if provider == "petho":
        assert p["status_90d"] == "studies"  # the 90-day status both rows give is kept
    assert audit(result, source) == ("loaded", 2, 1, 0, 1)


# --- R6: orphans ---------------------------------------------------------------------------------

def test_orphan_outcome_without_any_register_row(raw, ingest):
    raw.register("1277", 2, [register_row(A, 2)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A), fu_end_row(B)])
    raw.folkuniversitetet(2, "90dagar", [fu_90_row(B), fu_90_row(A)])
    result = ingest(2)
    assert issues(result, "orphan_outcome") == [(FU2_90, "1", "rejected", "orphan_outcome"),
                                                (FU2, "2", "rejected", "orphan_outcome")]
    assert len(result.participations) == 1
    assert audit(result, FU2) == ("loaded", 2, 1, 1, 0)
    assert audit(result, FU2_90) == ("loaded", 2, 1, 1, 0)


def test_copies_of_an_orphan_are_each_an_orphan_not_a_duplicate(raw, ingest):
    """R5 counts once rows that repeat a participation; an orphan repeats none, so each copy
    is rejected orphan_outcome, with no duplicate_row (decisions.md; a clean-room check)."""
    raw.register("1277", 2, [register_row(A, 2)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A), fu_end_row(B), fu_end_row(B)])
    result = ingest(2)
    assert issues(result, ignore=("missing_outcome",)) == [(FU2, "2", "rejected", "orphan_outcome"),
                                                           (FU2, "3", "rejected", "orphan_outcome")]
    assert audit(result, FU2) == ("loaded", 3, 1, 2, 0)


def test_an_astorp_status_with_spaces_around_it_is_its_code(raw, ingest):
    """Spaces around an Åstorp code are ignored, as around every other file's codes; its case
    is not (decisions.md)."""
    raw.register("1277", 5, [register_row(A, 5), register_row(B, 5)])
    raw.astorp(5, [astorp_entry(A, status=" ANST "), astorp_entry(B, status=" anst")])
    result = ingest(5)
    assert issues(result, ignore=("missing_outcome",)) == [(AST5, "2", "rejected", "invalid_code")]
    assert result.participations.set_index("source_row").loc["1", "status_end"] == "work"


def test_orphan_outcome_when_the_only_register_row_was_rejected(raw, ingest):
    raw.register("1277", 5, [register_row(A, 5, kon="X"), register_row(B, 5)])
    raw.astorp(5, [astorp_entry(A), astorp_entry(B)])
    result = ingest(5)
    assert issues(result) == [(REG5, "1", "rejected", "invalid_code"),
                              (AST5, "1", "rejected", "orphan_outcome")]
    assert audit(result, AST5) == ("loaded", 2, 1, 1, 0)
    assert len(result.interventions) == 1  # the orphan's interventions are not kept either


def test_outcome_of_an_early_leaver_is_kept_but_no_completer(raw, ingest, expected_key):
    raw.register("1277", 2, [register_row(A, 2, avbrott_orsak="sjukdom", utskrivningsdatum="2009-09-01"),
                             register_row(B, 2, avbrott_orsak="flytt")])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A, utfallskod="1")])
    result = ingest(2)
    assert issues(result) == []  # not an orphan; B (early leaver, absent) is no missing_outcome
    p = result.participations.set_index("person_key")
    assert p.loc[expected_key(A), ["completed", "status_end_detail"]].tolist() == [False, "employment"]
    assert audit(result, FU2) == ("loaded", 1, 1, 0, 0)


# --- R5: duplicates ---------------------------------------------------------------------------------

def test_duplicate_register_row_is_counted_once(raw, ingest, expected_key):
    raw.register("1277", 2, [register_row(A, 2), register_row(B, 2), register_row(A, 2), register_row(A, 2)])
    result = ingest(2)
    assert issues(result, ignore=NO_PROVIDER) == [(REG2, "3", "warning", "duplicate_row"), (REG2, "4", "warning", "duplicate_row")]
    assert sorted(result.participations["person_key"]) == sorted([expected_key(A), expected_key(B)])
    assert audit(result, REG2) == ("loaded", 4, 2, 0, 2)


def test_duplicate_provider_row_is_counted_once(raw, ingest):
    raw.register("1277", 2, [register_row(A, 2), register_row(B, 2)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A, hours=(10, "", "", "")), fu_end_row(B, utfallskod="3"),
                                      fu_end_row(A, hours=(10, "", "", ""))])
    result = ingest(2)
    assert issues(result) == [(FU2, "3", "warning", "duplicate_row")]
    assert result.outcomes["source_row"].tolist().count("1") == 1
    assert len(result.outcomes) == 2
    assert result.interventions["hours"].tolist() == [10.0]  # not 20: counted once
    assert audit(result, FU2) == ("loaded", 3, 2, 0, 1)


def test_duplicate_astorp_entry_is_counted_once(raw, ingest):
    raw.register("1277", 5, [register_row(A, 5)])
    raw.astorp(5, [astorp_entry(A), astorp_entry(A, form="YYMMDD-NNNC")])
    result = ingest(5)
    assert issues(result) == [(AST5, "2", "warning", "duplicate_row")]
    assert audit(result, AST5) == ("loaded", 2, 1, 0, 1)


def _entry_giving_again(entry: dict, name: str, value, *, written_as: str | None = None) -> str:
    """`entry` as JSON text that gives `name` once more, last (json.dumps cannot: a dict's
    keys are unique); `written_as`: the key as written in the text, escapes and all."""
    text = json.dumps(entry, ensure_ascii=False)
    return text[:-1] + f', {written_as or json.dumps(name)}: {json.dumps(value)}}}'


def test_an_astorp_entry_that_gives_a_key_read_twice_differently_is_not_half_read(raw, ingest):
    """json keeps the last of a repeated key. A personnummer or status given twice, with
    different values, rejects the entry (which holds would be a guess); a kommunkod so given
    is read as missing, an intervention's typ makes it ignored, its timmar leave it without
    hours, each with a warning. The same value twice is read as once; an escaped spelling of
    the key is the key."""
    E, F = people(6)[4:]
    raw.register("1277", 5, [register_row(p, 5) for p in (A, B, C, D, E, F)])
    entries = [
        _entry_giving_again(astorp_entry(A, status="ANST"), "status_cykelslut", "STUD"),
        _entry_giving_again(astorp_entry(B, status="ANST"), "status_cykelslut", "ANST"),
        _entry_giving_again(astorp_entry(C, kommunkod="1277"), "kommunkod", "1292"),
        json.dumps(astorp_entry(D, insatser=[("COACHNING", 2), ("PRAKTIK", 5)])).replace(
            '"timmar": 2}', '"timmar": 2, "typ": "VALIDERING"}').replace(  # typ twice: ignored
            '"timmar": 5}', '"timmar": 5, "timmar": 6}'),  # timmar twice: no hours
        _entry_giving_again(astorp_entry(E, status="FTG"), "status_cykelslut", "SJUK",
                            written_as='"st\\u0061tus_cykelslut"'),
        _entry_giving_again(astorp_entry(F), "pnr", A.pnr("YYYYMMDD-NNNC")),
    ]
    raw.write_bytes(AST5, ('{"leverantor": "Åstorps kommun", "cykel": 5, "deltagare": [\n'
                           + ",\n".join(entries) + "]}").encode("utf-8"))
    result = ingest(5)

    assert issues(result, ignore=("missing_outcome",)) == [
        (AST5, "1", "rejected", "conflicting_duplicate"),
        (AST5, "3", "warning", "invalid_code"),
        (AST5, "4", "warning", "invalid_code"),
        (AST5, "4", "warning", "invalid_code"),
        (AST5, "5", "rejected", "conflicting_duplicate"),
        (AST5, "6", "rejected", "conflicting_duplicate"),
    ]
    of_export = result.issues[result.issues["source_file"] == AST5]
    details = dict(zip(of_export["source_row"], of_export["detail"]))
    assert details["1"] == ("the entry gives status_cykelslut 2 times, with different values: "
                            "which holds would be a guess")
    assert details["3"] == "the entry gives kommunkod 2 times, with different values: read as missing"
    assert of_export.loc[of_export["source_row"] == "4", "detail"].tolist() == [
        "insatser: an intervention gives typ 2 times, with different values; ignored",
        "insatser: an intervention gives timmar 2 times, with different values: no hours"]
    assert details["6"].startswith("the entry gives pnr 2 times")
    status = dict(zip(result.participations["source_row"], result.participations["status_end"]))
    assert status == {"2": "work", "3": "work", "4": "work", "1": "unknown", "5": "unknown", "6": "unknown"}
    # B's status given twice alike is B's; C's kommunkod is not compared with the register's
    assert issues(result, "municipality_mismatch") == []
    row_of = dict(zip(result.participations["participation_id"], result.participations["source_row"]))
    assert sorted((row_of[pid], i, h) for pid, i, h in zip(
        result.interventions["participation_id"], result.interventions["intervention"],
        result.interventions["hours"].astype(object).where(result.interventions["hours"].notna(), None))) == [
        ("2", "validation", 12.5), ("3", "validation", 12.5), ("4", "internship", None)]  # A, E, F rejected
    assert audit(result, AST5) == ("loaded", 6, 3, 3, 0)
    assert not any(A.pnr("YYYYMMDD-NNNC") in d or A.pnr("YYMMDDNNNC") in d for d in result.issues["detail"])


def test_an_astorp_entry_that_is_no_object_or_an_export_with_no_pnr_key_says_so(raw, ingest):
    """A review: an entry written as a string (a person's personnummer and name in one) and an
    export whose entries call the personnummer `personnummer` were each row "the personnummer
    is missing". An entry that is not an object is rejected as such (what it is, never its
    value); an export where no entry has `pnr` is rejected whole, as one with no status key."""
    raw.register("1277", 5, [register_row(p, 5) for p in (A, B)])
    person = f"{C.pnr('YYYYMMDD-NNNC')} {C.first} {C.last}"
    raw.write_bytes(AST5, json.dumps({"leverantor": "Åstorps kommun", "cykel": 5, "deltagare": [
        astorp_entry(A, status="ANST"), person, None, 7, [astorp_entry(B)], True]}).encode("utf-8"))
    result = ingest(5)
    of_export = result.issues[result.issues["source_file"] == AST5]
    assert list(zip(of_export["source_row"], of_export["reason"], of_export["detail"])) == [
        (str(n), "missing_required", f"the entry is {what}, not an object of keys: nothing of it is read")
        for n, what in ((2, "a string"), (3, "null"), (4, "a number"), (5, "a list"), (6, "true or false"))]
    assert audit(result, AST5) == ("loaded", 6, 1, 5, 0)
    assert result.participations.set_index("source_row").loc["1", "status_end"] == "work"

    renamed = [{("personnummer" if k == "pnr" else k): v for k, v in astorp_entry(p, status="ANST").items()}
               for p in (A, B)]
    raw.write_bytes(AST5, json.dumps({"leverantor": "Åstorps kommun", "cykel": 5, "deltagare": renamed + [None]}
                                     ).encode("utf-8"))
    result = ingest(5)
    assert [(f, sev, r) for f, _, sev, r in issues(result, ignore=("missing_outcome",))] == [
        (AST5, "rejected", "missing_columns")]
    assert result.issues.loc[result.issues["reason"] == "missing_columns", "detail"].tolist() == [
        "no entry has the key 'pnr'"]
    assert audit(result, AST5) == ("rejected", 3, 0, 3, 0)

    # the fix's review: a list of no objects at all, and objects without a status beside a null
    for entries, missing in (([None, f"{A.pnr()} {A.first}"], "pnr"),
                             ([{k: v for k, v in astorp_entry(A).items() if k != "status_cykelslut"}, None],
                              "status_cykelslut")):
        raw.write_bytes(AST5, json.dumps({"leverantor": "Åstorps kommun", "cykel": 5, "deltagare": entries}
                                         ).encode("utf-8"))
        result = ingest(5)
        assert result.issues.loc[result.issues["reason"] == "missing_columns", "detail"].tolist() == [
            f"no entry {'naming a person ' if missing != 'pnr' else ''}has the key '{missing}'"]


def test_a_duplicate_row_keeps_the_interventions_the_earlier_row_lacks(raw, ingest):
    """Two rows for one participation, same status, other hours: counted once, and no
    intervention vanishes (an intervention in both keeps the earlier row's hours)."""
    raw.register("1277", 2, [register_row(A, 2)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A, hours=(10, "", "", "")),
                                      fu_end_row(A, hours=(99, 20, "", ""))])
    result = ingest(2)
    assert issues(result) == [(FU2, "2", "warning", "duplicate_row")]
    got = dict(zip(result.interventions["intervention"], result.interventions["hours"]))
    assert got == {"validation": 10.0, "vocational_trial": 20.0}
    assert audit(result, FU2) == ("loaded", 2, 1, 0, 1)


def test_an_intervention_twice_in_one_entry_adds_up_its_hours_with_a_warning(raw, ingest):
    raw.register("1277", 5, [register_row(A, 5), register_row(B, 5), register_row(C, 5)])
    raw.astorp(5, [astorp_entry(A, insatser=[("PRAKTIK", 40), ("VALIDERING", 5), ("PRAKTIK", 24)]),
                   astorp_entry(B, insatser=[("PRAKTIK", None), ("PRAKTIK", 10)]),
                   astorp_entry(C, insatser=[("PRAKTIK", None), ("PRAKTIK", None)]),
                   astorp_entry(D, insatser=[("PRAKTIK", 1), ("PRAKTIK", 2)])])  # D: no register row
    result = ingest(5)
    assert issues(result, ignore=("orphan_outcome",)) == [
        (AST5, "1", "warning", "invalid_code"), (AST5, "2", "warning", "invalid_code"),
        (AST5, "3", "warning", "invalid_code")]  # not row 4: rejected, its interventions unused
    details = result.issues.set_index("source_row")["detail"]
    assert details["1"] == "insatser: internship given 2 times in this row; their hours are added up"
    assert "left empty" in details["2"]
    pid = dict(zip(result.participations["source_row"], result.participations["participation_id"]))
    hours = {(p, name): h for p, name, h in result.interventions.itertuples(index=False)}
    assert hours[(pid["1"], "internship")] == 64.0 and hours[(pid["1"], "validation")] == 5.0
    assert pd.isna(hours[(pid["2"], "internship")])  # one period without hours: the total is unknown
    assert pd.isna(hours[(pid["3"], "internship")])
    assert len(result.interventions) == 4
    assert audit(result, AST5) == ("loaded", 4, 3, 1, 0)


def test_periods_whose_hours_add_up_past_the_limit_leave_the_hours_empty_and_the_build_goes_on(raw, ingest):
    """Each period's hours pass the check of one value (at most 4,416), their total does not:
    the total is ignored with a warning, as one value over the limit is, and the cycle is
    staged (it once failed the staged model, and with it the whole build). A total is given
    to the hundredth, as every single value is (0.1 + 0.2 is not stored as 0.30000000000000004)."""
    raw.register("1277", 5, [register_row(A, 5), register_row(B, 5)])
    raw.astorp(5, [astorp_entry(A, insatser=[("PRAKTIK", 2500), ("PRAKTIK", 2500), ("VALIDERING", 5)]),
                   astorp_entry(B, insatser=[("PRAKTIK", 0.1), ("PRAKTIK", 0.2)])])
    result = ingest(5)
    assert issues(result) == [(AST5, "1", "warning", "invalid_code"), (AST5, "2", "warning", "invalid_code")]
    details = result.issues.set_index("source_row")["detail"]
    assert details["1"] == ("insatser: internship given 2 times in this row; "
                            "their hours add up to more than 4,416, so its hours are left empty")
    assert details["2"] == "insatser: internship given 2 times in this row; their hours are added up"
    pid = dict(zip(result.participations["source_row"], result.participations["participation_id"]))
    hours = {(p, name): h for p, name, h in result.interventions.itertuples(index=False)}
    assert pd.isna(hours[(pid["1"], "internship")]) and hours[(pid["1"], "validation")] == 5.0
    assert hours[(pid["2"], "internship")] == 0.3
    assert audit(result, AST5) == ("loaded", 2, 2, 0, 0)


def test_a_duplicate_row_with_an_intervention_twice_warns_only_for_the_row_used(raw, ingest):
    raw.register("1277", 5, [register_row(A, 5)])
    raw.astorp(5, [astorp_entry(A, insatser=[("PRAKTIK", 8)]),
                   astorp_entry(A, insatser=[("PRAKTIK", 1), ("PRAKTIK", 2)])])
    result = ingest(5)
    assert issues(result) == [(AST5, "2", "warning", "duplicate_row")]
    assert result.interventions["hours"].tolist() == [8.0]  # the earlier row's


# --- R8/R9: missing outcomes ---------------------------------------------------------------------------

def test_missing_outcome_when_absent_from_the_delivery(raw, ingest, expected_key):
    raw.register("1277", 2, [register_row(A, 2), register_row(B, 2), register_row(C, 2, avbrott_orsak="annat")])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A, utfallskod="1")])
    raw.folkuniversitetet(2, "90dagar", [fu_90_row(B, utfallskod="3")])
    result = ingest(2)
    assert issues(result) == [
        (REG2, "1", "warning", "missing_outcome"),  # A: not in the 90-day file
        (REG2, "2", "warning", "missing_outcome"),  # B: not in the end file
    ]
    details = sorted(result.issues["detail"])
    assert "at 90 days" in details[0] and "no valid row from Folkuniversitetet" in details[0]
    assert "at the end of the cycle" in details[1]
    p = result.participations.set_index("person_key")
    assert p.loc[expected_key(A), ["status_end", "status_90d"]].tolist() == ["work", "unknown"]
    assert p.loc[expected_key(B), ["status_end", "status_90d"]].tolist() == ["unknown", "studies"]
    assert p.loc[expected_key(C), "status_end"] == "unknown"  # early leaver: no warning
    assert audit(result, REG2) == ("loaded", 3, 3, 0, 0)


def test_missing_outcome_says_when_no_end_of_cycle_delivery_was_read(raw, ingest):
    """A provider's end-of-cycle file that never came (or came unreadable) gave each completer
    the warning of a row missing from it, "no valid row from Folkuniversitetet", and nothing
    told it from one person left out (a review of the report under adverse data). A 90-day
    file alone is read; the end-of-cycle warnings say that no end-of-cycle delivery was."""
    raw.register("1277", 2, [register_row(A, 2), register_row(B, 2)])
    raw.folkuniversitetet(2, "90dagar", [fu_90_row(A, utfallskod="1"), fu_90_row(B, utfallskod="3")])
    result = ingest(2)
    assert issues(result) == [(REG2, "1", "warning", "missing_outcome"), (REG2, "2", "warning", "missing_outcome")]
    assert set(result.issues["detail"]) == {
        "completer without a valid status at the end of the cycle: no end-of-cycle delivery from "
        "Folkuniversitetet was read (none came, or it was rejected whole)"}
    raw.write_bytes("leverantorer/folkuniversitetet/cykel2_slut.csv", b"\x00\x01 not a csv")
    rejected = ingest(2)
    assert sorted(rejected.issues["reason"]) == ["missing_outcome", "missing_outcome", "unreadable_file"]
    assert set(rejected.issues.loc[rejected.issues["reason"] == "missing_outcome", "detail"]) == set(result.issues["detail"])


@pytest.mark.parametrize("kind", ["folkuniversitetet", "petho", "astorp"])
def test_missing_outcome_when_the_provider_says_unknown(raw, ingest, kind):
    if kind == "folkuniversitetet":
        cycle, reg = 2, REG2
        raw.folkuniversitetet(2, "slut", [fu_end_row(A, utfallskod="9")])
    elif kind == "petho":
        cycle, reg = 1, REG1
        raw.petho({"Åstorp": [petho_row(A, status_end=" OKÄNT", status_90d="Anställd")]})
    else:
        cycle, reg = 5, REG5
        raw.astorp(5, [astorp_entry(A, status="OKAND")])
    raw.register("1277", cycle, [register_row(A, cycle)])
    result = ingest(cycle)
    assert issues(result) == [(reg, "1", "warning", "missing_outcome")]
    assert "reported it as unknown" in result.issues["detail"].iloc[0]
    assert result.participations["status_end_detail"].tolist() == ["unknown"]


def test_no_90_day_missing_outcome_when_the_cycle_is_not_followed_up(raw, ingest):
    raw.register("1277", 5, [register_row(A, 5)])
    raw.astorp(5, [astorp_entry(A, status="ANST")])
    result = ingest(5)
    assert issues(result) == []
    assert result.participations["status_90d"].isna().all()


def test_astorp_followup_absent_and_null(raw, ingest, expected_key):
    raw.register("1277", 5, [register_row(p, 5) for p in (A, B, C)])
    raw.astorp(5, [astorp_entry(p) for p in (A, B, C)])
    raw.astorp(5, [astorp_followup(A, "STUD"), astorp_followup(B, None)], followup=True)
    result = ingest(5)
    assert issues(result) == [(REG5, "2", "warning", "missing_outcome"), (REG5, "3", "warning", "missing_outcome")]
    p = result.participations.set_index("person_key")
    assert p.loc[expected_key(A), "status_90d"] == "studies"
    assert audit(result, AST5_90) == ("loaded", 2, 2, 0, 0)


# --- R7: municipality mismatch ------------------------------------------------------------------------

def test_municipality_mismatch_is_a_warning_and_the_row_is_used(raw, ingest, expected_key):
    raw.register("1277", 2, [register_row(A, 2), register_row(B, 2)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A, kommun="Åstorp", utfallskod="3"),
                                      fu_end_row(B, kommun="Båstad", utfallskod="1")])
    result = ingest(2)
    assert issues(result) == [(FU2, "2", "warning", "municipality_mismatch")]
    p = result.participations.set_index("person_key")
    assert p.loc[expected_key(B), ["municipality_code", "status_end_detail"]].tolist() == ["1277", "employment"]
    assert audit(result, FU2) == ("loaded", 2, 2, 0, 0)


def test_municipality_mismatch_in_petho_and_astorp(raw, ingest):
    raw.register("1278", 1, [register_row(A, 1)])
    raw.petho({"Åstorp": [petho_row(A)]})
    raw.register("1292", 5, [register_row(A, 5)])
    raw.astorp(5, [astorp_entry(A, kommunkod="1275")])
    r1, r5 = ingest(1), ingest(5)
    assert issues(r1) == [(PETHO, "Åstorp!5", "warning", "municipality_mismatch")]
    assert issues(r5) == [(AST5, "1", "warning", "municipality_mismatch")]
    assert r1.participations["municipality_code"].tolist() == ["1278"]
    assert r5.participations[["municipality_code", "status_end"]].values.tolist() == [["1292", "work"]]


# --- the audit, all reasons at once ------------------------------------------------------------------------

def test_audit_balances_with_every_row_reason_in_one_cycle(raw, ingest):
    E = Person(dt.date(1971, 4, 4), 404)
    raw.register("1277", 2, [
        register_row(A, 2), register_row(A, 2),                    # duplicate_row
        register_row(B, 2, kon="?"),                               # invalid_code
        register_row(C, 2, inskrivningsdatum="2009-02-29"),        # invalid_date
        register_row(D, 2, cykel="4"),                             # cycle_mismatch
        register_row(E, 2), ["bad", "row"],                        # missing_required (fields)
    ])
    raw.register("1278", 2, [register_row(E, 2, kon="M")])        # conflicting_enrollment
    raw.folkuniversitetet(2, "slut", [
        fu_end_row(A, kommun="Perstorp"), fu_end_row(A, kommun="Perstorp"),  # mismatch + duplicate
        fu_end_row(B), fu_end_row(E),                                           # orphans
        fu_end_row(A, personnummer="0"),                                        # invalid_personnummer
    ])
    result = ingest(2)
    a = result.audit.set_index("source_file")
    assert a.loc[REG2, ["rows_read", "rows_loaded", "rows_rejected", "rows_duplicate"]].tolist() == [7, 1, 5, 1]
    assert a.loc[REG2_BASTAD, ["rows_read", "rows_loaded", "rows_rejected", "rows_duplicate"]].tolist() == [1, 0, 1, 0]
    assert a.loc[FU2, ["rows_read", "rows_loaded", "rows_rejected", "rows_duplicate"]].tolist() == [5, 1, 3, 1]
    # Every rejected row is in the issues, once per row.
    rejected = result.issues[result.issues["severity"] == "rejected"]
    assert len(rejected) == len(rejected.drop_duplicates(["source_file", "source_row"])) == 9
    assert set(result.audit["status"]) == {"loaded"}
    assert pd.Series(result.audit["sha256"]).str.fullmatch(r"[0-9a-f]{64}").all()


# --- whole files, at ingest level (the CLI tests cover them through the warehouse) -------------------

def _zip_without_workbook() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "not a workbook")
    return buf.getvalue()


def _truncated_workbook(raw) -> bytes:
    data = raw.petho({"Åstorp": [petho_row(A)]}).read_bytes()
    return data[: len(data) // 2]


def _workbook_without_municipality_sheet(raw) -> bytes:
    return raw.petho({"Malmö": [petho_row(A)]}).read_bytes()


@pytest.mark.parametrize("content,reason", [
    (b"", "unreadable_file"),
    (b"PK\x03\x04 not really a zip", "unreadable_file"),
    (_zip_without_workbook(), "unreadable_file"),
    (_truncated_workbook, "unreadable_file"),
    (_workbook_without_municipality_sheet, "missing_columns"),
], ids=["empty", "bad-zip", "zip-without-workbook", "truncated", "no-municipality-sheet"])
def test_petho_whole_file_reasons(raw, ingest, content, reason):
    raw.register("1277", 1, [register_row(A, 1)])
    data = content(raw) if callable(content) else content
    raw.write_bytes(PETHO, data)
    result = ingest(1)
    whole = result.issues[result.issues["source_row"].isna()]
    assert whole[["source_file", "severity", "reason"]].values.tolist() == [[PETHO, "rejected", reason]]
    assert audit(result, PETHO)[0] == "rejected"
    assert result.audit.set_index("source_file").loc[PETHO, "reason"] == reason
    assert len(result.participations) == 1  # the register is still counted
    assert result.participations["status_end"].tolist() == ["unknown"]


@pytest.mark.parametrize("content,reason", [
    ('{"leverantor": "Åstorps kommun", "cykel": 5, "deltagare": [', "unreadable_file"),
    ("[]", "missing_columns"),
    ('{"cykel": 5, "deltagare": {"pnr": "x"}}', "missing_columns"),
    ('{"cykel": 6, "deltagare": []}', "cycle_mismatch"),
    ('{"cykel": 6, "deltagare": [], "cykel": 5.0}', "cycle_mismatch"),  # json.loads would keep the 5
    ('{"cykel": 5.5, "deltagare": []}', "cycle_mismatch"),  # a JSON number is its value: 5.5 is not 5
], ids=["truncated", "a-list", "deltagare-not-a-list", "other-cycle", "two-cycles", "fractional-cycle"])
def test_astorp_whole_file_reasons(raw, ingest, content, reason):
    raw.register("1277", 5, [register_row(A, 5)])
    raw.write_text(AST5, content)
    result = ingest(5)
    whole = result.issues[result.issues["source_row"].isna()]
    assert whole[["source_file", "severity", "reason"]].values.tolist() == [[AST5, "rejected", reason]]
    assert audit(result, AST5)[0] == "rejected"


def test_an_astorp_export_that_is_its_list_alone_counts_the_items_as_read(raw, ingest):
    """A review's find (2026-12-04): the list without its object was rejected with rows_read 0,
    while a CSV rejected whole counts its rows; the detail now says what the export is."""
    raw.register("1277", 5, [register_row(A, 5)])
    raw.write_text(AST5, json.dumps([astorp_entry(A), astorp_entry(B), astorp_entry(C)]))
    result = ingest(5)
    assert audit(result, AST5) == ("rejected", 3, 0, 3, 0)
    detail = result.issues.set_index("source_file").loc[AST5, "detail"]
    assert detail == "the export is a list of 3 item(s), not an object with the list 'deltagare'", detail
    # the export's object inside a list: its entries are the rows read
    raw.write_text(AST5, json.dumps([{"cykel": 5, "deltagare": [astorp_entry(A), astorp_entry(B)]}]))
    result = ingest(5)
    assert audit(result, AST5) == ("rejected", 2, 0, 2, 0)
    assert result.issues.set_index("source_file").loc[AST5, "detail"] == (
        "the export is a list of 1 item(s) holding 2 entries, not an object with the list 'deltagare'")


def test_an_astorp_entry_that_gives_a_key_twice_as_values_that_read_alike_is_read_once(raw, ingest):
    """Alike as the adapter reads them: one personnummer in two written forms, a status with
    spaces, a kommunkod as a number, a typ in lower case, 2 and 2.0 hours."""
    raw.register("1277", 5, [register_row(A, 5)])
    entry = _entry_giving_again(astorp_entry(A, status="ANST", insatser=[("PRAKTIK", 2)]), "pnr",
                                A.pnr("YYMMDD-NNNC"))
    for name, value in (("status_cykelslut", " ANST "), ("kommunkod", 1277)):
        entry = entry[:-1] + f', "{name}": {json.dumps(value)}}}'
    entry = entry.replace('"typ": "PRAKTIK", "timmar": 2}', '"typ": "PRAKTIK", "timmar": 2, "typ": "praktik", "timmar": 2.0}')
    raw.write_bytes(AST5, ('{"cykel": 5, "deltagare": [%s]}' % entry).encode("utf-8"))
    result = ingest(5)
    assert issues(result) == []
    assert audit(result, AST5) == ("loaded", 1, 1, 0, 0)
    assert result.participations["status_end"].tolist() == ["work"]
    assert list(zip(result.interventions["intervention"], result.interventions["hours"])) == [("internship", 2.0)]


def test_an_astorp_entry_that_gives_its_status_as_null_and_as_blank_text_is_read_once(raw, ingest):
    """An Åstorp "" (or spaces) is null (decisions.md): a status given as both reads alike, one
    unknown status, as either alone does. It was a conflicting_duplicate, the entry rejected
    and its interventions lost, "which holds would be a guess" where there is none."""
    raw.register("1277", 5, [register_row(A, 5), register_row(B, 5)])
    entries = [_entry_giving_again(astorp_entry(A, status=None, insatser=[("PRAKTIK", 10)]), "status_cykelslut", ""),
               _entry_giving_again(astorp_entry(B, status="  ", insatser=[("PRAKTIK", 20)]), "status_cykelslut", None)]
    raw.write_bytes(AST5, ('{"cykel": 5, "deltagare": [%s]}' % ", ".join(entries)).encode("utf-8"))
    result = ingest(5)
    assert issues(result, ignore=("missing_outcome",)) == []
    assert audit(result, AST5) == ("loaded", 2, 2, 0, 0)
    assert result.participations["status_end"].tolist() == ["unknown", "unknown"]
    assert sorted(result.interventions["hours"].tolist()) == [10.0, 20.0]


def test_an_astorp_export_that_gives_its_cycle_twice_alike_is_read(raw, ingest):
    """Each value of a cykel given twice is checked (one differing rejects the export:
    test_astorp_whole_file_reasons); 5 and 5.0 are one cycle, as a JSON number is its value."""
    raw.register("1277", 5, [register_row(A, 5)])
    raw.write_text(AST5, '{"cykel": 5, "deltagare": [%s], "cykel": 5.0}' % json.dumps(astorp_entry(A)))
    result = ingest(5)
    assert audit(result, AST5) == ("loaded", 1, 1, 0, 0)
    assert result.participations["status_end"].tolist() == ["work"]


@pytest.mark.parametrize("cykel", [None, " 5 "], ids=["null", "padded-text"])
def test_an_astorp_export_with_a_null_or_padded_cykel_is_read(raw, ingest, cykel):
    """Only a cykel that says another cycle rejects the export: null says none, and a string
    is compared trimmed (" 5 " is 5; "05" would not be, decisions.md)."""
    raw.register("1277", 5, [register_row(A, 5)])
    raw.write_text(AST5, json.dumps({"leverantor": "Åstorps kommun", "cykel": cykel, "deltagare": [astorp_entry(A)]}))
    result = ingest(5)
    assert audit(result, AST5) == ("loaded", 1, 1, 0, 0)
    assert result.participations["status_end"].tolist() == ["work"]


def test_an_astorp_export_of_another_cycle_counts_its_entries_as_read(raw, ingest):
    """An export rejected whole for its cykel holds back its entries: the audit counts them
    (as for any file rejected whole, decisions.md)."""
    raw.register("1277", 5, [register_row(A, 5)])
    raw.astorp(5, [astorp_entry(A), astorp_entry(B)], cykel=6)
    result = ingest(5)
    assert audit(result, AST5) == ("rejected", 2, 0, 2, 0)
    assert result.audit.set_index("source_file").loc[AST5, "reason"] == "cycle_mismatch"


def test_a_file_rejected_for_its_path_counts_every_row_its_adapter_finds_and_keeps_its_hash(raw, ingest):
    """decisions.md: a file rejected for its path alone is read by its adapter to count its
    rows: those it finds malformed too, and those of a file it would reject whole (a review's
    mutations counted only the parsed rows, and 0 for the second). A file rejected whole
    once opened keeps its sha256 in the audit (the delivery log records it as a version)."""
    raw.register("1277", 2, [register_row(A, 2)])
    malmo = raw.register("1280", 2, [register_row(B, 2), ["bad", "row"], register_row(C, 2)])
    latin = raw.register("9999", 2, [register_row(C, 2, fornamn="Åsa"), register_row(D, 2)], encoding="cp1252")
    result = ingest(2)
    malmo_rel, latin_rel = raw.register_rel("1280", 2), raw.register_rel("9999", 2)
    assert audit(result, malmo_rel) == ("rejected", 3, 0, 3, 0)
    assert audit(result, latin_rel) == ("rejected", 2, 0, 2, 0)
    a = result.audit.set_index("source_file")
    assert a.loc[[malmo_rel, latin_rel], "reason"].tolist() == ["unknown_municipality"] * 2
    assert a.loc[malmo_rel, "sha256"] == hashlib.sha256(malmo.read_bytes()).hexdigest()
    assert a.loc[latin_rel, "sha256"] == hashlib.sha256(latin.read_bytes()).hexdigest()


def test_a_rejected_petho_workbook_counts_its_data_rows_only(raw, ingest):
    """A workbook rejected whole counts the data rows it holds back, each sheet's to its first
    empty row (raw-deliveries.md §2): not the rows below it, which the contract does not read."""
    raw.register("1277", 1, [register_row(A, 1), register_row(B, 1)])
    raw.petho({"Åstorp": [petho_row(A), petho_row(B)]}, columns=[*PETHO_COLUMNS, "Status cykelslut"],
              after_blank={"Åstorp": [petho_row(C), petho_row(D)]})
    result = ingest(1)
    assert audit(result, PETHO) == ("rejected", 2, 0, 2, 0)
    assert result.audit.set_index("source_file").loc[PETHO, "reason"] == "unreadable_file"


@pytest.mark.parametrize("case", ["folkuniversitetet in UTF-8", "register in Windows-1252"])
def test_a_delimited_file_in_the_wrong_encoding_is_rejected_with_its_rows_counted(raw, ingest, case):
    """warehouse.md's "nothing lost": a file rejected for its encoding still has its data rows
    counted as read and rejected (they were once 0, as if the file had none)."""
    raw.register("1277", 2, [register_row(A, 2), register_row(B, 2)])
    if case == "folkuniversitetet in UTF-8":
        raw.folkuniversitetet(2, "slut", [fu_end_row(A, kommun="Åstorp", utfallskod="1"),
                                          fu_end_row(B, kommun="Ängelholm", utfallskod="2")], encoding="utf-8")
        rejected = FU2
    else:
        raw.register("1277", 2, [register_row(A, 2, fornamn="Åsa"), register_row(B, 2)], encoding="cp1252")
        rejected = REG2
    result = ingest(2)
    assert issues(result, "unreadable_file") == [(rejected, pd.NA, "rejected", "unreadable_file")]
    assert audit(result, rejected) == ("rejected", 2, 0, 2, 0)


def test_astorp_json_in_latin1_is_unreadable(raw, ingest):
    raw.register("1277", 5, [register_row(A, 5)])
    raw.write_bytes(AST5, '{"leverantor": "Åstorps kommun", "cykel": 5, "deltagare": []}'.encode("latin-1"))
    result = ingest(5)
    assert issues(result, "unreadable_file") == [(AST5, pd.NA, "rejected", "unreadable_file")]


def test_a_header_without_or_with_repeated_columns_names_the_contract_columns(raw, ingest):
    """The missing or repeated columns are named: the contract's names are no personal data.
    A repeated column the contract does not know is described, as it could be anything."""
    without = [c for c in REGISTER_COLUMNS if c not in ("personnummer", "cykel")]
    raw.register("1277", 2, [{c: v for c, v in register_row(A, 2).items() if c in without}], columns=without)
    raw.register("1278", 2, [register_row(B, 2)], columns=[*REGISTER_COLUMNS, "kon", "Anna Svensson",
                                                            "Anna Svensson"])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A)], columns=[c for c in FU_END_COLUMNS
                                                                if c != "Timmar jobbsökning"])
    result = ingest(2)
    whole = result.issues[result.issues["source_row"].isna()].set_index("source_file")
    assert whole.loc[REG2, ["reason", "detail"]].tolist() == [
        "missing_columns", "missing column(s): personnummer, cykel"]
    assert whole.loc[REG2_BASTAD, ["reason", "detail"]].tolist() == [
        "unreadable_file", "repeated column(s) in the header: '<text of 13 characters>', kon"]
    assert whole.loc[FU2, ["reason", "detail"]].tolist() == [
        "missing_columns", "missing column(s): Timmar jobbsökning"]


def test_an_astorp_export_that_is_no_json_says_what_the_parser_found(raw, ingest):
    """The json module's own words, never the document's: a cut-off file. A byte-order mark
    before the document is read past."""
    raw.register("1277", 5, [register_row(A, 5)])
    raw.write_bytes(AST5, b"\xef\xbb\xbf" + b'{"leverantor": "\xc3\x85storps kommun", "cykel": 5, '
                          b'"deltagare": [{"pnr": "' + A.pnr().encode() + b'", "status_cykelslut": "ANST"}]}')
    raw.write_text(AST5_90, '{"leverantor": "Åstorps kommun", "cykel": 5, "uppfoljning": [{"pnr": "19')
    result = ingest(5)
    whole = result.issues[result.issues["source_row"].isna()].set_index("source_file")["detail"]
    assert AST5 not in whole.index
    assert result.participations["status_end_detail"].tolist() == ["employment"]
    assert whole[AST5_90].startswith("not valid JSON: Unterminated string starting at (line 1, column ")
    assert "19" not in whole[AST5_90].split("(")[0]  # nothing of the cut-off personnummer


@pytest.mark.parametrize("value", [
    "85_01_01_238", "8501:01238", "85O1O1-2383", "85010l-2383", "1931-07-19\u2013" "8768",
    "1937:0101:1110", "19390303_3334", "400404\u2013" "4444", "850101", "4801121312",
])
def test_a_personnummer_or_part_of_one_is_never_quoted_however_written(value):
    """Six digits or more, however separated, or with a letter slipped in (review finds): no
    digit of them is quoted in an issue detail."""
    said = safe_value(value)
    assert said == f"<text of {len(value)} characters>" or not any(c.isdigit() for c in said), said


@pytest.mark.parametrize("value", ["12,5", "1277", "ANST", "X"])
def test_codes_and_hours_are_still_quoted(value):
    assert safe_value(value) == value


@pytest.mark.parametrize("value", ["2010-02-30", "30.02.2010"])
def test_a_date_is_quoted_only_from_a_field_of_dates(value):
    """An invalid_date detail must show the date; elsewhere a date may be a birth date
    (a register shifted by a column put one in `kon`)."""
    assert safe_value(value, date=True) == value
    assert safe_value(value) == "".join("#" if c.isdigit() else c for c in value)


@pytest.mark.parametrize("value", ["7102-08-90", "1971-02-30", "19.13.1971", "8.2.7102"])
def test_a_date_of_no_year_of_the_project_is_masked_even_from_a_field_of_dates(value):
    """A review's find (2026-12-04): '7102-08-90' in inskrivningsdatum and '13.7.2010' in
    utskrivningsdatum, both quoted, gave 710208-9013 whole. A date is shown only with a year
    of the project's decades (2000-2029); a '1971-...' is more likely a birth date."""
    assert not any(c.isdigit() for c in safe_value(value, date=True)), safe_value(value, date=True)


def test_a_personnummer_in_two_date_fields_of_one_row_is_not_quoted(raw, ingest):
    raw.register("1277", 2, [register_row(B, 2),
                             register_row(A, 2, inskrivningsdatum="7102-08-90", utskrivningsdatum="13.7.2010")])
    result = ingest(2)
    said = " ".join(result.issues["detail"].dropna())
    assert "(got '####-##-##')" in said and "7102" not in said and "0890" not in said, said
    assert "(got '13.7.2010')" in said, said  # a date of the project's years is still shown


@pytest.mark.parametrize("value", ["\u200b".join("Zyxwqsson"), "\u00ad".join("Zyxwqsson"),
                                   "Z\u0301yxwq", "Z.y.x.w.q.s.s.o.n", "Z1y2x3w"])
def test_a_name_broken_up_by_invisible_characters_or_marks_is_described(value):
    """A review's find (2026-12-04): zero-width spaces or soft hyphens between a name's
    letters made it single letters, each passing as a code, and it was quoted whole."""
    assert safe_value(value) == f"<text of {len(value)} characters>"


def test_numbers_that_are_no_digits_are_never_quoted(key):
    """The fix's review (2026-12-04): circled numbers are no digits to mask ('7⑪-⑳-1029' holds
    nine digits of 711201-0298), and each passed as a single letter."""
    assert safe_value("7\u246a-\u2473-1029") == "<text of 9 characters>"
    assert safe_value("x\u00b2") == "<text of 2 characters>"
    assert safe_path("kommuner/1277/7\u246a-\u2473-1029.csv", key).startswith("kommuner/1277/~")
    # symbols that stand for numbers (the second review): 7, 11, 20, 1, -, 0, 298
    assert safe_value("7\u3363\u336c\u3359-\u3358298") == "<text of 9 characters>"
    assert safe_value("\u2681\U0001F550") == "<text of 2 characters>"  # a die, a clock face
    assert safe_path("kommuner/1277/7\u3363\u336c\u3359-\u3358298.csv", key).startswith("kommuner/1277/~")


def test_letters_of_other_scripts_that_look_like_digits_are_described(key):
    """The red-team review (2026-12-05): one register row quoting '85О1О1' (Cyrillic О) and
    'Ƨ-З' read as 850101-2-3; letters beyond Latin-1 are no code's."""
    for value in ("85\u041e1\u041e1", "\u01a7-\u0417", "8-\u0417", "\u0431"):
        assert safe_value(value) == f"<text of {len(value)} characters>", value
    assert safe_path("kommuner/1277/85\u041e1\u041e1.pdf", key).startswith("kommuner/1277/~")
    assert [safe_value(v) for v in ("Ängelholm", "ÅSTORP", "12,5h", "K/M")] == ["Ängelholm", "ÅSTORP", "12,5h", "K/M"]


def test_three_single_letters_are_described_two_are_quoted():
    """A code has a letter or two apart ('K/M', '12,5h'); three are initials, a name's."""
    assert safe_value("K/M") == "K/M" and safe_value("12,5h") == "12,5h"
    assert safe_value("Z.y.x") == "<text of 5 characters>"
    assert safe_value("A-B-C-1") == "<text of 7 characters>"


def test_six_digits_in_the_names_a_sender_chose_hash_them(key):
    """From six digits over the components that are not the contract's (a birth date), every
    such component with a digit is hashed, however split; five are shown."""
    assert safe_path("kommuner/1277/850101.pdf", key) == f"kommuner/1277/~{expected_name_id('850101.pdf')}.pdf"
    assert safe_path("kommuner/1277/85/0101.pdf", key) == (
        f"kommuner/1277/~{expected_name_id('85')}/~{expected_name_id('0101.pdf')}.pdf")
    assert safe_path("kommuner/1277/85010.pdf", key) == "kommuner/1277/85010.pdf"
    assert safe_path("kommuner/1277/deltagare_cykel2.csv", key) == "kommuner/1277/deltagare_cykel2.csv"


def test_the_files_an_operating_system_leaves_are_shown_by_name(key):
    """'.DS_Store' became '~' and an id in the build's summary, which told the engineer nothing
    (a review's find): no sender chose such a name. Another name of that shape is still hashed."""
    assert safe_path(".DS_Store", key) == ".DS_Store"
    assert safe_path("kommuner/1277/Thumbs.db", key) == "kommuner/1277/Thumbs.db"
    assert safe_path("enkater/desktop.ini", key) == "enkater/desktop.ini"
    assert safe_path(".Hodzic", key) == f"~{expected_name_id('.Hodzic')}"


@pytest.mark.parametrize("value,shown", [("2009-13-01", True), ("2009-12-32", True), ("05/07/2009", True),
                                         ("31/12/2009", True), ("12/31/2009", False), ("2010-31-12", False),
                                         ("31.20.2010", False)])
def test_a_date_of_the_project_years_is_shown_with_a_month_up_to_19(value, shown):
    assert safe_value(value, date=True) == (value if shown else "".join("#" if c.isdigit() else c for c in value))


def test_a_rows_warnings_do_not_make_a_personnummer_together(raw, ingest):
    """A review's find (2026-12-02): '85010' in Kommun and '12383' in an hours column, two
    warnings of one row, each safe alone: together 8501012383. Masked across the row's issues;
    a row with one such value still shows it, and two invalid dates of one row stay shown."""
    raw.register("1277", 2, [register_row(A, 2), register_row(B, 2),
                             register_row(C, 2, inskrivningsdatum="2009-02-30", utskrivningsdatum="2009-13-01")])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A, kommun="85010", hours=("12383", "", "", "")),
                                      fu_end_row(B, kommun="85010")])
    result = ingest(2)
    i = result.issues.set_index(["source_file", "source_row"])["detail"].sort_index()
    a, b, dates = (" ".join(i.loc[row]) for row in ((FU2, "1"), (FU2, "2"), (REG2, "3")))
    assert "'#####'" in a and "85010" not in a and "12383" not in a, a
    assert "'85010'" in b, b
    assert "'2009-02-30'" in dates and "'2009-13-01'" in dates, dates


def test_split_values_are_masked_past_apostrophes_whole_file_issues_and_sheet_names(raw, ingest):
    """A second review's finds (2026-12-02): a value with an apostrophe ("'85010") hid its digits
    from the masking; two whole-file warnings (an Åstorp export's keys '85010' and '12383')
    were no row; two ignored Pethö sheets named '85010' and '12383' put them in parentheses and
    in source_row. None of the five digits of either half is said now."""
    raw.register("1277", 2, [register_row(A, 2)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A, kommun="'85010", hours=("12383", "", "", ""))])
    raw.register("1277", 5, [register_row(A, 5)])
    doc = {"leverantor": "Åstorps kommun", "cykel": 5, "levererad": "2011-07-08",
           "deltagare": [astorp_entry(A)], "85010": [1], "12383": [2]}
    raw.write_text(AST5, json.dumps(doc))
    raw.register("1277", 1, [register_row(A, 1), register_row(B, 1), register_row(C, 1)])
    raw.petho({"Åstorp": [petho_row(A)], "85010": [petho_row(B)], "12383": [petho_row(C)]})
    said = pd.concat([ingest(c).issues for c in (2, 5, 1)])
    text = " ".join(said["detail"].dropna()) + " " + " ".join(said["source_row"].dropna())
    assert "85010" not in text, said[said["detail"].str.contains("85010") | said["source_row"].str.contains("85010")]
    assert said["reason"].isin(["unexpected_file"]).sum() >= 2 and (said["reason"] == "unknown_municipality").sum() == 2


def test_a_survey_answers_quoted_values_do_not_make_a_personnummer_together(raw, ingest):
    """The survey is read without the checked files' step, which masks a file's issues: its
    '85010' in kommunkod and '12383' in okad_mojlighet are masked with the cycle's issues
    (a review's mutation left that second pass out, and 8501012383 was said whole)."""
    raw.survey(3, [{"svar_id": "1", "kommunkod": "85010", "okad_mojlighet": "12383", "tolk": "ja"},
                   {"svar_id": "2", "kommunkod": "85010", "okad_mojlighet": "4", "tolk": "nej"}])
    result = ingest(3)
    assert issues(result) == [(SURVEY3, "1", "rejected", "invalid_code"), (SURVEY3, "2", "rejected", "invalid_code")]
    details = result.issues.set_index("source_row")["detail"]
    assert "85010" not in details["1"] and "12383" not in details["1"], details["1"]
    assert "(got '#####')" in details["1"], details["1"]
    assert details["2"].endswith("(got '85010')"), details["2"]  # one value alone is still shown


def test_a_rows_quoted_values_do_not_make_a_personnummer_together(raw, ingest):
    """A review's find (2026-12-02): a register shifted by a column put the birth date in `kon`
    and the last four in `fodelseland`. Each was safe alone; together the detail held the
    personnummer. Now neither's digits are quoted, and one four-digit code alone still is."""
    raw.register("1277", 2, [register_row(B, 2), register_row(A, 2, kon="1983-05-14", fodelseland="5214"),
                             register_row(C, 2, fodelseland="5214")])
    result = ingest(2)
    assert issues(result, ignore=NO_PROVIDER) == [(REG2, "2", "rejected", "invalid_code"),
                                                  (REG2, "3", "rejected", "invalid_code")]
    details = result.issues.set_index("source_row")["detail"]
    assert "kon" in details["2"] and "fodelseland" in details["2"], details["2"]
    assert "(got '####-##-##')" in details["2"] and "(got '####')" in details["2"], details["2"]
    assert details["3"].endswith("(got '5214')"), details["3"]


def test_two_values_of_a_row_with_six_digits_between_them_are_masked(raw, ingest):
    """Six digits between a row's quoted values are a birth date ('8501' in `kon`, '01' in
    `fodelseland`): masked. Five are shown."""
    raw.register("1277", 2, [register_row(A, 2, kon="8501", fodelseland="01"),
                             register_row(B, 2, kon="8501", fodelseland="0")])
    result = ingest(2)
    details = result.issues.set_index("source_row")["detail"]
    assert "(got '####')" in details["1"] and "(got '##')" in details["1"], details["1"]
    assert "8501" not in details["1"], details["1"]
    assert "(got '8501')" in details["2"] and "(got '0')" in details["2"], details["2"]


def test_a_date_of_the_project_years_outside_a_field_of_dates_is_masked(raw, ingest):
    """Only an invalid_date detail shows a date: in `kon` even a date of 2009 is masked (a
    register shifted by a column put dates there); the same date in a field of dates is shown."""
    raw.register("1277", 2, [register_row(A, 2, kon="2009-07-05"),
                             register_row(B, 2, utskrivningsdatum="2009-12-32")])
    result = ingest(2)
    details = result.issues.set_index("source_row")["detail"]
    assert details["1"] == "kon must be one of K, M (got '####-##-##')", details["1"]
    assert details["2"].endswith("(got '2009-12-32')"), details["2"]


def test_a_harmonised_frame_failing_its_model_names_the_cycle_and_column_never_the_values():
    """A fault of the ingest (the rules let a value through): the error, which reaches the
    run's log, names the cycle, model, column and check, and leaves out pandera's failure
    cases, which are the frame's values (here a personnummer in the hours' place)."""
    from iga_pipeline.ingest import HarmonisedModelError, _modelled
    from iga_pipeline.validation import Intervention

    frame = pd.DataFrame({"participation_id": ["c5-" + "a" * 16], "intervention": ["internship"],
                          "hours": [8112189876.0]})
    with pytest.raises(HarmonisedModelError) as caught:
        _modelled(Intervention, frame, 5)
    said = str(caught.value)
    assert said.startswith("cycle 5: the harmonised Intervention frame failed its model: column 'hours', check "
                           "less_than_or_equal_to, 1 value(s)")
    assert "8112189876" not in said and "811218" not in said
    assert caught.value.__context__ is None  # pandera's own message is not chained into the traceback
    with pytest.raises(HarmonisedModelError, match=r"cycle 5: .* Intervention frame failed its model: the frame"):
        _modelled(Intervention, frame.drop(columns="hours"), 5)
    # a value the column's type cannot hold: pandera's other error (SchemaErrors), said the same way
    with pytest.raises(HarmonisedModelError) as caught:
        _modelled(Intervention, frame.assign(hours=["811218-9876"]), 5)
    said = str(caught.value)
    assert said.startswith("cycle 5: the harmonised Intervention frame failed its model: column 'hours', check "
                           "coerce_dtype('float64'), 1 value(s)"), said
    assert "811218" not in said and caught.value.__context__ is None


def test_repeated_columns_of_a_header_do_not_make_a_personnummer_together(raw, ingest):
    """A review's find (P12): the header's repeated columns that are no contract column
    were each said by safe_value, listed in one detail without apostrophes, so the masking of
    split values (mask_split_values) never saw them: '85010' and '12383' repeated made
    "repeated column(s) in the header: 12383, 85010", 8501012383 read backwards. They are
    quoted now, as every value a detail shows, and their digits masked when they hold six or
    more between them; one such column alone is still named."""
    raw.register("1277", 2, [register_row(A, 2)], columns=[*REGISTER_COLUMNS, "85010", "85010", "12383", "12383"])
    raw.register("1278", 2, [register_row(B, 2)], columns=[*REGISTER_COLUMNS, "85010", "85010", "kon"])
    result = ingest(2)
    whole = result.issues[result.issues["source_row"].isna()].set_index("source_file")["detail"]
    assert whole[REG2] == "repeated column(s) in the header: '#####', '#####'", whole[REG2]
    assert whole[REG2_BASTAD] == "repeated column(s) in the header: '85010', kon", whole[REG2_BASTAD]


def test_contract_names_out_of_their_place_are_no_cover_for_a_personnummer(raw, ingest, key):
    """A review's find (P13): safe_path trusted a contract file name anywhere in a path,
    and never counted its cycle digit. Folders named like deliveries spelt a personnummer with
    their cycles ('85010/deltagare_cykel1.csv/deltagare_cykel2.csv/.../deltagare_cykel2.csv'
    kept 850101-2382 whole; ten such folders alone, 811228-1111), and a folder of five digits
    above a delivery made a birth date with its cycle (kommuner/85010/deltagare_cykel1.csv).
    A contract file name is the contract's only as the file's own name, and its digits count."""
    pnr = Person(dt.date(1985, 1, 1), 238).pnr("YYMMDDNNNC")
    assert pnr == "8501012382"
    chain = "85010/" + "/".join(f"deltagare_cykel{d}.csv" for d in pnr[5:])
    only_contract_names = "leverantorer/folkuniversitetet/" + "/".join(f"cykel{d}_slut.csv" for d in "8112281111")
    for rel in (chain, only_contract_names, "enkater/85010/enkat_cykel1.csv"):
        shown = safe_path(rel, key)
        assert sum(c.isdigit() for c in shown) < 6, shown
    raw.register("85010", 1, [register_row(A, 1)])
    raw.register("1277", 1, [register_row(B, 1)])
    result = ingest(1)
    files = set(result.audit["source_file"]) | set(result.issues["source_file"])
    assert not any("85010" in f for f in files), files
    assert f"kommuner/~{expected_name_id('85010')}/deltagare_cykel1.csv" in files, files
    # the contract's own names, where the contract puts them, are kept as they are
    for rel in ("kommuner/1277/deltagare_cykel2.csv", "leverantorer/folkuniversitetet/cykel2_90dagar.csv",
                "leverantorer/astorp/cykel5_90dagar.json", "kommuner/9999/deltagare_cykel2.csv",
                "kommuner/1277/deltagare_cykel3.csv/K.txt"):
        assert safe_path(rel, key) == rel, rel


def test_a_name_spelt_over_folders_is_hashed(raw, tmp_path, key):
    """The second red-team review (2026-12-05): each folder held a letter or two, as a code
    may ('K.M', '12,5h'), and a stray file's path spelt a name, stored as it was (the
    inventory's unexpected_file, the build's closing summary): 'kommuner/1277/A/l/i/H.a/s.s/a.n.pdf'.
    Single letters are counted over the path, as its digits are (P13): with more than two, every
    component with one is hashed, a letter's extension dropped; two are still shown."""
    raw.register("1277", 2, [register_row(A, 2)])
    raw.write_text("kommuner/1277/A/l/i/H.a/s.s/a.n.pdf", "stray")
    raw.write_text("kommuner/1277/K.M/deltagare_cykel2.csv", "stray")
    staging.write_inventory(raw.root, tmp_path / "staging", key)
    written = set(pd.read_parquet(tmp_path / "staging" / staging.INVENTORY_ISSUES)["source_file"])
    spelt = "kommuner/1277/" + "/".join(f"~{expected_name_id(p)}" for p in ("A", "l", "i", "H.a", "s.s"))
    assert written == {f"{spelt}/~{expected_name_id('a.n.pdf')}.pdf", "kommuner/1277/K.M/deltagare_cykel2.csv"}, written


def test_a_name_spelt_over_one_rows_values_is_described(raw, ingest):
    """The second red-team review (2026-12-05): 'H-a' in kon, 's-s' in fodelseland and 'a-n' in
    malgrupp, each no more single letters than a code may have ('K/M'), were quoted in one
    detail: Hassan. Single letters are counted over one row's quoted values, as digits are
    (mask_split_values): with more than two, each value with one is described; two are quoted."""
    raw.register("1277", 2, [register_row(A, 2, kon="H-a", fodelseland="s-s", malgrupp="a-n"),
                             register_row(B, 2, kon="K/M")])
    result = ingest(2)
    said = result.issues[result.issues["reason"] == "invalid_code"].set_index("source_row")["detail"]
    assert said["1"].count("(got '<text of 3 characters>')") == 3, said["1"]
    assert not any(v in said["1"] for v in ("H-a", "s-s", "a-n")), said["1"]
    assert said["2"] == "kon must be one of K, M (got 'K/M')", said["2"]


def test_a_described_column_keeps_its_length_when_the_others_are_masked(raw, ingest):
    """The second red-team review (2026-12-05): since P12 quotes a header's repeated columns,
    the masking of split values also masked the length a described name is said with:
    "repeated column(s) in the header: '#####', '#####', '<text of # characters>'". A described
    value quotes nothing of the sender's; its length stays."""
    raw.register("1277", 2, [register_row(A, 2)],
                 columns=[*REGISTER_COLUMNS, "85010", "85010", "12383", "12383", "Hassan", "Hassan"])
    result = ingest(2)
    whole = result.issues[result.issues["source_row"].isna()].set_index("source_file")["detail"]
    assert whole[REG2] == "repeated column(s) in the header: '#####', '#####', '<text of 6 characters>'", whole[REG2]
