# Sourced by the benchmark scripts: peers from Debian's packages when missing, Timbre built in
# release in build-bench, the data found as the tests find it.
bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

bench_install() {
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# bench_need "mod1, mod2" PACKAGE...: installs the packages unless Debian's python imports the modules.
bench_need() {
  local modules=$1
  shift
  /usr/bin/python3 -c "import $modules" 2>/dev/null || bench_install "$@"
}

# bench_build TARGET...: configures build-bench once, builds the targets; sets $build.
bench_build() {
  build="$bench_root/build-bench"
  [ -d "$build" ] || meson setup "$build" "$bench_root" --buildtype=release >/dev/null
  ninja -C "$build" "$@" >&2
}

bench_data() {
  "$bench_root/tests/find-data.sh" "$1"
}
