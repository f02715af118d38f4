// The lobby of a meeting that requires approval (`settings.requireApproval`):
// - a guest who joins waits: the page says so, with its name and camera preview; the
//   host's page lists it; while it waits it receives no media (getStats: no inbound
//   RTP, no peer connection), no chat and no participant list, and its own requests
//   about the meeting are refused by the server;
// - admitted, it gets in and media flows both ways;
// - denied, it is told and is not in the meeting.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const WebSocket = require("ws");
const h = require("./lib/harness");
const { trackPeerConnections } = require("./lib/ice");
const SioClient = require(path.join(h.REPO, "web", "sio.js"));

const skip = h.skipReason();

/** What a waiting page has of the meeting: peer connections' inbound RTP, chat, people. */
const waitingView = (page) =>
  page.evaluate(async () => {
    const m = window.__meeting;
    return {
      state: m.state,
      participants: m.participants.filter((p) => !p.local).length,
      chat: m.chat.length,
      chatDom: document.querySelectorAll("#chat-messages li").length,
      tiles: m.tiles.length,
      inbound: (await m.mediaStats()).length,
      // Every peer connection the page made (lib/ice.js), and what getStats says each received.
      pcs: (window.__pcs || []).length,
      inboundRtp: await (async () => {
        let n = 0;
        for (const pc of window.__pcs || []) {
          const stats = await pc.getStats();
          stats.forEach((r) => {
            if (r.type === "inbound-rtp" && r.bytesReceived > 0) n++;
          });
        }
        return n;
      })(),
      lobbyShown: !document.getElementById("view-lobby").hidden,
      name: document.querySelector("[data-testid=lobby-name]").textContent,
      preview: (() => {
        const v = document.querySelector("[data-testid=lobby-preview]");
        return !v.hidden && !!v.srcObject && v.srcObject.getVideoTracks().length > 0 && v.videoWidth > 0;
      })(),
    };
  });

