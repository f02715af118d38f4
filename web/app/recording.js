// Recording: the red "Recording" indicator every participant sees while the meeting is
// recorded (`recording:started` / `recording:stopped`, also sent to late joiners), and
// the host's start/stop button (`recording-start` / `recording-stop`).
import { M } from "./state.js";
import { $, banner } from "./ui.js";
import { hostAction } from "./people.js";

/** Show what `M.recording` says: the indicator, and the host's button text. */
function show() {
  const on = !!M.recording;
  $("recording-indicator").hidden = !on;
  $("record-toggle").textContent = on ? "Stop recording" : "Start recording";
  $("record-toggle").classList.toggle("danger", on);
}

export function wireRecording(sio) {
  sio.on("recording:started", (ev) => {
    M.recording = { recordingId: ev.recordingId, startedAtMs: ev.startedAtMs };
    show();
  });
  sio.on("recording:stopped", (ev) => {
    M.recording = null;
    M.lastRecordingStop = { recordingId: ev.recordingId, reason: ev.reason };
    show();
    if (ev.reason === "disk-full") {
      banner("Recording stopped: the server's disk is full. The meeting goes on.", { kind: "info" });
    } else if (ev.reason === "write-error") {
      banner("Recording stopped: the server could not write the files. The meeting goes on.", { kind: "info" });
    }
  });
}

export function initRecording() {
  $("record-toggle").addEventListener("click", async () => {
    await hostAction(M.recording ? "recording-stop" : "recording-start", {});
  });
}

/** A new call starts with no recording shown (the server tells us if one runs). */
export function resetRecording() {
  M.recording = null;
  show();
}
