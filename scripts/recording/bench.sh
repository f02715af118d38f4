#!/usr/bin/env bash
# What recording costs on the forwarding path: the load tool's 16-person meeting, not
# recorded (A) and recorded (B), alternated A B A B against one release server, on
# loopback. Prints the load tool's µs of server CPU per forwarded packet (whole process:
# the recorder's thread included) and, per run, the CPU seconds of the worker thread
# (sfu-worker-0) and of the recorder's threads (rec-*) from /proc/<pid>/task/*/stat.
#
#   cargo build --release --workspace
#   bash scripts/recording/bench.sh            # DURATION=15 PARTICIPANTS=16 ROUNDS=2
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
server_bin="${MEETING_SERVICE_BIN:-$root/target/release/meeting-service}"
load_bin="${MEETING_LOAD_BIN:-$root/target/release/meeting-load}"
duration="${DURATION:-15}"
participants="${PARTICIPANTS:-16}"
rounds="${ROUNDS:-2}"
[ -x "$server_bin" ] && [ -x "$load_bin" ] || { echo "build first: cargo build --release --workspace"; exit 1; }

work="$(mktemp -d /tmp/recording-bench-XXXXXX)"
port=$((30000 + RANDOM % 20000))
udp=$((20000 + RANDOM % 9000))
secret="recording-bench-secret-0123456789"
env -i PATH="$PATH" HOME="$work" RUST_LOG=warn HOST=127.0.0.1 PORT="$port" \
  DATABASE_URL="sqlite://$work/db.sqlite" RECORDINGS_DIR="$work/recordings" \
  MEDIASOUP_ANNOUNCED_IP=127.0.0.1 MEDIASOUP_ALLOW_LOOPBACK=true MEDIASOUP_LISTEN_IP=127.0.0.1 \
  MEDIASOUP_MIN_PORT="$udp" MEDIASOUP_MAX_PORT="$((udp + 9))" MEDIASOUP_WORKERS=1 \
  MAX_PARTICIPANTS=50 JWT_SECRET="$secret" SFU_MODE_ENABLED=true \
  "$server_bin" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done

# CPU seconds of the server's threads whose name matches $1 (ticks of 1/100 s).
threads_cpu() {
  local pattern="$1" sum=0 t name stat
  for t in /proc/"$pid"/task/*; do
    name="$(cat "$t/comm" 2>/dev/null || true)"
    # shellcheck disable=SC2254 # a glob on purpose
    case "$name" in $pattern) ;; *) continue ;; esac
    stat="$(cat "$t/stat" 2>/dev/null || true)"
    [ -n "$stat" ] || continue
    stat="${stat##*) }"
    set -- $stat
    sum=$((sum + ${12} + ${13}))
  done
  echo "$sum"
}

printf '%-10s %-6s %12s %14s %12s %12s\n' run record "us/fwd pkt" "fwd pkt/s" "worker cpu s" "rec cpu s"
for r in $(seq 1 "$rounds"); do
  for mode in off on; do
    flag=()
    [ "$mode" = on ] && flag=(--record)
    w0="$(threads_cpu 'sfu-worker-*')"; r0="$(threads_cpu 'rec-*')"
    MEETING_LOAD_JWT_SECRET="$secret" "$load_bin" --url "http://127.0.0.1:$port" --scenario meeting \
      --participants "$participants" --duration "$duration" --server-pid "$pid" --quiet \
      --json "$work/run-$r-$mode.json" "${flag[@]}" >"$work/run-$r-$mode.txt"
    w1="$(threads_cpu 'sfu-worker-*')"; r1="$(threads_cpu 'rec-*')"
    us="$(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); c=j['server_cpu']; print(round(c['us_per_forwarded_packet'],2), round(c['cpu_s']*1e6/c['us_per_forwarded_packet']/j['window_s']))" "$work/run-$r-$mode.json" 2>/dev/null || echo "? ?")"
    set -- $us
    printf '%-10s %-6s %12s %14s %12s %12s\n' "$r" "$mode" "$1" "$2" \
      "$(python3 -c "print(($w1-$w0)/100)")" "$(python3 -c "print(($r1-$r0)/100)")"
  done
done
echo "files: $(du -sh "$work/recordings" 2>/dev/null | cut -f1) recorded; reports in $work"
