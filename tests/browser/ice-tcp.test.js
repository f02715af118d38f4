// ICE-TCP (issue #7): with MEDIASOUP_ENABLE_TCP on (the default) each SFU worker also
// listens on TCP at its UDP port and its answer offers a passive TCP host candidate. A
// browser whose network drops UDP still gets its media through: here nftables, inside
// the test's own network namespace, drops all UDP to and from the server's media ports,
// and two Chromium participants of one SFU meeting must decode each other over a TCP
// candidate pair.
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./lib/harness");
const fw = require("./lib/firewall");
const ice = require("./lib/ice");

const skip = h.skipReason() || fw.nftMissing();
const TABLE = "mtest_block_udp";

// Counted as skipped (with its reason), not passed, when the tests cannot run here.
if (skip) test(`${require("node:path").basename(__filename)} not run`, { skip }, () => {});

describe("ICE-TCP in Chromium: UDP blocked, media over TCP", { skip: skip || false }, () => {
  let server;
  let browser;
  let block;
  const pages = {};

  before(async () => {
    // ICE-TCP is on by default: no MEDIASOUP_ENABLE_TCP given.
    server = await h.startServer({ sfu: true });
    block = fw.dropPorts(TABLE, { protocols: ["udp"], ports: server.udpPorts });
    browser = await h.launchBrowser();
  });

  after(async () => {
    if (block) block.remove();
    await h.teardown({ pages, browser, server });
  });

  it("two participants decode each other over a TCP candidate pair while UDP is dropped", async () => {
    const token = await h.guestToken(server, "Host");
    const roomId = await h.createMeeting(server, token, { title: "ICE-TCP" });
    const ids = {};
    for (const name of ["Alice", "Bob"]) {
      const page = (pages[name] = await h.newPage(browser, server));
      await page.addInitScript(ice.trackPeerConnections());
      await h.joinMeeting(page, roomId, name);
      ids[name] = (await h.meeting(page)).peerId;
      assert.equal((await h.meeting(page)).topology, "sfu");
    }
    await h.expectMediaFlowing(pages.Alice, [ids.Bob], { label: "Alice", timeout: 45000 });
    await h.expectMediaFlowing(pages.Bob, [ids.Alice], { label: "Bob", timeout: 45000 });

    const [lo, hi] = server.udpPorts;
    for (const name of ["Alice", "Bob"]) {
      const p = await ice.connectedPair(pages[name], h.waitFor, { label: name });
      const detail = `${name}: ${JSON.stringify(p, null, 1)}${h.serverLog()}`;
      // The server offered both candidates, the TCP one passive.
      assert.ok(p.remoteCandidates.some((l) => / udp /i.test(l)), `no UDP candidate in the answer: ${detail}`);
      assert.ok(p.remoteCandidates.some((l) => / tcp /i.test(l) && / typ host /.test(l) && / tcptype passive/.test(l)), `no passive TCP host candidate: ${detail}`);
      // …and the media took the TCP one, to a worker's port.
      assert.equal(p.remote.protocol, "tcp", `remote candidate not TCP: ${detail}`);
      assert.equal(p.local.protocol, "tcp", `local candidate not TCP: ${detail}`);
      assert.ok(p.remote.port >= lo && p.remote.port <= hi, `remote port ${p.remote.port} outside ${lo}-${hi}: ${detail}`);
      assert.ok(p.pair.bytesReceived > 0, `nothing received on the pair: ${detail}`);
    }

    // The browsers did try UDP (dropped), and the server counts the TCP connections.
    const dropped = block.counters();
    assert.ok(dropped[`udp to ${fw.portSpec(server.udpPorts)}`] > 0, `no UDP to the SFU was dropped, so UDP was not tried: ${JSON.stringify(dropped)}`);
    const ready = await h.api(server, "GET", "/health/ready");
    const workers = (ready.json && ready.json.checks && ready.json.checks.sfu && ready.json.checks.sfu.workers) || [];
    const tcp = workers.reduce((n, w) => n + (w.tcpConnections || 0), 0);
    assert.ok(tcp >= 2, `the SFU reports ${tcp} TCP connections, expected at least 2: ${ready.text}`);
  });
});
