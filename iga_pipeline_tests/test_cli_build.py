"""The headless build end to end: whole-file rejections, exit codes, failure safety, no personal data.

Each module fixture writes one raw root and runs the real `iga-pipeline build`
(in process, real Dagster run, real DuckDB file) once; the tests read the
published warehouse. Four builds in all, a few seconds each.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import TEST_KEY, TEST_SECRET, expected_name_id, expected_person_key, rewrite_parquet, run_cli_build
from iga_pipeline import cli
from iga_pipeline.pseudonym import DEVELOPMENT_KEY
from iga_pipeline.settings import INSTANCE_MARK, REPORT_GENERATOR, Paths, claim_instance
from iga_pipeline.sources.masking import safe_path
from iga_pipeline.warehouse import export
from rawfiles import (
    REGISTER_COLUMNS, Person, RawRoot, astorp_entry, astorp_followup, fu_90_row, fu_end_row, people,
    personal_strings, petho_row, register_row,
)

A, B, C, D, E, F = people(6)

# Not text in any encoding: NUL bytes and bytes that are not Windows-1252 either.
GARBAGE = bytes(range(256)) * 4
NOT_CP1252 = b"Personnummer;Kommun\r\n\x81\x8d\x8f\x90\x9d;\x81\r\n"


def audit_rows(build) -> dict[str, dict]:
    frame = build.frame("SELECT * FROM marts.ingest_audit")
    return {r["source_file"]: r for r in frame.to_dict("records")}


def file_issues(build) -> dict[str, tuple]:
    """source_file -> (severity, reason) of the whole-file issues (source_row NULL)."""
    rows = build.query("SELECT source_file, severity, reason FROM marts.data_quality_issues "
                       "WHERE source_row IS NULL")
    out: dict[str, tuple] = {}
    for f, severity, reason in rows:
        assert f not in out, f"two whole-file issues for {f}"
        out[f] = (severity, reason)
    return out


def participations(build) -> dict[str, tuple]:
    """person_key|cycle -> (municipality_code, status_end, status_90d)."""
    rows = build.query("SELECT person_key, cycle, municipality_code, status_end, status_90d "
                       "FROM marts.fct_participation")
    return {f"{k}|{c}": (m, s, s90) for k, c, m, s, s90 in rows}


def pk(person: Person, cycle: int) -> str:
    return f"{expected_person_key(person)}|{cycle}"


def assert_every_file_balances(build) -> None:
    for f, r in audit_rows(build).items():
        assert r["rows_read"] == r["rows_loaded"] + r["rows_rejected"] + r["rows_duplicate"], (f, r)


def assert_rejected_whole(build, rejected: dict[str, str]) -> None:
    """Each file: one issue (source_row NULL, 'rejected', reason) and audit status 'rejected'."""
    issues, audit = file_issues(build), audit_rows(build)
    for source_file, reason in rejected.items():
        assert issues.get(source_file) == ("rejected", reason), source_file
        a = audit[source_file]
        assert (a["status"], a["reason"], a["rows_loaded"], a["rows_duplicate"]) == (
            "rejected", reason, 0, 0), source_file
        assert a["rows_rejected"] == a["rows_read"]


def followed_up_cycle_4(raw: RawRoot) -> None:
    """One complete, followed-up cycle, so that every mart has something in each scope."""
    raw.register("1257", 4, [register_row(F, 4)])
    raw.folkuniversitetet(4, "slut", [fu_end_row(F, kommun="Örkelljunga", utfallskod="1")])
    raw.folkuniversitetet(4, "90dagar", [fu_90_row(F, kommun="Örkelljunga", utfallskod="3")])


# --- build 1: unreadable files ---------------------------------------------------------------

UNREADABLE = {
    "kommuner/1278/deltagare_cykel2.csv": "empty file",
    "kommuner/1275/deltagare_cykel2.csv": "binary garbage",
    "kommuner/1257/deltagare_cykel2.csv": "Windows-1252 where UTF-8 is expected",
    "leverantorer/folkuniversitetet/cykel2_90dagar.csv": "UTF-8 where Windows-1252 is expected",
    "leverantorer/folkuniversitetet/cykel3_slut.csv": "bytes that are no Windows-1252",
    "leverantorer/petho/cykel1_resultat.xlsx": "an xlsx that is not a zip",
    "leverantorer/astorp/cykel5_90dagar.json": "truncated JSON",
    "enkater/enkat_cykel3.csv": "whitespace only",
}


@pytest.fixture(scope="module")
def unreadable_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("unreadable")
    raw = RawRoot(root / "raw")
    # What must still be built.
    raw.register("1277", 1, [register_row(A, 1), register_row(B, 1)])
    raw.register("1277", 2, [register_row(A, 2), register_row(C, 2)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A, utfallskod="1"), fu_end_row(C, utfallskod="3")])
    raw.register("1277", 3, [register_row(E, 3)])
    raw.register("1277", 5, [register_row(D, 5)])
    raw.astorp(5, [astorp_entry(D, status="ANST")])
    followed_up_cycle_4(raw)
    # The unreadable files.
    raw.write_bytes("kommuner/1278/deltagare_cykel2.csv", b"")
    raw.write_bytes("kommuner/1275/deltagare_cykel2.csv", GARBAGE)
    raw.register("1257", 2, [register_row(F, 2, fornamn="Åsa", efternamn="Öberg")], encoding="cp1252")
    raw.folkuniversitetet(2, "90dagar", [fu_90_row(A, kommun="Åstorp")], encoding="utf-8")
    raw.write_bytes("leverantorer/folkuniversitetet/cykel3_slut.csv", NOT_CP1252)
    raw.write_bytes("leverantorer/petho/cykel1_resultat.xlsx", b"Personnr;Namn\n850101-2383;Ali\n")
    full = raw.astorp(5, [astorp_followup(D, "STUD")], followup=True).read_bytes()
    raw.write_bytes("leverantorer/astorp/cykel5_90dagar.json", full[: len(full) // 2])
    raw.write_bytes("enkater/enkat_cykel3.csv", b"  \n\n \t\n")
    # The builder really wrote what the test claims.
    assert b"\xc5sa" in (raw.root / "kommuner/1257/deltagare_cykel2.csv").read_bytes()  # cp1252 Å
    assert "Åstorp".encode() in (raw.root / "leverantorer/folkuniversitetet/cykel2_90dagar.csv").read_bytes()
    return run_cli_build(raw.root, root / "wh" / "iga.duckdb")


def test_unreadable_files_exit_3(unreadable_build):
    assert unreadable_build.exit_code == 3, unreadable_build.stderr
    assert "rejected whole" in unreadable_build.stderr


def test_files_rejected_whole_are_not_said_to_be_folders_not_listed(unreadable_build):
    """The closing summary's two counts from the issues (queries.ISSUE_TOTALS): its warnings, and
    the folders that could not be listed, which files rejected whole (their rejections of no
    row are audited files) are not (a review's mutation counted them as such, unseen)."""
    (warnings,) = unreadable_build.query("SELECT count(*) FROM marts.data_quality_issues WHERE severity = 'warning'")[0]
    assert f"  warnings: {warnings}\n" in unreadable_build.stdout, unreadable_build.stdout
    assert "could not be listed" not in unreadable_build.stderr, unreadable_build.stderr[-2000:]


def test_each_file_rejected_whole_is_said_once(unreadable_build):
    """Each was printed twice: by the ingest's Python logger, plainly, and by the run's log
    (a review's find). Now only the run's line, with its cycle."""
    for source_file in UNREADABLE:
        said = [line for line in unreadable_build.stderr.splitlines() if f"{source_file} rejected whole" in line]
        assert len(said) == 1 and f"cycle {source_file.split('cykel')[1][0]}: {source_file}" in said[0], said


def test_a_cycle_build_says_its_count_of_files_rejected_whole_is_of_every_cycle(unreadable_build, tmp_path):
    """`--cycle 4` read no file rejected whole, so its log named none, yet the closing line
    counted the warehouse's eight (cycles 1, 2, 3 and 5) as if this run had met them."""
    shutil.copytree(unreadable_build.warehouse.parent, tmp_path / "wh")
    raw = unreadable_build.warehouse.parent.parent / "raw"
    build = run_cli_build(raw, tmp_path / "wh" / unreadable_build.warehouse.name, "--cycle", "4")
    assert build.exit_code == 3, build.stderr[-2000:]
    assert not [line for line in build.stderr.splitlines() if "rejected whole" in line and "cycle " in line
                and ": see" not in line], build.stderr[-2000:]  # no file named: cycle 4 has none
    assert (f"{len(UNREADABLE)} raw file(s) were rejected whole, of every cycle (this run read cycle 4's alone): "
            "see marts.ingest_audit") in build.stderr, build.stderr[-2000:]
    assert ", of every cycle" not in unreadable_build.stderr  # a build of every cycle says it plainly


@pytest.fixture(scope="module")
def development_key_build(clean_build, tmp_path_factory):
    """clean_build's raw files, built without IGA_PSEUDONYM_KEY: the public development key."""
    build = run_cli_build(clean_build.raw.root, tmp_path_factory.mktemp("devkey") / "wh" / "iga.duckdb",
                          IGA_PSEUDONYM_KEY=None)
    assert build.exit_code == 0, build.stderr[-2000:]
    return build


def test_the_development_key_is_said_once_by_the_command_line(development_key_build):
    """The banner, and not again as the run's warning (a review's find: said twice)."""
    assert development_key_build.stderr.count("PUBLIC development key") == 1, development_key_build.stderr


KEY_RECORD = "SELECT fingerprint FROM staging.build_inputs WHERE name = 'pseudonym_key'"


def test_a_warehouse_says_it_was_built_under_the_development_key(development_key_build, clean_build):
    """A review's find (K4): such a warehouse's person_keys can be recomputed from personnummer,
    and only the command's stderr said so. The warehouse records it and the report says it
    at its top; a warehouse under a secret key says neither."""
    report = (development_key_build.warehouse.parent / "report" / "index.html").read_text(encoding="utf-8")
    assert development_key_build.query(KEY_RECORD) == [("development",)]
    assert 'id="development-key"' in report and "Built with the public development key" in report
    secret_report = (clean_build.warehouse.parent / "report" / "index.html").read_text(encoding="utf-8")
    assert clean_build.query(KEY_RECORD) == [("secret",)]
    assert 'id="development-key"' not in secret_report and "development key" not in secret_report


def test_unreadable_files_are_reported_and_audited(unreadable_build):
    assert_rejected_whole(unreadable_build, {f: "unreadable_file" for f in UNREADABLE})
    assert_every_file_balances(unreadable_build)


def test_the_rest_of_the_build_goes_on_after_unreadable_files(unreadable_build):
    p = participations(unreadable_build)
    assert p == {
        pk(A, 1): ("1277", "unknown", None),  # the Pethö workbook was unreadable: no status
        pk(B, 1): ("1277", "unknown", None),
        pk(A, 2): ("1277", "work", None),     # the 90-day file was unreadable: not followed up
        pk(C, 2): ("1277", "studies", None),
        pk(E, 3): ("1277", "unknown", None),
        pk(D, 5): ("1277", "work", None),
        pk(F, 4): ("1257", "work", "studies"),
    }
    audit = audit_rows(unreadable_build)
    assert audit["leverantorer/folkuniversitetet/cykel2_slut.csv"]["status"] == "loaded"
    assert audit["leverantorer/folkuniversitetet/cykel2_slut.csv"]["rows_loaded"] == 2
    followed = dict(unreadable_build.query("SELECT cycle, followed_up FROM marts.outcomes_by_cycle"))
    assert followed[2] is False and followed[5] is False


# --- build 2: the other whole-file reasons ---------------------------------------------------------

STRUCTURAL = {
    "kommuner/1278/deltagare_cykel2.csv": "missing_columns",           # no 'kon'
    "leverantorer/folkuniversitetet/cykel3_slut.csv": "missing_columns",  # no 'Utfallskod'
    "leverantorer/petho/cykel1_resultat.xlsx": "missing_columns",      # no 'Status 90 dagar'
    "leverantorer/astorp/cykel6.json": "missing_columns",              # no 'deltagare'
    "enkater/enkat_cykel3.csv": "missing_columns",                     # no 'okad_mojlighet'
    "kommuner/9999/deltagare_cykel2.csv": "unknown_municipality",
    "kommuner/1280/deltagare_cykel5.csv": "unknown_municipality",      # Malmö: not a project municipality
    "leverantorer/folkuniversitetet/cykel5_slut.csv": "provider_cycle_mismatch",
    "leverantorer/astorp/cykel2.json": "provider_cycle_mismatch",
    "leverantorer/petho/cykel3_resultat.xlsx": "provider_cycle_mismatch",
    "leverantorer/astorp/cykel7.json": "cycle_mismatch",               # says "cykel": 8
}
UNEXPECTED = [
    "LASMIG.txt",
    "kommuner/1277/deltagare_cykel2.xlsx",
    "kommuner/1277/.~lock.deltagare_cykel2.csv#",
    "leverantorer/astorp/cykel9.json",       # no cycle 9
    "enkater/enkat_cykel3.csv.bak",
    "kommuner/1277/deltagare_cykel02.csv",  # a leading zero: no second delivery of cycle 2
]


@pytest.fixture(scope="module")
def structural_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("structural")
    raw = RawRoot(root / "raw")
    # Good deliveries.
    raw.register("1277", 1, [register_row(B, 1)])
    raw.register("1277", 2, [register_row(A, 2), register_row(C, 2)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(A, utfallskod="1"), fu_end_row(C, utfallskod="1")])
    raw.register("1277", 3, [register_row(E, 3)])
    raw.register("1277", 5, [register_row(D, 5)])
    raw.astorp(5, [astorp_entry(D, status="ANST")])
    raw.register("1277", 6, [register_row(D, 6)])
    raw.register("1277", 7, [register_row(D, 7)])
    followed_up_cycle_4(raw)
    # missing_columns
    raw.register("1278", 2, [register_row(F, 2)], columns=[c for c in REGISTER_COLUMNS if c != "kon"])
    raw.folkuniversitetet(3, "slut", [fu_end_row(E)],
                          columns=["Personnummer", "Kommun", "Timmar validering", "Utfallsdatum"])
    raw.petho({"Åstorp": [petho_row(B, status_end="Studier")[:4]]},
              columns=["Personnr", "Namn", "Insatser", "Status cykelslut"])
    raw.write_text("leverantorer/astorp/cykel6.json",
                   '{"leverantor": "Åstorps kommun", "cykel": 6, "participants": []}')
    raw.survey(3, [{"svar_id": "1", "kommunkod": "1277", "tolk": "ja"}],
               columns=["svar_id", "kommunkod", "tolk"])
    # unknown_municipality: valid content in a folder that is no project municipality
    raw.register("9999", 2, [register_row(F, 2)])
    raw.register("1280", 5, [register_row(F, 5)])
    # provider_cycle_mismatch: valid content, wrong provider for the cycle
    raw.folkuniversitetet(5, "slut", [fu_end_row(D, utfallskod="3")])
    raw.astorp(2, [astorp_entry(A, status="STUD")])
    raw.petho({"Åstorp": [petho_row(E, status_end="Anställd")]}, cycle=3)
    # The export says another cycle than its name.
    raw.astorp(7, [astorp_entry(D, status="ANST")], cykel=8)
    for rel in UNEXPECTED:
        raw.write_text(rel, "stray\n")
    return run_cli_build(raw.root, root / "wh" / "iga.duckdb")


def test_structural_rejections_exit_3(structural_build):
    assert structural_build.exit_code == 3, structural_build.stderr


def test_structural_rejections_are_reported_and_audited(structural_build):
    assert_rejected_whole(structural_build, STRUCTURAL)
    assert_every_file_balances(structural_build)
    audit = audit_rows(structural_build)
    assert audit["kommuner/1278/deltagare_cykel2.csv"]["rows_read"] == 1
    assert audit["kommuner/9999/deltagare_cykel2.csv"]["source_kind"] == "register"
    assert audit["leverantorer/folkuniversitetet/cykel5_slut.csv"]["source_kind"] == "folkuniversitetet"
    for rel, reason in STRUCTURAL.items():  # rejected for the path alone, their rows still counted
        if reason in ("unknown_municipality", "provider_cycle_mismatch"):
            assert (audit[rel]["rows_read"], audit[rel]["rows_rejected"]) == (1, 1), rel


def test_unexpected_files_are_warnings_not_rejections(structural_build):
    issues = file_issues(structural_build)
    stored = [safe_path(rel, TEST_KEY) for rel in UNEXPECTED]  # 'LASMIG.txt' could be a name: hashed
    assert stored[0] == f"~{expected_name_id(UNEXPECTED[0])}.txt"
    assert stored[1:] == UNEXPECTED[1:]
    for rel in stored:
        assert issues.get(rel) == ("warning", "unexpected_file"), rel
    audit = audit_rows(structural_build)
    assert not set(stored) & set(audit)  # not read, so not audited


def test_the_summary_names_the_unexpected_files_a_count_alone_left_unseen(structural_build):
    """A misnamed delivery is a warning, not read; the closing summary said only its count among
    the warnings (an exploratory review's find). It names them as the warehouse does, five at
    most, and counts the rest."""
    stored = sorted(safe_path(rel, TEST_KEY) for rel in UNEXPECTED)
    (line,) = [line for line in structural_build.stderr.splitlines() if "match no delivery" in line]
    assert line.startswith(f"{len(UNEXPECTED)} file(s) of the raw root match no delivery of the contract "
                           "and were not read: "), line
    assert line.endswith(f"{', '.join(stored[:5])} and {len(stored) - 5} more; "
                         "see marts.data_quality_issues (unexpected_file)"), line
    assert stored[5] not in line  # the one counted, not named ('~<id>.txt' sorts last)


def test_a_file_rejected_whole_is_said_with_what_was_wrong(structural_build):
    """The run's line for a file rejected whole gave its reason code alone; it now gives the
    detail the warehouse keeps (here the column the register lacks)."""
    (detail,) = structural_build.query(
        "SELECT detail FROM marts.data_quality_issues "
        "WHERE source_file = 'kommuner/1278/deltagare_cykel2.csv' AND source_row IS NULL")[0]
    assert "kon" in detail, detail
    assert f"kommuner/1278/deltagare_cykel2.csv rejected whole: missing_columns ({detail})" in structural_build.stderr


def test_the_summary_names_a_misnamed_delivery_before_the_hashed_names_of_other_files(tmp_path):
    """The summary names five unexpected files; sorted by path alone, five hashed ids ('~' and
    a keyed id: names that could be a person's, such as 'enkät_cykel1.csv') in enkater/ came
    first, and the misnamed register that tells the engineer what to rename was among 'and 1
    more' (a review's find: 26 files, the five named all hashed)."""
    raw = RawRoot(tmp_path / "raw")
    raw.register("1277", 1, [register_row(B, 1)])
    for n in range(1, 6):
        raw.write_text(f"enkater/enkät_cykel{n}.csv", "stray\n")
    misnamed = "kommuner/1277/deltagare_cykel02.csv"
    raw.write_text(misnamed, "stray\n")
    result = run_cli_build(raw.root, tmp_path / "wh" / "iga.duckdb")
    assert result.exit_code == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "match no delivery" in line]
    assert line.startswith(f"6 file(s) of the raw root match no delivery of the contract and were not read: "
                           f"{misnamed}, enkater/~"), line
    assert line.endswith(" and 1 more; see marts.data_quality_issues (unexpected_file)"), line


