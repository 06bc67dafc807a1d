#!/usr/bin/env bash
# Conformal benchmark (not part of CI): Timbre's genre sets and popularity intervals against
# scikit-learn RandomForest(100, balanced) + LAC split conformal, same train/test splits as
# tests/bench/trees.sh, audio features. Installs the peers from Debian, builds Timbre (release).
#   bash tests/bench/conformal.sh [--only music_genre_50k|spotify_tracks_114k]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/setup.sh"
bench_need "sklearn, pandas, xgboost" python3-sklearn python3-pandas python3-xgboost
mg=$(bench_data music_genre_50k.csv.gz)
st=$(bench_data spotify_tracks_114k.csv.gz)
bench_build trainer/timbre-train
exec /usr/bin/python3 "$here/conformal.py" --music-genre "$mg" --tracks "$st" --build "$build" "$@"
