// The lobby of a meeting that requires approval (docs/protocol.md "Lobby"): the waiting
// page of a joiner the server made wait, and the host's list of who waits, with admit
// and deny for each or for everyone.
import { M, session, moderates } from "./state.js";
import { $, banner, show, smallButton } from "./ui.js";
import { hostAction } from "./people.js";
import { done } from "./lifecycle.js";

/** Show the waiting page: the name this page asked to join as and its camera preview. */
export function showWaiting(name) {
  M.lobby = { waiting: true, name };
  $("lobby-name").textContent = name;
  const video = $("lobby-preview");
  const hasVideo = !!(session.localStream && session.localStream.getVideoTracks().length);
  video.hidden = !hasVideo;
  video.srcObject = hasVideo ? session.localStream : null;
  show("lobby");
}

/** Leave the waiting page (admitted: the join goes on; denied: `done` takes over). */
export function stopWaiting() {
  M.lobby = null;
  $("lobby-preview").srcObject = null;
}

/** The host's page: `lobby:updated` lists everyone waiting now. */
export function onLobbyUpdated(ev) {
  const waiting = (ev && ev.waiting) || [];
  const before = new Set(M.waiting.map((w) => w.peerId));
  M.waiting = waiting;
  renderLobby();
  const fresh = waiting.filter((w) => !before.has(w.peerId));
  if (fresh.length) banner(`${fresh.map((w) => w.userName).join(", ")} ${fresh.length > 1 ? "are" : "is"} waiting to join.`, { kind: "info" });
}

export function renderLobby() {
  const box = $("lobby-requests");
  const ul = $("lobby-list");
  ul.textContent = "";
  box.hidden = !moderates() || M.waiting.length === 0;
  $("lobby-count").textContent = String(M.waiting.length);
  for (const w of M.waiting) {
    const li = document.createElement("li");
    li.dataset.testid = "lobby-entry";
    li.dataset.peerId = w.peerId;
    const name = document.createElement("span");
    name.className = "pname";
    name.textContent = w.userName || w.userId;
    li.append(name, smallButton("Admit", "lobby-admit", () => decide("lobby-admit", { peerId: w.peerId })), smallButton("Deny", "lobby-deny", () => decide("lobby-deny", { peerId: w.peerId })));
    ul.appendChild(li);
  }
}


// The server answers with `lobby:updated` to every host page, which redraws the list.
async function decide(event, payload) {
  await hostAction(event, payload);
}

export function initLobby() {
  // Closing the socket takes this page out of the lobby (the server drops its place).
  $("lobby-cancel").addEventListener("click", () => {
    stopWaiting();
    session.leaving = true;
    done("left", "You left", "You left the lobby before the host let you in.");
  });
  $("lobby-admit-all").addEventListener("click", () => decide("lobby-admit", { all: true }));
  $("lobby-deny-all").addEventListener("click", () => decide("lobby-deny", { all: true }));
}

export function resetLobby() {
  M.waiting = [];
  M.lobby = null;
  renderLobby();
}
