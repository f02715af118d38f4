// Joining a meeting: devices, the signaling socket, `join-meeting`, then the media
// connection of the meeting's topology (SFU or mesh).
import { resetRecording, wireRecording } from "./recording.js";
import { M, session, setState, audioTrack, videoTrack } from "./state.js";
import { $, banner, fail, hideBanner, show } from "./ui.js";
import { ensureToken, linkToken, linkTokenRefused, setLinkToken } from "./identity.js";
import { takeMedia, devicesIntoMeeting } from "./devices.js";
import { pendingInvite, redeemInvite } from "./invite.js";
import { applyRole, plannedRole, wireRoles } from "./roles.js";
import { participants, upsertParticipant, me } from "./participants.js";
import { render } from "./tiles.js";
import { updateControls, setAudio, setVideo } from "./controls.js";
import { startSfu } from "./sfu.js";
import { startMesh } from "./mesh.js";
import { wireEvents } from "./events.js";
import { done, teardownMedia } from "./lifecycle.js";
import { showWaiting, stopWaiting, resetLobby } from "./lobby.js";
import { resumeCall, onDraining } from "./reconnect.js";
import { resetActivity } from "./activity.js";
import { startQuality } from "./quality.js";

const JOIN_ERRORS = {
  ROOM_FULL: "This meeting is full.",
  MEETING_ENDED: "This meeting has ended.",
  NOT_FOUND: "There is no meeting with this code.",
  ROOM_LOCKED: "This meeting is locked by its host.",
  REMOVED: "The host removed you from this meeting; they can let you back in.",
  RATE_LIMITED: "Too many attempts: wait a moment, then try again.",
  TOKEN_MISSING: "You are not signed in.",
  TOKEN_INVALID: "Your sign-in token is not valid.",
  TOKEN_EXPIRED: "Your sign-in token has expired.",
};

async function connectSignaling(name) {
  // An invite link opened in this tab: redeemed for this tab's sign-in (a link token).
  if (!linkToken() && pendingInvite()) setLinkToken(await redeemInvite(name));
  let token = await ensureToken(name);
  for (let attempt = 0; attempt < 2; attempt++) {
    const client = new window.SioClient();
    try {
      await client.connect(location.origin, { token });
      return client;
    } catch (e) {
      const refused = e.code === "TOKEN_EXPIRED" || e.code === "TOKEN_INVALID";
      // A link's token is this tab's identity: say it was refused rather than join as
      // somebody else.
      if (refused && linkToken()) throw Object.assign(new Error(linkTokenRefused(e.code)), { code: e.code });
      if (attempt > 0 || !refused) throw e;
      token = await ensureToken(name, true); // a stale guest token: get a fresh one once
    }
  }
  throw new Error("unreachable");
}

export async function join(name, wantAudio, wantVideo) {
  if (M.state === "joining" || M.state === "joined") return;
  setState("joining");
  M.error = null;
  hideBanner();
  $("join-button").disabled = true;
  // A viewer publishes nothing: no camera or microphone is asked for.
  const viewer = plannedRole() === "viewer";
  try {
    const media = await takeMedia(wantAudio && !viewer, wantVideo && !viewer);
    session.localStream = media.stream;
    if (media.problem) banner(media.problem, { kind: "warn" });
    M.audioEnabled = !!audioTrack();
    M.videoEnabled = !!videoTrack();

    try {
      session.sio = await connectSignaling(name);
    } catch (e) {
      const text = e.readable ? e.message : JOIN_ERRORS[e.code] ? `${JOIN_ERRORS[e.code]} (${e.message})` : `Could not reach the meeting server: ${e.message}`;
      setState("error");
      fail(e.code || "CONNECT_FAILED", text);
      return;
    }
    const sio = session.sio;
    // Before the join: a running recording is announced to a joiner ahead of the ack.
    resetRecording();
    wireCall(sio, name);
    resetLobby();
    // Before the join: its answer follows the meeting's `chat:history` and `hands:updated`.
    resetActivity();
    // A meeting that requires approval answers `IN_LOBBY`: the page waits, and joins
    // again on the same socket once the host admits it (`lobby:admitted`).
    // The host may decide before the answer arrives: the decision waits for it.
    session.lobbyEarly = null;
    sio.on("lobby:admitted", () => {
      if (M.state === "joining") session.lobbyEarly = "admitted";
      if (M.state !== "waiting") return;
      stopWaiting();
      setState("joining");
      enter(sio, name).catch((e) => {
        setState("error");
        fail(e.code || "INTERNAL", `Joining failed: ${e.message}`);
      });
    });
    sio.on("lobby:denied", (ev) => {
      if (M.state === "joining") session.lobbyEarly = ev;
      if (M.state !== "waiting") return;
      denied(ev);
    });
    await enter(sio, name);
  } catch (e) {
    setState("error");
    fail(e.code || "INTERNAL", `Joining failed: ${e.message}`);
  } finally {
    $("join-button").disabled = false;
  }
}

