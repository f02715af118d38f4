// The views before a call: the landing page (new meeting, join by code) at `/`, and the
// pre-join form at `/m/<code>`.
import { M } from "./state.js";
import { $, fail, show } from "./ui.js";
import { createMeeting, restError } from "./api.js";
import { ensureToken, linkToken, linkTokenRefused, renderIdentity, NAME_KEY } from "./identity.js";
import { join } from "./join.js";
import { startPreview } from "./devices.js";
import { preparePrejoin } from "./roles.js";

/** Show the view the address asks for. */
export function route() {
  const m = /^\/m\/([^/]+)\/?$/.exec(location.pathname);
  const name = localStorage.getItem(NAME_KEY) || "";
  if (m) {
    M.roomId = decodeURIComponent(m[1]);
    $("prejoin-code").textContent = M.roomId;
    $("prejoin-name").value = name;
    show("prejoin");
    renderIdentity("prejoin");
    // First: a viewer's pre-join asks for no camera or microphone preview.
    preparePrejoin();
    startPreview();
  } else {
    $("landing-name").value = name;
    show("landing");
    renderIdentity("landing");
  }
}

/** A meeting code, or the code in a pasted meeting link. */
function roomFromInput(text) {
  const t = (text || "").trim();
  const m = /\/m\/([^/?#]+)/.exec(t);
  return (m ? decodeURIComponent(m[1]) : t).toUpperCase();
}

async function newMeeting() {
  const name = $("landing-name").value.trim();
  if (name) localStorage.setItem(NAME_KEY, name);
  const title = $("landing-title").value.trim() || "Quick meeting";
  $("new-meeting").disabled = true;
  try {
    let token = await ensureToken(name);
    let res = await createMeeting(token, title);
    if (res.status === 401) {
      if (linkToken()) {
        fail("TOKEN_INVALID", linkTokenRefused("TOKEN_INVALID"));
        return;
      }
      token = await ensureToken(name, true); // a stale guest token: get a fresh one once
      res = await createMeeting(token, title);
    }
    const roomId = res.body.meeting && res.body.meeting.roomId;
    if (!res.ok || !roomId) {
      const err = restError(res.body);
      fail((err && err.code) || "HTTP", `Could not create the meeting: ${(err && err.message) || `HTTP ${res.status}`}`);
      return;
    }
    location.assign("/m/" + encodeURIComponent(roomId));
  } catch (e) {
    fail(e.code || "NETWORK", e.message);
  } finally {
    $("new-meeting").disabled = false;
  }
}

export function initRouting() {
  $("new-meeting").addEventListener("click", newMeeting);
  $("join-code-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const room = roomFromInput($("join-code").value);
    const name = $("landing-name").value.trim();
    if (name) localStorage.setItem(NAME_KEY, name);
    if (room) location.assign("/m/" + encodeURIComponent(room));
  });
  $("prejoin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("prejoin-name").value.trim();
    if (!name) return;
    localStorage.setItem(NAME_KEY, name);
    join(name, $("prejoin-audio").checked, $("prejoin-video").checked);
  });
  $("rejoin").addEventListener("click", () => location.reload());
}
