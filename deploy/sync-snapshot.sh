#!/bin/sh
# Copies the served snapshot from shared storage onto node-local storage, for one replica:
#   sync-snapshot.sh SRC_DIR DST_DIR [--watch SECONDS]
# SRC_DIR is where the trainer writes (timbre-train --snapshots, on a shared volume, or a
# directory an object-store sync fills); DST_DIR is what timbre-serve --db serves. The file
# CURRENT names is copied to a temporary name, checked against its SHA-256, renamed into place,
# and only then is DST_DIR/CURRENT replaced (by rename): the server, with --watch, never sees a
# pointer to a partial copy. Old local copies past the newest three are removed. No SQLite file
# is opened across hosts: only whole, finished, immutable files move.
set -eu
src=${1:?usage: sync-snapshot.sh SRC_DIR DST_DIR [--watch SECONDS]}
dst=${2:?usage: sync-snapshot.sh SRC_DIR DST_DIR [--watch SECONDS]}
every=${4:-0}
[ "${3:-}" = "--watch" ] || every=0
mkdir -p "$dst"

sync_once() {
  [ -f "$src/CURRENT" ] || { echo "sync-snapshot: no $src/CURRENT yet" >&2; return 1; }
  pointer=$(cat "$src/CURRENT")
  file=${pointer%% *}
  sha=${pointer#* }
  case "$file" in snapshot-*.db) ;; *) echo "sync-snapshot: $src/CURRENT is not a pointer" >&2; return 1 ;; esac
  if [ -f "$dst/CURRENT" ] && [ "$(cat "$dst/CURRENT")" = "$pointer" ]; then
    return 0
  fi
  if [ ! -f "$dst/$file" ]; then
    cp "$src/$file" "$dst/.$file.tmp"
    got=$(sha256sum "$dst/.$file.tmp" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
      rm -f "$dst/.$file.tmp"
      echo "sync-snapshot: $file copied with SHA-256 $got, expected $sha: retrying later" >&2
      return 1
    fi
    chmod 0444 "$dst/.$file.tmp"
    mv "$dst/.$file.tmp" "$dst/$file"
  fi
  printf '%s\n' "$pointer" > "$dst/.CURRENT.tmp"
  mv "$dst/.CURRENT.tmp" "$dst/CURRENT"
  echo "sync-snapshot: serving $file" >&2
  # Keep the newest three local copies (the current one always).
  ls "$dst" | grep '^snapshot-.*\.db$' | sort -r | tail -n +4 | while read -r old; do
    [ "$old" = "$file" ] || rm -f "$dst/$old"
  done
}

if [ "$every" -gt 0 ]; then
  while :; do
    sync_once || true
    sleep "$every"
  done
else
  sync_once
fi
