// A node drained in a cluster (issue #15, item 3), in Chromium: two nodes with a private
// Redis and PostgreSQL behind a small load balancer (this file's: each new TCP
// connection goes to the first node, in a fixed order, whose GET /health/ready answers
// 200). Both pages reach the first node, so it carries their sockets and the meeting's
// media. SIGTERM it: it gives the media lease up, tells the pages `server-draining`, and
// they reconnect (through the balancer: the other node, since the draining one answers
// 503), resume their places, and open new media connections, which re-open the meeting's
// media on that node. They decode each other's video again within 10 s, and the drained
// node exits within its DRAIN_TIMEOUT_SECONDS.
//
// Three drains, alternating nodes (the drained one is started again after each, and the
// next drain hits the node the pages moved to); each measures the media gap (SIGTERM →
// first frame decoded from the other page on the new media connection, on the later of
// the two pages), prints the values and their median, and asserts the bound.
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const net = require("node:net");
const path = require("node:path");
const h = require("./lib/harness");
const { missing, startRedis, startPostgres } = require("./lib/services");

const skip = missing();
if (skip) test(`${path.basename(__filename)} not run`, { skip }, () => {});

const BOUND_MS = 10000;
const DRAIN_S = 10;

/** Whether `node` answers GET /health/ready with 200 (within 500 ms). */
async function ready(node) {
  if (!node || node.exited) return false;
  const res = await fetch(node.base + "/health/ready", { signal: AbortSignal.timeout(500) }).catch(() => null);
  return !!res && res.status === 200;
}

/**
 * The load balancer: a TCP proxy on a free port; `nodes()` is the preference order.
 * A connection no ready node takes is closed (the page retries).
 */
