#!/usr/bin/env bash
# One command from a fresh Debian machine to a running server: installs missing packages, builds,
# obtains the data (../shared/data when present, else a download of the public 114k table),
# trains the default genre and popularity models into timbre.db (once), and serves them.
#   TIMBRE_DB (timbre.db)  TIMBRE_LISTEN (127.0.0.1:8080)  TIMBRE_RETRAIN=1 to train again
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash deploy/build.sh
bin="$root/build-release"
db=${TIMBRE_DB:-$root/timbre.db}
published=0
if [ -f "$db" ] && command -v python3 >/dev/null; then
  published=$(python3 -c 'import sqlite3,sys
try: print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM models WHERE published=1").fetchone()[0])
except Exception: print(0)' "$db")
fi
if [ "$published" = 0 ] || [ "${TIMBRE_RETRAIN:-0}" = 1 ]; then
  data=$(bash tests/find-data.sh spotify_tracks_114k.csv.gz)
  "$bin/trainer/timbre-train" --data "$data" --db "$db" --report "${db%.db}-report.json"
else
  echo "run: $db already holds published models (TIMBRE_RETRAIN=1 trains again)" >&2
  # A database from an older Timbre: migrate it (and write its first snapshot) instead of refusing.
  "$bin/trainer/timbre-train" models --db "$db" snapshot
fi
exec "$bin/server/timbre-serve" --db "$db" --listen "${TIMBRE_LISTEN:-127.0.0.1:8080}"
