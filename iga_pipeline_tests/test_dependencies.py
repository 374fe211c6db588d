"""What the project depends on: the .venv is the lock, every licence in it is one we
accept, and docs/dependencies.md describes each direct dependency at its locked version.

A new dependency (or a new version that changes its licence) fails here until someone
has read its licence and, if it is acceptable, added it below and to the document.
"""

import importlib.metadata as md
import re
import tomllib
from email.message import Message
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
DIRECT = ROOT / "requirements.in"
DOC = ROOT / "docs" / "dependencies.md"

# Permissive licences, and the MPL-2.0 (copyleft per file: using the files unchanged
# asks nothing of this project). No GPL, LGPL or AGPL: see docs/dependencies.md.
ACCEPTED = {"MIT", "MIT-0", "MIT-CMU", "BSD", "BSD-2-Clause", "BSD-3-Clause", "0BSD", "ISC",
            "Apache-2.0", "PSF-2.0", "Zlib", "CC0-1.0", "MPL-2.0"}

# What packages write in their metadata when they give no SPDX expression.
SPELLINGS = {
    "mit": "MIT", "mit license": "MIT", "mit licence": "MIT",
    "bsd": "BSD", "bsd license": "BSD", "bsd 3-clause license": "BSD-3-Clause",
    "3-clause bsd license": "BSD-3-Clause", "bsd-3-clause": "BSD-3-Clause",
    "apache 2.0": "Apache-2.0", "apache-2.0": "Apache-2.0", "apache license version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0", "python software foundation license": "PSF-2.0",
    "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0", "mpl-2.0": "MPL-2.0",
}


def locked() -> dict[str, str]:
    """Every distribution requirements.lock pins: normalised name -> version."""
    pins = re.findall(r"^([A-Za-z0-9._-]+)==([^\s\\]+)", LOCK.read_text(), flags=re.M)
    return {normalised(name): version for name, version in pins}


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def licence_alternatives(meta) -> list[list[str]]:
    """The licence as alternatives (OR) of terms that all apply (AND), in SPDX spelling
    where the metadata allows. Order of trust: the SPDX expression (PEP 639), the trove
    classifiers, then the free-text License field (many packages put the whole text there).

    Where the metadata is ambiguous the reading is the stricter one: several licence
    classifiers are read as all applying (a package may list MIT and the GPL because
    parts are under each), and a one-line License field that names a GPL-family licence
    is added to what the classifiers say."""
    expression = meta.get("License-Expression")
    if expression:
        return spdx_alternatives(expression)
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or []
                   if c.startswith("License ::")]
    text = (meta.get("License") or "").strip()
    if classifiers:
        terms = [SPELLINGS.get(c.lower(), c) for c in classifiers]
        if "\n" not in text and COPYLEFT.search(text):
            terms.append(text)
        return [terms]
    if " AND " in text and "\n" not in text:  # tqdm: "MPL-2.0 AND MIT"
        return [[SPELLINGS.get(t.strip().lower(), t.strip()) for t in text.split(" AND ")]]
    return [[SPELLINGS.get(text.lower(), text[:80] or "no licence in the metadata")]]


# A GPL-family licence named in free text ("GPL", "LGPLv3+", "GNU General Public License").
COPYLEFT = re.compile(r"\b(?:A|L)?GPL|General Public Licen[cs]e", re.I)


