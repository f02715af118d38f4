// Signaling that drops and comes back (issue #15, item 1), in Chromium: the page resumes
// its place on a new socket (`resume-meeting`) and nobody has to reload.
//
// The pages reach the server at two loopback addresses (the server listens on every
// address of the test's namespace, which has only loopback): Ann at 127.0.0.1, Bob at
// 127.0.0.2. An nftables table inside the namespace drops the TCP to and from the
// server's port at 127.0.0.2, which cuts his signaling, his reconnection attempts included, and
// nothing else: the media (UDP to the SFU at 127.0.0.1) keeps flowing.
// - signaling cut for 10 s: "Reconnecting…" shows, media keeps flowing both ways, the
//   socket resumes after the cut, a third participant (a plain Socket.IO client) saw no
//   leave or join, a chat message sent during the cut reaches Bob after it, and so do
//   the tracks of Carol, who joined during the cut (the server's offer is made again);
// - grace expiry: a page cut for good leaves after RECONNECT_GRACE_SECONDS (not
//   before), and when it can reach the server again it shows the end screen.
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const WebSocket = require("ws");
const h = require("./lib/harness");
const fw = require("./lib/firewall");
const SioClient = require(path.join(h.REPO, "web", "sio.js"));

const skip = h.skipReason() || fw.nftMissing();
const TABLE = "mtest_cut_signaling";
const BOB_ADDR = "127.0.0.2";

if (skip) test(`${path.basename(__filename)} not run`, { skip }, () => {});

/**
 * Drop the TCP to and from the server's HTTP port at BOB_ADDR, both ways. (On loopback
 * the browser's end of the connection is 127.0.0.1 whichever 127/8 address it dials, so
 * the server's end is what tells Bob's connections from Ann's.)
 */
function cutBob(server) {
  return fw.dropPorts(TABLE, {
    extra: {
      "bob to server": `ip daddr ${BOB_ADDR} tcp dport ${server.port}`,
      "server to bob": `ip saddr ${BOB_ADDR} tcp sport ${server.port}`,
    },
  });
}

/** A plain Socket.IO participant that records who joins and leaves. */
async function watcher(server, roomId) {
  const c = new SioClient({ WebSocket, ackTimeoutMs: 10000, connectTimeoutMs: 10000 });
  await c.connect(server.base, { token: await h.guestToken(server, "Watcher") });
  const seen = [];
  for (const name of ["participant-joined", "participant-left"]) {
    c.on(name, (p) => seen.push({ name, userName: p.userName, peerId: p.peerId, at: Date.now() }));
  }
  const ack = await c.emit("join-meeting", { roomId, userName: "Watcher", isAudioEnabled: false, isVideoEnabled: false });
  assert.ok(ack.ok, JSON.stringify(ack));
  return { c, seen };
}

/** Send `text` from the page's chat panel. */
async function say(page, text) {
  if (!(await page.getByTestId("chat-input").isVisible())) await page.getByTestId("toggle-chat").click();
  await page.getByTestId("chat-input").fill(text);
  await page.getByTestId("chat-send").click();
}

const state = (page) =>
  page.evaluate(() => {
    const m = window.__meeting;
    return { state: m.state, peerId: m.peerId, reconnecting: m.reconnecting, resumes: m.resumes, chat: m.chat.map((c) => c.message), participants: m.participants.map((p) => p.userName), tiles: m.tiles.length };
  });

/** Start a server reachable at both addresses, and a meeting with Ann and Bob in it. */
async function meetingOfTwo(browser, grace) {
  const server = await h.startServer({ sfu: true, env: { HOST: "0.0.0.0", RECONNECT_GRACE_SECONDS: String(grace) } });
  const token = await h.guestToken(server, "Ann");
  const roomId = await h.createMeeting(server, token, { title: "Reconnect" });
  const ann = await h.newPage(browser, server);
  const bob = await h.newPage(browser, { ...server, base: `http://${BOB_ADDR}:${server.port}` });
  await h.joinMeeting(ann, roomId, "Ann");
  await h.joinMeeting(bob, roomId, "Bob");
  const ids = { ann: (await state(ann)).peerId, bob: (await state(bob)).peerId };
  await h.expectMediaFlowing(ann, [ids.bob], { label: "Ann" });
  await h.expectMediaFlowing(bob, [ids.ann], { label: "Bob" });
  const watch = await watcher(server, roomId);
  return { server, roomId, ann, bob, ids, watch };
}

