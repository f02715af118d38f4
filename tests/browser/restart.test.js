// A server restart without Redis (issue #15, item 3), in Chromium: SIGTERM the only
// server, start it again on the same ports and database within a second, and both pages
// are back in the meeting with video, without a reload.
//
// On SIGTERM the server tells its pages `server-draining`; they close their sockets and
// keep retrying; the server exits once they are gone. The new process has an empty live
// registry: `resume-meeting` re-creates each participant from its resume token and its
// history row (same peerId), and its ack's `mediaReset` makes the page open a new media
// connection. Three restarts of one meeting; each measures the media gap (SIGTERM → the
// first frame decoded from the other page on the new media connection, on the later of
// the two pages), prints the values and their median, and asserts the 10 s bound.
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const h = require("./lib/harness");

const skip = h.skipReason();
if (skip) test(`${path.basename(__filename)} not run`, { skip }, () => {});

const BOUND_MS = 10000;
// DRAIN_TIMEOUT_SECONDS of the test's server: the pages leave at once, so it exits long
// before; this bounds the wait for its exit.
const DRAIN_S = 5;

const view = (page) =>
  page.evaluate(() => {
    const m = window.__meeting;
    return { state: m.state, peerId: m.peerId, marker: window.__restartMarker, restarts: m.mediaRestarts || 0, resumes: m.resumes || 0, participants: m.participants.map((p) => p.userName).sort() };
  });

/** Frames decoded from `peerId`'s camera on the page's current media connection. */
async function framesFrom(page, peerId) {
  const s = await h.mediaStats(page).catch(() => []);
  const e = h.statFor(s, peerId, "camera");
  return e ? e.framesDecoded : 0;
}

/** Resolves with the time `page` first decodes video from `peerId` on its (restarted number `n`) media connection. */
async function firstFrame(page, peerId, n, label) {
  return h.waitFor(
    async () => {
      const v = await view(page);
      if (v.restarts < n) return null;
      return (await framesFrom(page, peerId)) > 0 ? Date.now() : null;
    },
    { timeout: 20000, interval: 50, what: `${label}: video again after restart ${n}` },
  ).catch(async (e) => {
    throw new Error(`${e.message}\n view: ${JSON.stringify(await view(page).catch(() => null))}\n console: ${page.__errors.slice(-5).join(" | ")}${h.serverLog(40)}`);
  });
}

function exited(server, ms) {
  if (server.exited) return Promise.resolve(server.exited);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the server did not exit within ${ms} ms\n${server.logTail(30)}`)), ms);
    server.child.once("exit", (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe("one server restarted (SIGTERM, started again on the same ports)", { skip: skip || false }, () => {
  let browser;
  let server;
  const pages = {};

  before(async () => {
    browser = await h.launchBrowser();
  });

  after(async () => {
    await h.teardown({ pages, browser, server });
  });

  it("both pages are back with video within 10 s of each restart, without a reload (3 restarts, media gap measured)", async () => {
    const env = { DRAIN_TIMEOUT_SECONDS: String(DRAIN_S), RECONNECT_GRACE_SECONDS: "20" };
    server = await h.startServer({ sfu: true, env });
    const token = await h.guestToken(server, "Ann");
    const roomId = await h.createMeeting(server, token, { title: "Restart" });
    pages.ann = await h.newPage(browser, server);
    pages.bob = await h.newPage(browser, server);
    await h.joinMeeting(pages.ann, roomId, "Ann");
    await h.joinMeeting(pages.bob, roomId, "Bob");
    const ids = { ann: (await view(pages.ann)).peerId, bob: (await view(pages.bob)).peerId };
    await h.expectMediaFlowing(pages.ann, [ids.bob], { label: "Ann" });
    await h.expectMediaFlowing(pages.bob, [ids.ann], { label: "Bob" });
    // A reload would lose this.
    for (const p of [pages.ann, pages.bob]) await p.evaluate(() => (window.__restartMarker = "same page"));

    const gaps = [];
    for (let n = 1; n <= 3; n++) {
      const faultAt = Date.now();
      process.kill(server.pid, "SIGTERM");
      const exit = await exited(server, (DRAIN_S + 3) * 1000);
      const exitMs = Date.now() - faultAt;
      assert.equal(exit.code, 0, `a drained server exits cleanly: ${JSON.stringify(exit)}`);
      assert.ok(exitMs < DRAIN_S * 1000, `exited ${exitMs} ms after SIGTERM: once its pages left, before the ${DRAIN_S} s timeout`);
      server = await h.startServer({ sfu: true, env, again: server });
      const restartMs = Date.now() - faultAt - exitMs;
      const [annSees, bobSees] = await Promise.all([
        firstFrame(pages.ann, ids.bob, n, "Ann"),
        firstFrame(pages.bob, ids.ann, n, "Bob"),
      ]);
      const gap = Math.max(annSees, bobSees) - faultAt;
      gaps.push(gap);
      console.log(`restart ${n}: exited after ${exitMs} ms, started again ${restartMs} ms later; media gap ${gap} ms (Ann ${annSees - faultAt} ms, Bob ${bobSees - faultAt} ms)`);
      assert.ok(gap < BOUND_MS, `media gap ${gap} ms`);
      for (const [name, page] of Object.entries(pages)) {
        const v = await view(page);
        assert.equal(v.state, "joined", `${name}: ${JSON.stringify(v)}`);
        assert.equal(v.marker, "same page", `${name} was not reloaded`);
        assert.equal(v.peerId, ids[name], `${name} keeps its participant id`);
        assert.deepEqual(v.participants, ["Ann", "Bob"], `${name} sees both, once each`);
      }
      await h.expectMediaFlowing(pages.ann, [ids.bob], { label: `Ann after restart ${n}` });
      await h.expectMediaFlowing(pages.bob, [ids.ann], { label: `Bob after restart ${n}` });
    }
    console.log(`media gap, server restart (one node): ${gaps.join(", ")} ms; median ${median(gaps)} ms`);
  });
});
