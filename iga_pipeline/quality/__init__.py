"""Data quality beyond row validation: Great Expectations suites on the marts."""
