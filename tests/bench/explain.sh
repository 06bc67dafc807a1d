#!/usr/bin/env bash
# Explanation benchmark (not part of CI): Timbre's TreeSHAP on its default genre model against
# XGBoost's pred_contribs on its own model, same splits, one thread; global importances side by
# side. Installs XGBoost, scikit-learn, pandas and SciPy from Debian; builds Timbre (release).
#   bash tests/bench/explain.sh [--rows 1000] [--tables music_genre_50k,spotify_tracks_114k]
#                               [--xgb-rounds-114k 300] [--threads 2]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/setup.sh"
bench_need "sklearn, pandas, xgboost, scipy" python3-sklearn python3-pandas python3-xgboost python3-scipy
mg=$(bench_data music_genre_50k.csv.gz)
st=$(bench_data spotify_tracks_114k.csv.gz)
bench_build trainer/timbre-train tests/timbre-predict-bench
exec /usr/bin/python3 "$here/explain.py" --music-genre "$mg" --tracks "$st" --build "$build" "$@"
