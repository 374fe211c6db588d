"""The scaled generator (`iga-pipeline synth --participations N`), built end to end at a small N.

The benchmark (benchmarks/run.py) runs the same generator at 100k-10M; here a
couple of thousand participations are enough to hold it to the contract's
formats and the pipeline to the counts the generator reports.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from iga_pipeline.synth import scale
from iga_pipeline.synth.__main__ import main as synth_main
from test_synth import (CYCLES, FU_90D_HEADER, FU_END_HEADER, MUNICIPALITIES, PETHO_HEADER, REGISTER_HEADER,
                        SURVEY_HEADER)

pytestmark = pytest.mark.slow

N = 2_000
SEED = 7


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    raw = tmp_path_factory.mktemp("scaled") / "raw"
    summary = scale.generate_scaled(raw, N, SEED)
    return raw, summary


@pytest.fixture(scope="module")
def built(scaled, tmp_path_factory, cli_build):
    raw, _ = scaled
    return cli_build(raw, tmp_path_factory.mktemp("scaled-wh") / "iga.duckdb")


def test_sizes_cycle_one_stays_a_workbook_and_the_rest_share_n():
    for n in (N, 1_000_000, 10_000_000):
        sizes = scale.cycle_sizes(n)
        assert sum(sizes.values()) == n
        assert sizes[1] <= scale.CYCLE1_MAX
        assert max(sizes[c] for c in range(2, 9)) - min(sizes[c] for c in range(2, 9)) <= 1


def test_same_seed_same_bytes_other_seed_other_bytes(scaled, tmp_path):
    raw, summary = scaled
    again = scale.generate_scaled(tmp_path / "again", N, SEED)
    assert again == summary
    assert tree(tmp_path / "again") == tree(raw)
    other = scale.generate_scaled(tmp_path / "other", N, SEED + 1)
    assert tree(tmp_path / "other") != tree(raw)
    assert other["participations"] == N


def test_every_files_random_stream_depends_on_the_seed():
    """Each file's stream is seeded by (seed, cycle, file): with the seed left out, every seed
    drew the same defect positions, dates and row orders wherever the sizes agreed, and the
    byte comparison above still passed, the people (seeded apart) being other ones."""
    for cycle in (1, 2, 5):
        for name in ("registers", "end", "90d", "survey"):
            draws = [scale._stream(seed, cycle, name).integers(0, 2**62, 4).tolist() for seed in (SEED, SEED + 1)]
            assert draws[0] != draws[1], (cycle, name)
            assert scale._stream(SEED, cycle, name).integers(0, 2**62, 4).tolist() == draws[0]


def test_the_cli_writes_the_same_files(scaled, tmp_path, capsys):
    raw, summary = scaled
    assert synth_main(["--participations", str(N), "--seed", str(SEED), "--out", str(tmp_path / "cli")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["participations"] == N and printed["rows"] == summary["rows"]
    assert tree(tmp_path / "cli") == tree(raw)


def test_layout_is_the_contract(scaled):
    raw, summary = scaled
    files = set(summary["files"])
    assert files == set(tree(raw))
    assert "leverantorer/petho/cykel1_resultat.xlsx" in files
    assert {f"leverantorer/folkuniversitetet/cykel{c}_{s}.csv" for c in (2, 3, 4) for s in ("slut", "90dagar")} <= files
    assert {f"leverantorer/astorp/cykel{c}.json" for c in (5, 6, 7, 8)} <= files
    assert "leverantorer/astorp/cykel8_90dagar.json" not in files  # as in the project's history
    assert len([f for f in files if f.startswith("kommuner/")]) == 5 * 8
    fu = (raw / "leverantorer/folkuniversitetet/cykel2_slut.csv").read_bytes()
    fu.decode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        fu.decode("utf-8")  # Windows-1252 with å/ö in the header and the names of places
    doc = json.loads((raw / "leverantorer/astorp/cykel5.json").read_text(encoding="utf-8"))
    assert doc["cykel"] == 5 and len(doc["deltagare"]) == summary["files"]["leverantorer/astorp/cykel5.json"]


def test_some_registers_are_saved_with_a_bom_and_some_without(scaled):
    """Like the bundled set, the registers saved from Excel start with a byte-order mark and end
    lines with CRLF, so the BOM path runs at scale too: a writer that dropped the BOM passed."""
    raw, _ = scaled
    boms = {}
    for path in sorted((raw / "kommuner").rglob("*.csv")):
        data = path.read_bytes()
        boms[path] = data.startswith(b"\xef\xbb\xbf")
        assert boms[path] == (b"\r\n" in data), path
    assert any(boms.values()) and not all(boms.values())


def test_the_90_day_export_states_the_90_day_statuses(scaled):
    """A 90-day export gives each participant's status at 90 days, drawn apart from the end of
    the cycle's: one that repeated the end-of-cycle statuses passed every test (a review's find)."""
    raw, _ = scaled
    for end_file, d90_file, read_end, read_90d in (
        ("leverantorer/astorp/cykel5.json", "leverantorer/astorp/cykel5_90dagar.json",
         lambda t: {e["pnr"]: e["status_cykelslut"] for e in json.loads(t)["deltagare"]},
         lambda t: {e["pnr"]: e["status"] for e in json.loads(t)["uppfoljning"]}),
        ("leverantorer/folkuniversitetet/cykel2_slut.csv", "leverantorer/folkuniversitetet/cykel2_90dagar.csv",
         lambda t: {r[0]: r[6] for r in csv.reader(t.splitlines()[1:], delimiter=";")},
         lambda t: {r[0]: r[2] for r in csv.reader(t.splitlines()[1:], delimiter=";")}),
    ):
        encoding = "cp1252" if end_file.endswith(".csv") else "utf-8"
        end = read_end((raw / end_file).read_text(encoding=encoding))
        d90 = read_90d((raw / d90_file).read_text(encoding=encoding))
        both = set(end) & set(d90)
        assert len(both) > 100, d90_file
        same = sum(end[p] == d90[p] for p in both)
        assert same < 0.5 * len(both), (d90_file, same, len(both))


def test_one_row_in_2000_per_defect_kind_and_cycle_is_broken(tmp_path):
    """docs/performance.md: 1 row in 2,000 per defect kind is broken on purpose (at least one).
    At the module's N every cycle gets one whatever the rate, so a wrong rate passed there."""
    summary = scale.generate_scaled(tmp_path / "raw", 25_000, SEED)
    for cycle, c in summary["cycles"].items():
        feb30 = 0
        for path in (tmp_path / "raw" / "kommuner").glob(f"*/deltagare_cykel{cycle}.csv"):
            rows = csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines(), delimiter=";")
            feb30 += sum(r["inskrivningsdatum"].endswith("-02-30") for r in rows)
        assert feb30 == max(1, round(c["participations"] / 2000)), (cycle, feb30)
    assert sum(c["participations"] for c in summary["cycles"].values()) == 25_000


