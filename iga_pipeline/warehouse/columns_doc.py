"""Render the marts' column reference (docs/bi-columns.md) from the catalog.

    .venv/bin/python -m iga_pipeline.warehouse.columns_doc > docs/bi-columns.md

A test fails when the committed file differs from what this prints, so the
reference is never written twice by hand.
"""

from iga_pipeline.warehouse.catalog import MARTS


def render() -> str:
    lines = [
        "# The `marts` schema: column reference",
        "",
        "Generated from `iga_pipeline/warehouse/catalog.py` by "
        "`python -m iga_pipeline.warehouse.columns_doc`; do not edit by hand.",
        "",
    ]
    for m in MARTS:
        lines += [f"## `marts.{m.name}`", "", f"One row per {m.grain}. {m.description}", "",
                  "| column | meaning |", "|---|---|"]
        lines += [f"| `{c}` | {d} |" for c, d in m.columns.items()]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
