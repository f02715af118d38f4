// A media connection that cannot come up shows the troubleshooting hints. The failure is
// the seed's classic one, the media ports blocked by a firewall: nftables rules inside
// the test's own network namespace drop the server's port range, UDP and TCP alike (with
// ICE-TCP on by default, blocking UDP alone no longer breaks the call: see
// ice-tcp.test.js).
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./lib/harness");
const fw = require("./lib/firewall");

const skip = h.skipReason() || fw.nftMissing();
const TABLE = "mtest_block_media";

// Counted as skipped (with its reason), not passed, when the tests cannot run here.
if (skip) test(`${require("node:path").basename(__filename)} not run`, { skip }, () => {});

describe("ICE failure in Chromium", { skip: skip || false }, () => {
  let server;
  let browser;
  let page;
  let block;

  before(async () => {
    server = await h.startServer({ sfu: true });
    // The realistic firewall: the media ports closed for UDP and TCP.
    block = fw.dropPorts(TABLE, { protocols: ["udp", "tcp"], ports: server.udpPorts });
    browser = await h.launchBrowser();
  });

  after(async () => {
    if (block) block.remove();
    await h.closePage(page);
    if (browser) await browser.close().catch(() => {});
    if (server) await server.stop();
  });

  it("UDP and TCP to the media ports blocked: the page shows the announced-IP, UDP-port and TURN hints", async () => {
    const token = await h.guestToken(server, "Host");
    const roomId = await h.createMeeting(server, token, { title: "ICE failure" });
    page = await h.newPage(browser, server);
    // Signaling (TCP) still works: the join succeeds, only media cannot flow.
    await h.joinMeeting(page, roomId, "Lonely");
    await h.waitFor(() => page.evaluate(() => window.__meeting.error && window.__meeting.error.code === "ICE_FAILED"), {
      timeout: 45000,
      interval: 500,
      what: "the page to report the failed media connection",
    });
    const ice = await page.evaluate(() => window.__meeting.iceState);
    assert.notEqual(ice, "connected");
    // The browser did try both ways in, and both were dropped.
    const dropped = block.counters();
    assert.ok(dropped[`udp to ${fw.portSpec(server.udpPorts)}`] > 0, `no UDP was dropped: ${JSON.stringify(dropped)}`);
    assert.ok(dropped[`tcp to ${fw.portSpec(server.udpPorts)}`] > 0, `no TCP was dropped: ${JSON.stringify(dropped)}`);
    const hints = await page.getByTestId("banner-hints").textContent();
    assert.match(hints, /MEDIASOUP_ANNOUNCED_IP/);
    assert.match(hints, /127\.0\.0\.1/);
    assert.match(hints, /UDP ports 10000-10100/);
    assert.match(hints, /TURN/);
    assert.equal(await page.getByTestId("banner").isVisible(), true);
  });
});