def test_build_exits_zero_and_counts_what_the_generator_planned(scaled, built):
    _, summary = scaled
    assert built.exit_code == 0, built.stderr
    got = dict(built.query("SELECT cycle, count(*) FROM marts.fct_participation GROUP BY cycle"))
    assert got == {int(c): v["participations"] for c, v in summary["cycles"].items()}
    completed = dict(built.query("SELECT cycle, completed FROM marts.outcomes_by_cycle"))
    assert completed == {int(c): v["completers"] for c, v in summary["cycles"].items()}


def test_audit_balances_and_reads_every_row_written(scaled, built):
    _, summary = scaled
    audit = built.query("SELECT source_file, status, rows_read, rows_loaded, rows_rejected, rows_duplicate "
                        "FROM marts.ingest_audit")
    assert {r[0] for r in audit} == set(summary["files"])
    for file, status, read, loaded, rejected, duplicate in audit:
        assert status == "loaded", file
        assert read == loaded + rejected + duplicate, file
        assert read == summary["files"][file], file


def test_every_defect_kind_reaches_the_issues(built):
    reasons = {r[0] for r in built.query("SELECT DISTINCT reason FROM marts.data_quality_issues")}
    assert reasons >= {
        "invalid_personnummer", "invalid_date", "invalid_code", "missing_required", "cycle_mismatch",
        "conflicting_enrollment", "conflicting_duplicate", "orphan_outcome", "duplicate_row",
        "missing_outcome", "municipality_mismatch",
    }
    malformed = built.query("SELECT count(*) FROM marts.data_quality_issues "
                            "WHERE reason = 'missing_required' AND detail LIKE 'the row has % fields%'")
    assert malformed[0][0] > 0


