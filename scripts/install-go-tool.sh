#!/usr/bin/env bash
# Builds a pinned Go tool from the Go module proxy into a cache outside the work tree (once) and
# prints its path: install-go-tool.sh NAME MODULE/cmd/path VERSION
# Idempotent: a second run only checks. Needs Go the first time; FLEETLENS_TOOLS_CACHE moves the cache.
set -euo pipefail
name=$1 package=$2 version=$3
dir="${FLEETLENS_TOOLS_CACHE:-$HOME/.cache/fleetlens/tools}/$name-$version"
bin="$dir/$name"
if [ ! -x "$bin" ]; then
  command -v go > /dev/null || { echo "install-go-tool: Go is needed to build $name $version" >&2; exit 1; }
  echo "install-go-tool: building $name $version into $dir (once)" >&2
  mkdir -p "$dir"
  GOBIN="$dir" GOTOOLCHAIN=local GOFLAGS=-mod=mod go install "$package@$version" >&2
fi
echo "$bin"
