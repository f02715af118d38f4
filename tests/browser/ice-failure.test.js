// A media connection that cannot come up shows the troubleshooting hints. The failure is
// the seed's classic one, UDP to the media ports blocked by a firewall: an nftables rule
// inside the test's own network namespace drops the server's UDP port range.
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const h = require("./lib/harness");

function nftMissing() {
  try {
    execFileSync("nft", ["--version"], { stdio: "ignore" });
    return null;
  } catch (_) {
    return "nft (nftables) is not installed";
  }
}

const skip = h.skipReason() || nftMissing();
const TABLE = "mtest_block_media";

// Counted as skipped (with its reason), not passed, when the tests cannot run here.
if (skip) test(`${require("node:path").basename(__filename)} not run`, { skip }, () => {});

describe("ICE failure in Chromium", { skip: skip || false }, () => {
  let server;
  let browser;
  let page;

  before(async () => {
    server = await h.startServer({ sfu: true });
    const [lo, hi] = server.udpPorts;
    execFileSync("nft", ["-f", "-"], {
      input: `table inet ${TABLE} {\n chain input {\n  type filter hook input priority 0; policy accept;\n  udp dport ${lo}-${hi} drop\n  udp sport ${lo}-${hi} drop\n }\n}\n`,
    });
    browser = await h.launchBrowser();
  });

  after(async () => {
    try {
      execFileSync("nft", ["delete", "table", "inet", TABLE], { stdio: "ignore" });
    } catch (_) {
      /* the namespace goes away anyway */
    }
    await h.closePage(page);
    if (browser) await browser.close().catch(() => {});
    if (server) await server.stop();
  });

  it("UDP blocked: the page shows the announced-IP, UDP-port and TURN hints", async () => {
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
    const hints = await page.getByTestId("banner-hints").textContent();
    assert.match(hints, /MEDIASOUP_ANNOUNCED_IP/);
    assert.match(hints, /127\.0\.0\.1/);
    assert.match(hints, /UDP ports 10000-10100/);
    assert.match(hints, /TURN/);
    assert.equal(await page.getByTestId("banner").isVisible(), true);
  });
});
