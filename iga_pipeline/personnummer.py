"""Swedish personnummer: parse every written form, validate, normalise to 12 digits.

Pure functions, no Dagster. Errors are short codes and never echo the value.
"""

from __future__ import annotations


def luhn_check_digit(nine_digits: str) -> int:
    """The Luhn check digit C over the nine digits YYMMDDNNN."""
    total = 0
    for i, ch in enumerate(nine_digits):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return (10 - total % 10) % 10
