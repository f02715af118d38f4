// What happens around the videos: raised hands (the server keeps their order:
// `hands:updated`), emoji reactions (`reaction`, shown on the sender's tile for a few
// seconds), and the short notices of who joined and left. Notices and reactions go to
// the `#toasts` list, which screen readers read out (aria-live) without moving focus.
import { M, session } from "./state.js";
import { $, fail } from "./ui.js";
import { render, tileElement } from "./tiles.js";
import { byPeerOrUser } from "./participants.js";

const TOAST_MS = 4000;
const REACTION_MS = 4000;
// The server's set (docs/protocol.md `reaction`); anything else is refused there.
const EMOJI = [
  ["👍", "thumbs up"],
  ["👏", "applause"],
  ["😂", "laughing"],
  ["❤️", "heart"],
  ["🎉", "celebrate"],
  ["😮", "surprised"],
];

/** A short notice over the grid, gone after a few seconds. */
export function toast(text) {
  M.toasts.push(text);
  const li = document.createElement("li");
  li.dataset.testid = "toast";
  li.textContent = text;
  $("toasts").appendChild(li);
  setTimeout(() => li.remove(), TOAST_MS);
}

/** `participant-joined` / `participant-left`: a notice (never for this page itself). */
export function noticeJoined(p) {
  toast(`${p.userName || p.userId} joined`);
}

export function noticeLeft(p) {
  toast(`${p.userName || p.userId} left`);
  // Its hand went down with it on the server; the server tells nobody (docs/protocol.md).
  dropHand(p.peerId);
}

/** `hands:updated`: every raised hand, first raised first. */
export function onHands(ev) {
  const before = new Set(M.hands.map((h) => h.peerId));
  M.hands = (ev && Array.isArray(ev.hands) ? ev.hands : []).filter((h) => h && h.peerId);
  M.handRaised = M.hands.some((h) => h.peerId === M.peerId);
  for (const h of M.hands) {
    if (!before.has(h.peerId) && h.peerId !== M.peerId) toast(`✋ ${h.userName || h.userId} raised a hand`);
  }
  updateHandButton();
  render();
}

function dropHand(peerId) {
  if (!M.hands.some((h) => h.peerId === peerId)) return;
  M.hands = M.hands.filter((h) => h.peerId !== peerId);
  render();
}

function updateHandButton() {
  const b = $("toggle-hand");
  b.textContent = M.handRaised ? "✋ Lower hand" : "✋ Raise hand";
  b.classList.toggle("on", M.handRaised);
}

/** Raise or lower this page's hand; the server's `hands:updated` redraws. */
export async function toggleHand() {
  if (M.state !== "joined" || !session.sio) return;
  const want = !M.handRaised;
  const ack = await session.sio.emit("raise-hand", { roomId: M.roomId, raised: want }).catch((e) => ({ ok: false, error: { code: e.code || "ERROR", message: e.message } }));
  if (!ack.ok) {
    fail(ack.error.code, `Could not ${want ? "raise" : "lower"} your hand: ${ack.error.message}`);
    return;
  }
  onHands({ hands: ack.data.hands });
}

/** `reaction`: the emoji over the sender's tile for a moment, and a notice. */
export function onReaction(ev) {
  if (!ev || typeof ev.emoji !== "string") return;
  const p = byPeerOrUser(ev);
  const name = ev.peerId === M.peerId ? "You" : (p && p.userName) || ev.userName || ev.userId;
  M.reactions.push({ peerId: ev.peerId, userName: ev.userName, emoji: ev.emoji });
  toast(`${name}: ${ev.emoji}`);
  const tile = tileElement(ev.peerId, "camera");
  if (!tile) return;
  const badge = document.createElement("div");
  badge.className = "reaction";
  badge.dataset.testid = "tile-reaction";
  badge.textContent = ev.emoji;
  badge.setAttribute("aria-hidden", "true"); // the toast says it
  tile.appendChild(badge);
  setTimeout(() => badge.remove(), REACTION_MS);
}

async function react(emoji) {
  if (M.state !== "joined" || !session.sio) return;
  const ack = await session.sio.emit("reaction", { roomId: M.roomId, emoji }).catch((e) => ({ ok: false, error: { code: e.code || "ERROR", message: e.message } }));
  if (!ack.ok) fail(ack.error.code, `Reaction not sent: ${ack.error.message}`);
}

/** A new call: nobody's hand is up yet. */
export function resetActivity() {
  M.hands = [];
  M.handRaised = false;
  updateHandButton();
}

export function initActivity() {
  $("toggle-hand").addEventListener("click", toggleHand);
  const box = $("reactions");
  for (const [emoji, name] of EMOJI) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn ctl emoji";
    b.textContent = emoji;
    b.dataset.testid = "react";
    b.dataset.emoji = emoji;
    b.setAttribute("aria-label", `React: ${name}`);
    b.addEventListener("click", () => react(emoji));
    box.appendChild(b);
  }
}
