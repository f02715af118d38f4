// meeting-service web client: landing page, pre-join, meeting (SFU or mesh), done.
// Native ES modules, no build step; the wire contract is docs/protocol.md. /assets/sio.js
// (a classic script, also loaded by the Node tests) provides window.SioClient.
//
// For tests the page exposes `window.__meeting` (state.js); every control carries a
// data-testid. Modules, from the bottom up:
//   state.js         window.__meeting and the live call's connections
//   ui.js            element lookup, views, the banner
//   api.js           REST calls
//   identity.js      sign-in: the saved token, a link's ?token= (this tab only), guest tokens
//   invite.js        invite links: a guest's ?invite= (redeemed at join), the Invite panel
//   roles.js         this page's role: host controls for host and co-hosts, none for viewers
//   participants.js  the participant list
//   local-media.js   camera and microphone
//   remote-media.js  the received tracks and their stats
//   ice.js           ICE state → user-facing failure and hints
//   people.js        the People panel and host actions
//   tiles.js         the video grid
//   sfu.js, mesh.js  the two media topologies
//   lifecycle.js     ending a call
//   layout.js        grid or speaker view, the pinned tile, the active speaker
//   controls.js      mic, camera, screen share, panels, leave, end-for-everyone
//   devices.js       device choice, the pre-join preview and level meter, replaceTrack
//   quality.js       each participant's connection quality (getStats)
//   activity.js      raised hands, reactions, join/leave notices
//   keyboard.js      keyboard shortcuts and their help dialog
//   chat.js          chat, its history and unread count
//   recording.js     the "Recording" indicator and the host's start/stop
//   events.js        the server's Socket.IO events
//   join.js          joining (and rejoining after a media node died)
//   reconnect.js     resuming the call on a new socket after the signaling dropped
//   routing.js       landing and pre-join views
import { M, session } from "./state.js";
import { initBanner } from "./ui.js";
import { takeLinkToken } from "./identity.js";
import { takeInvite, initInvites } from "./invite.js";
import { mediaStats } from "./remote-media.js";
import { initTiles } from "./tiles.js";
import { initChat } from "./chat.js";
import { initControls } from "./controls.js";
import { initRecording } from "./recording.js";
import { initLobby } from "./lobby.js";
import { initHost } from "./host.js";
import { initDevices } from "./devices.js";
import { initActivity } from "./activity.js";
import { initKeyboard } from "./keyboard.js";
import { route, initRouting } from "./routing.js";

// First, before anything can copy or send the address: a link's token leaves it.
takeLinkToken();
takeInvite();

M.mediaStats = mediaStats;
initBanner();
initTiles();
initChat();
initControls();
initRecording();
initLobby();
initHost();
initDevices();
initActivity();
initKeyboard();
initInvites();
initRouting();

window.addEventListener("pagehide", () => {
  session.leaving = true;
  if (session.sio) session.sio.close();
});

route();
