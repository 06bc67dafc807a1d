#!/usr/bin/env bash
# Reload under load (not part of CI; the integration tests reload under a lighter load): a
# 30-second wrk run on POST /v1/genre while timbre-train publishes a new genre model into the
# database timbre-serve --watch 1 reads. Passes when wrk saw no error and no non-2xx reply, and
# /v1/models and /metrics show the new model afterwards. Installs wrk; builds Timbre (release).
#   bash tests/bench/reload.sh [--seconds 30]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/setup.sh"
command -v wrk >/dev/null || bench_install wrk
mg=$(bench_data music_genre_50k.csv.gz)
bench_build trainer/timbre-train server/timbre-serve
exec /usr/bin/python3 "$here/http/reload.py" --music-genre "$mg" --build "$build" "$@"