def test_late_followup_is_written_for_the_same_people(scaled, tmp_path):
    raw, summary = scaled
    shutil.copytree(raw, tmp_path, dirs_exist_ok=True)
    rel = scale.write_late_followup(tmp_path, N, SEED, cycle=8)
    assert rel == "leverantorer/astorp/cykel8_90dagar.json"
    doc = json.loads((tmp_path / rel).read_text(encoding="utf-8"))
    end = json.loads((raw / "leverantorer/astorp/cykel8.json").read_text(encoding="utf-8"))
    assert doc["cykel"] == 8 and doc["uppfoljning"]
    known = {e["pnr"] for e in end["deltagare"]}
    followed = [e["pnr"] for e in doc["uppfoljning"]]
    assert sum(p in known for p in followed) > 0.8 * len(followed)


def test_a_returner_keeps_name_and_country_of_birth(scaled):
    """Every register row of a person who comes back in a later cycle gives the same name and
    country (each cycle drew new ones: a review's find)."""
    raw, _ = scaled
    seen: dict[str, set] = {}
    cycles: dict[str, set] = {}
    for path in (raw / "kommuner").rglob("*.csv"):
        for row in csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines(), delimiter=";"):
            pnr = re.sub(r"\D", "", row["personnummer"] or "")[-10:]
            seen.setdefault(pnr, set()).add((row["fornamn"], row["efternamn"], row["fodelseland"]))
            cycles.setdefault(pnr, set()).add(row["cykel"])
    returners = [pnr for pnr, c in cycles.items() if len(c) > 1]
    assert len(returners) > 20
    assert all(len(seen[pnr]) == 1 for pnr in returners), [seen[p] for p in returners if len(seen[p]) > 1][:3]


def test_the_summary_counts_the_defects_the_files_hold(scaled, built):
    """The summary's defect counts are what the pipeline finds: no mismatch counted where the
    file states no municipality (Åstorp's 90-day export), every unknown intervention counted."""
    _, summary = scaled
    defects = summary["defects"]
    found = dict(built.query("SELECT reason || '/' || severity, count(*) FROM marts.data_quality_issues "
                             "GROUP BY ALL"))
    assert found["municipality_mismatch/warning"] == defects["municipality_mismatch"]
    # invalid hours and unknown interventions are the file-level warnings of reason invalid_code
    assert found["invalid_code/warning"] == defects["invalid_hours"] + defects["unknown_intervention"]


@pytest.mark.parametrize("size, seed, change, said", [
    (N + 1000, SEED, None, "give the size and seed the root was made with"),
    (N, SEED + 1, None, "give the size and seed the root was made with"),
    (N, SEED, "remove", "has no leverantorer/astorp/cykel8.json"),
    (N, SEED, "edit", "the file was changed since"),
])
def test_late_followup_refuses_a_root_it_did_not_write(scaled, tmp_path, capsys, size, seed, change, said):
    """A root of another size or seed got statuses of people it does not hold, without a word (a
    review's find); a missing or edited end-of-cycle export is refused too, and said so."""
    raw, _ = scaled
    shutil.copytree(raw, tmp_path / "raw")
    end = tmp_path / "raw" / "leverantorer/astorp/cykel8.json"
    if change == "remove":
        end.unlink()
    elif change == "edit":
        end.write_bytes(end.read_bytes().replace(b'"ANST"', b'"XXXX"', 1))
    before = tree(tmp_path / "raw")
    argv = ["--participations", str(size), "--seed", str(seed), "--late-followup", "8", "--out", str(tmp_path / "raw")]
    with pytest.raises(SystemExit) as exit_:
        synth_main(argv)
    assert exit_.value.code == 2
    assert said in capsys.readouterr().err
    assert tree(tmp_path / "raw") == before