def test_the_rest_of_the_build_goes_on_after_structural_rejections(structural_build):
    p = participations(structural_build)
    assert p == {
        pk(B, 1): ("1277", "unknown", None),
        pk(A, 2): ("1277", "work", None),     # not 'studies' from astorp/cykel2.json
        pk(C, 2): ("1277", "work", None),
        pk(E, 3): ("1277", "unknown", None),
        pk(D, 5): ("1277", "work", None),     # not 'studies' from folkuniversitetet/cykel5_slut.csv
        pk(D, 6): ("1277", "unknown", None),
        pk(D, 7): ("1277", "unknown", None),
        pk(F, 4): ("1257", "work", "studies"),
    }
    # F was only in rejected registers for cycles 2 and 5: counted there nowhere.
    assert not {pk(F, 2), pk(F, 5)} & set(p)
    assert audit_rows(structural_build)["kommuner/1277/deltagare_cykel2.csv"]["status"] == "loaded"


# --- build 3: a clean build with personal data everywhere ------------------------------------------

# Distinctive names, so that a hit is a leak and not a chance match in some binary.
OLD = Person(dt.date(1905, 3, 3), 401, "Methusela", "Gammelgård")
COORD = Person(dt.date(1979, 3, 3), 55, "Bosselius", "Ängquist", coordination=True)
PEOPLE = [Person(dt.date(1985, 1, 1), 238, "Abdirahman", "Hassanzadeh"),
          Person(dt.date(1990, 5, 5), 12, "Sárahanna", "Öberg-Lindqvist"),
          COORD, OLD,
          Person(dt.date(1962, 11, 30), 731, "Elinora", "Åkessonius"),
          Person(dt.date(1971, 8, 19), 882, "Kallevi", "Zetterqvist"),
          Person(dt.date(1958, 2, 14), 307, "Draganka", "Petrović")]
P1, P2, P3, P4, P5, P6, P7 = PEOPLE
BAD = "850101-2384"  # P1 with a wrong check digit: personnummer-shaped, must not leak either


@pytest.fixture(scope="module")
def clean_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    raw = RawRoot(root / "raw")
    raw.register("1277", 1, [register_row(P1, 1, form="YYMMDD-NNNC"),
                             register_row(P2, 1, form="YYMMDDNNNC", kon="M", fodelseland="SE")], bom=True)
    # another target group in a cycle of refugees: outcomes_by_cycle says 'mixed'
    raw.register("1278", 1, [register_row(P3, 1, form="YYYYMMDD-NNNC", fodelseland="DE", malgrupp="ifo")])
    raw.petho({"Åstorp": [petho_row(P1, as_number=True, status_90d="Anställd", kommentar=f"Ring {P2.name}"),
                          petho_row(P2, status_end="Studier", status_90d="studier")],
               "Båstad": [petho_row(P3, status_end="Okänt", status_90d="")]})
    raw.register("1277", 2, [register_row(P4, 2, form="YYMMDD+NNNC", fodelseland="XK"),
                             register_row(P5, 2, form="YYYYMMDDNNNC"),
                             register_row(P6, 2, personnummer=BAD),  # rejected: invalid_personnummer
                             register_row(P7, 2, kon="?")])           # rejected: invalid_code
    raw.folkuniversitetet(2, "slut", [fu_end_row(P5, hours=(10.5, "", "", "")),
                                      fu_end_row(P7, kommun="Ängelholm")])  # orphan
    raw.folkuniversitetet(2, "90dagar", [fu_90_row(P5, utfallskod="3")])
    raw.register("1292", 5, [register_row(P6, 5, form="YYYYMMDD-NNNC", kon="M", fodelseland=""),
                             register_row(P1, 5)])
    raw.astorp(5, [astorp_entry(P6, kommunkod="1292"), astorp_entry(P1, form="YYMMDD-NNNC", status=None)])
    raw.astorp(5, [astorp_followup(P6, "STUD")], followup=True)
    raw.survey(3, [{"svar_id": "1", "kommunkod": "1277", "okad_mojlighet": "5", "tolk": "ja"}])
    raw.write_text("LASMIG.txt", f"Frågor: {P1.name}, {P1.pnr()}\n")
    raw.write_text(f"kommuner/1277/intyg {P2.pnr('YYYYMMDD-NNNC')}.pdf", "stray")
    build = run_cli_build(raw.root, root / "wh" / "iga.duckdb")
    build.raw = raw
    return build


def needles() -> dict[str, str]:
    """Every string that would be personal data if found in the warehouse."""
    out = personal_strings(PEOPLE)
    out[BAD] = "an invalid personnummer"
    out[BAD.replace("-", "")] = "an invalid personnummer"
    return out


def test_clean_build_with_only_warnings_exits_0(clean_build):
    assert clean_build.exit_code == 0, clean_build.stderr
    assert clean_build.query("SELECT count(*) FROM marts.ingest_audit WHERE status = 'rejected'") == [(0,)]
    reasons = dict(clean_build.query(
        "SELECT reason, count(*) FROM marts.data_quality_issues GROUP BY reason"))
    assert reasons["unexpected_file"] == 2
    assert reasons["invalid_personnummer"] == 1 and reasons["orphan_outcome"] == 1
    assert_every_file_balances(clean_build)


def test_clean_build_counts_every_written_form(clean_build):
    p = participations(clean_build)
    assert p == {
        pk(P1, 1): ("1277", "work", "work"),
        pk(P2, 1): ("1277", "studies", "studies"),
        pk(P3, 1): ("1278", "unknown", "unknown"),
        pk(P4, 2): ("1277", "unknown", "unknown"),
        pk(P5, 2): ("1277", "work", "studies"),
        pk(P6, 5): ("1292", "work", "studies"),
        pk(P1, 5): ("1292", "unknown", "unknown"),
    }
    hours = clean_build.query("SELECT hours FROM marts.fct_intervention WHERE hours IS NOT NULL ORDER BY 1")
    assert hours == [(10.5,), (12.5,), (12.5,)]  # FU decimal comma; Åstorp timmar


def test_clean_build_keeps_who_took_part_and_where(clean_build):
    """gender from kon, birth_region from fodelseland (countries.csv), target_group from
    malgrupp, provider from the cycle (warehouse.md); a review's mutations of each went unseen."""
    rows = clean_build.query("SELECT person_key, cycle, gender, birth_region, target_group, provider "
                             "FROM marts.fct_participation")
    assert {f"{k}|{c}": rest for k, c, *rest in rows} == {
        pk(P1, 1): ["K", "outside_europe", "flykting", "Pethö Consulting"],  # IQ
        pk(P2, 1): ["M", "sweden", "flykting", "Pethö Consulting"],
        pk(P3, 1): ["K", "europe", "ifo", "Pethö Consulting"],
        pk(P4, 2): ["K", "europe", "flykting", "Folkuniversitetet"],  # XK, Kosovo
        pk(P5, 2): ["K", "outside_europe", "flykting", "Folkuniversitetet"],
        pk(P6, 5): ["M", "unknown", "ifo", "Åstorps kommun"],  # fodelseland empty
        pk(P1, 5): ["K", "outside_europe", "ifo", "Åstorps kommun"],
    }
    groups = dict(clean_build.query("SELECT cycle, target_group FROM marts.outcomes_by_cycle"))
    assert groups == {1: "mixed", 2: "flykting", 3: "flykting", 4: "flykting",  # 3, 4: nobody; from cycles.csv
                      5: "ifo", 6: "ifo", 7: "ifo", 8: "ifo"}


def test_the_summary_names_a_run_of_cycles_as_a_range_and_a_lone_cycle_as_itself(clean_build):
    """outcomes_summary.cycles (rule R10's scopes): cycles 1, 2 and 5 followed up are '1-2,5'
    (a review's mutation wrote '1-2,5-5' and no test saw it)."""
    assert clean_build.query("SELECT scope, cycles FROM marts.outcomes_summary ORDER BY scope") == [
        ("all", "1-8"), ("followed_up", "1-2,5")]
    assert clean_build.query("SELECT cycle FROM marts.outcomes_by_cycle WHERE followed_up ORDER BY cycle") == [
        (1,), (2,), (5,)]


