// Keyboard shortcuts of the meeting view (listed in its help dialog and in
// docs/web-client.md): single keys, ignored while typing in a field or with a modifier
// held, so that they never take a letter from the chat or a browser shortcut.
import { M } from "./state.js";
import { $ } from "./ui.js";
import { setAudio, setVideo } from "./controls.js";
import { toggleHand } from "./activity.js";
import { setMode, mode } from "./layout.js";

const ACTIONS = {
  m: () => setAudio(!M.audioEnabled),
  v: () => setVideo(!M.videoEnabled),
  h: () => toggleHand(),
  l: () => setMode(mode() === "grid" ? "speaker" : "grid"),
  "?": () => openHelp(),
};

function typing(target) {
  const el = target instanceof Element ? target : null;
  return !!el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
}

function openHelp() {
  const d = $("help");
  if (!d.open) d.showModal();
}

function onKey(ev) {
  if (M.state !== "joined" || ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat || typing(ev.target)) return;
  if ($("help").open) return; // the dialog is modal: Esc or its button closes it
  const action = ACTIONS[ev.key.length === 1 ? ev.key.toLowerCase() : ""];
  if (!action) return;
  ev.preventDefault();
  action();
}

export function initKeyboard() {
  document.addEventListener("keydown", onKey);
  $("open-help").addEventListener("click", openHelp);
}
