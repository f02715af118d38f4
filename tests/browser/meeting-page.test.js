// The meeting page's everyday controls (issue #16, items 6, 7 and 8):
// - chat: the unread count on the Chat button grows while the panel is closed and clears
//   when it opens; a late joiner sees the earlier messages, with their times, as history
//   (not unread);
// - raise hand: two hands reach the host in the order they went up (its People panel
//   numbers them, the tiles show ✋ 1 and ✋ 2); a late joiner sees them; a hand goes
//   down when lowered and when its participant leaves;
// - reactions reach everyone and show on the sender's tile; join and leave notices;
// - layout: pinning a tile makes it the large one (speaker view), the speaker view
//   without a pin shows the first remote, `setActiveSpeaker` (layout.js) moves it, grid
//   view is back to equal tiles; one tile goes full screen; a 4:3 camera in a tall tile
//   is letterboxed, not cropped;
// - connection quality: each remote tile shows a dot from getStats (loss, round trip,
//   the received resolution);
// - a screenshot of the host's page with a raised hand and a pinned speaker →
//   docs/meeting-page.png (MTEST_SCREENSHOT=0 leaves it alone).
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const h = require("./lib/harness");

const skip = h.skipReason();

const M = (page, fn, arg) => page.evaluate(fn, arg);

async function sendChat(page, text) {
  await page.getByTestId("toggle-chat").click();
  await page.getByTestId("chat-input").fill(text);
  await page.getByTestId("chat-send").click();
  await h.waitFor(() => M(page, (t) => window.__meeting.chat.some((c) => c.message === t), text), { what: `"${text}" shown` });
  await page.getByTestId("toggle-chat").click(); // closed again
}

async function box(page, peerId) {
  return page.locator(`[data-testid=tile][data-peer-id="${peerId}"][data-source=camera]`).boundingBox();
}