def spdx_alternatives(expression: str) -> list[list[str]]:
    """An SPDX expression in disjunctive form: "(MIT OR Apache-2.0) AND BSD-3-Clause" ->
    [["MIT", "BSD-3-Clause"], ["Apache-2.0", "BSD-3-Clause"]]. WITH binds tighter than
    AND, AND tighter than OR (SPDX annex D); "X WITH exception" stays one term, accepted
    when X is (an exception only adds permissions). An expression that does not parse is
    one term, refused."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def disjunction():
        alternatives = conjunction()
        while peek() is not None and peek().upper() == "OR":
            take()
            alternatives = alternatives + conjunction()
        return alternatives

    def conjunction():
        alternatives = primary()
        while peek() is not None and peek().upper() == "AND":
            take()
            right = primary()
            alternatives = [left + more for left in alternatives for more in right]
        return alternatives

    def primary():
        token = take() if peek() is not None else None
        if token is None or token == ")" or token.upper() in ("AND", "OR", "WITH"):
            raise ValueError(token)
        if token == "(":
            inner = disjunction()
            if take() != ")":
                raise ValueError("(")
            return inner
        if peek() is not None and peek().upper() == "WITH":
            take()
            exception = take() if peek() not in (None, "(", ")") else None
            if exception is None:
                raise ValueError("WITH")
            return [[f"{token} WITH {exception}"]]
        return [[token]]

    try:
        alternatives = disjunction()
        if pos != len(tokens):
            raise ValueError(tokens[pos])
    except (ValueError, IndexError):
        return [[f"unparsed SPDX expression: {expression}"]]
    return alternatives


def accepted(alternatives: list[list[str]]) -> bool:
    return any(all(term.split(" WITH ")[0] in ACCEPTED for term in terms) for terms in alternatives)


def _meta(**fields) -> Message:
    """Package metadata as importlib.metadata gives it, for the reading's own tests."""
    meta = Message()
    for key, values in fields.items():
        for value in values if isinstance(values, list) else [values]:
            meta[key.replace("_", "-")] = value
    return meta


def test_the_licence_reading_tells_accepted_from_refused():
    """The reading above on the forms met in the lock, on forms a bump could bring, and
    on licences we refuse."""
    assert accepted([["MIT"]]) and accepted([["Apache-2.0", "BSD-3-Clause"], ["GPL-3.0-only"]])
    assert accepted([["MPL-2.0", "MIT"]])
    assert not accepted([["GPL-3.0-or-later"]]) and not accepted([["LGPL-2.1-only"]])
    assert not accepted([["MIT", "GPL-2.0-only"]])  # all of an AND must be accepted
    assert not accepted([["no licence in the metadata"]])
    assert SPELLINGS["3-clause bsd license"] == "BSD-3-Clause"

    def reads(**fields):
        alternatives = licence_alternatives(_meta(**fields))
        return alternatives, accepted(alternatives)

    # SPDX expressions (PEP 639): precedence and parentheses
    assert reads(License_Expression="(MIT OR Apache-2.0) AND BSD-3-Clause") == (
        [["MIT", "BSD-3-Clause"], ["Apache-2.0", "BSD-3-Clause"]], True)
    assert reads(License_Expression="MIT OR Apache-2.0 AND BSD-3-Clause")[0] == [
        ["MIT"], ["Apache-2.0", "BSD-3-Clause"]]
    for refused in ("GPL-3.0-only AND (MIT OR Apache-2.0)", "LGPL-2.1-or-later AND (BSD-3-Clause OR MIT)",
                    "(MIT OR Apache-2.0) AND (GPL-2.0-only OR AGPL-3.0-only)", "MIT AND (GPL-2.0-only)",
                    "GPL-2.0-only WITH Classpath-exception-2.0", "GPL-3.0-or-later WITH GCC-exception-3.1",
                    "LicenseRef-Proprietary", "MIT AND LicenseRef-Commercial", "MIT AND", "(MIT", "mit"):
        assert not reads(License_Expression=refused)[1], refused
    assert reads(License_Expression="MIT AND (LGPL-2.1-or-later OR BSD-3-Clause)")[1]
    assert reads(License_Expression="Apache-2.0 WITH LLVM-exception")[1]
    assert reads(License_Expression="BSD-3-Clause AND 0BSD AND MIT AND Zlib AND CC0-1.0")[1]  # numpy
    # trove classifiers
    assert reads(Classifier="License :: OSI Approved :: BSD License") == ([["BSD"]], True)
    assert reads(Classifier=["License :: OSI Approved :: Apache Software License",
                             "License :: OSI Approved :: MIT License"])[1]  # uvloop
    assert not reads(Classifier="License :: OSI Approved :: GNU General Public License v3 (GPLv3)")[1]
    assert not reads(Classifier=["License :: OSI Approved :: MIT License",
                                 "License :: OSI Approved :: GNU General Public License v2 (GPLv2)"])[1]
    assert not reads(Classifier="License :: OSI Approved :: MIT License", License="GPL-3.0-only")[1]
    assert not reads(Classifier="License :: OSI Approved")[1]
    assert reads(Classifier="License :: OSI Approved :: MIT License", License="MIT License\n\nPermission is"
                 " hereby granted ... GPL-compatible")[1]  # full text: the classifier decides
    # the free-text field alone
    assert reads(License="MPL-2.0 AND MIT") == ([["MPL-2.0", "MIT"]], True)  # tqdm
    assert not reads(License="GPLv3")[1] and not reads()[1]
    assert not reads(License="MIT License\n\nPermission is hereby granted, free of charge")[1]  # read it


