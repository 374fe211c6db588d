"""The evaluator's page: warehouse/report/index.html, one self-contained file.

Everything comes from one warehouse file, opened read-only (in a build, the
run's candidate, before it is published with the report): the marts
of the evaluation, the core marts and the reference tables. Charts are PNGs
rendered with matplotlib's Agg canvas (no pyplot state) and embedded as data
URIs; the CSS is inline; nothing is fetched from the network.

    html = render_report(con)                      # a connection to any warehouse
    write_report(warehouse_path, out_path)          # read-only open, atomic write
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from iga_pipeline import durable, reference, warm_up
from iga_pipeline.evaluation import queries
from iga_pipeline.evaluation.benchmarks import verdict, wilson_interval
from iga_pipeline.evaluation.common import half_up_percent, scope_cycles
from iga_pipeline.evaluation.goals import coverage_rule, range_without_follow_up
from iga_pipeline.evaluation.reconciliation import (
    CYCLE_ROW, TABLE1_COLUMNS, printed_above_subtotal, subtotal_cycles,
)
from iga_pipeline.evaluation.suppression import PUBLISHED, applies
from iga_pipeline.warehouse.duck import open_readonly

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "report.html.j2"

# Swedish terms of the report (and the register's code lists) for the page.
SCOPE_LABEL = {"followed_up": "Delsumma", "all": "TOTALT"}
STATUS_LABEL = {"met": "met", "not_met": "not met", "not_assessable": "not assessable"}
VERDICT_LABEL = {"above": "above", "below": "below", "inconclusive": "cannot tell"}
TARGET_GROUP_LABEL = {"flykting": "refugees (flyktingar)",
                      "ifo": "IFO clients with an immigrant background (Individ- och familjeomsorgen)",
                      "mixed": "mixed"}
DROPOUT_LABEL = {"flytt": "Flytt (moved away)", "motivation": "Motivation (lack of motivation)",
                 "annat": "Sjukdom, föräldraledighet or annat (illness, parental leave or other)"}
# Health and family are not shown on their own: a provider period can have one such
# leaver, and the page is shared. They are counted with `annat`; the warehouse keeps
# each reason (fct_participation.dropout_reason) for those allowed to read it.
DROPOUT_GROUP = {"sjukdom": "annat", "foraldraledighet": "annat"}
TABLE1_LABEL = {  # Table 1's column headings, as printed
    "completed": "Deltagare",
    "work_at_end": "Arbete, antal (vid cykelns slut)",
    "share_work_at_end": "Arbete, andel (vid cykelns slut)",
    "studies_at_end": "Studier, antal (vid cykelns slut)",
    "share_studies_at_end": "Studier, andel (vid cykelns slut)",
    "share_total_at_end": "Totalt, andel (vid cykelns slut)",
    "work_90d": "Arbete, antal (efter 90 dagar)",
    "share_work_90d": "Arbete, andel (efter 90 dagar)",
    "studies_90d": "Studier, antal (efter 90 dagar)",
    "share_studies_90d": "Studier, andel (efter 90 dagar)",
    "share_total_90d": "Totalt, andel (efter 90 dagar)",
}
ISSUE_LABEL = {
    "invalid_personnummer": "invalid personnummer", "invalid_date": "unparseable date",
    "invalid_code": "code outside its list", "missing_required": "missing required value",
    "cycle_mismatch": "cykel differs from the file name",
    "conflicting_enrollment": "conflicting register rows", "conflicting_duplicate":
    "provider rows disagreeing on the status", "orphan_outcome": "provider row without a register row",
    "duplicate_row": "identical row repeated (counted once)",
    "missing_outcome": "completer without a valid status", "municipality_mismatch":
    "provider's municipality differs from the register's", "unreadable_file": "unreadable file",
    "missing_columns": "missing columns", "unknown_municipality": "unknown municipality",
    "provider_cycle_mismatch": "provider delivered a cycle it did not run",
    "unexpected_file": "file matching no delivery pattern, part of a delivery the contract does not read, "
                       "or a copy of another file",
}
STATUSLESS_FILE_LABEL = "90-day file giving no status (its completers unknown at 90 days)"  # missing_outcome, no row
# A warning that shares a row reason but not its meaning: the row is loaded, one value of it set aside.
WARNING_LABEL = {
    "invalid_code": "row kept, a value of it set aside or summed (hours not a number, an unknown "
                    "intervention or municipality, insatser not a list, a value given twice)",
}


def issue_label(reason: str, severity: str, statusless_file: bool) -> str:
    """The report's words for a group of data_quality_issues."""
    if statusless_file:
        return STATUSLESS_FILE_LABEL
    if severity == "warning" and reason in WARNING_LABEL:
        return WARNING_LABEL[reason]
    return ISSUE_LABEL.get(reason, reason)


