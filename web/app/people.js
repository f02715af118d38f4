// The People panel: who is in the meeting, their flags, and the host's buttons.
import { M, session, moderates } from "./state.js";
import { $, fail, smallButton } from "./ui.js";
import { participants } from "./participants.js";

/** The raised hands, first raised first: the order the host takes them in. */
function renderHands() {
  const ol = $("hands");
  ol.textContent = "";
  ol.hidden = $("hands-title").hidden = M.hands.length === 0;
  M.hands.forEach((h, i) => {
    const li = document.createElement("li");
    li.dataset.testid = "hand";
    li.dataset.peerId = h.peerId;
    const name = document.createElement("span");
    name.className = "pname";
    name.textContent = `✋ ${i + 1}. ${h.userName || h.userId}${h.peerId === M.peerId ? " (you)" : ""}`;
    li.appendChild(name);
    ol.appendChild(li);
  });
}

export function renderPeople() {
  renderHands();
  const ul = $("people");
  ul.textContent = "";
  $("people-count").textContent = `(${participants.size})`;
  for (const p of participants.values()) {
    const li = document.createElement("li");
    li.dataset.testid = "participant";
    li.dataset.peerId = p.peerId;
    li.dataset.userId = p.userId;
    const name = document.createElement("span");
    name.className = "pname";
    name.textContent = (p.userName || p.userId) + (p.local ? " (you)" : "") + (ROLE_TAGS[p.role] || (p.isHost ? " · host" : ""));
    const flags = document.createElement("span");
    flags.className = "pflags";
    flags.textContent = [p.audioEnabled === false ? "mic off" : "", p.videoEnabled === false ? "camera off" : "", p.screenSharing ? "sharing" : ""].filter(Boolean).join(", ");
    li.append(name, flags);
    if (M.isHost && !p.local && !p.isHost) li.append(coHostButton(p));
    if (moderates() && !p.local) {
      li.append(
        smallButton("Mute", "host-mute", () => hostAction("host-mute", { targetUserId: p.userId, kind: "audio" })),
        smallButton("Stop video", "host-mute-video", () => hostAction("host-mute", { targetUserId: p.userId, kind: "video" })),
        smallButton("Remove", "host-remove", () => remove(p)),
      );
      // Never a forced unmute: the participant is asked, and decides.
      if (p.audioEnabled === false) li.append(smallButton("Ask to unmute", "host-ask-unmute", () => hostAction("host-ask-unmute", { targetUserId: p.userId, kind: "audio" })));
      if (p.screenSharing) li.append(smallButton("Stop share", "host-stop-screen", () => hostAction("host-stop-screen", { targetUserId: p.userId })));
    }
    ul.appendChild(li);
  }
  if (!moderates()) return;
  for (const r of M.removed) {
    const li = document.createElement("li");
    li.dataset.testid = "removed-participant";
    li.dataset.userId = r.userId;
    const name = document.createElement("span");
    name.className = "pname";
    name.textContent = `${r.userName || r.userId} · removed`;
    li.append(name, smallButton("Let back in", "host-allow", () => allow(r.userId)));
    ul.appendChild(li);
  }
}

// A removal holds for the whole meeting (the server refuses their joins with REMOVED), so
// the host's page remembers whom it removed and offers to let them back.
async function remove(p) {
  if (!(await hostAction("host-remove", { targetUserId: p.userId }))) return;
  if (!M.removed.some((r) => r.userId === p.userId)) M.removed.push({ userId: p.userId, userName: p.userName });
  renderPeople();
}

async function allow(userId) {
  if (!(await hostAction("host-allow", { targetUserId: userId }))) return;
  M.removed = M.removed.filter((r) => r.userId !== userId);
  renderPeople();
}

const ROLE_TAGS = { host: " · host", coHost: " · co-host", viewer: " · viewer" };

// The host's promote / demote (`host-set-co-host`); `participant:role-changed` updates
// every page's list.
function coHostButton(p) {
  const on = p.role !== "coHost";
  const text = on ? "Make co-host" : "Remove co-host";
  return smallButton(text, on ? "host-promote" : "host-demote", () => hostAction("host-set-co-host", { targetUserId: p.userId, coHost: on }));
}


/**
 * A host-only request (mute, remove, allow, end-meeting, invites); a refusal shows in the
 * banner. Resolves to the answer's data when the server accepted it (`true` without
 * data), else `false`.
 */
export async function hostAction(event, payload) {
  try {
    const ack = await session.sio.emit(event, Object.assign({ roomId: M.roomId }, payload));
    if (!ack.ok) fail(ack.error.code, `${event} refused: ${ack.error.message}`);
    return ack.ok ? ack.data || true : false;
  } catch (e) {
    fail(e.code || "ERROR", `${event} failed: ${e.message}`);
    return false;
  }
}
