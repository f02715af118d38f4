// Microphone, camera and speaker: the pre-join preview with its microphone level meter,
// the device lists, and switching a device during the call. A switch replaces the
// track of the sender that carries it (`RTCRtpSender.replaceTrack`): the peer
// connection is not renegotiated, so nobody sees an offer or a gap longer than a frame.
import { M, session, audioTrack, videoTrack } from "./state.js";
import { $, fail } from "./ui.js";
import { getLocalMedia, explain } from "./local-media.js";
import { render } from "./tiles.js";
import { sendersOf } from "./controls.js";

// The user's choice per kind ("" is the browser's default device).
const chosen = { audioinput: "", videoinput: "", audiooutput: "" };
const SELECTS = { audioinput: "select-mic", videoinput: "select-camera", audiooutput: "select-speaker" };

let preview = null; // Promise of { stream, problem, status, wantAudio, wantVideo }
let meter = null; // { ctx, timer }
let previewStream = null; // the microphone the meter listens to
let shown = null; // the preview's stream, before the call takes it

const canChooseSpeaker = () => typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;

function stopStream(stream) {
  if (stream) for (const t of stream.getTracks()) t.stop();
}

function showStatus(text) {
  $("media-status").hidden = !text;
  $("media-status").textContent = text || "";
  M.mediaStatus = text || null;
}

/** The pre-join view: (re)start the preview for the boxes' choice, the meter, the lists. */
export async function startPreview() {
  const wantAudio = $("prejoin-audio").checked;
  const wantVideo = $("prejoin-video").checked;
  const before = preview;
  preview = null;
  if (before) stopStream((await before).stream);
  const p = getLocalMedia(wantAudio, wantVideo, chosen).then((r) => Object.assign(r, { wantAudio, wantVideo }));
  preview = p;
  const r = await p;
  if (preview !== p) return; // a later choice replaced this one
  shown = r.stream;
  const video = $("prejoin-preview");
  video.srcObject = r.stream.getVideoTracks().length ? r.stream : null;
  video.hidden = !video.srcObject;
  showStatus(r.status);
  startMeter(r.stream.getAudioTracks()[0] || null);
  await fillLists();
}

/**
 * The devices to join with: the preview's, when it matches what the user asked for,
 * else freshly opened (a rejoin, or a preview that failed).
 */
export async function takeMedia(wantAudio, wantVideo) {
  const p = preview;
  preview = null;
  shown = null;
  $("prejoin-preview").srcObject = null;
  let r = p ? await p : null;
  const live = r && r.stream.getTracks().every((t) => t.readyState === "live");
  if (!r || r.wantAudio !== wantAudio || r.wantVideo !== wantVideo || !live) {
    if (r) stopStream(r.stream);
    r = await getLocalMedia(wantAudio, wantVideo, chosen);
  }
  // Started again from the Join click: a user gesture, so its audio runs at once.
  startMeter(r.stream.getAudioTracks()[0] || null);
  return r;
}

/** The lists of devices; labels are known once the page has been given access. */
async function fillLists() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const all = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  const stream = session.localStream || shown;
  const inUse = { audioinput: stream && stream.getAudioTracks()[0], videoinput: stream && stream.getVideoTracks()[0] };
  for (const kind of Object.keys(SELECTS)) {
    const sel = $(SELECTS[kind]);
    const list = all.filter((d) => d.kind === kind);
    sel.textContent = "";
    list.forEach((d, i) => {
      const o = document.createElement("option");
      o.value = d.deviceId;
      o.textContent = d.label || `${kind === "audiooutput" ? "Speaker" : kind === "audioinput" ? "Microphone" : "Camera"} ${i + 1}`;
      sel.appendChild(o);
    });
    const track = inUse[kind];
    const current = chosen[kind] || (track && track.getSettings().deviceId) || "";
    if (list.some((d) => d.deviceId === current)) sel.value = current;
    sel.disabled = list.length === 0;
  }
  $("speaker-row").hidden = !canChooseSpeaker() || all.every((d) => d.kind !== "audiooutput");
  M.devices = all.map((d) => ({ kind: d.kind, deviceId: d.deviceId, label: d.label }));
}

