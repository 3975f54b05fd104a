#!/usr/bin/env bash
# Creates .venv with fleetlens and its pinned dependencies. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fleetlens needs Python >= 3.11")'

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.fleetlens-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing fleetlens and pinned dependencies into .venv (first time: a few minutes, chDB is ~500 MB)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip==26.3"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
  touch "$stamp"
fi
# The native decoder (native/, Rust + PyO3): compiled with cargo from crates.io, rebuilt when its
# sources change. Without it fleetlens still runs, decoding on the slower Arrow path.
native_stamp=.venv/.fleetlens-native-installed
if [ ! -f "$native_stamp" ] || [ -n "$(find native -path native/target -prune -o -newer "$native_stamp" -type f -print -quit)" ]; then
  if command -v cargo > /dev/null; then
    echo "setup: building the native decoder from native/ (first time: about a minute)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check ./native
    touch "$native_stamp"
  else
    echo "setup: cargo not found (https://rustup.rs): the native decoder is not built; decoding uses the slower Arrow path and tests/contract fail" >&2
  fi
fi
# Headless Chromium for the dashboard's browser tests (tests/ui): Debian's package, driven by Playwright.
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Debian's chromium for the dashboard browser tests"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: not root: install chromium yourself (sudo apt-get install chromium); tests/ui need it" >&2
  fi
fi
# kustomize renders deploy/k8s in tests/deploy (built once from the Go module proxy, cached).
./scripts/install-kustomize.sh > /dev/null || echo "setup: kustomize not installed; tests/deploy will fail until it is" >&2
# Prometheus Alertmanager, the real receiver of the detector's Alertmanager sink in tests/detect (built once, cached).
./scripts/install-alertmanager.sh > /dev/null || echo "setup: alertmanager not installed; tests/detect will fail until it is" >&2
echo "setup: ready (.venv/bin/fleetlens)"
