#!/usr/bin/env bash
# Starts Janus with the configuration written by setup.sh, in the background; prints
# its PID (stop it with `kill <pid>`). Waits until the HTTP API answers.
set -euo pipefail
conf=${1:-/tmp/meeting-load-janus}
http_port=${JANUS_HTTP_PORT:-8088}
[ -f "$conf/janus.jcfg" ] || { echo "run scripts/janus/setup.sh $conf first" >&2; exit 1; }
janus -F "$conf" -C "$conf/janus.jcfg" -L "$conf/janus.log" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$http_port/janus/info" >/dev/null; then
    echo "$pid"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || { echo "janus exited; see $conf/janus.log" >&2; exit 1; }
  sleep 0.1
done
echo "janus did not answer on 127.0.0.1:$http_port within 10 s; see $conf/janus.log" >&2
kill "$pid"
exit 1
