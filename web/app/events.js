// What the server tells a joined page over Socket.IO (docs/protocol.md), and what the page
// does about each event.
import { M, session, setState } from "./state.js";
import { $, banner, fail } from "./ui.js";
import { upsertParticipant, removeParticipant, byPeerOrUser, syncParticipants } from "./participants.js";
import { render } from "./tiles.js";
import { onChat, onChatHistory } from "./chat.js";
import { onHands, onReaction, noticeJoined, noticeLeft } from "./activity.js";
import { setAudio, setVideo } from "./controls.js";
import { queueServerOffer } from "./sfu.js";
import { onMeshOffer, onMeshAnswer, onMeshCandidate, closeMeshPeer } from "./mesh.js";
import { done, teardownMedia } from "./lifecycle.js";
import { linkToken } from "./identity.js";
import { onLobbyUpdated } from "./lobby.js";
import { updateHostControls, onAskUnmute, onStopScreen } from "./host.js";
import { setActiveSpeaker } from "./layout.js";

function setFlag(ev, key, value) {
  const p = byPeerOrUser(ev);
  if (!p) return;
  p[key] = value;
  syncParticipants();
  render();
}

/**
 * Wire `sio`'s events; `rejoin` is called when the server asks us to join again,
 * `resume` when the socket dropped during the call, `drained` when the server says it
 * is going away (reconnect.js).
 */
export function wireEvents(sio, { rejoin, resume, drained }) {
  sio.on("participant-joined", (p) => {
    if (p.peerId === M.peerId) return;
    // A user's second connection replaces the first: no "joined" for somebody present.
    const known = [...M.participants].some((q) => q.userId === p.userId);
    upsertParticipant(p);
    if (!known) noticeJoined(p);
    render();
  });
  sio.on("participant-left", (ev) => {
    const p = byPeerOrUser(ev);
    if (!p || p.local) return;
    noticeLeft(p);
    removeParticipant(p.peerId);
    if (M.topology === "mesh") closeMeshPeer(p.userId, p.peerId);
    render();
  });
  sio.on("participant-audio-changed", (ev) => setFlag(ev, "audioEnabled", !!ev.isEnabled));
  sio.on("participant-video-changed", (ev) => setFlag(ev, "videoEnabled", !!ev.isEnabled));
  sio.on("participant-screen-share-changed", (ev) => setFlag(ev, "screenSharing", !!ev.isSharing));
  sio.on("screen:started", (ev) => setFlag(ev, "screenSharing", true));
  sio.on("screen:stopped", (ev) => setFlag(ev, "screenSharing", false));
  sio.on("meeting-chat-message", onChat);
  sio.on("chat:history", onChatHistory);
  sio.on("hands:updated", onHands);
  sio.on("reaction", onReaction);
  sio.on("meeting:ended", (ev) => {
    M.endedReason = (ev && ev.reason) || "ended";
    const text = M.endedReason === "host-ended" ? "The host ended the meeting for everyone." : "The meeting has ended.";
    session.leaving = true;
    done("ended", "Meeting ended", text);
  });
  // The host changed the meeting over REST (title, settings): what the page shows of it.
  sio.on("meeting:updated", (ev) => {
    if (!ev || !ev.meeting) return;
    M.meeting = ev.meeting;
    $("meeting-title").textContent = ev.meeting.title || "Meeting";
    updateHostControls();
  });
  sio.on("lobby:updated", onLobbyUpdated);
  // SFU meetings: the speaker view's large tile follows the speaker (unless one is pinned).
  sio.on("active-speaker", (ev) => {
    if (!ev) return;
    setActiveSpeaker(ev.peerId || null, Array.isArray(ev.speaking) ? ev.speaking : []);
  });
  sio.on("control:ask-unmute", onAskUnmute);
  sio.on("control:stop-screen", onStopScreen);
  sio.on("control:removed", () => {
    session.leaving = true;
    done("removed", "You were removed", "The host removed you from the meeting.");
  });
  sio.on("meeting:replaced", () => {
    session.leaving = true;
    done("replaced", "Joined elsewhere", "You joined this meeting from another window, so this one was disconnected.");
  });
  // The node that carried this meeting's media died (a cluster of servers).
  sio.on("meeting:rejoin", () => {
    rejoin("The media server changed; you are back in the meeting.").catch((e) => console.error("rejoin", e));
  });
  // The server ends a session whose token has expired (docs/security.md) and disconnects
  // it. A guest sign-in is the page's own: it gets a fresh one and joins again. A link's
  // token came from the embedding app, which alone can issue a new one.
  sio.on("session:expired", () => {
    session.leaving = true;
    if (linkToken()) {
      done("expired", "Your sign-in expired", "Open the meeting link from your app again to get a fresh sign-in.");
      return;
    }
    rejoin("Your sign-in expired and was renewed; you are back in the meeting.").catch((e) => console.error("rejoin", e));
  });
  sio.on("control:mute", (ev) => {
    const kind = ev && ev.kind === "video" ? "video" : "audio";
    if (kind === "audio") setAudio(false);
    else setVideo(false);
    banner(`The host turned off your ${kind === "audio" ? "microphone" : "camera"}.`, { kind: "info" });
  });
  sio.on("meeting-error", (ev) => {
    // A failed join is also told in its ack, which join.js reports in full.
    if (M.state === "joining") return;
    const e = (ev && ev.error) || {};
    fail(e.code || "ERROR", `Meeting error: ${e.message || e.code}`);
  });
  sio.on("peer-connection-error", (ev) => {
    const e = (ev && ev.error) || {};
    M.notices.push(`peer-connection-error ${e.code}: ${e.message}`);
  });
  sio.on("sfu-offer", queueServerOffer);
  sio.on("webrtc-offer", (ev) => onMeshOffer(ev).catch((e) => console.error("webrtc-offer", e)));
  sio.on("webrtc-answer", (ev) => onMeshAnswer(ev).catch((e) => console.error("webrtc-answer", e)));
  sio.on("ice-candidate", (ev) => onMeshCandidate(ev).catch((e) => console.error("ice-candidate", e)));
  // The server is going away (SIGTERM): move before the socket and media die.
  sio.on("server-draining", (ev) => {
    if (sio !== session.sio || session.leaving || M.state !== "joined") return;
    drained(sio, ev || {});
  });
  sio.on("disconnect", (reason) => {
    // A socket this page already replaced (a resume attempt that dropped), or closed
    // itself to move off a draining server.
    if (sio !== session.sio || sio.draining) return;
    if (session.leaving || !["joined", "waiting"].includes(M.state)) return;
    // Dropped, not closed by the server: take our place again (the server keeps it for
    // RECONNECT_GRACE_SECONDS). Waiting in the lobby is lost with the socket.
    if (M.state === "joined" && M.resumeToken && (reason === "transport close" || reason === "ping timeout")) {
      resume();
      return;
    }
    setState("error");
    fail("DISCONNECTED", `Lost the connection to the meeting server (${reason}). Reload the page to rejoin.`);
    teardownMedia();
  });
}
