"""No personnummer in a warehouse file: the scan behind the asset check `no_personnummer`.

Personal data never leaves the adapters. This is the last guard before a build is
published: every text column of every table of the file, in every schema (staging,
intermediate, marts, reference, ...), is searched for a value shaped like a written
personnummer; so is every column of a type that holds text (JSON, a list or struct of
text, ENUM, BLOB), as DuckDB writes it as text (the warehouse has none of these today).
`scan` says how many values match in each column, never which: its result can go into
metadata, logs and errors as it is.

Not searched:

* the columns the pipeline fills with its own hex keys and digests (`EXEMPT`);
* text columns whose values are all shorter than the shortest written personnummer,
  by DuckDB's statistics of the column (`SHORTEST`): no query reads them.

Every other column is grouped by value, and the pattern is matched once per distinct
value: DuckDB counts a million rows of a column of a few dozen values in a few
milliseconds. At 1M participations the scan takes 0.15-0.22 s; matching every row
took 0.85-0.95 s (docs/decisions.md, "No personnummer in the warehouse").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from iga_pipeline.warehouse.duck import open_readonly, quote

# A written personnummer (or samordningsnummer): YYMMDD or YYYYMMDD, an optional '-', '+'
# or space, then the four digits NNNC. Neither the date nor the Luhn digit is checked: a
# mistyped personnummer still names a person. The match must be bounded by something that
# is not a hex digit: a SHA-256 or HMAC digest holds runs of ten digits, which a bound of
# "not a digit" took for a personnummer. So one glued to a letter a-f is not found.
PATTERN = r"(^|[^0-9a-fA-F])([0-9]{2})?[0-9]{6}[-+ ]?[0-9]{4}([^0-9a-fA-F]|$)"

SHORTEST = 10  # characters of the shortest written form, YYMMDDNNNC

# The pipeline's own pseudonymous keys and digests, in any table: hex it makes itself, never
# a sender's text. person_key and participation_id hold a million distinct values each at 1M
# participations, most of what searching them would cost. Each one's shape is checked where
# it is made or tested:
EXEMPT = frozenset({
    "person_key",        # HMAC-SHA256 of the personnummer, 64 hex digits (pseudonym.py): pandera's
                         # Participation model checks its length, the GX suite of fct_participation
                         # its pattern (person_key_is_hex64)
    "participation_id",  # 'c<cycle>-' and person_key's first 16 hex digits (ingest.participation_ids):
                         # the pandera check of staged participations fails an id without its cycle
    "response_id",       # 16 hex digits of an HMAC of the survey's svar_id (PseudonymKey.survey_ids):
                         # test_adapters.py shows a personnummer given as svar_id leaves only as that
    "sha256",            # SHA-256 of a raw file (sources.common.sha256_of): the GX suite of
                         # ingest_audit checks its pattern
    "fingerprint",       # staging.build_inputs (warehouse/build.py): SHA-256 digests, the build mode
                         # ('full', 'cycles N', 'no cycle changed'), when the staging was read (ns since
                         # the epoch), and the file's size in bytes, which from 1 GB on has ten digits
})

Column = tuple[str, str, str]  # (schema, table, column)


@dataclass(frozen=True)
class Scan:
    """What `scan` found: counts per column, never a value."""

    counts: dict[Column, int]   # every column searched -> its values shaped like a personnummer
    skipped_short: list[Column]  # text columns whose values are all under SHORTEST characters
    exempt: list[Column]         # text columns named in EXEMPT
    values: int                  # values read: the rows of every column searched
    distinct_values: int         # values matched against PATTERN (each distinct value of a column once)

    @property
    def found(self) -> dict[Column, int]:
        """The columns with a value shaped like a personnummer, and how many such values."""
        return {column: n for column, n in self.counts.items() if n}


def scan(warehouse: Path) -> Scan:
    """Search every text column of every table of the DuckDB file `warehouse` (read only)."""
    con = open_readonly(warehouse)
    try:
        typed = con.execute("""
            SELECT schema_name, table_name, column_name, data_type
            FROM duckdb_columns() JOIN duckdb_tables() USING (database_name, schema_name, table_name)
            WHERE database_name = current_database()
              AND (data_type LIKE '%VARCHAR%' OR data_type IN ('JSON', 'BLOB') OR data_type LIKE 'ENUM(%')
            ORDER BY schema_name, table_name, column_index""").fetchall()
        text_columns: list[Column] = [(s, t, c) for s, t, c, _ in typed]
        as_text = {(s, t, c) for s, t, c, kind in typed if kind != "VARCHAR"}  # no length statistics
        exempt = [c for c in text_columns if c[2] in EXEMPT]
        longest = _longest_values(con, [c for c in text_columns if c[2] not in EXEMPT and c not in as_text])
        short = [c for c, n in longest.items() if n is not None and n < SHORTEST]
        searched = [c for c in text_columns if c[2] not in EXEMPT and c not in short]
        counts = _count_matches(con, searched, as_text)
    finally:
        con.close()
    return Scan(counts={c: found for c, (found, _, _) in counts.items()}, skipped_short=short, exempt=exempt,
                values=sum(n for _, n, _ in counts.values()),
                distinct_values=sum(d for _, _, d in counts.values()))


def _longest_values(con, columns: list[Column]) -> dict[Column, int | None]:
    """Each column's longest value in bytes (at least its characters), from DuckDB's statistics
    of the column: no data is read. DuckDB keeps them through inserts and updates, and relies
    on them itself. None where they say nothing (an empty table, say): such a column is searched."""
    if not columns:
        return {}
    parts = [f"(SELECT {i}, stats({_name(c)}).max_string_length::BIGINT FROM {_name(s)}.{_name(t)} LIMIT 1)"
             for i, (s, t, c) in enumerate(columns)]
    known = dict(con.execute(" UNION ALL ".join(parts)).fetchall())
    return {column: known.get(i) for i, column in enumerate(columns)}


def _count_matches(con, columns: list[Column], as_text=frozenset()) -> dict[Column, tuple[int, int, int]]:
    """Column -> (values shaped like a personnummer, values, distinct values), in one query;
    the columns in `as_text` read as DuckDB writes their values as text."""
    if not columns:
        return {}
    pattern = quote(PATTERN)
    parts = [f"""
        SELECT {i}, coalesce(sum(n) FILTER (WHERE regexp_matches(v, {pattern})), 0),
               coalesce(sum(n), 0), count(*)
        FROM (SELECT {f"CAST({_name(c)} AS VARCHAR)" if (s, t, c) in as_text else _name(c)} AS v, count(*) AS n
              FROM {_name(s)}.{_name(t)} GROUP BY v)"""
             for i, (s, t, c) in enumerate(columns)]
    rows = {i: (int(found), int(n), int(d)) for i, found, n, d in con.execute(" UNION ALL ".join(parts)).fetchall()}
    return {column: rows[i] for i, column in enumerate(columns)}


def _name(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
