#!/usr/bin/env bash
# HTTP benchmark (not part of CI): wrk against timbre-serve and against FastAPI + uvicorn (2 workers)
# serving scikit-learn's RandomForest trained on the same data, one after the other in one run.
# Installs wrk, FastAPI, uvicorn and scikit-learn from Debian; builds Timbre (release).
#   bash tests/bench/http.sh [--seconds 10] [--rounds 3]   (rounds interleave; medians reported)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/setup.sh"
command -v wrk >/dev/null || bench_install wrk
bench_need "fastapi, uvicorn, sklearn, pandas" python3-fastapi python3-uvicorn python3-sklearn python3-pandas
mg=$(bench_data music_genre_50k.csv.gz)
bench_build trainer/timbre-train server/timbre-serve tests/timbre-bare-mhd-bench
exec /usr/bin/python3 "$here/http/run.py" --music-genre "$mg" --build "$build" "$@"
