#!/usr/bin/env bash
# The cost of the metrics on the forwarding path (docs/benchmarks.md, "Metrics cost"):
# the same meeting through the load tool against servers that differ only in their
# metrics, run alternately (A B C A B C …) on one machine so that its noise falls on
# every variant alike. Prints the server's CPU time per forwarded packet of each run.
#
#   off   METRICS_ENABLED=false (no recorder, no per-stream statistics)
#   on    METRICS_ENABLED=true, /metrics scraped every second (15 times Prometheus's
#         default rate)
#   base  optional: BASE_BIN=<a meeting-service built before the metrics>, scraped the
#         same way (it answers 404)
#
# Usage: scripts/bench/metrics-cost.sh   (after cargo build --release --workspace)
#   ROUNDS=3 PARTICIPANTS=8 DURATION=20 BASE_BIN=/path/to/old/meeting-service
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
PARTICIPANTS=${PARTICIPANTS:-8}
DURATION=${DURATION:-20}
BIN=${BIN:-target/release/meeting-service}
LOAD=${LOAD:-target/release/meeting-load}
SECRET=bench-secret-0123456789
PORT=${PORT:-3019}
out=$(mktemp -d /tmp/metrics-cost.XXXXXX)
variants=(off on)
[ -n "${BASE_BIN:-}" ] && variants=(base off on)

one_run() { # variant round
  local variant=$1 round=$2 bin=$BIN enabled=true
  [ "$variant" = off ] && enabled=false
  [ "$variant" = base ] && bin=$BASE_BIN
  rm -f "$out/db.sqlite"
  PORT=$PORT HOST=127.0.0.1 DATABASE_URL="sqlite://$out/db.sqlite" JWT_SECRET=$SECRET \
    MEDIASOUP_ANNOUNCED_IP=127.0.0.1 MEDIASOUP_ALLOW_LOOPBACK=true MEDIASOUP_LISTEN_IP=127.0.0.1 \
    MEDIASOUP_MIN_PORT=40100 MEDIASOUP_MAX_PORT=40109 MEDIASOUP_WORKERS=1 RUST_LOG=warn \
    METRICS_ENABLED=$enabled "$bin" >"$out/server-$variant-$round.log" 2>&1 &
  local server=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
    sleep 0.1
  done
  # A scraper as Prometheus would be, every second, for as long as the server runs.
  (for _ in $(seq 1 600); do
     kill -0 "$server" 2>/dev/null || exit 0
     curl -s -o /dev/null "http://127.0.0.1:$PORT/metrics"
     sleep 1
   done) &
  local scraper=$!
  "$LOAD" --url "http://127.0.0.1:$PORT" --jwt-secret $SECRET --scenario meeting \
    --participants "$PARTICIPANTS" --video-bitrate 800 --fps 25 --duration "$DURATION" \
    --ramp-up 2 --server-pid "$server" --quiet --json "$out/$variant-$round.json" >/dev/null
  kill "$server"
  wait "$server" 2>/dev/null || true
  kill "$scraper" 2>/dev/null || true
  wait "$scraper" 2>/dev/null || true
  jq -r --arg v "$variant" --arg r "$round" \
    '"\($v)\t\($r)\t\(.server_cpu.us_per_forwarded_packet)\t\(.received.packets_per_s)\t\(.server_cpu.cpu_s)"' \
    "$out/$variant-$round.json"
}

printf 'variant\tround\tus_per_forwarded_packet\tforwarded_pkt_per_s\tserver_cpu_s\n'
for round in $(seq 1 "$ROUNDS"); do
  for v in "${variants[@]}"; do
    one_run "$v" "$round"
  done
done
echo "reports: $out" >&2
