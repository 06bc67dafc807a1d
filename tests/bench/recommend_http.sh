#!/usr/bin/env bash
# Recommendation indexes over HTTP (not part of CI): /v1/recommend on spotify_tracks_114k's index
# built with each embedding (default: standardized, the old default, beside genre, the new one),
# the same wrk runs in turn. Installs wrk; builds Timbre (release).
#   bash tests/bench/recommend_http.sh [--embeddings standardized,genre] [--seconds 10] [--rounds 3]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/setup.sh"
command -v wrk >/dev/null || bench_install wrk
st=$(bench_data spotify_tracks_114k.csv.gz)
bench_build trainer/timbre-train server/timbre-serve
exec /usr/bin/python3 "$here/http/recommend_indexes.py" --tracks "$st" --build "$build" "$@"