def _text_cells(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    if not columns:
        return []
    cast = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in columns)
    cells = [c for row in con.execute(f"SELECT {cast} FROM {relation}").fetchall() for c in row if c]
    return columns + cells


def test_no_personal_data_in_any_table(clean_build):
    con = duckdb.connect(str(clean_build.warehouse), read_only=True)
    try:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                             "WHERE table_catalog = current_database()").fetchall()
        schemas = {s for s, _ in tables}
        assert {"marts", "staging", "intermediate"} <= schemas, schemas
        texts = {f"{s}.{t}": _text_cells(con, f'"{s}"."{t}"') for s, t in tables}
    finally:
        con.close()
    assert sum(len(v) for v in texts.values()) > 100  # the scan saw real content
    found = [(table, what) for table, cells in texts.items() for cell in cells
             for needle, what in needles().items() if needle in cell]
    assert found == []


def test_no_personal_data_in_the_warehouse_file_bytes(clean_build):
    data = clean_build.warehouse.read_bytes()
    for needle, what in needles().items():
        for encoding in ("utf-8", "utf-16-le"):
            assert needle.encode(encoding) not in data, what


def test_no_personal_data_in_staging_or_any_file_beside_the_warehouse(clean_build):
    folder = clean_build.warehouse.parent
    files = [p for p in folder.rglob("*") if p.is_file()]
    parquet = [p for p in files if p.suffix == ".parquet"]
    assert any("staging" in p.parts for p in parquet), files
    found = []
    for path in files:
        data = path.read_bytes()
        found += [(str(path.relative_to(folder)), what) for needle, what in needles().items()
                  if needle.encode("utf-8") in data]
    con = duckdb.connect()
    try:
        for path in parquet:
            relation = f"read_parquet('{path}')"
            for cell in _text_cells(con, relation):
                found += [(str(path.relative_to(folder)), what)
                          for needle, what in needles().items() if needle in cell]
    finally:
        con.close()
    assert found == []


def test_the_scan_would_see_personal_data(tmp_path):
    """The scanner itself: a pnr or a name planted in a table is found."""
    db = tmp_path / "planted.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA staging; CREATE TABLE staging.t (a BIGINT, b VARCHAR)")
    con.execute("INSERT INTO staging.t VALUES (?, ?)", [P1.as_number, f"x {P7.last} y"])
    cells = _text_cells(con, "staging.t")
    con.close()
    hits = {what for cell in cells for needle, what in needles().items() if needle in cell}
    assert hits == {f"personnummer of {P1.first}", f"name of {P7.first}"}


# --- a failed build leaves the previous warehouse as it was ------------------------------------------

@pytest.mark.parametrize("broken", ["missing-raw-dir", "raw-dir-is-a-file", "empty-raw-dir",
                                    "production-without-key", "staging-blocked"])
def test_failed_build_exits_1_and_keeps_the_previous_warehouse(clean_build, tmp_path, broken):
    assert clean_build.exit_code == 0
    folder = tmp_path / "wh"
    folder.mkdir()
    warehouse = folder / "iga.duckdb"
    shutil.copyfile(clean_build.warehouse, warehouse)  # the previous, complete warehouse
    before = warehouse.read_bytes()
    raw_dir, env = clean_build.raw.root, {}
    if broken == "missing-raw-dir":
        raw_dir = tmp_path / "no-such-folder"
    elif broken == "raw-dir-is-a-file":
        raw_dir = tmp_path / "raw.zip"
        raw_dir.write_bytes(b"PK\x03\x04")
    elif broken == "empty-raw-dir":  # a share not mounted: every delivery gone at once
        raw_dir = tmp_path / "mnt"
        raw_dir.mkdir()
    elif broken == "production-without-key":
        env = {"IGA_PSEUDONYM_KEY": None, "IGA_ENV": "production"}
    else:  # the build starts, then cannot write its staging folder
        (folder / "staging").write_text("not a folder")

    build = run_cli_build(raw_dir, warehouse, **env)

    assert build.exit_code == 1, build.stdout + build.stderr
    # each failed step in one line: Dagster's record of it, stack trace and all, is not shown
    # (an empty raw root printed a hundred lines of it before the command's own: a review's find)
    assert "Stack Trace" not in build.stderr and "Traceback" not in build.stderr, build.stderr
    assert warehouse.read_bytes() == before
    # no candidate left; an empty raw root writes nothing at all, not even the inventory
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["iga.duckdb"] + (["staging"] if broken == "staging-blocked" else []))
    assert "Not executing" not in build.stderr, build.stderr  # nor the steps after it, one line each
    if broken == "empty-raw-dir":
        assert "no cycle has any delivery" in build.stderr and "not mounted" in build.stderr
        # two steps fail alike: said once
        (line,) = [line for line in build.stderr.splitlines() if line.startswith("error in ")]
        assert line.startswith("error in raw__inventory, harmonised: "), build.stderr
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM marts.fct_participation").fetchone()[0] == 7
    finally:
        con.close()


def test_a_publish_that_fails_halfway_puts_the_previous_warehouse_back(clean_build, tmp_path):
    """The build passes every check, then its publish fails after the warehouse has been
    swapped in: a file named `parquet` where the Parquet folder goes. Exit 1 promises the
    previous warehouse, so the swap is undone: warehouse, report and that file as they were,
    nothing set aside left behind."""
    folder = tmp_path / "wh"
    folder.mkdir()
    warehouse = folder / "iga.duckdb"
    shutil.copyfile(clean_build.warehouse, warehouse)  # the previous, complete warehouse
    (folder / "report").mkdir()
    (folder / "report" / "index.html").write_text("the previous report")
    (folder / "parquet").write_text("not a folder")
    before = warehouse.read_bytes()

    build = run_cli_build(clean_build.raw.root, warehouse)

    assert build.exit_code == 1, build.stdout + build.stderr
    assert "the previous warehouse was left as it was" in build.stderr, build.stderr
    assert warehouse.read_bytes() == before
    assert (folder / "report" / "index.html").read_text() == "the previous report"
    assert (folder / "parquet").read_text() == "not a folder"
    left = [p.name for p in [*folder.iterdir(), *(folder / "report").iterdir()]]
    assert [n for n in left if n.startswith(".") and n != ".publish.lock"] == [], left


def test_an_empty_raw_root_leaves_the_staging_and_a_later_cycle_build_keeps_every_cycle(clean_build, tmp_path):
    """A share not mounted during a build (every delivery gone at once), then a late
    delivery of one cycle: the empty build stages nothing, so the `--cycle` build after it
    still has every other cycle's staging. (Found by a review: the empty build staged each
    cycle empty, and the `--cycle` build then published that one cycle alone, exit 0.)"""
    folder = tmp_path / "wh"
    shutil.copytree(clean_build.warehouse.parent, folder)
    warehouse = folder / "iga.duckdb"
    staged = {p: p.read_bytes() for p in sorted((folder / "staging").glob("cycle=*/*.parquet"))}
    assert staged
    empty = tmp_path / "mnt"
    empty.mkdir()

    build = run_cli_build(empty, warehouse)
    assert build.exit_code == 1
    (line,) = [line for line in build.stderr.splitlines() if line.startswith("error in ")]
    assert line.startswith("error in raw__inventory, harmonised: "), build.stderr
    # naming the root it read (it named none, and only IGA_RAW_DIR: an operations review's find)
    assert f"no cycle has any delivery in the raw root {empty} (a share not mounted, a wrong --raw-dir" in line
    assert {p: p.read_bytes() for p in sorted((folder / "staging").glob("cycle=*/*.parquet"))} == staged

    late = run_cli_build(clean_build.raw.root, warehouse, "--cycle", "2")
    assert late.exit_code == 0, late.stderr
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("SELECT list(DISTINCT cycle ORDER BY cycle) FROM marts.fct_participation"
                           ).fetchone()[0] == [1, 2, 5]
    finally:
        con.close()


def test_a_second_name_for_a_delivery_is_an_unexpected_file(clean_build, tmp_path):
    """`cykel02_slut.csv` (a zero), `cykel\u0662` (another script's digit) or a name ending in a
    line break beside the real delivery: not a second delivery of the cycle, which failed the
    build (two outcome rows per participation) or made identical register rows conflicting
    (review finds)."""
    raw = tmp_path / "raw"
    shutil.copytree(clean_build.raw.root, raw)
    copies = []
    for path in sorted(p for p in raw.rglob("*cykel*") if p.is_file()):
        for other in (path.name.replace("cykel", "cykel0"), path.name.replace("cykel2", "cykel\u0662"),
                      path.name + "\n"):
            if other != path.name:
                shutil.copyfile(path, path.with_name(other))
                copies.append(path.with_name(other).relative_to(raw).as_posix())
    assert len(copies) >= 10
    build = run_cli_build(raw, tmp_path / "wh" / "iga.duckdb")
    assert build.exit_code == 0, build.stderr[-2000:]
    assert participations(build) == participations(clean_build)
    assert build.query("SELECT * FROM marts.outcomes_by_cycle") == clean_build.query(
        "SELECT * FROM marts.outcomes_by_cycle")
    unexpected = {f for f, (severity, reason) in file_issues(build).items() if reason == "unexpected_file"}
    assert {safe_path(c, TEST_KEY) for c in copies} <= unexpected


def test_a_cycle_build_without_a_warehouse_says_none_was_published(clean_build, tmp_path):
    """`--cycle N` into a new folder cannot build a warehouse (no other cycle is staged): the
    CLI stages the cycle alone (the delivery sensor's job), says so, and does not claim a
    previous warehouse was kept. A cycle out of range is refused with the range."""
    warehouse = tmp_path / "new" / "iga.duckdb"
    build = run_cli_build(clean_build.raw.root, warehouse, "--cycle", "2")
    assert build.exit_code == 1
    assert "no staging yet for cycle(s) 1, 3, 4, 5, 6, 7, 8" in build.stderr
    assert build.stderr.rstrip().endswith("cycle 2 was staged; build failed; no warehouse was built"), \
        build.stderr[-1500:]
    assert "Traceback" not in build.stderr and "Stack Trace" not in build.stderr  # only the ingest ran
    assert not warehouse.exists()
    assert [p.name for p in (warehouse.parent / "staging").glob("cycle=*")] == ["cycle=2"]
    wrong = run_cli_build(clean_build.raw.root, warehouse, "--cycle", "9", IGA_PSEUDONYM_KEY=None)
    assert wrong.exit_code == 1 and "--cycle 9 is not one of the project's cycles (1-8)" in wrong.stderr
    assert "!!" not in wrong.stderr  # refused before the development key's banner: the usage error alone


@pytest.mark.parametrize("where", ["a folder", "the raw root", "a text file", "inside the raw root",
                                   "beside the raw root as its gx", "beside the raw root in its staging",
                                   "beside the raw root as its gx, through a link",
                                   "inside the raw root, through '..'", "its staging a link into the raw root",
                                   "in a text file"])
def test_a_warehouse_path_a_build_would_destroy_is_refused(clean_build, tmp_path, where):
    """A publish replaces what is at the warehouse path: a review gave a folder (the raw root's
    parent, then the raw root) as --warehouse, and the build deleted it, exit 0. A raw root in a
    folder the build writes (the warehouse's `gx`, replaced on every build; its `staging`) was
    built into, and the next build read the staging as unexpected files (a later review)."""
    raw = {"beside the raw root as its gx": tmp_path / "wh" / "gx",
           "beside the raw root as its gx, through a link": tmp_path / "wh" / "gx",
           "beside the raw root in its staging": tmp_path / "wh" / "staging" / "raw"}.get(where, tmp_path / "raw")
    shutil.copytree(clean_build.raw.root, raw)
    if "through a link" in where:  # a review: paths were compared as given, not as the folders they are
        (tmp_path / "link").symlink_to(raw)
        raw = tmp_path / "link"
    if where == "its staging a link into the raw root":
        (raw / "staged").mkdir()
        (tmp_path / "wh").mkdir()
        (tmp_path / "wh" / "staging").symlink_to(raw / "staged")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("precious")
    target = {"a folder": notes, "the raw root": raw, "a text file": notes / "mine.txt",
              "inside the raw root": raw / "kommuner" / "iga.duckdb",
              "inside the raw root, through '..'": tmp_path / "notes" / ".." / "raw" / "iga.duckdb",
              "in a text file": notes / "mine.txt" / "wh" / "iga.duckdb",  # it was a traceback, in the run
              }.get(where, tmp_path / "wh" / "iga.duckdb")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    build = run_cli_build(raw, target)
    assert build.exit_code == 1, build.stderr[-1500:]
    said = {"a folder": "is a folder", "the raw root": "is a folder", "a text file": "a file DuckDB did not write",
            "inside the raw root": "is inside the raw root",
            "inside the raw root, through '..'": "is inside the raw root",
            "its staging a link into the raw root": "a folder the build writes, is inside the raw root",
            "in a text file": f"the warehouse's folder {notes / 'mine.txt' / 'wh'} cannot be made: "
                              f"{notes / 'mine.txt'} is a file",
            }.get(where, "a folder the build writes")
    assert said in build.stderr and "Traceback" not in build.stderr, build.stderr[-1500:]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before  # nothing written
    assert (notes / "mine.txt").read_text() == "precious"


