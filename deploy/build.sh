#!/usr/bin/env bash
# Builds timbre-train and timbre-serve (release) into BUILD_DIR (default build-release), and
# installs them under PREFIX when given. The one build recipe shared by run.sh and the Dockerfile.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-release}
bash "$root/deploy/install-deps.sh"
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root" --buildtype=release ${PREFIX:+--prefix="$PREFIX"} >/dev/null
fi
ninja -C "$build" trainer/timbre-train server/timbre-serve timbre.service >&2
if [ -n "${PREFIX:-}" ]; then
  meson install -C "$build" --no-rebuild >&2
fi
