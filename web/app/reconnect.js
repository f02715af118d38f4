// The signaling socket dropped (network cut, laptop asleep, server restarting), or the
// server said it is going away (`server-draining`): reconnect
// with backoff and take this page's place in the meeting again (`resume-meeting` with the
// join's resume token, docs/protocol.md), showing "Reconnecting…" meanwhile. The media
// connection is left alone: it keeps flowing while only the signaling is cut. The
// resume's answer is the meeting as it is now; the page shows that, with the chat it
// missed, and offers its media connection again so that a server offer lost while away
// is made again.
import { M, session } from "./state.js";
import { $ } from "./ui.js";
import { participants, upsertParticipant, removeParticipant } from "./participants.js";
import { render } from "./tiles.js";
import { onChat } from "./chat.js";
import { setAudio, setVideo } from "./controls.js";
import { renegotiate, restartMedia, mediaMoving } from "./sfu.js";
import { closeMeshPeer } from "./mesh.js";
import { applyRole } from "./roles.js";

// Waits before each attempt; the last one repeats. The server keeps the place for
// RECONNECT_GRACE_SECONDS (20 s by default) and says so when it is too late.
const BACKOFF_MS = [250, 500, 1000, 2000, 3000];
// Without any answer from the server for this long, the call is over.
const GIVE_UP_MS = 90000;
// Refusals that are worth another try (the server or its Redis is coming back).
const TRANSIENT = new Set(["RATE_LIMITED", "UNAVAILABLE", "INTERNAL"]);

let running = null;

export function showReconnecting(on) {
  $("reconnecting").hidden = !on;
  M.reconnecting = on;
}

/**
 * Reconnect and resume, once at a time. `connect()` opens a new socket (fresh token if
 * needed), `wire(sio)` registers the page's handlers on it. Rejects with `{ code }` when
 * the place is gone (NOT_IN_MEETING: away too long; MEETING_ENDED) or the server never
 * answered.
 */
export function resumeCall(connect, wire, firstWaitMs) {
  if (!running) running = attempts(connect, wire, firstWaitMs).finally(() => (running = null));
  return running;
}

/**
 * `server-draining` (docs/protocol.md): the server carrying this page's socket and/or
 * media is going away. Move now rather than wait for them to die: a new socket
 * (`resume`, at a random moment within `reconnectInMs`, which the load balancer sends to
 * a live node, or which waits for the restarted process) and, when the media was there,
 * a new media connection (after resuming, or at once if the socket stays).
 */
export function onDraining(sio, ev, resume) {
  if (ev.media) {
    session.mediaMoves = true;
    mediaMoving();
  }
  if (ev.signaling) {
    sio.draining = true; // its disconnect is expected: events.js lets it go
    sio.close();
    const within = Math.min(Math.max(Number(ev.reconnectInMs) || 0, 0), 5000);
    resume(Math.round(Math.random() * within));
  } else if (ev.media) {
    session.mediaMoves = false;
    restartMedia();
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function attempts(connect, wire, firstWaitMs) {
  showReconnecting(true);
  const started = Date.now();
  try {
    for (let attempt = 0; Date.now() - started < GIVE_UP_MS; attempt++) {
      const wait = attempt === 0 && firstWaitMs != null ? firstWaitMs : BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      await sleep(wait);
      // Left, or ended by the page itself meanwhile: nothing to resume.
      if (session.leaving || M.state !== "joined") return;
      let sio;
      try {
        sio = await connect();
      } catch (e) {
        continue; // not reachable yet
      }
      wire(sio);
      // Somebody who resumes right after us is announced on this socket, possibly
      // before our ack, whose list (read earlier) lacks them: `apply` keeps them.
      const announced = new Set();
      sio.on("participant-joined", (p) => p && announced.add(p.peerId));
      let ack;
      try {
        ack = await sio.emit("resume-meeting", {
          roomId: M.roomId,
          peerId: M.peerId,
          resumeToken: M.resumeToken,
          // A media connection to a server that went away is not kept: the next is a first.
          hasMedia: !!session.pc && !session.mediaMoves,
          chatSince: chatSince(),
          isAudioEnabled: !!M.audioEnabled,
          isVideoEnabled: !!M.videoEnabled,
        });
      } catch (e) {
        sio.close();
        continue; // dropped again before the answer
      }
      if (ack && ack.ok) {
        session.sio = sio;
        showReconnecting(false);
        M.resumes = (M.resumes || 0) + 1;
        apply(ack.data, announced);
        // The server has no media for us (a restarted process: `mediaReset`), or the
        // node that had it is going away: a new media connection. Otherwise re-offer.
        if (ack.data.mediaReset || session.mediaMoves) {
          session.mediaMoves = false;
          await restartMedia();
        } else if (session.pc) await renegotiate();
        return;
      }
      sio.close();
      const error = (ack && ack.error) || { code: "INTERNAL", message: "no answer" };
      if (!TRANSIENT.has(error.code)) throw Object.assign(new Error(error.message), { code: error.code });
    }
    throw Object.assign(new Error("the meeting server did not come back"), { code: "DISCONNECTED" });
  } finally {
    if (M.reconnecting) showReconnecting(false);
  }
}

/** The last chat message's time (the server sends those from then on), else the join's. */
function chatSince() {
  const last = M.chat[M.chat.length - 1];
  return (last && last.timestamp) || M.joinedAt || undefined;
}

/** Show the meeting as the resume's answer has it (and those `announced` since). */
function apply(d, announced) {
  M.isHost = !!d.isHost;
  if (d.meeting) M.meeting = d.meeting;
  const present = new Set([...(d.participants || []).map((p) => p.peerId), ...announced]);
  for (const [peerId, p] of participants) {
    if (p.local || present.has(peerId)) continue;
    removeParticipant(peerId);
    if (M.topology === "mesh") closeMeshPeer(p.userId, peerId);
  }
  for (const p of d.participants || []) upsertParticipant(p);
  // A host may have turned our microphone or camera off while we were away.
  const self = d.self || {};
  if (self.audioEnabled === false && M.audioEnabled) setAudio(false);
  if (self.videoEnabled === false && M.videoEnabled) setVideo(false);
  // Made or unmade a co-host while away: the controls follow.
  applyRole(self.role);
  for (const m of d.chat || []) {
    const seen = M.chat.some((c) => c.timestamp === m.timestamp && c.userId === m.userId && c.message === m.message);
    if (!seen) onChat(m);
  }
  render();
}
