#!/usr/bin/env bash
# Re-pin every dependency: requirements.in -> requirements.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/uv pip compile requirements.in --python-version 3.11 --generate-hashes -o requirements.lock
