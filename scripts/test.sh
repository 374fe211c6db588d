#!/usr/bin/env bash
# Second command of the README: install what the tests need, then run them all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/python -m pytest "$@"
