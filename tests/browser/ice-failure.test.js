// A media connection that cannot come up (the server announces an address nobody listens
// on, the classic MEDIASOUP_ANNOUNCED_IP mistake) shows the troubleshooting hints.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./lib/harness");

const skip = h.skipReason();

describe("ICE failure in Chromium", { skip: skip || false }, () => {
  let server;
  let browser;
  let page;

  before(async () => {
    // Listening on 127.0.0.1 but announcing 127.0.0.2: every check goes nowhere.
    server = await h.startServer({ sfu: true, env: { MEDIASOUP_ANNOUNCED_IP: "127.0.0.2" } });
    browser = await h.launchBrowser();
  });

  after(async () => {
    await h.closePage(page);
    if (browser) await browser.close().catch(() => {});
    if (server) await server.stop();
  });

  it("shows the announced-IP, UDP-port and TURN hints", async () => {
    const token = await h.guestToken(server, "Host");
    const roomId = await h.createMeeting(server, token, { title: "ICE failure" });
    page = await h.newPage(browser, server);
    await h.joinMeeting(page, roomId, "Lonely");
    await h.waitFor(() => page.evaluate(() => window.__meeting.error && window.__meeting.error.code === "ICE_FAILED"), {
      timeout: 45000,
      interval: 500,
      what: "the page to report the failed media connection",
    });
    const hints = await page.getByTestId("banner-hints").textContent();
    assert.match(hints, /MEDIASOUP_ANNOUNCED_IP/);
    assert.match(hints, /127\.0\.0\.1/);
    assert.match(hints, /UDP ports 10000-10100/);
    assert.match(hints, /TURN/);
    assert.equal(await page.getByTestId("banner").isVisible(), true);
  });
});
