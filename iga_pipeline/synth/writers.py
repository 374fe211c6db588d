"""Render a `Plan` into the raw files of shared/contract/raw-deliveries.md.

One small writer per delivery kind. Cosmetic choices (odd casing, comments,
dates within a few days) come from a per-writer random stream seeded from the
plan's seed, so the same plan always gives byte-identical files. Which registers
were saved from Excel (a BOM and CRLF) is fixed: `(municipality index + cycle) % 3 == 0`.

Every writer logs the defects it writes (file, row, kind) into a `DefectLog`:
rows are 1-based data rows (CSV: header excluded; JSON: position in the list;
workbook: `Sheet!row` with the Excel row number). The log never holds a
personnummer or a name.
"""

from __future__ import annotations

import csv
import io
import json
import random
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
from openpyxl.styles import Font
from openpyxl.writer.excel import ExcelWriter

from iga_pipeline import reference
from iga_pipeline.synth.plan import (
    ABSENT,
    CONFLICT,
    DUPLICATE,
    INVALID_CODE,
    INVALID_PNR,
    MISMATCH,
    REGISTER_NONE,
    REGISTER_OK,
    ROW,
    UNKNOWN,
    UNKNOWN_CODE,
    Participation,
    Plan,
    Status,
    bump_check_digit,
    code_for,
)

REGISTER_COLUMNS = [
    "personnummer", "fornamn", "efternamn", "kon", "fodelseland", "malgrupp", "cykel",
    "inskrivningsdatum", "utskrivningsdatum", "avbrott_orsak",
]
PETHO_COLUMNS = ["Personnr", "Namn", "Insatser", "Status cykelslut", "Status 90 dagar", "Kommentar"]
PETHO_FIRST_DATA_ROW = 5
FU_END_COLUMNS = [
    "Personnummer", "Kommun", "Timmar validering", "Timmar yrkesprövning",
    "Timmar samhällsorientering", "Timmar jobbsökning", "Utfallskod", "Utfallsdatum",
]
FU_90D_COLUMNS = ["Personnummer", "Kommun", "Utfallskod", "Uppföljningsdatum"]
SURVEY_COLUMNS = ["svar_id", "kommunkod", "okad_mojlighet", "tolk"]

# Status values outside every code list (the invalid_code defect).
INVALID_STATUS = {"petho": "Semester", "folkuniversitetet": "8", "astorp": "PENSION"}

PETHO_COMMENTS = (
    "", "", "", "Praktik inom äldreomsorgen", "Behöver mer svenska", "Fortsätter på SFI",
    "Timanställning på lager", "Intresserad av eget företag", "Praktik i butik",
    "Söker arbete inom lokalvård", "Validering som undersköterska påbörjad",
)
PROVIDER_PNR_FORM = {"folkuniversitetet": "YYMMDDNNNC", "astorp": "YYYYMMDD-NNNC"}
LEAVER_COMMENTS = ("Avbröt deltagandet", "Slutade i förtid", "")


@dataclass
class DefectLog:
    entries: list[dict] = field(default_factory=list)

    def add(self, file: str, row, kind: str, note: str = "") -> None:
        self.entries.append({"file": file, "row": row, "kind": kind, "note": note})

    def rows(self, file: str, rows: list[tuple[list, list[tuple[str, str]]]], label=lambda i: i) -> None:
        """Log the tags of rendered rows, numbering them as the file does."""
        for i, (_, tags) in enumerate(rows, start=1):
            for kind, note in tags:
                self.add(file, label(i), kind, note)


def write_all(plan: Plan, out_dir: Path) -> dict:
    out_dir = Path(out_dir)
    log = DefectLog()
    files: dict[str, int] = {}
    files.update(write_registers(plan, out_dir, log))
    for kind, writer in (("petho", write_petho), ("folkuniversitetet", write_folkuniversitetet),
                         ("astorp", write_astorp)):
        files.update(writer(plan, out_dir, log, _cycles_of(kind)))
    files.update(write_survey(plan, out_dir))
    return {"files": dict(sorted(files.items())), "defects": log.entries}


