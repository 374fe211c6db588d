"""One cycle's deliveries -> harmonised, validated frames (rules R1-R9).

`ingest_cycle` is pure Python over files: no Dagster, no warehouse. It reads
every delivery of one cycle through its adapter, rejects invalid rows (with
pandera, see validation.py), resolves duplicates, conflicts and orphans, and
returns the frames that staging writes as Parquet. All rules that need more
than one file (R5 conflicts, R6 orphans, R9 follow-up) stay within a cycle,
which is why the cycle is the partition.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from pandera.errors import SchemaError, SchemaErrors

from iga_pipeline import reference, validation
from iga_pipeline.checked_files import Checked, CheckedFiles
from iga_pipeline.pseudonym import PseudonymKey
from iga_pipeline.sources import providers, register, survey
from iga_pipeline.sources.provider_rows import MAX_HOURS, warning_issue
from iga_pipeline.sources.common import (
    ISSUE_COLUMNS, AdapterOutput, Delivery, FileRejected, discover, issues_frame, sha256_of,
)
from iga_pipeline.sources.masking import mask_split_values

log = logging.getLogger(__name__)

AUDIT_COLUMNS = ["source_file", "source_kind", "cycle", "status", "rows_read", "rows_loaded",
                 "rows_rejected", "rows_duplicate", "sha256", "reason"]


@dataclass
class CycleIngest:
    """One cycle's frames, each staged as `<name>.parquet`. `outcomes` (one row per provider
    row kept) is staged and checked for the record, but the warehouse does not load it: each
    participation carries its statuses at the end and at 90 days (`_with_statuses`)."""

    cycle: int
    participations: pd.DataFrame
    outcomes: pd.DataFrame
    interventions: pd.DataFrame
    survey_responses: pd.DataFrame
    followup: pd.DataFrame
    issues: pd.DataFrame
    audit: pd.DataFrame

    @classmethod
    def frame_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "cycle"]


class _Book:
    """A cycle's book of its files (`book` below): it reads each raw file (`read`, `read_checked`: once
    the file is still, from the checked-files store when unchanged) and keeps, per file,
    its issues, rows read and whole-file verdict, from which `_audit` makes the audit."""

    def __init__(self, kept: CheckedFiles | None = None) -> None:
        self.issues: list[pd.DataFrame] = []
        self.files: dict[str, dict] = {}
        self.kept = kept

    def begin(self, d: Delivery) -> str | None:
        """Start the file's audit row and hash the file; returns why it cannot be read, if so."""
        self.files[d.source_file] = {
            "source_file": d.source_file, "source_kind": d.kind, "cycle": d.cycle,
            "status": "loaded", "rows_read": 0, "reason": None,
            "sha256": None,
        }
        if not d.refused:
            try:
                self.files[d.source_file]["sha256"] = sha256_of(d.path)
            except OSError as e:  # vanished, or not readable by this user
                return f"the file could not be read ({type(e).__name__})"
        return None

    def reject_file(self, d: Delivery, reason: str, detail: str, rows_read: int = 0) -> None:
        self.files[d.source_file].update(status="rejected", reason=reason, rows_read=rows_read)
        self.add(issues_frame([{"source_file": d.source_file, "source_row": None,
                                "severity": "rejected", "reason": reason, "detail": detail}]))
        # not logged here: the harmonised step says it with its cycle (the command line printed it twice)

    def add(self, issues: pd.DataFrame) -> None:
        if len(issues):
            self.issues.append(issues[ISSUE_COLUMNS].astype("string").reset_index(drop=True))

    def read(self, d: Delivery, reader, key) -> AdapterOutput | None:
        """The adapter's output for one file, or None when the file is rejected whole."""
        return self._steadily(d, lambda: self._adapt(d, reader, key) if self._readable(d, reader, key) else None)

    def read_checked(self, d: Delivery, reader, key, schema_for, columns: list[str]) -> Checked | None:
        """Read one file and reject its invalid rows: every rule that needs this file alone.

        `schema_for(rows)` gives the row-rejection schema; `columns` are those of the
        accepted rows that the cycle's rules use. With `kept` (checked_files.py) a file
        checked before, byte for byte, is not read again."""
        got = self._steadily(d, lambda: self._checked_once(d, reader, key, schema_for, columns))
        if got is None:
            return None
        checked, sha256, fresh = got
        if fresh and self.kept is not None:
            self.kept.store(d, sha256, checked)
        return checked

    def _steadily(self, d: Delivery, attempt):
        """`attempt()` (hash the file, then read it) again while the file changes meanwhile: its
        size, mtime, inode or inode change time differ from before the hash to after the read
        (V8: a file swapped during its read and put back was loaded with the other version's
        rows under its own sha256, and kept so). A change of its metadata alone (a `chmod`, a
        backup's hard link) costs a second read; a file still being written after
        READ_ATTEMPTS is rejected for this build, and its next change asks for another."""
        for _ in range(READ_ATTEMPTS):
            version, first = _version(d.path), len(self.issues)
            result = attempt()
            if _version(d.path) == version:
                return result
            del self.issues[first:]
        self.reject_file(d, "unreadable_file", f"the file changed while it was read, {READ_ATTEMPTS} times "
                         "(still being written?): the build after its next change reads it again",
                         rows_read=self.files[d.source_file]["rows_read"])
        return None

    def _checked_once(self, d: Delivery, reader, key, schema_for, columns: list[str]):
        """(Checked, sha256, whether it was read now rather than kept), or None."""
        if not self._readable(d, reader, key):
            return None
        sha256 = self.files[d.source_file]["sha256"]
        entry = self.kept.load(d, sha256) if self.kept is not None else None
        if entry is not None:
            self.files[d.source_file]["rows_read"] = entry.rows_read
            self.add(entry.issues)
            return entry, sha256, False
        first = len(self.issues)
        out = self._adapt(d, reader, key)
        if out is None:
            return None
        rejected = validation.rejections(out.rows, schema_for(out.rows), d.source_file)
        self.add(rejected)
        issues = (pd.concat(self.issues[first:], ignore_index=True) if len(self.issues) > first
                  else issues_frame()[ISSUE_COLUMNS].astype("string"))
        issues["detail"] = mask_split_values(issues)  # masked before it is kept
        self.issues[first:] = [issues] if len(issues) else []
        checked = Checked(
            rows=out.rows.drop(index=rejected.index)[[c for c in columns if c in out.rows]],
            interventions=out.interventions, gives_90d_status=out.gives_90d_status,
            rows_read=self.files[d.source_file]["rows_read"], issues=issues)
        return checked, sha256, True

    def _readable(self, d: Delivery, reader, key) -> bool:
        unreadable = self.begin(d)
        if unreadable:
            self.reject_file(d, "unreadable_file", unreadable)
            return False
        if d.problem:
            self.reject_file(d, *d.problem, rows_read=0 if d.refused else self._rows_in(d, reader, key))
            return False
        return True

    @staticmethod
    def _rows_in(d: Delivery, reader, key) -> int:
        """The data rows of a file rejected for its path alone (a register in a folder of no
        project municipality, a provider's file for another provider's cycle), so that the
        audit counts them as read and rejected: read by its kind's adapter, then dropped."""
        try:
            return _rows_read(reader(d, key))
        except FileRejected as e:
            return e.rows_read
        except Exception:  # noqa: BLE001 - unreadable as well: nothing to count
            return 0

    def _adapt(self, d: Delivery, reader, key) -> AdapterOutput | None:
        """The adapter's output, or None when it rejects the file whole."""
        try:
            out = reader(d, key)
        except FileRejected as e:
            self.reject_file(d, e.reason, e.detail, e.rows_read)
            return None
        except Exception as e:  # noqa: BLE001 - one broken file must not stop the build
            # The message is left out on purpose: it could quote the file's content.
            log.error("unexpected %s while reading %s at:\n%s", type(e).__name__, d.source_file,
                      "".join(traceback.format_tb(e.__traceback__)))
            self.reject_file(d, "unreadable_file", f"the file could not be parsed ({type(e).__name__})")
            return None
        self.files[d.source_file]["rows_read"] = _rows_read(out)
        self.add(out.issues)
        return out


