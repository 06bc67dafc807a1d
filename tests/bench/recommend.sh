#!/usr/bin/env bash
# Recommendation-index benchmark (not part of CI): Timbre's exact top-k against FAISS IndexFlatIP
# on the same normalized vectors (read from the index Timbre publishes). Installs FAISS from
# Debian, builds Timbre (release), trains the index on spotify_tracks_114k (80/20 grouped by
# track_id, seed 42), reports Genre-Hit@10, latency, throughput and agreement.
#   bash tests/bench/recommend.sh [--calls 2000] [--queries 1000] [--threads 2]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/setup.sh"
bench_need "faiss, numpy" python3-faiss python3-numpy
st=$(bench_data spotify_tracks_114k.csv.gz)
bench_build trainer/timbre-train tests/timbre-recommend-bench
exec /usr/bin/python3 "$here/recommend.py" --tracks "$st" --build "$build" "$@"
