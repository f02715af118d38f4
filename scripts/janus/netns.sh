#!/usr/bin/env bash
# A private network namespace for the Janus benchmark: loopback plus a veth pair whose
# both ends stay inside it (mlj0 = 10.254.254.1/32). Janus (libnice) never gathers
# loopback candidates, so it gets mlj0; nothing in the namespace can reach the host's
# interfaces or the outside, so the media still never leaves this namespace.
#
#   scripts/janus/netns.sh up   [NAME]     (default NAME: mljanus)
#   scripts/janus/netns.sh down [NAME]
set -euo pipefail
action=${1:?up or down}
ns=${2:-mljanus}
case "$action" in
  up)
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" link add mlj0 type veth peer name mlj1
    ip -n "$ns" addr add 10.254.254.1/32 dev mlj0
    ip -n "$ns" link set mlj1 up
    ip -n "$ns" link set mlj0 up
    ;;
  down)
    ip netns del "$ns"
    ;;
  *)
    echo "usage: $0 up|down [NAME]" >&2
    exit 2
    ;;
esac
