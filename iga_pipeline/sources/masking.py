"""What an issue or a `source_file` may show of what a sender wrote.

Personnummer and names never leave the adapters: every raw value an issue
quotes goes through `safe_value`, every stored path through `safe_path`, and
`mask_split_values` masks digits that only together, across one row's or one
file's issues, would make a personnummer. decisions.md, "Bad input and personal
data", gives the rules in words; reliability-history.md (P1-P11) what each one stops.
"""

from __future__ import annotations

import re
import string
from functools import cache

import pandas as pd

from iga_pipeline import reference
from iga_pipeline.pseudonym import PseudonymKey


_DATE_LIKE = re.compile(r"(?:(\d{4})-[01]?\d-[0-3]?\d|[0-3]?\d[./][01]?\d[./](\d{4}))")
# Years a date is shown with: the project's (2009-2012) and its neighbours, where a typo
# ('2010-02-30', '2009-13-01') is worth showing. A '1971-02-30' in a field of dates is more
# likely a birth date, and a '7102-08-90' a personnummer in a date's shape (a review's find:
# with the next field's '13.7.2010' it gave 710208-9013 whole).
_SHOWN_YEARS = range(2000, 2030)
# Six digits are a birth date, nine a whole personnummer (they decide the check digit), and
# senders separate them with anything ('85_01_01_238', '8501:01238', '1931-07-19–8768') or
# slip a letter in ('85O1O1-2383'): text with six or more has every digit masked, unless it
# is plainly a date of the project's years in a field of dates, which an invalid_date detail
# must show ('2010-02-30'). A date anywhere else is masked: a register shifted by a column put
# a birth date in `kon` and the last four in `fodelseland`, and the two echoes made a personnummer.
_MASK_FROM_DIGITS = 6


def _a_shown_date(text: str) -> bool:
    """`text` is written as a date (YYYY-MM-DD, D.M.YYYY or D/M/YYYY, its month up to 19 and
    its day up to 39: possibly impossible, as a typo makes it) of one of `_SHOWN_YEARS`.
    A month of 20-39 (day and month swapped) would be shown too, but it lets more
    personnummer be read across two dates (a review: 3.08% of those of births 1950-1995
    against 2.53%), so such a date is masked; its file and row lead to it."""
    m = _DATE_LIKE.fullmatch(text)
    return bool(m) and int(m.group(1) or m.group(2)) in _SHOWN_YEARS


def _digits_hidden(text: str) -> str:
    """`text` with every digit '#': '1983-05-14' -> '####-##-##'."""
    return "".join("#" if c.isdigit() else c for c in text)


def _masked(text: str, date: bool = False) -> str:
    """`text` with what may be a personnummer, or part of one, masked by '#'; a date is
    kept only if `date` (the field holds dates) and it is of the project's years."""
    if sum(c.isdigit() for c in text) >= _MASK_FROM_DIGITS and not (date and _a_shown_date(text.strip())):
        return _digits_hidden(text)
    return text


# Words of the contract's file names and codes beside the reference data's own,
# and the usual file extensions: what a code or a stray file's name is made of.
_CONTRACT_WORDS = frozenset("""
    kommuner leverantorer enkater petho folkuniversitetet astorp deltagare cykel resultat
    slut dagar enkat csv json xlsx xls xlsm ods txt pdf doc docx rtf odt zip bak tmp old lock
    ja nej
""".split())


# What a code may hold beside letters and decimal digits: ASCII punctuation, not the
# apostrophe (see _looks_like_a_code).
_CODE_PUNCTUATION = frozenset(string.punctuation) - {"'"}
_WORD = re.compile(r"[^\W\d_]+")  # a run of letters: 'LASMIG', 'txt'
# A code has a letter or two apart ('12,5h', 'K/M'); more are a name spelt out ('Z.y.x.w.q'), in
# one value, over one row's values or over one path's folders ('A/l/i/H.a/s.s/a.n': a review).
_MAX_SINGLE_LETTERS = 2


def _single_letters(text: str) -> int:
    """The letters of `text` that stand alone: 2 in 'K/M', 1 in '12,5h', none in 'ANST'."""
    return sum(len(w) == 1 for w in _WORD.findall(text))


@cache
def _known_words() -> frozenset[str]:
    # Not the country codes: 'BO' and 'LI' are first names as well.
    texts = [*reference.municipalities().values(),
             *reference.table("outcome_codes")["code"].dropna().astype(str),
             *reference.table("intervention_codes")["code"].dropna().astype(str),
             *reference.table("register_codes")["code"].dropna().astype(str)]
    return frozenset({w.casefold() for t in texts for w in _WORD.findall(t)} | _CONTRACT_WORDS)