@pytest.mark.parametrize("folder", ["parquet", "gx", "report"])
def test_a_first_build_beside_a_folder_it_would_replace_is_refused(clean_build, tmp_path, folder):
    """`--warehouse ~/iga.duckdb`: the first build replaced ~/parquet and ~/gx whole, their files
    lost, and ~/report/index.html, exit 0 (a review's finds). Refused before anything is written; a
    gx the checks of a failed build left (no warehouse yet), a folder a publish was begun in, or a
    report the pipeline rendered, is the pipeline's."""
    home = tmp_path / "home"
    (home / folder).mkdir(parents=True)
    mine = "index.html" if folder == "report" else "mine.txt"
    (home / folder / mine).write_text("<html><title>precious</title></html>")
    build = run_cli_build(clean_build.raw.root, home / "iga.duckdb")
    assert build.exit_code == 1, build.stderr[-2000:]
    said = (f"{home / folder / mine} is not this pipeline's report, and a first build would replace it"
            if folder == "report" else f"{home / folder} holds files, and a first build would replace that folder")
    assert build.stderr.startswith(f"error: {said} with its own"), build.stderr[-2000:]
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == [folder, f"{folder}/{mine}"]
    if folder == "report":  # the pipeline's report, its warehouse file deleted to build anew
        shutil.copyfile(clean_build.warehouse.parent / "report" / "index.html", home / folder / mine)
        assert REPORT_GENERATOR in (home / folder / mine).read_text()
    elif folder == "gx":
        (home / "gx" / "validated_cycles.json").write_text("{}")  # as the checks of a failed build leave it
    else:
        (home / ".publish.lock").touch()  # a publish killed midway: no warehouse, the folder is the pipeline's
    build = run_cli_build(clean_build.raw.root, home / "iga.duckdb")
    assert build.exit_code == 0, build.stderr[-2000:]
    if folder == "parquet":  # the warehouse file deleted to build anew: the exports left are the pipeline's
        (home / "iga.duckdb").unlink()
        (home / ".publish.lock").unlink()
        assert (home / "parquet" / "fct_participation.parquet").exists()
        build = run_cli_build(clean_build.raw.root, home / "iga.duckdb")
        assert build.exit_code == 0, build.stderr[-2000:]


def test_a_report_index_html_that_is_a_folder_is_refused(clean_build, tmp_path):
    """A folder named report/index.html (not a file) was moved aside by the publish and removed,
    its files with it, exit 0 (a review's find, 2026-12-03). Refused, first build or not: the
    pipeline never makes that a folder. A link to one is replaced, the folder it names kept."""
    home = tmp_path / "home"
    (home / "report" / "index.html").mkdir(parents=True)
    (home / "report" / "index.html" / "mine.txt").write_text("precious")
    build = run_cli_build(clean_build.raw.root, home / "iga.duckdb")
    assert build.exit_code == 1, build.stderr[-2000:]
    assert build.stderr == (f"error: {home / 'report' / 'index.html'} is a folder, and a build would replace it "
                            "with its report: move that folder away\n"), build.stderr[-2000:]
    assert (home / "report" / "index.html" / "mine.txt").read_text() == "precious"
    (home / "iga.duckdb").touch()  # a warehouse there already (an empty file is DuckDB's): still refused
    assert any("is a folder" in p for p in Paths(clean_build.raw.root, home / "iga.duckdb").problems())
    (home / "iga.duckdb").unlink()
    (home / "report" / "index.html").rename(home / "mine")
    (home / "report" / "index.html").symlink_to(home / "mine", target_is_directory=True)
    build = run_cli_build(clean_build.raw.root, home / "iga.duckdb")
    assert build.exit_code == 0, build.stderr[-2000:]
    assert (home / "report" / "index.html").is_file() and (home / "mine" / "mine.txt").read_text() == "precious"


