"""The DuckDB warehouse: build a candidate file, check it, publish it atomically."""
