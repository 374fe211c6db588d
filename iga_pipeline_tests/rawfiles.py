"""Write raw deliveries into a raw root exactly as raw-deliveries.md describes them.

A test says *what* is delivered; this module knows *how* each sender writes it:

    raw = RawRoot(tmp_path / "raw")
    ali = Person(date(1985, 1, 1), 238, "Ali", "Hassan")
    raw.register("1277", 2, [register_row(ali, 2)])
    raw.folkuniversitetet(2, "slut", [fu_end_row(ali, kommun="Åstorp", utfallskod="1")])

Rows are dicts keyed by the contract's column names (missing keys are written
empty), or plain lists written as they are (for malformed rows). Nothing here
validates: a test may write any bytes it likes.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from iga_pipeline.personnummer import format_pnr
from iga_pipeline.sources.common import classify

# --- the contract's headers ------------------------------------------------------

REGISTER_COLUMNS = [
    "personnummer", "fornamn", "efternamn", "kon", "fodelseland", "malgrupp", "cykel",
    "inskrivningsdatum", "utskrivningsdatum", "avbrott_orsak",
]
PETHO_COLUMNS = ["Personnr", "Namn", "Insatser", "Status cykelslut", "Status 90 dagar", "Kommentar"]
FU_HOURS = ["Timmar validering", "Timmar yrkesprövning", "Timmar samhällsorientering",
            "Timmar jobbsökning"]
FU_END_COLUMNS = ["Personnummer", "Kommun", *FU_HOURS, "Utfallskod", "Utfallsdatum"]
FU_90_COLUMNS = ["Personnummer", "Kommun", "Utfallskod", "Uppföljningsdatum"]
SURVEY_COLUMNS = ["svar_id", "kommunkod", "okad_mojlighet", "tolk"]

CYCLE_START = {1: dt.date(2009, 1, 1), 2: dt.date(2009, 7, 1), 3: dt.date(2010, 1, 1),
               4: dt.date(2010, 7, 1), 5: dt.date(2011, 1, 1), 6: dt.date(2011, 7, 1),
               7: dt.date(2012, 1, 1), 8: dt.date(2012, 7, 1)}
CYCLE_END = {c: dt.date(s.year, 6, 30) if s.month == 1 else dt.date(s.year, 12, 31)
             for c, s in CYCLE_START.items()}
TARGET_GROUP = {c: "flykting" if c <= 4 else "ifo" for c in CYCLE_START}

# Forms that identify a person: 10 and 12 digits, with and without the dash.
SEARCH_FORMS = ("YYMMDD-NNNC", "YYMMDDNNNC", "YYYYMMDDNNNC", "YYYYMMDD-NNNC")


@dataclass(frozen=True)
class Person:
    """A made-up person with a valid personnummer (see personnummer.format_pnr)."""

    birth: dt.date
    serial: int
    first: str = "Test"
    last: str = "Person"
    coordination: bool = False

    def pnr(self, form: str = "YYMMDD-NNNC") -> str:
        return format_pnr(self.birth, self.serial, coordination=self.coordination, form=form)

    @property
    def pnr12(self) -> str:
        """The normalised value that identifies the person (YYYYMMDDNNNC)."""
        return self.pnr("YYYYMMDDNNNC")

    @property
    def as_number(self) -> int:
        """How Excel stores YYMMDD-NNNC when the dash is lost."""
        return int(self.pnr("YYMMDDNNNC"))

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def written_forms(self) -> list[str]:
        """Every form in which this personnummer could leak (10/12 digits, +/- dash)."""
        forms = {self.pnr(f) for f in SEARCH_FORMS}
        if self.birth.year < 1910:
            forms.add(self.pnr("YYMMDD+NNNC"))
        return sorted(forms)


def personal_strings(persons: list[Person]) -> dict[str, str]:
    """Every written form of each person's personnummer and name -> what it is (for scans)."""
    out = {}
    for p in persons:
        for form in p.written_forms():
            out[form] = f"personnummer of {p.first}"
        for name in (p.first, p.last, p.name):
            out[name] = f"name of {p.first}"
    return out


def people(n: int, start: int = 0) -> list[Person]:
    """n distinct adults (born 1960-1989), deterministic."""
    out = []
    for i in range(start, start + n):
        birth = dt.date(1960 + i % 30, 1 + i % 12, 1 + i % 28)
        out.append(Person(birth, 100 + i, f"Förnamn{i}", f"Efternamn{i}"))
    return out


# --- rows -------------------------------------------------------------------------------

