#!/usr/bin/env bash
# Browser and Socket.IO tests of meeting-service, run inside a fresh network namespace
# that has only loopback (see the shared design's testing.md): the server, Chromium and
# every connection stay on 127.0.0.1. Builds nothing: the server binary comes from
# $MEETING_SERVICE_BIN (default target/debug/meeting-service of the repo).
#
#   bash tests/browser/run.sh                 # all test files
#   bash tests/browser/run.sh sfu.test.js     # some of them
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${MEETING_SERVICE_BIN:-$root/target/debug/meeting-service}"

skip() {
  echo "SKIPPED (not passed): browser tests not run: $*"
  exit 0
}

[ "$(id -u)" = 0 ] || skip "creating a network namespace needs root"
command -v ip >/dev/null || skip "the ip command (iproute2) is not installed"
[ -x /usr/bin/chromium ] || { echo "FAIL: /usr/bin/chromium is missing (apt-get install chromium)"; exit 1; }
[ -x "$bin" ] || { echo "FAIL: server binary $bin not found (cargo build -p meeting-service)"; exit 1; }
[ -d "$here/node_modules/playwright-core" ] || { echo "FAIL: run 'npm ci' in tests/browser first"; exit 1; }

ns="mtest-$$"
ip netns add "$ns" 2>/dev/null || skip "'ip netns add' is not permitted here"
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ip -n "$ns" link set lo up

files=()
if [ $# -gt 0 ]; then
  for f in "$@"; do files+=("$here/$(basename "$f")"); done
else
  files=("$here"/*.test.js)
fi

echo "network namespace $ns; server $bin"
cd "$here"
ip netns exec "$ns" env MEETING_SERVICE_BIN="$bin" MTEST_NETNS="$ns" \
  node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