def _rows_read(out: AdapterOutput) -> int:
    """A file's data rows: those the adapter turned into rows and those it found malformed."""
    return len(out.rows) + int((out.issues["severity"] == "rejected").sum())


READ_ATTEMPTS = 3  # reads of a file that changes while it is read, before it is rejected for the build


def _version(path: Path) -> tuple | None:
    """What changes when a file is written, replaced, or replaced and put back (the inode's
    change time: a rename or a link changes it, and so does setting the mtime back)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


def _repeats(rows: pd.DataFrame, content: list[str], key: str) -> tuple[pd.Series, pd.Series]:
    """R5 over `rows`: `dup`, each row identical in `content` to an earlier one (counted once),
    and `clash`, every row of a `key` that has differing rows (all rejected, an identical copy
    of one of them included: it counts nowhere either)."""
    dup = rows.duplicated(content, keep="first")
    distinct = rows[~dup]
    return dup, rows[key].isin(distinct.loc[distinct[key].duplicated(), key])


def _row_issues(frame: pd.DataFrame, severity: str, reason: str, detail) -> pd.DataFrame:
    return pd.DataFrame({
        "source_file": frame["source_file"], "source_row": frame["source_row"],
        "severity": severity, "reason": reason, "detail": detail,
    }, columns=ISSUE_COLUMNS).astype("string")


# --- registers (R1-R5) ---------------------------------------------------------

# A row's content for R5, the names included (as the adapter's numbers: never the names).
_REGISTER_CONTENT = ["person_key", "kon", "fodelseland", "malgrupp", "cykel",
                     "inskrivningsdatum", "utskrivningsdatum", "avbrott_orsak", "name_spelling"]


def _registers(cycle: int, deliveries: list[Delivery], key: PseudonymKey, book: _Book) -> pd.DataFrame:
    accepted = []
    schema = validation.register_schema(cycle)
    for d in deliveries:
        checked = book.read_checked(d, register.read, key, lambda rows: schema,
                                    ["source_row", "municipality_code", *_REGISTER_CONTENT])
        if checked is not None:
            accepted.append(checked.rows.assign(source_file=d.source_file))
    if not accepted:
        return _harmonise_register(pd.DataFrame(columns=[*_REGISTER_CONTENT, "source_file",
                                                         "source_row", "municipality_code"]), cycle)
    rows = pd.concat(accepted, ignore_index=True)

    # R5: identical rows in one file count once; different rows for one participation (two
    # registers, or two rows) are all rejected
    dup, clash = _repeats(rows, ["source_file", "municipality_code", *_REGISTER_CONTENT], "person_key")
    book.add(_row_issues(rows[dup & ~clash], "warning", "duplicate_row",
                         "identical to an earlier row of the same file; counted once"))
    if clash.any():
        where = rows[clash].groupby("person_key")["source_file"].agg(
            lambda files: ", ".join(sorted(set(files))))
        detail = rows.loc[clash, "person_key"].map(where).map(
            lambda files: f"the person has differing register rows for cycle {cycle} in: {files}")
        book.add(_row_issues(rows[clash], "rejected", "conflicting_enrollment", detail.values))
    return _harmonise_register(rows[~dup & ~clash], cycle)


def _harmonise_register(rows: pd.DataFrame, cycle: int) -> pd.DataFrame:
    regions = reference.birth_regions()
    return pd.DataFrame({
        "participation_id": participation_ids(rows["person_key"], cycle),
        "person_key": rows["person_key"],
        "cycle": cycle,
        "municipality_code": rows["municipality_code"],
        "gender": rows["kon"],
        "birth_region": rows["fodelseland"].map(regions).fillna("unknown"),
        "target_group": rows["malgrupp"],
        "enrolled_on": pd.to_datetime(rows["inskrivningsdatum"], format="%Y-%m-%d"),
        "exited_on": pd.to_datetime(rows["utskrivningsdatum"], format="%Y-%m-%d"),
        "completed": rows["avbrott_orsak"].isna(),
        "dropout_reason": rows["avbrott_orsak"],
        "source_file": rows["source_file"],
        "source_row": rows["source_row"],
    }).reset_index(drop=True)


def participation_id_prefix(cycle: int) -> str:
    """How every participation_id of a cycle begins: the staged files' checks hold every id to
    its folder's cycle (staging.py), and an incremental build finds a cycle's rows of
    marts.fct_intervention by it (warehouse/build.py, `_of_cycles`)."""
    return f"c{cycle}-"


def participation_ids(person_keys: pd.Series, cycle: int) -> pd.Series:
    """A stable, non-identifying id for (person, cycle)."""
    return (participation_id_prefix(cycle) + person_keys.astype("string").str.slice(0, 16)).astype("string")


# --- providers (R4-R7, R9) -------------------------------------------------------

class _ProviderFile(NamedTuple):
    """What one provider delivery gives its cycle."""
    outcomes: pd.DataFrame  # its accepted status rows
    interventions: pd.DataFrame
    followed_up: bool | None  # whether it is a follow-up (R9); None: it cannot say
    disagreed: set  # the (participation_id, timepoint) pairs whose rows disagreed (R5)


def _provider(d: Delivery, key: PseudonymKey, book: _Book,
              participations: pd.DataFrame) -> _ProviderFile | None:
    """One provider delivery, or None when it was rejected whole."""
    def schema_for(rows):
        return validation.provider_schema(d.kind, [tp for tp in ("end", "90d") if f"status_{tp}" in rows])

    checked = book.read_checked(d, providers.READERS[d.kind], key, schema_for,
                                ["source_row", "person_key", "municipality_code", "status_end", "status_90d"])
    if checked is None:
        return None
    rows = checked.rows.assign(source_file=d.source_file)
    timepoints = [tp for tp in ("end", "90d") if f"status_{tp}" in rows]

    # R6: no accepted register row for this person in this cycle.
    orphan = ~rows["person_key"].isin(participations["person_key"])
    book.add(_row_issues(rows[orphan], "rejected", "orphan_outcome",
                         f"no accepted register row for this person in cycle {d.cycle}"))
    rows = rows[~orphan]

    # R5: several rows for one participation in one delivery. They agree when the codes
    # mean the same status (Pethö's empty cell and "Okänt" are both unknown).
    codes = reference.outcome_codes(d.kind)
    details = {tp: rows[f"status_{tp}"].fillna("").map(codes).fillna("unknown") for tp in timepoints}
    said = rows.assign(**{f"_said_{tp}": details[tp] for tp in timepoints})
    dup, conflicting = _repeats(said, ["person_key", *(f"_said_{tp}" for tp in timepoints)], "person_key")
    book.add(_row_issues(rows[conflicting], "rejected", "conflicting_duplicate",
                         "rows for the same participation in this delivery disagree on the status"))
    disagreed = {(pid, tp) for pid in participation_ids(rows.loc[conflicting, "person_key"], d.cycle)
                 for tp in timepoints}
    rows, dup = rows[~conflicting], dup[~conflicting]
    book.add(_row_issues(rows[dup], "warning", "duplicate_row",
                         "repeats the status of an earlier row for the same participation; counted once, "
                         "its interventions kept"))
    owners = pd.DataFrame({"source_row": rows["source_row"],  # duplicates too: their interventions count
                           "participation_id": participation_ids(rows["person_key"], d.cycle)})
    rows = rows[~dup]

    # R7: the provider's municipality differs from the register's (used, with a warning).
    register_code = rows["person_key"].map(pd.Series(participations["municipality_code"].to_numpy(),
                                                     index=participations["person_key"]))
    mismatch = rows["municipality_code"].notna() & (rows["municipality_code"] != register_code)
    book.add(_row_issues(rows[mismatch], "warning", "municipality_mismatch",
                         "the provider names another municipality than the register; register kept"))

    pid = owners.loc[rows.index, "participation_id"]
    classes = reference.outcome_classes()
    outcomes = []
    for tp in timepoints:
        detail = details[tp].loc[rows.index]
        outcomes.append(pd.DataFrame({
            "participation_id": pid, "cycle": d.cycle, "timepoint": tp,
            "status_detail": detail, "status_class": detail.map(classes),
            "municipality_code": rows["municipality_code"], "source_kind": d.kind,
            "source_file": d.source_file, "source_row": rows["source_row"],
        }))
    if d.kind == "petho" and not checked.gives_90d_status:
        outcomes = outcomes[:1]  # an empty 90-day column is no follow-up (R9)
    inter = _interventions(checked.interventions, owners, d, book)

    # R9 as raw-deliveries.md says it per provider (decisions.md, "Followed up"): Pethö's cycle when
    # a row gives a `Status 90 dagar` (the adapter says; its workbook before the follow-up is normal);
    # Folkuniversitetet's and Åstorp's when the `_90dagar` file is delivered (here: not rejected whole),
    # even one that gives no status, whose completers are then all unknown at 90 days.
    followed_up = True if d.timepoint == "90d" else checked.gives_90d_status
    if d.timepoint == "90d" and not checked.gives_90d_status:
        book.add(issues_frame([warning_issue(
            d, None, "missing_outcome", f"the 90-day file gives no status: cycle {d.cycle} is followed up "
            "(its file was delivered), every completer unknown at 90 days")]))
    return _ProviderFile(pd.concat(outcomes, ignore_index=True), inter, followed_up, disagreed)


def _interventions(inter: pd.DataFrame, owners: pd.DataFrame, d: Delivery, book: _Book) -> pd.DataFrame:
    """A delivery's interventions per participation, from its rows still accepted (`owners`:
    source_row -> participation_id, rows collapsed as duplicates included).

    The same intervention twice in one row (an Åstorp `insatser` list) is two periods of
    it: one intervention, its hours added up, and a warning. The hours are left empty when
    a period has none, or when the sum is more than one intervention can last (as a single
    period's would be). Over a participation's duplicate rows each intervention counts once,
    with the earliest row's hours."""
    inter = inter.merge(owners, on="source_row")  # the rows the rules rejected take theirs along
    repeats = inter.duplicated(["source_row", "intervention"]).any()
    if repeats:
        hours = inter.groupby(["source_row", "participation_id", "intervention"], sort=False)["hours"]
        inter = pd.DataFrame({"hours": hours.sum(min_count=1).round(2), "given": hours.size(),
                              "with_hours": hours.count()}).reset_index()
        # each period passed hours_of; their sum may still be more than one intervention can last
        inter["too_many"] = inter["hours"].gt(MAX_HOURS).fillna(False).astype(bool)
        inter["hours"] = inter["hours"].where((inter["with_hours"] == inter["given"]) & ~inter["too_many"])
    inter = inter.drop_duplicates(["participation_id", "intervention"])  # the earliest row's, in file order
    if repeats:
        summed = inter[inter["given"] > 1]
        how = pd.Series("their hours are added up", index=summed.index)
        how[summed["too_many"]] = f"their hours add up to more than {MAX_HOURS:,}, so its hours are left empty"
        # a period without hours is said rather than a sum past the limit (that sum is partial)
        how[summed["with_hours"] < summed["given"]] = "not every one has hours, so its hours are left empty"
        book.add(pd.DataFrame({
            "source_file": d.source_file, "source_row": summed["source_row"], "severity": "warning",
            "reason": "invalid_code",
            "detail": "insatser: " + summed["intervention"] + " given " + summed["given"].astype(str)
                      + " times in this row; " + how}, columns=ISSUE_COLUMNS))
    return inter[["participation_id", "intervention", "hours"]]


# --- survey ------------------------------------------------------------------------

def _surveys(cycle: int, deliveries: list[Delivery], key: PseudonymKey, book: _Book) -> pd.DataFrame:
    # Read whole every time, not kept by checked_files.py: only cycle 3 has a survey, and at a
    # million participations its file has 12,555 lines of the 2.6 million raw rows.
    frames = []
    for d in deliveries:
        out = book.read(d, survey.read, key)
        if out is None:
            continue
        rows = out.rows.assign(source_file=d.source_file)
        rejected = validation.rejections(rows, validation.survey_schema(), d.source_file)
        book.add(rejected)
        rows = rows.drop(index=rejected.index)
        # the same answer: tolk compares case-insensitively (its schema accepts any case; the cells
        # come stripped, and okad_mojlighet is exactly one of '1'..'5' or empty)
        # one answer id with different answers: which is the questionnaire would be a guess (R4);
        # all are rejected (as for registers, R5)
        dup, conflict = _repeats(rows.assign(_tolk=rows["tolk"].str.casefold()),
                                 ["svar_id", "kommunkod", "okad_mojlighet", "_tolk"], "svar_id")
        book.add(_row_issues(rows[dup & ~conflict], "warning", "duplicate_row",
                             "identical to an earlier answer; counted once"))
        book.add(_row_issues(rows[conflict], "rejected", "conflicting_duplicate",
                             "the answer id appears again with other answers; none of them counted"))
        rows = rows[~dup & ~conflict]
        frames.append(pd.DataFrame({
            "cycle": cycle, "response_id": rows["svar_id"], "municipality_code": rows["kommunkod"],
            "increased_chance": pd.to_numeric(rows["okad_mojlighet"]).astype("Int64"),
            "interpreter": rows["tolk"].str.casefold().map({"ja": True, "nej": False}).astype("boolean"),
            "source_file": d.source_file, "source_row": rows["source_row"],
        }))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in [
            ("cycle", "int64"), ("response_id", "string"), ("municipality_code", "string"),
            ("increased_chance", "Int64"), ("interpreter", "boolean"),
            ("source_file", "string"), ("source_row", "string")]})
    return pd.concat(frames, ignore_index=True)


