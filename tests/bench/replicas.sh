#!/usr/bin/env bash
# Replicas benchmark (not part of CI: it runs a minute): three timbre-serve replicas, each on its
# own local copy of the snapshot (deploy/sync-snapshot.sh from a "shared" directory), behind nginx
# retrying on error and timeout; wrk on nginx for 60 s while a new model is published and copied
# to each replica in turn, and one replica is restarted with SIGTERM. Exits 1 unless every reply
# was 2xx, wrk saw no socket error, and all three serve the new snapshot at the end.
#   bash tests/bench/replicas.sh [--seconds 60]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/setup.sh"
command -v wrk >/dev/null || bench_install wrk
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || bench_install nginx-light
mg=$(bench_data music_genre_50k.csv.gz)
bench_build trainer/timbre-train server/timbre-serve
exec /usr/bin/python3 "$here/replicas.py" --music-genre "$mg" --build "$build" --sync "$bench_root/deploy/sync-snapshot.sh" "$@"
