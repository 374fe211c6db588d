"""The three providers' outcome deliveries, each to the same shape: one adapter per kind
(`petho.py`, `folkuniversitetet.py`, `astorp.py`; what they share in `provider_rows.py`).

Every adapter returns one row per data row read (but those it rejects itself:
`common.AdapterOutput`), with
  source_row, person_key, pnr_error, municipality_code (the provider's claim,
  <NA> when it names no project municipality), and status_end / status_90d
  (the status as written, trimmed, Pethö's known texts case-folded; <NA> where
  empty or null; the column is absent when the file does not report that time
  point),
plus an interventions frame (source_row, intervention, hours).
"""

from __future__ import annotations

from iga_pipeline.sources.astorp import read_astorp
from iga_pipeline.sources.folkuniversitetet import read_folkuniversitetet
from iga_pipeline.sources.petho import read_petho

__all__ = ["READERS", "read_astorp", "read_folkuniversitetet", "read_petho"]

READERS = {
    "petho": read_petho,
    "folkuniversitetet": read_folkuniversitetet,
    "astorp": read_astorp,
}