# --- the cycle -----------------------------------------------------------------------

def deliveries_for_cycle(raw_root: Path, cycle: int, key: PseudonymKey | None = None) -> list[Delivery]:
    return [d for d in discover(raw_root, key) if d.cycle == cycle]


def ingest_cycle(raw_root: Path, cycle: int, key: PseudonymKey, kept: CheckedFiles | None = None) -> CycleIngest:
    """`kept`: each file's checked rows from earlier builds (checked_files.py), if any."""
    deliveries = deliveries_for_cycle(raw_root, cycle, key)
    key = key.remembering()  # the cycle's files name the same people: hash each one once
    book = _Book(kept)
    by_kind = {kind: [d for d in deliveries if d.kind == kind] for kind in reference.SOURCE_KINDS}

    participations = _registers(cycle, by_kind["register"], key, book)

    outcome_frames, intervention_frames, followed, disagreed = [], [], [], set()
    info = reference.cycles()[cycle]
    end_read = False  # an end-of-cycle delivery of the cycle's provider, read (not rejected whole)
    for kind in ("petho", "folkuniversitetet", "astorp"):
        for d in by_kind[kind]:
            got = _provider(d, key, book, participations)
            if got is None:  # the file was rejected whole
                continue
            outcome_frames.append(got.outcomes)
            intervention_frames.append(got.interventions)
            end_read |= kind == info.source_kind and d.timepoint in ("end", "both")
            if got.followed_up is not None and kind == info.source_kind:
                followed.append(got.followed_up)
            disagreed |= got.disagreed
            del got
    followed_up = any(followed)
    outcomes = (pd.concat(outcome_frames, ignore_index=True) if outcome_frames
                else pd.DataFrame(columns=list(validation.Outcome.to_schema().columns)))
    interventions = (pd.concat(intervention_frames, ignore_index=True).drop_duplicates(
        ["participation_id", "intervention"]) if intervention_frames
        else pd.DataFrame(columns=["participation_id", "intervention", "hours"]))
    del outcome_frames, intervention_frames  # the parts: at 10M participations, gigabytes

    participations = _with_statuses(participations, outcomes, followed_up, info, book, disagreed, end_read)
    responses = _surveys(cycle, by_kind["survey"], key, book)

    issues = (pd.concat(book.issues, ignore_index=True) if book.issues else issues_frame())
    issues["detail"] = mask_split_values(issues)  # again: files read without read_checked
    issues.insert(0, "cycle", cycle)
    audit = _audit(book, issues, participations, outcomes, responses)
    followup = pd.DataFrame({"cycle": [cycle], "followed_up": [followed_up],
                             "provider": [info.provider], "target_group": [info.target_group]})
    return CycleIngest(
        cycle=cycle,
        participations=_modelled(validation.Participation, participations, cycle),
        outcomes=_modelled(validation.Outcome, outcomes, cycle),
        interventions=_modelled(validation.Intervention, interventions, cycle),
        survey_responses=_modelled(validation.SurveyResponse, responses, cycle),
        followup=_modelled(validation.Followup, followup, cycle),
        issues=_modelled(validation.Issue, issues, cycle),
        audit=_modelled(validation.Audit, audit, cycle),
    )