def _cycles_of(source_kind: str) -> list[int]:
    return [c.cycle for c in reference.cycles().values() if c.source_kind == source_kind]


def _rng(plan: Plan, name: str) -> random.Random:
    return random.Random(f"{plan.seed}:{name}")


def _intervention_code(source_kind: str) -> dict[str, str]:
    return {v: k for k, v in reference.intervention_codes(source_kind).items()}


def _missing_outcomes(log: DefectLog, plan: Plan, cycle: int, file_end: str, file_90d: str | None) -> None:
    """A completer without a valid status at a point is unknown: a missing_outcome warning."""
    for p in plan.of_cycle(cycle):
        if not p.completed:
            continue
        if p.end.status_class == UNKNOWN:
            log.add(file_end, None, "missing_outcome", "end")
        if file_90d and p.d90 is not None and p.d90.status_class == UNKNOWN:
            log.add(file_90d, None, "missing_outcome", "90d")


def _write_csv(path: Path, header: list[str], rows: list[list[str]], *, delimiter: str,
               encoding: str, lineterminator: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=lineterminator)
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))


# ---------------------------------------------------------------- registers
def write_registers(plan: Plan, out: Path, log: DefectLog) -> dict[str, int]:
    """kommuner/<kommunkod>/deltagare_cykel<N>.csv: UTF-8, some with a BOM (and CRLF)."""
    files = {}
    municipalities = list(reference.municipalities())
    for cycle in sorted(reference.cycles()):
        for k, code in enumerate(municipalities):
            ps = [p for p in plan.of_cycle(cycle)
                  if p.municipality == code and p.register != REGISTER_NONE]
            ps.sort(key=lambda p: (p.person.last_name, p.person.first_name, p.enrolled, p.dropout))
            rows = []
            for p in ps:
                values = _register_values(p)
                if p.register == DUPLICATE:
                    rows += [(values, []), (values, [(DUPLICATE, "")])]
                elif p.register == REGISTER_OK:
                    rows.append((values, []))
                else:
                    rows.append((values, [(p.register, p.register_variant)]))
            rel = f"kommuner/{code}/deltagare_cykel{cycle}.csv"
            excel_export = (k + cycle) % 3 == 0  # these senders save from Excel: BOM and CRLF
            _write_csv(out / rel, REGISTER_COLUMNS, [v for v, _ in rows], delimiter=";",
                       encoding="utf-8-sig" if excel_export else "utf-8",
                       lineterminator="\r\n" if excel_export else "\n")
            log.rows(rel, rows)
            files[rel] = len(rows)
    return files


def _register_values(p: Participation) -> list[str]:
    person = p.person
    row = {
        "personnummer": person.pnr(p.pnr_form),
        "fornamn": person.first_name,
        "efternamn": person.last_name,
        "kon": person.sex,
        "fodelseland": person.country,
        "malgrupp": reference.cycles()[p.cycle].target_group,
        "cykel": str(p.cycle),
        "inskrivningsdatum": p.enrolled.isoformat(),
        "utskrivningsdatum": p.exited.isoformat() if p.exited else "",
        "avbrott_orsak": p.dropout,
    }
    row.update(p.register_overrides)
    return [row[c] for c in REGISTER_COLUMNS]


# ------------------------------------------------------------- providers' files
def _reported(plan: Plan, cycle: int, point: str):
    """The cycle's participations a provider's file at `point` ('end' or '90d') holds, with
    the status it reports."""
    for p in plan.of_cycle(cycle):
        status = p.end if point == "end" else p.d90
        if status is not None and status.mode != ABSENT:
            yield p, status


