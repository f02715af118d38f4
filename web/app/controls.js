// The meeting's controls: microphone, camera, screen share, the side panels, the meeting
// link, leave, and the host's end-for-everyone.
import { M, session, audioTrack, videoTrack } from "./state.js";
import { $, banner, fail } from "./ui.js";
import { me, syncParticipants } from "./participants.js";
import { render } from "./tiles.js";
import { hostAction } from "./people.js";
import { sfuSenders } from "./sfu.js";
import { meshSenders } from "./mesh.js";
import { done } from "./lifecycle.js";
import { setUnread } from "./chat.js";
import { setMode, mode } from "./layout.js";

export function updateControls() {
  const a = audioTrack();
  const v = videoTrack();
  $("toggle-mic").disabled = !a;
  $("toggle-mic").textContent = M.audioEnabled ? "Mute" : "Unmute";
  $("toggle-mic").classList.toggle("off", !M.audioEnabled);
  $("toggle-camera").disabled = !v;
  $("toggle-camera").textContent = M.videoEnabled ? "Stop video" : "Start video";
  $("toggle-camera").classList.toggle("off", !M.videoEnabled);
  $("toggle-screen").textContent = M.screenSharing ? "Stop sharing" : "Share screen";
  $("toggle-screen").classList.toggle("on", M.screenSharing);

}

/** Mute or unmute the microphone here, and tell the others. */
export function setAudio(on) {
  const a = audioTrack();
  if (!a) return;
  a.enabled = on;
  M.audioEnabled = on;
  const self = me();
  if (self) self.audioEnabled = on;
  syncParticipants();
  updateControls();
  render();
  if (session.sio) session.sio.emit("toggle-audio", { roomId: M.roomId, isEnabled: on }).catch(() => {});
}

/** Turn the camera on or off here, and tell the others. */
export function setVideo(on) {
  const v = videoTrack();
  if (!v) return;
  v.enabled = on;
  M.videoEnabled = on;
  const self = me();
  if (self) self.videoEnabled = on;
  syncParticipants();
  updateControls();
  render();
  if (session.sio) session.sio.emit("toggle-video", { roomId: M.roomId, isEnabled: on }).catch(() => {});
}

/** The senders that carry `source` to the others, whichever the topology. */
export function sendersOf(source) {
  return M.topology === "sfu" ? sfuSenders(source) : meshSenders(source);
}

async function startScreen() {
  if (M.state !== "joined" || M.screenSharing) return;
  let track;
  try {
    if (typeof M.screenTrackFactory === "function") {
      track = await M.screenTrackFactory();
    } else {
      const s = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      track = s.getVideoTracks()[0];
    }
  } catch (e) {
    fail("SCREEN_DENIED", `Screen sharing did not start: ${e.message || e.name}`, { kind: "warn" });
    return;
  }
  if (!track) return;
  session.screenTrack = track;
  track.addEventListener("ended", () => stopScreen());
  for (const s of sendersOf("screen")) await s.replaceTrack(track);
  M.screenSharing = true;
  const self = me();
  if (self) self.screenSharing = true;
  syncParticipants();
  updateControls();
  render();
  const ack = await session.sio.emit("toggle-screen-share", { roomId: M.roomId, isSharing: true }).catch((e) => ({ ok: false, error: { code: "ERROR", message: e.message } }));
  if (!ack.ok) {
    fail(ack.error.code, `Screen sharing refused: ${ack.error.message}`);
    await stopScreen(true);
  }
}

/** Stop this page's screen share; `silent`: the server knows already (or refused it). */
export async function stopScreen(silent) {
  if (!session.screenTrack) return;
  const track = session.screenTrack;
  session.screenTrack = null;
  M.screenSharing = false;
  const self = me();
  if (self) self.screenSharing = false;
  if (!silent && session.sio) await session.sio.emit("toggle-screen-share", { roomId: M.roomId, isSharing: false }).catch(() => {});
  for (const s of sendersOf("screen")) await s.replaceTrack(null).catch(() => {});
  track.stop();
  syncParticipants();
  updateControls();
  render();
}

const PANELS = ["people", "chat", "devices"];

/** Show the People, Chat or Devices panel; the same button again hides it. */
function openSide(panel) {
  const side = $("side");
  const same = !side.hidden && !$("panel-" + panel).hidden;
  side.hidden = same;
  for (const p of PANELS) {
    $("panel-" + p).hidden = p !== panel;
    $("tab-" + p).classList.toggle("active", p === panel);
    $("tab-" + p).setAttribute("aria-pressed", String(p === panel && !side.hidden));
  }
  $("toggle-people").setAttribute("aria-expanded", String(!side.hidden && panel === "people"));
  $("toggle-chat").setAttribute("aria-expanded", String(!side.hidden && panel === "chat"));
  $("toggle-devices").setAttribute("aria-expanded", String(!side.hidden && panel === "devices"));
  if (panel === "chat" && !side.hidden) {
    setUnread(0);
    $("chat-input").focus();
  }
}

async function copyLink() {
  const link = location.origin + "/m/" + encodeURIComponent(M.roomId);
  M.copiedLink = link;
  try {
    await navigator.clipboard.writeText(link);
    banner(`Link copied: ${link}`, { kind: "info" });
  } catch (_) {
    banner(`Share this link: ${link}`, { kind: "info" });
  }
}

async function leave() {
  session.leaving = true;
  if (session.sio) {
    await session.sio.emit("leave-meeting", { roomId: M.roomId }, 3000).catch(() => {});
  }
  done("left", "You left the meeting", "");
}

export function initControls() {
  $("toggle-mic").addEventListener("click", () => setAudio(!M.audioEnabled));
  $("toggle-camera").addEventListener("click", () => setVideo(!M.videoEnabled));
  $("toggle-screen").addEventListener("click", () => (M.screenSharing ? stopScreen() : startScreen()));
  $("toggle-people").addEventListener("click", () => openSide("people"));
  $("toggle-chat").addEventListener("click", () => openSide("chat"));
  $("tab-people").addEventListener("click", () => openSide("people"));
  $("tab-chat").addEventListener("click", () => openSide("chat"));
  $("tab-devices").addEventListener("click", () => openSide("devices"));
  $("toggle-devices").addEventListener("click", () => openSide("devices"));
  $("toggle-layout").addEventListener("click", () => setMode(mode() === "grid" ? "speaker" : "grid"));
  $("copy-link").addEventListener("click", copyLink);
  $("leave").addEventListener("click", leave);
  // Ending the meeting for everyone takes a second click on a confirm button.
  $("end-meeting").addEventListener("click", () => {
    $("end-meeting").hidden = true;
    $("end-meeting-confirm").hidden = false;
  });
  $("end-meeting-confirm").addEventListener("click", async () => {
    $("end-meeting-confirm").hidden = true;
    $("end-meeting").hidden = false;
    await hostAction("end-meeting", {});
  });
}
