#!/usr/bin/env bash
# Conformal benchmark (not part of CI): Timbre's genre sets and popularity intervals against
# scikit-learn RandomForest(100, balanced) + LAC split conformal, same train/test splits as
# tests/bench/trees.sh, audio features. Installs the peers from Debian, builds Timbre (release).
#   bash tests/bench/conformal.sh [--only music_genre_50k|spotify_tracks_114k]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if ! /usr/bin/python3 -c 'import sklearn, pandas, xgboost' 2>/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-sklearn python3-pandas python3-xgboost
fi
mg=$("$root/tests/find-data.sh" music_genre_50k.csv.gz)
st=$("$root/tests/find-data.sh" spotify_tracks_114k.csv.gz)
build="$root/build-bench"
[ -d "$build" ] || meson setup "$build" "$root" --buildtype=release >/dev/null
ninja -C "$build" models/timbre-train >&2
exec /usr/bin/python3 "$here/conformal.py" --music-genre "$mg" --tracks "$st" --build "$build" "$@"
