#!/usr/bin/env bash
# The cost of the metrics on the forwarding path (docs/benchmarks.md, "Metrics cost"),
# through variants.sh (A B C A B C … in one run), /metrics scraped every second:
#   off   METRICS_ENABLED=false (no recorder, no per-stream statistics)
#   on    METRICS_ENABLED=true
#   base  optional: BASE_BIN=<a meeting-service built before the metrics> (answers 404)
#
# Usage: scripts/bench/metrics-cost.sh   (after cargo build --release --workspace)
#   ROUNDS=3 PARTICIPANTS=8 DURATION=20 BASE_BIN=/path/to/old/meeting-service
set -euo pipefail
variants=()
[ -n "${BASE_BIN:-}" ] && variants+=("base@$BASE_BIN")
variants+=(off:METRICS_ENABLED=false on:METRICS_ENABLED=true)
SCRAPE=1 PARTICIPANTS=${PARTICIPANTS:-8} DURATION=${DURATION:-20} \
  exec "$(dirname "$0")/variants.sh" "${variants[@]}"
