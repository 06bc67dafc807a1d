#!/usr/bin/env bash
# Neural-network benchmark (not part of CI): Timbre's mlp against scikit-learn's MLPClassifier on
# music_genre_50k, the multi-task network against the single-task ones, and the learned
# embedding's Genre-Hit@10 on spotify_tracks_114k. Installs the peers from Debian, builds Timbre.
#   bash tests/bench/mlp.sh [--skip-embedding]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if ! /usr/bin/python3 -c 'import sklearn, pandas' 2>/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-sklearn python3-pandas
fi
mg=$("$root/tests/find-data.sh" music_genre_50k.csv.gz)
st=$("$root/tests/find-data.sh" spotify_tracks_114k.csv.gz)
build="$root/build-bench"
[ -d "$build" ] || meson setup "$build" "$root" --buildtype=release >/dev/null
ninja -C "$build" models/timbre-train >&2
exec /usr/bin/python3 "$here/mlp.py" --music-genre "$mg" --tracks "$st" --build "$build" "$@"
