// The page's sign-in when a link carries `?token=` (docs/protocol.md, "The built-in page's
// sign-in"): the token leaves the address bar at once and goes to no other request, it is
// used by this tab only (a reload keeps it, another tab does not see it), it never
// replaces the device's saved sign-in unless the user keeps it, and a refused link token
// is reported instead of being swapped for another identity.
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./lib/harness");

const skip = h.skipReason();

if (skip) test(`${require("node:path").basename(__filename)} not run`, { skip }, () => {});

const now = () => Math.floor(Date.now() / 1000);
const jwt = (sub, name, ttl = 3600) => h.signJwt({ sub, name, iat: now(), exp: now() + ttl });

describe("?token= in the page's address", { skip: skip || false }, () => {
  let server;
  let browser;
  let context;
  let roomId;
  const pages = {};
  const annToken = jwt("ann", "Ann");
  const bobToken = jwt("bob", "Bob");

  before(async () => {
    server = await h.startServer();
    browser = await h.launchBrowser();
    roomId = await h.createMeeting(server, await h.guestToken(server, "Host"), { title: "Identity" });
    // One browser profile (shared localStorage), several tabs.
    context = await browser.newContext({ viewport: { width: 800, height: 450 }, baseURL: server.base });
  });

  after(async () => {
    if (context) await context.close().catch(() => {});
    await h.teardown({ pages, browser, server });
  });

  async function tab(key) {
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    page.__errors = [];
    page.on("console", (m) => m.type() === "error" && page.__errors.push(m.text()));
    page.on("pageerror", (e) => page.__errors.push(String(e)));
    pages[key] = page;
    return page;
  }

  const saved = (page) => page.evaluate(() => localStorage.getItem("meeting.token"));

  /** Join without devices (light on CPU); resolves with the final state. */
  async function join(page, name) {
    await page.getByTestId("name-input").fill(name);
    await page.getByTestId("prejoin-audio").uncheck();
    await page.getByTestId("prejoin-video").uncheck();
    await page.getByTestId("join-button").click();
    return h.waitFor(() => page.evaluate(() => (["joining", "idle"].includes(window.__meeting.state) ? null : window.__meeting.state)), {
      timeout: 20000,
      what: `${name} to finish joining`,
    });
  }

  async function leave(page) {
    await page.getByTestId("leave-button").click();
    await h.waitFor(() => page.evaluate(() => window.__meeting.state === "left"), { what: "leave" });
  }

  it("a link's token is used by its tab only, out of the address bar and every other request", async () => {
    // The device already has Bob's sign-in saved.
    const setup = await tab("setup");
    await setup.goto("/");
    await setup.evaluate((t) => localStorage.setItem("meeting.token", t), bobToken);
    await setup.close();

    const a = await tab("a");
    const seen = [];
    a.on("request", async (req) => {
      const referer = (await req.allHeaders())["referer"] || "";
      seen.push({ url: req.url(), referer, nav: req.isNavigationRequest() });
    });
    await a.goto(`/m/${roomId}?token=${encodeURIComponent(annToken)}&lang=en#x`);
    await a.getByTestId("identity-text").waitFor();
    assert.equal(new URL(a.url()).search, "?lang=en", `the token left the address bar, the rest stayed: ${a.url()}`);
    assert.equal(new URL(a.url()).hash, "#x");
    const text = await a.getByTestId("identity-text").textContent();
    assert.match(text, /as Ann, in this tab only/);
    assert.match(text, /saved sign-in \(Bob\) stays/);
    assert.equal(await saved(a), bobToken, "the saved sign-in is not replaced by the link's");

    assert.equal(await join(a, "Ann"), "joined");
    assert.equal(await a.evaluate(() => window.__meeting.userId), "ann", "this tab joins as the link's user");
    const leaks = seen.filter((r) => !r.nav && (r.url.includes(annToken) || r.referer.includes(annToken)));
    assert.deepEqual(leaks, [], "no request but the page load itself carries the token");
    assert.ok(seen.some((r) => r.nav && r.url.includes(annToken)), "the check saw the page load");
    await leave(a);

    // Another tab of the same browser: the saved sign-in, no identity line.
    const b = await tab("b");
    await b.goto(`/m/${roomId}`);
    await b.getByTestId("name-input").waitFor();
    assert.equal(await b.getByTestId("identity-text").count(), 0);
    assert.equal(await join(b, "Bob"), "joined");
    assert.equal(await b.evaluate(() => window.__meeting.userId), "bob");
    await leave(b);

    // The link's tab, reloaded (what "Rejoin" does): still Ann, address still clean.
    await a.reload();
    await a.getByTestId("identity-text").waitFor();
    assert.ok(!a.url().includes("token="), a.url());
    assert.equal(await join(a, "Ann"), "joined");
    assert.equal(await a.evaluate(() => window.__meeting.userId), "ann");
    await leave(a);
    // The entry was replaced, not pushed: one step back is the tab's first page, and no
    // entry of the tab's history holds the token.
    await a.goBack();
    assert.equal(a.url(), "about:blank", "back leads past the meeting page, not to its token address");
  });

  it("the user keeps the link's sign-in on this device, or drops it", async () => {
    const a = pages.a;
    await a.goto(`/m/${roomId}`);
    await a.getByTestId("identity-text").waitFor();
    await a.getByTestId("identity-remember").click();
    assert.equal(await saved(a), annToken, "kept: now the device's sign-in");
    assert.equal(await a.getByTestId("identity-text").count(), 0, "nothing left to decide");
    const c = await tab("c");
    await c.goto(`/m/${roomId}`);
    assert.equal(await join(c, "Ann"), "joined");
    assert.equal(await c.evaluate(() => window.__meeting.userId), "ann", "another tab now signs in as Ann");
    await leave(c);

    // Bob's link in a tab, dropped: the tab goes back to the saved sign-in (Ann).
    const d = await tab("d");
    await d.goto(`/m/${roomId}?token=${encodeURIComponent(bobToken)}`);
    await d.getByTestId("identity-forget").click();
    assert.equal(await d.getByTestId("identity-text").count(), 0);
    assert.equal(await join(d, "Ann"), "joined");
    assert.equal(await d.evaluate(() => window.__meeting.userId), "ann");
    assert.equal(await saved(d), annToken);
    await leave(d);
  });

  it("a refused link token is reported, not swapped for another identity", async () => {
    const e = await tab("e");
    const expired = jwt("cid", "Cid", -120);
    await e.goto(`/m/${roomId}?token=${encodeURIComponent(expired)}`);
    assert.equal(await join(e, "Cid"), "error");
    const m = await h.meeting(e);
    assert.equal(m.error && m.error.code, "TOKEN_EXPIRED", JSON.stringify(m.error));
    assert.match(m.error.message, /link you opened \(Cid\) has expired/);
    assert.equal(m.userId, null, "joined as nobody");
    assert.equal(await saved(e), annToken, "the saved sign-in is untouched");
    const participants = await h.api(server, "GET", `/api/meetings/${roomId}/participants`, { token: annToken });
    assert.equal(participants.status, 200, participants.text);
    const list = (participants.json && (participants.json.participants || (participants.json.data && participants.json.data.participants))) || [];
    assert.ok(Array.isArray(list) && !list.some((p) => p.userId === "cid"), `Cid is not in the meeting: ${participants.text}`);
  });

  // The server ends a session at its token's `exp` plus the 30 s leeway a connect gets
  // (docs/security.md). A link's token can only be renewed by the app that made it, so
  // the page says so; a saved guest sign-in is the page's own, so it renews it and joins
  // again without a reload. Both tabs wait at once: the guest's token must outlive the
  // page's 60 s "about to expire" margin, so this takes about 95 s.
  it("an expiring session: a link's tab says so, a guest's tab renews and is back in", async () => {
    const linkPage = await tab("expiring-link");
    await linkPage.goto(`/m/${roomId}?token=${encodeURIComponent(jwt("dee", "Dee", 2))}`);
    assert.equal(await join(linkPage, "Dee"), "joined");

    // Its own browser profile, so that its saved sign-in is its own.
    const guestContext = await browser.newContext({ viewport: { width: 800, height: 450 }, baseURL: server.base });
    try {
      const g = await guestContext.newPage();
      g.__errors = [];
      g.on("pageerror", (e) => g.__errors.push(String(e)));
      await g.goto("/");
      await g.evaluate((t) => localStorage.setItem("meeting.token", t), jwt("guest-eve", "Eve", 62));
      await g.goto(`/m/${roomId}`);
      assert.equal(await join(g, "Eve"), "joined");
      assert.equal(await g.evaluate(() => window.__meeting.userId), "guest-eve");

      await h.waitFor(() => linkPage.evaluate(() => window.__meeting.state === "expired"), {
        timeout: 60000,
        what: "the link's tab to be told its session expired",
      });
      assert.match(await linkPage.getByTestId("done-text").textContent(), /link from your app/);

      await h.waitFor(() => g.evaluate(() => window.__meeting.rejoins === 1 && window.__meeting.state === "joined"), {
        timeout: 120000,
        what: "the guest's tab to renew its sign-in and join again",
      });
      const after = await g.evaluate(() => ({ userId: window.__meeting.userId, saved: localStorage.getItem("meeting.token") }));
      assert.notEqual(after.userId, "guest-eve", "joined again with a fresh guest sign-in");
      // The page is "joined" as soon as the join is answered; the banner follows once
      // its media is set up again, which a loaded machine can take a while to do.
      await h.waitFor(async () => /renewed/.test(await g.getByTestId("banner-text").textContent()), {
        timeout: 15000,
        what: "the banner to say the sign-in was renewed",
      });
      assert.deepEqual(g.__errors, []);
    } finally {
      await guestContext.close().catch(() => {});
    }
  });
});
