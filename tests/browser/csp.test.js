// The page under the Content-Security-Policy the server is meant to send: no CSP
// violation, console error or uncaught exception on load, while joining, and during a
// two-person SFU call (media, mute, chat, panels, leave). When the server does not send a
// policy itself, the test adds this one to the page's responses, so the page is held to
// it either way; a deliberate violation at the end proves the watch sees one.
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./lib/harness");

const skip = h.skipReason();

if (skip) test(`${require("node:path").basename(__filename)} not run`, { skip }, () => {});

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https:; " +
  "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; frame-ancestors 'none'; " +
  "base-uri 'none'; form-action 'self'; object-src 'none'";

// Runs in the page before its own scripts: every violation, with what it blocked.
function watchViolations() {
  window.__csp = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__csp.push({ directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber, sample: e.sample });
  });
}

describe("the page under the Content-Security-Policy", { skip: skip || false }, () => {
  let server;
  let browser;
  let roomId;
  let serverPolicy = null;
  const pages = {};
  const ids = {};

  before(async () => {
    server = await h.startServer();
    roomId = await h.createMeeting(server, await h.guestToken(server, "Host"), { title: "CSP" });
    const res = await fetch(`${server.base}/m/${roomId}`);
    serverPolicy = res.headers.get("content-security-policy");
    console.log(`server's own policy: ${serverPolicy || "(none; the test adds the documented one)"}`);
    if (serverPolicy) {
      browser = await h.launchBrowser();
    } else {
      // A document the test fulfils has no IP address space, so Chromium's local-network
      // checks would treat it as public and block its WebSocket to 127.0.0.1.
      const { chromium } = require("playwright-core");
      const args = [...h.CHROMIUM_FLAGS, "--disable-features=LocalNetworkAccessChecks"];
      browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args, timeout: 30000 });
    }
  });

  after(async () => {
    await h.teardown({ pages, browser, server });
  });

  async function open(key) {
    const page = await h.newPage(browser, server);
    pages[key] = page;
    await page.addInitScript(watchViolations);
    if (!serverPolicy) {
      // The documents get the policy as a real response header (no <meta>): what the
      // browser enforces is what the server will send.
      await page.route(
        (url) => url.pathname === "/" || url.pathname.startsWith("/m/"),
        async (route) => {
          const response = await route.fetch();
          await route.fulfill({ response, headers: { ...response.headers(), "content-security-policy": CSP } });
        },
      );
    }
    return page;
  }

  async function problems(page) {
    const csp = await page.evaluate(() => window.__csp);
    return { csp, console: page.__errors };
  }

  it("loads the landing page and the pre-join view without a violation or error", async () => {
    const page = await open("landing");
    await page.goto("/");
    await page.getByTestId("new-meeting").waitFor();
    assert.equal(await page.evaluate(() => typeof window.__meeting), "object", "the modules ran");
    await page.goto(`/m/${roomId}`);
    await page.getByTestId("name-input").waitFor();
    assert.deepEqual(await problems(page), { csp: [], console: [] });
  });

  it("a two-person call runs without a violation or error", async () => {
    for (const name of ["Ann", "Ben"]) {
      const key = name.toLowerCase();
      const page = await open(key);
      await h.joinMeeting(page, roomId, name);
      ids[key] = (await h.meeting(page)).peerId;
    }
    await h.expectMediaFlowing(pages.ann, [ids.ben], { label: "Ann" });
    await h.expectMediaFlowing(pages.ben, [ids.ann], { label: "Ben" });
    // The grid's column count is a custom property set through the CSSOM, which the
    // policy allows (unlike a style attribute in markup).
    const cols = await pages.ann.evaluate(() => getComputedStyle(document.getElementById("grid")).getPropertyValue("--cols").trim());
    assert.equal(cols, "2", "two tiles, two columns");
    await pages.ann.getByTestId("toggle-mic").click();
    await h.waitFor(() => pages.ben.evaluate((id) => window.__meeting.participants.some((p) => p.peerId === id && !p.audioEnabled), ids.ann), {
      what: "Ben to see Ann muted",
    });
    await pages.ann.getByTestId("toggle-chat").click();
    await pages.ann.getByTestId("chat-input").fill("hello under CSP");
    await pages.ann.getByTestId("chat-send").click();
    await h.waitFor(() => pages.ben.evaluate(() => window.__meeting.chat.some((m) => m.message === "hello under CSP")), { what: "Ben to get the chat" });
    await pages.ben.getByTestId("toggle-participants").click();
    await pages.ben.getByTestId("leave-button").click();
    await h.waitFor(() => pages.ben.evaluate(() => window.__meeting.state === "left"), { what: "Ben left" });
    await h.waitFor(() => pages.ann.evaluate(() => window.__meeting.participants.length === 1), { what: "Ann to see Ben go" });
    for (const key of ["ann", "ben"]) assert.deepEqual(await problems(pages[key]), { csp: [], console: [] }, key);
  });

  it("the watch sees a violation when there is one", async () => {
    const page = pages.ann;
    await page.evaluate(() => document.body.insertAdjacentHTML("beforeend", '<div style="color: red">inline</div>'));
    const seen = await h.waitFor(() => page.evaluate(() => window.__csp.length > 0 && window.__csp), { timeout: 5000, what: "a violation report" });
    assert.equal(seen[0].directive, "style-src-attr", JSON.stringify(seen));
  });
});