def _looks_like_a_code(text: str) -> bool:
    """Codes, dates and numbers are echoed; anything that could be a name is not.

    Echoed: Latin-1 letters, decimal digits and ASCII punctuation only (no white space,
    invisible or combining character, symbol, nor a surrogate: text that is not
    valid Unicode), at most two single letters, and every longer
    run of letters a word of the contract's codes,
    municipality names or file names ('ANST', 'flykting', 'X', '2010-02-30',
    '12,5h', 'deltagare_cykel2.xlsx'). A name
    is a word of none of these, in any case ('HASSANZADEH', 'kvarnstrom'), so
    it is described instead; so is an unknown code ('PENSION'): the issue's
    file and row lead to it."""
    # Not quoted, each a review's find: an apostrophe (issue details quote values between
    # apostrophes, which mask_split_values reads back: "'85010" hid its digits there);
    # invisible or combining characters (zero-width spaces between a name's letters made
    # them single letters, 'Z\u200by\u200bx...'); numbers that are no decimal digits and
    # symbols, which are no digits to count or mask ('7⑪-⑳-1029' and '7㍣㍬㍙-㍘298' held
    # nine digits of a personnummer).
    # Letters of other scripts either: Cyrillic 'О' and 'З', or Latin 'Ƨ', look like digits
    # ('85О1О1' and 'Ƨ-З' read as 850101-2-3: the red-team review of 2026-12-05), and no code of
    # the contract needs them (Å, Ä, Ö are Latin-1).
    if not all(c.isdecimal() or (c.isalpha() and c <= "\xff") or c in _CODE_PUNCTUATION for c in text):
        return False
    known = _known_words()
    words = _WORD.findall(text)
    return (sum(len(w) == 1 for w in words) <= _MAX_SINGLE_LETTERS
            and all(len(w) == 1 or w.casefold() in known for w in words))


_MAX_QUOTED = 24  # characters: a longer value is described, not quoted


def safe_value(value: object, *, date: bool = False) -> str:
    """A raw value made fit for an issue detail or a log line.

    Every digit of text with six digits or more is masked with '#' (all or part of
    a personnummer), unless the text is plainly a date of the project's years
    (`_a_shown_date`) and `date` says that the value was read from a field of dates.
    Text that does not look like a code (it could be a name) is described, not
    quoted: "<text of 9 characters>"; so is text longer than `_MAX_QUOTED`."""
    text = "" if value is None else str(value)
    text = _masked(text, date)
    if len(text) > _MAX_QUOTED or not _looks_like_a_code(text):
        return f"<text of {len(text)} characters>"
    return text


# What an issue's detail quotes (safe_value's output, which holds no apostrophe): between
# apostrophes that are no part of a word (the export's '85010').
_QUOTED = re.compile(r"(?<!\w)'([^']*)'(?!\w)")


def _described(quoted: str) -> bool:
    """A value safe_value described ('<text of 12 characters>'): it quotes nothing of the sender's."""
    return quoted.startswith("<text of ")


def _digits(quoted: str) -> int:
    """Digits a quoted value holds, masked ones counted; a described value holds none."""
    return 0 if _described(quoted) else sum(c.isdigit() or c == "#" for c in quoted)


def _letters(quoted: str) -> int:
    """Single letters a quoted value holds ('H-a': 2); a described value holds none."""
    return 0 if _described(quoted) else _single_letters(quoted)


def mask_split_values(issues: pd.DataFrame) -> pd.Series:
    """The issues' details, with every digit they quote masked for a row (source_file,
    source_row; a file's issues of no row count as one row) whose quoted values hold a
    personnummer's worth between them: six digits or more, in more than one value. Each value
    is safe alone (safe_value), but a review put '85010' in Kommun and '12383' in an hours
    column: two warnings of one row, together 8501012383; a register shifted by a column put a
    birth date in `kon` and the last four in `fodelseland`. A date quoted from a field of dates
    (an invalid_date detail) counts, and stays shown. Single letters are counted alike: more than
    two between a row's values ('H-a', 's-s' and 'a-n' in kon, fodelseland and malgrupp spelt
    Hassan) have each value with one described; a described value is left as it is."""
    detail = issues["detail"]
    quoting = detail.str.contains("'", regex=False, na=False)
    if not quoting.any():
        return detail
    rows = pd.Series(list(zip(issues.loc[quoting, "source_file"],
                              issues.loc[quoting, "source_row"].fillna("<no row>"))),
                     index=detail.index[quoting], dtype=object)
    quoted = [_QUOTED.findall(d) for d in detail[quoting]]
    total, with_digits, letters = {}, {}, {}
    for row, values in zip(rows, quoted):
        n = [_digits(q) for q in values]
        total[row] = total.get(row, 0) + sum(n)
        with_digits[row] = with_digits.get(row, 0) + sum(1 for x in n if x)
        letters[row] = letters.get(row, 0) + sum(_letters(q) for q in values)
    split = {row for row in total if total[row] >= _MASK_FROM_DIGITS and with_digits[row] > 1}
    spelt = {row for row in letters if letters[row] > _MAX_SINGLE_LETTERS}
    if not split and not spelt:
        return detail

    def masking(row):
        def mask(m: re.Match) -> str:
            value = m.group(1)
            if row in spelt and _letters(value):
                return f"'<text of {len(value)} characters>'"
            # a described value says its length, no digit of the sender's; only a field of
            # dates leaves a date unmasked (safe_value)
            if row not in split or _described(value) or _a_shown_date(value):
                return m.group(0)
            return "'" + _digits_hidden(value) + "'"
        return mask

    out = detail.copy()
    hit = rows[rows.isin(split | spelt)]
    out[hit.index] = [_QUOTED.sub(masking(row), detail[i]) for i, row in hit.items()]
    return out