describe("signaling that drops and resumes", { skip: skip || false }, () => {
  let browser;
  const cleanups = [];

  before(async () => {
    browser = await h.launchBrowser();
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c();
    if (browser) await browser.close().catch(() => {});
  });

  it("a 10 s signaling cut: media keeps flowing, the socket resumes, nobody saw a leave, the chat sent meanwhile arrives", async () => {
    const m = await meetingOfTwo(browser, 20);
    cleanups.push(() => m.watch.c.close(), () => h.closePage(m.ann), () => h.closePage(m.bob), () => m.server.stop());
    const bobTiles = async () => (await m.ann.evaluate(() => window.__meeting.tiles)).filter((t) => t.peerId === m.ids.bob).length;
    const bobTilesBefore = await bobTiles();
    const cut = cutBob(m.server);
    cleanups.push(async () => cut.remove());
    const cutAt = Date.now();
    let dropped;
    let carol;
    cleanups.push(() => h.closePage(carol));
    try {
      await h.waitFor(async () => (await state(m.bob)).reconnecting, { timeout: 10000, interval: 200, what: "Bob's page to notice the cut" });
      assert.equal(await m.bob.getByTestId("reconnecting").isVisible(), true);
      // While Bob's signaling is away: Ann writes, and the media keeps flowing both ways.
      await say(m.ann, "sent during the cut");
      // Carol joins meanwhile: the server's offer of her tracks to Bob is lost with his
      // socket, and must be made again once he is back.
      carol = await h.newPage(browser, m.server);
      await h.joinMeeting(carol, m.roomId, "Carol");
      await h.expectMediaFlowing(m.ann, [m.ids.bob], { label: "Ann during the cut" });
      await h.expectMediaFlowing(m.bob, [m.ids.ann], { label: "Bob during the cut" });
      assert.ok(!(await state(m.bob)).chat.includes("sent during the cut"), "the cut did not cut");
      const left = 10000 - (Date.now() - cutAt);
      if (left > 0) await h.sleep(left); // the length of the fault, not a wait for a condition
      dropped = cut.counters();
    } finally {
      cut.remove();
    }
    assert.ok(dropped["bob to server"] > 0, `nothing of Bob's was dropped: ${JSON.stringify(dropped)}`);
    await h.waitFor(async () => {
      const s = await state(m.bob);
      return s.resumes >= 1 && !s.reconnecting;
    }, { timeout: 20000, interval: 200, what: "Bob's page to resume" });
    const bob = await state(m.bob);
    assert.equal(bob.state, "joined");
    assert.equal(await m.bob.getByTestId("reconnecting").isVisible(), false);
    assert.ok(bob.chat.includes("sent during the cut"), `Bob's chat: ${JSON.stringify(bob.chat)}`);
    assert.deepEqual([...bob.participants].sort(), ["Ann", "Bob", "Carol", "Watcher"]);
    const ann = await state(m.ann);
    assert.deepEqual([...ann.participants].sort(), ["Ann", "Bob", "Carol", "Watcher"]);
    assert.equal(await bobTiles(), bobTilesBefore, "no new tiles of Bob's on Ann's page");
    const notices = await m.bob.evaluate(() => window.__meeting.notices);
    assert.ok(!notices.some((n) => /re-offer/.test(n)), JSON.stringify(notices));
    const aboutBob = m.watch.seen.filter((e) => e.peerId === m.ids.bob || e.userName === "Bob");
    assert.deepEqual(aboutBob, [], "the others saw Bob neither leave nor join");
    // The resumed socket carries the call: Bob's chat reaches Ann, media still flows.
    await say(m.bob, "back again");
    await h.waitFor(async () => (await state(m.ann)).chat.includes("back again"), { timeout: 10000, what: "Bob's chat after resuming" });
    await h.expectMediaFlowing(m.ann, [m.ids.bob], { label: "Ann after" });
    const carolId = (await state(carol)).peerId;
    await h.expectMediaFlowing(m.bob, [m.ids.ann, carolId], { label: "Bob after (Carol's offer made again)" });
  });

  it("grace expiry: a page cut for good leaves after RECONNECT_GRACE_SECONDS, not before, then shows the end screen", async () => {
    const grace = 6;
    const m = await meetingOfTwo(browser, grace);
    cleanups.push(() => m.watch.c.close(), () => h.closePage(m.ann), () => h.closePage(m.bob), () => m.server.stop());
    const cut = cutBob(m.server);
    cleanups.push(async () => cut.remove());
    const cutAt = Date.now();
    try {
      const left = await h.waitFor(() => m.watch.seen.find((e) => e.name === "participant-left" && e.peerId === m.ids.bob), {
        // The server notices within its heartbeat (8 s), then waits the grace period.
        timeout: (8 + grace + 10) * 1000,
        interval: 200,
        what: "Bob's leave",
      });
      const after = (left.at - cutAt) / 1000;
      assert.ok(after >= grace, `Bob left ${after} s after the cut, before the ${grace} s grace period`);
      await h.waitFor(async () => !(await state(m.ann)).participants.includes("Bob"), { timeout: 5000, what: "Bob's tile to go on Ann's page" });
    } finally {
      cut.remove();
    }
    // Back on the network, too late: the end screen, not a ghost in the call.
    await h.waitFor(async () => (await state(m.bob)).state === "error", { timeout: 20000, interval: 200, what: "Bob's end screen" });
    assert.equal(await m.bob.getByTestId("reconnecting").isVisible(), false);
    assert.match(await m.bob.locator("#done-title").textContent(), /Disconnected/);
  });
});
