"""Validation with pandera: which rows are rejected, and why.

Two kinds of schema live here:

* Row-rejection schemas (`register_schema`, `provider_schema`,
  `survey_schema`) run over an adapter's raw-typed frame. Every check's error
  text starts with the contract's reason code ("invalid_code: ..."), so a
  failure case maps straight to a row of `data_quality_issues`.
* Harmonised models (`Participation`, `Outcome`, ...) describe the frames
  that leave ingestion. They must always pass. Dagster's asset checks run
  them over the staged files (staging.validate_staged), reading only files
  not stamped as validated: staging stamps what it writes, which passed here.
"""

from __future__ import annotations

import os

import pandas as pd
import pandera.pandas as pa
from pandas.api.types import infer_dtype
from pandera import dtypes
from pandera.engines import pandas_engine
from pandera.errors import SchemaErrors
from pandera.typing import Series

from iga_pipeline import personnummer, reference
from iga_pipeline.sources.common import issues_frame
from iga_pipeline.sources.masking import safe_value
from iga_pipeline.sources.provider_rows import MAX_HOURS

# When a row fails several checks, the issue names the first of these. A check's error text
# starts with one of them; any other (pandera's own checks, or a new reason not listed here)
# is read as invalid_code (`_reason`).
REASON_PRIORITY = [
    "invalid_personnummer", "missing_required", "cycle_mismatch", "invalid_date", "invalid_code",
]
_ISO_DATE = r"\d{4}-\d{2}-\d{2}"


def _is_iso_date(s: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
    return s.str.fullmatch(_ISO_DATE).fillna(False).astype(bool) & parsed.notna()


def _one_of(column: str, allowed, transform=None) -> pa.Check:
    allowed = sorted(allowed)
    shown = ", ".join(allowed) if len(allowed) <= 8 else f"{len(allowed)} codes"

    def check(s: pd.Series) -> pd.Series:
        return (transform(s) if transform else s).isin(allowed)

    return pa.Check(check, error=f"invalid_code: {column} must be one of {shown}")


def _required(checks=()) -> pa.Column:
    return pa.Column("string", nullable=False, checks=list(checks), required=True)


def _optional(checks=()) -> pa.Column:
    return pa.Column("string", nullable=True, checks=list(checks), required=True)


_PNR_CHECKS = [
    pa.Check(lambda s: s != "missing", error="missing_required: personnummer is empty"),
    pa.Check(lambda s: s == "missing", error="invalid_personnummer: personnummer is invalid"),
]


def register_schema(cycle: int) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "pnr_error": _optional(_PNR_CHECKS),
            "kon": _required([_one_of("kon", reference.register_codes("kon"))]),
            "fodelseland": _optional([_one_of("fodelseland", reference.birth_regions())]),
            "malgrupp": _required([_one_of("malgrupp", reference.register_codes("malgrupp"))]),
            "cykel": _required([pa.Check(
                lambda s: s == str(cycle),
                error=f"cycle_mismatch: cykel differs from the file name's cycle {cycle}")]),
            "inskrivningsdatum": _required([pa.Check(
                _is_iso_date, error="invalid_date: inskrivningsdatum is not a date YYYY-MM-DD")]),
            "utskrivningsdatum": _optional([pa.Check(
                _is_iso_date, error="invalid_date: utskrivningsdatum is not a date YYYY-MM-DD")]),
            "avbrott_orsak": _optional([_one_of("avbrott_orsak", reference.register_codes("avbrott_orsak"))]),
        },
        checks=[pa.Check(
            lambda df: ~(pd.to_datetime(df["utskrivningsdatum"], format="%Y-%m-%d", errors="coerce")
                         < pd.to_datetime(df["inskrivningsdatum"], format="%Y-%m-%d", errors="coerce")),
            error="invalid_date: utskrivningsdatum is before inskrivningsdatum")],
        strict=False,
    )


def provider_schema(source_kind: str, timepoints: list[str]) -> pa.DataFrameSchema:
    codes = {c for c in reference.outcome_codes(source_kind) if c}
    columns = {"pnr_error": _optional(_PNR_CHECKS)}
    for tp in timepoints:
        columns[f"status_{tp}"] = _optional([_one_of(f"status ({tp})", codes)])
    return pa.DataFrameSchema(columns, strict=False)


def survey_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "svar_id": _required(),  # keyed by the adapter (sources/survey.py)
            "svar_id_error": _optional([pa.Check(
                lambda s: s != "personnummer",
                error="invalid_code: svar_id holds a personnummer, or 11 or more than 12 digits in "
                      "a row that could hide one; the survey is anonymous")]),
            "kommunkod": _required([_one_of("kommunkod", reference.municipalities())]),
            "okad_mojlighet": _optional([_one_of("okad_mojlighet", ["1", "2", "3", "4", "5"])]),
            "tolk": _optional([_one_of("tolk", ["ja", "nej"], transform=lambda s: s.str.casefold())]),
        },
        strict=False,
    )


