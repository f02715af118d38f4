#!/usr/bin/env bash
# Installs Debian's Janus and writes a benchmark configuration: VideoRoom plugin and
# plain-HTTP transport only (on 127.0.0.1), ICE on
# the namespace-private veth `mlj0` only (Janus gathers no loopback candidates), no
# STUN/TURN, quiet logging.
#
#   scripts/janus/setup.sh [CONF_DIR]        (default /tmp/meeting-load-janus)
#   scripts/janus/start.sh [CONF_DIR]        starts it; prints its PID (run it in the
#                                            namespace made by netns.sh: see README.md)
#
# Environment: JANUS_HTTP_PORT (8088), JANUS_RTP_PORTS (42000-42999).
set -euo pipefail

conf=${1:-/tmp/meeting-load-janus}
http_port=${JANUS_HTTP_PORT:-8088}
rtp_ports=${JANUS_RTP_PORTS:-42000-42999}

if ! command -v janus >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends janus
fi
libdir=$(dirname "$(dpkg -L janus | grep -m1 '/plugins/libjanus_videoroom.so$')")
libdir=${libdir%/plugins}

mkdir -p "$conf"
cat >"$conf/janus.jcfg" <<JCFG
general: {
	configs_folder = "$conf"
	plugins_folder = "$libdir/plugins"
	transports_folder = "$libdir/transports"
	events_folder = "$libdir/events"
	loggers_folder = "$libdir/loggers"
	debug_level = 3
	admin_secret = "janusoverlord-not-used"
	protected_folders = []
}
media: {
	rtp_port_range = "$rtp_ports"
}
nat: {
	ice_enforce_list = "${JANUS_ICE_IFACE:-mlj0}"
	ignore_mdns = true
	full_trickle = false
}
plugins: {
	disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so"
}
transports: {
	disable = "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so,libjanus_websockets.so"
}
events: {
	broadcast = false
}
loggers: {
	disable = "libjanus_jsonlog.so"
}
JCFG

cat >"$conf/janus.transport.http.jcfg" <<JCFG
general: {
	json = "compact"
	base_path = "/janus"
	http = true
	port = $http_port
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_http = false
	admin_https = false
}
JCFG

# No predefined rooms: meeting-load creates one per meeting through the API.
cat >"$conf/janus.plugin.videoroom.jcfg" <<JCFG
general: {
}
JCFG

echo "Janus configuration written to $conf (HTTP 127.0.0.1:$http_port, RTP $rtp_ports on ${JANUS_ICE_IFACE:-mlj0})"
