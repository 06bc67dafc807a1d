#!/usr/bin/env bash
# Benchmark: Timbre rf vs scikit-learn RandomForest on music_genre_50k (not part of CI).
# Installs the peer from Debian packages, builds Timbre in release mode, runs both in one go.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if ! /usr/bin/python3 -c 'import sklearn, pandas' 2>/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-sklearn python3-pandas
fi
data=$("$root/tests/find-data.sh" music_genre_50k.csv.gz)
build="$root/build-bench"
[ -d "$build" ] || meson setup "$build" "$root" --buildtype=release >/dev/null
ninja -C "$build" models/timbre-train
exec /usr/bin/python3 "$here/rf_vs_sklearn.py" --data "$data" --trainer "$build/models/timbre-train" "$@"
