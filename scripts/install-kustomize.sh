#!/usr/bin/env bash
# Installs the pinned kustomize (used by tests/deploy to render deploy/k8s) and prints its path.
# ~1-2 min to build the first time (see install-go-tool.sh).
set -euo pipefail
VERSION=v5.8.1  # v5.8.3 needs Go 1.27; this machine kind has Go 1.26
bin=$("$(dirname "$0")/install-go-tool.sh" kustomize sigs.k8s.io/kustomize/kustomize/v5 "$VERSION")
"$bin" version > /dev/null
echo "$bin"
