#!/usr/bin/env bash
# The whole test suite: installs missing packages, then builds and tests twice — a release build
# and an AddressSanitizer + UndefinedBehaviorSanitizer debug build — both with -Werror (which the
# project's default options leave off, for users' newer compilers).
# Ends with one line "tests: N passed, N failed, N skipped".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash deploy/install-deps.sh --with-test-tools || exit 1
passed=0
failed=0
skipped=0
# A sanitizer report fails its test: the build stops at the first UBSan report
# (-fno-sanitize-recover) and both runtimes exit non-zero on a report, in every process the tests
# start (the servers of the integration tests too).
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
status=0
run_build() { # dir, meson options...
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null || { failed=$((failed + 1)); return 1; }
  fi
  ninja -C "$dir" || { echo "tests: the build in $dir failed" >&2; failed=$((failed + 1)); return 1; }
  meson test -C "$dir" --print-errorlogs
  local rc=$?
  local counts
  counts=$(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
ok = bad = skip = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    ok += r in ("OK", "EXPECTEDFAIL")
    skip += r == "SKIP"
    bad += r not in ("OK", "EXPECTEDFAIL", "SKIP")
print(ok, bad, skip)
PY
)
  read -r n_ok n_bad n_skip <<<"$counts"
  passed=$((passed + n_ok))
  failed=$((failed + n_bad))
  skipped=$((skipped + n_skip))
  return $rc
}
run_build build-release --buildtype=release -Dwerror=true || status=1
run_build build-asan --buildtype=debug -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
  -Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all || status=1
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
