// One-port mode (issue #7): MEDIASOUP_SINGLE_PORT makes every SFU worker share one UDP
// port (and, with ICE-TCP, the same TCP port), and meetings are still spread over all
// workers. Two workers, two meetings of two Chromium participants each: the meetings land
// on different workers (each new room goes to the least-loaded one), both report the same
// port, and media is decoded in both meetings while nftables, inside the test's own
// network namespace, drops UDP and TCP to the whole MEDIASOUP_MIN_PORT-MAX_PORT range
// (the single port lies outside it) and any UDP that is not to or from the single port.
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./lib/harness");
const fw = require("./lib/firewall");
const ice = require("./lib/ice");

const skip = h.skipReason() || fw.nftMissing();
const TABLE = "mtest_one_port";

// Counted as skipped (with its reason), not passed, when the tests cannot run here.
if (skip) test(`${require("node:path").basename(__filename)} not run`, { skip }, () => {});

describe("one-port mode in Chromium: two workers behind one UDP port", { skip: skip || false }, () => {
  let server;
  let browser;
  let block;
  let single;
  const pages = {};

  before(async () => {
    single = await h.freeUdpTcpPort();
    server = await h.startServer({
      sfu: true,
      avoidPorts: [single],
      env: { MEDIASOUP_WORKERS: "2", MEDIASOUP_SINGLE_PORT: String(single) },
    });
    const range = server.udpPorts;
    assert.ok(single < range[0] || single > range[1], `the single port ${single} must lie outside ${range.join("-")}`);
    // The former range closed for UDP and TCP; beyond it, UDP only to and from the
    // single port, TCP only to and from the single port and the HTTP port.
    const tcpOk = `{ ${single}, ${server.port} }`;
    block = fw.dropPorts(TABLE, {
      protocols: ["udp", "tcp"],
      ports: range,
      accept: {
        [`udp to ${single}`]: `udp dport ${single}`,
        [`udp from ${single}`]: `udp sport ${single}`,
        [`tcp to ${single} or HTTP`]: `tcp dport ${tcpOk}`,
        [`tcp from ${single} or HTTP`]: `tcp sport ${tcpOk}`,
      },
      extra: { "any other UDP": "meta l4proto udp", "any other TCP": "meta l4proto tcp" },
    });
    browser = await h.launchBrowser();
  });

  after(async () => {
    if (block) {
      console.log(`packets per nftables rule: ${JSON.stringify(block.counters())}`);
      block.remove();
    }
    await h.teardown({ pages, browser, server });
  });

  async function sfuWorkers() {
    const r = await h.api(server, "GET", "/health/ready");
    const sfu = r.json && r.json.checks && r.json.checks.sfu;
    if (!sfu || !Array.isArray(sfu.workers)) throw new Error(`GET /health/ready → ${r.status} ${r.text}`);
    return sfu.workers;
  }

  it("two meetings on two workers share the one port, and both decode media", async () => {
    const workers = await sfuWorkers();
    assert.equal(workers.length, 2, `expected 2 workers: ${JSON.stringify(workers)}`);
    for (const w of workers) assert.equal(w.port, single, `worker ${w.index} reports port ${w.port}, not the single port ${single}`);

    const token = await h.guestToken(server, "Host");
    const meetings = [
      { roomId: await h.createMeeting(server, token, { title: "One port, first" }), names: ["Alice", "Bob"] },
      { roomId: await h.createMeeting(server, token, { title: "One port, second" }), names: ["Carol", "Dave"] },
    ];
    const ids = {};
    // One meeting after the other, so that the second room is opened when the first
    // already weighs on its worker.
    for (const m of meetings) {
      for (const name of m.names) {
        const page = (pages[name] = await h.newPage(browser, server));
        await page.addInitScript(ice.trackPeerConnections());
        await h.joinMeeting(page, m.roomId, name);
        ids[name] = (await h.meeting(page)).peerId;
      }
    }

    for (const m of meetings) {
      const [a, b] = m.names;
      await h.expectMediaFlowing(pages[a], [ids[b]], { label: a, timeout: 45000 });
      await h.expectMediaFlowing(pages[b], [ids[a]], { label: b, timeout: 45000 });
    }

    // Every page's media goes to the one port, over UDP.
    for (const name of Object.keys(pages)) {
      const p = await ice.connectedPair(pages[name], h.waitFor, { label: name });
      const detail = `${name}: ${JSON.stringify(p, null, 1)}`;
      assert.equal(p.remote.port, single, `media to port ${p.remote.port}, not the single port: ${detail}`);
      assert.equal(p.remote.protocol, "udp", `UDP is open on the single port, yet: ${detail}`);
      assert.ok(p.remoteCandidates.length > 0 && p.remoteCandidates.every((l) => l.includes(` ${single} typ `)), `a candidate not on ${single}: ${detail}`);
    }

    // Both workers hold one meeting of two, on the same port.
    const after = await h.waitFor(
      async () => {
        const w = await sfuWorkers();
        return w.length === 2 && w.every((x) => x.participants === 2 && x.rooms === 1) ? w : null;
      },
      { timeout: 10000, what: "each of the two workers to hold one room of two participants" },
    ).catch(async (e) => {
      throw new Error(`${e.message}: ${JSON.stringify(await sfuWorkers().catch(() => null))}${h.serverLog()}`);
    });
    assert.deepEqual(after.map((w) => w.port), [single, single]);
    assert.ok(after.every((w) => w.alive), JSON.stringify(after));
    // The rules were in force: the media passed the single port's exception.
    const counted = block.counters();
    assert.ok(counted[`udp to ${single}`] > 0 && counted[`udp from ${single}`] > 0, `no UDP counted on ${single}: ${JSON.stringify(counted)}\n${block.listing()}`);
  });
});
