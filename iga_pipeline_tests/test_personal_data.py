"""Personal data (issue 6, item 4): after a build, no personnummer and no name anywhere.

One build (the real CLI, in its own process) over raw files full of known
personnummer, in every written form the contract lists (10 and 12 digits,
with and without the dash, '+', samordningsnummer, Excel numbers, a wrong
check digit), and names; plus hostile rows that put them where they do not
belong: a personnummer in `kon`, a name in a date column, both in provider
status and municipality fields, in file and folder names, as a survey answer
id. DAGSTER_HOME is a real instance (event log and run storage on disk) and
Python logging is captured at DEBUG for every logger.

Then everything the build wrote or said is scanned for every form of every
personnummer and every name (case-insensitive):

  the warehouse file's bytes and every cell and column name of every table
  in every schema; every file beside it (staging Parquet, the marts as
  Parquet, the report, the Great Expectations project and Data Docs), bytes
  and, for Parquet, every cell; everything under DAGSTER_HOME (SQLite event
  log and run storage, compute logs); the CLI's stdout and stderr; the
  Python log.

Each group of needles ("cause") is one test, so that one leak does not hide
another.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import duckdb
import pytest
from conftest import TEST_SECRET
from rawfiles import (
    Person, RawRoot, astorp_entry, astorp_followup, fu_90_row, fu_end_row, personal_strings, petho_row,
    register_row,
)

from iga_pipeline import pseudonym
from iga_pipeline.ingest import ingest_cycle

pytestmark = pytest.mark.slow


def person(y, m, d, serial, first, last, coordination=False) -> Person:
    return Person(dt.date(y, m, d), serial, first, last, coordination=coordination)


# Distinctive made-up names: a hit is a leak, not a chance match.
# registered: personnummer and names exactly where the contract puts them.
R1 = person(1985, 1, 1, 238, "Abdirahman", "Hassanzadeh")
R2 = person(1990, 5, 5, 12, "Sárahanna", "Öberg-Lindqvist")
R3 = person(1979, 3, 3, 55, "Bosselius", "Ängquist", coordination=True)
R4 = person(1905, 3, 3, 401, "Methusela", "Gammelgård")
R5 = person(1962, 11, 30, 731, "Elinoraa", "Åkessonius")
R6 = person(1971, 8, 19, 882, "Kallevius", "Zetterqvist")  # written with a wrong check digit
R6_BAD = R6.pnr("YYMMDD-NNNC")[:-1] + str((int(R6.pnr()[-1]) + 1) % 10)
# a personnummer in a column that is not for it
X1 = person(1958, 2, 14, 307, "Draganka", "Petrovićová")
X2 = person(1966, 6, 16, 616, "Ingmarius", "Sjöbladsson")
X3 = person(1983, 8, 23, 823, "Fatumiina", "Warsameeh")
X4 = person(1977, 7, 7, 707, "Jovankaa", "Stojanovska")
# a name in a column that is not for it
N1 = person(1969, 9, 9, 909, "Zlatimira", "Kovačevićka")
N2 = person(1981, 1, 21, 121, "Hodanhaweya", "Mohamuudsson")
N3 = person(1974, 4, 14, 414, "Gunillakaj", "Perssonsdotter")
# personnummer and names in paths
P1 = person(1987, 7, 17, 717, "Pathfinderia", "Folderssonn")
P2 = person(1988, 8, 18, 818, "Katalogina", "Filnamnsdotter")
# a personnummer, and a name, as the survey's answer id
S1 = person(1991, 1, 11, 111, "Enkatrina", "Svarsdottir")
S2 = person(1992, 2, 12, 212, "Elvirrra", "Lindqvistus")
# names in capitals or in lower case, which look like codes ('ANST', 'flykting')
C1 = person(1970, 10, 10, 110, "Angquistina", "Kvarnstromius")
C2 = person(1971, 11, 11, 211, "Hassanzadeha", "Malmgrenius")
# a personnummer in a row that makes an adapter fail unexpectedly
E1 = person(1993, 3, 13, 313, "Exceptiona", "Tracebackman")

# a personnummer split by other separators than the usual (a review's finds): in a code,
# as a folder's name, as hours, in what openpyxl says of a cell, in a path too long to open
W1 = person(1931, 7, 19, 876, "Tankstrecka", "Divisionsson")
W2 = person(1937, 1, 1, 111, "Kolonina", "Separatorsson")
W3 = person(1939, 3, 3, 333, "Understreckia", "Fodelselandh")
W4 = person(1933, 2, 2, 502, "Mappnamnia", "Strecksdotter")
W5 = person(1948, 1, 12, 131, "Timmarina", "Kolumnsson")
W6 = person(1953, 3, 11, 824, "Datumcellia", "Serialsson")
W7 = person(1941, 9, 9, 909, "Djupmappia", "Langvagsson")
# a personnummer in a name shaped like the contract's, and split over folders (a review's finds)
F1 = person(1977, 3, 14, 512, "Kontraktia", "Formnamnsson")
F2 = person(1969, 7, 21, 433, "Tvarsnittia", "Mappdelsson")
F3 = person(1991, 11, 2, 771, "Delmappina", "Trestegsson")
# a personnummer as the decimals of hours, and a birth date and last four in two columns
# (a review's finds, 2026-12-02)
H1 = person(1971, 1, 12, 412, "Decimalina", "Timbrakson")
H2 = person(1972, 2, 13, 411, "Bradkstreckia", "Jsonsson")
H3 = person(1983, 5, 14, 521, "Skiftadina", "Kolumnberg")


def odd(p: Person, form: str) -> str:
    """The personnummer with other separators: 'YYYY-MM-DD–NNNC', 'YYYY:MMDD:NNNC', 'YYYYMMDD_NNNC'."""
    d, n = p.pnr("YYYYMMDDNNNC")[:8], p.pnr("YYYYMMDDNNNC")[8:]
    return {"dash": f"{d[:4]}-{d[4:6]}-{d[6:]}\u2013{n}", "colons": f"{d[:4]}:{d[4:]}:{n}",
            "underscore": f"{d}_{n}"}[form]


CAUSES = {
    "registered": [R1, R2, R3, R4, R5, R6],
    "pnr_in_other_columns": [X1, X2, X3, X4],
    "name_in_other_columns": [N1, N2, N3],
    "pnr_in_paths": [P1],
    "name_in_paths": [P2],
    "pnr_as_survey_answer_id": [S1],
    "name_as_survey_answer_id": [S2],
    "name_in_capitals_or_lower_case": [C1, C2],
    "adapter_exception": [E1],
    "pnr_with_other_separators": [W1, W2, W3],
    "pnr_with_other_separators_as_folder": [W4],
    "pnr_as_hours": [W5],
    "pnr_in_workbook_remarks": [W6],
    "pnr_in_a_path_too_long_to_open": [W7],
    "pnr_in_a_contract_shaped_file_name": [F1, F2],
    "pnr_split_over_folders": [F3],
    "pnr_as_the_decimals_of_hours": [H1, H2],
    "birth_date_and_last_four_in_two_columns": [H3],
}
LEAKS_KNOWN: dict[str, str] = {}  # cause -> why it still leaks (none known)


def write_raw(raw: RawRoot) -> None:
    # registered, every written form
    raw.register("1277", 1, [register_row(R1, 1, form="YYMMDD-NNNC"), register_row(R2, 1, form="YYMMDDNNNC"),
                             register_row(W6, 1)], bom=True)
    workbook = raw.petho({"Åstorp": [petho_row(W6, as_number=True),
                                     petho_row(R1, as_number=True, status_90d="Anställd",
                                    kommentar=f"Ring {R2.name}, {R2.pnr()}"),
                          petho_row(R2, personnr=R2.pnr("YYYYMMDDNNNC"), status_end="Studier",
                                    status_90d="studier"),
                          petho_row(None, personnr=X4.pnr(), insatser=f"Praktik, {X4.pnr('YYYYMMDD-NNNC')}"),
                          petho_row(N1, insatser=f"Validering, {N1.name}", status_end=N1.first)]})
    _as_a_date(workbook, W6.as_number)  # openpyxl: "the serial value ... is outside the limits for dates"
    raw.register("1278", 2, [register_row(R3, 2, form="YYYYMMDD-NNNC"), register_row(R4, 2, form="YYMMDD+NNNC"),
                             register_row(R6, 2, personnummer=R6_BAD),
                             register_row(X1, 2, kon=X1.pnr("YYYYMMDDNNNC")),          # pnr in kon
                             register_row(N1, 2, inskrivningsdatum=N1.first),          # name in a date
                             register_row(N2, 2, fodelseland=N2.name, kon=N2.last),    # names in codes
                             register_row(W1, 2, kon=odd(W1, "dash")),
                             register_row(W3, 2, fodelseland=odd(W3, "underscore")),
                             register_row(W5, 2), register_row(H1, 2),
                             register_row(H3, 2, kon=f"{H3.pnr12[:4]}-{H3.pnr12[4:6]}-{H3.pnr12[6:8]}",
                                          fodelseland=H3.pnr12[8:])])  # a register shifted by a column
    raw.folkuniversitetet(2, "slut", [
        fu_end_row(R3, kommun="Båstad", hours=(10.5, "", "", "")),
        fu_end_row(R4, kommun="Båstad", utfallskod="3"),
        fu_end_row(X2, kommun=X2.pnr("YYMMDD-NNNC")),                                  # pnr as Kommun
        fu_end_row(N3, kommun=N3.name, utfallskod=N3.first),                           # names as codes
        fu_end_row(W5, kommun="Båstad", hours=(W5.pnr("YYMMDDNNNC"), W5.pnr12, "", "")),  # pnr as hours
        fu_end_row(H1, kommun="Båstad", hours=("1," + H1.pnr("YYMMDDNNNC"), H1.pnr12[:4] + "," + H1.pnr12[4:],
                                               "", ""))])  # pnr as the decimals of hours
    raw.folkuniversitetet(2, "90dagar", [fu_90_row(R3, kommun="Båstad", utfallskod="3")])
    raw.register("1292", 5, [register_row(R5, 5, form="YYYYMMDDNNNC"), register_row(W2, 5), register_row(H2, 5)])
    raw.astorp(5, [astorp_entry(R5, kommunkod="1292", form="YYYYMMDD-NNNC"),
                   astorp_entry(W2, status=odd(W2, "colons"), insatser=[("PRAKTIK", int(W2.pnr12))]),
                   astorp_entry(H2, kommunkod="1292",
                                insatser=[("PRAKTIK", float("0." + H2.pnr("YYMMDDNNNC")))]),
                   astorp_entry(X3, status=X3.pnr("YYYYMMDDNNNC"), kommunkod=X3.pnr()),  # pnr as codes
                   astorp_entry(N2, kommunkod=N2.last, status=N2.first,
                                insatser=[(N3.last, 3)])])                                # names as codes
    raw.astorp(5, [astorp_followup(R5, "STUD", form="YYMMDD-NNNC")], followup=True)
    raw.survey(3, [{"svar_id": "1", "kommunkod": "1277", "okad_mojlighet": "5", "tolk": "ja"},
                   {"svar_id": S1.pnr(), "kommunkod": "1277", "okad_mojlighet": "4", "tolk": "nej"},
                   {"svar_id": S2.name, "kommunkod": "1277", "okad_mojlighet": "4", "tolk": "nej"},
                   {"svar_id": S2.last.upper(), "kommunkod": "1277", "okad_mojlighet": "5", "tolk": "ja"}])
    # names that look like codes: in capitals or in lower case, in code columns and paths
    raw.register("1257", 4, [register_row(C1, 4, kon=C1.last.upper(), malgrupp=C1.first.lower())])
    raw.folkuniversitetet(4, "slut", [fu_end_row(C1, kommun=C1.last.upper(), utfallskod=C1.first.upper())])
    raw.register(C2.last.upper(), 4, [register_row(C2, 4)])          # a folder named in capitals
    raw.write_text(f"kommuner/1257/{C2.first.upper()}_{C2.last.upper()}.pdf", "stray")
    raw.write_text(f"kommuner/1257/{C2.last.lower()}.docx", "stray")
    # paths
    raw.write_text(f"kommuner/1277/intyg {P1.pnr('YYYYMMDD-NNNC')}.pdf", "stray")
    raw.register(P1.pnr("YYMMDDNNNC"), 3, [register_row(P1, 3)])     # a folder named by a personnummer
    raw.write_text(f"kommuner/1277/CV {P2.name}.docx", "stray")
    raw.register(P2.last, 3, [register_row(P2, 3)])                  # a folder named after a person
    raw.write_text("LASMIG.txt", f"Frågor: {R1.name}, {R1.pnr()}\n")
    raw.write_text(f"kommuner/1277/deltagare_cykel0{F1.pnr('YYMMDDNNNC')}.csv", "stray")  # no cycle
    raw.write_text(f"enkater/enkat_cykel0{F1.pnr12}.csv", "stray")
    raw.write_text(f"leverantorer/astorp/cykel1{F2.pnr12}.json", "{}")  # cycle 1<12 digits>: no cycle
    raw.write_text(f"{F3.pnr12[:4]}/{F3.pnr12[4:8]}/{F3.pnr12[8:]}.pdf", "stray")
    raw.register(odd(W4, "dash"), 3, [register_row(W4, 3)])         # a folder named by it, odd dashes
    _too_long_to_open(raw.root / "kommuner", f"Djupmapp {W7.name} {W7.pnr12} ")
    # an export that makes the adapter fail unexpectedly (OverflowError), about E1
    raw.register("1277", 7, [register_row(E1, 7)])
    doc = {"leverantor": "Åstorps kommun", "cykel": 7, "deltagare": [
        {"pnr": E1.pnr("YYYYMMDD-NNNC"), "kommunkod": "1277", "status_cykelslut": "ANST",
         "insatser": [{"typ": "PRAKTIK", "timmar": 10 ** 400}]}]}
    raw.write_text(RawRoot.astorp_rel(7), json.dumps(doc))


def _as_a_date(workbook, value: int) -> None:
    import openpyxl

    wb = openpyxl.load_workbook(workbook)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.value == value:
                    cell.number_format = "yyyy-mm-dd"
    wb.save(workbook)


def _too_long_to_open(parent, name: str) -> None:
    """Folders in folders, each named `name` padded to 250 bytes, past the longest path (4096)."""
    name = (name + "x" * 250)[:250]
    fd = os.open(parent, os.O_RDONLY)
    for _ in range(18):
        os.mkdir(name, dir_fd=fd)
        inner = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)


def needles(people: list[Person]) -> dict[str, str]:
    out = personal_strings(people)
    if R6 in people:
        out[R6_BAD] = out[R6_BAD.replace("-", "")] = "the invalid personnummer"
    for p in people:
        if p in (W1, W2, W3, W4):
            for form in ("dash", "colons", "underscore"):
                out[odd(p, form)] = f"personnummer of {p.first}, other separators"
        if p is W3:
            out["_" + p.pnr12[8:]] = f"the last four digits of {p.first}"
        if p is H3:
            d = p.pnr12
            out[f"{d[:4]}-{d[4:6]}-{d[6:8]}"] = f"the birth date of {p.first}, out of a field of dates"
            out[f"'{d[8:]}'"] = f"the last four digits of {p.first}, quoted"
        if p is F3:
            d = p.pnr12
            out[f"{d[:4]}/{d[4:8]}/{d[8:]}"] = f"personnummer of {p.first}, split over folders"
    return out


# The CLI's entry point, with every Python logger at DEBUG into a file.
WRAPPER = r"""
import logging, os, sys
logging.basicConfig(level=logging.DEBUG, filename=os.environ["IGA_TEST_LOG"],
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")
logging.captureWarnings(True)
from iga_pipeline.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("personal")
    raw = RawRoot(root / "raw")
    write_raw(raw)
    home = root / "dagster_home"
    home.mkdir()
    warehouse = root / "wh" / "iga.duckdb"
    env = {k: v for k, v in os.environ.items() if k not in ("IGA_ENV", "IGA_RAW_DIR", "IGA_WAREHOUSE")}
    env.update(IGA_PSEUDONYM_KEY=TEST_SECRET, DAGSTER_HOME=str(home), IGA_TEST_LOG=str(root / "python.log"))
    r = subprocess.run([sys.executable, "-c", WRAPPER, "build", "--raw-dir", str(raw.root),
                        "--warehouse", str(warehouse)], env=env, cwd=root, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode in (0, 3), r.stderr[-3000:]
    return {"root": root, "warehouse": warehouse, "home": home, "stdout": r.stdout, "stderr": r.stderr,
            "log": (root / "python.log").read_text(errors="replace"), "code": r.returncode}


def test_the_cli_run_is_recorded_outside_the_ingest_queue(built):
    """The build's run is in DAGSTER_HOME (the UI shows it) with the in-process value of
    the ingest tag: the queue's limit (.dagster_home/dagster.yaml) counts queued runs only,
    so a command-line build, killed or not, never takes a queued run's place."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    from iga_pipeline.defs.automation import IN_PROCESS_TAGS

    with DagsterInstance.from_ref(InstanceRef.from_dir(str(built["home"]))) as instance:
        runs = instance.get_runs()
    assert [r.job_name for r in runs] == ["build_all"]
    assert runs[0].tags["iga/ingest"] == IN_PROCESS_TAGS["iga/ingest"] == "in-process"


def _table_texts(con, relations: list[str]) -> dict[str, list[str]]:
    out = {}
    for relation in relations:
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        cells = []
        if columns:
            cast = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in columns)
            cells = [c for row in con.execute(f"SELECT {cast} FROM {relation}").fetchall() for c in row if c]
        out[relation] = columns + cells
    return out


@pytest.fixture(scope="module")
def corpus(built) -> dict[str, object]:
    """location -> text (str) or bytes, everything the build wrote or said."""
    found: dict[str, object] = {"cli stdout": built["stdout"], "cli stderr": built["stderr"],
                                "python log": built["log"]}
    wh = built["warehouse"]
    con = duckdb.connect(str(wh), read_only=True)
    try:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                             "WHERE table_catalog = current_database()").fetchall()
        for relation, cells in _table_texts(con, [f'"{s}"."{t}"' for s, t in tables]).items():
            found[f"warehouse table {relation}"] = "\n".join(cells)
    finally:
        con.close()
    parquet = []
    for folder, label in ((wh.parent, "warehouse folder"), (built["home"], "DAGSTER_HOME")):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            found[f"{label}: {path.relative_to(folder)}"] = path.read_bytes()
            if path.suffix == ".parquet":
                parquet.append(path)
    con = duckdb.connect()
    try:
        for path in parquet:
            for _, cells in _table_texts(con, [f"read_parquet('{path}')"]).items():
                found[f"parquet cells: {path.name} ({path.parent.name})"] = "\n".join(cells)
    finally:
        con.close()
    return found


def hits(corpus: dict[str, object], wanted: dict[str, str]) -> list[tuple[str, str, str]]:
    out = []
    for location, content in corpus.items():
        if isinstance(content, bytes):
            lowered = content.lower()
            for needle, what in wanted.items():
                n = needle.lower()
                if n.encode("utf-8") in lowered or needle.encode("utf-8") in content or \
                        n.encode("utf-16-le") in lowered or needle.encode("utf-16-le") in content:
                    out.append((location, what, needle))
        else:
            folded = content.casefold()
            out += [(location, what, needle) for needle, what in wanted.items() if needle.casefold() in folded]
    return out


def test_the_scan_covers_every_place(built, corpus):
    """The build ran and wrote every kind of output the scan claims to cover."""
    places = " | ".join(corpus)
    for expected in ("warehouse table \"marts\".", "warehouse table \"staging\".", "warehouse table \"intermediate\".",
                     "warehouse folder: staging/cycle=2/", "warehouse folder: parquet/", "warehouse folder: gx/",
                     "warehouse folder: report/index.html", "DAGSTER_HOME: history/", "parquet cells: "):
        assert expected in places, expected
    assert any(k.endswith(".db") and k.startswith("DAGSTER_HOME") for k in corpus), "no SQLite storage"
    events = b"".join(c for k, c in corpus.items() if k.startswith("DAGSTER_HOME") and isinstance(c, bytes))
    assert b"PIPELINE_SUCCESS" in events and b"participations" in events  # the event log holds this run
    # each file rejected whole is said in the run's log (once, C14): on the console and in the event log
    assert "rejected whole" in built["stderr"] and b"rejected whole" in events
    assert "dagster WARNING" in built["log"]  # the Python log is captured (Dagster's and the libraries' lines)
    # (E1's absurd hours once crashed the adapter; now a warning, whose detail must not leak either)
    assert built["code"] == 3  # folders named by a person are unknown municipalities: rejected whole


def test_the_scan_would_see_a_leak(built, tmp_path):
    """Plant needles where the scan looks (a Parquet cell, compressed; a SQLite row; a log line)."""
    import sqlite3

    con = duckdb.connect()
    planted = tmp_path / "planted.parquet"
    con.execute(f"COPY (SELECT '{R1.pnr('YYYYMMDDNNNC')}' AS a, 'x {N1.last} y' AS b FROM range(1000)) "
                f"TO '{planted}' (FORMAT parquet, COMPRESSION zstd)")
    cells = _table_texts(con, [f"read_parquet('{planted}')"])
    con.close()
    db = tmp_path / "planted.db"
    s = sqlite3.connect(db)
    s.execute("CREATE TABLE t (x TEXT)")
    s.execute("INSERT INTO t VALUES (?)", (json.dumps({"message": f"hej {S1.pnr()}"}),))
    s.commit()
    s.close()
    corpus = {"parquet": "\n".join(next(iter(cells.values()))), "sqlite": db.read_bytes(),
              "log": f"INFO {P2.last.upper()} did something"}
    found = {(loc, what) for loc, what, _ in hits(corpus, needles([R1, N1, S1, P2]))}
    assert found == {("parquet", f"personnummer of {R1.first}"), ("parquet", f"name of {N1.first}"),
                     ("sqlite", f"personnummer of {S1.first}"), ("log", f"name of {P2.first}")}


@pytest.mark.parametrize("cause", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=LEAKS_KNOWN[c])) if c in LEAKS_KNOWN else c
    for c in CAUSES])
def test_no_personal_data_anywhere(corpus, cause):
    found = hits(corpus, needles(CAUSES[cause]))
    summary = sorted({(location, what) for location, what, _ in found})
    assert summary == [], "\n".join(f"{loc}: {what}" for loc, what in summary[:40])


# --- the pseudonym key ----------------------------------------------------------------------------------------

def test_production_refuses_to_run_without_a_key():
    with pytest.raises(pseudonym.PseudonymKeyError):
        pseudonym.key_from_env({"IGA_ENV": "production"})
    with pytest.raises(pseudonym.PseudonymKeyError):
        pseudonym.key_from_env({"IGA_ENV": "Production", "IGA_PSEUDONYM_KEY": ""})
    key = pseudonym.key_from_env({"IGA_ENV": "production", "IGA_PSEUDONYM_KEY": "a real secret, 32 chars or so"})
    assert not key.is_development


@pytest.mark.parametrize("env", [
    {"IGA_ENV": "production "},                                                  # as an env file leaves it
    {"IGA_ENV": "production", "IGA_PSEUDONYM_KEY": " "},                         # no key
    {"IGA_ENV": "production", "IGA_PSEUDONYM_KEY": pseudonym.DEVELOPMENT_KEY + " "},
    {"IGA_ENV": "production", "IGA_PSEUDONYM_KEY": "short secret"},               # 12 characters
], ids=["env-with-space", "blank-key", "dev-key-with-space", "short-key"])
def test_production_is_not_fooled_by_white_space_or_a_short_key(env):
    """A review built with each of these on the public development key (or a guessable one)."""
    with pytest.raises(pseudonym.PseudonymKeyError):
        pseudonym.key_from_env(env)


@pytest.mark.parametrize("value", ["prod", "prd", "Produktion", "live", "production-eu"])
def test_an_environment_the_pipeline_does_not_know_is_refused(value):
    """A mistyped IGA_ENV is refused, key or not (a review built with `prod` on the public
    development key: only the exact word switched the refusal on). `development` and unset
    are not production; `production` in any case, spaces around it, is."""
    for key in ({}, {"IGA_PSEUDONYM_KEY": "a real secret, 32 chars or so"}):
        with pytest.raises(pseudonym.PseudonymKeyError, match="is neither 'production' nor 'development'"):
            pseudonym.key_from_env({"IGA_ENV": value, **key})
    assert pseudonym.key_from_env({"IGA_ENV": " Development "}).is_development
    assert pseudonym.key_from_env({"IGA_ENV": ""}).is_development


def test_a_blank_key_is_said_to_be_blank():
    """'is not set' was said of a variable set to white space (a review's find)."""
    with pytest.raises(pseudonym.PseudonymKeyError, match="IGA_PSEUDONYM_KEY is blank and IGA_ENV"):
        pseudonym.key_from_env({"IGA_ENV": "production", "IGA_PSEUDONYM_KEY": "  "})
    assert pseudonym.development_key_said({}) == "is not set"


def test_a_real_key_is_used_as_given():
    """White space inside or around a real key is part of it: its person_keys never change."""
    a = pseudonym.key_from_env({"IGA_PSEUDONYM_KEY": "a real secret, 32 chars or so"})
    b = pseudonym.key_from_env({"IGA_PSEUDONYM_KEY": "a real secret, 32 chars or so "})
    assert not a.is_development and not b.is_development and a.fingerprint("x") != b.fingerprint("x")
    assert pseudonym.key_from_env({"IGA_PSEUDONYM_KEY": "\t"}).is_development


def test_production_refuses_the_development_key_given_explicitly():
    env = {"IGA_ENV": "production", "IGA_PSEUDONYM_KEY": pseudonym.DEVELOPMENT_KEY}
    with pytest.raises(pseudonym.PseudonymKeyError, match="is the public development key and IGA_ENV"):
        pseudonym.key_from_env(env)  # the message says what is wrong: it is set (a review's find)
    with pytest.raises(pseudonym.PseudonymKeyError, match="is not set and IGA_ENV"):
        pseudonym.key_from_env({"IGA_ENV": "production"})


def test_the_cli_refuses_the_development_key_in_production(tmp_path, monkeypatch, capsys):
    """A raw root that would build: the refusal, not the data, stops it, before anything is written."""
    from iga_pipeline import cli

    monkeypatch.setenv("IGA_ENV", "production")
    monkeypatch.setenv("IGA_PSEUDONYM_KEY", pseudonym.DEVELOPMENT_KEY)
    raw = RawRoot(tmp_path / "raw")
    raw.register("1277", 2, [register_row(R1, 2)])
    code = cli.build(str(raw.root), str(tmp_path / "wh" / "iga.duckdb"))
    assert code == 1
    assert "is the public development key and IGA_ENV" in capsys.readouterr().err
    assert not (tmp_path / "wh").exists()  # no staging, no warehouse


def test_key_rotation_changes_every_key_and_no_count(tmp_path):
    """docs/reliability.md, 'Key rotation': new keys for everyone, the same figures."""
    raw = RawRoot(tmp_path / "raw")
    raw.register("1278", 2, [register_row(p, 2) for p in (R3, R4, X1, N1)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(R3, kommun="Båstad"), fu_end_row(R4, utfallskod="3")])
    old = pseudonym.PseudonymKey(b"the old secret", is_development=False)
    new = pseudonym.PseudonymKey(b"the new secret", is_development=False)
    a, b = ingest_cycle(raw.root, 2, old), ingest_cycle(raw.root, 2, new)
    assert len(a.participations) == len(b.participations) == 4
    assert not set(a.participations["person_key"]) & set(b.participations["person_key"])
    assert not set(a.participations["participation_id"]) & set(b.participations["participation_id"])
    keep = ["cycle", "municipality_code", "gender", "completed", "status_end", "status_end_detail"]
    assert (a.participations[keep].sort_values(keep).reset_index(drop=True)
            .equals(b.participations[keep].sort_values(keep).reset_index(drop=True)))
    drop = ["participation_id"]
    assert a.outcomes.drop(columns=drop).equals(b.outcomes.drop(columns=drop))
    assert a.audit.equals(b.audit)