async function startBalancer(nodes) {
  const port = await h.freeTcpPort();
  const sockets = new Set();
  const server = net.createServer(async (client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => {});
    client.pause();
    let target = null;
    for (const n of nodes()) {
      if (await ready(n)) {
        target = n;
        break;
      }
    }
    if (!target || client.destroyed) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, "127.0.0.1");
    sockets.add(upstream);
    upstream.on("close", () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    stop: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const view = (page) =>
  page.evaluate(() => {
    const m = window.__meeting;
    return { state: m.state, peerId: m.peerId, marker: window.__drainMarker, restarts: m.mediaRestarts || 0, participants: m.participants.map((p) => p.userName).sort() };
  });

async function firstFrame(page, peerId, n, label) {
  return h.waitFor(
    async () => {
      const v = await view(page);
      if (v.restarts < n) return null;
      const e = h.statFor(await h.mediaStats(page).catch(() => []), peerId, "camera");
      return e && e.framesDecoded > 0 ? Date.now() : null;
    },
    { timeout: 20000, interval: 50, what: `${label}: video again after drain ${n}` },
  ).catch(async (e) => {
    throw new Error(`${e.message}\n view: ${JSON.stringify(await view(page).catch(() => null))}\n console: ${page.__errors.slice(-5).join(" | ")}${h.serverLog(40)}`);
  });
}

/** Resolves with the node's exit and when it happened; rejects after `ms`. */
function exited(node, ms) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the drained node did not exit within ${ms} ms\n${node.logTail(30)}`)), ms);
    node.child.once("exit", (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, at: Date.now() });
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe("a node drained in a cluster (SIGTERM; Redis + PostgreSQL, behind a load balancer)", { skip: skip || false }, () => {
  let redis;
  let pg;
  const nodes = [null, null];
  let lb;
  let browser;
  const pages = {};
  const prefix = `mtestdrain${process.pid}:`;

  const startNode = (again) =>
    h.startServer({
      sfu: true,
      again,
      env: { REDIS_URL: redis.url, DATABASE_URL: pg.url, REDIS_KEY_PREFIX: prefix, DRAIN_TIMEOUT_SECONDS: String(DRAIN_S), RECONNECT_GRACE_SECONDS: "20" },
    });

  before(async () => {
    redis = await startRedis();
    pg = await startPostgres();
    nodes[0] = await startNode();
    nodes[1] = await startNode();
    lb = await startBalancer(() => nodes);
    browser = await h.launchBrowser();
  });

  after(async () => {
    for (const p of Object.values(pages)) await h.closePage(p);
    if (browser) await browser.close().catch(() => {});
    if (lb) await lb.stop();
    for (const n of nodes) if (n) await n.stop();
    if (pg) await pg.stop();
    if (redis) await redis.stop();
  });

  it("the pages resume on the other node and decode each other's video within 10 s; the drained node exits in time (3 drains, media gap measured)", async () => {
    const token = await h.guestToken(lb, "Ann");
    const roomId = await h.createMeeting(lb, token, { title: "Drain", topology: "sfu" });
    pages.ann = await h.newPage(browser, lb);
    pages.bob = await h.newPage(browser, lb);
    await h.joinMeeting(pages.ann, roomId, "Ann");
    await h.joinMeeting(pages.bob, roomId, "Bob");
    const ids = { ann: (await view(pages.ann)).peerId, bob: (await view(pages.bob)).peerId };
    await h.expectMediaFlowing(pages.ann, [ids.bob], { label: "Ann" });
    await h.expectMediaFlowing(pages.bob, [ids.ann], { label: "Bob" });
    for (const p of [pages.ann, pages.bob]) await p.evaluate(() => (window.__drainMarker = "same page"));

    const gaps = [];
    let carrier = 0; // the balancer's first choice: both pages are on node 0
    for (let n = 1; n <= 3; n++) {
      const drained = nodes[carrier];
      const other = nodes[1 - carrier];
      const hosting = /hosting the meeting's media/;
      // The log since the node (re)started, and the other's from here on.
      assert.match(fs.readFileSync(drained.logPath, "utf8").slice(drained.logStart || 0), hosting, `node ${carrier} hosts the media before drain ${n}`);
      const otherFrom = fs.statSync(other.logPath).size;
      const faultAt = Date.now();
      const exiting = exited(drained, (DRAIN_S + 2) * 1000);
      process.kill(drained.pid, "SIGTERM");
      const [annSees, bobSees] = await Promise.all([
        firstFrame(pages.ann, ids.bob, n, "Ann"),
        firstFrame(pages.bob, ids.ann, n, "Bob"),
      ]);
      const gap = Math.max(annSees, bobSees) - faultAt;
      const exit = await exiting;
      const exitMs = exit.at - faultAt;
      gaps.push(gap);
      console.log(`drain ${n} (node ${carrier}): media gap ${gap} ms (Ann ${annSees - faultAt} ms, Bob ${bobSees - faultAt} ms); the node exited after ${exitMs} ms`);
      assert.ok(gap < BOUND_MS, `media gap ${gap} ms`);
      assert.equal(exit.code, 0, `a drained node exits cleanly: ${JSON.stringify(exit)}`);
      assert.ok(exitMs <= DRAIN_S * 1000 + 1000, `exited after ${exitMs} ms, within DRAIN_TIMEOUT_SECONDS`);
      assert.match(fs.readFileSync(other.logPath, "utf8").slice(otherFrom), hosting, `the other node hosts the media after drain ${n}`);
      for (const [name, page] of Object.entries(pages)) {
        const v = await view(page);
        assert.equal(v.state, "joined", `${name}: ${JSON.stringify(v)}`);
        assert.equal(v.marker, "same page", `${name} was not reloaded`);
        assert.equal(v.peerId, ids[name], `${name} keeps its participant id`);
        assert.deepEqual(v.participants, ["Ann", "Bob"], `${name} sees both, once each`);
      }
      await h.expectMediaFlowing(pages.ann, [ids.bob], { label: `Ann after drain ${n}` });
      await h.expectMediaFlowing(pages.bob, [ids.ann], { label: `Bob after drain ${n}` });
      // The drained node comes back (a rolling restart); the next drain hits the node the
      // pages moved to.
      const logStart = fs.statSync(drained.logPath).size;
      nodes[carrier] = await startNode(drained);
      nodes[carrier].logStart = logStart;
      carrier = 1 - carrier;
    }
    console.log(`media gap, node drained in a cluster: ${gaps.join(", ")} ms; median ${median(gaps)} ms`);
  });
});
