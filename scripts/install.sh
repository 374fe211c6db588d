#!/usr/bin/env bash
# Create .venv/ (if missing) and install exactly what requirements.lock pins,
# then the project itself in editable mode. Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
# --compile-bytecode: every module compiled once here; otherwise each process compiles
# what it imports again whenever .pyc files are not written (PYTHONDONTWRITEBYTECODE).
.venv/bin/uv pip sync --quiet --python .venv/bin/python --compile-bytecode requirements.lock
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
