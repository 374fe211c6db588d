#!/usr/bin/env bash
# Install what the browser tests (iga_pipeline_tests/test_ui.py) need: Debian's
# `chromium`, which Playwright drives through its executable path (browser
# downloads are not possible, so `playwright install` is never run).
# Idempotent: does nothing, quickly, when /usr/bin/chromium is already there.
set -euo pipefail

CHROMIUM=${IGA_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "browser-deps: $CHROMIUM is missing and apt-get is not available; the browser tests will be skipped" >&2
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
  else
    echo "browser-deps: not root and no sudo; cannot install chromium" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "browser-deps: installing Debian's chromium (apt-get)" >&2
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  chromium fonts-liberation >/dev/null
if [ ! -x "$CHROMIUM" ]; then
  echo "browser-deps: chromium was installed but $CHROMIUM is missing" >&2
  exit 1
fi
"$CHROMIUM" --version 2>/dev/null >&2 || true
