// The video grid: one tile per camera (local and remote) and per screen being shared,
// kept in step with the participants and the received tracks by `render()`. Each tile
// carries its name, mute, raised hand and connection quality, and a pin and a full
// screen button; layout.js decides which tile is large in the speaker view.
import { M, session, videoTrack } from "./state.js";
import { $, initials, smallButton } from "./ui.js";
import { participants } from "./participants.js";
import { remoteTracks } from "./remote-media.js";
import { renderPeople } from "./people.js";
import { arrange, onLayoutChange, togglePin, isPinned, mode, speakingClass } from "./layout.js";

const tileEls = new Map(); // tile key → { el, video, audio, avatar, label, key, vTrack, aTrack }

function tileList() {
  const tiles = [];
  const remote = remoteTracks();
  for (const p of participants.values()) {
    if (p.local) {
      tiles.push({ key: p.peerId + ":camera", peerId: p.peerId, userId: p.userId, source: "camera", local: true, p, video: videoTrack(), audio: null });
      if (session.screenTrack) tiles.push({ key: p.peerId + ":screen", peerId: p.peerId, userId: p.userId, source: "screen", local: true, p, video: session.screenTrack, audio: null });
      continue;
    }
    const mine = remote.filter((t) => t.peerId === p.peerId);
    const cam = mine.find((t) => t.source === "camera");
    const mic = mine.find((t) => t.source === "microphone");
    const scr = mine.find((t) => t.source === "screen");
    tiles.push({ key: p.peerId + ":camera", peerId: p.peerId, userId: p.userId, source: "camera", local: false, p, video: cam ? cam.track : null, audio: mic ? mic.track : null });
    // SFU: the server only sends a screen track while it is shared. Mesh: the screen
    // transceiver always exists, so the sharing flag decides.
    if (scr && (M.topology === "sfu" || p.screenSharing)) {
      tiles.push({ key: p.peerId + ":screen", peerId: p.peerId, userId: p.userId, source: "screen", local: false, p, video: scr.track, audio: null });
    }
  }
  return tiles;
}

/** Bring the grid and the people list in line with the current state. */
export function render() {
  if (M.state !== "joined") return;
  renderTiles();
  renderPeople();
}

/**
 * The grid only: for what changes often (quality, every 2 s) and must not rebuild the
 * People panel under a keyboard user's focus.
 */
export function renderTiles() {
  if (M.state !== "joined") return;
  const tiles = tileList();
  const grid = $("grid");
  const keep = new Set(tiles.map((t) => t.key));
  for (const [key, t] of tileEls) {
    if (!keep.has(key)) {
      t.el.remove();
      tileEls.delete(key);
    }
  }
  for (const t of tiles) {
    let te = tileEls.get(t.key);
    if (!te) {
      te = makeTile(t);
      tileEls.set(t.key, te);
      grid.appendChild(te.el);
    }
    updateTile(te, t);
  }
  layoutGrid(tiles);
  M.tiles = tiles.map((t) => ({ peerId: t.peerId, userId: t.userId, source: t.source, local: t.local, hasVideo: !!t.video }));
}

/** A tile's element, for the reactions shown on it (activity.js). */
export function tileElement(peerId, source) {
  const te = tileEls.get(peerId + ":" + (source || "camera"));
  return te ? te.el : null;
}

/** Remove every tile (the call is over). */
export function clearTiles() {
  for (const [, t] of tileEls) t.el.remove();
  tileEls.clear();
  M.tiles = [];
}

function layoutGrid(tiles) {
  const n = tiles.length;
  const main = arrange(tiles);
  const narrow = window.innerWidth < 700;
  // Speaker view: the large tile spans the first row, the others share the row below.
  const cols = main ? Math.max(1, Math.min(n - 1, narrow ? 3 : 6)) : narrow ? (n <= 2 ? 1 : 2) : n <= 1 ? 1 : n <= 4 ? 2 : n <= 9 ? 3 : 4;
  const grid = $("grid");
  grid.classList.toggle("speaker", !!main);
  for (const [key, te] of tileEls) {
    te.el.classList.toggle("main", key === main);
    // Who speaks: a coloured border (style.css), the dominant speaker's the strongest.
    const speaking = speakingClass(key);
    te.el.classList.toggle("active-speaker", speaking === "active");
    te.el.classList.toggle("speaking", speaking === "speaking");
    te.pin.setAttribute("aria-pressed", String(isPinned(key)));
  }
  // A custom property set through the CSSOM, which a CSP without 'unsafe-inline' allows.
  grid.style.setProperty("--cols", String(cols));
  grid.dataset.count = String(n);
  $("toggle-layout").textContent = mode() === "grid" ? "Speaker view" : "Grid view";
}

