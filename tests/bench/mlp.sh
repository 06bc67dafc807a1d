#!/usr/bin/env bash
# Neural-network benchmark (not part of CI): Timbre's mlp against scikit-learn's MLPClassifier on
# music_genre_50k, the multi-task network against the single-task ones, and the learned
# embedding's Genre-Hit@10 on spotify_tracks_114k. Installs the peers from Debian, builds Timbre.
#   bash tests/bench/mlp.sh [--skip-embedding]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/setup.sh"
bench_need "sklearn, pandas" python3-sklearn python3-pandas
mg=$(bench_data music_genre_50k.csv.gz)
st=$(bench_data spotify_tracks_114k.csv.gz)
bench_build trainer/timbre-train
exec /usr/bin/python3 "$here/mlp.py" --music-genre "$mg" --tracks "$st" --build "$build" "$@"
