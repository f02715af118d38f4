// meeting-service web client: landing page, pre-join, meeting (SFU or mesh), done.
// Plain JS, no build step. The wire contract is docs/protocol.md.
//
// For tests the page exposes `window.__meeting` (state, error, participants, tiles, chat,
// mediaStats()); every control carries a data-testid.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "meeting.token";
  const NAME_KEY = "meeting.name";
  const ICE_HINTS = [
    "MEDIASOUP_ANNOUNCED_IP must be the server's LAN or public IP address, not 127.0.0.1.",
    "UDP ports 10000-10100 (MEDIASOUP_MIN_PORT-MEDIASOUP_MAX_PORT) must be open in the server's firewall; " +
      "open TCP on the same ports too, for clients whose network blocks UDP (ICE-TCP, MEDIASOUP_ENABLE_TCP).",
    "On networks that block UDP, configure a TURN server (TURN_SERVER_URL, TURN_USERNAME, TURN_CREDENTIAL).",
  ];
  const JOIN_ERRORS = {
    ROOM_FULL: "This meeting is full.",
    MEETING_ENDED: "This meeting has ended.",
    NOT_FOUND: "There is no meeting with this code.",
    ROOM_LOCKED: "This meeting is locked by its host.",
    TOKEN_MISSING: "You are not signed in.",
    TOKEN_INVALID: "Your sign-in token is not valid.",
    TOKEN_EXPIRED: "Your sign-in token has expired.",
  };

  // ---------------------------------------------------------------- state for tests
  const M = {
    state: "idle", // idle | joining | joined | left | ended | removed | replaced | error
    error: null, // { code, message }
    endedReason: null,
    topology: null,
    roomId: null,
    userId: null,
    peerId: null,
    isHost: false,
    meeting: null,
    participants: [], // remote and local, as the server describes them
    tiles: [], // [{ peerId, userId, source, local }]
    chat: [], // [{ userId, userName, message, timestamp }]
    notices: [],
    iceState: "new",
    audioEnabled: false,
    videoEnabled: false,
    screenSharing: false,
    // performance.now() marks of the last join, for the join-to-first-frame figure.
    timings: { joinEmit: null, joinAck: null, publishSent: null, publishAnswered: null, firstServerOffer: null, iceConnected: null, firstRemoteFrame: null },
    mediaStats: () => mediaStats(),
    // Test hook: a function returning a MediaStreamTrack used instead of getDisplayMedia
    // (set only by tests, when headless Chromium cannot capture a screen).
    screenTrackFactory: null,
  };
  window.__meeting = M;

  // ---------------------------------------------------------------- session
  let sio = null;
  let localStream = null; // microphone + camera
  let screenTrack = null;
  let pc = null; // SFU mode: the one peer connection
  let sfuTracks = []; // SFU mode: [{ mid, userId, peerId, source }] the server sends us
  let sfuChain = Promise.resolve(); // SFU offers handled one at a time
  const meshPeers = new Map(); // mesh mode: userId → { pc, peerId, userId, pending: [] }
  const participants = new Map(); // peerId → participant
  const tileEls = new Map(); // tile key → { el, video, audio, key }
  const pendingOwnChat = [];
  let iceTimer = null;
  let leaving = false;

  function setState(s) {
    M.state = s;
    document.body.dataset.state = s;
  }

  // ---------------------------------------------------------------- token
  function tokenClaims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
    } catch (_) {
      return null;
    }
  }

  function storedToken() {
    const t = localStorage.getItem(TOKEN_KEY);
    if (!t) return null;
    const c = tokenClaims(t);
    if (c && c.exp && c.exp * 1000 < Date.now() + 60000) {
      localStorage.removeItem(TOKEN_KEY);
      return null;
    }
    return t;
  }

  async function guestToken(name) {
    const res = await fetch("/api/auth/guest", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: name || "Guest" }),
    });
    const body = await res.json().catch(() => ({}));
    const token = body.token || (body.data && body.data.token) || body.accessToken;
    if (res.status === 404 || res.status === 405) {
      // Production servers have no guest sign-in: the embedding app passes ?token=.
      throw Object.assign(new Error("This server needs a sign-in token: open the meeting link from your app, or add ?token=<JWT> to it."), { code: "TOKEN_MISSING" });
    }
    if (!res.ok || !token) {
      const msg = (body.error && body.error.message) || `HTTP ${res.status}`;
      throw Object.assign(new Error(`Could not get a guest sign-in: ${msg}`), { code: "AUTH" });
    }
    localStorage.setItem(TOKEN_KEY, token);
    return token;
  }

  async function ensureToken(name, forceNew) {
    if (!forceNew) {
      const t = storedToken();
      if (t) return t;
    }
    return guestToken(name);
  }

  // ---------------------------------------------------------------- UI helpers
  function show(view) {
    for (const v of ["landing", "prejoin", "meeting", "done"]) $("view-" + v).hidden = v !== view;
    document.body.dataset.view = view;
  }

  let bannerTimer = null;

  function banner(text, opts) {
    const o = opts || {};
    $("banner").hidden = false;
    $("banner").className = "banner " + (o.kind || "error");
    $("banner-text").textContent = text;
    const hints = $("banner-hints");
    hints.textContent = "";
    hints.hidden = !o.hints;
    for (const h of o.hints || []) {
      const li = document.createElement("li");
      li.textContent = h;
      hints.appendChild(li);
    }
    M.notices.push(text);
    clearTimeout(bannerTimer);
    if (o.kind === "info") bannerTimer = setTimeout(hideBanner, 5000);
  }

  function hideBanner() {
    $("banner").hidden = true;
  }

  function fail(code, message, opts) {
    M.error = { code, message };
    banner(message, opts);
  }

  function done(state, title, text) {
    setState(state);
    teardownMedia();
    $("done-title").textContent = title;
    $("done-text").textContent = text;
    $("rejoin").hidden = !(state === "left" || state === "error" || state === "replaced");
    show("done");
  }

  function initials(name) {
    return (name || "?")
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, 2)
      .map((w) => w[0].toUpperCase())
      .join("");
  }

  // ---------------------------------------------------------------- routing
  function route() {
    const params = new URLSearchParams(location.search);
    const urlToken = params.get("token");
    if (urlToken) {
      localStorage.setItem(TOKEN_KEY, urlToken);
      params.delete("token");
      const q = params.toString();
      history.replaceState(null, "", location.pathname + (q ? "?" + q : ""));
    }
    const m = /^\/m\/([^/]+)\/?$/.exec(location.pathname);
    const name = localStorage.getItem(NAME_KEY) || "";
    if (m) {
      M.roomId = decodeURIComponent(m[1]);
      $("prejoin-code").textContent = M.roomId;
      $("prejoin-name").value = name;
      show("prejoin");
    } else {
      $("landing-name").value = name;
      show("landing");
    }
  }

  function roomFromInput(text) {
    const t = (text || "").trim();
    const m = /\/m\/([^/?#]+)/.exec(t);
    return (m ? decodeURIComponent(m[1]) : t).toUpperCase();
  }

  $("new-meeting").addEventListener("click", async () => {
    const name = $("landing-name").value.trim();
    if (name) localStorage.setItem(NAME_KEY, name);
    const title = $("landing-title").value.trim() || "Quick meeting";
    $("new-meeting").disabled = true;
    try {
      let token = await ensureToken(name);
      let res = await createMeeting(token, title);
      if (res.status === 401) {
        token = await ensureToken(name, true);
        res = await createMeeting(token, title);
      }
      const body = await res.json().catch(() => ({}));
      const roomId = body.meeting && body.meeting.roomId;
      if (!res.ok || !roomId) {
        const msg = (body.error && body.error.message) || `HTTP ${res.status}`;
        fail((body.error && body.error.code) || "HTTP", `Could not create the meeting: ${msg}`);
        return;
      }
      location.assign("/m/" + encodeURIComponent(roomId));
    } catch (e) {
      fail(e.code || "NETWORK", e.message);
    } finally {
      $("new-meeting").disabled = false;
    }
  });

  function createMeeting(token, title) {
    return fetch("/api/meetings/create", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + token },
      body: JSON.stringify({ title }),
    });
  }

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

  $("banner-close").addEventListener("click", hideBanner);
  $("rejoin").addEventListener("click", () => location.reload());

  // ---------------------------------------------------------------- joining
  async function getLocalMedia(wantAudio, wantVideo) {
    if (!wantAudio && !wantVideo) return { stream: new MediaStream(), problem: null };
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return { stream: new MediaStream(), problem: "This browser gives no access to camera and microphone (an insecure http:// page?)." };
    }
    const attempts = [
      { audio: wantAudio, video: wantVideo },
      wantAudio && wantVideo ? { audio: true, video: false } : null,
      wantAudio && wantVideo ? { audio: false, video: true } : null,
    ].filter(Boolean);
    let lastErr = null;
    for (const c of attempts) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia(c);
        const missing = [];
        if (wantAudio && !c.audio) missing.push("microphone");
        if (wantVideo && !c.video) missing.push("camera");
        return {
          stream,
          problem: missing.length ? `No access to your ${missing.join(" and ")} (${lastErr && lastErr.name}). You joined without it.` : null,
        };
      } catch (e) {
        lastErr = e;
      }
    }
    const why = lastErr && lastErr.name === "NotAllowedError" ? "access was denied" : (lastErr && lastErr.message) || "unavailable";
    return { stream: new MediaStream(), problem: `Camera and microphone: ${why}. You joined without them; others can still see your name.` };
  }

  async function connectSignaling(name) {
    let token = await ensureToken(name);
    for (let attempt = 0; attempt < 2; attempt++) {
      const client = new SioClient();
      try {
        await client.connect(location.origin, { token });
        return client;
      } catch (e) {
        const guest = attempt === 0 && (e.code === "TOKEN_EXPIRED" || e.code === "TOKEN_INVALID");
        if (!guest) throw e;
        token = await ensureToken(name, true); // a stale guest token: get a fresh one once
      }
    }
    throw new Error("unreachable");
  }

  async function join(name, wantAudio, wantVideo) {
    if (M.state === "joining" || M.state === "joined") return;
    setState("joining");
    M.error = null;
    hideBanner();
    $("join-button").disabled = true;
    try {
      const media = await getLocalMedia(wantAudio, wantVideo);
      localStream = media.stream;
      if (media.problem) banner(media.problem, { kind: "warn" });
      const audio = audioTrack();
      const video = videoTrack();
      M.audioEnabled = !!audio;
      M.videoEnabled = !!video;

      try {
        sio = await connectSignaling(name);
      } catch (e) {
        const text = JOIN_ERRORS[e.code] ? `${JOIN_ERRORS[e.code]} (${e.message})` : `Could not reach the meeting server: ${e.message}`;
        setState("error");
        fail(e.code || "CONNECT_FAILED", text);
        return;
      }
      wireEvents();
      M.timings.joinEmit = performance.now();
      const ack = await sio.emit("join-meeting", {
        roomId: M.roomId,
        userName: name,
        isVideoEnabled: M.videoEnabled,
        isAudioEnabled: M.audioEnabled,
      });
      M.timings.joinAck = performance.now();
      if (!ack || !ack.ok) {
        const err = (ack && ack.error) || { code: "INTERNAL", message: "no answer" };
        const lead = JOIN_ERRORS[err.code] || "Could not join the meeting.";
        M.error = err;
        sio.close();
        sio = null;
        done("error", lead, err.message || lead);
        banner(`${lead} ${err.message || ""}`.trim());
        return;
      }
      const d = ack.data;
      M.userId = d.userId;
      M.peerId = d.peerId;
      M.isHost = !!d.isHost;
      M.topology = d.topology === "mesh" ? "mesh" : "sfu";
      M.meeting = d.meeting || null;
      setState("joined");
      show("meeting");
      $("meeting-info").hidden = false;
      $("meeting-title").textContent = (d.meeting && d.meeting.title) || "Meeting";
      $("meeting-code").textContent = M.roomId;
      $("topology").textContent = M.topology === "mesh" ? "peer-to-peer" : "via server";
      $("host-panel").hidden = !M.isHost;
      upsertParticipant({
        userId: d.userId,
        peerId: d.peerId,
        userName: name,
        isHost: M.isHost,
        audioEnabled: M.audioEnabled,
        videoEnabled: M.videoEnabled,
        screenSharing: false,
        local: true,
      });
      for (const p of d.participants || []) upsertParticipant(p);
      updateControls();
      render();
      const iceServers = d.iceServers || [];
      if (M.topology === "sfu") {
        // Server offers wait until the publishing offer is answered: no glare.
        sfuChain = startSfu(iceServers);
        await sfuChain;
      } else {
        startMesh(iceServers);
      }
    } catch (e) {
      setState("error");
      fail(e.code || "INTERNAL", `Joining failed: ${e.message}`);
    } finally {
      $("join-button").disabled = false;
    }
  }

  // The node that carried this meeting's media died (a cluster of servers): join again,
  // and the meeting's media opens on a live node.
  async function rejoin() {
    const me = participants.get(M.peerId);
    const name = (me && me.userName) || $("prejoin-name").value || "Guest";
    // Ask for the devices this page had (muted or not) and restore the mute state after.
    const wantAudio = !!audioTrack();
    const wantVideo = !!videoTrack();
    const wasAudioOn = M.audioEnabled;
    const wasVideoOn = M.videoEnabled;
    leaving = true;
    teardownMedia();
    participants.clear();
    leaving = false;
    M.rejoins = (M.rejoins || 0) + 1;
    setState("idle");
    await join(name, wantAudio, wantVideo);
    if (M.state === "joined") {
      if (wantAudio && !wasAudioOn) setAudio(false);
      if (wantVideo && !wasVideoOn) setVideo(false);
      banner("The media server changed; you are back in the meeting.", { kind: "info" });
    }
  }

  function audioTrack() {
    return localStream ? localStream.getAudioTracks()[0] || null : null;
  }

  function videoTrack() {
    return localStream ? localStream.getVideoTracks()[0] || null : null;
  }

  // ---------------------------------------------------------------- participants
  function upsertParticipant(p) {
    if (!p || !p.peerId) return;
    // A second connection of the same user replaces the first.
    for (const [pid, q] of participants) {
      if (q.userId === p.userId && pid !== p.peerId && !q.local && !p.local) participants.delete(pid);
    }
    const prev = participants.get(p.peerId) || {};
    participants.set(p.peerId, Object.assign({}, prev, p, { local: p.local || p.peerId === M.peerId }));
    syncParticipants();
  }

  function syncParticipants() {
    M.participants = [...participants.values()].map((p) => ({
      peerId: p.peerId,
      userId: p.userId,
      userName: p.userName,
      isHost: !!p.isHost,
      audioEnabled: p.audioEnabled !== false,
      videoEnabled: p.videoEnabled !== false,
      screenSharing: !!p.screenSharing,
      local: !!p.local,
    }));
  }

  function byPeerOrUser(ev) {
    if (ev.peerId && participants.has(ev.peerId)) return participants.get(ev.peerId);
    for (const p of participants.values()) if (p.userId === ev.userId) return p;
    return null;
  }

  function setFlag(ev, key, value) {
    const p = byPeerOrUser(ev);
    if (!p) return;
    p[key] = value;
    syncParticipants();
    render();
  }

  function wireEvents() {
    sio.on("participant-joined", (p) => {
      if (p.peerId === M.peerId) return;
      upsertParticipant(p);
      render();
    });
    sio.on("participant-left", (ev) => {
      const p = byPeerOrUser(ev);
      if (!p || p.local) return;
      participants.delete(p.peerId);
      syncParticipants();
      if (M.topology === "mesh") closeMeshPeer(p.userId, p.peerId);
      render();
    });
    sio.on("participant-audio-changed", (ev) => setFlag(ev, "audioEnabled", !!ev.isEnabled));
    sio.on("participant-video-changed", (ev) => setFlag(ev, "videoEnabled", !!ev.isEnabled));
    sio.on("participant-screen-share-changed", (ev) => setFlag(ev, "screenSharing", !!ev.isSharing));
    sio.on("screen:started", (ev) => setFlag(ev, "screenSharing", true));
    sio.on("screen:stopped", (ev) => setFlag(ev, "screenSharing", false));
    sio.on("meeting-chat-message", onChat);
    sio.on("meeting:ended", (ev) => {
      M.endedReason = (ev && ev.reason) || "ended";
      const text = M.endedReason === "host-ended" ? "The host ended the meeting for everyone." : "The meeting has ended.";
      leaving = true;
      done("ended", "Meeting ended", text);
    });
    sio.on("control:removed", () => {
      leaving = true;
      done("removed", "You were removed", "The host removed you from the meeting.");
    });
    sio.on("meeting:replaced", () => {
      leaving = true;
      done("replaced", "Joined elsewhere", "You joined this meeting from another window, so this one was disconnected.");
    });
    sio.on("meeting:rejoin", () => {
      rejoin().catch((e) => console.error("rejoin", e));
    });
    sio.on("control:mute", (ev) => {
      const kind = ev && ev.kind === "video" ? "video" : "audio";
      if (kind === "audio") setAudio(false);
      else setVideo(false);
      banner(`The host turned off your ${kind === "audio" ? "microphone" : "camera"}.`, { kind: "info" });
    });
    sio.on("meeting-error", (ev) => {
      const e = (ev && ev.error) || {};
      fail(e.code || "ERROR", `Meeting error: ${e.message || e.code}`);
    });
    sio.on("peer-connection-error", (ev) => {
      const e = (ev && ev.error) || {};
      M.notices.push(`peer-connection-error ${e.code}: ${e.message}`);
    });
    sio.on("sfu-offer", (offer) => {
      sfuChain = sfuChain.then(() => onServerOffer(offer)).catch((e) => console.error("sfu-offer", e));
    });
    sio.on("webrtc-offer", (ev) => onMeshOffer(ev).catch((e) => console.error("webrtc-offer", e)));
    sio.on("webrtc-answer", (ev) => onMeshAnswer(ev).catch((e) => console.error("webrtc-answer", e)));
    sio.on("ice-candidate", (ev) => onMeshCandidate(ev).catch((e) => console.error("ice-candidate", e)));
    sio.on("disconnect", (reason) => {
      if (leaving || M.state !== "joined") return;
      setState("error");
      fail("DISCONNECTED", `Lost the connection to the meeting server (${reason}). Reload the page to rejoin.`);
      teardownMedia();
    });
  }

  // ---------------------------------------------------------------- SFU mode
  async function startSfu(iceServers) {
    pc = new RTCPeerConnection({ iceServers });
    watchIce(pc, null);
    pc.ontrack = () => render();
    const stream = localStream;
    const a = audioTrack();
    const v = videoTrack();
    const tA = pc.addTransceiver(a || "audio", { direction: "sendonly", streams: a ? [stream] : [] });
    const tV = pc.addTransceiver(v || "video", { direction: "sendonly", streams: v ? [stream] : [] });
    const tS = pc.addTransceiver("video", { direction: "sendonly" });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    // The server is ICE-lite and learns our address from our checks, but a candidate in
    // the offer costs nothing: wait briefly for the first one.
    await firstCandidate(pc, 1000);
    const sources = {};
    sources[tA.mid] = "microphone";
    sources[tV.mid] = "camera";
    sources[tS.mid] = "screen";
    M.sfuMids = { microphone: tA.mid, camera: tV.mid, screen: tS.mid };
    M.timings.publishSent = performance.now();
    const ack = await sio.emit("sfu-offer", { roomId: M.roomId, sdp: pc.localDescription.sdp, sources }, 20000);
    if (!ack || !ack.ok) {
      const e = (ack && ack.error) || { code: "SFU_ERROR", message: "no answer" };
      fail(e.code, `The media server refused the connection: ${e.message}`, { hints: ICE_HINTS });
      return;
    }
    await pc.setRemoteDescription({ type: "answer", sdp: ack.data.sdp });
    M.timings.publishAnswered = performance.now();
    sfuTracks = ack.data.tracks || [];
    render();
  }

  async function onServerOffer(offer) {
    if (!pc || !offer || typeof offer.sdp !== "string" || pc.signalingState === "closed") return;
    if (M.timings.firstServerOffer == null) M.timings.firstServerOffer = performance.now();
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    sfuTracks = offer.tracks || [];
    render();
    const ack = await sio.emit("sfu-answer", { roomId: M.roomId, offerId: offer.offerId, sdp: pc.localDescription.sdp });
    if (ack && !ack.ok && !(ack.error && ack.error.code === "SFU_ERROR")) {
      M.notices.push(`sfu-answer: ${ack.error && ack.error.message}`);
    }
  }

  function firstCandidate(conn, timeoutMs) {
    if (conn.iceGatheringState === "complete" || /a=candidate/.test((conn.localDescription || {}).sdp || "")) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      const finish = () => {
        clearTimeout(t);
        resolve();
      };
      conn.addEventListener("icecandidate", finish);
      conn.addEventListener("icegatheringstatechange", () => {
        if (conn.iceGatheringState === "complete") finish();
      });
    });
  }

  function watchIce(conn, label) {
    const onChange = () => {
      const s = conn.iceConnectionState;
      M.iceState = label ? `${label}:${s}` : s;
      if (s === "failed") {
        clearTimeout(iceTimer);
        iceFailed(label);
      } else if (s === "disconnected") {
        clearTimeout(iceTimer);
        iceTimer = setTimeout(() => {
          if (conn.iceConnectionState === "disconnected") iceFailed(label, true);
        }, 5000);
      } else if (s === "connected" || s === "completed") {
        clearTimeout(iceTimer);
        if (M.timings.iceConnected == null) M.timings.iceConnected = performance.now();
        if (M.error && M.error.code === "ICE_FAILED") {
          M.error = null;
          hideBanner();
        }
      }
    };
    conn.addEventListener("iceconnectionstatechange", onChange);
    // A connection that never comes up is a failure too (no ICE state change at all
    // happens when no candidate pair can even be tried).
    setTimeout(() => {
      if (M.state === "joined" && conn.connectionState !== "closed" && !["connected", "completed"].includes(conn.iceConnectionState)) {
        iceFailed(label);
      }
    }, 15000);
  }

  function iceFailed(label, stalled) {
    if (M.state !== "joined") return;
    const who = label ? ` with ${label}` : " to the media server";
    const what = stalled ? "was interrupted" : "failed";
    fail("ICE_FAILED", `The media connection${who} ${what}. Audio and video cannot flow. If you run this server:`, { hints: ICE_HINTS });
  }

  // ---------------------------------------------------------------- mesh mode
  let meshIceServers = [];

  function startMesh(iceServers) {
    meshIceServers = iceServers;
    // The newcomer offers to everybody already there.
    for (const p of participants.values()) {
      if (!p.local) offerTo(p).catch((e) => console.error("mesh offer", e));
    }
  }

  function newMeshPeer(userId, peerId) {
    closeMeshPeer(userId);
    const conn = new RTCPeerConnection({ iceServers: meshIceServers });
    const peer = { pc: conn, userId, peerId, pending: [], transceivers: null };
    meshPeers.set(userId, peer);
    const p = participants.get(peerId);
    watchIce(conn, (p && p.userName) || userId);
    conn.onicecandidate = (ev) => {
      if (ev.candidate && sio) {
        sio.emit("ice-candidate", { roomId: M.roomId, targetUserId: userId, candidate: ev.candidate.toJSON() }).catch(() => {});
      }
    };
    conn.ontrack = () => render();
    conn.addEventListener("connectionstatechange", () => render());
    return peer;
  }

  // Three transceivers in a fixed order in both directions: audio, camera, screen.
  function attachLocal(peer, transceivers) {
    const tracks = [audioTrack(), videoTrack(), screenTrack];
    transceivers.forEach((t, i) => {
      t.direction = "sendrecv";
      if (tracks[i]) t.sender.replaceTrack(tracks[i]);
      if (localStream && i < 2 && tracks[i]) t.sender.setStreams(localStream);
    });
    peer.transceivers = transceivers;
    render();
  }

  async function offerTo(p) {
    const peer = newMeshPeer(p.userId, p.peerId);
    const conn = peer.pc;
    attachLocal(peer, [
      conn.addTransceiver("audio", { direction: "sendrecv" }),
      conn.addTransceiver("video", { direction: "sendrecv" }),
      conn.addTransceiver("video", { direction: "sendrecv" }),
    ]);
    const offer = await conn.createOffer();
    await conn.setLocalDescription(offer);
    const ack = await sio.emit("webrtc-offer", { roomId: M.roomId, targetUserId: p.userId, offer: { type: offer.type, sdp: offer.sdp } });
    if (ack && ack.ok === false) M.notices.push(`webrtc-offer to ${p.userId}: ${ack.error && ack.error.code}`);
  }

  async function onMeshOffer(ev) {
    if (M.topology !== "mesh" || !ev || !ev.offer) return;
    const peer = newMeshPeer(ev.fromUserId, ev.fromPeerId);
    const conn = peer.pc;
    await conn.setRemoteDescription(ev.offer);
    attachLocal(peer, conn.getTransceivers().slice(0, 3));
    const answer = await conn.createAnswer();
    await conn.setLocalDescription(answer);
    await flushCandidates(peer);
    await sio.emit("webrtc-answer", { roomId: M.roomId, targetUserId: ev.fromUserId, answer: { type: answer.type, sdp: answer.sdp } });
  }

  async function onMeshAnswer(ev) {
    const peer = ev && meshPeers.get(ev.fromUserId);
    if (!peer || !ev.answer) return;
    await peer.pc.setRemoteDescription(ev.answer);
    await flushCandidates(peer);
  }

  async function onMeshCandidate(ev) {
    if (!ev || !ev.candidate) return;
    const peer = meshPeers.get(ev.fromUserId);
    if (!peer) return;
    if (!peer.pc.remoteDescription) {
      if (peer.pending.length < 200) peer.pending.push(ev.candidate);
      return;
    }
    await peer.pc.addIceCandidate(ev.candidate).catch(() => {});
  }

  async function flushCandidates(peer) {
    const list = peer.pending.splice(0);
    for (const c of list) await peer.pc.addIceCandidate(c).catch(() => {});
  }

  function closeMeshPeer(userId, peerId) {
    const peer = meshPeers.get(userId);
    if (!peer || (peerId && peer.peerId !== peerId)) return;
    meshPeers.delete(userId);
    peer.pc.close();
  }

  // ---------------------------------------------------------------- remote media map
  // Every remote track the page receives: { peerId, userId, source, kind, track, receiver }.
  function remoteTracks() {
    const out = [];
    if (M.topology === "sfu" && pc) {
      const byMid = new Map(sfuTracks.map((t) => [t.mid, t]));
      for (const tr of pc.getTransceivers()) {
        const info = tr.mid != null ? byMid.get(tr.mid) : null;
        if (!info || tr.currentDirection === "inactive" || tr.currentDirection === "stopped") continue;
        out.push({ peerId: info.peerId, userId: info.userId, source: info.source, kind: tr.receiver.track.kind, track: tr.receiver.track, mid: tr.mid, pc });
      }
    } else if (M.topology === "mesh") {
      const sources = ["microphone", "camera", "screen"];
      for (const peer of meshPeers.values()) {
        if (!peer.transceivers || peer.pc.connectionState === "closed") continue;
        peer.transceivers.forEach((tr, i) => {
          out.push({ peerId: peer.peerId, userId: peer.userId, source: sources[i], kind: tr.receiver.track.kind, track: tr.receiver.track, mid: tr.mid, pc: peer.pc });
        });
      }
    }
    return out;
  }

  async function mediaStats() {
    const tracks = remoteTracks();
    const result = [];
    const byPc = new Map();
    for (const t of tracks) {
      if (!byPc.has(t.pc)) byPc.set(t.pc, []);
      byPc.get(t.pc).push(t);
    }
    for (const [conn, list] of byPc) {
      let report;
      try {
        report = await conn.getStats();
      } catch (_) {
        continue;
      }
      const entries = new Map();
      for (const t of list) entries.set(t.mid, { peerId: t.peerId, userId: t.userId, source: t.source, kind: t.kind, framesDecoded: 0, bytesReceived: 0, packetsReceived: 0 });
      const byTrackId = new Map(list.map((t) => [t.track.id, t.mid]));
      report.forEach((s) => {
        if (s.type !== "inbound-rtp") return;
        const mid = s.mid != null ? s.mid : byTrackId.get(s.trackIdentifier);
        const e = entries.get(mid);
        if (!e) return;
        e.framesDecoded += s.framesDecoded || 0;
        e.bytesReceived += s.bytesReceived || 0;
        e.packetsReceived += s.packetsReceived || 0;
      });
      result.push(...entries.values());
    }
    return result;
  }

  // ---------------------------------------------------------------- rendering
  function tileList() {
    const tiles = [];
    const remote = remoteTracks();
    for (const p of participants.values()) {
      if (p.local) {
        tiles.push({ key: p.peerId + ":camera", peerId: p.peerId, userId: p.userId, source: "camera", local: true, p, video: videoTrack(), audio: null });
        if (screenTrack) tiles.push({ key: p.peerId + ":screen", peerId: p.peerId, userId: p.userId, source: "screen", local: true, p, video: screenTrack, audio: null });
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

  function render() {
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

  function layoutGrid(n) {
    const narrow = window.innerWidth < 700;
    const cols = narrow ? (n <= 2 ? 1 : 2) : n <= 1 ? 1 : n <= 4 ? 2 : n <= 9 ? 3 : 4;
    $("grid").style.setProperty("--cols", String(cols));
    $("grid").dataset.count = String(n);
  }

  window.addEventListener("resize", () => layoutGrid(tileEls.size));

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

  function renderPeople() {
    const ul = $("people");
    ul.textContent = "";
    $("people-count").textContent = `(${participants.size})`;
    for (const p of participants.values()) {
      const li = document.createElement("li");
      li.dataset.testid = "participant";
      li.dataset.peerId = p.peerId;
      li.dataset.userId = p.userId;
      const name = document.createElement("span");
      name.className = "pname";
      name.textContent = (p.userName || p.userId) + (p.local ? " (you)" : "") + (p.isHost ? " · host" : "");
      const flags = document.createElement("span");
      flags.className = "pflags";
      flags.textContent = [p.audioEnabled === false ? "mic off" : "", p.videoEnabled === false ? "camera off" : "", p.screenSharing ? "sharing" : ""].filter(Boolean).join(", ");
      li.append(name, flags);
      if (M.isHost && !p.local) {
        li.append(
          hostButton("Mute", "host-mute", () => hostAction("host-mute", { targetUserId: p.userId, kind: "audio" })),
          hostButton("Stop video", "host-mute-video", () => hostAction("host-mute", { targetUserId: p.userId, kind: "video" })),
          hostButton("Remove", "host-remove", () => hostAction("host-remove", { targetUserId: p.userId })),
        );
      }
      ul.appendChild(li);
    }
  }

  function hostButton(text, testid, fn) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn small";
    b.textContent = text;
    b.dataset.testid = testid;
    b.addEventListener("click", fn);
    return b;
  }

  async function hostAction(event, payload) {
    try {
      const ack = await sio.emit(event, Object.assign({ roomId: M.roomId }, payload));
      if (!ack.ok) fail(ack.error.code, `${event} refused: ${ack.error.message}`);
    } catch (e) {
      fail(e.code || "ERROR", `${event} failed: ${e.message}`);
    }
  }

  // ---------------------------------------------------------------- chat
  function onChat(m) {
    if (!m || typeof m.message !== "string") return;
    if (m.userId === M.userId) {
      const i = pendingOwnChat.findIndex((x) => x.message === m.message);
      if (i >= 0) {
        const own = pendingOwnChat[i];
        pendingOwnChat.splice(i, 1);
        if (own.shown) return; // already shown when the ack came first
      }
    }
    addChat(m);
  }

  function addChat(m) {
    M.chat.push({ userId: m.userId, userName: m.userName, message: m.message, timestamp: m.timestamp });
    const li = document.createElement("li");
    li.dataset.testid = "chat-message";
    const who = document.createElement("b");
    who.textContent = (m.userId === M.userId ? "You" : m.userName || m.userId) + ": ";
    const text = document.createElement("span");
    text.textContent = m.message;
    li.append(who, text);
    $("chat-messages").appendChild(li);
    $("chat-messages").scrollTop = 1e9;
    if ($("panel-chat").hidden || $("side").hidden) {
      const badge = $("chat-unread");
      badge.hidden = false;
      badge.textContent = String((parseInt(badge.textContent, 10) || 0) + 1);
    }
  }

  $("chat-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("chat-input");
    const message = input.value.trim();
    if (!message || !sio) return;
    input.value = "";
    const own = { message, shown: false };
    pendingOwnChat.push(own);
    try {
      const ack = await sio.emit("meeting-chat-message", { roomId: M.roomId, message });
      if (!ack.ok) {
        pendingOwnChat.splice(pendingOwnChat.indexOf(own), 1);
        fail(ack.error.code, `Message not sent: ${ack.error.message}`);
        return;
      }
      if (pendingOwnChat.includes(own)) {
        // The ack came before (or instead of) the echo: show it now, drop the echo later.
        own.shown = true;
        const me = participants.get(M.peerId) || {};
        addChat({ userId: M.userId, userName: me.userName, message, timestamp: ack.data && ack.data.timestamp });
        setTimeout(() => {
          const i = pendingOwnChat.indexOf(own);
          if (i >= 0) pendingOwnChat.splice(i, 1);
        }, 10000);
      }
    } catch (e) {
      fail(e.code || "ERROR", `Message not sent: ${e.message}`);
    }
  });

  // ---------------------------------------------------------------- controls
  function updateControls() {
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

  function setAudio(on) {
    const a = audioTrack();
    if (!a) return;
    a.enabled = on;
    M.audioEnabled = on;
    const me = participants.get(M.peerId);
    if (me) me.audioEnabled = on;
    syncParticipants();
    updateControls();
    render();
    if (sio) sio.emit("toggle-audio", { roomId: M.roomId, isEnabled: on }).catch(() => {});
  }

  function setVideo(on) {
    const v = videoTrack();
    if (!v) return;
    v.enabled = on;
    M.videoEnabled = on;
    const me = participants.get(M.peerId);
    if (me) me.videoEnabled = on;
    syncParticipants();
    updateControls();
    render();
    if (sio) sio.emit("toggle-video", { roomId: M.roomId, isEnabled: on }).catch(() => {});
  }

  $("toggle-mic").addEventListener("click", () => setAudio(!M.audioEnabled));
  $("toggle-camera").addEventListener("click", () => setVideo(!M.videoEnabled));
  $("toggle-screen").addEventListener("click", () => (M.screenSharing ? stopScreen() : startScreen()));

  function screenSenders() {
    if (M.topology === "sfu") {
      const mid = M.sfuMids && M.sfuMids.screen;
      const t = pc && pc.getTransceivers().find((x) => x.mid === mid);
      return t ? [t.sender] : [];
    }
    return [...meshPeers.values()].filter((p) => p.transceivers).map((p) => p.transceivers[2].sender);
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
    screenTrack = track;
    track.addEventListener("ended", () => stopScreen());
    for (const s of screenSenders()) await s.replaceTrack(track);
    M.screenSharing = true;
    const me = participants.get(M.peerId);
    if (me) me.screenSharing = true;
    syncParticipants();
    updateControls();
    render();
    const ack = await sio.emit("toggle-screen-share", { roomId: M.roomId, isSharing: true }).catch((e) => ({ ok: false, error: { code: "ERROR", message: e.message } }));
    if (!ack.ok) {
      fail(ack.error.code, `Screen sharing refused: ${ack.error.message}`);
      await stopScreen(true);
    }
  }

  async function stopScreen(silent) {
    if (!screenTrack) return;
    const track = screenTrack;
    screenTrack = null;
    M.screenSharing = false;
    const me = participants.get(M.peerId);
    if (me) me.screenSharing = false;
    if (!silent && sio) await sio.emit("toggle-screen-share", { roomId: M.roomId, isSharing: false }).catch(() => {});
    for (const s of screenSenders()) await s.replaceTrack(null).catch(() => {});
    track.stop();
    syncParticipants();
    updateControls();
    render();
  }

  function openSide(panel) {
    const side = $("side");
    const same = !side.hidden && !$("panel-" + panel).hidden;
    side.hidden = same;
    $("panel-people").hidden = panel !== "people";
    $("panel-chat").hidden = panel !== "chat";
    $("tab-people").classList.toggle("active", panel === "people");
    $("tab-chat").classList.toggle("active", panel === "chat");
    if (panel === "chat" && !side.hidden) {
      $("chat-unread").hidden = true;
      $("chat-unread").textContent = "";
      $("chat-input").focus();
    }
  }

  $("toggle-people").addEventListener("click", () => openSide("people"));
  $("toggle-chat").addEventListener("click", () => openSide("chat"));
  $("tab-people").addEventListener("click", () => openSide("people"));
  $("tab-chat").addEventListener("click", () => openSide("chat"));

  $("copy-link").addEventListener("click", async () => {
    const link = location.origin + "/m/" + encodeURIComponent(M.roomId);
    M.copiedLink = link;
    try {
      await navigator.clipboard.writeText(link);
      banner(`Link copied: ${link}`, { kind: "info" });
    } catch (_) {
      banner(`Share this link: ${link}`, { kind: "info" });
    }
  });

  $("leave").addEventListener("click", async () => {
    leaving = true;
    if (sio) {
      await sio.emit("leave-meeting", { roomId: M.roomId }, 3000).catch(() => {});
    }
    done("left", "You left the meeting", "");
  });

  $("end-meeting").addEventListener("click", () => {
    $("end-meeting").hidden = true;
    $("end-meeting-confirm").hidden = false;
  });

  $("end-meeting-confirm").addEventListener("click", async () => {
    $("end-meeting-confirm").hidden = true;
    $("end-meeting").hidden = false;
    await hostAction("end-meeting", {});
  });

  function teardownMedia() {
    clearTimeout(iceTimer);
    if (pc) pc.close();
    pc = null;
    for (const userId of [...meshPeers.keys()]) closeMeshPeer(userId);
    if (localStream) for (const t of localStream.getTracks()) t.stop();
    if (screenTrack) screenTrack.stop();
    screenTrack = null;
    for (const [, t] of tileEls) t.el.remove();
    tileEls.clear();
    M.tiles = [];
    if (sio) {
      sio.close();
      sio = null;
    }
  }

  window.addEventListener("pagehide", () => {
    leaving = true;
    if (sio) sio.close();
  });

  route();
})();
