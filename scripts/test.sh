#!/usr/bin/env bash
# Second command of the README: install what the tests need, then run them all.
#   .venv/ from requirements.lock (scripts/install.sh), Debian's chromium for the
#   browser tests (scripts/browser-deps.sh), then pytest with any extra arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
scripts/browser-deps.sh
exec .venv/bin/python -m pytest "$@"
