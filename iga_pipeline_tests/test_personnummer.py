"""Tests for iga_pipeline.personnummer: forms, Excel numbers, century rule, errors."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from iga_pipeline.personnummer import (
    ERROR_TEXT,
    FORMS,
    format_pnr,
    luhn_check_digit,
    normalise,
    normalise_one,
)

REF = dt.date(2024, 3, 1)  # a cycle start
CODES = {"missing", "unrecognised_form", "impossible_date", "wrong_check_digit"}


def ten(yymmdd: str, nnn: str) -> str:
    """YYMMDDNNNC with the correct Luhn digit."""
    return f"{yymmdd}{nnn}{luhn_check_digit(yymmdd + nnn)}"


def wrong_check(value: str) -> str:
    """The same value with its last (check) digit changed."""
    return value[:-1] + str((int(value[-1]) + 1) % 10)


# ---------------------------------------------------------------- Luhn, format_pnr


def test_luhn_check_digit_known_value():
    # 811218-9876 is a valid number (check digit worked out by hand).
    assert luhn_check_digit("811218987") == 6
    assert luhn_check_digit("000000000") == 0


def test_format_pnr_known_values():
    born = dt.date(1981, 12, 18)
    assert format_pnr(born, 987) == "811218-9876"
    assert format_pnr(born, 987, form="YYMMDDNNNC") == "8112189876"
    assert format_pnr(born, 987, form="YYMMDD+NNNC") == "811218+9876"
    assert format_pnr(born, 987, form="YYYYMMDDNNNC") == "198112189876"
    assert format_pnr(born, 987, form="YYYYMMDD-NNNC") == "19811218-9876"
    # Coordination number: day + 60, check digit over the written digits (by hand: 3).
    assert format_pnr(born, 987, coordination=True) == "811278-9873"
    assert format_pnr(dt.date(2005, 1, 1), 5, form="YYYYMMDDNNNC") == "20" + ten("050101", "005")


@pytest.mark.parametrize("bad", [{"serial": -1}, {"serial": 1000}, {"serial": True}, {"form": "YYYYMMDD+NNNC"}])
def test_format_pnr_rejects_bad_arguments(bad):
    kwargs = {"serial": 1, "form": "YYMMDD-NNNC"} | bad
    serial = kwargs.pop("serial")
    with pytest.raises(ValueError):
        format_pnr(dt.date(1981, 12, 18), serial, **kwargs)


# ---------------------------------------------------------------- every written form


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("811218-9876", "198112189876"),
        ("8112189876", "198112189876"),
        ("811218+9876", "188112189876"),
        ("198112189876", "198112189876"),
        ("19811218-9876", "198112189876"),
        ("  811218-9876\t", "198112189876"),  # whitespace is trimmed
        ("\u00a019811218-9876\n", "198112189876"),  # non-breaking space from Excel too
    ],
)
def test_every_form_is_valid(value, expected):
    assert normalise_one(value, REF) == (expected, None)


def test_normalise_one_returns_plain_python_values():
    pnr, error = normalise_one("811218-9876", REF)
    assert type(pnr) is str and error is None
    pnr, error = normalise_one("811218-9875", REF)
    assert pnr is None and type(error) is str


# ---------------------------------------------------------------- Excel numbers


@pytest.mark.parametrize(
    "value",
    [8112189876, 8112189876.0, np.int64(8112189876), np.float64(8112189876.0), 198112189876, 198112189876.0],
)
def test_excel_numbers(value):
    assert normalise_one(value, REF) == ("198112189876", None)


def test_excel_number_lost_leading_zero():
    written = format_pnr(dt.date(2005, 1, 1), 123, form="YYMMDDNNNC")  # '050101123C'
    as_number = int(written)
    assert len(str(as_number)) == 9
    expected = "20" + written
    assert normalise_one(as_number, dt.date(2009, 1, 1)) == (expected, None)
    assert normalise_one(float(as_number), dt.date(2009, 1, 1)) == (expected, None)
    # Born 2000-01-01: '0001010420' loses three zeros.
    written = format_pnr(dt.date(2000, 1, 1), 42, form="YYMMDDNNNC")
    assert len(str(int(written))) == 7
    assert normalise_one(int(written), dt.date(2009, 1, 1)) == ("20" + written, None)


def test_strings_are_not_padded():
    written = format_pnr(dt.date(2005, 1, 1), 123, form="YYMMDDNNNC")
    assert normalise_one(written.lstrip("0"), dt.date(2009, 1, 1)) == (None, "unrecognised_form")


@pytest.mark.parametrize(
    "value",
    [
        81121898761,  # 11 digits
        1981121898761,  # 13 digits
        -8112189876,
        8112189876.5,
        float("inf"),
        True,
        False,
        np.bool_(True),
    ],
)
def test_excel_numbers_that_are_not_personnummer(value):
    assert normalise_one(value, REF) == (None, "unrecognised_form")


def test_all_numeric_and_string_dtype_series():
    floats = pd.Series([8112189876.0, np.nan, 198112189876.0])  # float64, as read from Excel
    out = normalise(floats, REF)
    assert out["pnr"].tolist() == ["198112189876", pd.NA, "198112189876"]
    assert out["error"].tolist() == [pd.NA, "missing", pd.NA]
    strings = pd.Series(["811218-9876", pd.NA, " "], dtype="string")
    out = normalise(strings, REF)
    assert out["pnr"].tolist() == ["198112189876", pd.NA, pd.NA]
    assert out["error"].tolist() == [pd.NA, "missing", "missing"]


# ---------------------------------------------------------------- century rule


def test_century_on_the_day_a_person_turns_100():
    value = ten("240301", "001")
    on_day = dt.date(2024, 3, 1)
    day_before = dt.date(2024, 2, 29)
    # Turning 100 on the reference date: '-' would make them 100, so it means a newborn.
    assert normalise_one(value[:6] + "-" + value[6:], on_day)[0] == "20" + value
    assert normalise_one(value, on_day)[0] == "20" + value
    assert normalise_one(value[:6] + "+" + value[6:], on_day)[0] == "19" + value
    # The day before they are 99 with '-', and '+' means 199 years old.
    assert normalise_one(value[:6] + "-" + value[6:], day_before)[0] == "19" + value
    assert normalise_one(value[:6] + "+" + value[6:], day_before)[0] == "18" + value


def test_ten_digits_never_born_after_the_reference_date():
    # 19xx reading would be 100 years old, born before the reference date: 20xx.
    before = ten("230601", "123")
    assert normalise_one(before, REF)[0] == "20" + before
    # Born later in the reference year: the 20xx reading would be born after
    # the reference date, so 19xx (99 years old).
    after = ten("240302", "123")
    assert normalise_one(after, REF)[0] == "19" + after
    on = ten("240301", "123")
    assert normalise_one(on, REF)[0] == "20" + on


def test_century_uses_the_real_day_of_a_coordination_number():
    # Day 61 is the 1st, day 62 the 2nd; reference 2024-03-01.
    first = ten("240361", "123")
    second = ten("240362", "123")
    assert normalise_one(first, REF)[0] == "20" + first
    assert normalise_one(second, REF)[0] == "19" + second


def test_twelve_digit_forms_have_no_age_rule():
    # Born after the reference date, and 250 years old: both fine when the century is written.
    assert normalise_one("20" + ten("300101", "123"), REF) == ("20" + ten("300101", "123"), None)
    assert normalise_one("17" + ten("740101", "123"), REF) == ("17" + ten("740101", "123"), None)


def test_per_row_reference_dates():
    value = ten("240301", "123")
    values = pd.Series([value, value, "811218+9876"], dtype=object)
    expected = ["20" + value, "19" + value, "188112189876"]
    as_datetime64 = pd.Series(pd.to_datetime(["2024-03-01", "2024-02-29", "2024-03-01"]))
    as_dates = pd.Series([dt.date(2024, 3, 1), dt.date(2024, 2, 29), dt.date(2024, 3, 1)], dtype=object)
    assert normalise(values, as_datetime64)["pnr"].tolist() == expected
    assert normalise(values, as_dates)["pnr"].tolist() == expected


def test_reference_dates_must_align_and_be_present():
    values = pd.Series(["811218-9876", "811218-9876"], index=[5, 6], dtype=object)
    with pytest.raises(ValueError):
        normalise(values, pd.Series(pd.to_datetime(["2024-01-01", "2024-01-01"])))  # index 0, 1
    with pytest.raises(ValueError):
        normalise(values, pd.Series(pd.to_datetime(["2024-01-01", None]), index=[5, 6]))
    with pytest.raises(ValueError):
        normalise(values, None)


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("yymmdd", "error"),
    [
        ("811261", None),  # coordination: 1 December
        ("810191", None),  # coordination: 31 January
        ("810431", "impossible_date"),  # 31 April
        ("810491", "impossible_date"),  # coordination on 31 April
        ("810192", "impossible_date"),  # day 92
        ("810160", "impossible_date"),  # day 60 = day 0 + 60
        ("810132", "impossible_date"),
        ("810100", "impossible_date"),
        ("810001", "impossible_date"),  # month 00
        ("811301", "impossible_date"),  # month 13
        ("810230", "impossible_date"),  # 30 February
        ("810290", "impossible_date"),  # coordination on 30 February
        ("000229", None),  # 2000 is a leap year
        ("040229", None),
        ("000289", None),  # coordination on 29 February 2000
        ("010229", "impossible_date"),
        ("010289", "impossible_date"),
    ],
)
def test_date_validity(yymmdd, error):
    value = ten(yymmdd, "123")
    pnr, got = normalise_one(value, REF)
    assert got == error
    assert pnr == (None if error else ("19" if yymmdd.startswith("8") else "20") + value)


def test_feb_29_depends_on_the_chosen_century():
    value = ten("000229", "123")
    assert normalise_one(value[:6] + "-" + value[6:], REF) == ("20" + value, None)
    assert normalise_one(value[:6] + "+" + value[6:], REF) == (None, "impossible_date")  # 1900
    assert normalise_one(value, dt.date(2100, 6, 1)) == (None, "impossible_date")  # 2100
    assert normalise_one("19" + value, REF) == (None, "impossible_date")
    assert normalise_one("20" + value, REF) == ("20" + value, None)
    assert normalise_one("00" + value, REF) == (None, "impossible_date")  # no year 0000


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("value", ["811218-9876", "8112189876", "811218+9876", "198112189876", "19811218-9876"])
def test_wrong_check_digit_in_every_form(value):
    assert normalise_one(wrong_check(value), REF) == (None, "wrong_check_digit")
    assert normalise_one(wrong_check(value) + " ", REF) == (None, "wrong_check_digit")


@pytest.mark.parametrize(
    "value",
    [
        "19811218+9876",  # '+' with a written century
        "81121898761",  # 11 digits
        "811218987",  # 9 digits
        "1981121898761",  # 13 digits
        "19811218--9876",
        "811218 9876",
        "811218/9876",
        "811218_9876",
        "8112-18-9876",
        "81121-89876",
        "+8112189876",
        "811218-9876-",
        "811218-987X",
        "abcdef-ghij",
        "８１１２１８-９８７６",  # full-width digits
        "٨١١٢١٨-٩٨٧٦",  # Arabic-Indic digits
        "811218-9876.0",  # a string is never a float
        "nan",
        "None",
    ],
)
def test_unrecognised_forms(value):
    assert normalise_one(value, REF) == (None, "unrecognised_form")


@pytest.mark.parametrize("value", [None, np.nan, float("nan"), pd.NA, pd.NaT, "", "   ", "\t\n"])
def test_missing(value):
    assert normalise_one(value, REF) == (None, "missing")


def test_precedence():
    impossible = ten("811318", "123")  # month 13, correct Luhn
    assert normalise_one(impossible, REF) == (None, "impossible_date")
    # Impossible date beats wrong check digit.
    assert normalise_one(wrong_check(impossible), REF) == (None, "impossible_date")
    # Unrecognised beats impossible date and wrong check digit.
    assert normalise_one("19" + impossible[:6] + "+" + impossible[6:], REF) == (None, "unrecognised_form")
    assert normalise_one(wrong_check(impossible) + "0", REF) == (None, "unrecognised_form")
    # Missing beats everything.
    assert normalise_one("  ", REF) == (None, "missing")


def test_error_texts_never_contain_the_value():
    assert set(ERROR_TEXT) == CODES
    for text in ERROR_TEXT.values():
        assert text and not re.search(r"[0-9]", text)
    values = pd.Series(
        ["811218-9875", ten("811318", "123"), "19811218+9876", "", 81121898761, None], dtype=object
    )
    out = normalise(values, REF)
    assert out["pnr"].isna().all()
    assert set(out["error"]) == CODES
    for value, error in zip(values, out["error"], strict=True):
        digits = re.sub(r"[^0-9]", "", str(value))
        assert not re.search(r"[0-9]", error)
        assert not digits or (digits not in error and digits not in ERROR_TEXT[error])


# ---------------------------------------------------------------- frame shape


def test_index_and_order_are_preserved():
    index = pd.Index([30, 10, 20, 10_000], name="source_row")
    values = pd.Series([ten("240301", "123"), None, "811218-9876", 8112189876], index=index, dtype=object)
    refs = pd.Series(pd.to_datetime(["2024-02-29", "2024-03-01", "2024-03-01", "2024-03-01"]), index=index)
    out = normalise(values, refs)
    assert out.index.equals(index)
    assert list(out.columns) == ["pnr", "error"]
    assert out.loc[30, "pnr"] == "19" + ten("240301", "123")  # its own reference date
    assert out.loc[10, "error"] == "missing"
    assert out.loc[20, "pnr"] == "198112189876"
    assert out.loc[10_000, "pnr"] == "198112189876"


@pytest.mark.parametrize(
    "values",
    [
        pd.Series(["811218-9876", "x", None], dtype=object),
        pd.Series(["811218-9876"], dtype=object),
        pd.Series([None, "bad"], dtype=object),
        pd.Series([], dtype=object),
    ],
)
def test_output_dtypes(values):
    out = normalise(values, REF)
    assert len(out) == len(values)
    for column in ("pnr", "error"):
        assert isinstance(out[column].dtype, pd.StringDtype)
    assert (out["pnr"].isna() != out["error"].isna()).all()


def test_no_per_row_python_callbacks(monkeypatch):
    """normalise must stay vectorised: Series.apply/map and np.vectorize are off limits."""

    def forbidden(*args, **kwargs):
        raise AssertionError("per-row Python callback used")

    monkeypatch.setattr(pd.Series, "apply", forbidden)
    monkeypatch.setattr(pd.Series, "map", forbidden)
    monkeypatch.setattr(np, "vectorize", forbidden)
    values = pd.Series(["811218-9876", 8112189876.0, None, "x", 501011234], dtype=object)
    out = normalise(values, pd.Series(pd.to_datetime(["2024-03-01"] * 5)))
    assert out["error"].tolist() == [pd.NA, pd.NA, "missing", "unrecognised_form", "wrong_check_digit"]


# ---------------------------------------------------------------- properties


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _expected(born: dt.date, serial: int, coordination: bool) -> str:
    day = born.day + (60 if coordination else 0)
    nine = f"{born:%y%m}{day:02d}{serial:03d}"
    return f"{born.year:04d}{born.month:02d}{day:02d}{serial:03d}{luhn_check_digit(nine)}"


AGE_RANGE = {"YYMMDD-NNNC": (0, 99), "YYMMDDNNNC": (0, 99), "YYMMDD+NNNC": (100, 199)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    born=st.dates(min_value=dt.date(1800, 1, 1), max_value=dt.date(2060, 12, 31)),
    serial=st.integers(0, 999),
    coordination=st.booleans(),
    form=st.sampled_from(FORMS),
    days_after_birth=st.integers(0, 200 * 365),
    new_check=st.integers(0, 9),
)
def test_format_pnr_round_trips(born, serial, coordination, form, days_after_birth, new_check):
    reference = born + dt.timedelta(days=days_after_birth)
    if form in AGE_RANGE:
        low, high = AGE_RANGE[form]
        assume(low <= _age(born, reference) <= high)
    written = format_pnr(born, serial, coordination=coordination, form=form)
    expected = _expected(born, serial, coordination)
    assert normalise_one(written, reference) == (expected, None)
    if form in ("YYMMDDNNNC", "YYYYMMDDNNNC"):
        # As an Excel number (leading zeros lost), int and float.
        assert normalise_one(int(written), reference) == (expected, None)
        assert normalise_one(float(written), reference) == (expected, None)
    # Any other check digit is wrong.
    assume(str(new_check) != written[-1])
    assert normalise_one(written[:-1] + str(new_check), reference) == (None, "wrong_check_digit")


@settings(max_examples=200, deadline=None)
@given(
    born=st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    serial=st.integers(0, 999),
    coordination=st.booleans(),
    form=st.sampled_from(["YYYYMMDDNNNC", "YYYYMMDD-NNNC"]),
)
def test_twelve_digit_forms_round_trip_for_any_year(born, serial, coordination, form):
    written = format_pnr(born, serial, coordination=coordination, form=form)
    assert normalise_one(written, REF) == (_expected(born, serial, coordination), None)


_ANY_VALUE = st.one_of(
    st.none(),
    st.text(alphabet="0123456789-+ x", max_size=14),
    st.integers(-10, 10**13),
    st.floats(allow_nan=True, allow_infinity=False),
    st.builds(
        lambda born, serial, form: format_pnr(born, serial, form=form),
        st.dates(min_value=dt.date(1930, 1, 1), max_value=dt.date(2020, 12, 31)),
        st.integers(0, 999),
        st.sampled_from(["YYMMDD-NNNC", "YYMMDDNNNC", "YYYYMMDDNNNC"]),
    ),
)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(_ANY_VALUE, st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2040, 12, 31))),
        max_size=30,
    )
)
def test_rows_are_independent(rows):
    """A batch gives each row the same answer as that row alone."""
    values = pd.Series([v for v, _ in rows], index=range(100, 100 + len(rows)), dtype=object)
    refs = pd.Series(pd.to_datetime([r for _, r in rows]), index=values.index, dtype="datetime64[ns]")
    out = normalise(values, refs)
    for (value, ref), pnr, error in zip(rows, out["pnr"], out["error"], strict=True):
        alone = normalise_one(value, ref)
        assert (None if pd.isna(pnr) else pnr, None if pd.isna(error) else error) == alone
        assert (alone[0] is None) != (alone[1] is None)
        assert alone[1] is None or alone[1] in CODES


# ---------------------------------------------------------------- cross-check


def test_twelve_digit_forms_agree_with_the_personnummer_library():
    """Cross-check against the MIT-licensed `personnummer` package (pinned for the tests)."""
    from personnummer import personnummer  # the package keeps its API in a submodule

    @settings(max_examples=500, deadline=None)
    @given(
        year=st.integers(1800, 2099),
        month=st.integers(0, 13),
        day=st.integers(0, 99),
        serial=st.integers(1, 999),  # the library rejects serial 000
        check=st.one_of(st.none(), st.integers(0, 9)),  # None: the correct digit
        dash=st.booleans(),
    )
    def agree(year, month, day, serial, check, dash):
        nine = f"{year % 100:02d}{month:02d}{day:02d}{serial:03d}"
        c = luhn_check_digit(nine) if check is None else check
        value = f"{year:04d}{month:02d}{day:02d}{'-' if dash else ''}{serial:03d}{c}"
        pnr, error = normalise_one(value, REF)
        assert personnummer.valid(value) == (error is None)
        if error is None:
            assert pnr == personnummer.parse(value).format(long_format=True)

    agree()