@pytest.mark.parametrize("given", ["option", "IGA_WAREHOUSE"])
def test_a_warehouse_path_ending_in_a_slash_is_refused(clean_build, tmp_path, monkeypatch, capsys, given):
    """`--warehouse out/wh/` built a file `out/wh` and wrote staging, parquet, report and gx
    into `out`, replacing any folder of those names there, exit 0 (a review's find)."""
    (tmp_path / "out" / "report").mkdir(parents=True)
    (tmp_path / "out" / "report" / "mine.html").write_text("precious")
    folder = f"{tmp_path / 'out' / 'wh'}/"
    if given == "option":
        code, stderr = (build := run_cli_build(clean_build.raw.root, folder)).exit_code, build.stderr
    else:
        monkeypatch.setenv("IGA_PSEUDONYM_KEY", TEST_SECRET)
        monkeypatch.setenv("IGA_WAREHOUSE", folder)
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        code, stderr = cli.main(["build", "--raw-dir", str(clean_build.raw.root)]), capsys.readouterr().err
    assert code == 1, stderr[-2000:]
    assert stderr == (f"error: the warehouse {folder} names a folder: name the warehouse file in it "
                      f"(say {tmp_path / 'out' / 'wh' / 'iga.duckdb'})\n"), stderr[-2000:]
    assert [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")] == ["out", "out/report", "out/report/mine.html"]


@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_a_blank_raw_root_or_warehouse_variable_is_unset(monkeypatch, blank):
    """As a blank numeric setting or key counts as unset: IGA_WAREHOUSE=' ' built a file named
    ' ' in the working folder, its staging, Parquet, report and checks beside it (an audit's note)."""
    from iga_pipeline.settings import Paths

    monkeypatch.setenv("IGA_RAW_DIR", blank)
    monkeypatch.setenv("IGA_WAREHOUSE", blank)
    paths = Paths.from_env()
    assert (paths.raw_dir, paths.warehouse) == (Path("data/raw").absolute(), Path("warehouse/iga.duckdb").absolute())


@pytest.mark.parametrize("last", [".", ".."])
def test_a_warehouse_path_ending_in_a_dot_or_two_is_refused_as_a_folder(clean_build, tmp_path, last):
    """`out/wh/.` names the folder `out/wh` as `out/wh/` does, but only the slash was refused:
    it built a file `out/wh` with staging, parquet, report and gx beside it in `out`, exit 0;
    `out/wh/..` (the folder `out`) made `out/wh/staging` and failed in its ingest, exit 1,
    leaving it there (an audit of comments against the code)."""
    (tmp_path / "out").mkdir()
    given = f"{tmp_path / 'out' / 'wh'}/{last}"
    build = run_cli_build(clean_build.raw.root, given)
    assert build.exit_code == 1, build.stderr[-2000:]
    assert build.stderr.startswith(f"error: the warehouse {given} names a folder: name the warehouse file in it"), \
        build.stderr[-2000:]
    assert [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")] == ["out"]  # nothing written


def test_a_warehouse_folder_whose_name_duckdb_reads_as_a_pattern_is_refused(clean_build, tmp_path):
    """A review's find (2026-12-02): the warehouse `wh[1]/iga.duckdb` read the staging of `wh1`
    beside it, exit 0, with that build's figures: DuckDB reads `[`, `]`, `*` and `?` in the
    staging's paths as patterns. Refused before anything is written."""
    (tmp_path / "wh1").mkdir()
    for name in ("wh[1]", "wh*", "wh?", "w\\h1"):  # DuckDB reads '\\' as '/'
        (tmp_path / "w").mkdir(exist_ok=True)
        build = run_cli_build(clean_build.raw.root, tmp_path / name / "iga.duckdb")
        assert build.exit_code == 1 and "which DuckDB reads as a pattern of file names" in build.stderr, build.stderr
        assert "Traceback" not in build.stderr and not (tmp_path / name).exists()
    assert list((tmp_path / "wh1").iterdir()) == [] and list((tmp_path / "w").iterdir()) == []


def test_a_warehouse_path_that_is_not_utf8_is_refused_before_anything_is_read(clean_build, tmp_path):
    """A review's find (2026-12-05): a warehouse folder named with a byte that is not UTF-8
    ('\\xd6rk', Latin-1's Ö) failed after the whole ingest with a UnicodeEncodeError, leaving an
    empty staging folder: DuckDB and Arrow open files by UTF-8 names. The raw root may be so named."""
    raw = tmp_path / os.fsdecode(b"r\xe5")
    shutil.copytree(clean_build.raw.root, raw)
    odd = tmp_path / os.fsdecode(b"\xd6rk data")
    build = run_cli_build(raw, odd / "iga.duckdb")
    assert build.exit_code == 1
    assert build.stderr.startswith("error: the warehouse's path is not UTF-8"), build.stderr[-2000:]
    assert not odd.exists()
    build = run_cli_build(raw, tmp_path / "Örkelljunga data" / "iga.duckdb")
    assert build.exit_code == 0 and build.warehouse.exists(), build.stderr[-2000:]


@pytest.mark.parametrize("home,said", [(".dagster_home", "is not an absolute path"),
                                       ("/nonexistent/dagster_home", "is not an existing folder"),
                                       ("~/nonexistent_dagster_home", "is not an existing folder")])
def test_a_dagster_home_dagster_would_refuse_is_named_before_the_build(clean_build, tmp_path, home, said):
    """A relative or missing DAGSTER_HOME made Dagster raise a 25-line traceback after the
    imports (a review's find, 2026-12-02): now one line names it, exit 1, nothing built.
    '~' is read as Dagster reads it (a later review)."""
    build = run_cli_build(clean_build.raw.root, tmp_path / "wh" / "iga.duckdb", DAGSTER_HOME=home)
    assert build.exit_code == 1 and said in build.stderr and "Traceback" not in build.stderr, build.stderr
    assert not (tmp_path / "wh").exists()


def test_a_dagster_home_whose_dagster_yaml_dagster_cannot_read_is_named_in_a_line(clean_build, tmp_path):
    """A dagster.yaml that is not YAML (or not Dagster's config) ended the build with an 80-line
    traceback (a review's find): one line names DAGSTER_HOME and what Dagster said, exit 1."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("run_storage: [unclosed\n")
    build = run_cli_build(clean_build.raw.root, tmp_path / "wh" / "iga.duckdb", DAGSTER_HOME=str(home))
    assert build.exit_code == 1, build.stderr[-2000:]
    assert build.stderr.startswith(f"error: DAGSTER_HOME={str(home)!r}: Dagster cannot load the instance there "
                                   "(ParserError: while parsing a flow sequence"), build.stderr[-2000:]
    assert len(build.stderr.splitlines()) == 1 and not (tmp_path / "wh").exists()


def test_a_dagster_home_under_the_home_folder_is_accepted(clean_build, tmp_path, monkeypatch):
    """Dagster expands '~' in DAGSTER_HOME: so does the check (a review's find)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "dh").mkdir()
    build = run_cli_build(clean_build.raw.root, tmp_path / "wh" / "iga.duckdb", DAGSTER_HOME="~/dh")
    assert build.exit_code == 0, build.stderr[-2000:]
    assert any((tmp_path / "dh").iterdir())  # the run is recorded there
    # ... and the instance is this warehouse's from now on (settings.claim_instance)
    assert (tmp_path / "dh" / INSTANCE_MARK).read_text().strip() == str((tmp_path / "wh" / "iga.duckdb").resolve())


def test_a_dagster_home_that_holds_another_warehouse_is_refused(clean_build, tmp_path):
    """A review's find (2026-12-02): a CLI build into another warehouse, with the deployment's
    DAGSTER_HOME, recorded marts the deployment's automation took for its own, so a delivery
    it had ingested was never published. The build is refused, exit 1, nothing built."""
    home = tmp_path / "home"
    home.mkdir()
    deployment = tmp_path / "deployment" / "iga.duckdb"
    (home / INSTANCE_MARK).write_text(f"{deployment}\n")
    build = run_cli_build(clean_build.raw.root, tmp_path / "wh" / "iga.duckdb", DAGSTER_HOME=str(home))
    assert build.exit_code == 1, build.stderr[-2000:]
    assert f"holds the runs of the warehouse {deployment}" in build.stderr and "a DAGSTER_HOME of its own" in build.stderr
    assert "Traceback" not in build.stderr and not (tmp_path / "wh").exists()
    assert sorted(p.name for p in home.iterdir()) == [INSTANCE_MARK]  # no run recorded


def test_a_build_refused_for_its_settings_records_no_warehouse_in_the_instance(clean_build, tmp_path):
    """A review's find: a first build refused for a typo (a bad setting, a wrong --cycle) recorded
    its warehouse, locking the real one out. The CLI only compares; the run's first step records."""
    home = tmp_path / "home"
    home.mkdir()
    for args, env in ((("--cycle", "99"), {}), ((), {"IGA_INGEST_WORKERS": "abc"})):
        build = run_cli_build(clean_build.raw.root, tmp_path / "typo" / "iga.duckdb", *args,
                              DAGSTER_HOME=str(home), **env)
        assert build.exit_code == 1, build.stderr[-2000:]
        assert not (home / INSTANCE_MARK).exists()


def test_two_first_runs_at_once_each_read_a_whole_record(tmp_path):
    """A review saw 14 of 300 races read an empty record ("holds the runs of the warehouse ,")."""
    from concurrent.futures import ThreadPoolExecutor

    for attempt in range(40):
        home = tmp_path / str(attempt)
        home.mkdir()
        warehouses = [tmp_path / f"w{i}" / "iga.duckdb" for i in range(6)]
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda w: claim_instance(home, w), warehouses))
        recorded = (home / INSTANCE_MARK).read_text().strip()
        assert recorded in {str(w.resolve()) for w in warehouses}
        assert answers.count(None) == 1, answers
        assert all(f"holds the runs of the warehouse {recorded}," in a for a in answers if a)
        assert [p.name for p in home.iterdir()] == [INSTANCE_MARK]  # no temporary file left


def test_the_first_use_of_an_instance_records_its_warehouse(tmp_path):
    one, other = tmp_path / "a" / "iga.duckdb", tmp_path / "b" / ".." / "c" / "iga.duckdb"
    assert claim_instance(tmp_path, one) is None
    assert claim_instance(tmp_path, one) is None
    problem = claim_instance(tmp_path, other)
    assert str(one.resolve()) in problem and str(other.resolve()) in problem
    assert (tmp_path / INSTANCE_MARK).read_text().strip() == str(one.resolve())  # unchanged


def test_a_link_that_loops_is_left_to_the_build_to_name(tmp_path):
    """Path.resolve raises RuntimeError on a loop: the paths' check must not (a review)."""
    from iga_pipeline.settings import Paths

    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert Paths(tmp_path / "loop", tmp_path / "wh" / "iga.duckdb").problems() == []
    assert Paths(tmp_path / "raw", tmp_path / "loop" / "iga.duckdb").problems() == []
    (tmp_path / "wh").mkdir()
    (tmp_path / "wh" / "staging").symlink_to(tmp_path / "wh" / "staging")  # compared without its '..'
    assert Paths(tmp_path / "raw", tmp_path / "raw" / ".." / "wh" / "iga.duckdb").problems() == []


def test_the_assets_refuse_a_warehouse_path_that_is_a_folder(tmp_path):
    """The same check under dagster dev: every asset gets its paths from the resource."""
    from iga_pipeline.defs.resources import IGAResource
    from iga_pipeline.settings import SettingError

    with pytest.raises(SettingError, match="is a folder"):
        IGAResource(raw_dir=str(tmp_path), warehouse=str(tmp_path)).paths()
    assert IGAResource(raw_dir=str(tmp_path / "raw"), warehouse=str(tmp_path / "wh" / "iga.duckdb")).paths()


@pytest.mark.parametrize("argv", [["build", "--bogus"], ["build", "--cycle", "five"], [], ["bogus"]])
def test_a_usage_error_exits_1_as_a_failed_build(argv, capsys):
    """warehouse.md knows 0, 3 and 1; argparse's own 2 is not among them."""
    assert cli.main(argv) == 1
    assert "usage: iga-pipeline" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--raw-dir", "--warehouse"])
def test_an_empty_path_option_is_refused_not_taken_for_the_default(clean_build, tmp_path, monkeypatch, option):
    """`--warehouse "$WH"` with WH unset built the default warehouse, warehouse/iga.duckdb of the
    working folder (the deployment's, run from the clone), exit 0 (a review's find)."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(clean_build.raw.root, tmp_path / "data" / "raw")  # the default raw root
    raw, warehouse = ("", tmp_path / "wh" / "iga.duckdb") if option == "--raw-dir" else (tmp_path / "data" / "raw", "")
    build = run_cli_build(raw, warehouse)
    assert build.exit_code == 1, build.stderr[-2000:]
    assert build.stderr.startswith(f"error: {option} is empty"), build.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


@pytest.mark.parametrize("blank", [" ", "\t"])
def test_a_blank_path_option_or_resource_setting_is_refused(tmp_path, monkeypatch, capsys, blank):
    """A blank variable is unset, but a blank path given on purpose is a mistake: `--warehouse ' '`
    built a file named ' ' (and its staging, Parquet, report beside it), and so did the resource's
    raw_dir or warehouse set to ' ' under dagster dev (an audit's note)."""
    from iga_pipeline.defs.resources import IGAResource
    from iga_pipeline.settings import SettingError

    monkeypatch.chdir(tmp_path)
    assert cli.main(["build", "--warehouse", blank]) == 1
    assert capsys.readouterr().err == "error: the warehouse is blank: name it, or leave it out\n"
    assert cli.main(["build", "--raw-dir", blank, "--warehouse", str(tmp_path / "wh" / "iga.duckdb")]) == 1
    assert capsys.readouterr().err == "error: the raw root is blank: name it, or leave it out\n"
    assert list(tmp_path.iterdir()) == []
    for setting in ({"raw_dir": blank}, {"warehouse": blank}):
        with pytest.raises(SettingError, match="is blank"):
            IGAResource(**setting).paths()


def test_an_unknown_option_of_build_is_said_with_builds_usage(capsys):
    """It was said under the top usage line, `iga-pipeline [-h] {build,synth} ...`, which names
    none of build's options (a review's find)."""
    assert cli.main(["build", "--warehouse", "x.duckdb", "--raw_dir", "raw"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("usage: iga-pipeline build [-h] [--raw-dir DIR]"), err
    assert err.rstrip().endswith("iga-pipeline build: error: unrecognized arguments: --raw_dir raw"), err


def test_version_says_the_installed_version(capsys):
    """`--version` said 'the following arguments are required: command' (a review's find)."""
    from importlib.metadata import version

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"iga-pipeline {version('iga-pipeline')}\n"


@pytest.mark.parametrize("secret, said", [(None, "is not set"), (DEVELOPMENT_KEY, "is the public development key")])
def test_the_development_key_banner_says_why_it_is_used(tmp_path, secret, said):
    """It said 'IGA_PSEUDONYM_KEY is not set' when the variable held the development key
    (a review's find). An empty raw root stops the build at its first steps, after the banner."""
    (tmp_path / "raw").mkdir()
    build = run_cli_build(tmp_path / "raw", tmp_path / "wh" / "iga.duckdb", IGA_PSEUDONYM_KEY=secret)
    assert build.exit_code == 1 and f"!! IGA_PSEUDONYM_KEY {said}: person_key uses the PUBLIC" in build.stderr, \
        build.stderr
    assert "no cycle has any delivery in the raw root" in build.stderr  # stopped there, not before
    assert not (tmp_path / "wh").exists()


@pytest.mark.parametrize("secret, said", [(None, "is not set"), (DEVELOPMENT_KEY, "is the public development key")])
def test_a_run_started_in_the_ui_says_why_the_development_key_is_used_as_the_banner_does(clean_build, tmp_path,
                                                                                      monkeypatch, secret, said):
    """The run's warning (for a run started in the UI, which has no banner) still said 'is not
    set' of a variable that held the development key (a review's find, 2026-12-03; C12 for the
    banner)."""
    import logging

    from dagster import DagsterInstance
    from iga_pipeline.definitions import defs
    from iga_pipeline.defs.resources import IGAResource

    if secret is None:
        monkeypatch.delenv("IGA_PSEUDONYM_KEY", raising=False)
    else:
        monkeypatch.setenv("IGA_PSEUDONYM_KEY", secret)
    instance = DagsterInstance.ephemeral()
    run = defs.resolve_job_def("ingest_cycle").execute_in_process(
        instance=instance, partition_key="1", raise_on_error=False,
        resources={"iga": IGAResource(raw_dir=str(clean_build.raw.root), warehouse=str(tmp_path / "wh" / "iga.duckdb"))})
    assert run.success
    warnings = [e.user_message for e in instance.all_logs(run.run_id)
                if e.level == logging.WARNING and "PUBLIC development key" in e.user_message]
    assert warnings == [f"IGA_PSEUDONYM_KEY {said}: person_key uses the PUBLIC development key"], warnings


def test_a_tilde_in_the_paths_is_the_home_folder_as_in_dagster_home(monkeypatch, tmp_path):
    """A quoted '~/wh/iga.duckdb' in IGA_WAREHOUSE made a folder named '~' in the working folder
    (a review's find); DAGSTER_HOME's '~' was already expanded, as Dagster does."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("IGA_WAREHOUSE", "~/wh/iga.duckdb")
    monkeypatch.setenv("IGA_RAW_DIR", "~/raw")
    paths = Paths.from_env()
    assert (paths.warehouse, paths.raw_dir) == (tmp_path / "wh" / "iga.duckdb", tmp_path / "raw")
    assert Paths.from_env("~/other", "~/x/iga.duckdb").raw_dir == tmp_path / "other"


def test_help_exits_0(capsys):
    assert cli.main(["build", "--help"]) == 0
    assert "--cycle N" in capsys.readouterr().out


def test_help_names_the_options_as_the_readme_and_the_usage_line_do(capsys):
    """README and the module's usage say `--raw-dir DIR --warehouse FILE`, `synth --out DIR --seed N`;
    --help said RAW_DIR, WAREHOUSE, OUT and SEED (a review's find)."""
    for command, usage in ((["build"], "[--raw-dir DIR] [--warehouse FILE] [--cycle N]"),
                           (["synth"], "[--out DIR] [--seed N] [--participations N]")):
        assert cli.main([*command, "--help"]) == 0
        assert usage in " ".join(capsys.readouterr().out.split()), command


@pytest.mark.parametrize("name, value, message", [
    ("IGA_INGEST_WORKERS", "two", "IGA_INGEST_WORKERS='two' is not a whole number above 0"),
    ("IGA_INGEST_WORKERS", "0", "IGA_INGEST_WORKERS='0' is not a whole number above 0"),
    ("IGA_MAX_FILE_MB", "-1", "IGA_MAX_FILE_MB='-1' is not a number above 0"),
    ("IGA_MAX_WORKBOOK_ROWS", "1.5", "IGA_MAX_WORKBOOK_ROWS='1.5' is not a whole number above 0"),
    ("IGA_MAX_WORKBOOK_MB", "none", "IGA_MAX_WORKBOOK_MB='none' is not a number above 0"),
    # (a review's finds: no byte, every workbook rejected; and a traceback)
    ("IGA_MAX_WORKBOOK_MB", "1e-9", "IGA_MAX_WORKBOOK_MB='1e-9' is not a size in MB from one byte"),
    ("IGA_MAX_FILE_MB", "1e308", "IGA_MAX_FILE_MB='1e308' is not a size in MB from one byte"),
    ("IGA_DUCKDB_MEMORY", "lots", "IGA_DUCKDB_MEMORY='lots' is not a size DuckDB knows"),
    # (10MB ran out of memory in the marts, after the whole ingest: a review's find)
    ("IGA_DUCKDB_MEMORY", "10MB", "IGA_DUCKDB_MEMORY='10MB' is less than the 32MB a build needs"),
    # (a review's finds: '-1' built with no limit at all, and '1KB' was 'not a size DuckDB knows')
    ("IGA_DUCKDB_MEMORY", "-1", "IGA_DUCKDB_MEMORY='-1' is not a size DuckDB knows"),
    ("IGA_DUCKDB_MEMORY", "-2GB", "IGA_DUCKDB_MEMORY='-2GB' is not a size DuckDB knows"),
    ("IGA_DUCKDB_MEMORY", "none", "IGA_DUCKDB_MEMORY='none' is not a size DuckDB knows"),
    ("IGA_DUCKDB_MEMORY", "1KB", "IGA_DUCKDB_MEMORY='1KB' is less than the 32MB a build needs"),
    ("IGA_DUCKDB_MEMORY", "0GB", "IGA_DUCKDB_MEMORY='0GB' is less than the 32MB a build needs"),
    # (a review's find: the floor was 30 MiB, 31.46 MB, not the 32MB said)
    ("IGA_DUCKDB_MEMORY", "31.5MB", "IGA_DUCKDB_MEMORY='31.5MB' is less than the 32MB a build needs"),
    # (a review's find: accepted, and DuckDB ran out of memory before it spilled)
    ("IGA_DUCKDB_MEMORY", "100TB", "IGA_DUCKDB_MEMORY='100TB' is more than this machine's"),
])
def test_a_setting_the_pipeline_cannot_use_stops_the_build_before_it_starts(clean_build, tmp_path, name,
                                                                            value, message):
    """Before: a raw ValueError traceback (IGA_INGEST_WORKERS), a failure after the whole
    ingest (IGA_DUCKDB_MEMORY), every file rejected (IGA_MAX_FILE_MB) (a review's find)."""
    warehouse = tmp_path / "wh" / "iga.duckdb"
    build = run_cli_build(clean_build.raw.root, warehouse, **{name: value})
    assert build.exit_code == 1
    assert any(line.startswith(f"error: {message}") for line in build.stderr.splitlines()), build.stderr
    assert not warehouse.parent.exists()  # nothing read, nothing staged


@pytest.mark.parametrize("host", ["cgroup v1", "cgroup v2, a service's MemoryMax"])
def test_a_duckdb_memory_above_the_cgroups_limit_is_refused(clean_build, tmp_path, monkeypatch, host):
    """Only cgroup v2's memory.max at the root was read: on a cgroup v1 host a container's
    limit (memory.limit_in_bytes), and on v2 a systemd service's MemoryMax (its own cgroup's
    memory.max), were not, so an IGA_DUCKDB_MEMORY above them was accepted, and the default
    was a quarter of the host's memory (a review's find, 2026-12-03)."""
    from iga_pipeline import settings
    from iga_pipeline.warehouse import duck

    cgroups = tmp_path / "cgroup"
    if host == "cgroup v1":  # a container's own cgroup mounted as the root; /proc names the host's
        (cgroups / "memory").mkdir(parents=True)
        (cgroups / "memory" / "memory.limit_in_bytes").write_text(f"{2 * 2**30}\n")
        proc = "5:cpu,cpuacct:/docker/0123\n4:memory:/docker/0123\n0::/\n"
    else:  # the root has no memory.max; the service's cgroup has
        (cgroups / "system.slice" / "iga.service").mkdir(parents=True)
        (cgroups / "system.slice" / "memory.max").write_text("max\n")
        (cgroups / "system.slice" / "iga.service" / "memory.max").write_text(f"{2 * 2**30}\n")
        proc = "0::/system.slice/iga.service\n"
    (tmp_path / "proc_cgroup").write_text(proc)
    monkeypatch.setattr(settings, "CGROUP_ROOT", cgroups, raising=False)
    monkeypatch.setattr(settings, "PROC_CGROUP", tmp_path / "proc_cgroup", raising=False)
    assert settings.usable_memory() == 2 * 2**30
    assert duck.duckdb_memory_limit() == "1GB"  # a quarter of the limit, at least 1GB
    build = run_cli_build(clean_build.raw.root, tmp_path / "wh" / "iga.duckdb", IGA_DUCKDB_MEMORY="4GB")
    assert build.exit_code == 1
    assert build.stderr.startswith("error: IGA_DUCKDB_MEMORY='4GB' is more than this machine's 2.0 GiB"), build.stderr


def test_a_size_setting_is_taken_up_to_a_petabyte(monkeypatch):
    """IGA_MAX_FILE_MB and IGA_MAX_WORKBOOK_MB take any size up to a petabyte (1e9 MB), as the
    message says; a mutation review lowered the bound a thousandfold and no test failed."""
    from iga_pipeline import settings

    monkeypatch.setenv("IGA_MAX_FILE_MB", "1e9")
    assert settings.max_file_bytes() == 10**9 * 2**20 and settings.setting_problems() == []
    monkeypatch.setenv("IGA_MAX_FILE_MB", "1.01e9")
    assert settings.setting_problems() == [
        "IGA_MAX_FILE_MB='1.01e9' is not a size in MB from one byte (0.000001) to a petabyte (1e9)"]


def test_an_empty_file_at_the_warehouse_path_is_not_refused_as_anothers(tmp_path):
    """An empty file is one DuckDB opens as a new database (a warehouse `touch`ed, or a
    first open cut short): it is not a file the build would wrongly replace. A mutation review
    made it refused, and no test failed; a file of other bytes stays refused."""
    (tmp_path / "raw").mkdir()
    warehouse = tmp_path / "wh" / "iga.duckdb"
    warehouse.parent.mkdir()
    warehouse.touch()
    assert Paths(tmp_path / "raw", warehouse).problems() == []
    warehouse.write_text("notes")
    assert Paths(tmp_path / "raw", warehouse).problems() == [
        f"the warehouse {warehouse} is a file DuckDB did not write: a build would replace it"]


def test_a_memory_limit_of_a_cgroup_above_this_process_s_is_read(tmp_path, monkeypatch):
    """A limit set on a parent cgroup (a systemd slice's MemoryMax) bounds every service in it:
    the cgroups above this process's are read up to the root (a mutation review read only the
    process's own, and no test failed)."""
    from iga_pipeline import settings

    own = tmp_path / "cgroup" / "system.slice" / "iga.service"
    own.mkdir(parents=True)
    (own / "memory.max").write_text("max\n")
    (own.parent / "memory.max").write_text(f"{3 * 2**30}\n")
    (tmp_path / "proc_cgroup").write_text("0::/system.slice/iga.service\n")
    monkeypatch.setattr(settings, "CGROUP_ROOT", tmp_path / "cgroup")
    monkeypatch.setattr(settings, "PROC_CGROUP", tmp_path / "proc_cgroup")
    assert settings.usable_memory() == min(3 * 2**30, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def test_the_default_duckdb_memory_is_a_quarter_of_the_memory_from_1_to_4_gb(tmp_path, monkeypatch):
    """README: 'a quarter of RAM, 1-4 GB, at most half of it'. The quarter was rounded down to
    whole gigabytes: 1GB, half of that, on an 8 GB machine (7.5 GiB to the kernel), and 3GB on a
    16 GB laptop's 15.6 GiB (an audit of comments against the code); and under a cgroup limit of
    768 MiB the default was 1GB, which the same value set explicitly was refused as (a review)."""
    import duckdb
    from iga_pipeline import settings
    from iga_pipeline.warehouse import duck

    (tmp_path / "cgroup").mkdir()
    (tmp_path / "proc_cgroup").write_text("0::/\n")
    monkeypatch.setattr(settings, "CGROUP_ROOT", tmp_path / "cgroup")
    monkeypatch.setattr(settings, "PROC_CGROUP", tmp_path / "proc_cgroup")
    monkeypatch.delenv("IGA_DUCKDB_MEMORY", raising=False)
    units = {"MiB": 2**20, "GiB": 2**30}
    for memory in (768 * 2**20, int(7.5 * 2**30), int(15.6 * 2**30)):
        (tmp_path / "cgroup" / "memory.max").write_text(f"{memory}\n")
        expected = min(4e9, max(1e9, settings.usable_memory() / 4), settings.usable_memory() / 2)
        monkeypatch.setenv("IGA_DUCKDB_MEMORY", duck.duckdb_memory_limit())
        assert settings.duckdb_memory()  # the default, set explicitly, is not refused
        monkeypatch.delenv("IGA_DUCKDB_MEMORY")
        with duckdb.connect() as con:  # as DuckDB reads it ('1.8 GiB': cut to a tenth of its unit)
            con.execute(f"SET memory_limit = '{duck.duckdb_memory_limit()}'")
            amount, unit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0].split()
        assert abs(float(amount) * units[unit] - expected) <= 0.1 * units[unit] + 10**6, (memory, amount, unit)


def test_the_numeric_settings_take_their_documented_forms(clean_build, tmp_path):
    build = run_cli_build(clean_build.raw.root, tmp_path / "wh" / "iga.duckdb", IGA_INGEST_WORKERS="2",
                          IGA_DUCKDB_MEMORY="512MB", IGA_MAX_FILE_MB="0.5", IGA_MAX_WORKBOOK_ROWS="1000",
                          IGA_MAX_WORKBOOK_MB="0.5")
    assert build.exit_code == 0, build.stderr


def _altered_copy(clean_build, tmp_path, staged: str, select: str) -> Path:
    """A copy of the clean build's warehouse and staging, with one staged file of cycle 2
    replaced by a query over it (`{src}` stands for the file)."""
    folder = tmp_path / "wh"
    shutil.copytree(clean_build.warehouse.parent / "staging", folder / "staging")
    warehouse = folder / "iga.duckdb"
    shutil.copyfile(clean_build.warehouse, warehouse)
    rewrite_parquet(folder / "staging" / "cycle=2" / staged, select)
    return warehouse


def test_a_failed_check_is_named_with_what_it_found(clean_build, tmp_path):
    """Staging of cycle 2 altered after the build (a person_key of 64 characters that are
    not all hex: pandera's model checks the length, Great Expectations' suite of
    marts.fct_participation the pattern), then `build --cycle 5`: exit 1, the check named
    with its failed expectation and count, the previous warehouse kept."""
    warehouse = _altered_copy(clean_build, tmp_path, "participations.parquet",
                              "SELECT * REPLACE ('z' || person_key[2:] AS person_key) FROM {src}")
    before = warehouse.read_bytes()

    build = run_cli_build(clean_build.raw.root, warehouse, "--cycle", "5")

    assert build.exit_code == 1, build.stdout + build.stderr
    head = "check gx_fct_participation of marts/fct_participation failed:"
    assert head in build.stderr, build.stderr
    failed = build.stderr.split(head, 1)[1]
    assert "person_key_is_hex64" in failed and "unexpected" in failed, build.stderr
    assert warehouse.read_bytes() == before
    # the Parquet export started beside the checks was stopped, and its folder removed
    assert not list(warehouse.parent.glob(".parquet.*.pending"))
    assert not [c for c in export._RUNNING if c.is_relative_to(tmp_path)]


def test_a_failed_pandera_check_is_printed_without_the_values(clean_build, tmp_path):
    """Staged participations of cycle 2 altered: a personnummer where the municipality
    code belongs, a gender outside the code list. The pandera check of the staged files
    fails; the command prints which column failed which check, how often, and no value."""
    warehouse = _altered_copy(clean_build, tmp_path, "participations.parquet",
                              f"SELECT * REPLACE ('{P4.pnr()}' AS municipality_code, 'X' AS gender) FROM {{src}}")

    build = run_cli_build(clean_build.raw.root, warehouse, "--cycle", "5")

    assert build.exit_code == 1, build.stdout + build.stderr
    head = "check pandera_participations of harmonised/participations failed:"
    assert head in build.stderr, build.stderr
    table = build.stderr.split(head, 1)[1]
    assert "municipality_code" in table and "gender" in table and "isin" in table, build.stderr
    assert "cycle=2/participations.parquet" in table, build.stderr  # which file, not only which column
    output = build.stdout + build.stderr
    for text, what in needles().items():
        assert text not in output, what


def test_build_where_no_cycle_is_followed_up_succeeds(clean_build, tmp_path):
    """A raw root early in the project: one register, no 90-day delivery anywhere.

    Built over a previous warehouse: whatever the outcome, exit 1 must leave it as it was."""
    raw = RawRoot(tmp_path / "raw")
    raw.register("1277", 2, [register_row(A, 2)])
    warehouse = tmp_path / "wh" / "iga.duckdb"
    warehouse.parent.mkdir()
    shutil.copyfile(clean_build.warehouse, warehouse)
    before = warehouse.read_bytes()

    build = run_cli_build(raw.root, warehouse)

    if build.exit_code == 1:
        assert warehouse.read_bytes() == before, "exit 1, but the previous warehouse was replaced"
    assert build.exit_code == 0, build.stderr[-1500:]
    assert participations(build) == {pk(A, 2): ("1277", "unknown", None)}
    # R10: scope all covers every cycle, participations or not (the label once said '2')
    assert build.query("SELECT scope, cycles FROM marts.outcomes_summary ORDER BY scope") == [
        ("all", "1-8"), ("followed_up", "")]


def test_a_build_that_counts_no_participation_exits_3_for_its_register_rejected_whole(tmp_path):
    """The one register delivered is rejected whole (its header lacks fornamn), so no
    participation is counted and outcomes_by_municipality has no row (decisions.md: rows only
    where there are participations). That is a build with a file rejected whole, exit 3
    (warehouse.md), its marts published. The empty mart's `suppressed` came out DOUBLE and its
    text columns of DuckDB's NULL type, the mart's suite could not bind its SQL, and the
    build failed (exit 1, nothing published): an audit's find."""
    raw = RawRoot(tmp_path / "raw")
    raw.register("1277", 2, [register_row(A, 2)], columns=[c for c in REGISTER_COLUMNS if c != "fornamn"])

    build = run_cli_build(raw.root, tmp_path / "wh" / "iga.duckdb")

    assert build.exit_code == 3, build.stderr[-2000:]
    assert build.query("SELECT count(*) FROM marts.outcomes_by_municipality") == [(0,)]
    types = dict(build.query("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'marts' AND table_name = 'outcomes_by_municipality'"))
    assert (types["suppressed"], types["municipality_code"], types["municipality"]) == (
        "BOOLEAN", "VARCHAR", "VARCHAR"), types


@pytest.mark.parametrize("unreadable", [False, True])
def test_the_installed_command_exits_with_the_build_status_and_leaves_nothing_behind(tmp_path, unreadable):
    """`iga-pipeline` ends its process without tearing the interpreter down (cli.entry):
    its exit status, its whole output and the cleanup of temporary folders still happen."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    raw = RawRoot(tmp_path / "raw")
    raw.register("1277", 1, [register_row(A, 1), register_row(B, 1)])
    if unreadable:
        raw.write_bytes("kommuner/1275/deltagare_cykel1.csv", GARBAGE)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    command = Path(sys.executable).with_name("iga-pipeline")
    assert "import entry" in command.read_text()  # the command is cli.entry, not cli.main
    done = subprocess.run(
        [str(command), "build", "--raw-dir", str(raw.root), "--warehouse", str(tmp_path / "wh" / "iga.duckdb")],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "TMPDIR": str(scratch), "IGA_PSEUDONYM_KEY": "installed-command-test-key"})
    assert done.returncode == (3 if unreadable else 0), done.stderr[-3000:]
    # the summary printed to its end: Table 1's total, then its footnote (no cycle is followed up)
    last = [line.lstrip() for line in done.stdout.rstrip().splitlines()[-2:]]
    assert last[0].startswith("TOTALT") and last[1].startswith("* after 90 days TOTALT"), done.stdout[-2000:]
    assert ("rejected whole" in done.stderr) is unreadable
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_an_interrupt_before_the_run_exits_1_without_a_traceback(tmp_path, signame):
    """Ctrl-C or SIGTERM while the command starts up ended it with 130 or 143 and a traceback
    (a review's find); warehouse.md knows 0, 3 and 1. The signal is sent as soon as the
    command has its handlers in place (/proc: SIGTERM caught), before any run begins."""
    import signal
    import subprocess
    import sys
    import time

    raw = RawRoot(tmp_path / "raw")
    raw.register("1277", 1, [register_row(A, 1)])
    number = getattr(signal, signame)
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("iga-pipeline")), "build", "--raw-dir", str(raw.root),
         "--warehouse", str(tmp_path / "wh" / "iga.duckdb")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "IGA_PSEUDONYM_KEY": "interrupt-test-key-long-enough"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        caught = int(next(line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                          if line.startswith("SigCgt:")).split()[1], 16)
        if caught >> (signal.SIGTERM - 1) & 1:  # SIGTERM: caught once the command's handlers
            break                                 # are in place (Python catches SIGINT from the start)
        time.sleep(0.005)
    proc.send_signal(number)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and err.rstrip().endswith(
        "interrupted; the previous warehouse was left as it was"), err[-2000:]
    assert not (tmp_path / "wh" / "iga.duckdb").exists()


def test_an_interrupt_as_the_run_is_created_leaves_no_run_unended_in_dagster_home(tmp_path):
    """Ctrl-C while Dagster creates the command's run and records its planned materialisations
    (before its own handler takes over) said 'interrupted; ...' and exited 1, but left the run
    "not started" in DAGSTER_HOME for good (an operations review's find, 2 interrupts in 8):
    the UI showed it pending, and the decisions say a Ctrl-C ends the run as failed. The signal
    is sent as soon as the run is in the instance's run storage, not yet begun (a build whose
    run is first seen begun is killed, and another started: up to five)."""
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    raw = RawRoot(tmp_path / "raw")
    raw.register("1277", 1, [register_row(A, 1)])
    query = ("SELECT r.run_id, r.status FROM runs r JOIN run_tags t ON t.run_id = r.run_id "
             "WHERE t.key = 'iga/pid' AND t.value = ?")

    def the_run(runs_db: Path, pid: int) -> tuple[str, str] | None:
        try:
            con = sqlite3.connect(f"file:{runs_db}?mode=ro", uri=True, timeout=0.01)
            try:
                return con.execute(query, (str(pid),)).fetchone()
            finally:
                con.close()
        except sqlite3.Error:  # not made yet, or being written
            return None

    for attempt in range(5):  # the moment lasts about half a second: a loaded machine may miss it
        home = tmp_path / f"home{attempt}"
        home.mkdir()
        runs_db = home / "history" / "runs.db"
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("iga-pipeline")), "build", "--raw-dir", str(raw.root),
             "--warehouse", str(tmp_path / f"wh{attempt}" / "iga.duckdb")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "IGA_PSEUDONYM_KEY": "interrupt-test-key-long-enough", "DAGSTER_HOME": str(home)})
        deadline = time.monotonic() + 120
        seen = None
        while time.monotonic() < deadline and proc.poll() is None and seen is None:
            seen = the_run(runs_db, proc.pid) if runs_db.exists() else None
            time.sleep(0.002)
        if seen is not None and seen[1] == "NOT_STARTED":  # the moment this test is about
            break
        proc.kill()
        proc.communicate(timeout=120)
    else:
        pytest.fail(f"in 5 builds the run was never seen before it began (last seen: {seen})")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and err.rstrip().endswith(
        "interrupted; the previous warehouse was left as it was"), err[-2000:]
    assert the_run(runs_db, proc.pid) == (seen[0], "FAILURE")


def test_a_library_logging_the_commands_interrupt_prints_no_traceback():
    """SQLAlchemy logs an exception raised while it closes a connection, with a traceback, and
    raises it again: when the command's Ctrl-C handler ran inside that close, the operator saw
    SQLAlchemy's traceback above "interrupted; ..." (a fresh clone's run of the test below).
    The command keeps such a record of its own interrupt off stderr, and only such a record."""
    import subprocess
    import sys

    script = (  # logged at exit, which the command reaches through its exit handlers
        "import atexit, logging, sys\n"
        "from iga_pipeline import cli\n"
        "def log():\n"
        "    pool = logging.getLogger('sqlalchemy.pool.impl.NullPool')\n"
        "    for error in (KeyboardInterrupt(), OSError('disk full')):\n"
        "        try:\n"
        "            raise error\n"
        "        except BaseException:\n"
        "            pool.error('Exception closing connection %s', type(error).__name__, exc_info=True)\n"
        "atexit.register(log)\n"
        "sys.argv = ['iga-pipeline', '--version']\n"
        "cli.entry()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "Exception closing connection OSError" in done.stderr and "disk full" in done.stderr
    assert "KeyboardInterrupt" not in done.stderr, done.stderr


def test_an_interrupt_lost_in_a_callback_that_swallows_it_still_stops_the_build(tmp_path):
    """A Ctrl-C that lands while a weakref or garbage collection callback runs (SQLAlchemy's, as
    Dagster's storage starts) raises its KeyboardInterrupt inside the callback, and Python drops
    it there ("Exception ignored in ..."): the build went on, published and exited 0 after the
    operator's Ctrl-C (an operations review's find, 1 interrupt in 3 at 1.5 s; another test's
    Ctrl-C once, on a loaded machine). Here a real SIGINT reaches the command's handler inside
    a garbage collection callback while Dagster creates the run, before its own handler."""
    import subprocess
    import sys

    raw = RawRoot(tmp_path / "raw")
    raw.register("1277", 1, [register_row(A, 1)])
    warehouse = tmp_path / "wh" / "iga.duckdb"
    script = (
        "import gc, os, signal, sys\n"
        "from iga_pipeline import cli\n"
        "sent = []\n"
        "def creating_the_run():\n"
        "    f = sys._getframe()\n"
        "    while f is not None and f.f_code.co_name != 'execute_in_process':\n"
        "        f = f.f_back\n"
        "    return f is not None and signal.getsignal(signal.SIGINT) is cli._interrupt\n"
        "def callback(phase, info):\n"
        "    if phase == 'start' and not sent and creating_the_run():\n"
        "        sent.append(1)\n"
        "        print('sent inside a collection', file=sys.stderr)\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        for _ in range(100000): pass  # the handler runs here; its KeyboardInterrupt is dropped\n"
        "gc.callbacks.append(callback)\n"
        f"sys.argv = ['iga-pipeline', 'build', '--raw-dir', {str(raw.root)!r}, '--warehouse', {str(warehouse)!r}]\n"
        "cli.entry()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "IGA_PSEUDONYM_KEY": "interrupt-test-key-long-enough"})
    assert "sent inside a collection" in done.stderr, done.stderr[-2000:]  # the moment was reached
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and done.stderr.rstrip().endswith(
        "interrupted; the previous warehouse was left as it was"), done.stderr[-2000:]
    assert not warehouse.exists()


@pytest.mark.slow
def test_an_interrupt_during_the_run_exits_1_says_so_and_the_next_build_succeeds(tmp_path):
    """Ctrl-C once the run had begun printed Dagster's records of it (a hundred lines of stack
    traces) and 'error in harmonised: dagster._core.errors.DagsterExecutionInterruptedError'
    (a review's find). The signal is sent once the run has begun writing the staging."""
    import signal
    import subprocess
    import sys
    import time

    raw = tmp_path / "raw"
    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "raw", raw)
    warehouse = tmp_path / "wh" / "iga.duckdb"
    command = [str(Path(sys.executable).with_name("iga-pipeline")), "build", "--raw-dir", str(raw),
               "--warehouse", str(warehouse)]
    env = {**os.environ, "IGA_PSEUDONYM_KEY": "interrupt-test-key-long-enough"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not (warehouse.parent / "staging").exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and "Stack Trace" not in err and "DagsterExecutionInterruptedError" not in err, err
    assert err.rstrip().endswith("interrupted; no warehouse was published"), err[-2000:]
    assert not warehouse.exists()
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]


@pytest.mark.slow
def test_a_sigterm_inside_a_duckdb_query_is_said_as_an_interrupt(tmp_path):
    """A SIGTERM (or Ctrl-C) that lands inside a DuckDB query of the marts step makes DuckDB
    raise its own RuntimeError('Query interrupted') in place of Dagster's interrupt, and the
    build said "error in marts: RuntimeError: Query interrupted" and "build failed" (an
    operations review's find). The signal is sent as the candidate warehouse is written; a
    build whose marts step was not failed by DuckDB's error (the signal landed between two
    queries) is tried again, up to ten."""
    import signal
    import subprocess
    import sys
    import time

    from dagster import DagsterEventType, DagsterInstance

    raw = tmp_path / "raw"
    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "raw", raw)
    for attempt in range(10):
        home, warehouse = tmp_path / f"home{attempt}", tmp_path / f"wh{attempt}" / "iga.duckdb"
        home.mkdir()
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("iga-pipeline")), "build", "--raw-dir", str(raw),
             "--warehouse", str(warehouse)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "IGA_PSEUDONYM_KEY": "interrupt-test-key-long-enough", "DAGSTER_HOME": str(home)})
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and not any(
                warehouse.parent.glob("iga.duckdb.building-*.wal")):
            time.sleep(0.002)
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=300)
        with DagsterInstance.from_config(str(home)) as instance:
            (run,) = instance.get_runs()
            failed = [(e.step_key, e.dagster_event.step_failure_data.error.cause)
                      for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)]
        if [(step, cause.cls_name, cause.message.strip()) for step, cause in failed if cause] == [
                ("marts", "RuntimeError", "RuntimeError: Query interrupted")]:
            break  # the moment this test is about
    else:
        pytest.fail(f"in 10 builds no signal landed inside a DuckDB query (last failures: {failed})")
    assert proc.returncode == 1, (proc.returncode, err[-2000:])
    assert "Query interrupted" not in err and err.rstrip().endswith(
        "interrupted; no warehouse was published"), err[-2000:]
    assert not warehouse.exists()