BENCHMARK_LABEL = {  # short names for the page; the marts keep the full descriptions
    "ESF_NATIONAL": "ESF projects, whole Sweden (\"nearly a third\")",
    "ESF_SYDSVERIGE": "ESF projects, South Sweden",
    "ESF_FOREIGN_BORN_EUROPE": "foreign-born ESF participants born in Europe",
    "ESF_FOREIGN_BORN_MIN": "foreign-born ESF participants, every birth region",
}
# A benchmark about some birth regions (reference/benchmarks.csv) is also compared like for like.
GROUP_LABEL = {"europe": "born in Europe outside Sweden", "europe outside_europe": "born outside Sweden"}
KIND_LABEL = {"register": "municipality registers", "petho": "Pethö Consulting",
              "folkuniversitetet": "Folkuniversitetet", "astorp": "Åstorps kommun",
              "survey": "survey (enkät)"}


# ------------------------------------------------------------------ formatting

def thousands(n: int | float | None) -> str:
    """29090968 -> '29 090 968' (a space every three digits, never a long digit run); a
    fraction rounded half up, as percentages are (R11): 2.5 -> '3', not Python's '2'."""
    if n is None or pd.isna(n):
        return "–"
    whole = int(Decimal(repr(float(n))).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return f"{whole:,}".replace(",", " ")


def pct(x: float | None) -> str:
    """A share as whole percent, rounded half up (rule R11): 0.125 -> '13%'.

    Rounded from the float's shortest decimal form, so a share that is exactly
    half a percent (1/8) rounds up, as it would on paper."""
    if x is None or pd.isna(x):
        return "–"
    percent = (Decimal(repr(float(x))) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return f"{percent}%"


def rounding_note(value: float | None, line: float) -> str:
    """What whole percents hide where a verdict rests on it: '' unless `value` prints as `line`
    but is not equal to it ('45%' not meeting a 45% target: 'below 45% before rounding')."""
    if value is None or pd.isna(value) or value == line or pct(value) != pct(line):
        return ""
    return f"{'above' if value > line else 'below'} {pct(line)} before rounding"


def interval(k, n, target: float | None = None) -> dict:
    """The 95% Wilson score interval of k of n as the page shows it, and whether it includes
    `target` (the data cannot then tell on which side of the target the true share lies)."""
    ci = wilson_interval(int(k), int(n)) if k is not None and n else None
    if ci is None:
        return {"ci": None, "includes_target": False}
    return {"ci": f"{pct(ci[0])}–{pct(ci[1])}",
            "includes_target": target is not None and ci[0] <= target <= ci[1]}


def whole_pct(n: int | None) -> str:
    return "–" if n is None or pd.isna(n) else f"{int(n)}%"


def sek(x: float | None) -> str:
    return "–" if x is None or pd.isna(x) else f"{thousands(x)} SEK"


def fingerprint(audit_hashes: pd.DataFrame) -> str:
    """sha256 over `<sha256>  <source_file>` lines (sha256sum's format), sorted by file;
    a file refused unopened (no hash) contributes `-` in place of its hash."""
    lines = "".join(f"{_none(r.sha256) or '-'}  {r.source_file}\n"
                    for r in audit_hashes.sort_values("source_file").itertuples())
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def grouped(hexdigest: str, size: int = 8) -> str:
    return " ".join(hexdigest[i:i + size] for i in range(0, len(hexdigest), size))


def _none(v):
    return None if v is None or (not isinstance(v, str) and pd.isna(v)) else v


# ------------------------------------------------------------------ eras

@dataclass(frozen=True)
class Era:
    label: str
    first: int
    last: int

    @property
    def cycles(self) -> str:
        return f"{self.first}" if self.first == self.last else f"{self.first}-{self.last}"


def named_cycles(cycles: list) -> str:
    """[8] -> 'cycle 8', [6, 8] -> 'cycles 6 and 8', [3, 6, 8] -> 'cycles 3, 6 and 8'."""
    names = [str(c) for c in cycles]
    if len(names) < 2:
        return "cycle " + "".join(names)
    return f"cycles {', '.join(names[:-1])} and {names[-1]}"


def cycle_ranges(cycles: list[int]) -> str:
    """[1, 2, 3, 5] -> '1-3,5', as outcomes_summary labels its scopes; '' for none."""
    runs: list[list[int]] = []
    for c in sorted(cycles):
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def eras(cycles: pd.DataFrame, column: str, labels: dict[str, str] | None = None) -> list[Era]:
    """Runs of consecutive cycles with the same value of `column`."""
    out: list[Era] = []
    for row in cycles.sort_values("cycle").itertuples():
        value = getattr(row, column)
        label = (labels or {}).get(value, value)
        if out and out[-1].label == label and out[-1].last == row.cycle - 1:
            out[-1] = Era(label, out[-1].first, int(row.cycle))
        else:
            out.append(Era(label, int(row.cycle), int(row.cycle)))
    return out


# ------------------------------------------------------------------ charts

MATPLOTLIB = "matplotlib.backends.backend_agg"  # the last of the charts' modules a warm-up imports


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def outcome_figure(cycles: pd.DataFrame, benchmarks: pd.DataFrame, target: float | None):
    """Shares per cycle (work at 90 days; work or studies at 90 days) with 95% Wilson
    intervals, the ESF benchmark lines, the goal line, provider and target-group eras."""
    warm_up.wait_for(MATPLOTLIB)
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    c = cycles.sort_values("cycle").reset_index(drop=True)
    fig = Figure(figsize=(9.6, 6.4))
    ax = fig.add_axes((0.08, 0.2, 0.9, 0.74))
    xs = c["cycle"].astype(int).tolist()
    lo_x, hi_x = min(xs) - 0.5, max(xs) + 0.5

    shades = ("#eef3f8", "#f8f4ea", "#eef6ee", "#f5eef6")
    for k, era in enumerate(eras(c, "provider")):
        ax.axvspan(era.first - 0.5, era.last + 0.5, color=shades[k % len(shades)], zorder=0)
        label = era.label if era.last > era.first else era.label.replace(" ", "\n")
        ax.text((era.first + era.last) / 2, 0.985, label, ha="center", va="top",
                fontsize=8.5, color="#444", transform=ax.get_xaxis_transform())
    group_colours = ("#7a9cc6", "#c98f5a", "#8bb58b", "#b58bb5")
    for k, era in enumerate(eras(c, "target_group", {k: v.split(" (")[0] for k, v in
                                                      TARGET_GROUP_LABEL.items()})):
        ax.axvspan(era.first - 0.5, era.last + 0.5, ymin=0, ymax=0.035,
                   color=group_colours[k % len(group_colours)], zorder=1)
        ax.text((era.first + era.last) / 2, 0.045, f"target group: {era.label}", ha="center",
                va="bottom", fontsize=8, color="#333", transform=ax.get_xaxis_transform())

    series = [("work", "#1f5f99", -0.12, "in work (arbete)"),
              ("work_or_studies", "#c0392b", 0.12, "in work or studies (arbete + studier)")]
    for kind, colour, dx, _label in series:
        for row in c.itertuples():
            followed = bool(row.followed_up)
            work = row.work_90d if followed else row.work_at_end
            studies = row.studies_90d if followed else row.studies_at_end
            k = int(work) + (int(studies) if kind == "work_or_studies" else 0)
            n = int(row.completed)
            ci = wilson_interval(k, n)
            if ci is None:
                continue
            p = k / n
            ax.errorbar(row.cycle + dx, p, yerr=[[p - ci[0]], [ci[1] - p]], fmt="o",
                        color=colour, ecolor=colour, elinewidth=1.3, capsize=3, markersize=6,
                        markerfacecolor=colour if followed else "white", zorder=4)

    by_value: dict[float, list[str]] = {}
    for b in benchmarks.itertuples():
        by_value.setdefault(float(b.value), []).append(BENCHMARK_LABEL.get(b.benchmark_id,
                                                                           b.benchmark_id))
    styles = ("--", "-.", ":", (0, (5, 2, 1, 2)))
    handles = []
    for k, (value, labels) in enumerate(sorted(by_value.items(), reverse=True)):
        ax.hlines(value, lo_x, hi_x, colors="#555", linestyles=styles[k % len(styles)],
                  linewidth=1.1, zorder=3)
        handles.append(Line2D([], [], color="#555", linestyle=styles[k % len(styles)],
                              label=f"{' / '.join(labels)}: {pct(value)}"))
    if target is not None:
        ax.hlines(target, lo_x, hi_x, colors="#2e7d32", linewidth=1.6, zorder=3)
        handles.insert(0, Line2D([], [], color="#2e7d32", linewidth=1.6,
                                 label=f"goal HM2 / HM2_rev: {pct(target)}"))
    handles = [Line2D([], [], color=col, marker="o", linestyle="none", label=lab)
               for _k, col, _dx, lab in series] + [
        Line2D([], [], color="#777", marker="o", markerfacecolor="white", linestyle="none",
               label="not followed up: end-of-cycle status carried forward (R10)"),
        Line2D([], [], color="#777", marker="|", linestyle="none", markersize=12,
               label="95% Wilson score interval")] + handles

    ax.set_xlim(lo_x, hi_x)
    ax.set_ylim(0, 1)
    ax.set_xticks(xs, [f"Cykel {x}" for x in xs], fontsize=9)
    ax.set_yticks([i / 10 for i in range(11)], [f"{i * 10}%" for i in range(11)], fontsize=9)
    ax.set_ylabel("share of completers, 90 days after the cycle")
    ax.grid(axis="y", color="#ddd", linewidth=0.6, zorder=0)
    ax.set_title("Outcome 90 days after each cycle, with ESF benchmarks", fontsize=11, loc="left")
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.53, 0.0), fontsize=8,
               frameon=False, ncol=2)
    return fig


