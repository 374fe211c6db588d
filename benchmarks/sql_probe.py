"""A probe, not the pipeline: how fast could a cycle's ingest be in DuckDB SQL, reading included?

docs/performance.md says that only the ingest in DuckDB SQL, from reading the
files to the row rules, could bring the 1M full build within 3x the floor (the
rules alone in SQL were slower). This script measures that claim on one Åstorp cycle of a synthetic data set (`iga-pipeline synth`), next
to the pipeline's own ingest of the same cycle (`staging.stage_cycle`, pandas
and pandera, in this process after its imports).

What the SQL does, all in one DuckDB connection (its default threads, or
`--threads`; the pipeline's ingest is one process per cycle, one core):
- the cycle's five register CSV files: read (lines with too few fields
  recorded as rejected through DuckDB's `store_rejects`), each row's personnummer parsed
  (the five written forms, century from the cycle's start, coordination
  numbers, Luhn), keyed with HMAC-SHA256 (DuckDB's sha256 over the keyed
  blocks), every code and date checked (R4: one reason per rejected row),
  identical rows counted once and differing rows of one person rejected (R5);
- Åstorp's end-of-cycle and 90-day JSON exports: unnested, personnummer and
  keys as above, status codes checked, orphans (R6), conflicting and repeated
  rows (R5), the municipality mismatch warning (R7), the interventions;
- each participation's status at the end and at 90 days (R8, R9) and the
  missing-outcome warnings;
- Parquet out: participations, outcomes, interventions, issues.

What it leaves out, so its time is a lower bound for a rewrite: the issues'
detail texts, the audit, the pandera models and rejection schemas, exact line
numbers of register rows after a malformed line (DuckDB numbers only the rows
it accepts), JSON that is not the usual shape, white space other than spaces
around values, the rules for an intervention's hours (over 4,416, more than
two decimals, written as a string) and for one intervention twice in a row
(measured by a review: each gives rows that differ from the pipeline's; the
generator writes none of them), the checked-files store, the staging stamps. And one thing a
rewrite must not copy: DuckDB's reject table keeps each malformed line's text
(names, personnummer) in memory. Its four outputs are compared with the
pipeline's, row by row (the register rows without their line numbers, the
issues by severity and reason; `compare`); a test keeps them equal
(`iga_pipeline_tests/test_sql_probe.py`).

    .venv/bin/python benchmarks/sql_probe.py --raw benchmarks/data/1000000/raw --cycle 6
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from iga_pipeline import reference
from iga_pipeline.pseudonym import key_from_env


def _with_pnr(source: str, col: str, ref: str) -> str:
    """SQL: the rows of `source` with `pnr` (12 digits) and `pnr_error` for the written
    personnummer `col` (the rules of personnummer.py), the cycle's start date `ref` a
    DATE literal. In stages, so that DuckDB computes each part once per row."""
    luhn = " + ".join(f"(_n[{i + 1}] * {2 - i % 2}) // 10 + (_n[{i + 1}] * {2 - i % 2}) % 10" for i in range(9))
    return f"""(
        WITH a AS (SELECT *, trim({col}) AS _t FROM {source}),
        b AS (SELECT *, regexp_full_match(_t, '(?:[0-9]{{6}}[-+]?|[0-9]{{8}}-?)[0-9]{{4}}') AS _form,
                 replace(replace(_t, '-', ''), '+', '') AS _d, contains(_t, '+') AS _plus FROM a),
        c AS (SELECT *, right(_d, 10) AS _ten FROM b),
        d AS (SELECT *, try_cast(left(_ten, 2) AS INTEGER) AS _yy, substr(_ten, 3, 2) AS _mm,
                 lpad((try_cast(substr(_ten, 5, 2) AS INTEGER)
                       - CASE WHEN try_cast(substr(_ten, 5, 2) AS INTEGER) > 60 THEN 60 ELSE 0 END)::VARCHAR,
                      2, '0') AS _dd,
                 list_transform(range(10), lambda i: ascii(substr(_ten, i + 1, 1)) - 48) AS _n FROM c),
        e AS (SELECT *, (year({ref}) // 100) * 100 + _yy AS _base FROM d),
        f AS (SELECT *, CASE WHEN length(_d) = 12 THEN try_cast(left(_d, 4) AS INTEGER)
                 ELSE _base - CASE WHEN coalesce(try_strptime(lpad(_base::VARCHAR, 4, '0') || _mm || _dd,
                                                             '%Y%m%d')::DATE > {ref}, true) THEN 100 ELSE 0 END
                            - CASE WHEN _plus THEN 100 ELSE 0 END END AS _year FROM e)
        SELECT * EXCLUDE (_t, _form, _d, _plus, _ten, _yy, _mm, _dd, _n, _base, _year),
            CASE WHEN _form AND try_strptime(lpad(_year::VARCHAR, 4, '0') || _mm || _dd, '%Y%m%d') IS NOT NULL
                      AND (10 - ({luhn}) % 10) % 10 = _n[10]
                 THEN lpad(_year::VARCHAR, 4, '0') || right(_ten, 8) END AS pnr,
            CASE WHEN {col} IS NULL OR _t = '' THEN 'missing'
                 WHEN NOT _form THEN 'unrecognised_form'
                 WHEN try_strptime(lpad(_year::VARCHAR, 4, '0') || _mm || _dd, '%Y%m%d') IS NULL
                      THEN 'impossible_date'
                 WHEN (10 - ({luhn}) % 10) % 10 <> _n[10] THEN 'wrong_check_digit' END AS pnr_error
        FROM f)"""


def _key(pnr: str) -> str:
    """SQL: hex HMAC-SHA256 of `pnr` under the keyed blocks $ipad and $opad."""
    return f"sha256($opad || unhex(sha256($ipad || ({pnr})::BLOB)))"


def probe(raw: Path, cycle: int, out: Path, secret: bytes, threads: int | None = None) -> dict[str, int]:
    info = reference.cycles()[cycle]
    ref = f"DATE '{info.start}'"
    key = secret if len(secret) <= 64 else hashlib.sha256(secret).digest()  # RFC 2104, as pseudonym.py
    key = key.ljust(64, b"\0")
    params = {"ipad": bytes(b ^ 0x36 for b in key), "opad": bytes(b ^ 0x5C for b in key)}
    registers = sorted(raw.glob(f"kommuner/*/deltagare_cykel{cycle}.csv"))
    end = raw / f"leverantorer/astorp/cykel{cycle}.json"
    late = raw / f"leverantorer/astorp/cykel{cycle}_90dagar.json"
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")  # row numbers follow the files
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for name in ("outcome_codes", "outcome_classes", "intervention_codes", "countries", "register_codes",
                 "municipalities"):
        con.register("frame", reference.table(name))
        con.execute(f"CREATE TABLE ref_{name} AS SELECT * FROM frame")
        con.unregister("frame")

    q = lambda p: "'" + str(p).replace("'", "''") + "'"  # noqa: E731

    def provider_rows(path: Path, tp: str) -> None:
        list_key, status = ("deltagare", "status_cykelslut") if tp == "end" else ("uppfoljning", "status")
        kommun = "e.kommunkod" if tp == "end" else "NULL::VARCHAR"  # the 90-day export names none
        # The export's shape declared (reading without it took 0.70 s instead of 0.23 s): every
        # value as text, as a sender may write any JSON type; a number of hours is checked below.
        entry = (f"STRUCT(pnr VARCHAR, kommunkod VARCHAR, {status} VARCHAR"
                 + (", insatser STRUCT(typ VARCHAR, timmar VARCHAR)[])" if tp == "end" else ")"))
        columns = f"{{'cykel': 'VARCHAR', '{list_key}': '{entry}[]'}}"
        con.execute(f"""CREATE TABLE raw_{tp} AS
            SELECT unnest(d.{list_key}) AS e, unnest(range(1, len(d.{list_key}) + 1)) AS source_row
            FROM read_json({q(path)}, columns = {columns}, maximum_object_size = 1073741824) d""")
        con.execute(f"""CREATE TABLE rows_{tp} AS
            WITH p AS (SELECT * FROM {_with_pnr(f"(SELECT source_row, e, e.pnr AS pnr_written FROM raw_{tp})", 'pnr_written', ref)})
            SELECT source_row, pnr, nullif(trim(e.{status}), '') AS status,
                   CASE WHEN trim({kommun}) IN (SELECT municipality_code::VARCHAR FROM ref_municipalities)
                        THEN trim({kommun}) END AS municipality_code,
                   {kommun} IS NOT NULL AND trim({kommun}) NOT IN
                        (SELECT municipality_code::VARCHAR FROM ref_municipalities) AS bad_kommun,
                   CASE WHEN pnr_error IS NOT NULL THEN 'invalid_personnummer'
                        WHEN coalesce(trim(e.{status}), '') NOT IN
                             (SELECT coalesce(code, '') FROM ref_outcome_codes WHERE source_kind = 'astorp')
                             THEN 'invalid_code' END AS reason
                   {", e.insatser AS insatser" if tp == "end" else ""}
            FROM p""")

    con.execute("CREATE TABLE reg_raw AS " + " UNION ALL ".join(
        f"SELECT *, {q(p.relative_to(raw))} AS source_file, {q(p.parent.name)} AS municipality_code, "
        f"row_number() OVER () + 1 AS source_row "
        f"FROM read_csv({q(p)}, delim=';', header=true, all_varchar=true, quote='\"', store_rejects=true)"
        for p in registers))
    con.execute(f"""CREATE TABLE reg AS
        WITH p AS (SELECT * FROM {_with_pnr('reg_raw', 'personnummer', ref)})
        SELECT source_file, source_row, municipality_code, pnr,
               nfc_normalize(fornamn) AS fornamn, nfc_normalize(efternamn) AS efternamn,
               kon, fodelseland, malgrupp, cykel, inskrivningsdatum, utskrivningsdatum,
               nullif(trim(avbrott_orsak), '') AS avbrott_orsak,
               CASE WHEN pnr_error IS NOT NULL THEN 'invalid_personnummer'
                    WHEN kon IS NULL OR malgrupp IS NULL OR inskrivningsdatum IS NULL
                         OR cykel IS NULL THEN 'missing_required'
                    WHEN kon NOT IN (SELECT code FROM ref_register_codes WHERE "column" = 'kon')
                      OR malgrupp NOT IN (SELECT code FROM ref_register_codes WHERE "column" = 'malgrupp')
                      OR (fodelseland IS NOT NULL AND fodelseland NOT IN (SELECT country_code FROM ref_countries))
                      OR (nullif(trim(avbrott_orsak), '') IS NOT NULL AND trim(avbrott_orsak) NOT IN
                          (SELECT code FROM ref_register_codes WHERE "column" = 'avbrott_orsak'))
                         THEN 'invalid_code'
                    WHEN try_strptime(inskrivningsdatum, '%Y-%m-%d') IS NULL
                      OR (utskrivningsdatum IS NOT NULL AND try_strptime(utskrivningsdatum, '%Y-%m-%d') IS NULL)
                      OR try_strptime(utskrivningsdatum, '%Y-%m-%d') < try_strptime(inskrivningsdatum, '%Y-%m-%d')
                         THEN 'invalid_date'
                    WHEN trim(cykel) <> '{cycle}' THEN 'cycle_mismatch' END AS reason
        FROM p""")
    # the providers' rows, read and parsed; then each distinct personnummer of the cycle keyed once
    tps = ["end", "90d"] if late.exists() else ["end"]
    for tp in tps:
        provider_rows(end if tp == "end" else late, tp)
    con.execute("CREATE TABLE keys AS SELECT pnr, " + _key("pnr") + " AS person_key FROM ("
                + " UNION ".join(f"SELECT pnr FROM {t} WHERE reason IS NULL"
                                 for t in ["reg", *(f"rows_{tp}" for tp in tps)]) + ")", params)
    con.execute("""CREATE TABLE reg_keyed AS  -- k > 1: a repeat of an identical row in its file
        SELECT *, row_number() OVER (PARTITION BY source_file, municipality_code, person_key, fornamn, efternamn,
                  kon, fodelseland, malgrupp, cykel, inskrivningsdatum, utskrivningsdatum, avbrott_orsak ORDER BY source_row) AS k
        FROM reg JOIN keys USING (pnr) WHERE reason IS NULL""")
    con.execute("""CREATE TABLE reg_ok AS
        SELECT *, count(*) OVER (PARTITION BY person_key) > 1 AS clash FROM reg_keyed WHERE k = 1""")
    con.execute(f"""CREATE TABLE participations AS
        SELECT 'c{cycle}-' || left(person_key, 16) AS participation_id, person_key, {cycle} AS cycle,
               municipality_code, kon AS gender,
               coalesce(c.birth_region, 'unknown') AS birth_region, malgrupp AS target_group,
               inskrivningsdatum::DATE AS enrolled_on, utskrivningsdatum::DATE AS exited_on,
               avbrott_orsak IS NULL AS completed, avbrott_orsak AS dropout_reason, source_file, source_row
        FROM reg_ok r LEFT JOIN ref_countries c ON c.country_code = r.fodelseland WHERE NOT clash""")

    for tp in tps:
        con.execute(f"""CREATE TABLE ok_{tp} AS
            WITH k AS (SELECT * FROM rows_{tp} JOIN keys USING (pnr) WHERE reason IS NULL),
            o AS (SELECT k.*, p.participation_id IS NULL AS orphan, p.municipality_code AS register_code
                  FROM k LEFT JOIN participations p USING (person_key))
            SELECT *, NOT orphan AND count(DISTINCT coalesce(status, '')) OVER (PARTITION BY person_key) > 1
                          AS conflict,
                   row_number() OVER (PARTITION BY person_key ORDER BY source_row) AS nth
            FROM o""")
    con.execute("CREATE TABLE outcomes AS " + " UNION ALL ".join(f"""
        SELECT 'c{cycle}-' || left(o.person_key, 16) AS participation_id, {cycle} AS cycle, '{tp}' AS timepoint,
               coalesce(c.status_detail, 'unknown') AS status_detail, cl.status_class,
               o.municipality_code, 'astorp' AS source_kind,
               {q(('leverantorer/astorp/' + (end if tp == 'end' else late).name))} AS source_file,
               o.source_row
        FROM ok_{tp} o
        LEFT JOIN ref_outcome_codes c ON c.source_kind = 'astorp' AND coalesce(c.code, '') = coalesce(o.status, '')
        LEFT JOIN ref_outcome_classes cl ON cl.status_detail = coalesce(c.status_detail, 'unknown')
        WHERE NOT o.orphan AND NOT o.conflict AND o.nth = 1""" for tp in tps))
    con.execute(f"""CREATE TABLE inter_raw AS
        WITH i AS (SELECT 'c{cycle}-' || left(person_key, 16) AS participation_id, source_row,
                          unnest(insatser) AS it
                   FROM ok_end WHERE NOT orphan AND NOT conflict)
        SELECT i.*, c.intervention, try_cast(it.timmar AS DOUBLE) AS timmar,
               it.timmar IS NOT NULL AND NOT coalesce(isfinite(try_cast(it.timmar AS DOUBLE))
                                                      AND try_cast(it.timmar AS DOUBLE) >= 0, false) AS bad_hours
        FROM i LEFT JOIN ref_intervention_codes c ON c.source_kind = 'astorp' AND c.code = upper(trim(it.typ))""")
    con.execute("""CREATE TABLE interventions AS
        WITH per_row AS (  -- one intervention twice in a row: hours added up, NULL unless all have them
            SELECT participation_id, source_row, intervention,
                   CASE WHEN count(timmar) FILTER (NOT bad_hours) = count(*)
                        THEN sum(timmar) FILTER (NOT bad_hours) END AS hours
            FROM inter_raw WHERE intervention IS NOT NULL GROUP BY ALL)
        SELECT participation_id, intervention, list(hours ORDER BY source_row)[1] AS hours  -- earliest row's
        FROM per_row GROUP BY ALL""")
    con.execute("""CREATE TABLE statuses AS
        SELECT p.participation_id, p.completed, e.status_detail AS end_detail, n.status_detail AS d90_detail
        FROM participations p
        LEFT JOIN outcomes e ON e.participation_id = p.participation_id AND e.timepoint = 'end'
        LEFT JOIN outcomes n ON n.participation_id = p.participation_id AND n.timepoint = '90d'""")
    con.execute(f"""CREATE TABLE issues AS
        SELECT source_file, source_row, 'rejected' AS severity, reason FROM reg WHERE reason IS NOT NULL
        UNION ALL SELECT source_file, source_row, 'warning', 'duplicate_row' FROM reg_keyed WHERE k > 1
        UNION ALL SELECT source_file, source_row, 'rejected', 'conflicting_enrollment' FROM reg_ok WHERE clash
        UNION ALL SELECT s.file_path, e.line, 'rejected', 'missing_required'  -- a line of too few fields
            FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id)
        UNION ALL SELECT 'astorp-end', source_row, 'warning', 'invalid_code' FROM inter_raw
            WHERE intervention IS NULL OR bad_hours
        {"".join(f'''
        UNION ALL SELECT 'astorp-{tp}', source_row, 'rejected', reason FROM rows_{tp} WHERE reason IS NOT NULL
        UNION ALL SELECT 'astorp-{tp}', source_row, 'warning', 'invalid_code' FROM rows_{tp} WHERE bad_kommun
        UNION ALL SELECT 'astorp-{tp}', source_row, 'rejected', 'orphan_outcome' FROM ok_{tp} WHERE orphan
        UNION ALL SELECT 'astorp-{tp}', source_row, 'rejected', 'conflicting_duplicate' FROM ok_{tp} WHERE conflict
        UNION ALL SELECT 'astorp-{tp}', source_row, 'warning', 'duplicate_row' FROM ok_{tp}
            WHERE NOT orphan AND NOT conflict AND nth > 1
        UNION ALL SELECT 'astorp-{tp}', source_row, 'warning', 'municipality_mismatch' FROM ok_{tp}
            WHERE NOT orphan AND NOT conflict AND nth = 1 AND municipality_code <> register_code''' for tp in tps)}
        UNION ALL SELECT 'participations', NULL, 'warning', 'missing_outcome' FROM statuses
            WHERE completed AND (end_detail IS NULL OR end_detail = 'unknown')
        {"UNION ALL SELECT 'participations', NULL, 'warning', 'missing_outcome' FROM statuses WHERE completed AND (d90_detail IS NULL OR d90_detail = 'unknown')" if late.exists() else ""}""")
    counts = {}
    for table in ("participations", "outcomes", "interventions", "issues"):
        con.execute(f"COPY {table} TO {q(out / f'{table}.parquet')} (FORMAT parquet)")
        counts[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    con.close()
    return counts


def _cpu() -> float:
    """CPU seconds of this process so far, every thread (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def compare(sql_dir: Path, staged: Path) -> dict[str, int]:
    """Rows in one output and not in the other (both ways), per table; issues by
    (severity, reason) counts, as the probe leaves out their details."""
    q = lambda p: "'" + str(p).replace("'", "''") + "'"  # noqa: E731
    columns = {
        "participations": "participation_id, person_key, cycle, municipality_code, gender, birth_region, "
                          "target_group, enrolled_on, exited_on, completed, dropout_reason",
        "outcomes": "participation_id, timepoint, status_detail, status_class, municipality_code, "
                    "source_row::VARCHAR",
        "interventions": "participation_id, intervention, hours::DOUBLE",
        "issues": "severity, reason",
    }
    con = duckdb.connect()
    differ = {}
    for table, cols in columns.items():
        a = f"SELECT {cols} FROM read_parquet({q(sql_dir / f'{table}.parquet')})"
        b = f"SELECT {cols} FROM read_parquet({q(staged / f'{table}.parquet')})"
        differ[table] = con.execute(f"SELECT (SELECT count(*) FROM ({a} EXCEPT ALL {b})) + "
                                    f"(SELECT count(*) FROM ({b} EXCEPT ALL {a}))").fetchone()[0]
    con.close()
    return differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", type=Path, required=True, help="a raw root written by iga-pipeline synth")
    parser.add_argument("--cycle", type=int, default=6, help="an Åstorp cycle (5-8)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, help="DuckDB's threads (default: one per core)")
    args = parser.parse_args(argv)
    if reference.cycles()[args.cycle].source_kind != "astorp":
        parser.error("the probe reads Åstorp's exports: give a cycle of 5-8")
    key = key_from_env()
    from iga_pipeline import staging  # the pipeline's ingest, imported before it is timed

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i in range(args.repeat):
            shutil.rmtree(tmp / "sql", ignore_errors=True)
            (tmp / "sql").mkdir()
            started, cpu = time.perf_counter(), _cpu()
            counts = probe(args.raw, args.cycle, tmp / "sql", key.secret, args.threads)
            print(f"SQL probe, cycle {args.cycle}: {time.perf_counter() - started:.2f} s "
                  f"(CPU {_cpu() - cpu:.2f} s)  {counts}", flush=True)
        for i in range(args.repeat):
            shutil.rmtree(tmp / "staging", ignore_errors=True)
            started, cpu = time.perf_counter(), _cpu()
            staging.stage_cycle(args.raw, tmp / "staging", args.cycle, key)
            print(f"pipeline (staging.stage_cycle), cycle {args.cycle}: {time.perf_counter() - started:.2f} s "
                  f"(CPU {_cpu() - cpu:.2f} s)", flush=True)
        differ = compare(tmp / "sql", tmp / "staging" / f"cycle={args.cycle}")
        print(f"rows that differ between the two (0 = the same): {differ}")
    return 0 if not any(differ.values()) else 1


if __name__ == "__main__":
    os.environ.setdefault("IGA_PSEUDONYM_KEY", "benchmark-secret-not-for-real-data")
    sys.exit(main())
