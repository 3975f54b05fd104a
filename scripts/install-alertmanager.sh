#!/usr/bin/env bash
# Installs the pinned Prometheus Alertmanager (tests/detect send alerts to a real one) and prints
# its path. A few minutes to build the first time (see install-go-tool.sh).
set -euo pipefail
VERSION=v0.30.1  # v0.31+ embed a web UI bundle that the Go module does not ship: they do not build from the proxy
bin=$("$(dirname "$0")/install-go-tool.sh" alertmanager github.com/prometheus/alertmanager/cmd/alertmanager "$VERSION")
"$bin" --version > /dev/null 2>&1
echo "$bin"
