#!/usr/bin/env bash
# Sets up .venv and runs the whole embedded pipeline: an embedded Redis-protocol server, the
# simulator feeding it, the ingest worker and the chDB hot store. Arguments go to `fleetlens up`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/fleetlens up "$@"
