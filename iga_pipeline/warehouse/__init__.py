"""The DuckDB warehouse: build a candidate file, publish it atomically once its checks
(iga_pipeline/quality/, run by defs/checks.py) have passed."""