def rejections(frame: pd.DataFrame, schema: pa.DataFrameSchema, source_file: str) -> pd.DataFrame:
    """Run a row-rejection schema; one issue per failing row (index aligned).

    Returns an issues frame indexed like the failing rows of `frame`."""
    try:
        schema.validate(frame, lazy=True)
        return issues_frame().set_index(pd.Index([], dtype=frame.index.dtype))
    except SchemaErrors as err:
        cases = err.failure_cases
    cases = cases[cases["index"].notna()].copy()
    cases["reason"] = cases["check"].map(_reason)
    # A check of the whole frame (dates in order) fails once per column of the row: one detail.
    whole_row = cases["schema_context"] == "DataFrameSchema"
    cases["detail"] = [
        _detail(col, check, value, whole)
        for col, check, value, whole in zip(cases["column"], cases["check"], cases["failure_case"], whole_row)
    ]
    cases["rank"] = cases["reason"].map(REASON_PRIORITY.index)
    cases = cases.sort_values(["index", "rank"], kind="stable")
    per_row = cases.groupby("index", sort=True).agg(
        reason=("reason", "first"),
        detail=("detail", lambda d: "; ".join(dict.fromkeys(d))),
    )
    out = pd.DataFrame({
        "source_file": source_file,
        "source_row": frame.loc[per_row.index, "source_row"].astype("string").values,
        "severity": "rejected",
        "reason": per_row["reason"].values,
        "detail": per_row["detail"].values,
    }, index=per_row.index)
    return out.astype("string")


def _reason(check: str) -> str:
    if check == "not_nullable":
        return "missing_required"
    code = str(check).split(":", 1)[0]
    return code if code in REASON_PRIORITY else "invalid_code"


def _detail(column: str, check: str, value, whole_row: bool = False) -> str:
    if check == "not_nullable":
        return f"{column} is empty"
    message = str(check).split(":", 1)[-1].strip()
    if whole_row:  # the failure case is one of the row's values, whichever column: not quoted
        return message
    if column == "pnr_error":  # the failure case is our own error code, never the value
        return "personnummer: " + personnummer.ERROR_TEXT.get(str(value), message)
    if column == "svar_id_error":
        return message
    if value is None or value is pd.NA:
        return message
    # A date is quoted from a field of dates only; what one row's issues quote together is
    # masked where it could make a personnummer (ingest: sources.masking.mask_split_values).
    return f"{message} (got '{safe_value(value, date=str(check).startswith('invalid_date'))}')"


def checks_data() -> bool:
    """Whether pandera checks the data. It can be switched off (PANDERA_VALIDATION_ENABLED,
    `pandera.config`) or limited to the schema (PANDERA_VALIDATION_DEPTH); then no rows
    or staged files count as checked: none are kept (checked_files.py) or stamped
    validated (staging.py). pandera reads the variables when it is imported; they are
    read here again, the same way, so that setting them later also counts as off."""
    from pandera.config import ValidationDepth, get_config_context

    config = get_config_context()
    if not config.validation_enabled or config.validation_depth not in (None, ValidationDepth.SCHEMA_AND_DATA):
        return False
    enabled = os.environ.get("PANDERA_VALIDATION_ENABLED", "True") in ("true", "True", "1")  # as pandera reads it
    return enabled and os.environ.get("PANDERA_VALIDATION_DEPTH") in (None, "SCHEMA_AND_DATA")


# --- Harmonised models: what leaves ingestion --------------------------------

@pandas_engine.Engine.register_dtype
@dtypes.immutable
class Text(pandas_engine.NpString):
    """`str` as pandera checks it, in one pass of C instead of one Python call per value.

    pandera's `str` coerces every value with str() and then checks every value
    with isinstance(): two Python calls per cell, most of the cost of validating
    a million rows. When pandas' own type inference (C) already finds nothing
    but strings and missing values, both are no-ops; otherwise `str`'s own
    coercion and check run, failure cases and all."""

    def coerce(self, data_container):
        obj = data_container.astype(object)
        if infer_dtype(obj, skipna=True) in ("string", "empty"):
            return obj
        return super().coerce(data_container)

    def check(self, pandera_dtype, data_container=None):
        if data_container is not None and infer_dtype(data_container, skipna=True) in ("string", "empty"):
            return True
        return super().check(pandera_dtype, data_container)


_LAST_CYCLE = max(reference.cycles())


class _Staged(pa.DataFrameModel):
    """What every staged frame's model shares: no column beyond the model's (strict), and
    each column converted to the model's type (coerce)."""

    class Config:
        strict = True
        coerce = True


