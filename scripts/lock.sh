#!/usr/bin/env bash
# Compile requirements.in into requirements.lock (every transitive version pinned, with hashes).
# uv keeps the versions already in requirements.lock wherever requirements.in still allows
# them: a run changes only what a change to requirements.in forces. To move pins on, say so:
#   scripts/lock.sh --upgrade-package duckdb   # one package (and what it needs)
#   scripts/lock.sh --upgrade                  # everything, to the newest allowed
# Any further arguments go to `uv pip compile`. Then run scripts/install.sh and
# iga_pipeline_tests/test_dependencies.py (licences, docs/dependencies.md's table).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/uv pip compile requirements.in --python-version 3.11 --generate-hashes -o requirements.lock "$@"