@pytest.mark.slow
def test_a_second_interrupt_while_the_command_ends_ends_it_without_a_traceback(tmp_path):
    """After 'interrupted; ...' the command waits for its background imports (seconds); a second
    Ctrl-C then, as an impatient user sends, printed a KeyboardInterrupt traceback (a review's find)."""
    import signal
    import subprocess
    import sys
    import time

    raw = tmp_path / "raw"
    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "raw", raw)
    warehouse = tmp_path / "wh" / "iga.duckdb"
    err_file = tmp_path / "stderr"
    with open(err_file, "w") as err:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("iga-pipeline")), "build", "--raw-dir", str(raw),
             "--warehouse", str(warehouse)], stdout=subprocess.DEVNULL, stderr=err,
            env={**os.environ, "IGA_PSEUDONYM_KEY": "interrupt-test-key-long-enough"})
    deadline = time.monotonic() + 120
    # in the ingest, which starts the background imports (warm_up.py)
    staged = warehouse.parent / "staging" / "cycle=1"
    while time.monotonic() < deadline and proc.poll() is None and not staged.exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    while time.monotonic() < deadline and proc.poll() is None and "interrupted;" not in err_file.read_text():
        time.sleep(0.01)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    proc.wait(timeout=300)
    said = err_file.read_text()
    assert proc.returncode == 1 and "Traceback" not in said, (proc.returncode, said[-2000:])
    assert said.rstrip().endswith("interrupted; no warehouse was published"), said[-2000:]


