#!/usr/bin/env bash
# The recommendation index at catalog scale (not part of CI): spotify_tracks_114k's real vectors
# jittered into catalogs of millions; Timbre's HNSW graph against python3-hnswlib and FAISS HNSW
# on the same vectors (recall@10, queries/s on one thread, memory, build time), filtered searches,
# and POST /v1/recommend over HTTP at 1 M tracks with the graph and with the exact scan. Installs
# the peers and wrk from Debian, builds Timbre (release). Takes about 80 minutes at the default sizes (FAISS builds at 1 M only).
#   bash tests/bench/recommend_scale.sh [--rows 1000000,5000000] [--http-rows 1000000] [--faiss-rows 1000000]
#                                       [--seconds 20] [--queries 1000] [--ef 16,32,64,128,256] [--work DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/setup.sh"
bench_need "hnswlib, faiss, numpy" python3-hnswlib python3-faiss python3-numpy
command -v wrk >/dev/null || bench_install wrk
st=$(bench_data spotify_tracks_114k.csv.gz)
bench_build trainer/timbre-train server/timbre-serve tests/timbre-scale-bench
exec /usr/bin/python3 "$here/recommend_scale.py" --tracks "$st" --build "$build" "$@"