def test_the_raw_root_holds_exactly_the_contracts_files(scaled):
    """Registers for every municipality and cycle, each provider's files for its cycles (no 90-day
    export of cycle 8), and the survey of cycle 3 only: a survey of another cycle passed."""
    raw, _ = scaled
    expected = {f"kommuner/{code}/deltagare_cykel{c}.csv" for code in MUNICIPALITIES for c in range(1, 9)}
    expected |= {"leverantorer/petho/cykel1_resultat.xlsx", "enkater/enkat_cykel3.csv"}
    expected |= {f"leverantorer/folkuniversitetet/cykel{c}_{s}.csv" for c in (2, 3, 4) for s in ("slut", "90dagar")}
    expected |= {f"leverantorer/astorp/cykel{c}.json" for c in (5, 6, 7, 8)}
    expected |= {f"leverantorer/astorp/cykel{c}_90dagar.json" for c in (5, 6, 7)}
    assert set(tree(raw)) == expected


def test_registers_write_the_header_and_every_form_of_personnummer(scaled):
    """The contract's header, ten fields a row (nine in the malformed ones), and the forms
    senders write: all four, and some samordningsnummer (day + 60)."""
    raw, _ = scaled
    forms, coordination = Counter(), 0
    for path in sorted((raw / "kommuner").rglob("*.csv")):
        cycle = int(re.search(r"cykel(\d)", path.name).group(1))
        header, *rows = list(csv.reader(path.read_bytes().decode("utf-8-sig").splitlines(), delimiter=";"))
        assert ";".join(header) == REGISTER_HEADER, path
        assert {len(r) for r in rows} <= {9, 10} and Counter(len(r) for r in rows)[10] > 0, path
        assert {r[5] for r in rows} == {"flykting" if cycle <= 4 else "ifo"}, path  # the cycle's target group
        for r in rows:
            pnr = r[0]
            forms[re.sub(r"\d", "N", pnr)] += 1
            coordination += int(re.sub(r"\D", "", pnr)[-6:-4]) > 60
    assert set(forms) == {"NNNNNN-NNNN", "NNNNNNNN-NNNN", "NNNNNNNNNN", "NNNNNNNNNNNN"}
    assert min(forms.values()) > 0.05 * sum(forms.values())
    assert coordination > 0


def test_folkuniversitetet_writes_its_header_ten_digit_personnummer_and_90_day_dates(scaled):
    """raw-deliveries.md §3: the header, `Personnummer` as YYMMDDNNNC, the municipality's name,
    decimal comma, dates YYYY-MM-DD; the follow-up dated 90-100 days after the cycle's end."""
    raw, _ = scaled
    names = set(MUNICIPALITIES.values())
    for cycle in (2, 3, 4):
        end = CYCLES[cycle][1]
        for suffix, header in (("slut", FU_END_HEADER), ("90dagar", FU_90D_HEADER)):
            data = (raw / f"leverantorer/folkuniversitetet/cykel{cycle}_{suffix}.csv").read_bytes()
            lines = data.decode("cp1252").split("\r\n")
            assert lines[0] == header and lines[-1] == "" and "\n" not in data.decode("cp1252").replace("\r\n", "")
            rows = [line.split(";") for line in lines[1:-1]]
            assert all(re.fullmatch(r"\d{10}", r[0]) and r[1] in names for r in rows), suffix
            dates = [date.fromisoformat(r[-1]) for r in rows if len(r) == len(header.split(";"))]
            if suffix == "slut":
                assert any(re.fullmatch(r"\d+,\d+", h) for r in rows for h in r[2:6])
                assert all(CYCLES[cycle][0] <= d and (d - end).days < 30 for d in dates)
            else:
                assert all(90 <= (d - end).days <= 100 for d in dates)


def test_astorp_exports_are_shaped_like_the_contracts_example(scaled):
    """raw-deliveries.md §4: keys in the example's order, `pnr` as YYYYMMDD-NNNC, UTF-8 (not
    \\u escapes), delivered after the cycle's end (the 90-day export after 90 days)."""
    raw, _ = scaled
    statuses = set()
    for path in sorted((raw / "leverantorer/astorp").glob("*.json")):
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text)
        cycle = int(re.search(r"\d+", path.stem).group())
        delivered = (date.fromisoformat(doc["levererad"]) - CYCLES[cycle][1]).days
        assert doc["leverantor"] == "Åstorps kommun" and '"Åstorps kommun"' in text
        assert doc["cykel"] == cycle
        if path.stem.endswith("_90dagar"):
            assert list(doc) == ["leverantor", "cykel", "levererad", "uppfoljning"] and delivered >= 90
            entries = doc["uppfoljning"]
            assert all(list(e) == ["pnr", "status"] for e in entries)
        else:
            assert list(doc) == ["leverantor", "cykel", "levererad", "deltagare"] and 0 < delivered < 90
            entries = doc["deltagare"]
            assert all(list(e) == ["pnr", "kommunkod", "insatser", "status_cykelslut"] for e in entries)
            assert all(e["kommunkod"] in MUNICIPALITIES for e in entries)
        assert all(re.fullmatch(r"\d{8}-\d{4}", e["pnr"]) for e in entries), path
        statuses.update(e.get("status_cykelslut", e.get("status")) for e in entries)
    assert {None, "OKAND"} <= statuses  # unknown is written both ways


