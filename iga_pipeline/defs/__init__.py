"""Thin Dagster wrappers around the pure pipeline code; see definitions.py."""
