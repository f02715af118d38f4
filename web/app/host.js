// The host's meeting-wide controls (docs/protocol.md "host controls"): lock the meeting
// (no new joins) and mute everyone else. The server answers a host-only request from
// anybody else FORBIDDEN; the page shows these buttons to the host only. And what a
// participant's page does when the host asks it to unmute or stops its screen share.
import { M } from "./state.js";
import { $, banner } from "./ui.js";
import { hostAction } from "./people.js";
import { setAudio, setVideo, stopScreen } from "./controls.js";

const locked = () => !!(M.meeting && M.meeting.settings && M.meeting.settings.lockRoom);

/** The lock button says what pressing it does, from the meeting as last announced. */
export function updateHostControls() {
  const b = $("lock-toggle");
  b.textContent = locked() ? "Unlock meeting" : "Lock meeting";
  b.setAttribute("aria-pressed", String(locked()));
}

export function initHost() {
  initPrompts();
  $("lock-toggle").addEventListener("click", async () => {
    const want = !locked();
    // `meeting:updated` brings the new settings to every page, this one included.
    if (await hostAction("host-lock", { locked: want })) banner(want ? "Meeting locked: nobody new can join." : "Meeting unlocked.", { kind: "info" });
  });
  $("mute-all").addEventListener("click", async () => {
    if (await hostAction("host-mute-all", { kind: "audio" })) banner("Everyone else is muted; they can unmute themselves.", { kind: "info" });
  });
}

/** `control:ask-unmute`: a prompt; only the participant's click turns the device on. */
export function onAskUnmute(ev) {
  const kind = ev && ev.kind === "video" ? "video" : "audio";
  const box = $("ask-unmute");
  box.dataset.kind = kind;
  $("ask-unmute-text").textContent = `The host asks you to turn your ${kind === "audio" ? "microphone" : "camera"} on.`;
  box.hidden = false;
}

/** `control:stop-screen`: the server stopped forwarding it; stop capturing too. */
export function onStopScreen() {
  stopScreen(true).catch((e) => console.error("stop-screen", e));
  banner("The host stopped your screen share.", { kind: "info" });
}

export function initPrompts() {
  $("ask-unmute-accept").addEventListener("click", () => {
    const box = $("ask-unmute");
    box.hidden = true;
    if (box.dataset.kind === "video") setVideo(true);
    else setAudio(true);
  });
  $("ask-unmute-dismiss").addEventListener("click", () => {
    $("ask-unmute").hidden = true;
  });
}