describe("the lobby", { skip: skip || false }, () => {
  let server;
  let browser;
  const pages = {};

  before(async () => {
    server = await h.startServer({ sfu: true });
    browser = await h.launchBrowser();
  });

  after(async () => {
    await h.teardown({ pages, browser, server });
  });

  it("a waiting guest gets nothing of the meeting until the host admits it, then gets in", async () => {
    const hostToken = await h.guestToken(server, "Hana");
    const roomId = await h.createMeeting(server, hostToken, { settings: { requireApproval: true } });
    const host = (pages.host = await h.newPage(browser, server));
    await h.joinMeeting(host, roomId, "Hana", { token: hostToken });

    const guest = (pages.guest = await h.newPage(browser, server));
    await guest.addInitScript(trackPeerConnections());
    assert.equal(await h.joinMeeting(guest, roomId, "Gus", { expect: "waiting" }), "waiting");

    // The host's page lists who waits.
    await h.waitFor(() => host.getByTestId("lobby-entry").count().then((n) => n === 1), { what: "the host to see Gus waiting" });
    assert.match(await host.getByTestId("lobby-entry").first().textContent(), /Gus/);

    // While Gus waits, the host talks in chat and sends media: none of it reaches Gus.
    await host.getByTestId("toggle-chat").click();
    await host.getByTestId("chat-input").fill("before Gus is in");
    await host.getByTestId("chat-send").click();
    await h.waitFor(() => host.evaluate(() => window.__meeting.chat.length === 1), { what: "the host's own chat line" });
    await h.waitFor(() => waitingView(guest).then((v) => v.preview), { what: "Gus's camera preview to play" });
    const waiting = await waitingView(guest);
    assert.deepEqual(
      { ...waiting, preview: undefined },
      { state: "waiting", participants: 0, chat: 0, chatDom: 0, tiles: 0, inbound: 0, pcs: 0, inboundRtp: 0, lobbyShown: true, name: "Gus", preview: undefined },
    );

    // Admitted: Gus gets in, sees the host's media, and the host sees his.
    await host.getByTestId("lobby-admit").first().click();
    await h.waitFor(() => guest.evaluate(() => window.__meeting.state === "joined"), { what: "Gus to be in the meeting" });
    await h.waitFor(() => host.getByTestId("lobby-entry").count().then((n) => n === 0), { what: "the host's lobby list to empty" });
    const gus = await h.meeting(guest);
    const hana = await h.meeting(host);
    await h.expectMediaFlowing(guest, [hana.peerId], { label: "Gus" });
    await h.expectMediaFlowing(host, [gus.peerId], { label: "Hana" });
    // The chat said while he waited reaches him only now, as the meeting's history (as
    // for anyone who joins late: docs/protocol.md `chat:history`); getStats now shows
    // inbound media.
    assert.deepEqual(gus.chat.map((c) => [c.message, c.history]), [["before Gus is in", true]]);
    const after = await waitingView(guest);
    assert.ok(after.pcs >= 1 && after.inboundRtp >= 2, JSON.stringify(after));
  });

  it("a denied guest is told, and is not in the meeting", async () => {
    const hostToken = await h.guestToken(server, "Hilde");
    const roomId = await h.createMeeting(server, hostToken, { settings: { requireApproval: true } });
    const host = (pages.host2 = await h.newPage(browser, server));
    await h.joinMeeting(host, roomId, "Hilde", { token: hostToken });
    const guest = (pages.guest2 = await h.newPage(browser, server));
    assert.equal(await h.joinMeeting(guest, roomId, "Dora", { expect: "waiting" }), "waiting");
    await h.waitFor(() => host.getByTestId("lobby-entry").count().then((n) => n === 1), { what: "the host to see Dora waiting" });
    await host.getByTestId("lobby-deny").first().click();
    await h.waitFor(() => guest.evaluate(() => window.__meeting.state === "denied"), { what: "Dora to be told" });
    assert.match(await guest.getByTestId("done-title").textContent(), /not let in/);
    const hilde = await h.meeting(host);
    assert.deepEqual(hilde.participants.filter((p) => !p.local), []);
  });

  it("the server refuses a waiting socket's media, chat and host decisions (Socket.IO)", async () => {
    const hostToken = await h.guestToken(server, "Host");
    const guestToken = await h.guestToken(server, "Waiter");
    const roomId = await h.createMeeting(server, hostToken, { settings: { requireApproval: true } });
    const open = [];
    const connect = async (token) => {
      const c = new SioClient({ WebSocket, ackTimeoutMs: 5000, connectTimeoutMs: 5000 });
      await c.connect(server.base, { token });
      open.push(c);
      return c;
    };
    try {
      const hostC = await connect(hostToken);
      const updates = [];
      hostC.on("lobby:updated", (e) => updates.push(e));
      assert.ok((await hostC.emit("join-meeting", { roomId, userName: "Host" })).ok);
      const waiter = await connect(guestToken);
      const told = [];
      waiter.on("lobby:waiting", (e) => told.push(e));
      const chats = [];
      waiter.on("meeting-chat-message", (e) => chats.push(e));
      const joinedEvents = [];
      waiter.on("participant-joined", (e) => joinedEvents.push(e));
      const ack = await waiter.emit("join-meeting", { roomId, userName: "Waiter" });
      assert.equal(ack.ok, false);
      assert.equal(ack.error.code, "IN_LOBBY");
      await h.waitFor(() => told.length === 1 && updates.some((u) => u.waiting.length === 1), { what: "lobby:waiting and lobby:updated" });
      const ticket = told[0].peerId;
      assert.equal(updates.at(-1).waiting[0].peerId, ticket);
      for (const [event, body] of [
        ["meeting-chat-message", { roomId, message: "let me in" }],
        ["sfu-offer", { roomId, sdp: "v=0\r\n" }],
        ["toggle-audio", { roomId, isEnabled: true }],
        ["lobby-admit", { roomId, peerId: ticket }],
      ]) {
        const r = await waiter.emit(event, body);
        assert.equal(r.ok, false, event);
        assert.equal(r.error.code, "NOT_IN_MEETING", event);
      }
      assert.ok((await hostC.emit("meeting-chat-message", { roomId, message: "hello" })).ok);
      // The host is told nothing is waiting any more once the waiter disconnects.
      waiter.close();
      await h.waitFor(() => updates.at(-1).waiting.length === 0, { what: "the lobby to empty when the waiter leaves" });
      assert.deepEqual(chats, []);
      assert.deepEqual(joinedEvents, []);
      // A decision about somebody no longer waiting is refused.
      const late = await hostC.emit("lobby-admit", { roomId, peerId: ticket });
      assert.equal(late.error && late.error.code, "PEER_NOT_FOUND");
      const bad = await hostC.emit("lobby-admit", { roomId });
      assert.equal(bad.error && bad.error.code, "BAD_REQUEST");
    } finally {
      for (const c of open) c.close();
    }
  });
});
