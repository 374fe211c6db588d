"""Long-running fuzz campaign over the adapters (not part of CI; see fuzz/README.md).

Two engines, the same oracle as iga_pipeline_tests/test_hostile_files.py
(`ingest_hostile` + `check_accounted`: rejected whole with a contract
reason, or loaded with every row accounted for; never an exception, never a
hang):

* hypothesis (default, no extra dependency): runs the test module's
  generators with a large example budget and a time limit;
* atheris (coverage-guided, `pip install atheris` first): the fuzzer's bytes
  pick a delivery kind and mutate a valid file of that kind.

    .venv/bin/python fuzz/fuzz_adapters.py --minutes 30
    .venv/bin/python fuzz/fuzz_adapters.py --engine atheris -- -max_total_time=1800

Failures are printed with hypothesis' reproduction blob (hypothesis) or
written as crash-* files (atheris); replay an atheris crash with
`fuzz/fuzz_adapters.py --engine atheris -- crash-<hash>`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "iga_pipeline_tests"


def _load_tests(examples: int):
    os.environ["IGA_HOSTILE_EXAMPLES"] = str(examples)
    sys.path.insert(0, str(TESTS))
    import logging

    logging.getLogger("iga_pipeline").setLevel(logging.CRITICAL)  # the adapters' own error lines
    import test_hostile_files as t

    return t


def run_hypothesis(minutes: float, examples: int, only: list[str] | None = None) -> int:
    t = _load_tests(examples)  # the tests' settings now ask for `examples` each
    targets = []
    for kind in t.KINDS.values():
        targets.append((f"bytes:{kind.name}", t.test_byte_mutations_are_rejected_or_fully_accounted, {"kind": kind}))
    for kind in t.CSV_KINDS:
        targets.append((f"text:{kind.name}", t.test_delimited_files_with_hostile_structure, {"kind": kind}))
    targets.append(("workbook:petho", t.test_petho_workbooks_are_rejected_or_fully_accounted, {}))
    for followup in (False, True):
        targets.append((f"json:astorp{'_90' if followup else ''}",
                        t.test_astorp_exports_are_rejected_or_fully_accounted, {"followup": followup}))
    if only:  # the targets whose names begin with one of these ('json', 'text:survey')
        targets = [t for t in targets if t[0].startswith(tuple(only))]
    deadline = time.monotonic() + minutes * 60
    failures, rounds = [], 0
    while time.monotonic() < deadline:
        rounds += 1
        for name, test, kwargs in targets:
            if time.monotonic() >= deadline:
                break
            started = time.monotonic()
            try:
                test(**kwargs)  # a new random seed each call: each round explores new inputs
                status = "ok"
            except Exception as e:  # noqa: BLE001 - report and go on with the next target
                status = f"FAILED: {type(e).__name__}"
                failures.append((name, traceback.format_exc()))
            print(f"round {rounds} {name:22} {status} ({time.monotonic() - started:.0f} s)", flush=True)
    from conftest import hostile_total  # beside test_hostile_files, on the path _load_tests made

    print(f"\n{hostile_total(t.CASES)} cases in {rounds} round(s): "
          + ", ".join(f"{k}={v}" for k, v in sorted(t.CASES.items())))
    for name, tb in failures:
        print(f"\n=== {name}\n{tb}")
    return 1 if failures else 0


def run_atheris(argv: list[str]) -> int:
    import atheris  # pip install atheris

    with atheris.instrument_imports(include=["iga_pipeline"]):  # coverage of the project's code only
        t = _load_tests(1)
    kinds = list(t.KINDS.values())
    bases = {k.name: t.valid_bytes(k) for k in kinds}

    def one_input(data: bytes) -> None:
        if len(data) < 2:
            return
        fdp = atheris.FuzzedDataProvider(data)
        kind = kinds[fdp.ConsumeIntInRange(0, len(kinds) - 1)]
        base = bytearray(bases[kind.name])
        # splice the fuzzer's bytes into the valid file, so that coverage reaches the parsers' depths
        at = fdp.ConsumeIntInRange(0, len(base))
        cut = fdp.ConsumeIntInRange(0, 64)
        mutated = bytes(base[:at]) + fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 256)) + bytes(base[at + cut:])
        t.check_mutated_file(kind, mutated)

    atheris.Setup([sys.argv[0], *argv], one_input)
    atheris.Fuzz()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["hypothesis", "atheris"], default="hypothesis")
    parser.add_argument("--minutes", type=float, default=10, help="hypothesis: wall-clock budget")
    parser.add_argument("--examples", type=int, default=2000, help="hypothesis: examples per target and round")
    parser.add_argument("--only", action="append", metavar="PREFIX",
                        help="hypothesis: only the targets whose names begin so (bytes, text, workbook, json, "
                             "json:astorp_90, ...); repeatable")
    parser.add_argument("rest", nargs="*", help="atheris/libFuzzer arguments (after --)")
    args = parser.parse_args()
    if args.engine == "atheris":
        return run_atheris(args.rest)
    return run_hypothesis(args.minutes, args.examples, args.only)


if __name__ == "__main__":
    sys.exit(main())
