"""python -m iga_pipeline.synth [--out DIR] [--seed N]: write the bundled raw deliveries."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from iga_pipeline.synth import DEFAULT_SEED, generate_bundled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iga-pipeline synth", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("data/raw"), help="raw root to write (must be empty)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty; remove its contents first")
    summary = generate_bundled(args.out, args.seed)
    kinds = Counter(d["kind"] for d in summary["defects"])
    brief = {k: v for k, v in summary.items() if k not in ("files", "defects")}
    print(json.dumps({**brief, "files": len(summary["files"]), "defects": dict(sorted(kinds.items()))},
                     ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