def test_the_petho_workbook_is_laid_out_as_the_contract_says(scaled):
    """raw-deliveries.md §2: a sheet per municipality by name, title, Rapportdatum, an empty row,
    the header on row 4; Personnr as YYMMDD-NNNC and sometimes a number without the dash. The
    layout is the small synth's (one writer, `write_petho_workbook`): the project owner's sheet
    has a note below its data, after an empty row."""
    raw, summary = scaled
    wb = openpyxl.load_workbook(raw / "leverantorer/petho/cykel1_resultat.xlsx")
    assert wb.sheetnames == ["Info", *MUNICIPALITIES.values()]
    kinds, notes = Counter(), []
    for name in MUNICIPALITIES.values():
        ws = wb[name]
        assert ws["A1"].value and ws["A2"].value == "Rapportdatum" and isinstance(ws["B2"].value, datetime)
        assert all(c.value is None for c in ws[3])
        assert [c.value for c in ws[4]] == PETHO_HEADER
        rows = list(ws.iter_rows(min_row=5, values_only=True))
        end = next((i for i, row in enumerate(rows) if row[0] is None), len(rows))
        for row in rows[:end]:
            kinds["int" if isinstance(row[0], int) else "dash" if re.fullmatch(r"\d{6}-\d{4}", row[0]) else "?"] += 1
        notes += [(name, row[0]) for row in rows[end:] if row[0] is not None]
    assert kinds["?"] == 0 and kinds["int"] > 0 and kinds["dash"] > 2 * kinds["int"]
    assert sum(kinds.values()) == summary["files"]["leverantorer/petho/cykel1_resultat.xlsx"]
    assert [name for name, _ in notes] == ["Åstorp"] and notes[0][1].startswith("Sammanställt av")


def test_the_petho_workbook_breaks_one_row_in_2000_with_an_unknown_intervention(scaled):
    """Pethö's unknown interventions keep the defect rate of every other kind (1 row in 2,000,
    at least one): until a review of 2026-12-04 one row in twenty had one."""
    raw, summary = scaled
    wb = openpyxl.load_workbook(raw / "leverantorer/petho/cykel1_resultat.xlsx")
    odd = sum("simning" in str(row[2] or "").casefold()
              for name in MUNICIPALITIES.values() for row in wb[name].iter_rows(min_row=5, values_only=True))
    assert odd == scale.defects_per_kind(summary["cycles"][1]["participations"])


def test_the_survey_is_utf8_comma_separated_with_the_contracts_header(scaled):
    raw, summary = scaled
    lines = (raw / "enkater/enkat_cykel3.csv").read_bytes().decode("utf-8").splitlines()
    assert lines[0] == SURVEY_HEADER
    rows = list(csv.reader(lines[1:]))
    assert len(rows) == summary["files"]["enkater/enkat_cykel3.csv"]
    assert all(len(r) == 4 and r[1] in MUNICIPALITIES and r[3] in ("ja", "nej") for r in rows)
    assert {r[2] for r in rows} <= {"1", "2", "3", "4", "5", "", "7"}


def test_another_seed_draws_other_people(scaled, tmp_path):
    """The seed reaches the people too, not only the files' streams (with it left out, every
    seed wrote the same personnummer, and the files still differed)."""
    raw, _ = scaled
    scale.generate_scaled(tmp_path / "other", N, SEED + 1)

    def pnrs(root):
        return {re.sub(r"\D", "", row["personnummer"])[-10:]
                for path in (root / "kommuner").rglob("*.csv")
                for row in csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines(), delimiter=";")}

    mine, theirs = pnrs(raw), pnrs(tmp_path / "other")
    assert len(mine & theirs) < 0.05 * len(mine)