class HarmonisedModelError(RuntimeError):
    """A cycle's harmonised frame failed its pandera model: a fault of the ingest (the rules
    before it should have rejected or warned about the rows), not of a raw file."""


def _modelled(model, frame: pd.DataFrame, cycle: int) -> pd.DataFrame:
    """`model.validate(frame)`, its error said without pandera's failure cases: those are
    the frame's values (an amount of hours, an issue's text), which came from raw files.
    pandera raises SchemaError for a failed check, SchemaErrors (several) for a value it
    cannot convert to the column's type or a column the model does not have."""
    try:
        return model.validate(frame)
    except SchemaError as err:
        column = getattr(err.schema, "name", None)
        failed = [(column if column != model.__name__ else None,
                   getattr(err.check, "name", err.check),  # a Check, or the name of a frame-level one
                   len(err.failure_cases) if isinstance(err.failure_cases, pd.DataFrame) else None)]
    except SchemaErrors as err:
        counts = err.failure_cases.groupby(["column", "check"], dropna=False).size()
        failed = [(None if pd.isna(column) else column, check, n) for (column, check), n in counts.items()]
    said = "; ".join(f"{f'column {column!r}' if column else 'the frame'}, check {check}"
                     + (f", {n} value(s)" if n else "") for column, check, n in failed)
    raise HarmonisedModelError(
        f"cycle {cycle}: the harmonised {model.__name__} frame failed its model: {said} (the values are "
        "not shown: they came from raw files). A fault of the ingest, not of a delivery: please report it")


