#!/usr/bin/env bash
# Rebuilds the dashboard bundle (src/fleetlens/ui/static/) from ui/src with the pinned npm packages
# (ui/package-lock.json: esbuild, uPlot), and copies the vendored Swagger UI of /docs. The bundle is committed, so users and `pip install` need no npm.
# Usage: scripts/build-ui.sh [OUTPUT_DIR]   (default: src/fleetlens/ui/static)
set -euo pipefail
cd "$(dirname "$0")/../ui"
command -v node >/dev/null || { echo "build-ui: node is required (Debian: apt-get install nodejs npm)" >&2; exit 1; }
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node build.mjs "$@"
# Swagger UI for the API's /docs, vendored unchanged (src/fleetlens/ui/apidocs/init.js is ours).
dist=node_modules/swagger-ui-dist
cp "$dist/swagger-ui-bundle.js" "$dist/swagger-ui.css" ../src/fleetlens/ui/apidocs/
cp "$dist/LICENSE" ../src/fleetlens/ui/apidocs/LICENSE.swagger-ui
cp "$dist/NOTICE" ../src/fleetlens/ui/apidocs/NOTICE.swagger-ui
