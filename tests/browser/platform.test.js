// What the platform this service replaces needs of it, in Chromium:
// - the landing page's "Meeting code or link" box takes a code typed without dashes and
//   in lower case, lands on the canonical /m/<code> and joins;
// - a page on another origin (the original frontend runs on its own) reaches Socket.IO
//   over HTTP long-polling when CORS_ORIGINS lists that origin: handshake, CONNECT with
//   a token, join-meeting and its ack, all through fetch() under the browser's CORS
//   rules; a page on an origin not listed is refused by the browser.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");
const h = require("./lib/harness");

const skip = h.skipReason();

/** A page on its own origin (another port of 127.0.0.1): blank HTML. */
function otherOrigin() {
  return new Promise((resolve, reject) => {
    const srv = http.createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><html><body>another origin</body></html>");
    });
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => resolve({ srv, origin: `http://127.0.0.1:${srv.address().port}` }));
  });
}

/**
 * In the page: Engine.IO v4 long-polling by hand with fetch() (what socket.io-client
 * does before upgrading): open, CONNECT with `token`, join `roomId`, read until the
 * join's ack. Resolves with the ack or `{ refused: message }` when fetch throws (CORS).
 */
async function pollingJoin({ base, token, roomId }) {
  const url = (sid) => `${base}/socket.io/?EIO=4&transport=polling${sid ? `&sid=${sid}` : ""}&t=${Math.random()}`;
  const packets = (text) => text.split("\x1e");
  const deadline = Date.now() + 15000;
  try {
    const open = await (await fetch(url())).text();
    if (!open.startsWith("0")) return { error: `no open packet: ${open}` };
    const { sid } = JSON.parse(open.slice(1));
    await fetch(url(sid), { method: "POST", body: `40${JSON.stringify({ token })}` });
    let connected = false;
    let ackSent = false;
    while (Date.now() < deadline) {
      const text = await (await fetch(url(sid))).text();
      for (const p of packets(text)) {
        if (p.startsWith("40")) connected = true;
        if (p.startsWith("44")) return { error: `connect_error ${p}` };
        if (p.startsWith("431")) return JSON.parse(p.slice(3))[0];
        if (p === "2") await fetch(url(sid), { method: "POST", body: "3" });
      }
      if (connected && !ackSent) {
        ackSent = true;
        await fetch(url(sid), { method: "POST", body: `421${JSON.stringify(["join-meeting", { roomId }])}` });
      }
    }
    return { error: "no ack before the deadline" };
  } catch (e) {
    return { refused: String(e && e.message) };
  }
}

describe("the original platform's frontend and users", { skip: skip || false }, () => {
  let server;
  let browser;
  let allowed;
  let stranger;
  const pages = {};

  before(async () => {
    allowed = await otherOrigin();
    stranger = await otherOrigin();
    server = await h.startServer({ sfu: false, env: { CORS_ORIGINS: allowed.origin } });
    browser = await h.launchBrowser();
  });

  after(async () => {
    for (const o of [allowed, stranger]) if (o) o.srv.close();
    await h.teardown({ pages, browser, server });
  });

  it("a code typed without dashes in lower case joins from the landing page", async () => {
    const hostToken = await h.guestToken(server, "Host");
    const roomId = await h.createMeeting(server, hostToken, { title: "Typed code" });
    assert.match(roomId, /^[A-Z0-9]{4}-[A-Z0-9]{3}-[A-Z0-9]{3}$/);
    const typed = roomId.replace(/-/g, "").toLowerCase();
    const page = (pages.typed = await h.newPage(browser, server));
    await page.goto("/");
    await page.getByTestId("landing-name").fill("Typist");
    await page.getByTestId("join-code").fill(typed);
    await page.getByTestId("join-code-button").click();
    await h.waitFor(() => new URL(page.url()).pathname === `/m/${roomId}`, { timeout: 10000, what: `the canonical /m/${roomId} (at ${page.url()})` });
    // The address changes when the navigation commits, before the page's module has run and
    // filled in the code: wait for the text rather than read it at once.
    await h.waitFor(async () => (await page.getByTestId("prejoin-code").textContent()) === roomId, {
      timeout: 10000,
      what: `the pre-join view to show ${roomId}`,
    });
    await page.getByTestId("name-input").fill("Typist");
    await page.getByTestId("join-button").click();
    const state = await h.waitFor(
      () => page.evaluate(() => (["joining", "idle"].includes(window.__meeting.state) ? null : window.__meeting.state)),
      { timeout: 20000, what: "the join to finish" },
    );
    const err = await page.evaluate(() => window.__meeting.error);
    assert.equal(state, "joined", JSON.stringify(err));
    assert.equal(await page.getByTestId("meeting-code").textContent(), roomId);
  });

  it("Socket.IO long-polling from a listed origin connects and joins; another origin is refused", async () => {
    const token = await h.guestToken(server, "Remote");
    const roomId = await h.createMeeting(server, token, { title: "Cross origin" });
    const page = (pages.remote = await h.newPage(browser, server));
    await page.goto(allowed.origin + "/");
    assert.equal(await page.evaluate(() => location.origin), allowed.origin);
    // A spelling of the code the original frontend might send, too.
    const ack = await page.evaluate(pollingJoin, { base: server.base, token, roomId: roomId.toLowerCase() });
    assert.equal(ack && ack.ok, true, JSON.stringify(ack));
    assert.equal(ack.data.roomId, roomId);
    assert.equal(ack.data.self.userName, "Remote");

    const other = (pages.stranger = await h.newPage(browser, server));
    await other.goto(stranger.origin + "/");
    const refused = await other.evaluate(pollingJoin, { base: server.base, token, roomId });
    assert.ok(refused && refused.refused, `a page on ${stranger.origin} must not read the answers: ${JSON.stringify(refused)}`);
  });
});