def _with_statuses(participations: pd.DataFrame, outcomes: pd.DataFrame, followed_up: bool,
                   info: reference.Cycle, book: _Book, disagreed: set[tuple[str, str]],
                   end_read: bool) -> pd.DataFrame:
    """R8/R9: each participation's status at cycle end and at 90 days. `disagreed`: the
    (participation_id, timepoint) pairs whose provider rows were conflicting_duplicate.
    `end_read`: whether an end-of-cycle delivery of the cycle's provider was read; if none was,
    each completer's missing_outcome says so, not "no valid row" (a review's find: a provider's
    end-of-cycle file that never came left only warnings like a row missing from it)."""
    p = participations.copy()
    classes = reference.outcome_classes()
    for tp, column in (("end", "status_end"), ("90d", "status_90d")):
        got = outcomes[outcomes["timepoint"] == tp].set_index("participation_id")["status_detail"]
        detail = p["participation_id"].map(got)
        if tp == "90d" and not followed_up:
            p[f"{column}_detail"] = pd.Series(pd.NA, index=p.index, dtype="string")
            p[column] = pd.Series(pd.NA, index=p.index, dtype="string")
            continue
        missing = p["completed"] & (detail.isna() | (detail == "unknown"))
        when = "at the end of the cycle" if tp == "end" else "at 90 days"
        conflict = p.loc[missing, "participation_id"].isin({pid for pid, at in disagreed if at == tp})
        why = pd.Series(np.select(
            [detail[missing].eq("unknown").fillna(False).to_numpy(bool), conflict.to_numpy(bool)],
            ["the provider reported it as unknown",
             f"the rows from {info.provider} disagree (conflicting_duplicate)"],
            f"no valid row from {info.provider}" if tp == "90d" or end_read
            else f"no end-of-cycle delivery from {info.provider} was read (none came, or it was "
                 "rejected whole)"), dtype="string")
        book.add(_row_issues(p[missing], "warning", "missing_outcome",
                             ("completer without a valid status " + when + ": " + why).values))
        p[f"{column}_detail"] = detail.fillna("unknown").astype("string")
        p[column] = p[f"{column}_detail"].map(classes).astype("string")
    return p


