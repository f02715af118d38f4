// Mesh mode: one peer connection per other participant, signaled through the server's
// relay (webrtc-offer / webrtc-answer / ice-candidate). The newcomer offers to everybody
// already there; each connection has three transceivers in a fixed order in both
// directions: audio, camera, screen.
import { M, session, audioTrack, videoTrack, publishes, MESH_SOURCES } from "./state.js";
import { participants } from "./participants.js";
import { watchIce } from "./ice.js";
import { render } from "./tiles.js";

// Candidates that arrive before the remote description, per peer, at most.
const MAX_PENDING_CANDIDATES = 200;

let iceServers = [];

export function startMesh(servers) {
  iceServers = servers;
  for (const p of participants.values()) {
    if (!p.local) offerTo(p).catch((e) => console.error("mesh offer", e));
  }
}

function newPeer(userId, peerId) {
  closeMeshPeer(userId);
  const conn = new RTCPeerConnection({ iceServers });
  const peer = { pc: conn, userId, peerId, pending: [], transceivers: null };
  session.meshPeers.set(userId, peer);
  const p = participants.get(peerId);
  watchIce(conn, (p && p.userName) || userId);
  conn.onicecandidate = (ev) => {
    if (ev.candidate && session.sio) {
      session.sio.emit("ice-candidate", { roomId: M.roomId, targetUserId: userId, candidate: ev.candidate.toJSON() }).catch(() => {});
    }
  };
  conn.ontrack = () => render();
  conn.addEventListener("connectionstatechange", () => render());
  return peer;
}

function attachLocal(peer, transceivers) {
  const tracks = [audioTrack(), videoTrack(), session.screenTrack];
  transceivers.forEach((t, i) => {
    // A viewer only receives (the server refuses a viewer's SDP that sends).
    t.direction = publishes() ? "sendrecv" : "recvonly";
    if (tracks[i]) t.sender.replaceTrack(tracks[i]);
    if (session.localStream && i < 2 && tracks[i]) t.sender.setStreams(session.localStream);
  });
  peer.transceivers = transceivers;
  render();
}

async function offerTo(p) {
  const peer = newPeer(p.userId, p.peerId);
  const conn = peer.pc;
  attachLocal(peer, [
    conn.addTransceiver("audio", { direction: "sendrecv" }),
    conn.addTransceiver("video", { direction: "sendrecv" }),
    conn.addTransceiver("video", { direction: "sendrecv" }),
  ]);
  const offer = await conn.createOffer();
  await conn.setLocalDescription(offer);
  const ack = await session.sio.emit("webrtc-offer", { roomId: M.roomId, targetUserId: p.userId, offer: { type: offer.type, sdp: offer.sdp } });
  if (ack && ack.ok === false) M.notices.push(`webrtc-offer to ${p.userId}: ${ack.error && ack.error.code}`);
}

export async function onMeshOffer(ev) {
  if (M.topology !== "mesh" || !ev || !ev.offer) return;
  const peer = newPeer(ev.fromUserId, ev.fromPeerId);
  const conn = peer.pc;
  await conn.setRemoteDescription(ev.offer);
  attachLocal(peer, conn.getTransceivers().slice(0, 3));
  const answer = await conn.createAnswer();
  await conn.setLocalDescription(answer);
  await flushCandidates(peer);
  await session.sio.emit("webrtc-answer", { roomId: M.roomId, targetUserId: ev.fromUserId, answer: { type: answer.type, sdp: answer.sdp } });
}

export async function onMeshAnswer(ev) {
  const peer = ev && session.meshPeers.get(ev.fromUserId);
  if (!peer || !ev.answer) return;
  await peer.pc.setRemoteDescription(ev.answer);
  await flushCandidates(peer);
}

export async function onMeshCandidate(ev) {
  if (!ev || !ev.candidate) return;
  const peer = session.meshPeers.get(ev.fromUserId);
  if (!peer) return;
  if (!peer.pc.remoteDescription) {
    if (peer.pending.length < MAX_PENDING_CANDIDATES) peer.pending.push(ev.candidate);
    return;
  }
  await peer.pc.addIceCandidate(ev.candidate).catch(() => {});
}

async function flushCandidates(peer) {
  const list = peer.pending.splice(0);
  for (const c of list) await peer.pc.addIceCandidate(c).catch(() => {});
}

/** Close the connection to `userId` (only if it is still `peerId`'s, when given). */
export function closeMeshPeer(userId, peerId) {
  const peer = session.meshPeers.get(userId);
  if (!peer || (peerId && peer.peerId !== peerId)) return;
  session.meshPeers.delete(userId);
  peer.pc.close();
}

export function closeAllMeshPeers() {
  for (const userId of [...session.meshPeers.keys()]) closeMeshPeer(userId);
}

/** The senders that carry `source` (microphone, camera, screen), one per connected peer. */
export function meshSenders(source) {
  const i = MESH_SOURCES.indexOf(source);
  return [...session.meshPeers.values()].filter((p) => p.transceivers).map((p) => p.transceivers[i].sender);
}
