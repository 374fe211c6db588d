"""The project's facts as data.

Every fact the pipeline relies on (cycles, providers, municipalities, code
lists, goals, benchmarks, the printed Table 1, the budget) lives in a CSV file
beside this module. Code asks for them through the functions below. Only the
report's prose spells some out: it discusses the goals HM2 and HM2_rev by id
(renaming them in goals.csv needs report.html.j2 changed too), and mart
descriptions quote the budget's two amounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent

SOURCE_KINDS = ("register", "petho", "folkuniversitetet", "astorp", "survey")
OUTCOME_CLASSES = ("work", "studies", "other", "unknown")
# countries.csv's regions, and unknown for a country it does not list (or none given)
BIRTH_REGIONS = ("sweden", "europe", "outside_europe", "unknown")
# warehouse.md: the reasons of data_quality_issues, for a row and for a whole file
# (cycle_mismatch is both: an Åstorp export can state another cycle, docs/decisions.md)
ROW_REASONS = (
    "invalid_personnummer", "invalid_date", "invalid_code", "missing_required", "cycle_mismatch",
    "conflicting_enrollment", "conflicting_duplicate", "orphan_outcome", "duplicate_row",
    "missing_outcome", "municipality_mismatch",
)
FILE_REASONS = ("unreadable_file", "missing_columns", "unknown_municipality", "provider_cycle_mismatch",
                "unexpected_file", "cycle_mismatch")
# The report's fingerprint (evaluation/report.py) of the bundled raw root, data/raw/, as
# `iga-pipeline synth --out` writes it for the default seed: made-up people, generated so that
# their counts are Table 1's printed counts. A report built from exactly these files says so.
BUNDLED_SYNTHETIC_FINGERPRINT = "688a62bf4c0699f2e80f7cb0895ac8bf927d8339f6f4e18a4af241a4f96f2ebb"
INTERVENTIONS = (
    "validation",
    "vocational_trial",
    "civic_orientation",
    "job_search",
    "internship",
    "job_coaching",
)


def table(name: str) -> pd.DataFrame:
    """One reference table, as strings (the caller converts what it needs)."""
    return _read(name).copy()


@cache
def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(HERE / f"{name}.csv", dtype=str, keep_default_na=False)


@dataclass(frozen=True)
class Cycle:
    cycle: int
    start: date
    end: date
    provider_id: str
    provider: str
    source_kind: str
    target_group: str


@cache
def cycles() -> dict[int, Cycle]:
    providers = _read("providers").set_index("provider_id")
    out = {}
    for row in _read("cycles").itertuples():
        p = providers.loc[row.provider_id]
        out[int(row.cycle)] = Cycle(
            cycle=int(row.cycle),
            start=date.fromisoformat(row.start_date),
            end=date.fromisoformat(row.end_date),
            provider_id=row.provider_id,
            provider=p.provider,
            source_kind=p.source_kind,
            target_group=row.target_group,
        )
    return out


@cache
def municipalities() -> dict[str, str]:
    """kommunkod -> name."""
    m = _read("municipalities")
    return dict(zip(m.municipality_code, m.municipality))


@cache
def municipality_codes_by_name() -> dict[str, str]:
    """name (case-folded) -> kommunkod."""
    return {name.casefold(): code for code, name in municipalities().items()}


@cache
def outcome_codes(source_kind: str) -> dict[str, str]:
    """A provider's raw status code -> harmonised status detail.

    Pethö's texts are keyed case-folded (the contract compares them
    case-insensitively after trimming)."""
    t = _read("outcome_codes")
    t = t[t.source_kind == source_kind]
    return dict(zip(t.code, t.status_detail))


@cache
def outcome_classes() -> dict[str, str]:
    """status detail -> class (work, studies, other, unknown)."""
    t = _read("outcome_classes")
    return dict(zip(t.status_detail, t.status_class))


@cache
def intervention_codes(source_kind: str) -> dict[str, str]:
    t = _read("intervention_codes")
    t = t[t.source_kind == source_kind]
    return dict(zip(t.code, t.intervention))


@cache
def register_codes(column: str) -> frozenset[str]:
    t = _read("register_codes")
    return frozenset(t.loc[t.column == column, "code"])


@cache
def birth_regions() -> dict[str, str]:
    """ISO 3166-1 alpha-2 country code -> birth region (sweden, europe, outside_europe)."""
    t = _read("countries")
    return dict(zip(t.country_code, t.birth_region))


def provider_kinds() -> list[str]:
    """The delivery kinds of the providers' files (providers.csv)."""
    return list(_read("providers").source_kind)


def goals() -> pd.DataFrame:
    t = table("goals")
    t["target"] = t["target"].astype(float)
    # empty is none (NULL in the warehouse's reference.goals); a coverage rule stays text, read exactly
    for column in ("revises", "min_cycle_coverage"):
        t[column] = t[column].astype(object).where(t[column] != "", None)
    return t


def benchmarks() -> pd.DataFrame:
    t = table("benchmarks")
    t["value"] = t["value"].astype(float)
    return t


@cache
def budget() -> dict[str, int]:
    t = _read("budget")
    return {row.item: int(row.sek) for row in t.itertuples()}


def table1_published() -> pd.DataFrame:
    """The report's Table 1 as printed (NULL where it prints '-')."""
    t = pd.read_csv(HERE / "table1_published.csv", dtype={"row_label": str})
    return t.astype({c: "Int64" for c in t.columns if c != "row_label"})