/** The microphone level, 0–1, from a WebAudio analyser, drawn in the <meter> 10 times a second. */
function startMeter(track) {
  stopMeter();
  $("mic-level").value = 0;
  M.micLevel = 0;
  if (!track || typeof AudioContext === "undefined") return;
  previewStream = new MediaStream([track]);
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  ctx.createMediaStreamSource(previewStream).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    // A muted microphone (track disabled) reads silence: the meter shows what is sent.
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const x of buf) sum += x * x;
    const level = Math.min(1, Math.sqrt(sum / buf.length) * 4);
    $("mic-level").value = level;
    M.micLevel = level;
    M.micPeak = Math.max(M.micPeak || 0, level);
  }, 100);
  meter = { ctx, timer };
}

function stopMeter() {
  if (!meter) return;
  clearInterval(meter.timer);
  meter.ctx.close().catch(() => {});
  meter = null;
}

// An AudioContext made before any user gesture starts suspended (autoplay policy): the
// first click or key press lets the meter run.
function resumeMeter() {
  if (meter && meter.ctx.state === "suspended") meter.ctx.resume().catch(() => {});
}

/** Another microphone or camera chosen: in the preview, or replaced in the call. */
async function switchInput(kind) {
  chosen[kind] = $(SELECTS[kind]).value;
  if (M.state !== "joined") {
    if (M.state === "idle" || M.state === "error") await startPreview();
    return;
  }
  const audio = kind === "audioinput";
  const old = audio ? audioTrack() : videoTrack();
  if (!old || !session.localStream) return; // that device is not in use in this call
  let track;
  try {
    const s = await navigator.mediaDevices.getUserMedia(audio ? { audio: { deviceId: { exact: chosen[kind] } } } : { video: { deviceId: { exact: chosen[kind] } } });
    track = s.getTracks()[0];
  } catch (e) {
    const what = audio ? "microphone" : "camera";
    fail("DEVICE_FAILED", explain([what], e), { kind: "warn" });
    return;
  }
  track.enabled = old.enabled; // a muted microphone stays muted
  for (const s of sendersOf(audio ? "microphone" : "camera")) await s.replaceTrack(track);
  session.localStream.removeTrack(old);
  session.localStream.addTrack(track);
  old.stop();
  if (audio) startMeter(track);
  M.deviceSwitches = (M.deviceSwitches || 0) + 1;
  render();
}

/** Play the meeting's sound on the chosen speaker (where the browser allows it). */
async function switchSpeaker() {
  chosen.audiooutput = $("select-speaker").value;
  M.sinkId = chosen.audiooutput;
  for (const el of document.querySelectorAll("#grid audio")) {
    await el.setSinkId(M.sinkId).catch((e) => fail("DEVICE_FAILED", `Could not switch the speaker: ${e.message}`, { kind: "warn" }));
  }
}

/** The device choice moves from the pre-join form to the meeting's Devices panel. */
export function devicesIntoMeeting() {
  $("panel-devices").appendChild($("devices"));
  fillLists();
}

export function stopDevices() {
  stopMeter();
  previewStream = null;
}

export function initDevices() {
  $(SELECTS.audioinput).addEventListener("change", () => switchInput("audioinput"));
  $(SELECTS.videoinput).addEventListener("change", () => switchInput("videoinput"));
  $(SELECTS.audiooutput).addEventListener("change", switchSpeaker);
  $("prejoin-audio").addEventListener("change", () => startPreview());
  $("prejoin-video").addEventListener("change", () => startPreview());
  document.addEventListener("pointerdown", resumeMeter);
  document.addEventListener("keydown", resumeMeter);
  if (navigator.mediaDevices) navigator.mediaDevices.addEventListener("devicechange", () => fillLists());
}
