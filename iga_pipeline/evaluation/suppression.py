"""marts.outcomes_by_municipality: small-count suppression, primary and complementary.

Primary suppression (warehouse.md): a published count from 1 to 4 is NULL.
That alone does not protect it: the per-cycle totals are public
(outcomes_by_cycle, the report's Table 1), so a cycle with a single
suppressed municipality gives the cell back by subtraction, and the row
identities do the same inside one municipality.

The relations a reader can use, and that this module therefore protects:

  * column lines: for a cycle and a count, the municipalities add up to the
    published cycle total (every count of outcomes_by_cycle, including
    `other_at_end` / `other_90d`, which are not published per municipality);
  * row lines, per municipality and cycle:
      enrolled  = completed + dropped_out
      completed = work_at_end + studies_at_end + unknown_at_end + other_at_end
      completed = work_90d + studies_90d + unknown_90d + other_90d (followed-up cycles)

`other_*` per municipality is never published ("hidden"), but it is a count
of people too: when the relations give it back exactly and it is 1-4, it is
protected like a published small count.

Complementary suppression (greedy, deterministic): a reader derives a cell
when some relation has exactly one unknown cell, and, counts being
non-negative, every unknown part of a relation whose known total leaves
nothing for them (a municipality with `completed` = 0 in a cycle has zeros
in every class: a NULL there hides nothing); derivations are applied
repeatedly until nothing new follows. While a suppressed cell (or a small
hidden one) can be derived, one more cell of the relation that gives it away
is suppressed: the smallest non-zero published count (zeros only if nothing
else is left; if the relation has no published cell left, a published cell
of the row of one of its derived hidden cells). Which NULLs are
complementary is deliberately not published.

What this does not promise: a suppressed cell stays within the published
cycle total, so where Table 1's own total is small (cycle 2 has one
completer with unknown status at 90 days) a reader still knows the
suppressed cells are small. `disclosure_intervals` shows how wide every
reader's interval is.

`disclosure_intervals` audits a result independently of the heuristic: for
every unknown cell it computes, by linear programming, the smallest and
largest value consistent with everything published (non-negative counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from iga_pipeline.evaluation import queries

SMALL_MIN, SMALL_MAX = 1, 4  # counts published as NULL (warehouse.md)

PUBLISHED = ("enrolled", "completed", "dropped_out", "work_at_end", "studies_at_end",
             "unknown_at_end", "work_90d", "studies_90d", "unknown_90d")
HIDDEN = ("other_at_end", "other_90d")
MEASURES = PUBLISHED + HIDDEN
AT_90D = ("work_90d", "studies_90d", "unknown_90d", "other_90d")
_ORDER = {m: i for i, m in enumerate(MEASURES)}

OUTPUT_COLUMNS = ["municipality_code", "municipality", "cycle", "enrolled", "completed",
                  "dropped_out", "work_at_end", "studies_at_end", "unknown_at_end", "followed_up",
                  "work_90d", "studies_90d", "unknown_90d", "suppressed"]

Cell = tuple[int, str]  # (row position in the counts frame, measure)


@dataclass(frozen=True)
class Line:
    """total = sum(parts); total None means the total is published elsewhere (a cycle total)."""
    name: str
    total: Cell | None
    parts: tuple[Cell, ...]

    @property
    def cells(self) -> tuple[Cell, ...]:
        return self.parts if self.total is None else (self.total, *self.parts)


@dataclass
class Suppression:
    frame: pd.DataFrame  # the published mart
    suppressed: set[Cell]  # every NULLed published cell
    primary: set[Cell]
    unresolved: list[str] = field(default_factory=list)  # relations the heuristic could not fix

    @property
    def complementary(self) -> set[Cell]:
        return self.suppressed - self.primary


def applies(measure: str, followed_up) -> bool:
    """Whether a row has the count: the 90-day ones only where its cycle is followed up (else
    NULL by design, not suppressed)."""
    return measure not in AT_90D or bool(followed_up)


def cells_and_lines(counts: pd.DataFrame) -> tuple[dict[Cell, int], list[Line]]:
    counts = counts.reset_index(drop=True)
    values: dict[Cell, int] = {}
    for i in counts.index:
        for m in MEASURES:
            if applies(m, counts.at[i, "followed_up"]):
                v = counts.at[i, m]
                values[(i, m)] = 0 if pd.isna(v) else int(v)
    lines: list[Line] = []
    for i in counts.index:
        tag = f"{counts.at[i, 'municipality_code']}/cycle {counts.at[i, 'cycle']}"
        lines.append(Line(f"{tag}: enrolled = completed + dropped_out",
                          (i, "enrolled"), ((i, "completed"), (i, "dropped_out"))))
        lines.append(Line(f"{tag}: completed = classes at end", (i, "completed"),
                          tuple((i, m) for m in ("work_at_end", "studies_at_end",
                                                 "unknown_at_end", "other_at_end"))))
        if bool(counts.at[i, "followed_up"]):
            lines.append(Line(f"{tag}: completed = classes at 90 days", (i, "completed"),
                              tuple((i, m) for m in AT_90D)))
    for cycle, rows in counts.groupby("cycle", sort=True):
        for m in MEASURES:
            parts = tuple((int(i), m) for i in rows.index if (int(i), m) in values)
            if parts:
                lines.append(Line(f"cycle {cycle}: {m} over municipalities", None, parts))
    return values, lines


def _derive(values: dict[Cell, int], lines: list[Line], unknown: set[Cell]) -> dict[Cell, Line]:
    """Cells a reader derives, applied to a fixed point: the one unknown of a relation; and,
    counts being non-negative, every unknown part of a relation whose known total leaves
    nothing for them (a row whose `completed` is 0 has nothing but zeros)."""
    known_unknown = set(unknown)
    derived: dict[Cell, Line] = {}
    changed = True
    while changed:
        changed = False
        for line in lines:
            unk = [c for c in line.cells if c in known_unknown]
            total_known = line.total is None or line.total not in known_unknown
            if len(unk) == 1 or (unk and total_known and not any(values[c] for c in unk)):
                for c in unk:
                    known_unknown.discard(c)
                    derived[c] = line
                changed = True
    return derived


def _sort_key(counts: pd.DataFrame, cell: Cell) -> tuple:
    i, m = cell
    return (int(counts.at[i, "cycle"]), str(counts.at[i, "municipality_code"]), _ORDER[m])


def _small(v: int) -> bool:
    return SMALL_MIN <= v <= SMALL_MAX


def suppress(counts: pd.DataFrame) -> Suppression:
    """Primary and complementary suppression of the municipality x cycle counts.

    `counts`: one row per municipality and cycle, columns municipality_code,
    municipality, cycle, followed_up and MEASURES (unsuppressed)."""
    counts = counts.reset_index(drop=True)
    values, lines = cells_and_lines(counts)
    hidden = {c for c in values if c[1] in HIDDEN}
    primary = {c for c, v in values.items() if c[1] in PUBLISHED and _small(v)}
    suppressed = set(primary)
    lines_of: dict[Cell, list[Line]] = {}
    for line in lines:
        for c in line.cells:
            lines_of.setdefault(c, []).append(line)
    key = lambda c: _sort_key(counts, c)  # noqa: E731
    unresolved: set[str] = set()  # the lines no further suppression could close

    def candidates(line: Line) -> list[Cell]:
        cs = [c for c in line.cells if c not in suppressed and c not in hidden]
        return sorted(cs, key=lambda c: (values[c] == 0, values[c], key(c)))

    def fix(line: Line, derived: dict[Cell, Line]) -> bool:
        """Suppress one more cell so that `line` gets one more unknown."""
        cs = candidates(line)
        if cs:
            suppressed.add(cs[0])
            return True
        # No published cell left in the relation: un-derive one of its derived
        # hidden cells instead, through that cell's own row relation.
        for d in sorted((c for c in line.cells if c in derived and c in hidden),
                        key=lambda c: (-values[c], key(c))):
            for other in lines_of[d]:
                if other is not line and other.total is not None:
                    cs = candidates(other)
                    if cs:
                        suppressed.add(cs[0])
                        return True
        return False

    while True:
        unknown = suppressed | hidden
        derived = _derive(values, lines, unknown)
        acted = False
        # a suppressed cell, or a small hidden one, that a reader derives exactly
        for c in sorted(derived, key=key):
            if not (c in suppressed or (c in hidden and _small(values[c]))):
                continue
            line = derived[c]
            if line.name in unresolved:
                continue
            if fix(line, derived):
                acted = True
                break
            unresolved.add(line.name)
        if not acted:
            break

    frame = counts[["municipality_code", "municipality", "cycle", "followed_up"]].copy()
    for m in PUBLISHED:
        col = []
        for i in counts.index:
            if (i, m) not in values or (i, m) in suppressed:
                col.append(None)
            else:
                col.append(values[(i, m)])
        frame[m] = pd.array(col, dtype="Int64")
    # The types said, not left to the values: a mart without rows (no participation counted)
    # would otherwise have a DOUBLE `suppressed` and text columns of DuckDB's NULL type.
    frame["suppressed"] = pd.array([any((i, m) in suppressed for m in PUBLISHED) for i in counts.index],
                                   dtype=bool)
    frame["cycle"] = frame["cycle"].astype("int32")  # INTEGER, as in every mart
    frame["followed_up"] = frame["followed_up"].astype(bool)
    for text in ("municipality_code", "municipality"):  # VARCHAR, as in fct_participation
        frame[text] = frame[text].astype("string")
    frame = frame[OUTPUT_COLUMNS].sort_values(["municipality_code", "cycle"]).reset_index(drop=True)
    return Suppression(frame, suppressed, primary, sorted(f"derivable: {name}" for name in unresolved))


def disclosure_intervals(counts: pd.DataFrame, suppressed: set[Cell]) -> pd.DataFrame:
    """What a reader can infer: for each unknown cell (suppressed or hidden), the
    smallest and largest value consistent with every published figure and
    relation, counts being non-negative (LP relaxation, scipy HiGHS)."""
    from scipy.optimize import linprog

    counts = counts.reset_index(drop=True)
    values, lines = cells_and_lines(counts)
    unknown = sorted((c for c in values if c in suppressed or c[1] in HIDDEN),
                     key=lambda c: _sort_key(counts, c))
    index = {c: k for k, c in enumerate(unknown)}
    a_eq, b_eq = [], []
    for line in lines:
        row = np.zeros(len(unknown))
        rhs = 0.0
        signed = [(c, 1.0) for c in line.parts] + ([(line.total, -1.0)] if line.total else [])
        for c, s in signed:
            if c in index:
                row[index[c]] += s
            else:
                rhs -= s * values[c]
        if line.total is None:  # the published cycle total
            rhs += sum(values[c] for c in line.parts)
        if row.any():
            a_eq.append(row)
            b_eq.append(rhs)
    out = []
    a = np.array(a_eq) if a_eq else np.zeros((0, len(unknown)))
    b = np.array(b_eq)
    for c in unknown:
        objective = np.zeros(len(unknown))
        objective[index[c]] = 1.0
        low = linprog(objective, A_eq=a, b_eq=b, bounds=(0, None), method="highs")
        high = linprog(-objective, A_eq=a, b_eq=b, bounds=(0, None), method="highs")
        i, m = c
        out.append({
            "municipality_code": counts.at[i, "municipality_code"], "cycle": int(counts.at[i, "cycle"]),
            "measure": m, "value": values[c], "hidden": m in HIDDEN,
            "low": low.fun if low.status == 0 else None,
            "high": -high.fun if high.status == 0 else float("inf"),
        })
    return pd.DataFrame(out, columns=["municipality_code", "cycle", "measure", "value", "hidden",
                                      "low", "high"])


def outcomes_by_municipality(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return suppress(queries.municipality_counts(con)).frame