def dropout_figure(table: list[dict], era_labels: list[str]):
    """Early leavers by reason, stacked by provider era (horizontal bars)."""
    warm_up.wait_for(MATPLOTLIB)
    import textwrap

    from matplotlib.figure import Figure

    # laid out by matplotlib around the labels, axis title and legend, so that none is cut
    fig = Figure(figsize=(9.6, 1.0 + 0.5 * max(len(table), 1)), layout="constrained")
    ax = fig.add_subplot()
    colours = ("#7a9cc6", "#c98f5a", "#8bb58b", "#b58bb5")
    labels = [textwrap.fill(r["label"], 36) for r in table][::-1]
    left = [0] * len(table)
    for k, era in enumerate(era_labels):
        values = [r["by_era"][k] for r in table][::-1]
        ax.barh(labels, values, left=left, color=colours[k % len(colours)], label=era)
        left = [a + b for a, b in zip(left, values)]
    ax.set_xlabel("early leavers (avbrott)", fontsize=9)
    ax.tick_params(labelsize=9)
    ax.grid(axis="x", color="#ddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return fig


# ------------------------------------------------------------------ the page's data

def _table1(recon: pd.DataFrame) -> dict:
    cells: dict[str, dict[str, dict]] = {}
    misprints = []
    printed_cells = {(r.row_label, r.column_name): _none(r.published) for r in recon.itertuples()}
    since_print, lost = _follow_up_since_print(recon)
    for r in recon.sort_values(["row_order", "column_order"]).itertuples():
        unit = r.unit
        fmt = (lambda v: "–" if v is None else (thousands(v) if unit == "count" else whole_pct(v)))
        published, recomputed = _none(r.published), _none(r.recomputed)
        cell = {"text": fmt(recomputed), "printed": fmt(published), "matches": bool(r.matches),
                "note": None}
        if not r.matches:
            exact = (None if _none(r.numerator) is None or not _none(r.denominator)
                     else 100 * int(r.numerator) / int(r.denominator))
            lost_cause = _lost_follow_up_cause(lost, r.row_label, r.column_name)
            # nothing recomputed (no follow-up, say): no other cause explains a difference
            summed = None if recomputed is None or lost_cause else _summed_parts(
                printed_cells, r.row_label, r.column_name, published)
            follow_up = None if recomputed is None or summed or lost_cause else _follow_up_cause(
                recon, since_print, r.row_label, r.column_name, published)
            misprints.append({
                "n": len(misprints) + 1, "row_label": r.row_label,
                "column": TABLE1_LABEL.get(r.column_name, r.column_name),
                "numerator": _none(r.numerator),
                "denominator": _none(r.denominator),
                "exact": None if exact is None else f"{exact:.2f}%",
                "recomputed": fmt(recomputed), "published": fmt(published),
                "cause": lost_cause or summed or follow_up, "by_follow_up": follow_up is not None,
                "by_lost_follow_up": lost_cause is not None,
                "printed_figure": published is not None, "unit": unit,
            })
            cell["note"] = len(misprints)
        cells.setdefault(r.row_label, {})[r.column_name] = cell
    rows = list(dict.fromkeys(recon.sort_values("row_order")["row_label"]))
    printed = recon[recon["published"].notna()]  # a printed '-' is no figure to hold up
    counts = printed[printed["unit"] == "count"]
    percents = printed[printed["unit"] == "percent"]
    return {
        "rows": [{"label": label, "cells": cells[label],
                  "summary": label in ("Delsumma", "TOTALT")} for label in rows],
        # the cycles followed up since the report, and how many cells that alone changes
        "followed_up_since_print": since_print,
        "changed_by_follow_up": sum(m["by_follow_up"] for m in misprints),
        # the cycles the report followed up and these data have not, and the cells that changes
        "not_followed_up_since_print": lost,
        "changed_by_lost_follow_up": sum(m["by_lost_follow_up"] for m in misprints),
        # the percentages printed as figures that do not match (the summary lists them)
        "percent_misprints": [m for m in misprints if m["unit"] == "percent" and m["printed_figure"]],
        "columns": list(TABLE1_COLUMNS),
        "printed_goal_claim": _printed_goal_claim(recon),
        "misprints": misprints,
        "count_cells": len(counts), "count_matches": int(counts["matches"].sum()),
        "percent_cells": len(percents), "percent_matches": int(percents["matches"].sum()),
    }


def _summed_parts(printed: dict, row_label: str, column: str, published) -> str | None:
    """Why a printed "Totalt, andel" differs, where the print shows it: it is the sum of the
    printed, already rounded shares of work and studies (41% + 23% = 64%), not the rounded
    share of work or studies together (30 of 46 = 65%)."""
    if published is None or not column.startswith("share_total_"):
        return None
    when = column.removeprefix("share_total_")
    parts = [printed.get((row_label, f"share_{kind}_{when}")) for kind in ("work", "studies")]
    if None in parts or sum(parts) != published:
        return None
    # the print's own counts giving the printed total, the sum explains nothing: the difference
    # is in the counts (a delivery these data lack, say), not in how the print added (a review)
    counts = [printed.get((row_label, count)) for count in (f"work_{when}", f"studies_{when}", "completed")]
    if None not in counts and half_up_percent(counts[0] + counts[1], counts[2]) == published:
        return None
    return f"the sum of the printed, rounded shares {parts[0]}% + {parts[1]}%"


def _follow_up_since_print(recon: pd.DataFrame) -> tuple[list[int], list[int]]:
    """The cycles whose 90-day follow-up these data have and the report had not (printed as '-'),
    and those the report had and these data lack (a 90-day file missing or rejected). Their
    rows, the Delsumma and TOTALT (which counted a cycle without a follow-up with its
    end-of-cycle status) differ from the print for that reason (reviews: a late delivery of
    cycle 8; cycle 6's 90-day file removed, its Delsumma marked without a cause)."""
    at_90 = recon[(recon["column_name"] == "work_90d") & recon["row_label"].str.match(CYCLE_ROW.pattern)]
    gained, lost = [], []
    for r in at_90.itertuples():
        printed, recomputed = _none(r.published), _none(r.recomputed)
        if (printed is None) != (recomputed is None):
            (gained if printed is None else lost).append(int(CYCLE_ROW.match(r.row_label).group(1)))
    return gained, lost


def _lost_follow_up_cause(lost: list[int], row_label: str, column: str) -> str | None:
    """Why a cell differs when these data lack a follow-up the report had (see above)."""
    if not lost:
        return None
    rows = [f"Cykel {c}" for c in lost]
    said = "these data have no 90-day follow-up of " + ", ".join(rows) + ", which the report had"
    if row_label in rows and column.endswith("_90d"):
        return said
    if row_label == "Delsumma":
        return said + f" and counts in its Delsumma, recomputed without {'it' if len(rows) == 1 else 'them'}"
    if row_label == "TOTALT" and column.endswith("_90d"):
        return said + f": counted with {'its' if len(rows) == 1 else 'their'} end-of-cycle status (R10)"
    return None


def _follow_up_cause(recon: pd.DataFrame, cycles: list[int], row_label: str, column: str,
                     published) -> str | None:
    """Why a 90-day cell differs when these data have a follow-up the report had not: the
    report printed none for the cycle ('-'), or its TOTALT counts the cycle with its
    end-of-cycle status (rule R10), which gives the printed figure exactly."""
    rows = [f"Cykel {c}" for c in cycles]
    if not column.endswith("_90d") or row_label not in [*rows, "TOTALT"]:
        return None
    said = "the report had no 90-day follow-up of " + ", ".join(rows)
    if published is None:
        return said
    if row_label != "TOTALT":
        return None
    value = recon.set_index(["row_label", "column_name"])["recomputed"]

    def as_printed(kind: str) -> int:  # TOTALT's count with those cycles at their end-of-cycle status
        return int(value[("TOTALT", f"{kind}_90d")]) + sum(
            int(value[(r, f"{kind}_at_end")]) - int(value[(r, f"{kind}_90d")]) for r in rows)

    unit, numerator, denominator = TABLE1_COLUMNS[column]
    count = sum(as_printed(kind) for kind in ("work", "studies") if f"{kind}_90d" in numerator)
    if (count if unit == "count" else half_up_percent(count, value[("TOTALT", denominator)])) != published:
        return None
    return said + f" and counted {'it' if len(rows) == 1 else 'them'} with the end-of-cycle status (R10)"


def _printed_goal_claim(recon: pd.DataFrame) -> dict | None:
    """The printed TOTALT behind the report's "projektet når sitt mål": work and studies at
    90 days of the completers, as printed (None where a figure is not printed)."""
    total = recon[recon["row_label"] == "TOTALT"].set_index("column_name")["published"]
    figures = [_none(total.get(column)) for column in ("work_90d", "studies_90d", "completed")]
    if None in figures:
        return None
    work, studies, completed = (int(f) for f in figures)
    return {"in_work_or_studies": thousands(work + studies), "completed": thousands(completed)}


def _fraction(numerator: str, denominator: str) -> str:
    wrap = lambda e: f"({e})" if any(op in e for op in "+-") else e  # noqa: E731
    return f"{wrap(numerator)} / {wrap(denominator)}"


def _goals(goals_mart: pd.DataFrame, goal_defs: pd.DataFrame, cycles: pd.DataFrame) -> dict:
    defs = goal_defs.set_index("goal_id")
    rows = []
    for goal_id, g in goals_mart.groupby("goal_id", sort=False):
        d = defs.loc[goal_id]
        scopes = {}
        for r in g.itertuples():
            scopes[r.scope] = {
                **interval(_none(r.numerator), _none(r.denominator), _none(r.target)),
                "other_side": "below" if r.status == "met" else "above",  # what the interval leaves open
                # a goal met at 45% prints as its target; one not met at 44.96% would too
                "value_note": rounding_note(_none(r.value), r.target) if r.status == "not_met" else "",
                "value": pct(_none(r.value)), "numerator": _none(r.numerator),
                "denominator": _none(r.denominator), "status": r.status,
                "status_label": STATUS_LABEL.get(r.status, r.status),
                "coverage": pct(_none(r.coverage)), "cycles_covered": _none(r.cycles_covered),
                "cycles_in_scope": _none(r.cycles_in_scope),
            }
        first = g.iloc[0]
        rows.append({
            "goal_id": goal_id, "kind": "Huvudmål" if d.get("kind") == "main" else "Delmål",
            "text_sv": d.get("text_sv", ""), "description": first["description"],
            "target": pct(first["target"]), "version": _none(first["version"]),
            "definition": _fraction(first["numerator_definition"], first["denominator_definition"]),
            "has_coverage": _none(first["coverage"]) is not None or _none(first["cycles_in_scope"]) is not None,
            "scopes": scopes,
        })
    surveyed = []
    for r in cycles.sort_values("cycle").itertuples():
        if int(r.survey_questionnaires) > 0:
            surveyed.append({"cycle": int(r.cycle), "questionnaires": int(r.survey_questionnaires),
                             "answered": int(r.survey_answered), "completed": int(r.completed),
                             "coverage": pct(r.survey_answered / r.completed if r.completed else None),
                             "high": int(r.survey_large_or_very_large)})
    rule = coverage_rule(defs.at["HM1", "min_cycle_coverage"]) if "HM1" in defs.index else None
    coverage_rule_shown = pct(float(rule)) if rule is not None else None  # the page's sentences are of HM1
    by_id = {r["goal_id"]: r for r in rows}
    return {"rows": rows, "by_id": by_id, "surveyed": surveyed, "coverage_rule": coverage_rule_shown}


def _dropouts(dropouts: pd.DataFrame, cycles: pd.DataFrame) -> dict:
    provider_eras = eras(cycles, "provider")
    era_of = {c: k for k, e in enumerate(provider_eras) for c in range(e.first, e.last + 1)}
    enrolled = [int(cycles[cycles["cycle"].between(e.first, e.last)]["enrolled"].sum())
                for e in provider_eras]
    grouped = dropouts.assign(dropout_reason=dropouts["dropout_reason"].replace(DROPOUT_GROUP))
    reasons = list(DROPOUT_LABEL) + sorted(set(grouped["dropout_reason"].dropna()) - set(DROPOUT_LABEL))
    table = []
    for reason in reasons:
        sub = grouped[grouped["dropout_reason"] == reason]
        by_era = [0] * len(provider_eras)
        for r in sub.itertuples():
            by_era[era_of[int(r.cycle)]] += int(r.leavers)
        if sum(by_era):
            table.append({"reason": reason, "label": DROPOUT_LABEL.get(reason, reason),
                          "by_era": by_era, "total": sum(by_era)})
    totals = [sum(r["by_era"][k] for r in table) for k in range(len(provider_eras))]
    return {
        "eras": [{"label": e.label, "cycles": e.cycles, "enrolled": n, "leavers": t,
                  "share": pct(t / n if n else None)}
                 for e, n, t in zip(provider_eras, enrolled, totals)],
        "table": table, "totals": totals, "total": sum(totals),
        "enrolled": sum(enrolled), "share": pct(sum(totals) / sum(enrolled) if sum(enrolled) else None),
        "chart": _png(dropout_figure(table, [f"{e.label} (cykel {e.cycles})" for e in provider_eras]))
        if table else None,
    }


def _quality(con: duckdb.DuckDBPyConnection) -> dict:
    totals = queries.frame(con, queries.AUDIT_TOTALS).iloc[0].to_dict()
    by_kind = queries.frame(con, queries.AUDIT_BY_KIND)
    issues = queries.frame(con, queries.ISSUES_BY_REASON)
    rejected_files = queries.frame(con, queries.REJECTED_FILES)
    balanced = int(totals["rows_read"]) == (int(totals["rows_loaded"]) + int(totals["rows_rejected"])
                                           + int(totals["rows_duplicate"]))
    return {
        "totals": {k: int(v) for k, v in totals.items()},
        "balanced": balanced,
        "by_kind": [{"kind": KIND_LABEL.get(r.source_kind, r.source_kind), **{
            k: int(getattr(r, k)) for k in ("files", "files_rejected", "rows_read", "rows_loaded",
                                             "rows_rejected", "rows_duplicate")}}
            for r in by_kind.itertuples()],
        "issues": [{"severity": r.severity, "reason": r.reason,
                    "label": issue_label(r.reason, r.severity, r.statusless_file),
                    "issues": int(r.issues)}
                   for r in issues.itertuples()],
        "rejected_issues": int(issues.loc[issues["severity"] == "rejected", "issues"].sum()),
        "warnings": int(issues.loc[issues["severity"] == "warning", "issues"].sum()),
        "rejected_files": rejected_files.to_dict("records"),
        "rejected_cycles": sorted({int(c) for c in rejected_files["cycle"].dropna()}),
        "survey_files_rejected": int(by_kind.loc[by_kind["source_kind"] == "survey", "files_rejected"].sum()),
    }


def _suppression(con: duckdb.DuckDBPyConnection) -> dict:
    m = queries.read_mart(con, "outcomes_by_municipality")
    applicable = 0
    nulls = 0
    for r in m.itertuples():
        for c in PUBLISHED:  # the mart's counts
            if not applies(c, r.followed_up):
                continue
            applicable += 1
            nulls += int(pd.isna(getattr(r, c)))
    return {"rows": len(m), "cells": applicable, "suppressed": nulls}


def _bound_note(low, high, benchmark: float, verdict: str) -> str:
    """A rounding note where a bound the verdict rests on prints as the benchmark, naming the
    bound and its value ('lower bound 32.7%, below 33% before rounding'): the deciding bound
    of 'above' or 'below'; for 'inconclusive', a bound that prints as the benchmark (a
    review: '33%-44%' read as only touching 33%; unrounded, 32.7% includes it)."""
    bounds = {"above": ["lower"], "below": ["upper"]}.get(verdict, ["lower", "upper"])
    for name in bounds:
        value = _none(low if name == "lower" else high)
        note = rounding_note(value, benchmark)
        if note:
            return f"{name} bound {_finer(value, benchmark)}, {note}"
    return ""


def _range_note(r: dict, target: float | None) -> str:
    """A rounding note for a goal's range over the cycles not followed up (goals.
    range_without_follow_up) not met in any case whose greatest value prints as its target
    ('38%–45%' at 44.84%: 'at most 44.8%, below 45% before rounding')."""
    if target is None or r["statuses"] != ["not_met"]:
        return ""
    note = rounding_note(r["high"], target)
    return f"at most {_finer(r['high'], target)}, {note}" if note else ""


def _finer(value: float, line: float) -> str:
    """`value` as a percent with the fewest decimals (one at least) that tell it from `line`."""
    for places in range(1, 6):
        shown = f"{value * 100:.{places}f}"
        if shown != f"{line * 100:.{places}f}":
            return f"{shown}%"
    return f"{value * 100}%"


def _benchmark(r) -> dict:
    group = _none(getattr(r, "group_birth_regions", None))
    out = {
        "benchmark_id": r.benchmark_id, "scope": r.scope, "scope_label": SCOPE_LABEL[r.scope],
        "label": BENCHMARK_LABEL.get(r.benchmark_id, r.description),
        "description": r.description, "benchmark": pct(r.benchmark_value),
        "numerator": int(r.numerator), "denominator": int(r.denominator),
        "project": pct(_none(r.project_value)), "ci_low": pct(_none(r.ci_low)),
        "ci_high": pct(_none(r.ci_high)), "verdict": r.verdict,
        "verdict_label": VERDICT_LABEL.get(r.verdict, r.verdict),
        "note": _bound_note(r.ci_low, r.ci_high, r.benchmark_value, r.verdict),
        "group": None,
    }
    if group is not None:
        out.update({
            "group": GROUP_LABEL.get(group, f"born in {group}"),
            "group_numerator": int(r.group_numerator), "group_denominator": int(r.group_denominator),
            "group_value": pct(_none(r.group_value)), "group_ci_low": pct(_none(r.group_ci_low)),
            "group_ci_high": pct(_none(r.group_ci_high)), "group_verdict": r.group_verdict,
            "group_verdict_label": VERDICT_LABEL.get(r.group_verdict, r.group_verdict),
            "group_note": _bound_note(r.group_ci_low, r.group_ci_high, r.benchmark_value, r.group_verdict),
        })
    return out


def with_leavers(bench: pd.DataFrame, cycles: pd.DataFrame, scopes: dict) -> list[dict]:
    """Per scope, the share in work at 90 days with the early leavers counted as not in work,
    and the whole-project benchmark verdicts that would change. rules.md compares completers,
    as the report did; ESF's figures may count everyone who left a project, so the page shows
    how much the verdicts rest on that (TOTALT's "above" South Sweden's 27%
    is not above with the leavers counted). Every whole-project verdict the benchmark table
    shows is weighed, the foreign-born benchmarks' too (their like-for-like verdicts are not:
    the leavers' birth regions are another question). The page's alone: the mart follows rules.md."""
    out = []
    for scope, label in SCOPE_LABEL.items():
        in_scope = cycles[cycles["cycle"].isin(scope_cycles(cycles)[scope])]
        enrolled = int(in_scope["enrolled"].sum())
        completed, work = scopes[scope]["completed"], scopes[scope]["work_90d"]
        if not completed or enrolled == completed:
            continue  # nothing to compare, or no leaver to count
        ci = wilson_interval(work, enrolled)
        changed = []
        for r in bench[bench["scope"] == scope].itertuples():
            now = verdict(ci, float(r.benchmark_value))
            if now != r.verdict:
                changed.append({"label": BENCHMARK_LABEL.get(r.benchmark_id, r.description),
                                "benchmark": pct(r.benchmark_value),
                                "was": VERDICT_LABEL.get(r.verdict, r.verdict),
                                "now": VERDICT_LABEL.get(now, now),
                                # the bound that moved across, where it prints as the benchmark
                                "note": rounding_note(ci[0] if r.verdict == "above" else ci[1],
                                                      float(r.benchmark_value))})
        out.append({"scope": scope, "label": label, "cycles": scopes[scope]["cycles"],
                    "leavers": enrolled - completed, "numerator": work, "denominator": enrolled,
                    "value": pct(work / enrolled), "ci": f"{pct(ci[0])}–{pct(ci[1])}",
                    "changed": changed})
    return out


def context(con: duckdb.DuckDBPyConnection, warehouse_built_at: datetime | None = None) -> dict:
    """Everything the template shows, from a warehouse connection."""
    generated_at = datetime.now(timezone.utc)
    cycles = queries.cycles(con)
    summary = queries.summary(con).set_index("scope")
    goal_defs = queries.goals(con)
    bench = queries.read_mart(con, "benchmark_comparison")
    goals_mart = queries.read_mart(con, "goal_attainment")
    recon = queries.read_mart(con, "published_reconciliation")
    cost = queries.read_mart(con, "cost_efficiency")
    hashes = queries.frame(con, queries.AUDIT_HASHES)
    fp = fingerprint(hashes)

    goals = _goals(goals_mart, goal_defs, cycles)
    hm2_targets = goals_mart.loc[goals_mart["goal_id"] == "HM2", "target"]
    target = float(hm2_targets.iloc[0]) if len(hm2_targets) else None

    benchmarks = [_benchmark(r) for r in bench.itertuples()]

    def scope_row(scope: str) -> dict:  # outcomes_summary has a row per scope, zeros where it has no cycle
        s = summary.loc[scope]
        return {"cycles": s["cycles"] or "none", "completed": int(s["completed"]), "work_90d": int(s["work_90d"])}

    scopes = {s: scope_row(s) for s in ("followed_up", "all")}
    provider_eras = eras(cycles, "provider")
    group_eras = eras(cycles, "target_group", TARGET_GROUP_LABEL)
    cycles_of = scope_cycles(cycles)
    not_followed = [c for c in cycles_of["all"] if c not in cycles_of["followed_up"]]
    # A cycle whose delivery was rejected whole may have had its 90-day statuses in it: it was
    # not followed up in this warehouse, not "never" (a review sent a broken 90-day file and
    # read that its cycle was never followed up).
    quality = _quality(con)
    not_followed_rejected = [c for c in not_followed if c in quality["rejected_cycles"]]
    table1 = _table1(recon)
    # A cycle whose 90-day figures Table 1 prints was followed up: its follow-up is missing here.
    printed_90d = set(table1["not_followed_up_since_print"])
    not_followed_printed = [c for c in not_followed if c in printed_90d]
    open_range = range_without_follow_up(goal_defs, cycles, summary.reset_index())
    targets = {g.goal_id: float(g.target) for g in goal_defs.itertuples(index=False)}
    # The printed Delsumma is recomputed from the followed-up cycles printed above it; the
    # followed_up scope of the goals is every followed-up cycle (they differ once a cycle
    # printed below it, such as 8, is followed up).
    delsumma = subtotal_cycles(printed_above_subtotal(queries.table1_published(con)), cycles)
    return {
        "generated_at": generated_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "warehouse_built_at": (warehouse_built_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                               if warehouse_built_at else None),
        "files": len(hashes), "fingerprint_grouped": grouped(fp),
        "development_key": queries.pseudonym_key_kind(con) == "development",
        "bundled_synthetic": fp == reference.BUNDLED_SYNTHETIC_FINGERPRINT,
        "scopes": scopes,
        # The scope the headline speaks about: the followed-up cycles when they have completers.
        "headline": "followed_up" if scopes["followed_up"]["completed"] else "all",
        "table1": table1,
        "goals": goals,
        "benchmarks": benchmarks,
        "with_leavers": with_leavers(bench, cycles, scopes),
        "chart_outcomes": _png(outcome_figure(cycles, queries.benchmarks(con), target)),
        "provider_eras": provider_eras, "group_eras": group_eras,
        "not_followed": not_followed,
        "not_followed_rejected": not_followed_rejected,
        "not_followed_printed": not_followed_printed,
        # the cycles the report's footnote counted with their end-of-cycle status, as TOTALT does
        "not_followed_unprinted": [c for c in not_followed if c not in printed_90d],
        "never_or_not": "not" if not_followed_rejected or not_followed_printed else "never",
        "survey_files_rejected": quality["survey_files_rejected"],
        "not_followed_completed": int(cycles.loc[cycles["cycle"].isin(not_followed), "completed"].fillna(0).sum()),
        # drawn as no point in the chart (a review: "cycle 8's hollow points" with no completer)
        "not_followed_without_completers": [
            c for c in not_followed if not cycles.loc[cycles["cycle"] == c, "completed"].fillna(0).sum()],
        # whatever the 90-day outcome of the cycles not followed up (goals.range_without_follow_up)
        "open_range": [{"goal_id": goal_id, "low": pct(r["low"]), "high": pct(r["high"]),
                        "status": STATUS_LABEL[r["statuses"][0]] if len(r["statuses"]) == 1 else None,
                        "note": _range_note(r, targets.get(goal_id))}
                       for goal_id, r in open_range.items()],
        "delsumma_cycles": cycle_ranges(delsumma) or "none",
        "cost": [{"metric": r.metric, "description": r.description,
                  "value": sek(_none(r.value_sek)), "numerator": sek(r.numerator_sek),
                  "denominator": _none(r.denominator)}
                 for r in cost.itertuples()],
        "cost_by": {r.metric: r for r in cost.itertuples()},
        "budget": queries.budget(con),
        "dropouts": _dropouts(queries.frame(con, queries.DROPOUTS), cycles),
        "quality": quality,
        "suppression": _suppression(con),
    }


def render_html(ctx: dict) -> str:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["thousands"] = thousands
    env.filters["pct"] = pct
    env.filters["sek"] = sek
    env.filters["named_cycles"] = named_cycles
    return env.get_template(TEMPLATE).render(**ctx)


def render_report(con: duckdb.DuckDBPyConnection, warehouse_built_at: datetime | None = None) -> str:
    return render_html(context(con, warehouse_built_at))


def write_report(warehouse: Path, out: Path) -> Path:
    """Render the report from the warehouse file (opened read-only) into `out`, atomically:
    a temporary file beside it, then os.replace."""
    warehouse, out = Path(warehouse), Path(out)
    built_at = datetime.fromtimestamp(warehouse.stat().st_mtime, tz=timezone.utc)
    con = open_readonly(warehouse)
    try:
        html = render_report(con, built_at)
    finally:
        con.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
        os.chmod(tmp, 0o644)
        durable.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
