// Every remote track the page receives, whichever topology carries it, and their stats.
import { M, session, MESH_SOURCES } from "./state.js";

/** `[{ peerId, userId, source, kind, track, mid, pc }]`. */
export function remoteTracks() {
  const out = [];
  const pc = session.pc;
  if (M.topology === "sfu" && pc) {
    // SFU: transceiver mid → the server's `tracks` list.
    const byMid = new Map(session.sfuTracks.map((t) => [t.mid, t]));
    for (const tr of pc.getTransceivers()) {
      const info = tr.mid != null ? byMid.get(tr.mid) : null;
      if (!info || tr.currentDirection === "inactive" || tr.currentDirection === "stopped") continue;
      out.push({ peerId: info.peerId, userId: info.userId, source: info.source, kind: tr.receiver.track.kind, track: tr.receiver.track, mid: tr.mid, pc });
    }
  } else if (M.topology === "mesh") {
    // Mesh: three transceivers per peer connection, in a fixed order.
    for (const peer of session.meshPeers.values()) {
      if (!peer.transceivers || peer.pc.connectionState === "closed") continue;
      peer.transceivers.forEach((tr, i) => {
        out.push({ peerId: peer.peerId, userId: peer.userId, source: MESH_SOURCES[i], kind: tr.receiver.track.kind, track: tr.receiver.track, mid: tr.mid, pc: peer.pc });
      });
    }
  }
  return out;
}

/**
 * Calls `visit(track, inboundRtp, report)` for every `inbound-rtp` statistic of `tracks`
 * (entries of `remoteTracks()`), one `getStats()` per connection; a connection whose
 * statistics cannot be read (closed meanwhile) is passed over. Returns the tracks whose
 * connection was read.
 */
export async function eachInbound(tracks, visit) {
  const read = [];
  const byPc = new Map();
  for (const t of tracks) {
    if (!byPc.has(t.pc)) byPc.set(t.pc, []);
    byPc.get(t.pc).push(t);
  }
  for (const [conn, list] of byPc) {
    let report;
    try {
      report = await conn.getStats();
    } catch (_) {
      continue;
    }
    read.push(...list);
    // Chromium names the mid; a browser that does not is matched by its track id.
    const byMid = new Map(list.map((t) => [t.mid, t]));
    const byTrack = new Map(list.map((t) => [t.track.id, t]));
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      const t = (s.mid != null && byMid.get(s.mid)) || byTrack.get(s.trackIdentifier);
      if (t) visit(t, s, report);
    });
  }
  return read;
}

/** `window.__meeting.mediaStats()`: `[{ peerId, userId, source, kind, framesDecoded, bytesReceived, packetsReceived }]`. */
export async function mediaStats() {
  const tracks = remoteTracks();
  const entries = new Map(
    tracks.map((t) => [t, { peerId: t.peerId, userId: t.userId, source: t.source, kind: t.kind, framesDecoded: 0, bytesReceived: 0, packetsReceived: 0 }]),
  );
  const read = await eachInbound(tracks, (t, s) => {
    const e = entries.get(t);
    e.framesDecoded += s.framesDecoded || 0;
    e.bytesReceived += s.bytesReceived || 0;
    e.packetsReceived += s.packetsReceived || 0;
  });
  return read.map((t) => entries.get(t));
}