class Participation(_Staged):
    participation_id: Series[Text] = pa.Field(unique=True)
    person_key: Series[Text] = pa.Field(str_length={"min_value": 64, "max_value": 64})
    cycle: Series[int] = pa.Field(ge=1, le=_LAST_CYCLE)
    municipality_code: Series[Text] = pa.Field(isin=list(reference.municipalities()))
    gender: Series[Text] = pa.Field(isin=sorted(reference.register_codes("kon")))
    birth_region: Series[Text] = pa.Field(isin=list(reference.BIRTH_REGIONS))
    target_group: Series[Text] = pa.Field(isin=sorted(reference.register_codes("malgrupp")))
    enrolled_on: Series[pd.Timestamp]
    exited_on: Series[pd.Timestamp] = pa.Field(nullable=True)
    completed: Series[bool]
    dropout_reason: Series[Text] = pa.Field(nullable=True, isin=sorted(reference.register_codes("avbrott_orsak")))
    status_end: Series[Text] = pa.Field(isin=list(reference.OUTCOME_CLASSES))
    status_end_detail: Series[Text] = pa.Field(isin=list(reference.outcome_classes()))
    status_90d: Series[Text] = pa.Field(nullable=True, isin=list(reference.OUTCOME_CLASSES))
    status_90d_detail: Series[Text] = pa.Field(nullable=True, isin=list(reference.outcome_classes()))
    source_file: Series[Text]
    source_row: Series[Text]


class Outcome(_Staged):
    participation_id: Series[Text]
    cycle: Series[int] = pa.Field(ge=1, le=_LAST_CYCLE)
    timepoint: Series[Text] = pa.Field(isin=["end", "90d"])
    status_detail: Series[Text] = pa.Field(isin=list(reference.outcome_classes()))
    status_class: Series[Text] = pa.Field(isin=list(reference.OUTCOME_CLASSES))
    municipality_code: Series[Text] = pa.Field(nullable=True)
    source_kind: Series[Text] = pa.Field(isin=reference.provider_kinds())
    source_file: Series[Text]
    source_row: Series[Text]


class Intervention(_Staged):
    participation_id: Series[Text]
    intervention: Series[Text] = pa.Field(isin=list(reference.INTERVENTIONS))
    hours: Series[float] = pa.Field(nullable=True, ge=0, le=MAX_HOURS)

    @pa.check("hours", description="hours have at most two decimals")  # provider_rows.HOURS_RULE
    def _hundredths(cls, hours: Series[float]) -> Series[bool]:
        cents = hours * 100
        return (cents - cents.round()).abs() < 1e-6


class SurveyResponse(_Staged):
    cycle: Series[int] = pa.Field(ge=1, le=_LAST_CYCLE)
    response_id: Series[Text]
    municipality_code: Series[Text] = pa.Field(isin=list(reference.municipalities()))
    increased_chance: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=1, le=5)
    interpreter: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    source_file: Series[Text]
    source_row: Series[Text]


class Issue(_Staged):
    """A row of `data_quality_issues` as one cycle's ingest records it."""

    cycle: Series[int] = pa.Field(ge=1, le=_LAST_CYCLE)
    source_file: Series[Text]
    source_row: Series[Text] = pa.Field(nullable=True)  # NULL: the whole file
    severity: Series[Text] = pa.Field(isin=["rejected", "warning"])
    reason: Series[Text] = pa.Field(isin=sorted(set(reference.ROW_REASONS) | set(reference.FILE_REASONS)))
    detail: Series[Text]


class Audit(_Staged):
    """One row per raw file of the cycle; nothing lost (warehouse.md): every row read was
    loaded, rejected or collapsed as a duplicate."""

    source_file: Series[Text] = pa.Field(unique=True)
    source_kind: Series[Text] = pa.Field(isin=list(reference.SOURCE_KINDS))
    cycle: Series[int] = pa.Field(ge=1, le=_LAST_CYCLE)
    status: Series[Text] = pa.Field(isin=["loaded", "rejected"])
    rows_read: Series[int] = pa.Field(ge=0)
    rows_loaded: Series[int] = pa.Field(ge=0)
    rows_rejected: Series[int] = pa.Field(ge=0)
    rows_duplicate: Series[int] = pa.Field(ge=0)
    sha256: Series[Text] = pa.Field(nullable=True, str_length={"min_value": 64, "max_value": 64})
    reason: Series[Text] = pa.Field(nullable=True)  # why a whole file was rejected

    @pa.dataframe_check(description="rows_read = rows_loaded + rows_rejected + rows_duplicate")
    def nothing_lost(cls, df: pd.DataFrame) -> pd.Series:
        return df["rows_read"] == df["rows_loaded"] + df["rows_rejected"] + df["rows_duplicate"]


class Followup(_Staged):
    """Whether the cycle's provider delivered 90-day statuses (rule R9): one row."""

    cycle: Series[int] = pa.Field(ge=1, le=_LAST_CYCLE, unique=True)
    followed_up: Series[bool]
    provider: Series[Text] = pa.Field(isin=sorted({c.provider for c in reference.cycles().values()}))
    target_group: Series[Text] = pa.Field(isin=sorted({c.target_group for c in reference.cycles().values()}))


HARMONISED_MODELS = {
    "participations": Participation,
    "outcomes": Outcome,
    "interventions": Intervention,
    "survey_responses": SurveyResponse,
    "issues": Issue,
    "audit": Audit,
    "followup": Followup,
}
