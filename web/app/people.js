// The People panel: who is in the meeting, their flags, and the host's buttons.
import { M, session } from "./state.js";
import { $, fail } from "./ui.js";
import { participants } from "./participants.js";

export function renderPeople() {
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
    name.textContent = (p.userName || p.userId) + (p.local ? " (you)" : "") + (p.isHost ? " · host" : "");
    const flags = document.createElement("span");
    flags.className = "pflags";
    flags.textContent = [p.audioEnabled === false ? "mic off" : "", p.videoEnabled === false ? "camera off" : "", p.screenSharing ? "sharing" : ""].filter(Boolean).join(", ");
    li.append(name, flags);
    if (M.isHost && !p.local) {
      li.append(
        hostButton("Mute", "host-mute", () => hostAction("host-mute", { targetUserId: p.userId, kind: "audio" })),
        hostButton("Stop video", "host-mute-video", () => hostAction("host-mute", { targetUserId: p.userId, kind: "video" })),
        hostButton("Remove", "host-remove", () => hostAction("host-remove", { targetUserId: p.userId })),
      );
    }
    ul.appendChild(li);
  }
}

function hostButton(text, testid, fn) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "btn small";
  b.textContent = text;
  b.dataset.testid = testid;
  b.addEventListener("click", fn);
  return b;
}

/** A host-only request (mute, remove, end-meeting); a refusal shows in the banner. */
export async function hostAction(event, payload) {
  try {
    const ack = await session.sio.emit(event, Object.assign({ roomId: M.roomId }, payload));
    if (!ack.ok) fail(ack.error.code, `${event} refused: ${ack.error.message}`);
  } catch (e) {
    fail(e.code || "ERROR", `${event} failed: ${e.message}`);
  }
}
