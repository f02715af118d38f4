// Mesh mode (SFU_MODE_ENABLED=false) in real Chromium: three participants all decode each
// other's video and audio over direct peer connections; one leaves and the others drop it.
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./lib/harness");

const skip = h.skipReason();

// Counted as skipped (with its reason), not passed, when the tests cannot run here.
if (skip) test(`${require("node:path").basename(__filename)} not run`, { skip }, () => {});

describe("mesh meeting in Chromium", { skip: skip || false }, () => {
  let server;
  let browser;
  let roomId;
  let hostToken;
  const pages = {};
  const ids = {};

  before(async () => {
    server = await h.startServer({ sfu: false, maxParticipants: 4 });
    browser = await h.launchBrowser();
    const token = (hostToken = await h.guestToken(server, "Host"));
    roomId = await h.createMeeting(server, token, { title: "Mesh test" });
    const r = await h.api(server, "GET", `/api/meetings/${roomId}`, { token });
    const meeting = (r.json && (r.json.meeting || r.json.data)) || {};
    assert.equal(meeting.topology, "mesh", `GET /api/meetings/:id shows the topology: ${r.text}`);
  });

  after(async () => {
    await h.teardown({ pages, browser, server });
  });

  it("three participants all decode each other's video and audio", async () => {
    for (const name of ["Ann", "Ben", "Cat"]) {
      const key = name.toLowerCase();
      pages[key] = await h.newPage(browser, server);
      // Ann opens the link with the creator's token (?token=, as a production frontend
      // would hand it over), so she is the host.
      await h.joinMeeting(pages[key], roomId, name, { token: key === "ann" ? hostToken : undefined });
      const m = await h.meeting(pages[key]);
      assert.equal(m.topology, "mesh");
      assert.equal(await pages[key].evaluate(() => window.__meeting.isHost), key === "ann");
      assert.ok(!(await pages[key].url()).includes("token="), "the token is removed from the address bar");
      ids[key] = m.peerId;
    }
    await h.expectMediaFlowing(pages.ann, [ids.ben, ids.cat], { label: "Ann" });
    await h.expectMediaFlowing(pages.ben, [ids.ann, ids.cat], { label: "Ben" });
    await h.expectMediaFlowing(pages.cat, [ids.ann, ids.ben], { label: "Cat" });
    // Mesh media never touches the server's SFU workers.
    const ready = await h.api(server, "GET", "/health/ready");
    const workers = (ready.json && ready.json.checks && ready.json.checks.sfu && ready.json.checks.sfu.workers) || [];
    assert.ok(workers.length > 0, `the SFU runs beside mesh meetings: ${ready.text}`);
    for (const w of workers) assert.equal(w.participants, 0, `SFU worker ${w.index} has mesh participants: ${ready.text}`);
    for (const key of ["ann", "ben", "cat"]) {
      const n = await pages[key].evaluate(() => window.__meeting.participants.length);
      assert.equal(n, 3, `${key} lists three participants`);
    }
  });

  it("screen share over the mesh: the others decode it; stopping removes their tiles", async () => {
    await pages.cat.getByTestId("toggle-screen").click();
    await h.waitFor(() => pages.cat.evaluate(() => window.__meeting.screenSharing), { what: "Cat's screen share to start" });
    for (const key of ["ann", "ben"]) {
      await h.waitFor(
        async () => (await h.meeting(pages[key])).tiles.some((t) => t.peerId === ids.cat && t.source === "screen"),
        { what: `${key} to get Cat's screen tile` },
      );
      await h.expectMediaFlowing(pages[key], [ids.cat], { sources: ["screen"], label: key });
    }
    await pages.cat.getByTestId("toggle-screen").click();
    for (const key of ["ann", "ben"]) {
      await h.waitFor(
        async () => !(await h.meeting(pages[key])).tiles.some((t) => t.peerId === ids.cat && t.source === "screen"),
        { what: `${key}: Cat's screen tile to go away` },
      );
    }
  });

  it("one leaves and the others drop it; the rest keep their media", async () => {
    await pages.ben.getByTestId("leave-button").click();
    await h.waitFor(() => pages.ben.evaluate(() => window.__meeting.state === "left"), { what: "Ben left" });
    for (const key of ["ann", "cat"]) {
      await h.waitFor(
        async () => {
          const m = await h.meeting(pages[key]);
          return !m.participants.some((p) => p.peerId === ids.ben) && !m.tiles.some((t) => t.peerId === ids.ben);
        },
        { what: `${key} to drop Ben` },
      );
      const stats = await h.mediaStats(pages[key]);
      assert.ok(!stats.some((s) => s.peerId === ids.ben), `${key} has no media entry for Ben any more`);
    }
    await h.expectMediaFlowing(pages.ann, [ids.cat], { label: "Ann after Ben left" });
    await h.expectMediaFlowing(pages.cat, [ids.ann], { label: "Cat after Ben left" });
    await h.closePage(pages.ben);
    delete pages.ben;
  });

  it("camera and microphone denied: joins without them, says so, still receives the others", async () => {
    const page = (pages.dan = await h.newPage(browser, server));
    await page.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
    });
    await h.joinMeeting(page, roomId, "Dan");
    const text = await page.getByTestId("banner-text").textContent();
    assert.match(text, /denied/i);
    assert.match(text, /without/i);
    assert.equal(await page.getByTestId("toggle-mic").isDisabled(), true);
    ids.dan = (await h.meeting(page)).peerId;
    await h.expectMediaFlowing(page, [ids.ann, ids.cat], { label: "Dan" });
    await h.waitFor(
      async () => (await h.meeting(pages.ann)).tiles.some((t) => t.peerId === ids.dan),
      { what: "Ann to show Dan's tile (name, no video)" },
    );
  });

  it("the host removes a participant from the participant list", async () => {
    await pages.ann.getByTestId("toggle-participants").click();
    await pages.ann.locator(`[data-testid="participant"][data-peer-id="${ids.dan}"] [data-testid="host-remove"]`).click();
    await h.waitFor(() => pages.dan.evaluate(() => window.__meeting.state === "removed"), { what: "Dan to be told he was removed" });
    assert.match(await pages.dan.getByTestId("done-text").textContent(), /removed/i);
    for (const key of ["ann", "cat"]) {
      await h.waitFor(
        async () => !(await h.meeting(pages[key])).participants.some((p) => p.peerId === ids.dan),
        { what: `${key} to drop Dan` },
      );
    }
  });

  it("a removal holds until the host lets the participant back in", async () => {
    // Dan opens the link again: the server refuses him, and the page says why.
    assert.equal(await h.joinMeeting(pages.dan, roomId, "Dan", { expect: "error" }), "error");
    assert.equal((await h.meeting(pages.dan)).error.code, "REMOVED");
    assert.match(await pages.dan.getByTestId("done-title").textContent(), /removed you/i);
    // The host's list shows whom it removed, with the way back.
    const row = pages.ann.locator('[data-testid="removed-participant"]');
    await row.waitFor();
    assert.match(await row.textContent(), /Dan/);
    await row.locator('[data-testid="host-allow"]').click();
    await h.waitFor(async () => (await row.count()) === 0, { what: "the host's page to drop Dan from the removed list" });
    await h.joinMeeting(pages.dan, roomId, "Dan");
    await h.waitFor(
      async () => (await h.meeting(pages.ann)).participants.some((p) => p.userName === "Dan"),
      { what: "Ann to see Dan back" },
    );
  });
});
