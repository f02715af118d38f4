// The meeting's participants as the server describes them, this page's own included.
import { M } from "./state.js";

/** peerId → participant ({ peerId, userId, userName, isHost, audioEnabled, …, local }). */
export const participants = new Map();

export function upsertParticipant(p) {
  if (!p || !p.peerId) return;
  // A second connection of the same user replaces the first.
  for (const [pid, q] of participants) {
    if (q.userId === p.userId && pid !== p.peerId && !q.local && !p.local) participants.delete(pid);
  }
  const prev = participants.get(p.peerId) || {};
  participants.set(p.peerId, Object.assign({}, prev, p, { local: p.local || p.peerId === M.peerId }));
  syncParticipants();
}

export function removeParticipant(peerId) {
  participants.delete(peerId);
  syncParticipants();
}

/** This page's own entry, or undefined before the join. */
export function me() {
  return participants.get(M.peerId);
}

/** Copy the map into `window.__meeting.participants` for the tests. */
export function syncParticipants() {
  M.participants = [...participants.values()].map((p) => ({
    peerId: p.peerId,
    userId: p.userId,
    userName: p.userName,
    isHost: !!p.isHost,
    role: p.role || (p.isHost ? "host" : "participant"),
    audioEnabled: p.audioEnabled !== false,
    videoEnabled: p.videoEnabled !== false,
    screenSharing: !!p.screenSharing,
    local: !!p.local,
  }));
}

/** The participant an event names: by peer id, else by user id (older event shapes). */
export function byPeerOrUser(ev) {
  if (ev.peerId && participants.has(ev.peerId)) return participants.get(ev.peerId);
  for (const p of participants.values()) if (p.userId === ev.userId) return p;
  return null;
}
