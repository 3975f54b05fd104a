#!/usr/bin/env bash
# Rebuilds the dashboard bundle (src/fleetlens/ui/static/) from ui/src with the pinned npm packages
# (ui/package-lock.json: esbuild, uPlot). The bundle is committed, so users and `pip install` need no npm.
# Usage: scripts/build-ui.sh [OUTPUT_DIR]   (default: src/fleetlens/ui/static)
set -euo pipefail
cd "$(dirname "$0")/../ui"
command -v node >/dev/null || { echo "build-ui: node is required (Debian: apt-get install nodejs npm)" >&2; exit 1; }
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node build.mjs "$@"
