"""Data quality beyond row validation: Great Expectations suites on the marts, and the
search of a warehouse file for personnummer (personal_data.py)."""
