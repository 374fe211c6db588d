"""Asset checks the UI shows.

* pandera: the harmonised models (validation.py) over every staged cycle.
  A staged file stamped as validated and unchanged since is not read: staging
  stamps each file it writes (its frame passed the model in memory), so a
  build's check reads only files changed or damaged since (`files_read`).
* Great Expectations: the suites of quality/expectations.py over the marts of
  this run's candidate warehouse (or the live one, when run on their own).
* no_personnummer: no value shaped like a personnummer in any text column of
  any table of that warehouse file (quality/personal_data.py).

All are blocking (a failure stops warehouse/published, so a bad warehouse is
never swapped in) but no_file_rejected_whole, a warning beside the pandera checks: a raw file
rejected whole is bad input, recorded, and the build goes on without it.
"""

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetCheckSpec,
    MetadataValue, asset_check, multi_asset_check,
)

from iga_pipeline import staging, validation
from iga_pipeline.defs.assets import (
    NO_FILE_REJECTED, NO_PERSONNUMMER, candidate_for, gx_check, harmonised_key, mart_key,
)
from iga_pipeline.defs.resources import IGAResource
from iga_pipeline.quality import personal_data
from iga_pipeline.quality.expectations import SUITES, data_docs_index, run_suites
from iga_pipeline.staging import locked, validate_staged
from iga_pipeline.warehouse import build


def _staged_files(iga: IGAResource, name: str) -> list[Path]:
    return sorted(iga.paths().staging.glob(f"cycle=*/{name}.parquet"),
                  key=lambda f: staging.cycle_of(f.parent.name))


def _in_words(model) -> str:
    """What a pandera model asks of the columns with a rule beyond their type."""
    def rule(check) -> str:
        s = check.statistics or {}
        if check.name == "isin":
            return "in its code list"
        if check.name == "greater_than_or_equal_to":
            return f">= {s['min_value']}"
        if check.name == "less_than_or_equal_to":
            return f"<= {s['max_value']}"
        if check.name == "str_length" and s.get("min_value") == s.get("max_value"):
            return f"{s['min_value']} characters long"
        if check.description:  # a rule written as a method says what it asks in its description
            return check.description
        return check.name.strip("_").replace("_", " ")

    schema = model.to_schema()
    rules = []
    for column, spec in schema.columns.items():
        said = (["unique"] if spec.unique else []) + [rule(check) for check in spec.checks]
        if said:
            rules.append(f"{column} {', '.join(said)}")
    rules += [check.description or check.name for check in schema.checks]  # over whole rows
    return "; ".join(rules)


def _pandera_result(iga: IGAResource, name: str, model) -> AssetCheckResult:
    files = _staged_files(iga, name)
    rows, cases, read = validate_staged(files, model)
    counts = {"rows": rows, "files": len(files), "files_read": read}
    if cases is None:
        return AssetCheckResult(asset_key=harmonised_key(name), check_name=f"pandera_{name}", passed=True,
                                metadata=counts)
    summary = cases.groupby(["file", "column", "check"], dropna=False).size().rename("failures").reset_index()
    failed = sorted(set(cases["file"]), key=lambda f: staging.cycle_of(f.split("/")[0]))
    return AssetCheckResult(asset_key=harmonised_key(name), check_name=f"pandera_{name}", passed=False, metadata={
        **counts, "failures": len(cases),
        # the cycles to ingest again, whichever cycle's run this check ran in
        "failed_files": MetadataValue.text(", ".join(failed)),
        # failure values are left out: they could be anything a sender wrote
        "by_check": MetadataValue.md(summary.to_markdown(index=False)),
    })


def _files_rejected_whole(iga: IGAResource) -> AssetCheckResult:
    """Every staged cycle's files rejected whole, from the staged audits (a file each), with the
    detail of each one's rejection, as the run's log gives it (`staging.rejected_whole`): a
    warning while any is, whichever cycle's run this is (an ingest of another cycle does not
    turn it green)."""
    rejected, damaged = [], []
    for f in _staged_files(iga, "audit"):
        try:
            audit = pd.read_parquet(f, columns=["cycle", "source_file", "status", "reason"])
        except (OSError, pa.ArrowException):  # pandera_audit names it too, as not readable
            damaged.append(f"{f.parent.name}/{f.name}")
            continue
        if (audit["status"] == "rejected").any():
            cycle = staging.cycle_of(f.parent.name)
            rejected += [(cycle, *whole) for whole in staging.rejected_whole(audit, _rejections_of_files(f))]
    table = pd.DataFrame(rejected, columns=["cycle", "source_file", "reason", "detail"])
    return AssetCheckResult(
        asset_key=harmonised_key("audit"), check_name=NO_FILE_REJECTED, passed=not rejected and not damaged,
        severity=AssetCheckSeverity.WARN,
        metadata={"rejected whole": MetadataValue.md(  # names as in the warehouse, reason codes
            (table.to_markdown(index=False) if rejected else "none")
            + (f"\n\nin the audits read; not readable: {', '.join(damaged)} (ingest their cycles again)"
               if damaged else ""))})


def _rejections_of_files(audit_file: Path) -> pd.DataFrame:
    """The cycle's staged rejections with no row (a few: pyarrow reads those alone); none from an
    issues file not readable, whose details are then '' (pandera_issues names it)."""
    columns = ["source_file", "source_row", "severity", "detail"]
    try:
        return pd.read_parquet(audit_file.with_name("issues.parquet"), columns=columns,
                               filters=pc.field("source_row").is_null() & (pc.field("severity") == "rejected"))
    except (OSError, pa.ArrowException):
        return pd.DataFrame(columns=columns)


