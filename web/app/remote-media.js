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

/** `window.__meeting.mediaStats()`: `[{ peerId, userId, source, kind, framesDecoded, bytesReceived, packetsReceived }]`. */
export async function mediaStats() {
  const tracks = remoteTracks();
  const result = [];
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
    const entries = new Map();
    for (const t of list) entries.set(t.mid, { peerId: t.peerId, userId: t.userId, source: t.source, kind: t.kind, framesDecoded: 0, bytesReceived: 0, packetsReceived: 0 });
    const byTrackId = new Map(list.map((t) => [t.track.id, t.mid]));
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      const mid = s.mid != null ? s.mid : byTrackId.get(s.trackIdentifier);
      const e = entries.get(mid);
      if (!e) return;
      e.framesDecoded += s.framesDecoded || 0;
      e.bytesReceived += s.bytesReceived || 0;
      e.packetsReceived += s.packetsReceived || 0;
    });
    result.push(...entries.values());
  }
  return result;
}
