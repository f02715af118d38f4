// SFU mode: one peer connection to the server. The page publishes with its own offer
// (microphone, camera, screen: sendonly), then answers the server's offers, which add and
// remove the other participants' tracks. Server offers wait until the publishing offer is
// answered, and are handled one at a time: no glare.
import { M, session, audioTrack, videoTrack, publishes } from "./state.js";
import { fail } from "./ui.js";
import { watchIce, firstCandidate, ICE_HINTS } from "./ice.js";
import { render } from "./tiles.js";

let chain = Promise.resolve();

/** Open the connection and publish; server offers queue behind it. */
export function startSfu(iceServers) {
  session.iceServers = iceServers;
  chain = publish(iceServers);
  return chain;
}

/**
 * The server holding this page's media is going away (`server-draining` with `media`)
 * or has restarted (a resume's `mediaReset`): the connection to it will fail, and is
 * not one to alarm the user about meanwhile.
 */
export function mediaMoving() {
  if (session.pc) session.pc.moving = true;
}

/**
 * A new media connection in place of one whose server went away: published afresh
 * (the server's offers then bring the others' tracks again), queued like any offer.
 * Only SFU meetings: a mesh's connections are between the browsers.
 */
export function restartMedia() {
  if (M.topology !== "sfu") return Promise.resolve();
  const old = session.pc;
  if (old) {
    old.moving = true;
    old.close();
  }
  session.pc = null;
  session.sfuTracks = [];
  M.mediaRestarts = (M.mediaRestarts || 0) + 1;
  chain = chain
    .catch(() => {})
    .then(() => publish(session.iceServers || []))
    .catch((e) => console.error("media restart", e));
  render();
  return chain;
}

/** A `sfu-offer` from the server, handled after everything before it. */
export function queueServerOffer(offer) {
  chain = chain.then(() => onServerOffer(offer)).catch((e) => console.error("sfu-offer", e));
}

async function publish(iceServers) {
  const pc = new RTCPeerConnection({ iceServers });
  session.pc = pc;
  watchIce(pc, null);
  pc.ontrack = () => render();
  if (!publishes()) return receiveOnly(pc);
  const stream = session.localStream;
  const a = audioTrack();
  const v = videoTrack();
  const tA = pc.addTransceiver(a || "audio", { direction: "sendonly", streams: a ? [stream] : [] });
  const tV = pc.addTransceiver(v || "video", { direction: "sendonly", streams: v ? [stream] : [] });
  const tS = pc.addTransceiver("video", { direction: "sendonly" });
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  // The server runs full ICE (docs/sfu.md): it would learn our address from our checks as
  // a peer-reflexive candidate anyway, but a candidate in the offer lets its own checks
  // start at once, for at most this short wait.
  await firstCandidate(pc, 1000);
  const sources = {};
  sources[tA.mid] = "microphone";
  sources[tV.mid] = "camera";
  sources[tS.mid] = "screen";
  M.sfuMids = { microphone: tA.mid, camera: tV.mid, screen: tS.mid };
  await sendOffer(pc, sources);
}

// A viewer's connection: receive-only m-lines, so that the offer sends nothing (the server
// refuses a viewer's offer that would) and the server's offers add the others' tracks.
async function receiveOnly(pc) {
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.addTransceiver("video", { direction: "recvonly" });
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await firstCandidate(pc, 1000);
  M.sfuMids = {};
  await sendOffer(pc, {});
}

/** Our offer to the server (`sources`: what each sending mid carries), and its answer. */
async function sendOffer(pc, sources) {
  M.timings.publishSent = performance.now();
  const ack = await session.sio.emit("sfu-offer", { roomId: M.roomId, sdp: pc.localDescription.sdp, sources }, 20000);
  if (!ack || !ack.ok) {
    const e = (ack && ack.error) || { code: "SFU_ERROR", message: "no answer" };
    fail(e.code, `The media server refused the connection: ${e.message}`, { hints: ICE_HINTS });
    return;
  }
  await pc.setRemoteDescription({ type: "answer", sdp: ack.data.sdp });
  M.timings.publishAnswered = performance.now();
  session.sfuTracks = ack.data.tracks || [];
  render();
}

async function onServerOffer(offer) {
  const pc = session.pc;
  if (!pc || !offer || typeof offer.sdp !== "string" || pc.signalingState === "closed") return;
  if (M.timings.firstServerOffer == null) M.timings.firstServerOffer = performance.now();
  await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
  const answer = await pc.createAnswer();
  await pc.setLocalDescription(answer);
  session.sfuTracks = offer.tracks || [];
  render();
  const ack = await session.sio.emit("sfu-answer", { roomId: M.roomId, offerId: offer.offerId, sdp: pc.localDescription.sdp });
  if (ack && !ack.ok && !(ack.error && ack.error.code === "SFU_ERROR")) {
    M.notices.push(`sfu-answer: ${ack.error && ack.error.message}`);
  }
}

/**
 * An offer of our own on the same connection, after resuming the signaling: a server
 * offer sent while the socket was away is lost, and the server makes no other until it
 * is answered. The server drops its pending offer, answers ours (nothing changes for the
 * tracks), and offers again whatever is due. Queued like the server's offers.
 */
export function renegotiate() {
  chain = chain.then(reoffer).catch((e) => console.error("re-offer", e));
  return chain;
}

async function reoffer() {
  const pc = session.pc;
  if (!pc || pc.signalingState !== "stable" || !M.sfuMids) return;
  await pc.setLocalDescription(await pc.createOffer());
  const sources = {};
  for (const [source, mid] of Object.entries(M.sfuMids)) sources[mid] = source;
  const ack = await session.sio.emit("sfu-offer", { roomId: M.roomId, sdp: pc.localDescription.sdp, sources }, 20000);
  if (!ack || !ack.ok) {
    await pc.setLocalDescription({ type: "rollback" });
    M.notices.push(`re-offer refused: ${ack && ack.error && ack.error.message}`);
    return;
  }
  await pc.setRemoteDescription({ type: "answer", sdp: ack.data.sdp });
  render();
}

/** The sender that carries `source` (microphone, camera, screen), if the connection is up. */
export function sfuSenders(source) {
  const mid = M.sfuMids && M.sfuMids[source];
  const t = session.pc && session.pc.getTransceivers().find((x) => x.mid === mid);
  return t ? [t.sender] : [];
}