def test_a_ctrl_c_while_the_verdict_is_said_waits_for_the_line_then_interrupts():
    """The verdict of a failed run is said whole and once, then the Ctrl-C that came meanwhile
    takes effect (CI saw 'interrupted; no warehouse was publishedinterrupted; the build had ended').
    A second one meanwhile goes at once: a write that blocks (stderr's reader stalled) would
    otherwise leave only SIGKILL (a review's find)."""
    import signal

    from iga_pipeline import cli

    for kind in (signal.SIGINT, signal.SIGTERM):
        said = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(cli, "_state", {**cli._state})  # _interrupt marks the command interrupted
            signal.signal(signal.SIGTERM, cli._interrupt)
            try:
                with pytest.raises(KeyboardInterrupt):
                    with cli._signals_held():
                        signal.raise_signal(kind)
                        said.append("the whole line")  # not reached if the signal had struck here
                assert said == ["the whole line"]
                with pytest.raises(KeyboardInterrupt):
                    with cli._signals_held():
                        signal.raise_signal(signal.SIGINT)
                        signal.raise_signal(kind)
                        said.append("never")  # a write that blocks: the second signal ends it
                assert said == ["the whole line"]
                assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
                assert signal.getsignal(signal.SIGTERM) is cli._interrupt
            finally:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)


# The real command on an empty raw root (a failed run), its stderr watched: a Ctrl-C is sent
# the moment the verdict is written, between its text and its newline, as CI's one was.
CTRL_C_AT_THE_VERDICT = r"""
import os, signal, sys
from iga_pipeline import cli

class Stderr:
    def __init__(self, real):
        self.real = real
    def __getattr__(self, name):
        return getattr(self.real, name)
    def write(self, text):
        written = self.real.write(text)
        if text.startswith("build failed;"):
            self.real.flush()
            os.kill(os.getpid(), signal.SIGINT)
        return written

sys.stderr = Stderr(sys.stderr)
sys.argv = ["iga-pipeline", "build", "--raw-dir", sys.argv[1], "--warehouse", sys.argv[2]]
cli.entry()
"""


def test_a_ctrl_c_as_the_failed_runs_verdict_is_written_adds_no_second_verdict(tmp_path):
    import subprocess
    import sys

    (tmp_path / "raw").mkdir()
    done = subprocess.run([sys.executable, "-c", CTRL_C_AT_THE_VERDICT, str(tmp_path / "raw"),
                           str(tmp_path / "wh" / "iga.duckdb")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "IGA_PSEUDONYM_KEY": "verdict-test-key-long-enough"})
    assert done.returncode == 1 and "Traceback" not in done.stderr, (done.returncode, done.stderr[-2000:])
    assert done.stderr.endswith("\nbuild failed; no warehouse was published\n"), done.stderr[-2000:]
    assert "interrupted;" not in done.stderr, done.stderr[-2000:]


# --- permissions: what only a non-root user meets ---------------------------------------------

# Root reads anything; an ordinary user does not. The interpreter lives where only root
# may read (pyenv under /root), so the build runs once as root (every module imported),
# then the process drops to `nobody` and builds again.
def _others_may_enter(path: Path) -> bool:
    """Whether a user other than the owner can reach `path` (every folder above it searchable)."""
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents])


# After dropping to `nobody`, the build still imports modules from the checkout and its .venv:
# a checkout under a folder only root may enter (`mktemp -d` makes one) cannot be tested so.
AS_ANOTHER_USER = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or not _others_may_enter(Path(__file__).resolve().parent),
    reason="needs root, to run the build as another user, and a checkout other users may enter")


AS_NOBODY = r"""
import os, sys, subprocess
from iga_pipeline import cli
raw, warehouse, secret, folder = sys.argv[1:5]
assert cli.main(["build", "--raw-dir", raw, "--warehouse", warehouse]) == 0
subprocess.run(["chmod", "-R", "a+rwX", os.path.dirname(warehouse)], check=True)
os.chmod(secret, 0)
os.chmod(folder, 0o700)
os.setgid(65534)
os.setuid(65534)
sys.exit(cli.main(["build", "--raw-dir", raw, "--warehouse", warehouse]))
"""


