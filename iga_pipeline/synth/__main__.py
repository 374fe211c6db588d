"""python -m iga_pipeline.synth [--out DIR] [--seed N] [--participations N]: write raw deliveries.

Without --participations: the bundled data set (data/raw is exactly its output
for the default seed). With it: deliveries of that many participations in the
contract's formats, for benchmarks (see iga_pipeline/synth/scale.py).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from iga_pipeline.synth import DEFAULT_SEED, generate_bundled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iga-pipeline synth", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("data/raw"), help="raw root to write (must be empty)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--participations", type=int, metavar="N",
                        help="write a scaled data set of N accepted participations instead of the bundled one")
    parser.add_argument("--late-followup", type=int, metavar="CYCLE",
                        help="with --participations: only add the late 90-day delivery of CYCLE "
                             "(an Åstorp cycle, 8 in the project's history) to an existing --out")
    args = parser.parse_args(argv)
    if args.late_followup is not None:
        if args.participations is None:
            parser.error("--late-followup needs --participations (and the --seed the root was made with)")
        from iga_pipeline.synth.scale import write_late_followup
        rel = write_late_followup(args.out, args.participations, args.seed, args.late_followup)
        print(json.dumps({"written": rel}))
        return 0
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty; remove its contents first")
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