# -------------------------------------------------------------------- Pethö
def write_petho(plan: Plan, out: Path, log: DefectLog, cycles: list[int]) -> dict[str, int]:
    """leverantorer/petho/cykel<N>_resultat.xlsx: one sheet per municipality."""
    files = {}
    rng = _rng(plan, "petho")
    codes = {detail: code.capitalize() for detail, code in code_for("petho").items()}
    insats = {k: code.capitalize() for k, code in _intervention_code("petho").items()}
    names = reference.municipalities()

    def text(status: Status | None, detail: str | None = None) -> str | None:
        if status is None or status.mode == ABSENT:
            return None
        if detail is None and status.mode == UNKNOWN_CODE:
            return rng.choice((None, None, codes["unknown"], codes["unknown"].lower() + " "))
        value = codes[detail or status.detail]
        roll = rng.random()  # senders type these by hand
        if roll < 0.08:
            return value.upper()
        if roll < 0.16:
            return value.lower()
        if roll < 0.22:
            return f" {value}  "
        return value

    for cycle in cycles:
        rel = f"leverantorer/petho/cykel{cycle}_resultat.xlsx"
        sheets: dict[str, list] = {code: [] for code in names}
        for p in plan.of_cycle(cycle):
            if p.end.mode == ABSENT:
                continue
            pnr = p.person.pnr("YYMMDDNNNC")
            cell = int(pnr) if p.petho_number else p.person.pnr("YYMMDD-NNNC")
            name = f"{p.person.first_name} {p.person.last_name}"
            interventions = [insats[i] for i, _ in p.interventions]
            interventions = [s.upper() if rng.random() < 0.1 else s.lower() if rng.random() < 0.2 else s
                             for s in interventions]
            insatser = rng.choice((", ", ",")).join(interventions)
            comment = rng.choice(PETHO_COMMENTS if p.completed else LEAVER_COMMENTS) or None
            sheet = p.provider_municipality if p.end.mode == MISMATCH else p.municipality
            tags = [] if p.accepted else [("orphan_outcome", "")]
            status_90d = text(p.d90)
            if p.end.mode == INVALID_CODE:
                values = [cell, name, insatser, INVALID_STATUS["petho"], status_90d, comment]
                rows = [(values, [(INVALID_CODE, "Status cykelslut")])]
            elif p.end.mode == CONFLICT:  # the two rows differ in the end status only
                rows = [([cell, name, insatser, text(p.end, d), status_90d, comment],
                         [(CONFLICT, "Status cykelslut")]) for d in p.end.written]
            elif p.end.mode not in (ROW, UNKNOWN_CODE, MISMATCH, DUPLICATE):  # plan.PROVIDER_DEFECTS
                raise ValueError(f"the Pethö writer has no row for a planned {p.end.mode}")
            else:
                values = [cell, name, insatser, text(p.end), status_90d, comment]
                rows = [(values, tags)]
                if p.end.mode == MISMATCH:
                    rows = [(values, [(MISMATCH, "sheet")])]
                elif p.end.mode == DUPLICATE:
                    rows = [(values, []), (values, [(DUPLICATE, "")])]
            sheets[sheet].extend(rows)
        for code, rows in sheets.items():  # each sheet's rows by name, as Pethö kept them
            rows.sort(key=lambda r: (r[0][1], str(r[0][0])))
            log.rows(rel, rows, label=lambda i, title=names[code]: f"{title}!{PETHO_FIRST_DATA_ROW - 1 + i}")
        write_petho_workbook(out / rel, cycle, {names[code]: [values for values, _ in rows]
                                                for code, rows in sheets.items()})
        files[rel] = sum(len(rows) for rows in sheets.values())
        _missing_outcomes(log, plan, cycle, rel, rel)
    return files


