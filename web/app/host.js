// The host's meeting-wide controls (docs/protocol.md "host controls"): lock the meeting
// (no new joins) and mute everyone else. The server answers a host-only request from
// anybody else FORBIDDEN; the page shows these buttons to the host only.
import { M } from "./state.js";
import { $, banner } from "./ui.js";
import { hostAction } from "./people.js";

const locked = () => !!(M.meeting && M.meeting.settings && M.meeting.settings.lockRoom);

/** The lock button says what pressing it does, from the meeting as last announced. */
export function updateHostControls() {
  const b = $("lock-toggle");
  b.textContent = locked() ? "Unlock meeting" : "Lock meeting";
  b.setAttribute("aria-pressed", String(locked()));
}

export function initHost() {
  $("lock-toggle").addEventListener("click", async () => {
    const want = !locked();
    // `meeting:updated` brings the new settings to every page, this one included.
    if (await hostAction("host-lock", { locked: want })) banner(want ? "Meeting locked: nobody new can join." : "Meeting unlocked.", { kind: "info" });
  });
  $("mute-all").addEventListener("click", async () => {
    if (await hostAction("host-mute-all", { kind: "audio" })) banner("Everyone else is muted; they can unmute themselves.", { kind: "info" });
  });
}
