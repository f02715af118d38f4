// Page-wide state: `window.__meeting`, which the browser tests read, and the live call's
// connections, shared by the modules that build, use and tear down a call.

/** The test hook (tests/browser/README.md lists what the tests read). */
export const M = {
  state: "idle", // idle | joining | waiting (in the lobby) | joined | denied | left | ended | removed | replaced | expired | error
  error: null, // { code, message }
  endedReason: null,
  topology: null,
  roomId: null,
  userId: null,
  peerId: null,
  isHost: false,
  // host | coHost | participant | viewer (the join's `me.role`, then `participant:role-changed`).
  role: "participant",
  meeting: null,
  participants: [], // remote and local, as the server describes them
  // The host's page: users it removed while it was here, so that it can let them back
  // (`host-allow`); the server holds a removal for the whole meeting.
  removed: [], // [{ userId, userName }]
  // The host's page: who waits in the lobby now (`lobby:updated`).
  waiting: [], // [{ peerId, userId, userName, askedAt }]
  // This page waiting in a lobby: { waiting: true, name }, else null.
  lobby: null,
  tiles: [], // [{ peerId, userId, source, local }]
  chat: [], // [{ userId, userName, message, timestamp, history }] (history: told on joining)
  unread: 0, // chat messages that arrived while the chat panel was closed
  hands: [], // [{ userId, peerId, userName, raisedAt }] first raised first (`hands:updated`)
  handRaised: false, // this page's own hand
  reactions: [], // [{ peerId, userName, emoji }] as they arrived
  toasts: [], // join/leave notices and reactions, as shown
  // peerId → { level: good | fair | poor | idle (nothing received), loss (%), rtt (ms), width, height } (quality.js)
  quality: {},
  layout: null, // { mode: grid | speaker, pinned, activeSpeaker, main } (layout.js)
  // The server's `active-speaker` event (SFU meetings): the dominant speaker's peer id, or
  // null, and everyone speaking now, [{ peerId, level (0–100) }].
  activeSpeaker: null,
  speaking: [],
  mediaStatus: null, // what the pre-join view says about blocked or missing devices
  devices: [], // [{ kind, deviceId, label }] as enumerated
  micLevel: 0, // the microphone meter, 0–1, and its highest value so far
  micPeak: 0,
  deviceSwitches: 0, // devices switched during the call (replaceTrack)
  sinkId: "", // the chosen speaker
  notices: [],
  // The join's resume token (resume-meeting), when this page joined; the joiner's time.
  resumeToken: null,
  joinedAt: null,
  reconnecting: false, // "Reconnecting…" shows: the socket dropped and the page resumes
  resumes: 0, // how many times this page resumed its place on a new socket
  iceState: "new",
  audioEnabled: false,
  videoEnabled: false,
  screenSharing: false,
  // The meeting's running recording ({ recordingId, startedAtMs }), or null; the last stop.
  recording: null,
  lastRecordingStop: null, // { recordingId, reason }
  // performance.now() marks of the last join, for the join-to-first-frame figure.
  timings: { joinEmit: null, joinAck: null, publishSent: null, publishAnswered: null, firstServerOffer: null, iceConnected: null, firstRemoteFrame: null },
  mediaStats: null, // set by main.js (remote-media.js)
  // Test hook: a function returning a MediaStreamTrack used instead of getDisplayMedia
  // (set only by tests, when headless Chromium cannot capture a screen).
  screenTrackFactory: null,
};
window.__meeting = M;

/** The call in progress: one signaling socket, local media, and the peer connections. */
export const session = {
  sio: null, // SioClient while connected
  localStream: null, // microphone + camera
  screenTrack: null,
  pc: null, // SFU mode: the one peer connection
  sfuTracks: [], // SFU mode: [{ mid, userId, peerId, source }] the server sends us
  meshPeers: new Map(), // mesh mode: userId → { pc, peerId, userId, pending, transceivers }
  // True while this page ends the call itself, so that the socket's disconnect is no error.
  leaving: false,
  iceServers: [], // the join's STUN/TURN list, for a media connection made again
  // The server holding our media is going away (`server-draining`): the media connection
  // is made afresh after resuming.
  mediaMoves: false,
};

/** Mesh mode: the transceivers of each peer connection, in this fixed order. */
export const MESH_SOURCES = ["microphone", "camera", "screen"];

export function setState(s) {
  M.state = s;
  document.body.dataset.state = s;
}

/** The host or a co-host: the page shows the host controls. */
export function moderates() {
  return M.role === "host" || M.role === "coHost";
}

/** A viewer publishes nothing: no microphone, camera or screen controls, receive-only media. */
export function publishes() {
  return M.role !== "viewer";
}

export function audioTrack() {
  return session.localStream ? session.localStream.getAudioTracks()[0] || null : null;
}

export function videoTrack() {
  return session.localStream ? session.localStream.getVideoTracks()[0] || null : null;
}
