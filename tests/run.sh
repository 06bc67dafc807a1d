#!/usr/bin/env bash
# The whole test suite: installs missing packages, then builds and tests twice — a release build
# and an AddressSanitizer + UndefinedBehaviorSanitizer debug build — both with -Werror.
# Ends with one line "tests: N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash deploy/install-deps.sh --with-test-tools || exit 1
passed=0
failed=0
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
ok = bad = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    ok += r in ("OK", "EXPECTEDFAIL", "SKIP")
    bad += r not in ("OK", "EXPECTEDFAIL", "SKIP")
print(ok, bad)
PY
)
  passed=$((passed + ${counts% *}))
  failed=$((failed + ${counts#* }))
  return $rc
}
run_build build-release --buildtype=release || status=1
run_build build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false || status=1
echo "tests: $passed passed, $failed failed"
exit $status