# One step for the seven models and the warning (each a check of its own in the UI). Most runs
# read no staged file here (the stamps), so a step of its own per model was mostly Dagster's cost:
# 0.07-0.34 s each in one 100k incremental run of 2026-12-01, 0.02-0.03 s in a 1M one.
@multi_asset_check(
    specs=[*(AssetCheckSpec(
        f"pandera_{name}", asset=harmonised_key(name), blocking=True,
        description=f"Every staged row of every cycle has the columns and types of the pandera model "
                    f"{model.__name__} (validation.py), with {_in_words(model)}.")
        for name, model in validation.HARMONISED_MODELS.items()),
        AssetCheckSpec(
            NO_FILE_REJECTED, asset=harmonised_key("audit"), blocking=False,
            description="No raw file of any staged cycle was rejected whole. A warning, not blocking: "
                        "the build goes on without the file; its reason is in marts.ingest_audit.")],
)
def pandera_checks(iga: IGAResource):
    with locked(iga.paths().staging, shared=True):  # no cycle is swapped while they read
        for name, model in validation.HARMONISED_MODELS.items():
            yield _pandera_result(iga, name, model)
        yield _files_rejected_whole(iga)


def _checked_file(context, iga: IGAResource):
    """The file a warehouse check reads, whether it is this build's candidate (else the live
    warehouse: the check run on its own, after the publish) and the paths."""
    candidate, paths = candidate_for(context, iga)
    return (candidate, True, paths) if candidate.exists() else (paths.warehouse, False, paths)


def failure_details(metadata) -> str:
    """What a failed check found, from its metadata: Great Expectations' failed expectations
    with their counts ('failed'), pandera's failures by column and check ('by_check'), the
    columns with values shaped like a personnummer and their counts ('found'), or the files
    rejected whole with their reasons ('rejected whole', names as in the warehouse). None holds a
    value of the data, so `iga-pipeline build` prints them."""
    for name in ("failed", "by_check", "found", "rejected whole"):
        if name in metadata:
            return str(metadata[name].value)
    return "(no details recorded: see the check in the Dagster UI)"


@multi_asset_check(
    specs=[AssetCheckSpec(gx_check(s.mart), asset=mart_key(s.mart), blocking=True,
                          description=f"{s.summary[:1].upper()}{s.summary[1:]}. Great Expectations suite "
                                      f"marts.{s.mart}: " + "; ".join(
                                          f"{n}({k.get('column', '')})" for n, k in s.expectations))
           for s in SUITES],
)
def gx_mart_checks(context: AssetCheckExecutionContext, iga: IGAResource):
    target, is_candidate, paths = _checked_file(context, iga)
    results = run_suites(target, paths.warehouse_dir)
    docs = data_docs_index(paths.warehouse_dir)
    for s in SUITES:
        r = results[s.mart]
        if is_candidate:
            build.record_verdict(target, gx_check(s.mart), r.success)
        yield AssetCheckResult(
            asset_key=mart_key(s.mart), check_name=gx_check(s.mart), passed=r.success,
            severity=AssetCheckSeverity.ERROR,
            # "failed" only when the suite did: a passing check read "failed: none" in the UI
            metadata={"expectations": r.evaluated,
                      **({} if r.success else {"failed": MetadataValue.md(
                          "\n".join(f"- {f}" for f in r.failed) or "no count of rows: see data_docs")}),
                "data_docs": MetadataValue.path(str(docs)),
                "validated_file": MetadataValue.text("candidate" if is_candidate else "live"),
                "not_revalidated": MetadataValue.text(
                    f"{s.batch_by} {', '.join(map(str, r.unchanged))}: passed before, rows unchanged since"
                    if r.unchanged else "none")},
        )


@asset_check(
    # On the mart most read; it covers every table of the file all the same, as the marts step
    # builds them all at once. Blocking: a failure stops warehouse/published.
    asset=mart_key("fct_participation"), name=NO_PERSONNUMMER, blocking=True,
    description="No personnummer anywhere in the warehouse: no value in any text column of any table "
                "(marts, staging, reference, every schema) looks like a written personnummer or "
                "samordningsnummer (10 or 12 digits, with or without '-', '+' or a space before the "
                "last four). Not searched: the pipeline's own hex keys and digests ("
                + ", ".join(sorted(personal_data.EXEMPT)) + f"), and columns whose values are all "
                f"shorter than {personal_data.SHORTEST} characters. A failure names the columns and "
                "counts the values; it never shows them.",
)
def no_personnummer(context: AssetCheckExecutionContext, iga: IGAResource) -> AssetCheckResult:
    target, is_candidate, _ = _checked_file(context, iga)
    scan = personal_data.scan(target)
    found = "\n".join(f"| {s}.{t}.{c} | {n} |" for (s, t, c), n in scan.found.items())
    if is_candidate:
        build.record_verdict(target, NO_PERSONNUMMER, not found)
    return AssetCheckResult(passed=not found, metadata={
        "columns_scanned": len(scan.counts),
        "columns_skipped_by_length": len(scan.skipped_short),
        "columns_exempt": len(scan.exempt),
        "values_scanned": scan.values,
        "distinct_values_tested": scan.distinct_values,
        "found": MetadataValue.md(f"| table.column | values like a personnummer |\n|---|---|\n{found}"
                                  if found else "none"),
        "scanned_file": MetadataValue.text("candidate" if is_candidate else "live"),
    })