describe("meeting page", { skip: skip || false }, () => {
  let server;
  let browser;
  const pages = {};

  before(async () => {
    server = await h.startServer({ sfu: true });
    browser = await h.launchBrowser();
  });

  after(async () => {
    await h.teardown({ pages, browser, server });
  });

  it("unread chat, history for a late joiner, raised hands in order, reactions, notices", async () => {
    const hostToken = await h.guestToken(server, "Hedy");
    const roomId = await h.createMeeting(server, hostToken);
    const host = (pages.host = await h.newPage(browser, server, { viewport: { width: 1100, height: 700 } }));
    await h.joinMeeting(host, roomId, "Hedy", { token: hostToken });
    const a = (pages.a = await h.newPage(browser, server));
    await h.joinMeeting(a, roomId, "Ada");
    const b = (pages.b = await h.newPage(browser, server));
    await h.joinMeeting(b, roomId, "Bo");
    const id = {};
    for (const [k, p] of Object.entries({ a, b, host })) id[k] = await M(p, () => window.__meeting.peerId);
    await h.waitFor(() => M(host, () => window.__meeting.toasts.includes("Bo joined")), { what: "the host's notice that Bo joined" });

    // Two messages while the host's chat is closed: its Chat button counts them.
    await sendChat(a, "hello from Ada");
    await sendChat(b, "and from Bo");
    await h.waitFor(() => M(host, () => window.__meeting.unread === 2), { what: "the host's unread count to reach 2" });
    assert.equal(await host.getByTestId("chat-unread").textContent(), "2");
    assert.equal(await host.getByTestId("chat-unread").isVisible(), true);
    assert.equal(await host.getByTestId("toggle-chat").getAttribute("aria-label"), "Chat, 2 unread");
    await host.getByTestId("toggle-chat").click();
    assert.equal(await M(host, () => window.__meeting.unread), 0);
    assert.equal(await host.getByTestId("chat-unread").isVisible(), false);
    await host.getByTestId("toggle-chat").click();

    // Bo raises his hand, then Ada: the host sees them in that order.
    await b.getByTestId("toggle-hand").click();
    await h.waitFor(() => M(host, () => window.__meeting.hands.length === 1), { what: "the host to see Bo's hand" });
    await a.getByTestId("toggle-hand").click();
    await h.waitFor(() => M(host, () => window.__meeting.hands.length === 2), { what: "the host to see both hands" });
    assert.deepEqual(await M(host, () => window.__meeting.hands.map((x) => x.userName)), ["Bo", "Ada"]);
    // Ada's own button follows her acknowledgement, which may reach her page a moment
    // after the host's page got the broadcast.
    await h.waitFor(async () => (await a.getByTestId("toggle-hand").textContent()) === "✋ Lower hand", { what: "Ada's button to offer lowering her hand" });
    await host.getByTestId("toggle-participants").click();
    assert.deepEqual(await host.getByTestId("hand").allTextContents(), ["✋ 1. Bo", "✋ 2. Ada"]);
    assert.equal(await host.locator(`[data-testid=tile][data-peer-id="${id.b}"] [data-testid=tile-hand]`).textContent(), "✋ 1");
    assert.equal(await host.locator(`[data-testid=tile][data-peer-id="${id.a}"] [data-testid=tile-hand]`).textContent(), "✋ 2");

    // A reaction reaches everyone and shows on the sender's tile.
    await a.locator("[data-testid=react][data-emoji='👍']").click();
    await h.waitFor(() => M(host, () => window.__meeting.reactions.some((r) => r.emoji === "👍" && r.userName === "Ada")), { what: "the host to get Ada's 👍" });
    await host.locator(`[data-testid=tile][data-peer-id="${id.a}"] [data-testid=tile-reaction]`).waitFor({ state: "attached" });
    await h.waitFor(() => M(b, () => window.__meeting.reactions.length === 1), { what: "Bo to get the reaction" });

    // A late joiner: the earlier chat as history, with times, not unread; the hands.
    const late = (pages.late = await h.newPage(browser, server));
    await h.joinMeeting(late, roomId, "Lee");
    await h.waitFor(() => M(late, () => window.__meeting.chat.length === 2), { what: "Lee to get the chat history" });
    const hist = await M(late, () => window.__meeting.chat.map((c) => ({ m: c.message, h: c.history, t: c.timestamp })));
    assert.deepEqual(hist.map((x) => x.m), ["hello from Ada", "and from Bo"]);
    assert.ok(hist.every((x) => x.h && !Number.isNaN(Date.parse(x.t))), JSON.stringify(hist));
    const times = await late.locator("[data-testid=chat-message] [data-testid=chat-time]").evaluateAll((els) => els.map((e) => [e.getAttribute("datetime"), e.textContent]));
    assert.equal(times.length, 2);
    for (const [dt, text] of times) {
      assert.ok(!Number.isNaN(Date.parse(dt)), `datetime ${dt}`);
      assert.match(text, /\d{1,2}[:.]\d{2}/);
    }
    assert.equal(await M(late, () => window.__meeting.unread), 0, "history is not unread");
    assert.deepEqual(await M(late, () => window.__meeting.hands.map((x) => x.userName)), ["Bo", "Ada"]);
    await h.waitFor(() => M(host, () => window.__meeting.toasts.includes("Lee joined")), { what: "the notice that Lee joined" });

    // Bo lowers his hand: Ada is first now. Lee leaves: a notice.
    await b.getByTestId("toggle-hand").click();
    await h.waitFor(() => M(host, () => window.__meeting.hands.map((x) => x.userName).join() === "Ada"), { what: "Ada's hand first once Bo lowers his" });
    await late.getByTestId("leave-button").click();
    await h.waitFor(() => M(host, () => window.__meeting.toasts.includes("Lee left")), { what: "the notice that Lee left" });
    await h.closePage(late);
    delete pages.late;
  });

  it("pin, speaker and grid view, full screen, whole picture in a tall tile, quality dots; screenshot", async () => {
    const host = pages.host;
    const a = pages.a;
    const b = pages.b;
    const id = {};
    for (const [k, p] of Object.entries({ a, b, host })) id[k] = await M(p, () => window.__meeting.peerId);
    await h.expectMediaFlowing(host, [id.a, id.b], { sources: ["camera"], label: "host" });

    // Pinning Ada: speaker view, her tile large and first.
    await host.locator(`[data-testid=tile][data-peer-id="${id.a}"] [data-testid=tile-pin]`).click();
    let layout = await M(host, () => window.__meeting.layout);
    assert.equal(layout.mode, "speaker");
    assert.equal(layout.main, `${id.a}:camera`);
    const big = await box(host, id.a);
    const small = await box(host, id.b);
    assert.ok(big.width * big.height > 4 * small.width * small.height, `pinned ${JSON.stringify(big)} vs ${JSON.stringify(small)}`);
    assert.equal(await host.locator(`[data-testid=tile][data-peer-id="${id.a}"] [data-testid=tile-pin]`).getAttribute("aria-pressed"), "true");

    // The screenshot: Ada pinned, Bo's... hand is down; Ada's is up (raised earlier).
    await h.waitFor(() => M(host, () => window.__meeting.hands.length === 1), { what: "one raised hand for the screenshot" });
    await h.waitFor(() => M(host, () => Object.keys(window.__meeting.quality).length === 2), { what: "the quality of both remotes", timeout: 20000 });
    if (process.env.MTEST_SCREENSHOT !== "0") {
      const png = await host.screenshot({ type: "png" });
      fs.writeFileSync(path.join(h.REPO, "docs", "meeting-page.png"), png);
    }

    // Quality: measured from getStats, shown on each remote tile.
    const q = await M(host, () => window.__meeting.quality);
    // (The numbers are this machine's: a loaded CI host can take a few hundred ms to
    // answer a consent check even on loopback, so the level follows them, whatever it is.)
    for (const peer of [id.a, id.b]) {
      const { level, rtt, loss, width, height } = q[peer];
      assert.ok(width > 0 && height > 0, `the received resolution ${width}×${height}`);
      assert.ok(Number.isFinite(rtt) && rtt >= 0 && rtt < 5000, `round trip ${rtt}`);
      assert.ok(loss >= 0 && loss <= 100, `loss ${loss}`);
      const expected = loss > 8 || rtt > 500 ? "poor" : loss > 2 || rtt > 250 ? "fair" : "good";
      assert.equal(level, expected, JSON.stringify(q[peer]));
      const label = await host.locator(`[data-testid=tile][data-peer-id="${peer}"] [data-testid=tile-quality]`).getAttribute("aria-label");
      assert.match(label, /^connection (good|fair|poor): \d+×\d+, [\d.]+ % lost, \d+ ms round trip$/);
    }

    // Unpinned, the speaker view shows the active speaker (when the SFU says who), else
    // the first remote participant.
    await host.locator(`[data-testid=tile][data-peer-id="${id.a}"] [data-testid=tile-pin]`).click();
    layout = await M(host, () => window.__meeting.layout);
    assert.equal(layout.mode, "speaker");
    const firstRemote = await M(host, () => window.__meeting.tiles.find((t) => !t.local).peerId);
    assert.equal(layout.main, `${firstRemote}:camera`);
    await host.evaluate(async (peer) => (await import("/assets/app/layout.js")).setActiveSpeaker(peer), id.b);
    assert.equal((await M(host, () => window.__meeting.layout)).main, `${id.b}:camera`);
    await host.getByTestId("toggle-layout").click();
    layout = await M(host, () => window.__meeting.layout);
    assert.equal(layout.mode, "grid");
    assert.equal(layout.main, null);
    const [ga, gb] = [await box(host, id.a), await box(host, id.b)];
    assert.ok(Math.abs(ga.width - gb.width) < 2 && Math.abs(ga.height - gb.height) < 2, "grid tiles are equal");

    // One tile full screen, and back.
    await host.locator(`[data-testid=tile][data-peer-id="${id.b}"]`).hover();
    await host.locator(`[data-testid=tile][data-peer-id="${id.b}"] [data-testid=tile-fullscreen]`).click();
    await h.waitFor(() => M(host, () => document.fullscreenElement && document.fullscreenElement.dataset.peerId), { what: "Bo's tile full screen" });
    assert.equal(await M(host, () => document.fullscreenElement.dataset.peerId), id.b);
    await host.evaluate(() => document.exitFullscreen());
    await h.waitFor(() => M(host, () => document.fullscreenElement === null), { what: "full screen to end" });

    // A tall window: the tiles are taller than the 4:3 camera; the whole picture shows.
    await a.setViewportSize({ width: 420, height: 800 });
    await h.waitFor(() => a.evaluate(() => {
      const v = document.querySelector("[data-testid=tile]:not(.local) video");
      return v && v.videoWidth > 0 && v.clientHeight > v.clientWidth;
    }), { what: "a tall remote tile on Ada's page" });
    const fit = await a.evaluate(() => {
      const v = document.querySelector("[data-testid=tile]:not(.local) video");
      const scale = Math.min(v.clientWidth / v.videoWidth, v.clientHeight / v.videoHeight);
      // The share of the camera's width that is on screen.
      const shown = getComputedStyle(v).objectFit === "cover" ? Math.min(1, v.clientWidth / (v.videoWidth * Math.max(v.clientWidth / v.videoWidth, v.clientHeight / v.videoHeight))) : Math.min(1, v.clientWidth / (v.videoWidth * scale));
      return { fit: getComputedStyle(v).objectFit, shown, w: v.videoWidth, h: v.videoHeight };
    });
    assert.equal(fit.fit, "contain");
    assert.ok(fit.shown > 0.99, `the whole width shows: ${JSON.stringify(fit)}`);
  });
});
