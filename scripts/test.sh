#!/usr/bin/env bash
# Second command of the README: install what the tests need, then run them all.
#   .venv/ from requirements.lock (scripts/install.sh), Debian's chromium for the
#   browser tests (scripts/browser-deps.sh), then pytest with any extra arguments,
#   on every core (pytest-xdist), a test file per worker so that a file's module-scoped
#   builds are made once; `-n 0` after it runs everything in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
scripts/browser-deps.sh
exec .venv/bin/python -m pytest -n auto --dist loadfile "$@"
