#!/usr/bin/env bash
# One meeting through the load tool against servers that differ only in their settings
# (or binary), run alternately (A B A B …) on one machine so that its noise falls on
# every variant alike. Prints the server's CPU time per forwarded packet of each run
# (docs/benchmarks.md says how to read it).
#
# Each argument is a variant: NAME[@BINARY][:KEY=VALUE[,KEY=VALUE…]], e.g.
#   scripts/bench/variants.sh bwe-off:MEDIASOUP_BANDWIDTH_ESTIMATION=false \
#                             bwe-on:MEDIASOUP_BANDWIDTH_ESTIMATION=true
#   scripts/bench/variants.sh base@/tmp/old/meeting-service new
# Settings: ROUNDS=3 PARTICIPANTS=16 DURATION=15, SCRAPE=1 to scrape /metrics every
# second while the server runs (as Prometheus would, at 15 times its default rate),
# LOAD_ARGS="--simulcast …" for more meeting-load flags (the same for every variant).
# Run after `cargo build --release --workspace`.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
PARTICIPANTS=${PARTICIPANTS:-16}
DURATION=${DURATION:-15}
SCRAPE=${SCRAPE:-0}
read -r -a load_args <<<"${LOAD_ARGS:-}"
BIN=${BIN:-target/release/meeting-service}
LOAD=${LOAD:-target/release/meeting-load}
SECRET=bench-secret-0123456789
PORT=${PORT:-3019}
out=$(mktemp -d /tmp/bench-variants.XXXXXX)

one_run() { # variant round
  local spec=$1 round=$2 name bin=$BIN settings=""
  name=${spec%%:*}
  [[ $spec == *:* ]] && settings=${spec#*:}
  if [[ $name == *@* ]]; then bin=${name#*@}; name=${name%%@*}; fi
  local -a env_settings=()
  [ -n "$settings" ] && IFS=, read -r -a env_settings <<<"$settings"
  rm -f "$out/db.sqlite"
  env PORT=$PORT HOST=127.0.0.1 DATABASE_URL="sqlite://$out/db.sqlite" JWT_SECRET=$SECRET \
    MEDIASOUP_ANNOUNCED_IP=127.0.0.1 MEDIASOUP_ALLOW_LOOPBACK=true MEDIASOUP_LISTEN_IP=127.0.0.1 \
    MEDIASOUP_MIN_PORT=40100 MEDIASOUP_MAX_PORT=40109 MEDIASOUP_WORKERS=1 RUST_LOG=warn \
    "${env_settings[@]}" "$bin" >"$out/server-$name-$round.log" 2>&1 &
  local server=$! scraper=
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
    sleep 0.1
  done
  if [ "$SCRAPE" = 1 ]; then
    (for _ in $(seq 1 600); do
       kill -0 "$server" 2>/dev/null || exit 0
       curl -s -o /dev/null "http://127.0.0.1:$PORT/metrics"
       sleep 1
     done) &
    scraper=$!
  fi
  "$LOAD" --url "http://127.0.0.1:$PORT" --jwt-secret $SECRET --scenario meeting \
    --participants "$PARTICIPANTS" --video-bitrate 800 --fps 25 --duration "$DURATION" \
    --ramp-up 2 --server-pid "$server" --quiet --json "$out/$name-$round.json" \
    ${load_args[@]+"${load_args[@]}"} >/dev/null
  kill "$server"
  wait "$server" 2>/dev/null || true
  if [ -n "$scraper" ]; then
    kill "$scraper" 2>/dev/null || true
    wait "$scraper" 2>/dev/null || true
  fi
  jq -r --arg v "$name" --arg r "$round" \
    '"\($v)\t\($r)\t\(.server_cpu.us_per_forwarded_packet)\t\(.received.packets_per_s)\t\(.server_cpu.cpu_s)"' \
    "$out/$name-$round.json"
}

printf 'variant\tround\tus_per_forwarded_packet\tforwarded_pkt_per_s\tserver_cpu_s\n'
for round in $(seq 1 "$ROUNDS"); do
  for v in "$@"; do
    one_run "$v" "$round"
  done
done
echo "reports: $out" >&2
