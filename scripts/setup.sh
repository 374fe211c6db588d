#!/usr/bin/env bash
# First command of the README: set up .venv/ and build the warehouse from the bundled data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/iga-pipeline build "$@"
