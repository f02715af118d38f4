#!/usr/bin/env bash
# One Janus benchmark run, start to finish: namespace, Janus, meeting-load inside the
# namespace with --server-pid, then cleanup (Janus killed by its PID, namespace
# deleted). Extra arguments go to meeting-load (e.g. --participants 8 --json out.json).
#
#   scripts/janus/bench.sh [meeting-load args…]
# Environment: MEETING_LOAD (default target/release/meeting-load), CONF_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
load=${MEETING_LOAD:-$root/target/release/meeting-load}
conf=${CONF_DIR:-/tmp/meeting-load-janus}
ns=mljanus-$$

"$here/setup.sh" "$conf" >/dev/null
"$here/netns.sh" up "$ns"
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  "$here/netns.sh" down "$ns" || true
}
trap cleanup EXIT
pid=$(ip netns exec "$ns" "$here/start.sh" "$conf")
ip netns exec "$ns" "$load" --target janus --url http://127.0.0.1:${JANUS_HTTP_PORT:-8088} \
  --bind-ip 10.254.254.1 --server-pid "$pid" "$@"