def write_petho_workbook(path: Path, cycle: int, sheets: dict[str, list[list]]) -> None:
    """Pethö's workbook of one cycle (`synth` and `synth --participations` alike): an Info
    sheet, then one sheet per municipality (`sheets`: its name -> its data rows, in order)
    with a title, the report date, an empty row, the columns and the rows; below the project
    owner's rows, after an empty row, a note that is not data. Dated 101 days after the cycle's
    end, its bytes fixed by its content (`_deterministic_xlsx`)."""
    roles = reference.table("municipalities").set_index("municipality_code")["role"]
    owner = reference.municipalities()[roles.index[roles == "project_owner"][0]]
    c = reference.cycles()[cycle]
    report_date = c.end + timedelta(days=101)
    wb = openpyxl.Workbook()
    info = wb.active
    info.title = "Info"
    info.append(["Integration Genom Arbete: resultatrapport"])
    info.append(["Leverantör", c.provider])
    info.append(["Cykel", cycle])
    info.append(["Period", f"{c.start.isoformat()} – {c.end.isoformat()}"])
    info.append(["Uppföljning", "Status 90 dagar avser läget tre månader efter cykelns slut"])
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        ws.append([f"Resultat cykel {cycle}: {name}"])
        ws["A1"].font = Font(bold=True)
        ws.append(["Rapportdatum", datetime.combine(report_date, datetime.min.time())])
        ws["B2"].number_format = "yyyy-mm-dd"
        ws.append([])
        ws.append(PETHO_COLUMNS)
        for cell in ws[4]:
            cell.font = Font(bold=True)
        for values in rows:
            ws.append(values)
        if name == owner:  # a note below the data, after an empty row: not data
            ws.append([])
            ws.append(["Sammanställt av Pethö Consulting. Uppgifterna stäms av med kommunerna."])
        ws.column_dimensions["A"].width = 14
        ws.column_dimensions["B"].width = 26
        ws.column_dimensions["C"].width = 40
    fixed = datetime.combine(report_date, datetime.min.time())
    wb.properties.creator = c.provider
    wb.properties.created = fixed
    wb.properties.modified = fixed
    wb.properties.lastModifiedBy = c.provider
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_deterministic_xlsx(wb, fixed))


def _deterministic_xlsx(wb: openpyxl.Workbook, when: datetime) -> bytes:
    """Save with fixed properties and zip entry timestamps.

    `Workbook.save` stamps `modified` from the clock, so the writer is driven
    directly; the zip entries it writes carry the clock too, so re-zip them.
    """
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=when.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = item.external_attr
            zout.writestr(info, zin.read(item.filename))
    return out.getvalue()


# -------------------------------------------------------- Folkuniversitetet
def write_folkuniversitetet(plan: Plan, out: Path, log: DefectLog, cycles: list[int]) -> dict[str, int]:
    """cykel<N>_slut.csv and cykel<N>_90dagar.csv: cp1252, ';', decimal comma."""
    files = {}
    rng = _rng(plan, "folkuniversitetet")
    codes = code_for("folkuniversitetet")
    hour_column = _intervention_code("folkuniversitetet")  # intervention -> column header
    names = reference.municipalities()
    for cycle in cycles:
        end = reference.cycles()[cycle].end
        targets = [("slut", "end", FU_END_COLUMNS)]
        if plan.followed_up[cycle]:
            targets.append(("90dagar", "90d", FU_90D_COLUMNS))
        paths = {point: f"leverantorer/folkuniversitetet/cykel{cycle}_{suffix}.csv"
                 for suffix, point, _ in targets}
        for suffix, point, header in targets:
            rel = paths[point]
            rows = []
            for p, status in _reported(plan, cycle, point):
                municipality = p.provider_municipality if status.mode == MISMATCH else p.municipality
                lead = [names[municipality]]
                if point == "end":
                    hours = dict(p.interventions)
                    lead += [_fmt_hours(hours.get(i)) for i in hour_column]
                    when = end + timedelta(days=rng.randint(0, 4)) if p.completed else (p.exited or end)
                else:
                    when = end + timedelta(days=90 + rng.randint(0, 10))
                rows += _provider_rows(p, status, codes, lambda pnr, code: [pnr, *lead, code, when.isoformat()],
                                       "folkuniversitetet", codes["unknown"], "Utfallskod")
            rows.sort(key=lambda r: r[0][0])
            _write_csv(out / rel, header, [v for v, _ in rows], delimiter=";", encoding="cp1252",
                       lineterminator="\r\n")
            log.rows(rel, rows)
            files[rel] = len(rows)
        _missing_outcomes(log, plan, cycle, paths["end"], paths.get("90d"))
    return files