// The handlers of a socket that carries the call (the join's, then each resume's).
function wireCall(sio, name) {
  const drained = (from, ev) => onDraining(from, ev, (waitMs) => resume(name, waitMs));
  wireEvents(sio, { rejoin, resume: () => resume(name), drained });
  wireRecording(sio);
  wireRoles(sio);
}

// The socket dropped: resume on a new one, or end the call if the place is gone.
function resume(name, firstWaitMs) {
  resumeCall(() => connectSignaling(name), (sio) => wireCall(sio, name), firstWaitMs).catch((e) => {
    if (session.leaving || M.state !== "joined") return;
    session.leaving = true;
    if (e.code === "MEETING_ENDED") {
      done("ended", "Meeting ended", "The meeting ended while you were disconnected.");
    } else {
      setState("error");
      done("error", "Disconnected", `You were disconnected from the meeting for too long (${e.message}).`);
    }
  });
}

function denied(ev) {
  stopWaiting();
  session.leaving = true;
  if (ev && ev.ended) done("ended", "Meeting ended", "The meeting ended while you were waiting to be let in.");
  else done("denied", "You were not let in", "The host did not let you into this meeting.");
}

// `join-meeting` on the connected socket `sio`, and what follows its answer: the call, the
// lobby's waiting page, or the refusal.
async function enter(sio, name) {
  M.timings.joinEmit = performance.now();
  const ack = await sio.emit("join-meeting", {
    roomId: M.roomId,
    userName: name,
    isVideoEnabled: M.videoEnabled,
    isAudioEnabled: M.audioEnabled,
  });
  M.timings.joinAck = performance.now();
  if (ack && !ack.ok && ack.error && ack.error.code === "IN_LOBBY") {
    const early = session.lobbyEarly;
    session.lobbyEarly = null;
    setState("waiting");
    if (early === "admitted") {
      setState("joining");
      return enter(sio, name);
    }
    if (early) return denied(early);
    showWaiting(name);
    return;
  }
  if (!ack || !ack.ok) {
    const err = (ack && ack.error) || { code: "INTERNAL", message: "no answer" };
    const lead = JOIN_ERRORS[err.code] || "Could not join the meeting.";
    M.error = err;
    sio.close();
    session.sio = null;
    done("error", lead, err.message || lead);
    banner(`${lead} ${err.message || ""}`.trim());
    return;
  }
  const d = ack.data;
  // The server's spelling of the code (`u5hek92qjm` typed, `U5HE-K92-QJM` joined): the
  // one the later events, the share link and the header use.
  if (d.roomId) M.roomId = d.roomId;
  M.userId = d.userId;
  M.peerId = d.peerId;
  M.isHost = !!d.isHost;
  M.resumeToken = d.resumeToken || null;
  M.joinedAt = (d.self && d.self.joinedAt) || null;
  M.topology = d.topology === "mesh" ? "mesh" : "sfu";
  M.meeting = d.meeting || null;
  setState("joined");
  show("meeting");
  $("meeting-info").hidden = false;
  $("meeting-title").textContent = (d.meeting && d.meeting.title) || "Meeting";
  $("meeting-code").textContent = M.roomId;
  $("topology").textContent = M.topology === "mesh" ? "peer-to-peer" : "via server";
  devicesIntoMeeting();
  // A host learns who already waits before this answer (`lobby:updated`).
  applyRole(d.self && d.self.role);
  upsertParticipant({
    userId: d.userId,
    peerId: d.peerId,
    userName: name,
    isHost: M.isHost,
    role: M.role,
    audioEnabled: M.audioEnabled,
    videoEnabled: M.videoEnabled,
    screenSharing: false,
    local: true,
  });
  for (const p of d.participants || []) upsertParticipant(p);
  updateControls();
  render();
  startQuality();
  const iceServers = d.iceServers || [];
  if (M.topology === "sfu") {
    await startSfu(iceServers);
  } else {
    startMesh(iceServers);
  }
}

// Join again on a new signaling session, keeping this page's devices and mute state:
// after the node that carried the meeting's media died (a cluster of servers), or after
// the server ended a session whose token expired (a fresh guest token is fetched, since
// the stored one has expired). `why` is said once the page is back in.
async function rejoin(why) {
  const self = me();
  const name = (self && self.userName) || $("prejoin-name").value || "Guest";
  // Ask for the devices this page had (muted or not) and restore the mute state after.
  const wantAudio = !!audioTrack();
  const wantVideo = !!videoTrack();
  const wasAudioOn = M.audioEnabled;
  const wasVideoOn = M.videoEnabled;
  session.leaving = true;
  teardownMedia();
  participants.clear();
  session.leaving = false;
  M.rejoins = (M.rejoins || 0) + 1;
  setState("idle");
  await join(name, wantAudio, wantVideo);
  if (M.state === "joined") {
    if (wantAudio && !wasAudioOn) setAudio(false);
    if (wantVideo && !wasVideoOn) setVideo(false);
    banner(why, { kind: "info" });
  }
}
