// How the grid is arranged: every tile the same size ("grid"), or one tile large and the
// others in a row under it ("speaker"). The large one is the pinned tile, else the
// active speaker's camera (`setActiveSpeaker`, for the server's active-speaker event to
// drive), else the first remote tile. Pinning a tile switches to the speaker view.
// tiles.js draws what `arrange()` decides.
import { M } from "./state.js";

const state = { mode: "grid", pinned: null, speaker: null }; // pinned: a tile key
let redraw = () => {};

/** tiles.js: what to call when the arrangement changes. */
export function onLayoutChange(fn) {
  redraw = fn;
}

function changed() {
  M.layout = { mode: state.mode, pinned: state.pinned, activeSpeaker: state.speaker, main: M.layout ? M.layout.main : null };
  redraw();
}

/** The participant (peer id) who speaks now, or null; shown large in the speaker view. */
export function setActiveSpeaker(peerId) {
  if (state.speaker === peerId) return;
  state.speaker = peerId || null;
  changed();
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
  Object.assign(state, { mode: "grid", pinned: null, speaker: null });
  M.layout = null;
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
