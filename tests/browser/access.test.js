// Access: invite links, roles and co-hosts (issue #16, items 2 and 3).
// - the host makes an invite link with the page's Invite control; a fresh browser context
//   with no token opens it, types a name and joins (media both ways); the link leaves the
//   address bar; the single-use link then refuses a second guest, readably;
// - expired, revoked and wrong-meeting invites are refused with a readable message, and so
//   is any invite while the meeting is locked (the refused attempt uses nothing);
// - a viewer's invite: the page offers no camera, microphone or screen buttons, receives
//   the host's media, and the server refuses a publishing offer made with its sign-in;
// - the host makes a participant co-host from the participant list: the co-host admits a
//   guest from the lobby and mutes them, and has no "end for everyone".
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const WebSocket = require("ws");
const h = require("./lib/harness");
const SioClient = require(path.join(h.REPO, "web", "sio.js"));

const skip = h.skipReason();

/** POST /api/meetings/:roomId/invites as `token`; the invite (with `path`). */
async function makeInvite(server, token, roomId, body) {
  const r = await h.api(server, "POST", `/api/meetings/${roomId}/invites`, { token, body: body || {} });
  assert.equal(r.status, 201, r.text);
  return r.json.invite;
}

/** A fresh context (no saved sign-in) opens `url` as `name`; resolves with its final state. */
async function openInvite(browser, server, url, name) {
  const page = await h.newPage(browser, server);
  await page.goto(url);
  await page.getByTestId("name-input").fill(name);
  await page.getByTestId("join-button").click();
  await h.waitFor(() => page.evaluate(() => !["joining", "idle"].includes(window.__meeting.state)), { what: `${name}'s join to finish` });
  return page;
}

/** A refused invite: the page's error code and the sentence it shows. */
async function refusal(page) {
  return page.evaluate(() => ({
    state: window.__meeting.state,
    code: window.__meeting.error && window.__meeting.error.code,
    text: document.getElementById("banner").hidden ? "" : document.getElementById("banner-text").textContent,
  }));
}

async function expectRefused(page, code, words) {
  const r = await refusal(page);
  assert.equal(r.state, "error", JSON.stringify(r));
  assert.equal(r.code, code, JSON.stringify(r));
  assert.match(r.text, words, "a readable message on the page");
  assert.equal(await page.evaluate(() => window.__meeting.userId), null, "not joined");
}

async function invitesOf(server, token, roomId) {
  const r = await h.api(server, "GET", `/api/meetings/${roomId}/invites`, { token });
  assert.equal(r.status, 200, r.text);
  return r.json.invites;
}

