"""iga-pipeline synth [--out DIR] [--seed N] [--participations N [--late-followup CYCLE]]: write raw deliveries.

Without --participations: the bundled data set (data/raw is exactly its output
for the default seed). With it: deliveries of that many participations in the
contract's formats, for benchmarks (see iga_pipeline/synth/scale.py). With
--late-followup as well: only that cycle's late 90-day export, added to the raw
root an earlier run with the same --participations and --seed wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from iga_pipeline.synth import DEFAULT_SEED, generate_bundled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iga-pipeline synth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/raw"), metavar="DIR",
                        help="raw root to write: a new or empty folder (default: data/raw)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="N",
                        help=f"the random seed: the same seed writes the same files (default: {DEFAULT_SEED})")
    parser.add_argument("--participations", type=int, metavar="N",
                        help="write a scaled data set of N accepted participations instead of the bundled one")
    parser.add_argument("--late-followup", type=int, metavar="CYCLE",
                        help="with --participations: only add the late 90-day delivery of CYCLE "
                             "(an Åstorp cycle, 8 in the project's history) to an existing --out")
    args = parser.parse_args(argv)
    try:
        status = _write(parser, args)
        sys.stdout.flush()  # a reader gone is met here, not in the interpreter's exit
        return status
    except BrokenPipeError:  # the summary's reader left (`| head`): the files are written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to say
        return 0
    except OSError as e:  # a read-only or full folder, say: said, not a traceback
        print(f"error: could not write under {args.out}: {e.strerror or e}", file=sys.stderr)
        return 1


def _write(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.late_followup is not None:
        if args.participations is None:
            parser.error("--late-followup needs --participations (and the --seed the root was made with)")
        from iga_pipeline import reference
        astorp = sorted(c for c, info in reference.cycles().items() if info.source_kind == "astorp")
        if args.late_followup not in astorp:
            parser.error(f"--late-followup {args.late_followup}: the late follow-up is an Åstorp export "
                         f"(cycles {astorp[0]}-{astorp[-1]})")
        if not args.out.is_dir() or not any(args.out.iterdir()):
            parser.error(f"--late-followup adds to a raw root made before: {args.out} has none")
        from iga_pipeline.synth.scale import write_late_followup
        try:
            rel = write_late_followup(args.out, args.participations, args.seed, args.late_followup)
        except ValueError as e:  # a root this size and seed did not write (or its export changed)
            parser.error(str(e))
        print(json.dumps({"written": rel}))
        return 0
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"{args.out} is not a folder")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty: name an empty or new folder with --out DIR "
                     "(synth writes a raw root whole, and never over files already there)")
    if args.participations is not None:
        from iga_pipeline.synth.scale import generate_scaled
        started = time.monotonic()
        try:
            summary = generate_scaled(args.out, args.participations, args.seed)
        except ValueError as e:
            parser.error(str(e))
        brief = {k: v for k, v in summary.items() if k != "files"}
        print(json.dumps({**brief, "files": len(summary["files"]),
                          "seconds": round(time.monotonic() - started, 1)}, ensure_ascii=False, indent=2))
        return 0
    summary = generate_bundled(args.out, args.seed)
    kinds = Counter(d["kind"] for d in summary["defects"])
    brief = {k: v for k, v in summary.items() if k not in ("files", "defects")}
    print(json.dumps({**brief, "files": len(summary["files"]), "defects": dict(sorted(kinds.items()))},
                     ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
