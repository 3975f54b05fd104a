#!/usr/bin/env bash
# Regenerates the reference docs that come from the code: docs/settings.md and docs/cli.md.
# tests/test_docs.py fails when they are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m fleetlens.settings_doc > docs/settings.md
.venv/bin/typer fleetlens.cli utils docs --name fleetlens --title "fleetlens command reference" --output docs/cli.md >/dev/null
echo "docs/settings.md and docs/cli.md regenerated"