export function initTiles() {
  window.addEventListener("resize", () => renderTiles());
  onLayoutChange(() => render());
}


function makeTile(t) {
  const el = document.createElement("div");
  el.className = "tile " + t.source + (t.local ? " local" : "");
  el.dataset.testid = "tile";
  el.dataset.peerId = t.peerId;
  el.dataset.source = t.source;
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true; // sound plays through the <audio> element
  const avatar = document.createElement("div");
  avatar.className = "avatar";
  const label = document.createElement("div");
  label.className = "label";
  label.dataset.testid = "tile-name";
  const mic = document.createElement("span");
  mic.className = "mic-off";
  mic.textContent = "muted";
  const hand = document.createElement("span");
  hand.className = "hand";
  hand.dataset.testid = "tile-hand";
  hand.hidden = true;
  const quality = document.createElement("span");
  quality.className = "quality";
  quality.dataset.testid = "tile-quality";
  quality.hidden = true;
  label.append(document.createElement("span"), mic, hand, quality);
  const tools = document.createElement("div");
  tools.className = "tile-tools";
  const pin = smallButton("Pin", "tile-pin", () => togglePin(t.key), "tile-btn");
  pin.setAttribute("aria-pressed", "false");
  const full = smallButton(
    "Full screen",
    "tile-fullscreen",
    () => {
      if (document.fullscreenElement === el) document.exitFullscreen().catch(() => {});
      else el.requestFullscreen().catch((e) => M.notices.push(`fullscreen: ${e.message}`));
    },
    "tile-btn",
  );
  tools.append(pin, full);
  el.append(video, avatar, label, tools);
  let audio = null;
  if (!t.local && t.source === "camera") {
    audio = document.createElement("audio");
    audio.autoplay = true;
    // The speaker chosen in the Devices panel (devices.js), where the browser allows it.
    if (M.sinkId && audio.setSinkId) audio.setSinkId(M.sinkId).catch(() => {});
    el.appendChild(audio);
  }
  if (!t.local) {
    const onFrame = () => {
      if (M.timings.firstRemoteFrame == null && video.videoWidth > 0) M.timings.firstRemoteFrame = performance.now();
    };
    video.addEventListener("loadeddata", onFrame);
    video.addEventListener("resize", onFrame);
  }
  return { el, video, audio, avatar, label, hand, quality, pin, full, key: t.key, vTrack: null, aTrack: null };
}

function updateTile(te, t) {
  const p = t.p;
  const name = (p.userName || p.userId || "?") + (t.local ? " (you)" : "") + (t.source === "screen" ? " — screen" : "");
  te.label.firstChild.textContent = name;
  te.pin.setAttribute("aria-label", `Pin ${name}`);
  te.full.setAttribute("aria-label", `Full screen: ${name}`);
  // The raised hand, with its place in the queue, on the camera tile.
  const place = t.source === "camera" ? M.hands.findIndex((h) => h.peerId === t.peerId) : -1;
  te.hand.hidden = place < 0;
  te.hand.textContent = place < 0 ? "" : `✋ ${place + 1}`;
  te.hand.setAttribute("aria-label", place < 0 ? "" : `hand raised, number ${place + 1}`);
  te.el.classList.toggle("hand-up", place >= 0);
  const q = !t.local && t.source === "camera" ? M.quality[t.peerId] : null;
  te.quality.hidden = !q;
  if (q) {
    te.quality.className = "quality " + q.level;
    te.quality.textContent = q.height ? `● ${q.height}p` : "●";
    const res = q.width ? `${q.width}×${q.height}` : "no video";
    const text = `connection ${q.level}: ${res}, ${q.loss.toFixed(1)} % lost, ${q.rtt == null ? "?" : Math.round(q.rtt)} ms round trip`;
    te.quality.title = text;
    te.quality.setAttribute("aria-label", text);
  }
  te.avatar.textContent = initials(p.userName || p.userId);
  const videoOn = t.source === "screen" || (t.local ? M.videoEnabled : p.videoEnabled !== false);
  te.el.classList.toggle("no-video", !t.video || !videoOn);
  te.el.classList.toggle("muted", t.source === "camera" && (t.local ? !M.audioEnabled : p.audioEnabled === false));
  te.el.classList.toggle("host", !!p.isHost);
  if (t.video !== te.vTrack) {
    te.vTrack = t.video;
    te.video.srcObject = t.video ? new MediaStream([t.video]) : null;
    if (t.video) te.video.play().catch(() => {});
  }
  if (te.audio && t.audio !== te.aTrack) {
    te.aTrack = t.audio;
    te.audio.srcObject = t.audio ? new MediaStream([t.audio]) : null;
    if (t.audio) te.audio.play().catch(() => {});
  }
}
