// SFU mode in real Chromium: (a) two see and hear each other, (g) chat, (b) a third joins
// late, screenshot, (f) a fourth is refused (MAX_PARTICIPANTS=3), (c) screen share,
// host controls, (d) one leaves, (e) the host ends the meeting.
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const h = require("./lib/harness");

const skip = h.skipReason();

// Counted as skipped (with its reason), not passed, when the tests cannot run here.
if (skip) test(`${require("node:path").basename(__filename)} not run`, { skip }, () => {});

describe("SFU meeting in Chromium", { skip: skip || false }, () => {
  let server;
  let browser;
  let roomId;
  const pages = {};
  const ids = {};

  before(async () => {
    server = await h.startServer({ sfu: true, maxParticipants: 3 });
    browser = await h.launchBrowser();
  });

  after(async () => {
    await h.teardown({ pages, browser, server });
  });

  async function who(page) {
    const m = await h.meeting(page);
    return m.peerId;
  }

  it("creates a meeting from the landing page and shows the copy-link button", async () => {
    const page = (pages.alice = await h.newPage(browser, server, { viewport: { width: 960, height: 540 } }));
    await page.goto("/");
    await page.getByTestId("landing-name").fill("Alice");
    await page.getByTestId("title-input").fill("Browser test");
    await page.getByTestId("new-meeting").click();
    await page.waitForURL(/\/m\/[^/]+$/, { timeout: 15000 });
    roomId = decodeURIComponent(new URL(page.url()).pathname.split("/").pop());
    assert.ok(roomId.length > 0);
    // The name entered on the landing page is carried over.
    assert.equal(await page.getByTestId("name-input").inputValue(), "Alice");
    await page.getByTestId("join-button").click();
    await h.waitFor(() => page.evaluate(() => window.__meeting.state === "joined"), { what: "Alice joined" });
    const m = await h.meeting(page);
    assert.equal(m.topology, "sfu");
    ids.alice = m.peerId;
    assert.ok(await page.getByTestId("end-meeting").count(), "host controls rendered for the host");
    await page.getByTestId("copy-link").click();
    const link = await page.evaluate(() => window.__meeting.copiedLink);
    assert.equal(link, `${server.base}/m/${encodeURIComponent(roomId)}`);
  });

  it("a meeting code that does not exist is refused with its message", async () => {
    const page = await h.newPage(browser, server);
    try {
      await h.joinMeeting(page, "NOPE-NOPE-NOP", "Lost", { expect: "error" });
      const m = await h.meeting(page);
      assert.equal(m.error.code, "NOT_FOUND", JSON.stringify(m.error));
      assert.match(await page.getByTestId("done-title").textContent(), /no meeting/i);
    } finally {
      await h.closePage(page);
    }
  });

  it("(a) two participants see and hear each other", async () => {
    // Bob comes in through the landing page's "Join" with the code, typed in lower case.
    pages.bob = await h.newPage(browser, server);
    await pages.bob.goto("/");
    await pages.bob.getByTestId("join-code").fill(roomId.toLowerCase());
    await pages.bob.getByTestId("join-code-button").click();
    await pages.bob.waitForURL(new RegExp(`/m/${encodeURIComponent(roomId)}$`), { timeout: 15000 });
    await h.joinMeeting(pages.bob, roomId, "Bob");
    ids.bob = await who(pages.bob);
    await h.expectMediaFlowing(pages.alice, [ids.bob], { label: "Alice" });
    await h.expectMediaFlowing(pages.bob, [ids.alice], { label: "Bob" });
    const m = await h.meeting(pages.bob);
    const names = m.participants.map((p) => p.userName).sort();
    assert.deepEqual(names, ["Alice", "Bob"]);
    assert.ok(m.tiles.some((t) => t.peerId === ids.alice && t.source === "camera" && t.hasVideo));
    // A non-host gets no host controls.
    assert.equal(await pages.bob.locator('[data-testid="host-remove"]').count(), 0);
  });

  it("(g) chat reaches everyone, once", async () => {
    for (const [name, text] of [["alice", "hello from Alice"], ["bob", "hi Alice, Bob here"]]) {
      const page = pages[name];
      await page.getByTestId("toggle-chat").click();
      await page.getByTestId("chat-input").fill(text);
      await page.getByTestId("chat-send").click();
    }
    for (const name of ["alice", "bob"]) {
      const chat = await h.waitFor(
        async () => {
          const c = (await h.meeting(pages[name])).chat;
          return c.length >= 2 ? c : null;
        },
        { what: `${name} to receive both chat messages` },
      );
      const texts = chat.map((c) => c.message).sort();
      assert.deepEqual(texts, ["hello from Alice", "hi Alice, Bob here"], `${name}: ${JSON.stringify(chat)}`);
      await pages[name].getByTestId("toggle-chat").click();
    }
  });

  it("mute and camera off are shown to the others, and undone", async () => {
    const bobSeen = async () => (await h.meeting(pages.alice)).participants.find((p) => p.peerId === ids.bob);
    await pages.bob.getByTestId("toggle-mic").click();
    await pages.bob.getByTestId("toggle-camera").click();
    assert.equal(await pages.bob.evaluate(() => window.__meeting.audioEnabled || window.__meeting.videoEnabled), false);
    await h.waitFor(async () => {
      const p = await bobSeen();
      return p && !p.audioEnabled && !p.videoEnabled;
    }, { what: "Alice to see Bob muted with his camera off" });
    const tile = pages.alice.locator(`[data-testid="tile"][data-peer-id="${ids.bob}"][data-source="camera"]`);
    await h.waitFor(async () => (await tile.getAttribute("class")).includes("no-video"), { what: "Bob's tile to show his name instead of video" });
    assert.match(await tile.getAttribute("class"), /muted/);
    await pages.bob.getByTestId("toggle-mic").click();
    await pages.bob.getByTestId("toggle-camera").click();
    await h.waitFor(async () => {
      const p = await bobSeen();
      return p && p.audioEnabled && p.videoEnabled;
    }, { what: "Alice to see Bob unmuted with his camera on" });
    await h.expectMediaFlowing(pages.alice, [ids.bob], { label: "Alice after Bob's camera came back" });
  });

  it("(b) a third joins late and all three see each other", async () => {
    pages.carol = await h.newPage(browser, server);
    await h.joinMeeting(pages.carol, roomId, "Carol");
    ids.carol = await who(pages.carol);
    await h.expectMediaFlowing(pages.carol, [ids.alice, ids.bob], { label: "Carol" });
    await h.expectMediaFlowing(pages.alice, [ids.bob, ids.carol], { label: "Alice" });
    await h.expectMediaFlowing(pages.bob, [ids.alice, ids.carol], { label: "Bob" });
    // Screenshot of the 3-person call for the README (small PNG), chat panel open.
    await pages.alice.getByTestId("toggle-chat").click();
    await pages.alice.getByTestId("chat-messages").locator("li").nth(1).waitFor();
    const png = await pages.alice.screenshot({ type: "png" });
    await pages.alice.getByTestId("toggle-chat").click();
    assert.ok(png.length > 1000);
    if (process.env.MTEST_SCREENSHOT !== "0") {
      fs.writeFileSync(path.join(h.REPO, "docs", "screenshot.png"), png);
    }
  });

  it("(f) a join beyond MAX_PARTICIPANTS is refused with its message", async () => {
    pages.dave = await h.newPage(browser, server);
    const state = await h.joinMeeting(pages.dave, roomId, "Dave", { expect: null });
    assert.equal(state, "error");
    const m = await h.meeting(pages.dave);
    assert.equal(m.error && m.error.code, "ROOM_FULL");
    const text = await pages.dave.getByTestId("done-title").textContent();
    assert.match(text, /full/i);
    await h.closePage(pages.dave);
    delete pages.dave;
    // Nobody else saw Dave.
    const a = await h.meeting(pages.alice);
    assert.equal(a.participants.length, 3);
  });

  it("(c) screen share: the others decode it; stopping removes their screen tiles", async () => {
    await pages.bob.getByTestId("toggle-screen").click();
    await h.waitFor(() => pages.bob.evaluate(() => window.__meeting.screenSharing || (window.__meeting.error && window.__meeting.error.code === "SCREEN_DENIED")), { what: "Bob's screen share to start" });
    const bobState = await pages.bob.evaluate(() => ({ sharing: window.__meeting.screenSharing, error: window.__meeting.error }));
    assert.ok(bobState.sharing, `getDisplayMedia failed in headless Chromium: ${JSON.stringify(bobState.error)}`);
    for (const name of ["alice", "carol"]) {
      await h.waitFor(
        async () => (await h.meeting(pages[name])).tiles.some((t) => t.peerId === ids.bob && t.source === "screen"),
        { what: `${name} to get Bob's screen tile` },
      );
      await h.expectMediaFlowing(pages[name], [ids.bob], { sources: ["screen"], label: name });
      const m = await h.meeting(pages[name]);
      assert.ok(m.participants.find((p) => p.peerId === ids.bob).screenSharing, `${name} sees Bob sharing`);
    }
    await pages.bob.getByTestId("toggle-screen").click();
    for (const name of ["alice", "carol"]) {
      await h.waitFor(
        async () => !(await h.meeting(pages[name])).tiles.some((t) => t.peerId === ids.bob && t.source === "screen"),
        { what: `${name}: Bob's screen tile to go away` },
      );
      const m = await h.meeting(pages[name]);
      assert.ok(!m.participants.find((p) => p.peerId === ids.bob).screenSharing);
    }
  });

  it("host mutes a participant: the participant is told and everyone sees it", async () => {
    await pages.alice.getByTestId("toggle-participants").click();
    await pages.alice.locator(`[data-testid="participant"][data-peer-id="${ids.carol}"] [data-testid="host-mute"]`).click();
    await h.waitFor(() => pages.carol.evaluate(() => window.__meeting.audioEnabled === false), { what: "Carol to be muted" });
    await h.waitFor(
      async () => (await h.meeting(pages.bob)).participants.find((p) => p.peerId === ids.carol).audioEnabled === false,
      { what: "Bob to see Carol muted" },
    );
    await pages.alice.getByTestId("toggle-participants").click();
  });

  it("(d) one leaves: the others drop them, and so does the REST participant list", async () => {
    await pages.carol.getByTestId("leave-button").click();
    await h.waitFor(() => pages.carol.evaluate(() => window.__meeting.state === "left"), { what: "Carol left" });
    for (const name of ["alice", "bob"]) {
      await h.waitFor(
        async () => {
          const m = await h.meeting(pages[name]);
          return !m.participants.some((p) => p.peerId === ids.carol) && !m.tiles.some((t) => t.peerId === ids.carol);
        },
        { what: `${name} to drop Carol` },
      );
      assert.equal(await pages[name].locator(`[data-testid="tile"][data-peer-id="${ids.carol}"]`).count(), 0);
    }
    const token = await h.guestToken(server, "Observer");
    const r = await h.waitFor(
      async () => {
        const res = await h.api(server, "GET", `/api/meetings/${roomId}/participants`, { token });
        const list = (res.json && (res.json.participants || (res.json.data && res.json.data.participants))) || null;
        if (!Array.isArray(list)) throw new Error(`unexpected body ${res.status} ${res.text}`);
        return list.some((p) => p.userName === "Carol" && !p.leftAt) ? null : list;
      },
      { what: "REST participants without Carol" },
    );
    assert.ok(r.some((p) => p.userName === "Alice"), JSON.stringify(r));
    // Alice and Bob still get each other's media.
    await h.expectMediaFlowing(pages.bob, [ids.alice], { label: "Bob after Carol left" });
  });

  it("(e) the host ends the meeting and every page is told", async () => {
    await pages.alice.getByTestId("toggle-participants").click();
    await pages.alice.getByTestId("end-meeting").click();
    await pages.alice.getByTestId("end-meeting-confirm").click();
    for (const name of ["alice", "bob"]) {
      await h.waitFor(() => pages[name].evaluate(() => window.__meeting.state === "ended"), { what: `${name} to see the meeting ended` });
      const title = await pages[name].getByTestId("done-title").textContent();
      assert.match(title, /ended/i);
    }
    // Joining an ended meeting is refused with its code.
    const late = await h.newPage(browser, server);
    try {
      await h.joinMeeting(late, roomId, "Late", { expect: "error" });
      const m = await h.meeting(late);
      assert.equal(m.error.code, "MEETING_ENDED", `${JSON.stringify(m.error)}${h.serverLog(40)}`);
    } finally {
      await h.closePage(late);
    }
  });
});