def register_row(person: Person, cycle: int, *, form: str = "YYMMDD-NNNC", **fields) -> dict:
    """A valid register row for a completer; keyword arguments override any column."""
    start = CYCLE_START[cycle]
    row = {
        "personnummer": person.pnr(form),
        "fornamn": person.first,
        "efternamn": person.last,
        "kon": "K",
        "fodelseland": "IQ",
        "malgrupp": TARGET_GROUP[cycle],
        "cykel": str(cycle),
        "inskrivningsdatum": (start + dt.timedelta(days=4)).isoformat(),
        "utskrivningsdatum": CYCLE_END[cycle].isoformat(),
        "avbrott_orsak": "",
    }
    row.update(fields)
    return row


def petho_row(person: Person | None, *, personnr=None, insatser: str = "Validering",
              status_end: str | None = "Anställd", status_90d: str | None = None,
              kommentar: str | None = None, as_number: bool = False) -> list:
    """A data row of a Pethö sheet, in header order. `personnr` overrides the cell."""
    if personnr is None and person is not None:
        personnr = person.as_number if as_number else person.pnr("YYMMDD-NNNC")
    name = person.name if person is not None else None
    return [personnr, name, insatser, status_end, status_90d, kommentar]


def fu_end_row(person: Person, *, kommun: str = "Åstorp", hours: Sequence = ("", "", "", ""),
               utfallskod: str = "1", utfallsdatum: str = "", personnummer: str | None = None) -> dict:
    """A row of cykel<N>_slut.csv. Hours given as numbers are written with a decimal comma."""
    row = {"Personnummer": person.pnr("YYMMDDNNNC") if personnummer is None else personnummer,
           "Kommun": kommun, "Utfallskod": utfallskod, "Utfallsdatum": utfallsdatum}
    row.update({column: _decimal_comma(h) for column, h in zip(FU_HOURS, hours)})
    return row


def fu_90_row(person: Person, *, kommun: str = "Åstorp", utfallskod: str = "1",
              datum: str = "", personnummer: str | None = None) -> dict:
    return {"Personnummer": person.pnr("YYMMDDNNNC") if personnummer is None else personnummer,
            "Kommun": kommun, "Utfallskod": utfallskod, "Uppföljningsdatum": datum}


def astorp_entry(person: Person | None, *, kommunkod: str | None = "1277",
                 insatser: Iterable[tuple[str, float | None]] | None = (("VALIDERING", 12.5),),
                 status: str | None = "ANST", pnr=None, form: str = "YYYYMMDD-NNNC") -> dict:
    """One element of `deltagare` in cykel<N>.json. status=None writes JSON null."""
    entry = {"pnr": person.pnr(form) if pnr is None else pnr, "kommunkod": kommunkod}
    if insatser is not None:
        entry["insatser"] = [{"typ": t} if h is None else {"typ": t, "timmar": h} for t, h in insatser]
    entry["status_cykelslut"] = status
    return entry


def astorp_followup(person: Person, status: str | None = "ANST", *, pnr=None,
                    form: str = "YYYYMMDD-NNNC") -> dict:
    return {"pnr": person.pnr(form) if pnr is None else pnr, "status": status}


def _decimal_comma(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, (int, float)):
        return f"{value:g}".replace(".", ",")
    return str(value)


def _line(row, columns: Sequence[str], sep: str) -> str:
    if isinstance(row, Mapping):
        values = [row.get(c, "") for c in columns]
    else:
        values = list(row)
    return sep.join("" if v is None else str(v) for v in values)


# --- the raw root -----------------------------------------------------------------------

