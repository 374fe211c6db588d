"""Deterministic synthetic raw deliveries (the bundled data set).

`generate_bundled(out_dir, seed)` writes the complete raw root of
shared/contract/raw-deliveries.md under `out_dir`: the municipality
registers, the three providers' deliveries and the cycle-3 survey. After the
rules of shared/contract/rules.md the data give back the report's Table 1
exactly, and they carry a few rows of every row-level defect the pipeline
must handle (listed, without personal data, in the returned summary).

Two steps, kept apart on purpose: `plan.plan_population` decides who takes
part and what every delivery says (plain data); `writers.write_all` renders
that plan into files. Same seed, byte-identical files.

    python -m iga_pipeline.synth --out /tmp/raw   # a new or empty folder; the default seed writes data/raw's files
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from iga_pipeline.synth.plan import Plan, plan_population
from iga_pipeline.synth.writers import write_all

DEFAULT_SEED = 2012

__all__ = ["DEFAULT_SEED", "Plan", "generate_bundled", "plan_population"]


def generate_bundled(out_dir: Path, seed: int = DEFAULT_SEED) -> dict:
    """Write the bundled raw deliveries under out_dir; return a small summary.

    The summary: `files` (relative path -> data rows), population counts, and
    `defects`: one entry per defective row written (`file`, `row`, `kind`,
    `note`; `row` is the 1-based data row, `Sheet!row` in workbooks, None for
    a missing_outcome, which concerns a participation rather than a row).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_population(seed)
    written = write_all(plan, out_dir)
    accepted = [p for p in plan.participations if p.accepted]
    per_person = Counter(p.person for p in accepted)
    return {
        "seed": seed,
        "files": written["files"],
        "rows": sum(written["files"].values()),
        "participations": len(accepted),
        "completers": sum(p.completed for p in accepted),
        "early_leavers": sum(not p.completed for p in accepted),
        "persons": len(per_person),
        "repeat_persons": sum(1 for n in per_person.values() if n > 1),
        "defects": written["defects"],
    }
