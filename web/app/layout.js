// How the grid is arranged: every tile the same size ("grid"), or one tile large and the
// others in a row under it ("speaker"). The large one is the pinned tile, else the
// active speaker's camera (`setActiveSpeaker`, for the server's active-speaker event to
// drive), else the first remote tile. Pinning a tile switches to the speaker view.
// tiles.js draws what `arrange()` decides.
import { M } from "./state.js";

const state = { mode: "grid", pinned: null, speaker: null, speaking: new Set() }; // pinned: a tile key
let redraw = () => {};

/** tiles.js: what to call when the arrangement changes. */
export function onLayoutChange(fn) {
  redraw = fn;
}

function changed() {
  M.layout = { mode: state.mode, pinned: state.pinned, activeSpeaker: state.speaker, main: M.layout ? M.layout.main : null };
  redraw();
}

/**
 * The server's `active-speaker` event: the dominant speaker (peer id, or null), shown
 * large in the speaker view, and everyone speaking now (`[{ peerId, level }]`), whose
 * tiles are highlighted. Redraws only when either changed.
 */
export function setActiveSpeaker(peerId, speaking = []) {
  const ids = new Set(speaking.map((s) => s.peerId));
  const same = state.speaker === (peerId || null) && ids.size === state.speaking.size && [...ids].every((id) => state.speaking.has(id));
  M.activeSpeaker = peerId || null;
  M.speaking = speaking.map((s) => ({ peerId: s.peerId, level: s.level }));
  if (same) return;
  state.speaker = peerId || null;
  state.speaking = ids;
  changed();
}

/** The tile's highlight: "active" for the dominant speaker's camera, "speaking" for others speaking, else "". */
export function speakingClass(key) {
  const [peerId, source] = key.split(":");
  if (source !== "camera") return "";
  if (peerId === state.speaker) return "active";
  return state.speaking.has(peerId) ? "speaking" : "";
}

/** Pin the tile `key` (`<peerId>:camera` or `:screen`), or unpin it if it is pinned. */
export function togglePin(key) {
  state.pinned = state.pinned === key ? null : key;
  if (state.pinned) state.mode = "speaker";
  changed();
}

export function isPinned(key) {
  return state.pinned === key;
}

/** "grid" or "speaker"; the grid view also unpins. */
export function setMode(mode) {
  state.mode = mode === "speaker" ? "speaker" : "grid";
  if (state.mode === "grid") state.pinned = null;
  changed();
}

export function mode() {
  return state.mode;
}

/** Forget the arrangement (the call is over). */
export function resetLayout() {
  Object.assign(state, { mode: "grid", pinned: null, speaker: null, speaking: new Set() });
  M.layout = null;
  M.activeSpeaker = null;
  M.speaking = [];
}

/**
 * The key of the tile shown large among `tiles` ([{ key, peerId, source, local }]), or
 * null in the grid view (or with a single tile, which fills the grid anyway).
 */
export function arrange(tiles) {
  let main = null;
  if (state.mode === "speaker" && tiles.length > 1) {
    const has = (key) => tiles.some((t) => t.key === key);
    if (state.pinned && has(state.pinned)) main = state.pinned;
    else if (state.speaker && has(state.speaker + ":camera")) main = state.speaker + ":camera";
    else main = (tiles.find((t) => !t.local) || tiles[0]).key;
  }
  M.layout = { mode: state.mode, pinned: state.pinned, activeSpeaker: state.speaker, main };
  return main;
}
