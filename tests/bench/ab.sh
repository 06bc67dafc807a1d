#!/usr/bin/env bash
# A/B benchmark (not part of CI): timbre-serve built from a git revision (default HEAD) against
# the working tree, on one database, wrk on one route in alternating runs — so a change's cost is
# measured side by side on the same machine state. Each side is built from its own source tree.
#   bash tests/bench/ab.sh [--rev HEAD] [--route /v1/genre] [--seconds 5] [--rounds 5] [--connections 32]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/setup.sh"
command -v wrk >/dev/null || bench_install wrk
rev=HEAD
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rev) rev=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
mg=$(bench_data music_genre_50k.csv.gz)
bench_build trainer/timbre-train server/timbre-serve
old=$(mktemp -d /tmp/timbre-ab-XXXXXX)
trap 'git -C "$bench_root" worktree remove --force "$old/src" >/dev/null 2>&1 || true; rm -rf "$old"' EXIT
git -C "$bench_root" worktree add --detach "$old/src" "$rev" >/dev/null 2>&1
meson setup "$old/build" "$old/src" --buildtype=release >/dev/null
old_train=models/timbre-train               # where the trainer was built before trainer/ existed
[ -d "$old/src/trainer" ] && old_train=trainer/timbre-train
ninja -C "$old/build" server/timbre-serve "$old_train" >&2
echo "A: $(git -C "$bench_root" rev-parse --short "$rev") ($old/build), B: the working tree ($build)" >&2
/usr/bin/python3 "$here/ab.py" --music-genre "$mg" --trainer-a "$old/build/$old_train" \
  --trainer-b "$build/trainer/timbre-train" --a "$old/build/server/timbre-serve" --b "$build/server/timbre-serve" "${args[@]}"