def _fmt_hours(hours: float | None) -> str:
    return "" if hours is None else f"{hours:g}".replace(".", ",")


def _provider_rows(p: Participation, status: Status, codes: dict[str, str], render, kind: str,
                   unknown_code, field_name: str) -> list[tuple[object, list]]:
    """The rows one provider file holds for one participation at one point, each
    `render(written personnummer, status code)`."""
    pnr = p.person.pnr(PROVIDER_PNR_FORM[kind])

    def make(code):
        return render(pnr, code)
    tags = [] if p.accepted else [("orphan_outcome", "")]
    if status.mode == INVALID_CODE:
        return [(make(INVALID_STATUS[kind]), [(INVALID_CODE, field_name)])]
    if status.mode == CONFLICT:
        return [(make(codes[d]), [(CONFLICT, field_name)]) for d in status.written]
    if status.mode == INVALID_PNR:
        return [(render(bump_check_digit(pnr), codes[status.written[0]]), [(INVALID_PNR, "check digit")])]
    code = unknown_code if status.mode == UNKNOWN_CODE else codes[status.detail]
    if status.mode == DUPLICATE:
        return [(make(code), []), (make(code), [(DUPLICATE, "")])]
    if status.mode == MISMATCH:
        return [(make(code), [(MISMATCH, "")])]
    return [(make(code), tags)]


# ------------------------------------------------------------------- Åstorp
def write_astorp(plan: Plan, out: Path, log: DefectLog, cycles: list[int]) -> dict[str, int]:
    """cykel<N>.json and cykel<N>_90dagar.json (when followed up): UTF-8 JSON."""
    files = {}
    rng = _rng(plan, "astorp")
    codes = code_for("astorp")
    typ = _intervention_code("astorp")
    provider = reference.cycles()[cycles[0]].provider
    for cycle in cycles:
        end = reference.cycles()[cycle].end
        targets = [("", "end", "deltagare", end + timedelta(days=8))]
        if plan.followed_up[cycle]:
            targets.append(("_90dagar", "90d", "uppfoljning", end + timedelta(days=95)))
        paths = {point: f"leverantorer/astorp/cykel{cycle}{suffix}.json" for suffix, point, _, _ in targets}
        for suffix, point, list_key, delivered in targets:
            rel = paths[point]
            rows = []
            for p, status in _reported(plan, cycle, point):
                if point == "end":
                    municipality = p.provider_municipality if status.mode == MISMATCH else p.municipality
                    insatser = [{"typ": typ[i], "timmar": h} for i, h in p.interventions]
                    def render(pnr, code):
                        return {"pnr": pnr, "kommunkod": municipality, "insatser": insatser,
                                "status_cykelslut": code}
                else:
                    def render(pnr, code):
                        return {"pnr": pnr, "status": code}
                unknown = rng.choice((codes["unknown"], None))
                rows += _provider_rows(p, status, codes, render, "astorp", unknown,
                                       "status_cykelslut" if point == "end" else "status")
            rows.sort(key=lambda r: r[0]["pnr"])
            doc = {"leverantor": provider, "cykel": cycle, "levererad": delivered.isoformat(),
                   list_key: [entry for entry, _ in rows]}
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            log.rows(rel, rows)
            files[rel] = len(rows)
        _missing_outcomes(log, plan, cycle, paths["end"], paths.get("90d"))
    return files


# ------------------------------------------------------------------- survey
def write_survey(plan: Plan, out: Path) -> dict[str, int]:
    """enkater/enkat_cykel3.csv: the only cycle that was surveyed."""
    rel = "enkater/enkat_cykel3.csv"
    rows = [[str(i), code, "" if a is None else str(a), tolk] for i, code, a, tolk in plan.survey]
    _write_csv(out / rel, SURVEY_COLUMNS, rows, delimiter=",", encoding="utf-8", lineterminator="\n")
    return {rel: len(rows)}