def test_an_export_written_in_many_chunks_is_the_same_json(tmp_path, monkeypatch):
    """Åstorp's exports are rendered CHUNK_ROWS entries at a time (250,000: only from about a
    million participations on): in many chunks the bytes are those written in one."""
    one = scale.generate_scaled(tmp_path / "one", 400, SEED)
    monkeypatch.setattr(scale, "CHUNK_ROWS", 7)
    many = scale.generate_scaled(tmp_path / "many", 400, SEED)
    assert many == one and tree(tmp_path / "many") == tree(tmp_path / "one")
    doc = json.loads((tmp_path / "many/leverantorer/astorp/cykel5.json").read_text(encoding="utf-8"))
    assert len(doc["deltagare"]) == one["files"]["leverantorer/astorp/cykel5.json"] > 7


# (file, reason, severity) every delivery of the kind holds, at every cycle
EXPECTED_DEFECTS = {
    "kommuner": {("invalid_personnummer", "rejected"), ("invalid_date", "rejected"), ("invalid_code", "rejected"),
                 ("missing_required", "rejected"), ("cycle_mismatch", "rejected"),
                 ("conflicting_enrollment", "rejected"), ("duplicate_row", "warning")},
    "provider": {("invalid_personnummer", "rejected"), ("invalid_code", "rejected"),
                 ("conflicting_duplicate", "rejected"), ("orphan_outcome", "rejected"),
                 ("duplicate_row", "warning")},
}


def test_every_delivery_holds_every_defect_kind_it_can(scaled, built):
    """Not only somewhere in the root: every cycle's registers and every provider file (a kind
    left out of one provider's files passed, the registers holding it), and the summary's count
    of each kind is the pipeline's."""
    raw, summary = scaled
    found = built.query("SELECT source_file, cycle, reason, severity, detail FROM marts.data_quality_issues")
    by_file = defaultdict(set)
    for file, cycle, reason, severity, detail in found:
        where = f"kommuner/{cycle}" if file.startswith("kommuner/") else file
        by_file[where].add((reason, severity))
        if reason == "missing_required" and re.match(r"the row has \d+ fields", detail):
            by_file[where].add(("malformed_row", severity))
    for cycle in range(1, 9):
        assert by_file[f"kommuner/{cycle}"] >= EXPECTED_DEFECTS["kommuner"] | {("malformed_row", "rejected")}, cycle
    for file in summary["files"]:
        if file.startswith("leverantorer/"):
            expected = set(EXPECTED_DEFECTS["provider"])
            if not file.endswith("_90dagar.json"):  # Åstorp's 90-day export states no municipality
                expected.add(("municipality_mismatch", "warning"))
            if file.endswith(".csv"):
                expected.add(("malformed_row", "rejected"))
            if not file.endswith(("_90dagar.csv", "_90dagar.json")):  # hours or interventions
                expected.add(("invalid_code", "warning"))
            assert by_file[file] >= expected, (file, expected - by_file[file])
    assert ("invalid_code", "rejected") in by_file["enkater/enkat_cykel3.csv"]
    counts = Counter((reason, severity) for _, _, reason, severity, _ in found)
    malformed = sum(1 for _, _, reason, _, detail in found
                    if reason == "missing_required" and re.match(r"the row has \d+ fields", detail))
    d = summary["defects"]
    assert counts[("invalid_personnummer", "rejected")] == d["invalid_personnummer"]
    assert counts[("invalid_date", "rejected")] == d["invalid_date"]
    assert counts[("cycle_mismatch", "rejected")] == d["cycle_mismatch"]
    assert counts[("conflicting_enrollment", "rejected")] == d["conflicting_enrollment"]
    assert counts[("conflicting_duplicate", "rejected")] == d["conflicting_duplicate"]
    assert counts[("orphan_outcome", "rejected")] == d["orphan_outcome"]
    assert counts[("duplicate_row", "warning")] == d["duplicate_row"]
    assert malformed == d["malformed_row"]
    assert counts[("missing_required", "rejected")] == d["missing_required"] + d["malformed_row"]
    assert counts[("invalid_code", "rejected")] == d["invalid_code"] + d["invalid_survey_answer"]
