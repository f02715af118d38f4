// Meeting chat. The server echoes our own messages to us too; whichever of the ack and the
// echo comes first shows the message, and the other is dropped.
import { M, session } from "./state.js";
import { $, fail } from "./ui.js";
import { me } from "./participants.js";

// How long an own message shown from its ack waits for its echo to drop.
const ECHO_WAIT_MS = 10000;

const pendingOwn = []; // [{ message, shown }] sent by us, echo not seen yet

/** A `meeting-chat-message` from the server. */
export function onChat(m) {
  if (!m || typeof m.message !== "string") return;
  if (m.userId === M.userId) {
    const i = pendingOwn.findIndex((x) => x.message === m.message);
    if (i >= 0) {
      const own = pendingOwn[i];
      pendingOwn.splice(i, 1);
      if (own.shown) return; // already shown when the ack came first
    }
  }
  addChat(m);
}

/** `chat:history`: the meeting's chat before this page joined, oldest first. */
export function onChatHistory(ev) {
  const list = ev && Array.isArray(ev.messages) ? ev.messages : [];
  // The whole record up to now: after a rejoin it replaces what this page showed.
  M.chat = [];
  $("chat-messages").textContent = "";
  for (const m of list) if (m && typeof m.message === "string") addChat(m, true);
}

/** The time a message was sent, as the reader's clock shows it (HH:MM). */
function timeOf(m) {
  const el = document.createElement("time");
  el.className = "chat-time";
  el.dataset.testid = "chat-time";
  const d = new Date(m.timestamp);
  if (m.timestamp && !Number.isNaN(d.getTime())) {
    el.dateTime = d.toISOString();
    el.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    el.title = d.toLocaleString();
  }
  return el;
}

// `history`: told on joining, so not unread news.
function addChat(m, history) {
  M.chat.push({ userId: m.userId, userName: m.userName, message: m.message, timestamp: m.timestamp, history: !!history });
  const li = document.createElement("li");
  li.dataset.testid = "chat-message";
  const who = document.createElement("b");
  who.textContent = (m.userId === M.userId ? "You" : m.userName || m.userId) + ": ";
  const text = document.createElement("span");
  text.textContent = m.message;
  li.append(timeOf(m), who, text);
  $("chat-messages").appendChild(li);
  $("chat-messages").scrollTop = 1e9;
  if (!history && ($("panel-chat").hidden || $("side").hidden)) setUnread(M.unread + 1);
}

/** The unread count, on the Chat button and the Chat tab (0 hides them). */
export function setUnread(n) {
  M.unread = n;
  for (const id of ["chat-unread", "chat-unread-ctl"]) {
    $(id).hidden = n === 0;
    $(id).textContent = n ? String(n) : "";
  }
  $("toggle-chat").setAttribute("aria-label", n ? `Chat, ${n} unread` : "Chat");
}

async function send(ev) {
  ev.preventDefault();
  const input = $("chat-input");
  const message = input.value.trim();
  if (!message || !session.sio) return;
  input.value = "";
  const own = { message, shown: false };
  pendingOwn.push(own);
  try {
    const ack = await session.sio.emit("meeting-chat-message", { roomId: M.roomId, message });
    if (!ack.ok) {
      pendingOwn.splice(pendingOwn.indexOf(own), 1);
      fail(ack.error.code, `Message not sent: ${ack.error.message}`);
      return;
    }
    if (pendingOwn.includes(own)) {
      // The ack came before (or instead of) the echo: show it now, drop the echo later.
      own.shown = true;
      addChat({ userId: M.userId, userName: (me() || {}).userName, message, timestamp: ack.data && ack.data.timestamp });
      setTimeout(() => {
        const i = pendingOwn.indexOf(own);
        if (i >= 0) pendingOwn.splice(i, 1);
      }, ECHO_WAIT_MS);
    }
  } catch (e) {
    fail(e.code || "ERROR", `Message not sent: ${e.message}`);
  }
}

export function initChat() {
  $("chat-form").addEventListener("submit", send);
}
