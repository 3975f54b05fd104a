#!/usr/bin/env bash
# Installs the pinned kustomize (used by tests/deploy to render deploy/k8s) from the Go module
# proxy into a cache outside the work tree, and prints its path. Idempotent: a second run only
# checks. Needs Go >= 1.24 the first time (~1-2 min to build); FLEETLENS_TOOLS_CACHE moves the cache.
set -euo pipefail
VERSION=v5.8.1  # v5.8.3 needs Go 1.27; this machine kind has Go 1.26
dir="${FLEETLENS_TOOLS_CACHE:-$HOME/.cache/fleetlens/tools}/kustomize-$VERSION"
bin="$dir/kustomize"
if [ ! -x "$bin" ]; then
  command -v go > /dev/null || { echo "install-kustomize: Go is needed to build kustomize $VERSION" >&2; exit 1; }
  echo "install-kustomize: building kustomize $VERSION into $dir (once)" >&2
  mkdir -p "$dir"
  GOBIN="$dir" GOTOOLCHAIN=local GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$VERSION" >&2
fi
"$bin" version > /dev/null
echo "$bin"
