// The end of a call: close every connection and device, and show why it ended.
import { session, setState } from "./state.js";
import { $, show } from "./ui.js";
import { stopIceTimer } from "./ice.js";
import { closeAllMeshPeers } from "./mesh.js";
import { clearTiles } from "./tiles.js";
import { stopDevices } from "./devices.js";
import { stopQuality } from "./quality.js";
import { resetLayout } from "./layout.js";

/** Close the peer connections, stop the devices, drop the tiles, close the socket. */
export function teardownMedia() {
  stopIceTimer();
  if (session.pc) session.pc.close();
  session.pc = null;
  closeAllMeshPeers();
  if (session.localStream) for (const t of session.localStream.getTracks()) t.stop();
  stopDevices();
  stopQuality();
  resetLayout();
  if (session.screenTrack) session.screenTrack.stop();
  session.screenTrack = null;
  clearTiles();
  if (session.sio) {
    session.sio.close();
    session.sio = null;
  }
}

/** End the call in `state` (left, ended, removed, replaced, error) and say why. */
export function done(state, title, text) {
  setState(state);
  teardownMedia();
  $("done-title").textContent = title;
  $("done-text").textContent = text;
  $("rejoin").hidden = !(state === "left" || state === "error" || state === "replaced");
  show("done");
}