describe("access: invite links, viewers and co-hosts", { skip: skip || false }, () => {
  let server;
  let browser;
  const pages = {};

  before(async () => {
    server = await h.startServer({ sfu: true, env: { NODE_ENV: "production" } });
    browser = await h.launchBrowser();
  });

  after(async () => {
    await h.teardown({ pages, browser, server });
  });

  // Production has no guest sign-in: the host's token is signed with the secret, as an
  // operator's auth service would; the guests have nothing but the invite.
  const hostToken = () => h.signJwt({ sub: "host-1", name: "Hana", exp: Math.floor(Date.now() / 1000) + 3600 });

  it("an invite link made on the page lets a guest with no token in, once", async () => {
    const token = hostToken();
    const roomId = await h.createMeeting(server, token);
    const host = (pages.host = await h.newPage(browser, server));
    await h.joinMeeting(host, roomId, "Hana", { token });

    await host.getByTestId("toggle-participants").click();
    await host.getByTestId("invite-uses").fill("1");
    await host.getByTestId("invite-create").click();
    const url = await h.waitFor(() => host.getByTestId("invite-url").first().inputValue().catch(() => null), { what: "the invite link on the host's page" });
    assert.match(url, new RegExp(`/m/${roomId}\\?invite=`));
    assert.match(await host.getByTestId("invite-text").first().textContent(), /participant · 0\/1 used/);

    const guest = (pages.guest = await openInvite(browser, server, url, "Gita"));
    assert.equal(await guest.evaluate(() => window.__meeting.state), "joined");
    assert.equal(await guest.evaluate(() => location.search), "", "the invite left the address bar");
    const g = await h.meeting(guest);
    const hostPeer = g.participants.find((p) => !p.local);
    assert.equal(hostPeer.userName, "Hana");
    const hostSide = await h.meeting(host);
    const guestPeer = hostSide.participants.find((p) => !p.local);
    assert.equal(guestPeer.userName, "Gita");
    assert.equal(guestPeer.role, "participant");
    await h.expectMediaFlowing(guest, [hostPeer.peerId], { label: "guest" });
    await h.expectMediaFlowing(host, [guestPeer.peerId], { label: "host" });

    // Used once: a second guest is refused, readably, and the list says so.
    const second = (pages.second = await openInvite(browser, server, url, "Sven"));
    await expectRefused(second, "INVITE_USED_UP", /already been used/);
    await host.getByTestId("invite-refresh").click();
    await h.waitFor(() => host.getByTestId("invite-text").first().textContent().then((t) => /1\/1 used/.test(t)), { what: "the list to show the use" });
    for (const k of ["guest", "second"]) await h.closePage(pages[k]);
  });

  it("expired, revoked and wrong-meeting invites are refused readably; a lock refuses any", async () => {
    const token = hostToken();
    const roomId = await h.createMeeting(server, token);
    const other = await h.createMeeting(server, token);

    const short = await makeInvite(server, token, roomId, { expiresIn: 1 });
    await h.waitFor(() => Date.now() > Date.parse(short.expiresAt), { what: "the invite's expiry", timeout: 5000, interval: 100 });
    const expired = (pages.expired = await openInvite(browser, server, short.path, "Ed"));
    await expectRefused(expired, "INVITE_EXPIRED", /expired/);

    const revoked = await makeInvite(server, token, roomId);
    const del = await h.api(server, "DELETE", `/api/meetings/${roomId}/invites/${revoked.inviteId}`, { token });
    assert.equal(del.status, 200, del.text);
    const rev = (pages.revoked = await openInvite(browser, server, revoked.path, "Rae"));
    await expectRefused(rev, "INVITE_REVOKED", /revoked/);

    const elsewhere = await makeInvite(server, token, other);
    const wrongPath = elsewhere.path.replace(`/m/${other}`, `/m/${roomId}`);
    const wrong = (pages.wrong = await openInvite(browser, server, wrongPath, "Wyn"));
    await expectRefused(wrong, "INVITE_WRONG_MEETING", /another meeting/);

    const good = await makeInvite(server, token, roomId);
    const lock = await h.api(server, "PUT", `/api/meetings/${roomId}`, { token, body: { settings: { lockRoom: true } } });
    assert.equal(lock.status, 200, lock.text);
    const locked = (pages.locked = await openInvite(browser, server, good.path, "Lou"));
    await expectRefused(locked, "ROOM_LOCKED", /locked/);
    const listed = (await invitesOf(server, token, roomId)).find((i) => i.inviteId === good.inviteId);
    assert.equal(listed.uses, 0, "a refused attempt uses nothing");
    for (const k of ["expired", "revoked", "wrong", "locked"]) await h.closePage(pages[k]);
  });

  it("a viewer's page has no publishing controls and the server refuses its offer", async () => {
    const token = hostToken();
    const roomId = await h.createMeeting(server, token);
    const host = (pages.vhost = await h.newPage(browser, server));
    await h.joinMeeting(host, roomId, "Hana", { token });
    const invite = await makeInvite(server, token, roomId, { role: "viewer" });

    const viewer = (pages.viewer = await h.newPage(browser, server));
    await viewer.goto(invite.path);
    assert.ok(await viewer.getByTestId("prejoin-viewer").isVisible(), "the pre-join view says it is a viewer");
    assert.equal(await viewer.getByTestId("prejoin-audio").isVisible(), false);
    await viewer.getByTestId("name-input").fill("Vic");
    await viewer.getByTestId("join-button").click();
    await h.waitFor(() => viewer.evaluate(() => window.__meeting.state === "joined"), { what: "the viewer to join" });
    for (const id of ["toggle-mic", "toggle-camera", "toggle-screen"]) {
      assert.equal(await viewer.getByTestId(id).isVisible(), false, `${id} hidden`);
    }
    const v = await h.meeting(viewer);
    const hostPeer = v.participants.find((p) => !p.local);
    await h.expectMediaFlowing(viewer, [hostPeer.peerId], { label: "viewer" });
    await h.waitFor(
      () => h.meeting(host).then((m) => m.participants.some((p) => p.userName === "Vic" && p.role === "viewer")),
      { what: "the host to list Vic as a viewer" },
    );
    // It asked for no camera or microphone, and the host's page shows both off.
    assert.deepEqual(await viewer.evaluate(() => [window.__meeting.audioEnabled, window.__meeting.videoEnabled]), [false, false]);
    const vic = (await h.meeting(host)).participants.find((p) => p.userName === "Vic");
    assert.deepEqual([vic.audioEnabled, vic.videoEnabled], [false, false]);

    // The viewer's own sign-in, over Socket.IO directly: its publishing offer is refused.
    const signIn = await viewer.evaluate(() => sessionStorage.getItem("meeting.linkToken"));
    const c = new SioClient({ WebSocket, ackTimeoutMs: 5000, connectTimeoutMs: 5000 });
    try {
      await c.connect(server.base, { token: signIn });
      assert.ok((await c.emit("join-meeting", { roomId, userName: "Vic" })).ok);
      const sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n";
      const r = await c.emit("sfu-offer", { roomId, sdp, sources: { 0: "camera" } });
      assert.equal(r.ok, false);
      assert.equal(r.error.code, "FORBIDDEN");
      assert.equal(r.error.grant, "canPublishVideo");
      const other = await h.createMeeting(server, token);
      const elsewhere = await c.emit("join-meeting", { roomId: other, userName: "Vic" });
      assert.equal(elsewhere.error && elsewhere.error.grant, "meetings", "the sign-in is for this meeting only");
    } finally {
      c.close();
    }
    for (const k of ["vhost", "viewer"]) await h.closePage(pages[k]);
  });

  it("a co-host the host promotes admits from the lobby and mutes, but cannot end the meeting", async () => {
    const token = hostToken();
    const roomId = await h.createMeeting(server, token, { settings: { requireApproval: true } });
    const host = (pages.chost = await h.newPage(browser, server));
    await h.joinMeeting(host, roomId, "Hana", { token });
    const invite = await makeInvite(server, token, roomId);

    const bob = (pages.bob = await h.newPage(browser, server));
    await bob.goto(invite.path);
    await bob.getByTestId("name-input").fill("Bob");
    await bob.getByTestId("join-button").click();
    await h.waitFor(() => bob.evaluate(() => window.__meeting.state === "waiting"), { what: "Bob to wait in the lobby" });
    await host.getByTestId("lobby-admit").first().click();
    await h.waitFor(() => bob.evaluate(() => window.__meeting.state === "joined"), { what: "Bob to be admitted" });

    await host.getByTestId("toggle-participants").click();
    await host.getByTestId("host-promote").first().click();
    await h.waitFor(() => bob.evaluate(() => window.__meeting.role === "coHost"), { what: "Bob to become co-host" });
    await bob.getByTestId("toggle-participants").click();
    assert.ok(await bob.getByTestId("mute-all").isVisible(), "the co-host has the host controls");
    assert.equal(await bob.getByTestId("end-meeting").isVisible(), false, "but not end-for-everyone");
    assert.ok(await bob.getByTestId("invite-panel").isVisible(), "and the Invite panel");

    const cara = (pages.cara = await openInvite(browser, server, invite.path, "Cara"));
    assert.equal(await cara.evaluate(() => window.__meeting.state), "waiting");
    await h.waitFor(() => bob.getByTestId("lobby-entry").count().then((n) => n === 1), { what: "the co-host to see Cara waiting" });
    await bob.getByTestId("lobby-admit").first().click();
    await h.waitFor(() => cara.evaluate(() => window.__meeting.state === "joined"), { what: "Cara to be admitted by the co-host" });
    assert.equal(await cara.evaluate(() => window.__meeting.audioEnabled), true);

    const caraRow = bob.locator(`[data-testid=participant]`, { hasText: "Cara" });
    await h.waitFor(() => caraRow.count().then((n) => n === 1), { what: "Cara in the co-host's list" });
    await caraRow.getByTestId("host-mute").click();
    await h.waitFor(() => cara.evaluate(() => window.__meeting.audioEnabled === false), { what: "the co-host's mute to reach Cara" });

    // Demoted: the controls go away.
    await host.getByTestId("host-demote").first().click();
    await h.waitFor(() => bob.evaluate(() => window.__meeting.role === "participant"), { what: "Bob to be demoted" });
    assert.equal(await bob.getByTestId("mute-all").isVisible(), false);
  });
});
