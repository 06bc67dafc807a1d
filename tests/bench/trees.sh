#!/usr/bin/env bash
# Tree-engine benchmark (not part of CI): Timbre rf/extra/gbdt vs XGBoost, scikit-learn RF and
# HistGradientBoosting on both tables. Installs the peers from Debian, builds Timbre (release).
#   bash tests/bench/trees.sh [--only music_genre_50k|spotify_tracks_114k] [--skip-xgb-114k]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/setup.sh"
bench_need "sklearn, pandas, xgboost" python3-sklearn python3-pandas python3-xgboost
mg=$(bench_data music_genre_50k.csv.gz)
st=$(bench_data spotify_tracks_114k.csv.gz)
bench_build trainer/timbre-train tests/timbre-predict-bench
exec /usr/bin/python3 "$here/trees.py" --music-genre "$mg" --tracks "$st" --build "$build" "$@"
