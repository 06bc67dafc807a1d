#!/usr/bin/env bash
# Benchmark: Timbre rf vs scikit-learn RandomForest on music_genre_50k (not part of CI).
# Installs the peer from Debian packages, builds Timbre in release mode, runs both in one go.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/setup.sh"
bench_need "sklearn, pandas" python3-sklearn python3-pandas
data=$(bench_data music_genre_50k.csv.gz)
bench_build trainer/timbre-train
exec /usr/bin/python3 "$here/rf_vs_sklearn.py" --data "$data" --trainer "$build/trainer/timbre-train" "$@"
