#!/usr/bin/env bash
# Installs the Debian packages Timbre builds and tests with, when any is missing.
# Used by deploy/run.sh, tests/run.sh, .ci/run and the Dockerfile. Needs root (or sudo) to install.
set -euo pipefail
packages=(meson ninja-build pkg-config gcc g++ libc6-dev libmicrohttpd-dev libcjson-dev libsqlite3-dev libhnswlib-dev
          libopenblas-dev zlib1g-dev libsodium-dev python3 curl ca-certificates)
for flag in "$@"; do
  case "$flag" in
    --with-valgrind) packages+=(valgrind) ;;
    # tests/integration/test_nginx.py and test_page.py (headless Chromium via selenium)
    --with-test-tools) packages+=(nginx-light chromium chromium-driver python3-selenium) ;;
    *) echo "install-deps: unknown option $flag" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then
    sudo="sudo"
  else
    echo "install-deps: missing packages (${missing[*]}) and not root: install them and run again" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