_CONTRACT_FOLDERS = frozenset({"kommuner", "leverantorer", "enkater", "petho", "folkuniversitetet", "astorp"})


@cache
def _contract_file() -> re.Pattern:
    """The contract's file names, for the project's cycles."""
    n = "(" + "|".join(map(str, reference.cycles())) + ")"
    return re.compile(rf"deltagare_cykel{n}\.csv|cykel{n}_resultat\.xlsx|cykel{n}_(slut|90dagar)\.csv"
                      rf"|cykel{n}(_90dagar)?\.json|enkat_cykel{n}\.csv")


# Files an operating system leaves in any folder it shows (Finder, Explorer, Dolphin): no sender
# chose their names, so they are shown as they are ('.DS_Store' read as an unexplained id).
SYSTEM_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".directory", ".localized"})


def _municipality_folder(parts: list[str], i: int) -> bool:
    """Whether `parts[i]` is a project municipality's code right under kommuner/."""
    return i == 1 and parts[0] == "kommuner" and parts[i] in reference.municipalities()


def _contract_part(parts: list[str], i: int) -> bool:
    """Whether `parts[i]` is a name the contract gives, where it gives it: a folder of its own,
    a project municipality's code right under kommuner/, or a delivery's file name as the
    file's own name (the last component). A folder named like a delivery is the sender's name:
    ten of them, 'cykel8_slut.csv/cykel1_slut.csv/...', spelt a personnummer with their cycles
    (a review, P13)."""
    part = parts[i]
    return (part in _CONTRACT_FOLDERS or _municipality_folder(parts, i)
            or (i == len(parts) - 1 and bool(_contract_file().fullmatch(part))))


def safe_path(rel: str, key: PseudonymKey) -> str:
    """A path relative to the raw root, fit to be stored as `source_file`.

    File and folder names are chosen by the senders; one named after a person
    ('CV Zlatimira Hodžić.docx', kommuner/850101-2383/...) must not reach the
    warehouse. The contract's own names are kept as they are; any other
    component is kept only if it looks like a code (see safe_value), and is
    otherwise replaced by '~' and a short hash of itself keyed with the pseudonym key
    (`PseudonymKey.name_id`; an extension without digits kept), stable from build to
    build. The digits are counted over the whole path: when
    the components other than the contract's hold six or more, every one of them
    with a digit is hashed, as a personnummer can be split over folders
    ('1991/1102/7711.pdf') or hide behind a contract-like name
    ('deltagare_cykel07703145123.csv'). The cycle of a delivery's own file name counts too
    (a municipality's code does not): 'kommuner/85010/deltagare_cykel1.csv' held a birth date.
    Single letters are counted over the path alike: more than two, and every component with
    one is hashed ('A/l/i/H.a/s.s/a.n/' spelt a name one or two letters a folder)."""
    parts = rel.split("/")
    contract = [_contract_part(parts, i) for i in range(len(parts))]
    loose_digits = sum(c.isdigit() for i, part in enumerate(parts) if not _municipality_folder(parts, i)
                       for c in part)
    spelt = sum(_single_letters(part) for part in parts) > _MAX_SINGLE_LETTERS
    shown = []
    for part, ok in zip(parts, contract):
        has_digits = any(c.isdigit() for c in part)
        if ok or part in SYSTEM_FILES or (_looks_like_a_code(part) and len(part) <= 60
                  and not (has_digits and loose_digits >= _MASK_FROM_DIGITS)
                  and not (spelt and _single_letters(part))):
            shown.append(part)
        else:
            stem, dot, ext = part.rpartition(".")
            # An extension is kept only without digits: 'Hodzic.19850101' or '850101.2382' must
            # not keep a birth date or a personnummer's last four; nor a letter of a name spelt out.
            suffix = (f".{ext}" if dot and stem and _looks_like_a_code(ext) and len(ext) <= 8
                      and not any(c.isdigit() for c in ext) and not (spelt and _single_letters(ext)) else "")
            # a name that is not UTF-8 on disk comes as lone surrogates: name_id encodes them as they are
            shown.append("~" + key.name_id(part) + suffix)
    return "/".join(shown)
