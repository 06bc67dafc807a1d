#!/usr/bin/env bash
# HTTP benchmark (not part of CI): wrk against timbre-serve and against FastAPI + uvicorn (2 workers)
# serving scikit-learn's RandomForest trained on the same data, one after the other in one run.
# Installs wrk, FastAPI, uvicorn and scikit-learn from Debian; builds Timbre (release).
#   bash tests/bench/http.sh [--seconds 10]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if ! command -v wrk >/dev/null || ! /usr/bin/python3 -c 'import fastapi, uvicorn, sklearn, pandas' 2>/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk python3-fastapi python3-uvicorn \
    python3-sklearn python3-pandas
fi
mg=$("$root/tests/find-data.sh" music_genre_50k.csv.gz)
build="$root/build-bench"
[ -d "$build" ] || meson setup "$build" "$root" --buildtype=release >/dev/null
ninja -C "$build" models/timbre-train server/timbre-serve >&2
exec /usr/bin/python3 "$here/http/run.py" --music-genre "$mg" --build "$build" "$@"
