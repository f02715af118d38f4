// Watching a peer connection's ICE: tell the user, with the deployment hints, when media
// cannot flow; note when it first connects.
import { M } from "./state.js";
import { fail, hideBanner } from "./ui.js";

export const ICE_HINTS = [
  "MEDIASOUP_ANNOUNCED_IP must be the server's LAN or public IP address, not 127.0.0.1.",
  "UDP ports 10000-10100 (MEDIASOUP_MIN_PORT-MEDIASOUP_MAX_PORT) must be open in the server's firewall; " +
    "open TCP on the same ports too, for clients whose network blocks UDP (ICE-TCP, MEDIASOUP_ENABLE_TCP).",
  "On networks that block UDP, configure a TURN server (TURN_SERVER_URL, TURN_USERNAME, TURN_CREDENTIAL).",
];

// How long "disconnected" may last before it counts as a failure, and how long a new
// connection may take to come up at all.
const STALL_MS = 5000;
const CONNECT_MS = 15000;

let stallTimer = null;

export function stopIceTimer() {
  clearTimeout(stallTimer);
}

/** Watch `conn`; `label` names the other side in mesh mode (null: the media server). */
export function watchIce(conn, label) {
  const onChange = () => {
    // A connection being replaced (its server is going away: sfu.js restartMedia) may
    // fail meanwhile; that is expected, not the user's network.
    if (conn.moving) return;
    const s = conn.iceConnectionState;
    M.iceState = label ? `${label}:${s}` : s;
    if (s === "failed") {
      clearTimeout(stallTimer);
      iceFailed(label);
    } else if (s === "disconnected") {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => {
        if (conn.iceConnectionState === "disconnected") iceFailed(label, true);
      }, STALL_MS);
    } else if (s === "connected" || s === "completed") {
      clearTimeout(stallTimer);
      if (M.timings.iceConnected == null) M.timings.iceConnected = performance.now();
      if (M.error && M.error.code === "ICE_FAILED") {
        M.error = null;
        hideBanner();
      }
    }
  };
  conn.addEventListener("iceconnectionstatechange", onChange);
  // A connection that never comes up is a failure too (no ICE state change at all
  // happens when no candidate pair can even be tried).
  setTimeout(() => {
    if (M.state === "joined" && !conn.moving && conn.connectionState !== "closed" && !["connected", "completed"].includes(conn.iceConnectionState)) {
      iceFailed(label);
    }
  }, CONNECT_MS);
}

function iceFailed(label, stalled) {
  if (M.state !== "joined") return;
  const who = label ? ` with ${label}` : " to the media server";
  const what = stalled ? "was interrupted" : "failed";
  fail("ICE_FAILED", `The media connection${who} ${what}. Audio and video cannot flow. If you run this server:`, { hints: ICE_HINTS });
}

/** Resolves at the first local candidate, when gathering completes, or after `timeoutMs`. */
export function firstCandidate(conn, timeoutMs) {
  if (conn.iceGatheringState === "complete" || /a=candidate/.test((conn.localDescription || {}).sdp || "")) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, timeoutMs);
    const finish = () => {
      clearTimeout(t);
      resolve();
    };
    conn.addEventListener("icecandidate", finish);
    conn.addEventListener("icegatheringstatechange", () => {
      if (conn.iceGatheringState === "complete") finish();
    });
  });
}