def _audit(book: _Book, issues: pd.DataFrame, participations: pd.DataFrame, outcomes: pd.DataFrame,
           responses: pd.DataFrame) -> pd.DataFrame:
    """One row per file: `book`'s verdict, with the rows loaded, rejected and collapsed as
    duplicates counted from the cycle's frames and `issues` (all of the cycle's)."""
    row_issues = issues[issues["source_row"].notna()]
    rejected = row_issues[row_issues["severity"] == "rejected"].groupby("source_file")["source_row"].nunique()
    duplicate = row_issues[row_issues["reason"] == "duplicate_row"].groupby("source_file")["source_row"].nunique()
    used = [f[["source_file", "source_row"]].astype("string")
            for f in (participations, outcomes, responses) if len(f)]
    loaded = (pd.concat(used).drop_duplicates().groupby("source_file").size() if used
              else pd.Series(dtype="int64"))
    audit = pd.DataFrame(list(book.files.values()))
    if audit.empty:
        return pd.DataFrame(columns=AUDIT_COLUMNS)
    f = audit["source_file"]
    whole = audit["status"] == "rejected"
    audit["rows_loaded"] = f.map(loaded).fillna(0).astype(int).where(~whole, 0)
    audit["rows_rejected"] = f.map(rejected).fillna(0).astype(int).where(~whole, audit["rows_read"])
    audit["rows_duplicate"] = f.map(duplicate).fillna(0).astype(int).where(~whole, 0)
    return audit[AUDIT_COLUMNS]
