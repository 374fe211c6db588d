"""normalise() parses text in Arrow and anything else with pandas: both give the same parts."""

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from iga_pipeline import personnummer
from iga_pipeline.personnummer import format_pnr

TEXT = st.one_of(
    st.none(),
    st.text(alphabet="0123456789-+ x\t\n\xa0\x1c\u2003", max_size=16),
    st.builds(lambda born, serial, form, pad: pad + format_pnr(born, serial, form=form) + pad,
              st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2020, 12, 31)),
              st.integers(0, 999), st.sampled_from(personnummer.FORMS),
              st.sampled_from(["", " ", "\t", "\xa0", "\x1c", "\u2003 "])),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=40))
def test_text_path_equals_the_general_path(values):
    series = pd.Series(values, dtype=object)
    if series.notna().sum() == 0:
        return  # no strings at all: only the general path applies
    fast = personnummer._parts_of_text(series)
    slow = personnummer._parts_of_anything(series)
    assert len(fast) == len(slow) == 5
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_text_path_is_taken_for_strings_and_string_dtype(monkeypatch):
    calls = []
    real = personnummer._parts_of_text
    monkeypatch.setattr(personnummer, "_parts_of_text", lambda v: calls.append(1) or real(v))
    for values in (pd.Series(["811218-9876", None], dtype=object),
                   pd.Series(["811218-9876", pd.NA], dtype="string")):
        out = personnummer.normalise(values, dt.date(2009, 1, 1))
        assert out["pnr"].tolist() == ["198112189876", pd.NA]
    assert len(calls) == 2
    personnummer.normalise(pd.Series([8112189876], dtype=object), dt.date(2009, 1, 1))
    assert len(calls) == 2  # numbers: the general path
