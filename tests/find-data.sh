#!/usr/bin/env bash
# Prints the path of a data file (e.g. music_genre_50k.csv.gz), fetching it if needed:
# ../shared/data beside the checkout when present, else data/ in the checkout, else a download
# of the public copy into data/. Exits non-zero when the file cannot be had.
set -euo pipefail
name=$1
root=$(cd "$(dirname "$0")/.." && pwd)
for dir in "$root/../shared/data" "$root/data"; do
  if [ -f "$dir/$name" ]; then
    echo "$dir/$name"
    exit 0
  fi
done
mkdir -p "$root/data"
case "$name" in
  spotify_tracks_114k.csv.gz)
    url="https://huggingface.co/datasets/maharshipandya/spotify-tracks-dataset/resolve/main/dataset.csv" ;;
  music_genre_50k.csv.gz)
    echo "find-data: $name is not in ../shared/data and has no public direct download; put it in data/" >&2
    exit 1 ;;
  *)
    echo "find-data: unknown data file '$name'" >&2
    exit 1 ;;
esac
echo "find-data: downloading $url" >&2
tmp=$(mktemp)
if ! curl -fsSL --retry 2 "$url" -o "$tmp"; then
  rm -f "$tmp"
  echo "find-data: download of $name failed" >&2
  exit 1
fi
gzip -9 -n -c "$tmp" > "$root/data/$name"
rm -f "$tmp"
echo "$root/data/$name"
