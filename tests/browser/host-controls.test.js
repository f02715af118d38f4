// The host's meeting-wide controls from the page:
// - "Mute everyone" mutes every other participant (their pages turn their microphone
//   off and everyone sees it), never the host; nobody is unmuted by the host;
// - "Lock meeting" refuses the next join with the page's "locked" message; unlocking
//   lets the next one in;
// - "Ask to unmute" prompts the participant, who stays muted until it accepts;
// - "Stop share" stops a participant's screen share (its page and the others' tiles);
// - over Socket.IO: a participant's host requests are refused FORBIDDEN.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const WebSocket = require("ws");
const h = require("./lib/harness");
const SioClient = require(path.join(h.REPO, "web", "sio.js"));

const skip = h.skipReason();

describe("host controls", { skip: skip || false }, () => {
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

  it("mute everyone, ask to unmute (never forced), stop a screen share, and lock refuses a new join until unlocked", async () => {
    const hostToken = await h.guestToken(server, "Hedy");
    const roomId = await h.createMeeting(server, hostToken);
    const host = (pages.host = await h.newPage(browser, server));
    await h.joinMeeting(host, roomId, "Hedy", { token: hostToken });
    const a = (pages.a = await h.newPage(browser, server));
    await h.joinMeeting(a, roomId, "Ada");
    const b = (pages.b = await h.newPage(browser, server));
    await h.joinMeeting(b, roomId, "Bo");
    for (const p of [host, a, b]) assert.equal(await p.evaluate(() => window.__meeting.audioEnabled), true);

    await host.getByTestId("toggle-participants").click();
    await host.getByTestId("mute-all").click();
    for (const [p, who] of [[a, "Ada"], [b, "Bo"]]) {
      await h.waitFor(() => p.evaluate(() => window.__meeting.audioEnabled === false), { what: `${who}'s page to mute itself` });
    }
    await h.waitFor(
      () => host.evaluate(() => window.__meeting.participants.filter((p) => !p.local).every((p) => p.audioEnabled === false)),
      { what: "the host to see both muted" },
    );
    assert.equal(await host.evaluate(() => window.__meeting.audioEnabled), true, "the host stays unmuted");
    // "Ask to unmute" is a request: Ada's page asks her, and stays muted until she accepts.
    const adaId = await a.evaluate(() => window.__meeting.userId);
    await host.locator(`[data-testid=participant][data-user-id="${adaId}"] [data-testid=host-ask-unmute]`).click();
    await a.getByTestId("ask-unmute").waitFor({ state: "visible" });
    assert.equal(await a.evaluate(() => window.__meeting.audioEnabled), false, "never a forced unmute");
    await a.getByTestId("ask-unmute-accept").click();
    await h.waitFor(() => a.evaluate(() => window.__meeting.audioEnabled === true), { what: "Ada to unmute herself" });
    await h.waitFor(
      () => host.evaluate((id) => window.__meeting.participants.find((p) => p.userId === id).audioEnabled === true, adaId),
      { what: "the host to see Ada unmuted" },
    );

    // The host stops Bo's screen share: his page stops sharing and the others' screen tile goes.
    await b.getByTestId("toggle-screen").click();
    await h.waitFor(() => b.evaluate(() => window.__meeting.screenSharing || (window.__meeting.error && window.__meeting.error.code === "SCREEN_DENIED")), { what: "Bo's screen share to start" });
    assert.ok(await b.evaluate(() => window.__meeting.screenSharing), "getDisplayMedia failed in headless Chromium");
    const boId = await b.evaluate(() => window.__meeting.userId);
    await h.waitFor(() => a.evaluate(() => window.__meeting.tiles.some((t) => t.source === "screen")), { what: "Ada to get Bo's screen tile" });
    await host.locator(`[data-testid=participant][data-user-id="${boId}"] [data-testid=host-stop-screen]`).click();
    await h.waitFor(() => b.evaluate(() => window.__meeting.screenSharing === false), { what: "Bo's page to stop sharing" });
    await h.waitFor(() => a.evaluate(() => !window.__meeting.tiles.some((t) => t.source === "screen")), { what: "Ada's screen tile of Bo to go" });
    await h.waitFor(
      () => host.evaluate((id) => window.__meeting.participants.find((p) => p.userId === id).screenSharing === false, boId),
      { what: "the host to see Bo not sharing" },
    );

    await host.getByTestId("lock-toggle").click();
    await h.waitFor(() => host.evaluate(() => window.__meeting.meeting.settings.lockRoom === true), { what: "meeting:updated with lockRoom" });
    assert.equal(await host.getByTestId("lock-toggle").textContent(), "Unlock meeting");
    const late = (pages.late = await h.newPage(browser, server));
    assert.equal(await h.joinMeeting(late, roomId, "Lee", { expect: "error" }), "error");
    assert.equal(await late.evaluate(() => window.__meeting.error.code), "ROOM_LOCKED");
    assert.match(await late.getByTestId("done-title").textContent(), /locked/);

    await host.getByTestId("lock-toggle").click();
    await h.waitFor(() => host.evaluate(() => window.__meeting.meeting.settings.lockRoom === false), { what: "unlocked" });
    const later = (pages.later = await h.newPage(browser, server));
    await h.joinMeeting(later, roomId, "Liv");
  });

  it("a participant's host-lock, host-mute-all, host-ask-unmute and host-stop-screen are refused", async () => {
    const hostToken = await h.guestToken(server, "Host");
    const guestToken = await h.guestToken(server, "Guest");
    const roomId = await h.createMeeting(server, hostToken);
    const open = [];
    try {
      for (const [token, name] of [[hostToken, "Host"], [guestToken, "Guest"]]) {
        const c = new SioClient({ WebSocket, ackTimeoutMs: 5000, connectTimeoutMs: 5000 });
        await c.connect(server.base, { token });
        open.push(c);
        assert.ok((await c.emit("join-meeting", { roomId, userName: name })).ok);
      }
      const guest = open[1];
      for (const [event, body] of [
        ["host-lock", { roomId, locked: true }],
        ["host-mute-all", { roomId, kind: "audio" }],
        ["host-ask-unmute", { roomId, targetUserId: "x", kind: "audio" }],
        ["host-stop-screen", { roomId, targetUserId: "x" }],
      ]) {
        const r = await guest.emit(event, body);
        assert.equal(r.error && r.error.code, "FORBIDDEN", event);
      }
      const bad = await open[0].emit("host-lock", { roomId });
      assert.equal(bad.error && bad.error.code, "BAD_REQUEST");
      const muted = await open[0].emit("host-mute-all", { roomId, kind: "audio" });
      assert.deepEqual(muted.data, { muted: 1 });
    } finally {
      for (const c of open) c.close();
    }
  });
});
