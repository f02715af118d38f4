// This page's role in the meeting (host, co-host, participant, viewer; docs/protocol.md
// "Grants and roles") and what it shows for it: the host controls for the host and
// co-hosts (ending the meeting for the host alone), no microphone, camera or screen
// buttons for a viewer. `participant:role-changed` (the host made someone co-host, or
// took it back) updates the list and, when it is this page, the controls.
import { M, moderates, publishes } from "./state.js";
import { $, banner } from "./ui.js";
import { byPeerOrUser, syncParticipants } from "./participants.js";
import { renderLobby } from "./lobby.js";
import { renderPeople } from "./people.js";
import { updateHostControls } from "./host.js";
import { invitedRole, updateInvites } from "./invite.js";
import { linkToken, tokenClaims } from "./identity.js";

/** The role this tab will join with, as far as the page can tell before joining: the
 * link's sign-in's grants, or the pending invite's role. */
export function plannedRole() {
  const link = linkToken();
  if (link) {
    const c = tokenClaims(link);
    return (c && c.grants && c.grants.role) || "participant";
  }
  return invitedRole() || "participant";
}

/** The pre-join view: a viewer is told so and offered no camera or microphone. */
export function preparePrejoin() {
  const viewer = plannedRole() === "viewer";
  for (const id of ["prejoin-audio", "prejoin-video"]) {
    $(id).closest("label").hidden = viewer;
    if (viewer) $(id).checked = false;
  }
  $("prejoin-viewer").hidden = !viewer;
}

/** Show what `role` may use. */
export function applyRole(role) {
  M.role = role || (M.isHost ? "host" : "participant");
  $("host-panel").hidden = !moderates();
  $("end-meeting").hidden = M.role !== "host";
  for (const id of ["toggle-mic", "toggle-camera", "toggle-screen"]) $(id).hidden = !publishes();
  renderLobby();
  updateHostControls();
  updateInvites();
}

export function wireRoles(sio) {
  sio.on("participant:role-changed", (ev) => {
    const p = ev && byPeerOrUser(ev);
    if (p) {
      p.role = ev.role;
      syncParticipants();
    }
    if (ev && ev.peerId === M.peerId) {
      applyRole(ev.role);
      banner(ev.role === "coHost" ? "The host made you a co-host." : "You are no longer a co-host.", { kind: "info" });
    }
    renderPeople();
  });
}