class RawRoot:
    """A raw root on disk; every method returns the path it wrote."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, rel: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_bytes(self, rel: str, data: bytes) -> Path:
        p = self.path(rel)
        p.write_bytes(data)
        return p

    def write_text(self, rel: str, text: str, encoding: str = "utf-8") -> Path:
        return self.write_bytes(rel, text.encode(encoding))

    def _csv(self, rel: str, columns: Sequence[str], rows, *, sep: str, encoding: str,
             newline: str = "\n", bom: bool = False) -> Path:
        lines = [sep.join(columns)] + [_line(r, columns, sep) for r in rows]
        data = (newline.join(lines) + newline).encode(encoding)
        return self.write_bytes(rel, (b"\xef\xbb\xbf" if bom else b"") + data)

    # 1. municipality registers: UTF-8 (BOM allowed), ';'
    @staticmethod
    def register_rel(kommun: str, cycle: int) -> str:
        return f"kommuner/{kommun}/deltagare_cykel{cycle}.csv"

    def register(self, kommun: str, cycle: int, rows, *, bom: bool = False,
                 columns: Sequence[str] = REGISTER_COLUMNS, encoding: str = "utf-8") -> Path:
        return self._csv(self.register_rel(kommun, cycle), columns, rows, sep=";",
                         encoding=encoding, bom=bom)

    # 2. Pethö: one workbook, one sheet per municipality
    PETHO_REL = "leverantorer/petho/cykel1_resultat.xlsx"

    def petho(self, sheets: Mapping[str, list], *, info_sheet: bool = True,
              columns: Sequence[str] = PETHO_COLUMNS, after_blank: Mapping[str, list] | None = None,
              rapportdatum: dt.date = dt.date(2009, 7, 10), cycle: int = 1) -> Path:
        """sheets: sheet title -> data rows (lists in `columns` order).

        Layout per sheet: row 1 title, row 2 'Rapportdatum' + date, row 3 empty,
        row 4 header, data from row 5. `after_blank` rows are written after one
        entirely empty row (they must be ignored). `info_sheet` adds a first
        sheet 'Info' whose content looks like data (it must be ignored too)."""
        import openpyxl

        wb = openpyxl.Workbook()
        wb.remove(wb.active)
        if info_sheet:
            info = wb.create_sheet("Info")
            info.append(["Resultatrapport IGA, Pethö Consulting"])
            info.append(["Rapportdatum", rapportdatum])
            info.append([])
            info.append(list(columns))
            info.append(["not a personnummer", "Info Infosson", "Praktik", "Anställd", "Anställd", ""])
        for title, rows in sheets.items():
            ws = wb.create_sheet(title)
            ws.cell(row=1, column=1, value=f"IGA cykel {cycle}: resultat {title}")
            ws.cell(row=2, column=1, value="Rapportdatum")
            ws.cell(row=2, column=2, value=rapportdatum)
            for c, name in enumerate(columns, start=1):
                ws.cell(row=4, column=c, value=name)
            r = 5
            for row in rows:
                for c, v in enumerate(row, start=1):
                    if v is not None:
                        ws.cell(row=r, column=c, value=v)
                r += 1
            r += 1  # one entirely empty row: the data end here
            for row in (after_blank or {}).get(title, []):
                for c, v in enumerate(row, start=1):
                    if v is not None:
                        ws.cell(row=r, column=c, value=v)
                r += 1
        p = self.path(self.PETHO_REL.replace("cykel1", f"cykel{cycle}"))
        wb.save(p)
        return p

    # 3. Folkuniversitetet: Windows-1252, ';', decimal comma, CRLF
    @staticmethod
    def fu_rel(cycle: int, timepoint: str) -> str:
        assert timepoint in ("slut", "90dagar")
        return f"leverantorer/folkuniversitetet/cykel{cycle}_{timepoint}.csv"

    def folkuniversitetet(self, cycle: int, timepoint: str, rows, *, encoding: str = "cp1252",
                          columns: Sequence[str] | None = None, newline: str = "\r\n") -> Path:
        if columns is None:
            columns = FU_END_COLUMNS if timepoint == "slut" else FU_90_COLUMNS
        return self._csv(self.fu_rel(cycle, timepoint), columns, rows, sep=";",
                         encoding=encoding, newline=newline)

    # 4. Åstorps kommun: JSON exports
    @staticmethod
    def astorp_rel(cycle: int, followup: bool = False) -> str:
        return f"leverantorer/astorp/cykel{cycle}{'_90dagar' if followup else ''}.json"

    def astorp(self, cycle: int, entries: list, *, followup: bool = False, cykel=None,
               levererad: str = "2011-07-08") -> Path:
        doc = {"leverantor": "Åstorps kommun", "cykel": cycle if cykel is None else cykel,
               "levererad": levererad, ("uppfoljning" if followup else "deltagare"): entries}
        text = json.dumps(doc, ensure_ascii=False, indent=1)
        return self.write_text(self.astorp_rel(cycle, followup), text, "utf-8")

    # 5. survey: UTF-8, ','
    @staticmethod
    def survey_rel(cycle: int) -> str:
        return f"enkater/enkat_cykel{cycle}.csv"

    def survey(self, cycle: int, rows, *, columns: Sequence[str] = SURVEY_COLUMNS) -> Path:
        return self._csv(self.survey_rel(cycle), columns, rows, sep=",", encoding="utf-8")


def read(raw: RawRoot, rel: str, reader, key):
    """The delivery at `rel` under `raw` read by its adapter `reader`, as the ingest calls it."""
    return reader(classify(raw.root, raw.root / rel, key), key)
