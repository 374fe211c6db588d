"""Plan the bundled population, as plain data, before any file is written.

`plan_population(seed)` decides every participation (person, cycle,
municipality, completed or why not), the status each provider delivery will
state for it at the end of the cycle and at 90 days, and where a delivery is
deliberately defective. The writers (`iga_pipeline.synth.writers`) only render
this plan.

The counts are planned so that the rules (shared/contract/rules.md) give back
the report's Table 1 exactly (read from the reference table, not re-spelled):

* a completer is planned into a class (work, studies, other, unknown) at the
  end of the cycle and at 90 days, hitting the table's counts;
* every defect either rides on an extra row (a person who is counted nowhere)
  or on a completer whose planned class at that point is other/unknown, so a
  correct pipeline gets the same counts; municipality mismatches are the
  exception on purpose: the row is used, so their work/studies statuses count.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from iga_pipeline import reference
from iga_pipeline.personnummer import format_pnr, luhn_check_digit
from iga_pipeline.synth.names import draw_name

WORK, STUDIES, OTHER, UNKNOWN = reference.OUTCOME_CLASSES
UNKNOWN_DETAIL = "unknown"  # the status detail of the unknown class

# How a delivery carries one planned status.
ROW = "row"  # a row stating the status
UNKNOWN_CODE = "unknown_code"  # a row stating the provider's "unknown" (Okänt / 9 / OKAND / null / empty)
ABSENT = "absent"  # no row at all
# Defective rows; the names are the issue reasons the pipeline reports.
INVALID_CODE = "invalid_code"  # status outside the code list: row rejected
INVALID_PNR = "invalid_personnummer"  # wrong check digit: row rejected
CONFLICT = "conflicting_duplicate"  # two rows disagreeing on the status: both rejected
DUPLICATE = "duplicate_row"  # the same row twice: counted once
MISMATCH = "municipality_mismatch"  # filed under another municipality: used, warned

# Register row states.
REGISTER_OK = "ok"
REGISTER_NONE = "none"  # no register row (provider-only stranger: an orphan)
CONFLICTING_ENROLLMENT = "conflicting_enrollment"
ACCEPTED_REGISTER = (REGISTER_OK, DUPLICATE)

PNR_FORMS = ("YYMMDD-NNNC", "YYYYMMDD-NNNC", "YYMMDDNNNC", "YYYYMMDDNNNC")
PNR_FORM_WEIGHTS = (70, 12, 10, 8)
COORDINATION_SHARE = 0.02
PETHO_NUMBER_SHARE = 0.15  # Pethö rows whose Personnr cell is a number

# Country of birth by target group (ISO alpha-2; '' = not given).
COUNTRY_WEIGHTS = {
    "flykting": {"IQ": 30, "SO": 20, "AF": 10, "ER": 10, "IR": 8, "SY": 5, "BA": 3, "XK": 2,
                 "TH": 1, "": 2},
    "ifo": {"IQ": 18, "BA": 15, "SO": 10, "XK": 10, "IR": 8, "SE": 8, "AF": 6, "TH": 6, "PL": 6,
            "SY": 4, "ER": 4, "": 3},
}
OWNER_WEIGHT = 38  # the project owner's register is the largest
PARTNER_WEIGHTS = (15, 11, 12, 18)  # the partners, in reference-table order
HOURS = (4, 6, 8, 10, 12.5, 16, 20, 24, 30, 37.5, 40, 60, 80, 120)
RETURNERS_PER_CYCLE = {3: 1, 4: 2, 5: 2, 6: 2, 7: 2, 8: 1}  # people taking part a second time

# Provider-side defects: (cycle, point, kind, the carrier's planned class there).
# point 'row' is Pethö's single row holding both statuses.
PROVIDER_DEFECTS = [
    (1, "row", INVALID_CODE, UNKNOWN),
    (1, "row", CONFLICT, UNKNOWN),
    (1, "row", DUPLICATE, OTHER),
    (1, "row", MISMATCH, WORK),
    (2, "end", INVALID_CODE, UNKNOWN),
    (2, "end", MISMATCH, WORK),
    (3, "end", INVALID_PNR, UNKNOWN),
    (3, "90d", DUPLICATE, OTHER),
    (4, "end", DUPLICATE, OTHER),
    (4, "90d", CONFLICT, UNKNOWN),
    (5, "end", CONFLICT, UNKNOWN),
    (5, "90d", INVALID_PNR, UNKNOWN),
    (6, "end", INVALID_PNR, UNKNOWN),
    (6, "end", MISMATCH, STUDIES),
    (7, "end", MISMATCH, WORK),
    (7, "90d", INVALID_CODE, UNKNOWN),
    (8, "end", DUPLICATE, OTHER),
]

# Register defects: (cycle, kind, variant). Rejected kinds ride on strangers
# (extra people); duplicate rows repeat a participant's row (counted once).
REGISTER_DEFECTS = [
    (2, "invalid_personnummer", "check_digit"),
    (5, "invalid_personnummer", "impossible_date"),
    (7, "invalid_personnummer", "garbage"),
    (3, "invalid_date", "february_30"),
    (3, "invalid_date", "day_first"),
    (1, "invalid_code", "kon"),
    (2, "invalid_code", "malgrupp"),
    (6, "invalid_code", "avbrott_orsak"),
    (8, "invalid_code", "fodelseland"),
    (4, "missing_required", "kon"),
    (5, "missing_required", "inskrivningsdatum"),
    (7, "missing_required", "personnummer"),
    (2, "cycle_mismatch", "next"),
    (8, "cycle_mismatch", "previous"),
    (3, CONFLICTING_ENROLLMENT, "two_municipalities"),
    (7, CONFLICTING_ENROLLMENT, "two_municipalities"),
    (5, CONFLICTING_ENROLLMENT, "two_rows_one_file"),
    (1, DUPLICATE, "completer"),
    (4, DUPLICATE, "early_leaver"),
    (6, DUPLICATE, "completer"),
]

# Provider rows for participations no register accepts: (cycle, whose).
ORPHANS = [
    (1, "stranger"),
    (2, "cycle_mismatch"),  # the person whose only cycle-2 register row says another cycle
    (3, CONFLICTING_ENROLLMENT),
    (3, "previous_cycle"),  # a cycle-2 completer in cycle 3's 90-day file
    (5, CONFLICTING_ENROLLMENT),
    (7, CONFLICTING_ENROLLMENT),
    (8, "stranger"),
]


def code_for(source_kind: str) -> dict[str, str]:
    """Harmonised status detail -> the provider's code for it, as the generators write it
    (the first non-empty one of the reference table's codes)."""
    out: dict[str, str] = {}
    for code, detail in reference.outcome_codes(source_kind).items():
        if code:
            out.setdefault(detail, code)
    return out


def bump_check_digit(pnr: str) -> str:
    """The same written personnummer with a wrong check digit."""
    return pnr[:-1] + str((int(pnr[-1]) + 1) % 10)


@dataclass(frozen=True)
class Person:
    birth: date
    serial: int  # NNN, 0..999 (its last digit is odd for men, even for women)
    coordination: bool  # samordningsnummer: the day is written + 60
    sex: str  # K / M
    country: str  # ISO alpha-2 or ''
    first_name: str
    last_name: str

    def pnr(self, form: str = "YYMMDD-NNNC") -> str:
        return format_pnr(self.birth, self.serial, coordination=self.coordination, form=form)


@dataclass
class Status:
    """One planned status in one delivery."""

    detail: str  # harmonised status detail; 'unknown' when the delivery gives none
    mode: str = ROW
    written: tuple[str, ...] = ()  # CONFLICT / INVALID_PNR: the detail(s) the rejected row(s) state

    @property
    def status_class(self) -> str:
        return reference.outcome_classes()[self.detail]


@dataclass
class Participation:
    person: Person
    cycle: int
    municipality: str  # kommunkod of the register folder
    enrolled: date
    exited: date | None
    dropout: str = ""  # avbrott_orsak; '' = completed the cycle
    pnr_form: str = "YYMMDD-NNNC"  # how the register writes the personnummer
    register: str = REGISTER_OK  # REGISTER_OK, REGISTER_NONE, or the defect of its register row
    register_variant: str = ""
    register_overrides: dict[str, str] = field(default_factory=dict)  # column -> defective value
    end: Status = field(default_factory=lambda: Status(UNKNOWN_DETAIL, ABSENT))
    d90: Status | None = None  # None: the cycle is not followed up
    provider_municipality: str | None = None  # MISMATCH: the municipality the provider states
    interventions: list[tuple[str, float]] = field(default_factory=list)
    petho_number: bool = False  # Pethö stored the Personnr as a number

    @property
    def accepted(self) -> bool:
        return self.register in ACCEPTED_REGISTER

    @property
    def completed(self) -> bool:
        return self.accepted and self.dropout == ""


@dataclass(frozen=True)
class Targets:
    completed: int
    work_end: int
    studies_end: int
    work_90d: int | None  # None: not followed up
    studies_90d: int | None


@dataclass
class Plan:
    seed: int
    participations: list[Participation]
    survey: list[tuple[int, str, int | None, str]]  # svar_id, kommunkod, okad_mojlighet, tolk
    followed_up: dict[int, bool]

    def of_cycle(self, cycle: int) -> list[Participation]:
        return [p for p in self.participations if p.cycle == cycle]


def table1_targets() -> dict[int, Targets]:
    """The per-cycle rows of the report's Table 1 (reference/table1_published.csv)."""
    out = {}
    for row in reference.table("table1_published").itertuples():
        label, _, number = row.row_label.partition(" ")
        if label != "Cykel":
            continue
        out[int(number)] = Targets(
            completed=int(row.completed),
            work_end=int(row.work_at_end),
            studies_end=int(row.studies_at_end),
            work_90d=int(row.work_90d) if row.work_90d else None,
            studies_90d=int(row.studies_90d) if row.studies_90d else None,
        )
    return out


def plan_population(seed: int) -> Plan:
    return _Planner(seed).plan()


class _Planner:
    def __init__(self, seed: int):
        self.seed = seed
        self.rng = random.Random(seed)
        self.cycles = reference.cycles()
        self.targets = table1_targets()
        self.municipalities = list(reference.municipalities())
        roles = reference.table("municipalities").set_index("municipality_code")["role"]
        partner_weights = iter(PARTNER_WEIGHTS)
        self.municipality_weights = [
            OWNER_WEIGHT if roles[code] == "project_owner" else next(partner_weights)
            for code in self.municipalities
        ]
        self.details_by_class: dict[str, list[str]] = {}
        for detail, cls in reference.outcome_classes().items():
            self.details_by_class.setdefault(cls, []).append(detail)
        self.dropout_reasons = sorted(reference.register_codes("avbrott_orsak"))
        self.participations: list[Participation] = []
        self._person_ids: set[tuple[date, int, bool]] = set()

    # ------------------------------------------------------------------ plan
    def plan(self) -> Plan:
        for cycle in sorted(self.cycles):
            self._plan_cycle(cycle)
        for cycle, kind, variant in REGISTER_DEFECTS:
            self._register_defect(cycle, kind, variant)
        for cycle, whose in ORPHANS:
            self._orphan(cycle, whose)
        followed = {c: self.targets[c].work_90d is not None for c in self.cycles}
        return Plan(self.seed, self.participations, self._survey(), followed)

    def _plan_cycle(self, cycle: int) -> None:
        rng = self.rng
        t = self.targets[cycle]
        start, end = self.cycles[cycle].start, self.cycles[cycle].end
        slots = [True] * t.completed + [False] * rng.randint(3, 10)  # completed? per slot
        rng.shuffle(slots)
        returners = self._returners(RETURNERS_PER_CYCLE.get(cycle, 0))
        returner_slots = set(rng.sample(range(len(slots)), len(returners)))
        covered: list[str] = []  # municipalities that already have a completer
        ps = []
        for i, completed in enumerate(slots):
            if i in returner_slots:
                previous = returners.pop()
                person = previous.person
                municipality = previous.municipality
                if previous.dropout == "flytt":  # moved: returns in another municipality
                    municipality = rng.choice([m for m in self.municipalities if m != municipality])
            else:
                person = self._new_person(cycle)
                municipality = self._municipality()
            if completed and len(covered) < len(self.municipalities):
                # every municipality has at least one completer in every cycle
                municipality = next(m for m in self.municipalities if m not in covered)
            if completed and municipality not in covered:
                covered.append(municipality)
            enrolled = start + timedelta(days=rng.randint(0, 20))
            if completed:
                exited = end if rng.random() < 0.9 else None
                dropout = ""
            else:
                exited = enrolled + timedelta(days=rng.randint(14, (end - enrolled).days - 10))
                dropout = rng.choice(self.dropout_reasons)
            p = Participation(person, cycle, municipality, enrolled, exited, dropout,
                              pnr_form=rng.choices(PNR_FORMS, PNR_FORM_WEIGHTS)[0])
            p.interventions = self._interventions(cycle, completed)
            p.petho_number = self.cycles[cycle].source_kind == "petho" and rng.random() < PETHO_NUMBER_SHARE
            ps.append(p)
        self._plan_statuses(cycle, [p for p in ps if p.completed])
        for p in ps:
            if not p.completed:
                self._plan_leaver_statuses(p)
        self.participations.extend(ps)

    # -------------------------------------------------------------- statuses
    def _plan_statuses(self, cycle: int, completers: list[Participation]) -> None:
        """Give each completer a class at each point so the counts hit Table 1."""
        rng = self.rng
        t = self.targets[cycle]
        followed_up = t.work_90d is not None
        petho = self.cycles[cycle].source_kind == "petho"
        order = completers[:]
        rng.shuffle(order)
        end_cls: dict[int, str] = {}
        end_mode: dict[int, str] = {}
        d90_cls: dict[int, str] = {}
        d90_mode: dict[int, str] = {}

        # 1. Defect carriers first: their class is fixed by the defect table.
        carriers = iter(range(len(order)))
        for c, point, kind, cls in PROVIDER_DEFECTS:
            if c != cycle:
                continue
            i = next(carriers)
            if point in ("end", "row"):
                end_cls[i], end_mode[i] = cls, kind
            if point == "90d":
                d90_cls[i], d90_mode[i] = cls, kind
            if point == "row":  # Pethö: the same row carries the 90-day status
                d90_cls[i], d90_mode[i] = cls, (UNKNOWN_CODE if cls == UNKNOWN else ROW)
            if kind == MISMATCH:
                order[i].provider_municipality = rng.choice(
                    [m for m in self.municipalities if m != order[i].municipality])

        # 2. End of cycle: the rest of the counts, at random.
        free = [i for i in range(len(order)) if i not in end_cls]
        need = self._need(end_cls, {WORK: t.work_end, STUDIES: t.studies_end,
                                    UNKNOWN: rng.randint(1, 3)})
        classes = [cls for cls, n in need.items() for _ in range(n)]
        classes += [OTHER] * (len(free) - len(classes))
        if len(classes) != len(free):
            raise ValueError(f"cycle {cycle}: planned counts do not fit {len(order)} completers")
        for i, cls in zip(free, classes):
            end_cls[i] = cls

        # 3. 90 days: people tend to keep their class (work stays work, ...).
        if followed_up:
            free = [i for i in range(len(order)) if i not in d90_cls]
            tiebreak = {i: rng.random() for i in free}
            need = self._need(d90_cls, {WORK: t.work_90d, STUDIES: t.studies_90d,
                                        UNKNOWN: rng.randint(1, 3)})
            for cls, n in need.items():
                ranked = sorted(free, key=lambda i: (end_cls[i] != cls, tiebreak[i]))
                for i in ranked[:n]:
                    d90_cls[i] = cls
                    free.remove(i)
            for i in free:
                d90_cls[i] = OTHER

        # 4. How each delivery states it, and the detail within the class.
        for i, p in enumerate(order):
            e_mode = end_mode.get(i) or self._plain_mode(end_cls[i])
            n_mode = d90_mode.get(i) or (self._plain_mode(d90_cls[i]) if followed_up else None)
            if petho and i not in end_mode:
                # One row holds both statuses: absent means absent at both points.
                both_unknown = end_cls[i] == UNKNOWN and d90_cls[i] == UNKNOWN
                if not both_unknown:
                    e_mode = UNKNOWN_CODE if end_cls[i] == UNKNOWN else ROW
                    n_mode = UNKNOWN_CODE if d90_cls[i] == UNKNOWN else ROW
                else:
                    n_mode = e_mode
            p.end = Status(self._detail(end_cls[i]), e_mode, self._written(e_mode))
            if followed_up:
                p.d90 = Status(self._detail(d90_cls[i], previous=p.end.detail), n_mode, self._written(n_mode))

    def _written(self, mode: str) -> tuple[str, ...]:
        """What rejected rows state: never work or studies, so a wrongly accepted row shows."""
        others = self.details_by_class[OTHER]
        if mode == CONFLICT:
            return tuple(others[:2])
        if mode == INVALID_PNR:
            return (self.rng.choice(others),)
        return ()

    @staticmethod
    def _need(fixed: dict[int, str], totals: dict[str, int]) -> dict[str, int]:
        need = {}
        for cls, total in totals.items():
            have = sum(1 for c in fixed.values() if c == cls)
            if cls == UNKNOWN:
                need[cls] = total  # unknown beyond the carriers
            elif total < have:
                raise ValueError(f"more {cls} carriers than the table allows")
            else:
                need[cls] = total - have
        return need

    def _plain_mode(self, cls: str) -> str:
        if cls != UNKNOWN:
            return ROW
        return self.rng.choice([ABSENT, UNKNOWN_CODE])

    def _plan_leaver_statuses(self, p: Participation) -> None:
        """Providers report on some early leavers too (kept, never counted)."""
        rng = self.rng
        followed_up = self.targets[p.cycle].work_90d is not None
        petho = self.cycles[p.cycle].source_kind == "petho"
        p.end = self._status(self._leaver_detail()) if rng.random() < 0.5 else Status(UNKNOWN_DETAIL, ABSENT)
        if followed_up:
            if petho:  # same row as the end status
                present = p.end.mode != ABSENT
                p.d90 = self._status(self._leaver_detail()) if present else Status(UNKNOWN_DETAIL, ABSENT)
            else:
                p.d90 = self._status(self._leaver_detail()) if rng.random() < 0.3 else Status(UNKNOWN_DETAIL, ABSENT)

    def _leaver_detail(self) -> str:
        return self._detail(self.rng.choices([WORK, STUDIES, OTHER, UNKNOWN], [2, 1, 3, 1])[0])

    def _status(self, detail: str) -> Status:
        return Status(detail, UNKNOWN_CODE if detail == UNKNOWN_DETAIL else ROW)

    def _detail(self, cls: str, previous: str | None = None) -> str:
        """A detail of the class; the first detail of each class is the most common."""
        rng = self.rng
        if previous is not None and reference.outcome_classes()[previous] == cls and rng.random() < 0.85:
            return previous
        options = self.details_by_class[cls]
        return rng.choices(options, [3] + [1] * (len(options) - 1))[0]

    # ------------------------------------------------------ people and places
    def _new_person(self, cycle: int) -> Person:
        rng = self.rng
        group = self.cycles[cycle].target_group
        countries = COUNTRY_WEIGHTS[group]
        country = rng.choices(list(countries), list(countries.values()))[0]
        sex = rng.choice("KM")
        while True:
            birth = date(1952, 1, 1) + timedelta(days=rng.randint(0, 39 * 365))
            serial = rng.randint(0, 99) * 10 + rng.choice((1, 3, 5, 7, 9) if sex == "M" else (0, 2, 4, 6, 8))
            coordination = rng.random() < COORDINATION_SHARE
            key = (birth, serial, coordination)
            if key not in self._person_ids:
                self._person_ids.add(key)
                break
        first, last = draw_name(rng, country, sex)
        return Person(birth, serial, coordination, sex, country, first, last)

    def _municipality(self) -> str:
        return self.rng.choices(self.municipalities, self.municipality_weights)[0]

    def _returners(self, n: int) -> list[Participation]:
        """Earlier participations (one per person) of `n` people who come back in the cycle being planned."""
        if not n:
            return []
        by_person: dict[Person, list[Participation]] = {}
        for p in self.participations:
            if p.accepted:
                by_person.setdefault(p.person, []).append(p)
        candidates = [
            ps[-1] for ps in by_person.values()
            if len(ps) == 1 and (not ps[0].completed or (ps[0].d90 or ps[0].end).status_class in (OTHER, UNKNOWN))
        ]
        return self.rng.sample(candidates, n)

    def _interventions(self, cycle: int, completed: bool) -> list[tuple[str, float]]:
        kinds = list(dict.fromkeys(reference.intervention_codes(self.cycles[cycle].source_kind).values()))
        rng = self.rng
        k = rng.randint(1, min(4, len(kinds))) if completed else rng.randint(0, 2)
        chosen = sorted(rng.sample(kinds, k), key=kinds.index)
        return [(kind, rng.choice(HOURS)) for kind in chosen]

    def _extra(self, cycle: int, register: str = REGISTER_OK) -> Participation:
        """A participation of a new person outside the counted population."""
        rng = self.rng
        start, end = self.cycles[cycle].start, self.cycles[cycle].end
        p = Participation(self._new_person(cycle), cycle, self._municipality(),
                          enrolled=start + timedelta(days=rng.randint(0, 20)), exited=end,
                          pnr_form=rng.choices(PNR_FORMS, PNR_FORM_WEIGHTS)[0], register=register)
        p.interventions = self._interventions(cycle, True)
        if self.targets[cycle].work_90d is not None:
            p.d90 = Status(UNKNOWN_DETAIL, ABSENT)
        return p

    # -------------------------------------------------------- register defects
    def _register_defect(self, cycle: int, kind: str, variant: str) -> None:
        rng = self.rng
        if kind == DUPLICATE:
            pool = [p for p in self.of(cycle) if p.register == REGISTER_OK
                    and (p.completed if variant == "completer" else not p.completed)]
            rng.choice(pool).register = DUPLICATE
            return
        p = self._extra(cycle, register=kind)
        p.register_variant = variant
        target_group = self.cycles[cycle].target_group
        if kind == CONFLICTING_ENROLLMENT:
            twin = dataclasses.replace(p, register_overrides={}, interventions=[],
                                       end=Status(UNKNOWN_DETAIL, ABSENT),
                                       d90=p.d90 and Status(UNKNOWN_DETAIL, ABSENT))
            if variant == "two_municipalities":
                twin.municipality = rng.choice([m for m in self.municipalities if m != p.municipality])
                twin.pnr_form = rng.choice(PNR_FORMS)
            else:  # two different rows in one file: also written as an early leaver
                twin.dropout = rng.choice(self.dropout_reasons)
                twin.exited = p.enrolled + timedelta(days=30)
            self.participations.append(twin)
        overrides = p.register_overrides
        person = p.person
        if (kind, variant) == ("invalid_personnummer", "check_digit"):
            overrides["personnummer"] = bump_check_digit(person.pnr(p.pnr_form))
        elif (kind, variant) == ("invalid_personnummer", "impossible_date"):
            nine = f"{person.birth:%y}0230{person.serial:03d}"  # 30 February, correct check digit
            overrides["personnummer"] = f"{nine[:6]}-{nine[6:]}{luhn_check_digit(nine)}"
        elif (kind, variant) == ("invalid_personnummer", "garbage"):
            overrides["personnummer"] = f"{person.birth:%Y%m%d}-ABCD"
        elif (kind, variant) == ("invalid_date", "february_30"):
            overrides["inskrivningsdatum"] = f"{p.enrolled.year}-02-30"
        elif (kind, variant) == ("invalid_date", "day_first"):
            overrides["inskrivningsdatum"] = f"{p.enrolled:%d/%m/%Y}"
        elif (kind, variant) == ("invalid_code", "kon"):
            overrides["kon"] = "X"
        elif (kind, variant) == ("invalid_code", "malgrupp"):
            overrides["malgrupp"] = target_group + "ar"  # 'flyktingar'
        elif (kind, variant) == ("invalid_code", "avbrott_orsak"):
            p.exited = p.enrolled + timedelta(days=45)
            overrides["avbrott_orsak"] = "semester"
        elif (kind, variant) == ("invalid_code", "fodelseland"):
            overrides["fodelseland"] = "ZZ"
        elif kind == "missing_required":
            overrides[variant] = ""
        elif kind == "cycle_mismatch":
            overrides["cykel"] = str(cycle + 1 if variant == "next" else cycle - 1)
        elif kind != CONFLICTING_ENROLLMENT:
            raise ValueError(f"unknown register defect {kind}/{variant}")
        self.participations.append(p)

    # ----------------------------------------------------------------- orphans
    def _orphan(self, cycle: int, whose: str) -> None:
        rng = self.rng
        if whose == "stranger":
            p = self._extra(cycle, register=REGISTER_NONE)
            self.participations.append(p)
        elif whose == "previous_cycle":
            here = {q.person for q in self.of(cycle)}
            pool = [q for q in self.of(cycle - 1) if q.completed and q.person not in here]
            before = rng.choice(pool)
            p = Participation(before.person, cycle, before.municipality, before.enrolled, None,
                              register=REGISTER_NONE)
            p.d90 = self._status(self._detail(WORK))
            self.participations.append(p)
            return
        else:  # the (first) row of a participation whose register rows are all rejected
            p = next(q for q in self.of(cycle) if q.register == whose)
        p.end = self._status(self._detail(rng.choice([WORK, WORK, STUDIES, OTHER])))

    def of(self, cycle: int) -> list[Participation]:
        return [p for p in self.participations if p.cycle == cycle]

    # ------------------------------------------------------------------ survey
    def _survey(self) -> list[tuple[int, str, int | None, str]]:
        """Cycle 3's questionnaire: about 20 of its completers answered, mostly 4-5."""
        rng = self.rng
        completers = [p for p in self.of(3) if p.completed]
        respondents = rng.sample(completers, rng.randint(18, 22))
        answered = len(respondents) - 2
        high = round(answered * 0.78)
        answers: list[int | None] = [rng.choice((4, 5, 5)) for _ in range(high)]
        answers += [(3, 3, 2, 1, 3, 2)[k] for k in range(answered - high)] + [None, None]
        rng.shuffle(answers)
        return [(k + 1, p.municipality, a, rng.choices(("ja", "nej"), (2, 3))[0])
                for k, (p, a) in enumerate(zip(respondents, answers))]
