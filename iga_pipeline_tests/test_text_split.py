"""text.split's vectorised path gives exactly what the row-by-row reference gives."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iga_pipeline.sources import text
from iga_pipeline.sources.common import FileRejected

HEADER = ["a", "b", "c"]
# cells: letters, digits, the delimiter's neighbours, every kind of white space str.strip() removes
CELL = st.text(alphabet=list("xyz19 \t\xa0\x1c\u2003-.,"), max_size=4)


@st.composite
def delimited(draw, sep=";"):
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [sep.join(HEADER)]
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["ok", "ok", "ok", "short", "long", "blank", "spaces", "seps"]))
        n = {"ok": 3, "short": draw(st.integers(1, 2)), "long": draw(st.integers(4, 5))}.get(kind)
        if n:
            lines.append(sep.join(draw(CELL) for _ in range(n)))
        elif kind == "blank":
            lines.append("")
        elif kind == "spaces":
            lines.append(draw(st.sampled_from(["  ", "\t", " \xa0 "])))
        else:
            lines.append(sep * draw(st.integers(1, 3)))
    end = draw(st.sampled_from([newline, ""]))
    return newline.join(lines) + end


def _same(got, want):
    frame, issues = got
    ref_frame, ref_issues = want
    assert issues == ref_issues
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), ref_frame.reset_index(drop=True),
                                  check_dtype=False)
    assert list(frame["source_row"]) == list(ref_frame["source_row"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(delimited())
def test_vectorised_split_equals_the_reference(body):
    _same(text.split(body, ";", HEADER), text._split_exactly(body, ";", HEADER))


def test_malformed_rows_are_numbered_among_the_non_blank_rows():
    body = "a;b;c\n1;2;3\n\n;;\n4;5\n6;7;8;9\n \t\n 9 ; 8 ;7\n"
    frame, issues = text.split(body, ";", HEADER)
    assert [(i["source_row"], i["detail"]) for i in issues] == [
        ("3", "the row has 2 fields, the header 3"), ("4", "the row has 4 fields, the header 3")]
    assert frame["source_row"].tolist() == [1, 2, 5]
    assert frame[HEADER].values.tolist() == [["1", "2", "3"], ["", "", ""], ["9", "8", "7"]]
    _same((frame, issues), text._split_exactly(body, ";", HEADER))


def test_a_quote_open_at_the_end_of_a_line_does_not_join_it_to_the_next():
    body = 'a;b;c\n1;2;"3\n4;5;6"\n7;8;9\n'
    frame, issues = text.split(body, ";", HEADER)
    assert issues == []
    assert frame["source_row"].tolist() == [1, 2, 3]
    assert frame[HEADER].values.tolist() == [["1", "2", "3"], ["4", "5", '6"'], ["7", "8", "9"]]


def test_a_line_of_delimiters_is_a_row_whatever_else_the_file_holds():
    """';;' is a row of empty fields (rejected later as missing_required), with or without a
    malformed row elsewhere in the file: it once vanished, and renumbered the rows after it,
    when another row was malformed (a review's find)."""
    body = "a;b;c\n1;2;3\n;;\n4;5;6\n"
    for extra in ("", "x;y\n", '"q";r;s\n', '"q";r\n'):
        frame, issues = text.split(body + extra, ";", HEADER)
        assert frame["source_row"].tolist()[:3] == [1, 2, 3], extra
        assert frame[HEADER].values.tolist()[1] == ["", "", ""], extra


def test_a_line_of_other_white_space_before_the_header_is_blank_on_every_path():
    """A line of a no-break space alone before the header is blank, as str.strip() says and
    the header is found by: the header stays the header (it became data row 1 on one path,
    and made pandas take the no-break space for the header on another: review finds)."""
    for body, issues in (("\xa0\na;b;c\nx;y;z\n", []),
                         ("\xa0\na;b;c\nx;y;z\nq;r\n", [("2", "the row has 2 fields, the header 3")])):
        frame, found = text.split(body, ";", HEADER)
        assert frame[HEADER].values.tolist() == [["x", "y", "z"]] and frame["source_row"].tolist() == [1]
        assert [(i["source_row"], i["detail"]) for i in found] == issues
        _same((frame, found), text._split_exactly(body, ";", HEADER))


def test_white_space_ending_the_last_field_of_a_crlf_line_is_stripped():
    """'1;2;3 \\r\\n': the space before CRLF ends the last field and is stripped, as on every
    other path, even where no other field has white space at its edges (a mutation review:
    the vectorised check for edge white space missed it before the CR, and no test failed)."""
    body = "a;b;c\r\n1;2;3 \r\nx;y;z\t\r\n"
    frame, issues = text.split(body, ";", HEADER)
    assert issues == []
    assert frame[HEADER].values.tolist() == [["1", "2", "3"], ["x", "y", "z"]]
    _same((frame, issues), text._split_exactly(body, ";", HEADER))


def test_a_file_rejected_whole_counts_its_non_blank_lines_as_rows_read():
    """rows_read of a file rejected whole (here for a missing column) is its lines that are
    not blank, less the header, as the audit balances it: blank lines counted as rows went
    unnoticed in a mutation review."""
    body = "a;b\n1;2\n\n \t\n3;4\n\n"
    with pytest.raises(FileRejected) as e:
        text.split(body, ";", HEADER)
    assert (e.value.reason, e.value.rows_read) == ("missing_columns", 2)


@pytest.mark.parametrize("odd", ["\u2028", "\x1c", "\x85"])
def test_a_line_is_ended_by_cr_or_lf_alone_for_the_header_and_the_count_too(odd):
    """The header was found by str.splitlines, which also ends a line at U+2028, \\x1c or
    \\x85: a header with one after its first column lost the others ('missing column(s): b,
    c', though the rows were split against the whole line), and a rejected file counted such a
    row twice (a review)."""
    frame, issues = text.split(f"a{odd};b;c\n1;2;3\n", ";", HEADER)
    assert list(frame.columns) == ["source_row", *HEADER] and len(frame) == 1 and not issues
    assert text._data_lines(f"a;b;c\n1;x{odd}y;3\n") == 1
