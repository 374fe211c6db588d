"""Re-sent and corrected deliveries (issue 6, item 2), and building twice.

Three builds into the same warehouse path, with the real CLI in process:

  1. the original deliveries;
  2. Folkuniversitetet re-sends cykel2_slut.csv with one correction (one
     person's Utfallskod 1 -> 3: work -> studies);
  3. nothing changed: the same raw files again.

The new version wins; the old one stays in marts.delivery_history with its
hash, superseded; the figures change only where the data changed (one
participation, cycle 2's rows, the audit row of the re-sent file, and the
totals derived from them); build 3 gives marts identical to build 2, and so
do the Parquet exports.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import expected_person_key, run_cli_build
from rawfiles import (
    RawRoot, astorp_entry, astorp_followup, fu_90_row, fu_end_row, people, petho_row, register_row,
)

pytestmark = pytest.mark.slow

PEOPLE = people(12)
A1, A2, A3 = PEOPLE[0:3]
B = PEOPLE[3:8]
C1, C2, C3 = PEOPLE[8:11]
CORRECTED = B[2]
FU_SLUT = RawRoot.fu_rel(2, "slut")
# Everything a mart row is keyed by, to tell "this row changed" from "rows moved".
KEYS = {
    "outcomes_by_cycle": ["cycle"], "outcomes_by_municipality": ["municipality_code", "cycle"],
    "fct_participation": ["participation_id"], "fct_intervention": ["participation_id", "intervention"],
    "ingest_audit": ["source_file"], "data_quality_issues": ["source_file", "source_row", "reason"],
    "survey_by_cycle": ["cycle"],
}


def fu_slut_rows(corrected: bool) -> list[dict]:
    codes = ["1", "1", "3" if corrected else "1", "5", "9"]
    return [fu_end_row(p, kommun="Båstad", hours=(10, "", "", ""), utfallskod=u) for p, u in zip(B, codes)]


def write_raw(raw: RawRoot) -> None:
    raw.register("1277", 1, [register_row(p, 1) for p in (A1, A2, A3)])
    raw.petho({"Åstorp": [petho_row(A1, status_90d="Anställd"), petho_row(A2, status_end="Studier"),
                          petho_row(A3, status_end="Arbetssökande", status_90d="Studier")]})
    raw.register("1278", 2, [register_row(p, 2) for p in B])
    raw.folkuniversitetet(2, "slut", fu_slut_rows(corrected=False))
    raw.folkuniversitetet(2, "90dagar", [fu_90_row(p, kommun="Båstad", utfallskod="1") for p in B[:3]])
    raw.register("1292", 5, [register_row(p, 5) for p in (C1, C2, C3)])
    raw.astorp(5, [astorp_entry(C1, kommunkod="1292"), astorp_entry(C2, status="STUD", kommunkod="1292")])
    raw.astorp(5, [astorp_followup(C1, "ANST")], followup=True)
    raw.survey(3, [{"svar_id": "1", "kommunkod": "1277", "okad_mojlighet": "5", "tolk": "ja"}])


def snapshot(build) -> dict[str, pd.DataFrame]:
    """Every marts table (rows sorted), and every Parquet export, as frames."""
    con = duckdb.connect(str(build.warehouse), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'marts' ORDER BY 1").fetchall()]
        out = {n: _sorted(con.execute(f"SELECT * FROM marts.{n}").df()) for n in names}
    finally:
        con.close()
    con = duckdb.connect()
    try:
        for path in sorted((build.warehouse.parent / "parquet").glob("*.parquet")):
            out[f"parquet:{path.stem}"] = _sorted(con.execute(f"SELECT * FROM read_parquet('{path}')").df())
    finally:
        con.close()
    return out


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), na_position="first",
                             key=lambda s: s.astype(str)).reset_index(drop=True)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("resent")
    raw = RawRoot(root / "raw")
    write_raw(raw)
    warehouse = root / "wh" / "iga.duckdb"
    original = (raw.root / FU_SLUT).read_bytes()
    first = run_cli_build(raw.root, warehouse)
    assert first.exit_code == 0, first.stderr[-2000:]
    s1 = snapshot(first)
    raw.folkuniversitetet(2, "slut", fu_slut_rows(corrected=True))  # the re-sent, corrected file
    corrected = (raw.root / FU_SLUT).read_bytes()
    second = run_cli_build(raw.root, warehouse)
    assert second.exit_code == 0, second.stderr[-2000:]
    s2 = snapshot(second)
    third = run_cli_build(raw.root, warehouse)
    assert third.exit_code == 0, third.stderr[-2000:]
    s3 = snapshot(third)
    return {"snapshots": (s1, s2, s3), "last": third,
            "hashes": (hashlib.sha256(original).hexdigest(), hashlib.sha256(corrected).hexdigest())}


def changed_rows(before: pd.DataFrame, after: pd.DataFrame, keys: list[str]) -> set[tuple]:
    """Keys of the rows that differ (added, removed or changed) between two versions of a mart."""
    b = {tuple(r[k] for k in keys): r for r in before.astype(object).where(before.notna(), None)
         .to_dict("records")}
    a = {tuple(r[k] for k in keys): r for r in after.astype(object).where(after.notna(), None)
         .to_dict("records")}
    return {k for k in b.keys() | a.keys() if b.get(k) != a.get(k)}


def test_the_corrected_version_wins(builds):
    last = builds["last"]
    pid = f"c2-{expected_person_key(CORRECTED)[:16]}"
    assert last.query("SELECT status_end, status_end_detail FROM marts.fct_participation "
                      "WHERE participation_id = ?", [pid]) == [("studies", "education")]
    old, new = builds["hashes"]
    s1, s2, _ = builds["snapshots"]
    audit = lambda s: s["ingest_audit"].set_index("source_file").loc[FU_SLUT, "sha256"]  # noqa: E731
    assert (audit(s1), audit(s2)) == (old, new)


def test_figures_change_only_where_the_data_changed(builds):
    s1, s2, _ = builds["snapshots"]
    pid = f"c2-{expected_person_key(CORRECTED)[:16]}"
    assert changed_rows(s1["fct_participation"], s2["fct_participation"], KEYS["fct_participation"]) == {(pid,)}
    assert changed_rows(s1["outcomes_by_cycle"], s2["outcomes_by_cycle"], ["cycle"]) == {(2,)}
    by_muni = changed_rows(s1["outcomes_by_municipality"], s2["outcomes_by_municipality"],
                           KEYS["outcomes_by_municipality"])
    assert {cycle for _, cycle in by_muni} <= {2}
    assert changed_rows(s1["ingest_audit"], s2["ingest_audit"], ["source_file"]) == {(FU_SLUT,)}
    for name in ("fct_intervention", "data_quality_issues", "survey_by_cycle"):
        assert changed_rows(s1[name], s2[name], KEYS[name]) == set(), name
    c2 = lambda s: s["outcomes_by_cycle"].set_index("cycle").loc[2]  # noqa: E731
    assert (c2(s2)["work_at_end"], c2(s2)["studies_at_end"]) == (c2(s1)["work_at_end"] - 1,
                                                                   c2(s1)["studies_at_end"] + 1)
    assert c2(s2)["completed"] == c2(s1)["completed"]


def test_building_twice_from_the_same_files_gives_identical_marts(builds):
    _, s2, s3 = builds["snapshots"]
    assert s2.keys() == s3.keys()
    assert any(k.startswith("parquet:") for k in s2)
    different = [name for name in s2 if not s2[name].equals(s3[name])]
    assert different == []


def test_the_old_version_stays_in_the_delivery_history(builds):
    old, new = builds["hashes"]
    last = builds["last"]
    columns = [r[0] for r in last.query("DESCRIBE marts.delivery_history")]
    assert columns[:4] == ["source_file", "sha256", "first_built", "status"]
    types = dict((r[0], r[1]) for r in last.query("DESCRIBE marts.delivery_history"))
    assert types["first_built"].startswith("TIMESTAMP"), types
    rows = last.query("SELECT sha256, status, first_built FROM marts.delivery_history "
                      "WHERE source_file = ? ORDER BY first_built", [FU_SLUT])
    assert [(h, s) for h, s, _ in rows] == [(old, "superseded"), (new, "current")]
    assert rows[0][2] < rows[1][2]
    # every other file: one version, current
    others = last.query("SELECT source_file, count(*), min(status), max(status) FROM marts.delivery_history "
                        "WHERE source_file <> ? GROUP BY 1", [FU_SLUT])
    assert others and all((n, lo, hi) == (1, "current", "current") for _, n, lo, hi in others), others


def _staged(tmp_path: Path):
    """write_raw's files under tmp_path/raw, every cycle staged in tmp_path/staging with the
    inventory, under a key of the delivery-history tests: the RawRoot, the folder, the key."""
    from iga_pipeline import reference, staging
    from iga_pipeline.pseudonym import PseudonymKey

    key = PseudonymKey(b"delivery-history-test-key", is_development=False)
    raw = RawRoot(tmp_path / "raw")
    write_raw(raw)
    folder = tmp_path / "staging"
    list(staging.stage_cycles(raw.root, folder, list(reference.cycles()), key, workers=1))
    staging.write_inventory(raw.root, folder)
    return raw, folder, key


def test_a_version_that_comes_back_and_a_file_that_goes_have_periods_of_their_own(tmp_path):
    """v1, v2, v1 again, the file taken away, v1 back: each is a period of its own in
    marts.delivery_history, from the build that first read it until the next build that
    read another version or found the file gone (known gap until 2026-12-01: v1 came back
    as current with its first build date, v2 looked superseded by it, and the time the
    file was missing was not recorded). Real raw files, staging and DuckDB, no Dagster."""
    from iga_pipeline import history, reference, staging
    from iga_pipeline.evaluation import EVALUATION_MARTS
    from iga_pipeline.warehouse import build

    raw, folder, key = _staged(tmp_path)
    cycles = list(reference.cycles())

    def rebuild_cycle_2(n: int) -> list[tuple]:
        """Ingest cycle 2 again, build a warehouse; the history of FU_SLUT, oldest first."""
        if n:
            list(staging.stage_cycles(raw.root, folder, [2], key, workers=1))
        assert staging.not_ready(folder, cycles, key) == []
        warehouse = build.build_candidate(folder, tmp_path / f"w{n}.duckdb", EVALUATION_MARTS)
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            return con.execute("SELECT sha256, status, first_built, ended FROM marts.delivery_history "
                               "WHERE source_file = ? ORDER BY first_built", [FU_SLUT]).fetchall()
        finally:
            con.close()

    def sha() -> str:
        return hashlib.sha256(raw.path(FU_SLUT).read_bytes()).hexdigest()

    v1 = sha()
    assert [(h, s, e) for h, s, _, e in rebuild_cycle_2(0)] == [(v1, "current", None)]
    raw.folkuniversitetet(2, "slut", fu_slut_rows(corrected=True))
    v2 = sha()
    second = rebuild_cycle_2(1)
    assert [(h, s) for h, s, _, _ in second] == [(v1, "superseded"), (v2, "current")]
    assert second[0][3] == second[1][2] and second[1][3] is None  # v1 ended when v2 was first built
    raw.folkuniversitetet(2, "slut", fu_slut_rows(corrected=False))
    third = rebuild_cycle_2(2)
    assert [(h, s) for h, s, _, _ in third] == [(v1, "superseded"), (v2, "superseded"), (v1, "current")]
    assert third[:2] == [second[0], (v2, "superseded", second[1][2], third[2][2])]
    assert third[2][3] is None

    raw.path(FU_SLUT).unlink()
    fourth = rebuild_cycle_2(3)
    assert [(h, s) for h, s, _, _ in fourth] == [(v1, "superseded"), (v2, "superseded"), (v1, "removed")]
    gone_at = fourth[2][3]
    assert gone_at is not None and gone_at > third[2][2]
    raw.folkuniversitetet(2, "slut", fu_slut_rows(corrected=False))
    fifth = rebuild_cycle_2(4)
    assert [(h, s) for h, s, _, _ in fifth] == [(v1, "superseded"), (v2, "superseded"),
                                                 (v1, "superseded"), (v1, "current")]
    assert fifth[2][3] == gone_at < fifth[3][2]  # the time it was missing: from gone_at until then
    assert rebuild_cycle_2(5) == fifth  # nothing new read: nothing added
    log = history.read_log(folder)
    assert log["sha256"].isna().sum() == 1  # the one removal
    other = log[log["source_file"] != FU_SLUT]
    assert not other["source_file"].duplicated().any()  # every other file: one version, once

    # A log written before returns were recorded (v1, v2; v1 read again, nothing added):
    # the staged version is not the log's last, so the marts are refused until cycle 2 is
    # ingested again, rather than shown with no current version.
    rows = log.index[log["source_file"] == FU_SLUT]
    log.drop(rows[2:]).to_parquet(history.log_path(folder), index=False)
    assert [p for p in staging.not_ready(folder, cycles, key) if "delivery log" in p] == [
        "the delivery log (delivery_log.parquet) lacks what cycle(s) 2 were built from: ingest them "
        "again (iga-pipeline build)"]


def test_a_file_refused_unread_leaves_its_last_version_superseded(tmp_path):
    """reliability.md (O13): a file refused unread (here a link out of the raw root) has no
    version, so the warehouse was not built from its last one: that stays superseded, with
    no end, and the refused time adds no row (a review's mutation showed it current)."""
    from iga_pipeline import staging
    from iga_pipeline.evaluation import EVALUATION_MARTS
    from iga_pipeline.warehouse import build

    raw, folder, key = _staged(tmp_path)
    v1 = hashlib.sha256(raw.path(FU_SLUT).read_bytes()).hexdigest()
    outside = tmp_path / "elsewhere" / "cykel2_slut.csv"
    outside.parent.mkdir()
    raw.path(FU_SLUT).rename(outside)
    raw.path(FU_SLUT).symlink_to(outside)
    list(staging.stage_cycles(raw.root, folder, [2], key, workers=1))
    warehouse = build.build_candidate(folder, tmp_path / "w.duckdb", EVALUATION_MARTS)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        audit = con.execute("SELECT status, sha256 FROM marts.ingest_audit WHERE source_file = ?",
                            [FU_SLUT]).fetchall()
        history = con.execute("SELECT sha256, status, ended FROM marts.delivery_history WHERE source_file = ?",
                              [FU_SLUT]).fetchall()
    finally:
        con.close()
    assert audit == [("rejected", None)]  # listed, never opened: no version
    assert history == [(v1, "superseded", None)]


def test_a_file_gone_is_logged_but_counted_as_no_new_version(tmp_path):
    """history.record returns the versions no build had read before (the run's log says how
    many): a file gone adds its row without a hash but is no new version (a review's mutation
    counted it as one, unseen); its return is one again."""
    from conftest import TEST_KEY

    from iga_pipeline import history
    from iga_pipeline.ingest import ingest_cycle

    raw = RawRoot(tmp_path / "raw")
    write_raw(raw)
    folder = tmp_path / "staging"

    def record() -> int:
        return history.record(folder, ingest_cycle(raw.root, 2, TEST_KEY).audit, [2], TEST_KEY)

    assert record() == 3  # the register, the end and the 90-day files
    assert record() == 0
    raw.path(FU_SLUT).unlink()
    assert record() == 0
    last = history.read_log(folder).iloc[-1]
    assert last["source_file"] == FU_SLUT and pd.isna(last["sha256"])
    raw.folkuniversitetet(2, "slut", fu_slut_rows(corrected=True))
    assert record() == 1


def test_the_delivery_log_keeps_no_name_id_of_another_key_or_none(tmp_path):
    """The log outlives builds. A folder named after a person ('850101-2382') was shown as
    the unkeyed sha256 of its name until 2026-12-02 (a review undid one by brute force), and
    after a key rotation the old key's ids would stay: the first ingest under a key keys
    every hashed component of the log anew. The path then reads as one gone, one new."""
    from conftest import expected_name_id

    from iga_pipeline import history, reference, staging
    from iga_pipeline.pseudonym import PseudonymKey

    secrets = ["delivery-log-key-one", "delivery-log-key-two"]
    key_a, key_b = (PseudonymKey(s.encode(), is_development=False) for s in secrets)
    raw = RawRoot(tmp_path / "raw")
    write_raw(raw)
    raw.write_text("kommuner/850101-2382/deltagare_cykel2.csv", raw.path(RawRoot.register_rel("1278", 2))
                   .read_text(encoding="utf-8"))  # rejected whole (unknown_municipality), logged
    folder = tmp_path / "staging"
    cycles = list(reference.cycles())
    list(staging.stage_cycles(raw.root, folder, cycles, key_a, workers=1))
    staging.write_inventory(raw.root, folder, key_a)
    shown_a = f"kommuner/~{expected_name_id('850101-2382', secrets[0])}/deltagare_cykel2.csv"
    assert shown_a in set(history.read_log(folder)["source_file"])

    # A log of before 2026-12-02: the same path under the unkeyed id, no key recorded.
    unkeyed = "~" + hashlib.sha256(b"850101-2382").hexdigest()[:10]
    legacy = history.read_log(folder).replace({"source_file": {shown_a: f"kommuner/{unkeyed}/deltagare_cykel2.csv"}})
    legacy.to_parquet(history.log_path(folder), index=False)
    (folder / "cycle=2" / staging.KEY_STAMP).write_text(key_a.fingerprint("staging"))  # the stamp then
    assert "cycle 2 was staged under another pseudonym key (or before keys, or keyed names, were " \
        "recorded): run a full build (iga-pipeline build, every cycle)" in staging.not_ready(folder, cycles, key_a)
    list(staging.stage_cycles(raw.root, folder, [2], key_a, workers=1))
    log = history.read_log(folder)
    assert not log["source_file"].str.contains(unkeyed[1:]).any()
    rekeyed = f"kommuner/~{expected_name_id('rekeyed|' + unkeyed, secrets[0])}/deltagare_cykel2.csv"
    assert [(f, pd.isna(h)) for f, h in zip(log["source_file"], log["sha256"]) if "/~" in f] == [
        (rekeyed, False), (shown_a, False), (rekeyed, True)]  # as it was, as it is now, gone
    assert staging.not_ready(folder, cycles, key_a) == []
    before = len(log)
    list(staging.stage_cycles(raw.root, folder, [2], key_a, workers=1))
    assert len(history.read_log(folder)) == before, "under the same key nothing is keyed again"

    list(staging.stage_cycles(raw.root, folder, cycles, key_b, workers=1))  # the key rotated
    names = set(history.read_log(folder)["source_file"])
    assert not {shown_a, rekeyed} & names
    assert f"kommuner/~{expected_name_id('850101-2382', secrets[1])}/deltagare_cykel2.csv" in names
    hashed = {part for n in names for part in n.split("/") if part.startswith("~")}
    id_a = "~" + expected_name_id("850101-2382", secrets[0])
    assert hashed == {"~" + expected_name_id("850101-2382", secrets[1]),  # the folder, under B
                      "~" + expected_name_id(f"rekeyed|{id_a}", secrets[1]),  # A's id, keyed under B
                      "~" + expected_name_id(f"rekeyed|{rekeyed.split('/')[1]}", secrets[1])}

    # The key rotated again, and a cycle whose files name no one is staged first: the log is
    # still keyed anew as a whole (a review's mutation left B's ids, as nothing of cycle 3 changed)
    key_c = PseudonymKey(b"delivery-log-key-three", is_development=False)
    list(staging.stage_cycles(raw.root, folder, [3], key_c, workers=1))
    hashed_c = {part for n in history.read_log(folder)["source_file"] for part in n.split("/") if part.startswith("~")}
    assert len(hashed_c) == len(hashed) and hashed_c.isdisjoint(hashed)
