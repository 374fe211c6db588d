"""A worker process (`workers.Workers`, for `staging.stage_cycles` or, before the run of
`iga-pipeline build --cycle N`, `workers.start_early`): stage the cycles it is given, report back.

    python -m iga_pipeline._stage_worker OUT.pkl   < pickle of (raw_root, staging, cycles, key)

Writes a pickled list of `staging.Staged` to OUT.pkl; any error goes to stderr
with a non-zero exit. The key comes on stdin, never on the command line.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from iga_pipeline import collector, reference
    from iga_pipeline.staging import refuse_empty_raw_root, stage_cycle

    collector.freeze()  # the imported modules: not visited by every later collection
    raw_root, staging, cycles, key = pickle.loads(sys.stdin.buffer.read())
    # As a run would refuse them (the CLI refuses an unknown --cycle before `start_early`;
    # whoever else makes `Workers` is held to the same).
    unknown = [c for c in cycles if c not in reference.cycles()]
    if unknown:
        raise ValueError(f"cycle(s) {unknown} are not the project's: nothing was staged")
    refuse_empty_raw_root(raw_root)
    staged = [stage_cycle(raw_root, staging, cycle, key) for cycle in cycles]
    out = Path(argv[0])
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(staged))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    from iga_pipeline.process import exit_without_teardown

    exit_without_teardown(main(sys.argv[1:]))  # an error raises before: traceback, exit status 1