def test_the_environment_is_the_lock():
    """scripts/install.sh syncs .venv to requirements.lock: each pin is installed at its
    version, so the licences read below are those of what CI and users run."""
    pins = locked()
    assert len(pins) > 50 and "dagster" in pins and "duckdb" in pins
    wrong = {name: (version, _installed(name)) for name, version in pins.items()
             if _installed(name) != version}
    assert not wrong, f"installed versions differ from requirements.lock (lock, installed): {wrong}"


def _installed(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def test_every_locked_distribution_has_an_accepted_licence():
    refused = {}
    for name in locked():
        alternatives = licence_alternatives(md.distribution(name).metadata)
        if not accepted(alternatives):
            refused[name] = alternatives
    assert not refused, (
        f"licences not (yet) accepted: {refused}. Read the licence; if it is acceptable, "
        "add its spelling to SPELLINGS or ACCEPTED here and say so in docs/dependencies.md")


def test_the_document_describes_each_direct_dependency_at_its_locked_version():
    """docs/dependencies.md's table has a row per line of requirements.in, with the locked
    version: a version bump shows up here, to look at the licence and upkeep again."""
    direct = [normalised(re.split(r"[\[=<>~ ]", line, maxsplit=1)[0])
              for line in DIRECT.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert len(direct) >= 15
    rows = {normalised(m[0]): m[1] for m in
            re.findall(r"^\| `([A-Za-z0-9._-]+)` \| ([^ |]+) \|", DOC.read_text(), flags=re.M)}
    pins = locked()
    missing = [name for name in direct if name not in rows]
    stale = {name: (rows[name], pins[name]) for name in direct if name in rows and rows[name] != pins[name]}
    assert not missing, f"direct dependencies not in docs/dependencies.md: {missing}"
    assert not stale, f"docs/dependencies.md's version differs from the lock (doc, lock): {stale}"


def test_the_package_metadata_asks_for_what_requirements_in_asks_for():
    """pyproject.toml's dependencies and its `dev` extra are requirements.in's lines, with the
    same version specifiers: `pip install -e .[dev]` gets what `scripts/test.sh` needs (a
    review found pytest-xdist missing from the extra)."""
    def specs(lines):
        return {normalised(re.split(r"[\[=<>~ ]", line, maxsplit=1)[0]): line.split("#")[0].replace(" ", "")
                for line in lines}

    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    declared = specs([*project["dependencies"], *project["optional-dependencies"]["dev"]])
    direct = specs(line for line in DIRECT.read_text().splitlines() if line.strip() and not line.startswith("#"))
    assert declared == direct


def test_the_project_says_its_licence():
    """LICENSE holds the MIT licence's text, and the package metadata says MIT (as an SPDX
    expression: setuptools deprecates the `{ text = ... }` table and will stop building it)."""
    assert "Permission is hereby granted, free of charge" in (ROOT / "LICENSE").read_text()
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