def _build_twice_as_root_then_nobody(root: Path, unreadable: Path, unlistable: Path):
    """AS_NOBODY: `root/raw` built into `root/wh` as root, then again as `nobody`, who may not
    read `unreadable` nor list `unlistable`; everything else under `root` is open to all."""
    import subprocess
    import sys

    for folder, _, files in os.walk(root):
        os.chmod(folder, 0o755)
        for f in files:
            os.chmod(Path(folder) / f, 0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IGA_", "DAGSTER_HOME"))}
    env.update(IGA_PSEUDONYM_KEY="x" * 32, HOME=str(root), MPLCONFIGDIR=str(root / "mpl"))
    return subprocess.run([sys.executable, "-c", AS_NOBODY, str(root / "raw"), str(root / "wh" / "iga.duckdb"),
                           str(unreadable), str(unlistable)],
                          env=env, cwd=root, capture_output=True, text=True, timeout=300)


def _remove_as_root(root: Path) -> None:
    for folder, dirs, _ in os.walk(root):
        for d in dirs:
            os.chmod(Path(folder) / d, 0o755)
    shutil.rmtree(root, ignore_errors=True)


@AS_ANOTHER_USER
def test_an_unreadable_file_and_an_unlistable_folder_are_rejected_and_the_build_goes_on():
    """As `nobody`: a delivery it may not read, and a municipality folder it may not list.
    Both are rejected with their reason, every other delivery is built, exit 3 (not 1). The
    detail names the error, never its message: that is the file's path as it is on disk."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="iga-nobody-", dir="/tmp"))
    try:
        raw = RawRoot(root / "raw")
        raw.register("1277", 2, [register_row(A, 2), register_row(C, 2)])
        raw.folkuniversitetet(2, "slut", [fu_end_row(A, utfallskod="1"), fu_end_row(C, utfallskod="3")])
        secret = raw.folkuniversitetet(2, "90dagar", [fu_90_row(A, utfallskod="1")])
        raw.register("1257", 2, [register_row(B, 2)])
        r = _build_twice_as_root_then_nobody(root, secret, root / "raw" / "kommuner" / "1257")
        assert r.returncode == 3, r.stderr[-3000:]
        assert "could not be listed" in r.stderr and "rejected whole" in r.stderr
        con = duckdb.connect(str(root / "wh" / "iga.duckdb"), read_only=True)
        try:
            whole = dict(con.execute("SELECT source_file, reason FROM marts.data_quality_issues "
                                     "WHERE severity = 'rejected' AND source_row IS NULL").fetchall())
            audit = dict(con.execute("SELECT source_file, status FROM marts.ingest_audit").fetchall())
            counted = con.execute("SELECT count(*) FROM marts.fct_participation").fetchone()[0]
            said = con.execute("SELECT detail FROM marts.data_quality_issues WHERE source_file = "
                               "'leverantorer/folkuniversitetet/cykel2_90dagar.csv'").fetchall()
        finally:
            con.close()
        assert whole == {"kommuner/1257": "unreadable_file",
                         "leverantorer/folkuniversitetet/cykel2_90dagar.csv": "unreadable_file"}
        assert audit["leverantorer/folkuniversitetet/cykel2_90dagar.csv"] == "rejected"
        assert said == [("the file could not be read (PermissionError)",)]
        assert audit["kommuner/1277/deltagare_cykel2.csv"] == "loaded" and counted == 2
    finally:
        _remove_as_root(root)


@AS_ANOTHER_USER
def test_an_unlistable_folder_alone_exits_3():
    """As `nobody`: a municipality folder it may not list, every file it lists readable. No file
    is rejected whole, but files are missing: exit 3, not 0 (a review made the exit status
    look at the files rejected whole alone, and the test above, which has one, still passed)."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="iga-nobody-", dir="/tmp"))
    try:
        raw = RawRoot(root / "raw")
        raw.register("1277", 2, [register_row(A, 2), register_row(C, 2)])
        raw.folkuniversitetet(2, "slut", [fu_end_row(A, utfallskod="1"), fu_end_row(C, utfallskod="3")])
        raw.register("1257", 2, [register_row(B, 2)])
        outside = root / "not-a-delivery"  # the script's file to make unreadable: none of the raw root's
        outside.write_text("")
        r = _build_twice_as_root_then_nobody(root, outside, root / "raw" / "kommuner" / "1257")
        assert r.returncode == 3, r.stderr[-3000:]
        assert "1 folder(s) of the raw root could not be listed" in r.stderr and "rejected whole" not in r.stderr
    finally:
        _remove_as_root(root)


UNWRITABLE_AS_NOBODY = r"""
import os, sys
from iga_pipeline import cli, pseudonym, settings  # imported as root: the interpreter is root's
raw, warehouse = sys.argv[1:3]
os.setgid(65534)
os.setuid(65534)
sys.exit(cli.main(["build", "--raw-dir", raw, "--warehouse", warehouse]))
"""


def _build_as_nobody(raw_root: Path, warehouse: Path, cwd: Path):
    """`UNWRITABLE_AS_NOBODY` in a process of its own, with none of this machine's IGA_ settings."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("IGA_", "DAGSTER_HOME"))}
    return subprocess.run([sys.executable, "-c", UNWRITABLE_AS_NOBODY, str(raw_root), str(warehouse)],
                          env={**env, "IGA_PSEUDONYM_KEY": "x" * 32}, cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@AS_ANOTHER_USER
@pytest.mark.parametrize("what", ["warehouse folder", "a folder above it", "a folder above it, not to be entered",
                                  "raw root", "raw root's folder"])
def test_a_folder_this_user_may_not_write_or_read_is_named_before_the_build(what):
    """As `nobody`: a warehouse folder it may not write to failed the run's first step with a
    hundred-line traceback (PermissionError), a raw root it may not read was 'no cycle has
    any delivery (a share not mounted?)', and one in a folder it may not enter a traceback
    (a review's finds). One line each, exit 1, nothing written."""
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="iga-nobody-", dir="/tmp"))  # pytest's is root's alone
    try:
        _unwritable_as_nobody(tmp_path, what)
    finally:
        for folder, _, _ in os.walk(tmp_path):
            os.chmod(folder, 0o755)
        shutil.rmtree(tmp_path, ignore_errors=True)


def _unwritable_as_nobody(tmp_path: Path, what: str) -> None:
    raw = RawRoot(tmp_path / "sealed" / "raw" if what == "raw root's folder" else tmp_path / "raw")
    raw.register("1277", 1, [register_row(A, 1)])
    locked = tmp_path / "locked"
    locked.mkdir()
    if what == "a folder above it, not to be entered":  # Path.is_dir raised on the warehouse in it
        (locked / "wh").mkdir()
    warehouse = {"warehouse folder": locked / "iga.duckdb",
                 "a folder above it": locked / "wh" / "iga.duckdb",
                 "a folder above it, not to be entered": locked / "wh" / "iga.duckdb",
                 }.get(what, tmp_path / "wh" / "iga.duckdb")
    for folder, _, files in os.walk(tmp_path):
        os.chmod(folder, 0o755)
        for f in files:
            os.chmod(Path(folder) / f, 0o644)
    os.chmod({"raw root": raw.root, "raw root's folder": tmp_path / "sealed"}.get(what, locked), 0o700)  # root's
    r = _build_as_nobody(raw.root, warehouse, tmp_path)
    assert r.returncode == 1, r.stderr[-3000:]
    said = {"warehouse folder": f"the warehouse's folder {locked} is not writable by this user",
            "a folder above it": f"the warehouse's folder {locked / 'wh'} cannot be made: {locked} is not "
                                 "writable by this user",
            "a folder above it, not to be entered": f"the warehouse's folder {locked / 'wh'} cannot be made: "
                                                    f"{locked} is not writable by this user",
            "raw root": f"the raw root {raw.root} cannot be read by this user",
            "raw root's folder": f"the raw root {raw.root} cannot be read by this user"}[what]
    assert r.stderr.startswith(f"error: {said}") and len(r.stderr.splitlines()) == 1, r.stderr[-3000:]
    assert [p.name for p in locked.rglob("*")] == (["wh"] if "entered" in what else [])
    assert not (tmp_path / "wh").exists()


@AS_ANOTHER_USER
def test_a_first_build_beside_a_report_this_user_may_not_read_is_refused():
    """As `nobody`: a report/index.html it may not read was taken for the pipeline's, and a first
    build replaced it (renaming needs only the folder writable), exit 0. Refused, nothing written."""
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="iga-nobody-", dir="/tmp"))  # pytest's is root's alone
    try:
        raw = RawRoot(tmp_path / "raw")
        raw.register("1277", 1, [register_row(A, 1)])
        report = tmp_path / "home" / "report" / "index.html"
        report.parent.mkdir(parents=True)
        report.write_text("<html><title>precious</title></html>")
        for folder, _, files in os.walk(tmp_path):
            os.chmod(folder, 0o777)
            for f in files:
                os.chmod(Path(folder) / f, 0o644)
        os.chmod(report, 0o600)  # root's alone
        r = _build_as_nobody(raw.root, tmp_path / "home" / "iga.duckdb", tmp_path)
        assert r.returncode == 1, r.stderr[-3000:]
        assert r.stderr.startswith(f"error: {report} cannot be read by this user, so may not be this pipeline's "
                                   "report, and a first build would replace it"), r.stderr[-3000:]
        assert sorted(p.name for p in (tmp_path / "home").rglob("*")) == ["index.html", "report"]
        assert report.read_text() == "<html><title>precious</title></html>"
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.parametrize("followed, label, after", [
    ("1-7", "1-7", 7),           # as in the bundled data (or a cycle-8 90-day file without registers:
                                 # outcomes_by_cycle has 90-day counts for it, the subtotal does not)
    ("1-8", "1-8", 8),           # a late 90-day delivery for cycle 8
    ("1-2,4-7", "1-2,4-7", 7),   # cycle 3's 90-day file missing
    ("", "none", 8),             # nothing followed up: just before the total, said so
])
def test_the_printed_table_puts_the_subtotal_after_the_last_cycle_it_names(followed, label, after):
    from iga_pipeline import cli

    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.outcomes_by_cycle AS SELECT range::INTEGER AS cycle, 10 AS completed, "
                "1 AS work_at_end, 1 AS studies_at_end, 2 AS work_90d, 2 AS studies_90d FROM range(1, 9)")
    con.execute("CREATE TABLE marts.outcomes_summary AS SELECT * FROM (VALUES "
                f"('followed_up', '{followed}', 0, 0, 0, 0, 0), ('all', '1-8', 80, 8, 8, 16, 16)) "
                "AS t(scope, cycles, completed, work_at_end, studies_at_end, work_90d, studies_90d)")
    labels = [row[0] for row in cli.table1_rows(con)]
    assert labels == ([f"Cykel {c}" for c in range(1, after + 1)] + [f"Delsumma ({label})"]
                      + [f"Cykel {c}" for c in range(after + 1, 9)] + ["TOTALT (1-8)"])


def test_the_printed_table_keeps_its_columns_apart_at_national_counts():
    from iga_pipeline import cli

    rows = [("Cykel 1", 271, 85, 33, 90, 41),
            ("Cykel 8", 125868, 37542, 15203, None, None),
            ("TOTALT (1-8)", 880164, 263372, 105253, 315906, 120262)]
    lines = cli.format_table1(rows)
    assert len({len(line) for line in lines}) == 1  # every column as wide as its widest cell
    total = lines[-1].split()
    assert total == ["TOTALT", "(1-8)", "880164", "|", "263372", "30%", "105253", "12%", "42%", "|",
                     "315906", "36%", "120262", "14%", "50%"]
    assert lines[2].split()[-3:] == ["-", "-", "-"]  # cycle 8 not followed up
    assert cli.table1_footnote(rows) == ("* after 90 days TOTALT counts cycle 8 (not followed up) with its "
                                         "status at the end of the cycle (rule R10)")
    assert cli.table1_footnote([r for r in rows if r[0] != "Cykel 8"]) is None
    two = [("Cykel 3", 20, 5, 2, None, None), *rows]
    assert cli.table1_footnote(two) == ("* after 90 days TOTALT counts cycles 3 and 8 (not followed up) with "
                                        "their statuses at the end of the cycle (rule R10)")


def test_a_delivery_sent_again_under_another_name_is_said(tmp_path):
    """A review: cycle 3's survey copied as cycle 5's was read twice, its answers counted in
    both cycles, with no issue. Each file is still read as named (which is right is not ours
    to guess); both are named in a warning. Header-only registers alike are no copy."""
    raw = RawRoot(tmp_path / "raw")
    raw.register("1277", 3, [register_row(A, 3)])
    raw.register("1278", 3, [])
    raw.register("1292", 3, [])  # the same bytes as 1278's, but no data rows
    answers = [{"svar_id": "1", "kommunkod": "1277", "okad_mojlighet": "4", "tolk": "nej"}]
    raw.survey(3, answers)
    raw.survey(5, answers)
    build = run_cli_build(raw.root, tmp_path / "wh" / "iga.duckdb")
    assert build.exit_code == 0, build.stderr[-1500:]
    said = build.query("SELECT source_file, source_row, severity, detail, cycle FROM marts.data_quality_issues "
                       "WHERE reason = 'unexpected_file' ORDER BY source_file")
    assert said == [(f"enkater/enkat_cykel{c}.csv", None, "warning",
                     f"the same bytes as enkater/enkat_cykel{other}.csv: one of them is probably misnamed "
                     "(each is read as named)", c) for c, other in ((3, 5), (5, 3))]
    assert build.query("SELECT count(*) FROM marts.ingest_audit WHERE source_file LIKE 'enkater/%' "
                       "AND status = 'loaded'") == [(2,)]
