"""What every adapter shares: the file inventory, the issue records, safe text.

An adapter turns the bytes of one delivery into a frame of its rows plus
issues (the delivery's own columns; `ingest.py` harmonises them).
Personnummer and names never leave an adapter: they are replaced by
`person_key` (see `iga_pipeline.pseudonym`) before the frame is returned, and
no issue detail ever echoes a raw value that could be one.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import string
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path, PurePosixPath

import pandas as pd

from iga_pipeline import reference, settings
from iga_pipeline.pseudonym import PseudonymKey, key_from_env

ISSUE_COLUMNS = ["source_file", "source_row", "severity", "reason", "detail"]


class FileRejected(Exception):
    """The whole file cannot be used. `reason` is a contract reason code."""

    def __init__(self, reason: str, detail: str, rows_read: int = 0):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.rows_read = rows_read


# The kind of a folder under the raw root that could not be listed (raw/inventory rejects it).
UNLISTED_FOLDER = "unlisted_folder"


@dataclass(frozen=True)
class Delivery:
    """One raw file, classified by its path (raw-deliveries.md)."""

    path: Path  # absolute
    source_file: str  # relative to the raw root, POSIX separators
    kind: str  # register | petho | folkuniversitetet | astorp | survey | unexpected | unlisted_folder
    cycle: int | None
    municipality_code: str | None = None  # registers: the folder's kommunkod
    timepoint: str | None = None  # providers: 'end', '90d' or 'both' (Pethö)
    problem: tuple[str, str] | None = None  # a whole-file reason known from the path alone
    refused: bool = False  # not to be opened at all (a link out of the raw root, too large)


# <N> is the cycle as the contract writes it (1..8): ASCII digits, no leading zero. 'cykel02' or a
# digit of another script would be a second name for one delivery (two files of one cycle and
# time point): such a file is unexpected_file instead.
_PATTERNS = [
    ("register", re.compile(r"^kommuner/(?P<kommun>[^/]+)/deltagare_cykel(?P<cycle>[1-9][0-9]*)\.csv$")),
    ("petho", re.compile(r"^leverantorer/petho/cykel(?P<cycle>[1-9][0-9]*)_resultat\.xlsx$")),
    (
        "folkuniversitetet",
        re.compile(r"^leverantorer/folkuniversitetet/cykel(?P<cycle>[1-9][0-9]*)_(?P<tp>slut|90dagar)\.csv$"),
    ),
    ("astorp", re.compile(r"^leverantorer/astorp/cykel(?P<cycle>[1-9][0-9]*)(?P<tp>_90dagar)?\.json$")),
    ("survey", re.compile(r"^enkater/enkat_cykel(?P<cycle>[1-9][0-9]*)\.csv$")),
]


def _refusal(raw_root: Path, path: Path) -> tuple[str, str] | None:
    """A reason not to open a file at all: a link out of the raw root, or too large."""
    try:
        return _refusal_of(raw_root, path)
    except (OSError, RuntimeError) as e:  # RuntimeError: pathlib's "Symlink loop from <path>"
        # Never the message: it names the path, which may name a person.
        return ("unreadable_file", f"the file could not be examined ({type(e).__name__}): a link that "
                                   "loops, or a file gone since the raw root was listed")


def _refusal_of(raw_root: Path, path: Path) -> tuple[str, str] | None:
    if path.is_symlink():
        target = path.resolve()
        root = raw_root.resolve()
        if not target.is_relative_to(root):
            return ("unreadable_file", "a symbolic link to a path outside the raw root; not followed")
        if not target.is_file():
            return ("unreadable_file", "a symbolic link that points to no file")
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):  # a pipe would hang the build, a socket break it
        return ("unreadable_file", "not a regular file (a pipe, device, socket or folder)")
    limit = settings.max_file_bytes()
    size = st.st_size
    if size > limit:
        return ("unreadable_file", f"the file has {size:,} bytes, above the limit of "
                                   f"{limit:,} bytes (IGA_MAX_FILE_MB)")
    return None


def classify(raw_root: Path, path: Path, key: PseudonymKey | None = None) -> Delivery:
    """Classify one file under the raw root by its relative path (`key`: the pseudonym key
    names the senders' own names are hashed with, see safe_path; by default IGA_PSEUDONYM_KEY's)."""
    delivery = _classify_path(raw_root, path, key_from_env() if key is None else key)
    refusal = _refusal(Path(raw_root), path)
    if refusal:
        return replace(delivery, problem=refusal, refused=True)
    return delivery


def _classify_path(raw_root: Path, path: Path, key: PseudonymKey) -> Delivery:
    rel = PurePosixPath(path.relative_to(raw_root).as_posix()).as_posix()
    shown = safe_path(rel, key)  # what is recorded as source_file
    for kind, pattern in _PATTERNS:
        m = pattern.fullmatch(rel)  # not match: '$' also matches before a final newline
        if not m:
            continue
        cycle = int(m.group("cycle"))
        cycles = reference.cycles()
        if cycle not in cycles:
            return Delivery(path, shown, "unexpected", None, problem=(
                "unexpected_file", f"cycle {safe_value(cycle)} is not one of the project's cycles "
                                   f"1-{max(cycles)}"))
        problem = None
        kommun = None
        timepoint = None
        if kind == "register":
            kommun = m.group("kommun")
            if kommun not in reference.municipalities():
                problem = ("unknown_municipality",
                           "the folder is not the kommunkod of a project municipality")
        else:
            if kind == "petho":
                timepoint = "both"
            elif kind == "folkuniversitetet":
                timepoint = "end" if m.group("tp") == "slut" else "90d"
            elif kind == "astorp":
                timepoint = "90d" if m.group("tp") else "end"
            if kind != "survey" and cycles[cycle].source_kind != kind:
                problem = (
                    "provider_cycle_mismatch",
                    f"cycle {cycle} was run by {cycles[cycle].provider}, not by this provider",
                )
        return Delivery(path, shown, kind, cycle, kommun, timepoint, problem)
    return Delivery(path, shown, "unexpected", None, problem=(
        "unexpected_file", "the path matches no delivery pattern of the contract"))


def _named_as_a_delivery(raw_root: Path, path: Path) -> bool:
    rel = path.relative_to(raw_root).as_posix()
    return any(pattern.fullmatch(rel) for _, pattern in _PATTERNS)


def _is_link(path: Path) -> bool:
    """Whether `path` is a symbolic link; False when it cannot be examined (a folder that may
    not be entered, a path too long): os.walk then reports the folder as not listed. Never
    the exception itself: its message names the path, which may name a person."""
    try:
        return path.is_symlink()
    except OSError:
        return False


def discover(raw_root: Path, key: PseudonymKey | None = None) -> list[Delivery]:
    """Every file under the raw root, classified, in a stable order (`key`: as for classify).

    Symbolic links are listed (so that one pointing out of the raw root is
    recorded as refused) but folders behind links are not walked. A folder named as a
    delivery is listed too (refused: not a regular file), or an empty one would leave the
    cycle without that delivery and no trace of why (a review)."""
    raw_root = Path(raw_root)
    files = []
    unlisted: dict[Path, OSError] = {}

    def note(error: OSError) -> None:  # a folder os.walk could not list (permissions)
        if error.filename and Path(error.filename) != raw_root:
            unlisted[Path(error.filename)] = error

    for folder, dirs, names in os.walk(raw_root, followlinks=False, onerror=note):
        dirs.sort()
        files += [Path(folder) / n for n in names]
        files += [Path(folder) / d for d in dirs
                  if _is_link(Path(folder) / d) or _named_as_a_delivery(raw_root, Path(folder) / d)]
    key = key_from_env() if key is None else key
    found = [classify(raw_root, p, key) for p in sorted(files)]
    # Its files are missing from the build: say so, or they would vanish without a trace.
    found += [Delivery(p, safe_path(p.relative_to(raw_root).as_posix(), key), UNLISTED_FOLDER, None, refused=True,
                       problem=("unreadable_file", f"a folder that could not be listed ({type(e).__name__}): "
                                                   "whatever it holds is missing from this build"))
              for p, e in sorted(unlisted.items())]
    return found


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

    Echoed: letters, decimal digits and ASCII punctuation only (no white space,
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
    if not all(c.isdecimal() or (c.isalpha() and not c.isnumeric()) or c in _CODE_PUNCTUATION for c in text):
        return False
    known = _known_words()
    words = _WORD.findall(text)
    # a code has a letter or two apart ('12,5h', 'K/M'); 'Z.y.x.w.q' is a name spelt out
    return sum(len(w) == 1 for w in words) <= 2 and all(len(w) == 1 or w.casefold() in known for w in words)


def safe_value(value: object, limit: int = 24, *, date: bool = False) -> str:
    """A raw value made fit for an issue detail or a log line.

    Every digit of text with six digits or more is masked with '#' (all or part of
    a personnummer), unless the text is plainly a date of the project's years
    (`_a_shown_date`) and `date` says that the value was read from a field of dates.
    Text that does not look like a code (it could be a name) is described, not
    quoted: "<text of 9 characters>"."""
    text = "" if value is None else str(value)
    text = _masked(text, date)
    if len(text) > limit or not _looks_like_a_code(text):
        return f"<text of {len(text)} characters>"
    return text


# What an issue's detail quotes (safe_value's output, which holds no apostrophe): between
# apostrophes that are no part of a word (the export's '85010').
_QUOTED = re.compile(r"(?<!\w)'([^']*)'(?!\w)")


def _digits(quoted: str) -> int:
    """Digits a quoted value holds, masked ones counted; a described value ('<text of 12
    characters>') holds none."""
    return 0 if quoted.startswith("<text of ") else sum(c.isdigit() or c == "#" for c in quoted)


def mask_split_values(issues: pd.DataFrame) -> pd.Series:
    """The issues' details, with every digit they quote masked for a row (source_file,
    source_row; a file's issues of no row count as one row) whose quoted values hold a
    personnummer's worth between them: six digits or more, in more than one value. Each value
    is safe alone (safe_value), but a review put '85010' in Kommun and '12383' in an hours
    column: two warnings of one row, together 8501012383; a register shifted by a column put a
    birth date in `kon` and the last four in `fodelseland`. A date quoted from a field of dates
    (an invalid_date detail) counts, and stays shown."""
    detail = issues["detail"]
    quoting = detail.str.contains("'", regex=False, na=False)
    if not quoting.any():
        return detail
    rows = pd.Series(list(zip(issues.loc[quoting, "source_file"],
                              issues.loc[quoting, "source_row"].fillna("<no row>"))),
                     index=detail.index[quoting], dtype=object)
    counts = [[_digits(q) for q in _QUOTED.findall(d)] for d in detail[quoting]]
    total, with_digits = {}, {}
    for row, n in zip(rows, counts):
        total[row] = total.get(row, 0) + sum(n)
        with_digits[row] = with_digits.get(row, 0) + sum(1 for x in n if x)
    split = {row for row in total if total[row] >= _MASK_FROM_DIGITS and with_digits[row] > 1}
    if not split:
        return detail

    def mask(m: re.Match) -> str:
        value = m.group(1)
        if _a_shown_date(value):  # only a field of dates leaves a date unmasked (safe_value)
            return m.group(0)
        return "'" + _digits_hidden(value) + "'"

    out = detail.copy()
    hit = rows[rows.isin(split)].index
    out[hit] = [_QUOTED.sub(mask, d) for d in detail[hit]]
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


def _contract_part(parts: list[str], i: int) -> bool:
    """Whether `parts[i]` is a name the contract gives, where it gives it: a folder of its own,
    a project municipality's code right under kommuner/, or a delivery's file name."""
    part = parts[i]
    return (part in _CONTRACT_FOLDERS or bool(_contract_file().fullmatch(part))
            or (i == 1 and parts[0] == "kommuner" and part in reference.municipalities()))


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
    ('deltagare_cykel07703145123.csv')."""
    parts = rel.split("/")
    contract = [_contract_part(parts, i) for i in range(len(parts))]
    loose_digits = sum(c.isdigit() for part, ok in zip(parts, contract) if not ok for c in part)
    shown = []
    for part, ok in zip(parts, contract):
        has_digits = any(c.isdigit() for c in part)
        if ok or part in SYSTEM_FILES or (_looks_like_a_code(part) and len(part) <= 60
                  and not (has_digits and loose_digits >= _MASK_FROM_DIGITS)):
            shown.append(part)
        else:
            stem, dot, ext = part.rpartition(".")
            # An extension is kept only without digits: 'Hodzic.19850101' or '850101.2382' must
            # not keep a birth date or a personnummer's last four.
            suffix = (f".{ext}" if dot and stem and _looks_like_a_code(ext) and len(ext) <= 8
                      and not any(c.isdigit() for c in ext) else "")
            # a name that is not UTF-8 on disk comes as lone surrogates: name_id encodes them as they are
            shown.append("~" + key.name_id(part) + suffix)
    return "/".join(shown)


def issues_frame(rows: list[dict] | None = None) -> pd.DataFrame:
    return pd.DataFrame(rows or [], columns=ISSUE_COLUMNS).astype(
        {"source_file": "string", "source_row": "string", "severity": "string",
         "reason": "string", "detail": "string"}
    )


@dataclass
class AdapterOutput:
    """What an adapter returns for one file.

    `rows` has one row per data row read (valid or not), in the delivery's own
    columns, with `source_row` and, from the register and provider adapters,
    `person_key` (NA where the personnummer was invalid) and `pnr_error` (the
    survey's: `svar_id` and `svar_id_error`). Validation decides which rows are
    rejected."""

    rows: pd.DataFrame
    interventions: pd.DataFrame = field(default_factory=pd.DataFrame)
    issues: pd.DataFrame = field(default_factory=issues_frame)
    followed_up: bool | None = None  # a delivery with 90-day statuses: whether any row gives one


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
