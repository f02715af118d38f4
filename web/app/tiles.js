// The video grid: one tile per camera (local and remote) and per screen being shared,
// kept in step with the participants and the received tracks by `render()`.
import { M, session, videoTrack } from "./state.js";
import { $, initials } from "./ui.js";
import { participants } from "./participants.js";
import { remoteTracks } from "./remote-media.js";
import { renderPeople } from "./people.js";

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
  layoutGrid(tiles.length);
  M.tiles = tiles.map((t) => ({ peerId: t.peerId, userId: t.userId, source: t.source, local: t.local, hasVideo: !!t.video }));
  renderPeople();
}

/** Remove every tile (the call is over). */
export function clearTiles() {
  for (const [, t] of tileEls) t.el.remove();
  tileEls.clear();
  M.tiles = [];
}

function layoutGrid(n) {
  const narrow = window.innerWidth < 700;
  const cols = narrow ? (n <= 2 ? 1 : 2) : n <= 1 ? 1 : n <= 4 ? 2 : n <= 9 ? 3 : 4;
  // A custom property set through the CSSOM, which a CSP without 'unsafe-inline' allows.
  $("grid").style.setProperty("--cols", String(cols));
  $("grid").dataset.count = String(n);
}

export function initTiles() {
  window.addEventListener("resize", () => layoutGrid(tileEls.size));
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
  label.appendChild(document.createElement("span"));
  label.appendChild(mic);
  el.append(video, avatar, label);
  let audio = null;
  if (!t.local && t.source === "camera") {
    audio = document.createElement("audio");
    audio.autoplay = true;
    el.appendChild(audio);
  }
  if (!t.local) {
    const onFrame = () => {
      if (M.timings.firstRemoteFrame == null && video.videoWidth > 0) M.timings.firstRemoteFrame = performance.now();
    };
    video.addEventListener("loadeddata", onFrame);
    video.addEventListener("resize", onFrame);
  }
  return { el, video, audio, avatar, label, key: t.key, vTrack: null, aTrack: null };
}

function updateTile(te, t) {
  const p = t.p;
  const name = (p.userName || p.userId || "?") + (t.local ? " (you)" : "") + (t.source === "screen" ? " — screen" : "");
  te.label.firstChild.textContent = name;
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
