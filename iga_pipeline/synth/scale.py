"""Synthetic raw deliveries at any size: `iga-pipeline synth --participations N`.

The bundled data set (`generate_bundled`) is planned row by row to give back
the report's Table 1. This module is its large sibling, for benchmarks and
scale tests: it writes the same contract formats (raw-deliveries.md) for any
number of participations, with numpy drawing every column at once and pandas
or plain string building writing the files, so 10 million participations take
minutes.

* Cycle 1 stays a normal-size cycle (at most `CYCLE1_MAX` participations):
  Pethö's delivery is a hand-kept workbook, and a spreadsheet provider never
  sends a million rows. The registers of cycle 1 stay small with it.
* Cycles 2-8 share the rest: registers (five municipalities per cycle),
  Folkuniversitetet's CSV files (cycles 2-4) and Åstorp's JSON exports
  (cycles 5-8) grow with them, and so does the cycle-3 survey.
* Cycle 8 is, as in the project's history, not followed up.
  `write_late_followup` writes its 90-day export afterwards: the late
  delivery the incremental benchmark re-runs one partition for.
* About one row in `DEFECT_RATE` per defect kind and cycle (at least one) is
  deliberately defective, so that every reason for rejecting or warning runs at
  scale (one form of each: a wrong check digit, 30 February, `kon` X, an empty
  `kon`, ...; the hand-made forms are the bundled set's and the tests'):
  invalid personnummer, dates and codes, missing fields, malformed rows,
  cycle mismatches, duplicates, conflicting enrolments and duplicates,
  orphans, municipality mismatches, unknown interventions and hours.

Same seed and size, byte-identical files: every cycle draws from its own
generator, seeded by (seed, cycle), and every person is a distinct slot of
one seeded permutation of (birth date, serial, coordination number).

`N` counts the participations a correct pipeline accepts (register rows that
pass every rule, duplicates counted once); the defective rows come on top.
The returned summary says how many per cycle, and how many data rows every
file holds, so that a test can hold the pipeline to both.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from iga_pipeline import reference
from iga_pipeline.personnummer import _luhn_digits
from iga_pipeline.synth.names import _ANY_ORIGIN, NAMES, ORIGIN_BY_COUNTRY
from iga_pipeline.synth.plan import (
    COORDINATION_SHARE, COUNTRY_WEIGHTS, HOURS, OWNER_WEIGHT, PARTNER_WEIGHTS, PETHO_NUMBER_SHARE, PNR_FORM_WEIGHTS,
    PNR_FORMS, code_for,
)

CYCLE1_MAX = 300  # participations in cycle 1 (Pethö's workbook stays hand-sized)
RETURNER_SHARE = 0.03  # participations of people who took part in the previous cycle
COMPLETION_RATE = 0.88
DEFECT_RATE = 1 / 2000  # rows per defect kind and cycle (at least one)
CHUNK_ROWS = 250_000  # JSON entries rendered at a time

BIRTH_FIRST = np.datetime64("1945-01-01")
BIRTH_DAYS = int((np.datetime64("1995-01-01") - BIRTH_FIRST).astype(int))  # born 1945-1994
SERIALS = 1000

# Status details in a fixed order; index 8 means "no row at this time point".
DETAILS = ("employment", "self_employment", "education", "programme", "job_seeking",
           "sick_leave", "parental_leave", "unknown")
ABSENT = len(DETAILS)
INVALID = -1  # a status outside the provider's code list
UNKNOWN = DETAILS.index("unknown")
# Completers at the end of the cycle / at 90 days; leavers: about half reported.
P_END = (0.24, 0.06, 0.09, 0.03, 0.30, 0.08, 0.07, 0.065, 0.065)
P_90D = (0.30, 0.07, 0.10, 0.04, 0.25, 0.07, 0.05, 0.06, 0.06)
P_LEAVER_END = (0.10, 0.02, 0.05, 0.02, 0.15, 0.06, 0.04, 0.06, 0.50)
P_LEAVER_90D = (0.08, 0.02, 0.04, 0.01, 0.08, 0.03, 0.02, 0.02, 0.70)

PNR_FORM_SHARES = tuple(w / sum(PNR_FORM_WEIGHTS) for w in PNR_FORM_WEIGHTS)

FU_HOURS = ["Timmar validering", "Timmar yrkesprövning", "Timmar samhällsorientering",
            "Timmar jobbsökning"]
FU_END_COLUMNS = ["Personnummer", "Kommun", *FU_HOURS, "Utfallskod", "Utfallsdatum"]
FU_90D_COLUMNS = ["Personnummer", "Kommun", "Utfallskod", "Uppföljningsdatum"]
PETHO_COLUMNS = ["Personnr", "Namn", "Insatser", "Status cykelslut", "Status 90 dagar", "Kommentar"]
INTERVENTIONS = ("validation", "vocational_trial", "civic_orientation", "job_search",
                 "internship", "job_coaching")

# Register defects that ride on extra rows (people counted nowhere).
REGISTER_REJECTS = ("invalid_personnummer", "invalid_date", "invalid_code", "missing_required",
                    "cycle_mismatch")


def cycle_sizes(participations: int) -> dict[int, int]:
    """Accepted participations per cycle: cycle 1 small, the rest shared by cycles 2-8."""
    cycles = sorted(reference.cycles())
    if participations < 10 * len(cycles):
        raise ValueError(f"--participations must be at least {10 * len(cycles)}")
    first = min(CYCLE1_MAX, participations // len(cycles))
    rest = participations - first
    base, extra = divmod(rest, len(cycles) - 1)
    sizes = {cycles[0]: first}
    for i, c in enumerate(cycles[1:]):
        sizes[c] = base + (1 if i < extra else 0)
    return sizes


def defects_per_kind(n: int) -> int:
    return max(1, round(n * DEFECT_RATE))


@dataclass(frozen=True)
class Layout:
    """How many people each cycle needs, and where they sit in the person permutation."""

    sizes: dict[int, int]
    returners: dict[int, int]
    new_start: dict[int, int]  # first slot of the cycle's new participants
    stranger_start: dict[int, int]  # first slot of the cycle's extra (defect) people
    total: int

    @classmethod
    def of(cls, participations: int) -> Layout:
        sizes = cycle_sizes(participations)
        returners, new_start, stranger_start = {}, {}, {}
        slot = 0
        previous = None
        for c in sorted(sizes):
            r = 0 if previous is None else min(round(sizes[c] * RETURNER_SHARE),
                                               (sizes[previous] - returners[previous]) // 2)
            returners[c] = r
            new_start[c] = slot
            slot += sizes[c] - r
            # register rejects, conflicting enrolments, malformed rows, provider orphans (x2)
            stranger_start[c] = slot
            slot += defects_per_kind(sizes[c]) * (len(REGISTER_REJECTS) + 1 + 1 + 2)
            previous = c
        if slot > BIRTH_DAYS * SERIALS:
            raise ValueError(f"{participations:,} participations need {slot:,} distinct people: more than "
                             f"the {BIRTH_DAYS * SERIALS:,} personnummer of births 1945-1994 the generator draws from")
        return cls(sizes, returners, new_start, stranger_start, slot)


class People:
    """Every person's identity, drawn once: slot -> (birth day, serial, coordination)."""

    def __init__(self, seed: int, total: int):
        rng = np.random.default_rng([seed, 0])
        # Distinct identities: sample slots of the (birth day, serial) space without
        # replacement; a few become samordningsnummer (day + 60), which stay distinct.
        space = BIRTH_DAYS * SERIALS
        ids = rng.choice(space, size=total, replace=False)
        self.birth_day = (ids // SERIALS).astype(np.int64)
        self.serial = (ids % SERIALS).astype(np.int64)
        self.coordination = rng.random(total) < COORDINATION_SHARE

    def pnr(self, slots: np.ndarray, forms: np.ndarray | str) -> np.ndarray:
        """Written personnummer of the people in `slots`, in the given form(s)."""
        return format_pnrs(self.birth_day[slots], self.serial[slots], self.coordination[slots], forms)

    def sex(self, slots: np.ndarray) -> np.ndarray:
        return np.where(self.serial[slots] % 2 == 1, "M", "K")


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII digit codes of non-negative integers, zero-padded."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


def format_pnrs(birth_day: np.ndarray, serial: np.ndarray, coordination: np.ndarray,
                forms: np.ndarray | str) -> np.ndarray:
    """Vectorised `personnummer.format_pnr`: an object array of written values."""
    n = len(birth_day)
    dates = BIRTH_FIRST + birth_day.astype("timedelta64[D]")
    year = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    month = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1 + 60 * coordination
    nine = (year % 100) * 10**7 + month * 10**5 + day * 10**3 + serial
    check = _luhn_digits(_digits(nine, 9).astype(np.int64) - ord("0"))
    twelve = np.concatenate([_digits(year // 100, 2), _digits(nine, 9), _digits(check, 1)], axis=1)
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    rendered = {
        "YYMMDD-NNNC": np.concatenate([twelve[:, 2:8], dash, twelve[:, 8:]], axis=1),
        "YYMMDDNNNC": twelve[:, 2:],
        "YYYYMMDDNNNC": twelve,
        "YYYYMMDD-NNNC": np.concatenate([twelve[:, :8], dash, twelve[:, 8:]], axis=1),
    }

    def as_text(matrix: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(matrix).view(f"S{matrix.shape[1]}").ravel().astype(str)

    if isinstance(forms, str):
        return as_text(rendered[forms]).astype(object)
    out = np.empty(n, dtype=object)
    for form, matrix in rendered.items():
        mask = forms == form
        if mask.any():
            out[mask] = as_text(matrix[mask])
    return out


def bump_check_digits(values: np.ndarray) -> np.ndarray:
    """The same written personnummer with a wrong check digit (plan.bump_check_digit, for arrays)."""
    s = pd.Series(values, dtype=object)
    last = s.str[-1].astype(int)
    return (s.str[:-1] + ((last + 1) % 10).astype(str)).to_numpy(dtype=object)


def _iso(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(days.astype("datetime64[D]"), unit="D").astype(object)


# ----------------------------------------------------------------------- plan
@dataclass
class CyclePlan:
    """One cycle's accepted participations, as columns (index = participation)."""

    cycle: int
    slot: np.ndarray  # person slot
    municipality: np.ndarray  # kommunkod
    completed: np.ndarray
    dropout: np.ndarray  # '' for completers
    enrolled: np.ndarray  # datetime64[D]
    exited: np.ndarray  # datetime64[D], NaT = empty
    form: np.ndarray  # register's written form
    country: np.ndarray
    first: np.ndarray
    last: np.ndarray
    end: np.ndarray  # detail index, ABSENT = no row
    d90: np.ndarray
    chosen: np.ndarray  # (n, 6) bool: interventions
    hours: np.ndarray  # (n, 6) index into HOURS

    @property
    def n(self) -> int:
        return len(self.slot)


def _municipalities() -> tuple[list[str], np.ndarray]:
    codes = list(reference.municipalities())
    roles = reference.table("municipalities").set_index("municipality_code")["role"]
    partner = iter(PARTNER_WEIGHTS)
    weights = np.array([OWNER_WEIGHT if roles[c] == "project_owner" else next(partner) for c in codes],
                       dtype=float)
    return codes, weights / weights.sum()


def _names(rng: np.random.Generator, country: np.ndarray, sex: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(country)
    origins = list(NAMES)
    by_country = pd.Series(country).map(ORIGIN_BY_COUNTRY).to_numpy(dtype=object)
    anyone = pd.isna(by_country)
    by_country[anyone] = np.array(_ANY_ORIGIN, dtype=object)[rng.integers(0, len(_ANY_ORIGIN), anyone.sum())]
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    for origin in origins:
        women, men, families = (np.array(x, dtype=object) for x in NAMES[origin])
        here = by_country == origin
        for names, mask in ((women, here & (sex == "K")), (men, here & (sex == "M"))):
            first[mask] = names[rng.integers(0, len(names), mask.sum())]
        last[here] = families[rng.integers(0, len(families), here.sum())]
    return first, last


def plan_cycle(seed: int, cycle: int, layout: Layout, people: People,
               previous: CyclePlan | None = None) -> CyclePlan:
    """The cycle's participations. Its returners (people of the `previous` cycle) keep the
    name and country of birth they had there; without `previous` they get drawn ones."""
    rng = np.random.default_rng([seed, cycle])
    info = reference.cycles()[cycle]
    n = layout.sizes[cycle]
    r = layout.returners[cycle]
    slot = np.arange(layout.new_start[cycle], layout.new_start[cycle] + n - r)
    if r:  # people who took part in the previous cycle as new participants come back
        prev = cycle - 1
        pool = np.arange(layout.new_start[prev], layout.new_start[prev] + layout.sizes[prev]
                         - layout.returners[prev])
        slot = np.concatenate([slot, rng.choice(pool, size=r, replace=False)])
    slot = rng.permutation(slot)

    codes, weights = _municipalities()
    municipality = np.array(codes, dtype=object)[rng.choice(len(codes), size=n, p=weights)]
    completed = rng.random(n) < COMPLETION_RATE
    reasons = np.array(sorted(reference.register_codes("avbrott_orsak")), dtype=object)
    dropout = np.where(completed, "", reasons[rng.integers(0, len(reasons), n)]).astype(object)

    start = np.datetime64(info.start.isoformat())
    end = np.datetime64(info.end.isoformat())
    enrolled = start + rng.integers(0, 21, n).astype("timedelta64[D]")
    span = (end - enrolled).astype(np.int64)
    left = enrolled + (14 + (rng.random(n) * (span - 24)).astype(np.int64)).astype("timedelta64[D]")
    exited = np.where(completed, np.where(rng.random(n) < 0.9, end, np.datetime64("NaT")), left)

    form = np.array(PNR_FORMS, dtype=object)[rng.choice(len(PNR_FORMS), size=n, p=PNR_FORM_SHARES)]
    weights_c = COUNTRY_WEIGHTS[info.target_group]
    countries = np.array(list(weights_c), dtype=object)
    pc = np.array(list(weights_c.values()), dtype=float)
    country = countries[rng.choice(len(countries), size=n, p=pc / pc.sum())]
    first, last = _names(rng, country, people.sex(slot))
    if previous is not None and r:  # drawn all the same: the other columns stay as they were
        back = np.flatnonzero(slot < layout.new_start[cycle])
        there = pd.Index(previous.slot).get_indexer(slot[back])
        country[back], first[back], last[back] = (previous.country[there], previous.first[there],
                                                  previous.last[there])

    end_status = np.where(completed, rng.choice(len(P_END), size=n, p=P_END),
                          rng.choice(len(P_END), size=n, p=P_LEAVER_END))
    d90 = np.where(completed, rng.choice(len(P_90D), size=n, p=P_90D),
                   rng.choice(len(P_90D), size=n, p=P_LEAVER_90D))
    # Interventions: completers 1-4 of them, early leavers 0-2, each with hours.
    k = np.where(completed, rng.integers(1, 5, n), rng.integers(0, 3, n))
    rank = np.argsort(rng.random((n, len(INTERVENTIONS))), axis=1).argsort(axis=1)
    chosen = rank < k[:, None]
    hours = rng.integers(0, len(HOURS), (n, len(INTERVENTIONS)))
    return CyclePlan(cycle, slot, municipality, completed, dropout, enrolled, exited, form, country,
                     first, last, end_status, d90, chosen, hours)


# -------------------------------------------------------------------- writers
def _write_text(path: Path, chunks, encoding: str, bom: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as f:
        if bom:
            f.write("\ufeff")
        for chunk in chunks:
            f.write(chunk)


def _csv_text(frame: pd.DataFrame, sep: str, lineterminator: str) -> str:
    buf = io.StringIO()
    frame.to_csv(buf, sep=sep, index=False, lineterminator=lineterminator)
    return buf.getvalue()


def _splice(text: str, lines: list[str], at: list[float], lineterminator: str) -> str:
    """Insert raw lines at relative positions (0..1) of a CSV text, after its header."""
    if not lines:
        return text
    rows = text.split(lineterminator)
    header, body = rows[0], rows[1:-1]  # the text ends with a line terminator
    cuts = sorted((min(int(a * (len(body) + 1)), len(body)), line) for a, line in zip(at, lines))
    out, previous = [header], 0
    for pos, line in cuts:
        out += body[previous:pos]
        out.append(line)
        previous = pos
    out += body[previous:]
    out.append("")
    return lineterminator.join(out)


class Writer:
    """Writes one raw root; counts data rows per file and defects per kind."""

    def __init__(self, out: Path, seed: int, participations: int):
        self.out = Path(out)
        self.seed = seed
        self.layout = Layout.of(participations)
        self.people = People(seed, self.layout.total)
        self.files: dict[str, int] = {}
        self.defects: dict[str, int] = {}
        self.codes, _ = _municipalities()
        self.names = reference.municipalities()

    def defect(self, kind: str, n: int = 1) -> None:
        self.defects[kind] = self.defects.get(kind, 0) + n

    def strangers(self, cycle: int, group: int) -> np.ndarray:
        """Person slots of a cycle's extra people: group `group`'s k (`defects_per_kind`).

        Groups: 0-4 the register rejects, 5 conflicting enrolments, 6 malformed
        register rows, 7 orphans at the end of the cycle, 8 orphans at 90 days."""
        k = defects_per_kind(self.layout.sizes[cycle])
        start = self.layout.stranger_start[cycle] + group * k
        return np.arange(start, start + k)

    # ------------------------------------------------------------- registers
    def registers(self, p: CyclePlan) -> None:
        rng = _stream(self.seed, p.cycle, "registers")
        info = reference.cycles()[p.cycle]
        k = defects_per_kind(p.n)
        people = self.people
        frame = pd.DataFrame({
            "personnummer": people.pnr(p.slot, p.form),
            "fornamn": p.first, "efternamn": p.last, "kon": people.sex(p.slot),
            "fodelseland": p.country, "malgrupp": info.target_group, "cykel": str(p.cycle),
            "inskrivningsdatum": _iso(p.enrolled),
            "utskrivningsdatum": np.where(np.isnat(p.exited), "", _iso(p.exited)),
            "avbrott_orsak": p.dropout, "_municipality": p.municipality,
        })
        # Duplicates: a participant's row sent twice in the same file (counted once).
        dup = frame.iloc[rng.choice(p.n, size=min(k, p.n), replace=False)]
        self.defect("duplicate_row", len(dup))

        # Extra people whose register rows are rejected.
        extra = []
        for group, kind in enumerate(REGISTER_REJECTS):
            rows = self._stranger_rows(p, self.strangers(p.cycle, group), rng)
            if kind == "invalid_personnummer":
                rows["personnummer"] = bump_check_digits(rows["personnummer"].to_numpy())
            elif kind == "invalid_date":
                rows["inskrivningsdatum"] = f"{info.start.year}-02-30"
            elif kind == "invalid_code":
                rows["kon"] = "X"
            elif kind == "missing_required":
                rows["kon"] = ""
            elif kind == "cycle_mismatch":
                rows["cykel"] = str(p.cycle + 1 if p.cycle < 8 else p.cycle - 1)
            extra.append(rows)
            self.defect(kind, k)
        # Conflicting enrolments: one stranger, two municipalities' registers.
        rows = self._stranger_rows(p, self.strangers(p.cycle, 5), rng)
        twin = rows.copy()
        shift = rng.integers(1, len(self.codes), k)
        twin["_municipality"] = [self.codes[(self.codes.index(m) + s) % len(self.codes)]
                                 for m, s in zip(rows["_municipality"], shift)]
        extra += [rows, twin]
        self.defect("conflicting_enrollment", 2 * k)
        # Malformed rows (a field lost): rejected as missing_required.
        malformed = self._stranger_rows(p, self.strangers(p.cycle, 6), rng)
        self.defect("malformed_row", k)

        frame = pd.concat([frame, dup, *extra], ignore_index=True)
        frame = frame.iloc[rng.permutation(len(frame))]
        for i, code in enumerate(self.codes):
            rel = f"kommuner/{code}/deltagare_cykel{p.cycle}.csv"
            part = frame[frame["_municipality"] == code].drop(columns="_municipality")
            bad = malformed[malformed["_municipality"] == code].drop(columns="_municipality")
            excel = (i + p.cycle) % 3 == 0  # saved from Excel: BOM and CRLF
            nl = "\r\n" if excel else "\n"
            text = _csv_text(part, ";", nl)
            lines = [";".join(v[:-1]) for v in bad.astype(str).to_numpy().tolist()]
            text = _splice(text, lines, list(rng.random(len(lines))), nl)
            _write_text(self.out / rel, [text], "utf-8", bom=excel)
            self.files[rel] = len(part) + len(lines)

    def _stranger_rows(self, p: CyclePlan, slots: np.ndarray, rng) -> pd.DataFrame:
        info = reference.cycles()[p.cycle]
        n = len(slots)
        sex = self.people.sex(slots)
        country = np.full(n, "IQ" if info.target_group == "flykting" else "BA", dtype=object)
        first, last = _names(rng, country, sex)
        return pd.DataFrame({
            "personnummer": self.people.pnr(slots, "YYMMDD-NNNC"), "fornamn": first, "efternamn": last,
            "kon": sex, "fodelseland": country, "malgrupp": info.target_group, "cykel": str(p.cycle),
            "inskrivningsdatum": info.start.isoformat(), "utskrivningsdatum": info.end.isoformat(),
            "avbrott_orsak": "",
            "_municipality": np.array(self.codes, dtype=object)[rng.integers(0, len(self.codes), n)],
        })

    # ------------------------------------------------------------- providers
    def _provider_rows(self, p: CyclePlan, point: str, rng: np.random.Generator,
                       states_municipality: bool = True) -> pd.DataFrame:
        """Rows one provider delivery holds: index = participation, plus defects.

        Columns: participation (its position in the plan), slot, municipality (the
        provider's claim), detail (an index into DETAILS, or INVALID: outside the code
        list), pnr_bad (bump the check digit), tag. A delivery that states
        no municipality (Åstorp's 90-day export) draws the same, but its
        mismatched rows are no defect: nothing in the file says so."""
        status = p.end if point == "end" else p.d90
        present = np.flatnonzero(status != ABSENT)
        k = defects_per_kind(p.n)
        rows = pd.DataFrame({"participation": present, "slot": p.slot[present],
                             "municipality": p.municipality[present],
                             "detail": status[present].astype(np.int64), "pnr_bad": False, "tag": ""})
        take = rng.choice(len(rows), size=min(5 * k, len(rows)), replace=False)
        dup_i, conflict_i, invalid_i, mismatch_i, badpnr_i = np.array_split(take, 5)
        rows.iloc[invalid_i, rows.columns.get_loc("detail")] = INVALID
        rows.iloc[invalid_i, rows.columns.get_loc("tag")] = "invalid_code"
        shift = rng.integers(1, len(self.codes), len(mismatch_i))
        rows.iloc[mismatch_i, rows.columns.get_loc("municipality")] = [
            self.codes[(self.codes.index(m) + s) % len(self.codes)]
            for m, s in zip(rows["municipality"].iloc[mismatch_i], shift)]
        if states_municipality:
            rows.iloc[mismatch_i, rows.columns.get_loc("tag")] = "municipality_mismatch"
        dup = rows.iloc[dup_i].assign(tag="duplicate_row")
        conflict = rows.iloc[conflict_i].copy()
        conflict["detail"] = (conflict["detail"] + 1) % UNKNOWN  # another status, never 'unknown'
        conflict["tag"] = "conflicting_duplicate"
        rows.iloc[conflict_i, rows.columns.get_loc("tag")] = "conflicting_duplicate"
        badpnr = rows.iloc[badpnr_i].assign(pnr_bad=True, tag="invalid_personnummer")
        # Orphans: people no register accepts (strangers, and the conflicting enrolments).
        orphan_slots = (np.concatenate([self.strangers(p.cycle, 7), self.strangers(p.cycle, 5)])
                        if point == "end" else self.strangers(p.cycle, 8))
        orphans = pd.DataFrame({
            "participation": -1, "slot": orphan_slots,
            "municipality": np.array(self.codes, dtype=object)[rng.integers(0, len(self.codes),
                                                                            len(orphan_slots))],
            "detail": rng.integers(0, UNKNOWN, len(orphan_slots)), "pnr_bad": False,
            "tag": "orphan_outcome"})
        out = pd.concat([rows, dup, conflict, badpnr, orphans], ignore_index=True)
        for tag, n in out["tag"].value_counts().items():
            if tag:
                self.defect(tag, int(n))
        return out.iloc[rng.permutation(len(out))].reset_index(drop=True)

    def _hours(self, p: CyclePlan, rows: pd.DataFrame, i: int, fmt: np.ndarray) -> np.ndarray:
        part = rows["participation"].to_numpy()
        known = part >= 0
        out = np.full(len(rows), "", dtype=object)
        chosen = np.zeros(len(rows), dtype=bool)
        chosen[known] = p.chosen[part[known], i]
        out[chosen] = fmt[p.hours[part[chosen], i]]
        return out

    def folkuniversitetet(self, p: CyclePlan, point: str) -> None:
        rng = _stream(self.seed, p.cycle, point)
        info = reference.cycles()[p.cycle]
        codes = code_for("folkuniversitetet")
        codes_by_index = np.array([codes[d] for d in DETAILS] + ["8"], dtype=object)
        rows = self._provider_rows(p, point, rng)
        detail = rows["detail"].to_numpy()  # INVALID (-1) picks the last code: outside the list
        pnr = self.people.pnr(rows["slot"].to_numpy(), "YYMMDDNNNC")
        bad = rows["pnr_bad"].to_numpy(dtype=bool)
        pnr[bad] = bump_check_digits(pnr[bad])
        frame = pd.DataFrame({"Personnummer": pnr,
                              "Kommun": rows["municipality"].map(self.names).to_numpy()})
        end = np.datetime64(info.end.isoformat())
        if point == "end":
            fmt = np.array([f"{h:g}".replace(".", ",") for h in HOURS], dtype=object)
            for i, column in enumerate(FU_HOURS):
                frame[column] = self._hours(p, rows, i, fmt)
            k = defects_per_kind(p.n)
            spoilt = rng.choice(len(frame), size=min(k, len(frame)), replace=False)
            frame.iloc[spoilt, frame.columns.get_loc(FU_HOURS[0])] = "ca 10"  # not a number
            self.defect("invalid_hours", len(spoilt))
            frame["Utfallskod"] = codes_by_index[detail]
            frame["Utfallsdatum"] = _iso(end + rng.integers(0, 5, len(frame)).astype("timedelta64[D]"))
            columns, suffix = FU_END_COLUMNS, "slut"
        else:
            frame["Utfallskod"] = codes_by_index[detail]
            frame["Uppföljningsdatum"] = _iso(end + rng.integers(90, 101, len(frame)).astype("timedelta64[D]"))
            columns, suffix = FU_90D_COLUMNS, "90dagar"
        rel = f"leverantorer/folkuniversitetet/cykel{p.cycle}_{suffix}.csv"
        text = _csv_text(frame[columns], ";", "\r\n")
        k = defects_per_kind(p.n)
        lines = [";".join(frame.iloc[i].astype(str)) + ";extra" for i in rng.integers(0, len(frame), k)]
        self.defect("malformed_row", k)
        text = _splice(text, lines, list(rng.random(k)), "\r\n")
        _write_text(self.out / rel, [text], "cp1252")
        self.files[rel] = len(frame) + k

    def astorp(self, p: CyclePlan, point: str) -> str:
        rel, text, entries = self.astorp_text(p, point)
        _write_text(self.out / rel, text, "utf-8")
        self.files[rel] = entries
        return rel

    def astorp_text(self, p: CyclePlan, point: str) -> tuple[str, Iterator[str], int]:
        """Åstorp's export of the cycle at `point`: its path, its text in pieces, its entries."""
        rng = _stream(self.seed, p.cycle, point)
        info = reference.cycles()[p.cycle]
        codes = code_for("astorp")
        status_json = np.array([json.dumps(codes[d]) for d in DETAILS] + ['"PENSION"'], dtype=object)
        rows = self._provider_rows(p, point, rng, states_municipality=point == "end")
        detail = rows["detail"].to_numpy()  # INVALID (-1) picks the last code: outside the list
        status = status_json[detail]
        # 'unknown' is written OKAND or null, the same way for one person every time
        status[(detail == UNKNOWN) & (rows["slot"].to_numpy() % 2 == 1)] = "null"
        pnr = self.people.pnr(rows["slot"].to_numpy(), "YYYYMMDD-NNNC")
        bad = rows["pnr_bad"].to_numpy(dtype=bool)
        pnr[bad] = bump_check_digits(pnr[bad])
        lines = '    {"pnr": "' + pd.Series(pnr, dtype=object)
        if point == "end":
            typ = {v: c for c, v in reference.intervention_codes("astorp").items()}
            fmt = np.array([json.dumps(h) for h in HOURS], dtype=object)
            parts = pd.Series("", index=rows.index, dtype=object)
            for i, intervention in enumerate(INTERVENTIONS):
                hours = pd.Series(self._hours(p, rows, i, fmt), dtype=object)
                piece = '{"typ": "' + typ[intervention] + '", "timmar": ' + hours + '}, '
                parts = parts + piece.where(hours != "", "")
            k = defects_per_kind(p.n)
            odd = rng.choice(len(rows), size=min(k, len(rows)), replace=False)
            parts.iloc[odd] = parts.iloc[odd] + '{"typ": "SIMNING", "timmar": 2}, '
            self.defect("unknown_intervention", len(odd))
            parts = parts.str.removesuffix(", ")
            kommun = pd.Series(rows["municipality"].to_numpy(), dtype=object)
            lines = (lines + '", "kommunkod": "' + kommun + '", "insatser": [' + parts
                     + '], "status_cykelslut": ' + status + "}")
            list_key, delivered, suffix = "deltagare", info.end + timedelta(days=8), ""
        else:
            lines = lines + '", "status": ' + status + "}"
            list_key, delivered, suffix = "uppfoljning", info.end + timedelta(days=95), "_90dagar"
        rel = f"leverantorer/astorp/cykel{p.cycle}{suffix}.json"
        head = (f'{{"leverantor": {json.dumps(info.provider, ensure_ascii=False)}, "cykel": {p.cycle}, '
                f'"levererad": "{delivered.isoformat()}",\n "{list_key}": [\n')

        def chunks():
            yield head
            values = lines.to_numpy()
            for at in range(0, len(values), CHUNK_ROWS):
                piece = ",\n".join(values[at: at + CHUNK_ROWS])
                yield piece if at == 0 else ",\n" + piece
            yield "\n ]}\n"

        return rel, chunks(), len(rows)

    def petho(self, p: CyclePlan) -> None:
        """Cycle 1: one small workbook, one sheet per municipality (plus Info)."""
        from iga_pipeline.synth.writers import write_petho_workbook

        rng = _stream(self.seed, p.cycle, "end")
        codes = {d: c.capitalize() for d, c in code_for("petho").items()}
        insats = {v: c.capitalize() for c, v in reference.intervention_codes("petho").items()}
        # Pethö keeps one row per participant with both statuses: absent only when both are.
        p.end = np.where((p.end == ABSENT) & (p.d90 != ABSENT), UNKNOWN, p.end)
        rows = self._provider_rows(p, "end", rng)
        part = rows["participation"].to_numpy()
        # a conflicting pair disagrees on the end status only: the 90-day one is the participant's
        d90 = np.where(part >= 0, p.d90[np.maximum(part, 0)], rng.integers(0, UNKNOWN, len(rows)))
        pnr10 = self.people.pnr(rows["slot"].to_numpy(), "YYMMDDNNNC")
        pnr = self.people.pnr(rows["slot"].to_numpy(), "YYMMDD-NNNC")
        bad = rows["pnr_bad"].to_numpy(dtype=bool)
        pnr[bad] = bump_check_digits(pnr[bad])
        as_number = (rng.random(len(rows)) < PETHO_NUMBER_SHARE) & ~bad
        k = defects_per_kind(p.n)  # rows with an unknown intervention: a warning each
        odd = set(rng.choice(len(rows), size=min(k, len(rows)), replace=False).tolist())
        self.defect("unknown_intervention", len(odd))
        sheets: dict[str, list] = {code: [] for code in self.codes}
        first = dict(zip(p.slot, p.first))
        last = dict(zip(p.slot, p.last))
        for i, r in enumerate(rows.itertuples()):
            detail = r.detail
            end_text = "Semester" if detail == INVALID else (
                codes["unknown"] if detail == UNKNOWN and r.slot % 2 else
                "" if detail == UNKNOWN else codes[DETAILS[detail]])
            if d90[i] == ABSENT:
                text90 = None
            elif d90[i] == UNKNOWN:
                text90 = codes["unknown"]
            else:
                text90 = codes[DETAILS[d90[i]]]
            if r.participation >= 0:
                chosen = [insats[INTERVENTIONS[j]] for j in range(6) if p.chosen[r.participation, j]]
                name = f"{first[r.slot]} {last[r.slot]}"
            else:
                chosen, name = [], "Okänd Deltagare"
            if i in odd:
                chosen.append("Simning")
            cell = int(pnr10[i]) if as_number[i] else pnr[i]
            sheets[r.municipality].append([cell, name, ", ".join(chosen), end_text or None, text90, None])
        rel = f"leverantorer/petho/cykel{p.cycle}_resultat.xlsx"
        write_petho_workbook(self.out / rel, p.cycle, {self.names[code]: values for code, values in sheets.items()})
        self.files[rel] = sum(len(values) for values in sheets.values())

    def survey(self, p: CyclePlan) -> None:
        rng = _stream(self.seed, p.cycle, "survey")
        completers = np.flatnonzero(p.completed)
        n = min(len(completers), max(20, round(0.1 * len(completers))))
        who = rng.choice(completers, size=n, replace=False)
        answer = rng.choice(["1", "2", "3", "4", "5", ""], size=n, p=[0.04, 0.06, 0.12, 0.38, 0.32, 0.08])
        k = defects_per_kind(p.n)
        answer[rng.choice(n, size=min(k, n), replace=False)] = "7"  # outside the scale: rejected
        self.defect("invalid_survey_answer", min(k, n))
        frame = pd.DataFrame({"svar_id": np.arange(1, n + 1).astype(str), "kommunkod": p.municipality[who],
                              "okad_mojlighet": answer,
                              "tolk": np.where(rng.random(n) < 0.4, "ja", "nej")})
        rel = f"enkater/enkat_cykel{p.cycle}.csv"
        _write_text(self.out / rel, [_csv_text(frame, ",", "\n")], "utf-8")
        self.files[rel] = n


def _stream(seed: int, cycle: int, name: str) -> np.random.Generator:
    """The random stream of one file of one cycle (independent of every other file)."""
    return np.random.default_rng([seed, cycle, {"registers": 1, "end": 2, "90d": 3, "survey": 4}[name]])


SURVEYED_CYCLES = (3,)
NOT_FOLLOWED_UP = (8,)


def generate_scaled(out_dir: Path, participations: int, seed: int) -> dict:
    """Write a complete raw root of `participations` accepted participations; return a summary."""
    w = Writer(out_dir, seed, participations)
    cycles = {}
    p = None
    for cycle, info in sorted(reference.cycles().items()):
        p = plan_cycle(seed, cycle, w.layout, w.people, previous=p)
        w.registers(p)
        if info.source_kind == "petho":
            w.petho(p)
        elif info.source_kind == "folkuniversitetet":
            w.folkuniversitetet(p, "end")
            if cycle not in NOT_FOLLOWED_UP:
                w.folkuniversitetet(p, "90d")
        else:
            w.astorp(p, "end")
            if cycle not in NOT_FOLLOWED_UP:
                w.astorp(p, "90d")
        if cycle in SURVEYED_CYCLES:
            w.survey(p)
        cycles[cycle] = {"participations": p.n, "completers": int(p.completed.sum()),
                         "persons_returning": w.layout.returners[cycle]}
    return {
        "seed": seed,
        "participations": participations,
        "completers": sum(c["completers"] for c in cycles.values()),
        "cycles": cycles,
        "rows": sum(w.files.values()),
        "bytes": sum((Path(out_dir) / f).stat().st_size for f in w.files),
        "files": dict(sorted(w.files.items())),
        "defects": dict(sorted(w.defects.items())),
    }


def write_late_followup(out_dir: Path, participations: int, seed: int, cycle: int) -> str:
    """The 90-day export of a cycle that was not followed up, delivered late.

    For a raw root made by `generate_scaled` with the same size and seed: the
    cycle's plan is drawn again (deterministically) and its 90-day statuses
    written, as if Åstorp had sent them after all. Returns the file written."""
    info = reference.cycles()[cycle]
    if info.source_kind != "astorp":
        raise ValueError("the late follow-up is an Åstorp export (cycles 5-8)")
    w = Writer(Path(out_dir), seed, participations)
    # Drawn without the cycle before: its returners' names and countries are not the
    # root's, but an Åstorp export holds neither (and draws the same either way).
    p = plan_cycle(seed, cycle, w.layout, w.people)
    # Another size or seed would write statuses of people the root does not hold: its
    # end-of-cycle export, rendered again (in memory), must be the one on disk.
    rel, text, _ = w.astorp_text(p, "end")
    on_disk = Path(out_dir) / rel
    if not on_disk.is_file():
        raise ValueError(f"{out_dir} has no {rel}: --late-followup adds to a raw root "
                         "that synth --participations wrote, end-of-cycle export and all")
    again = hashlib.sha256()
    for piece in text:
        again.update(piece.encode("utf-8"))
    with open(on_disk, "rb") as f:
        if hashlib.file_digest(f, "sha256").digest() != again.digest():
            raise ValueError(f"{rel} in {out_dir} is not what --participations {participations} "
                             f"--seed {seed} writes: give the size and seed the root was made with "
                             "(or, if those are right, the file was changed since)")
    return w.astorp(p, "90d")
