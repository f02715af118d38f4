// Figures for the closing note (SFU mode, Chromium, loopback):
//  1. time from emitting join-meeting to the first decoded remote video frame, median of 5
//     joins into a call of two;
//  2. the server process's CPU (utime+stime from /proc/<pid>/stat) during a 3-person call
//     of ~20 s.
// Printed as "MEASURE ..." lines.
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./lib/harness");

const skip = h.skipReason();
const CALL_SECONDS = Number(process.env.MTEST_CPU_SECONDS || 20);

// Counted as skipped (with its reason), not passed, when the tests cannot run here.
if (skip) test(`${require("node:path").basename(__filename)} not run`, { skip }, () => {});

describe("measurements", { skip: skip || false }, () => {
  let server;
  let browser;
  let roomId;
  const pages = {};
  const ids = {};

  before(async () => {
    server = await h.startServer({ sfu: true, maxParticipants: 10 });
    browser = await h.launchBrowser();
    const token = await h.guestToken(server, "Host");
    roomId = await h.createMeeting(server, token, { title: "Measure" });
    for (const name of ["Alice", "Carol"]) {
      const key = name.toLowerCase();
      pages[key] = await h.newPage(browser, server);
      await h.joinMeeting(pages[key], roomId, name);
      ids[key] = (await h.meeting(pages[key])).peerId;
    }
    await h.expectMediaFlowing(pages.alice, [ids.carol], { label: "Alice" });
  });

  after(async () => {
    await h.teardown({ pages, browser, server });
  });

  it("join-meeting → first decoded remote frame, median of 5 joins", async () => {
    const samples = [];
    const phases = [];
    for (let i = 0; i < 5; i++) {
      const page = await h.newPage(browser, server);
      try {
        await h.joinMeeting(page, roomId, `Bob${i}`);
        const t = await h.waitFor(
          () => page.evaluate(() => (window.__meeting.timings.firstRemoteFrame != null ? window.__meeting.timings : null)),
          { timeout: 20000, interval: 50, what: `Bob${i}: first remote frame` },
        );
        const stats = await h.mediaStats(page);
        assert.ok(stats.some((s) => s.source === "camera" && s.framesDecoded > 0), `Bob${i} decoded a frame: ${JSON.stringify(stats)}`);
        samples.push(t.firstRemoteFrame - t.joinEmit);
        phases.push(t);
        await page.getByTestId("leave-button").click();
        await h.waitFor(() => page.evaluate(() => window.__meeting.state === "left"), { what: "leave" });
      } finally {
        await h.closePage(page);
      }
    }
    const sorted = [...samples].sort((a, b) => a - b);
    const median = sorted[2];
    const med = (f) => {
      const v = phases.map(f).filter(Number.isFinite).sort((a, b) => a - b);
      return v.length ? v[Math.floor(v.length / 2)].toFixed(0) : "n/a";
    };
    console.log(
      `MEASURE phases (median ms after join-meeting): ack ${med((t) => t.joinAck - t.joinEmit)}, ` +
        `publish sent ${med((t) => t.publishSent - t.joinEmit)}, publish answered ${med((t) => t.publishAnswered - t.joinEmit)}, first server offer ${med((t) => t.firstServerOffer - t.joinEmit)}, ` +
        `ICE connected ${med((t) => t.iceConnected - t.joinEmit)}, first frame ${med((t) => t.firstRemoteFrame - t.joinEmit)}`,
    );
    console.log(`MEASURE join-meeting → first decoded remote frame: median ${median.toFixed(0)} ms of 5 (${sorted.map((s) => s.toFixed(0)).join(", ")} ms)`);
    assert.ok(Number.isFinite(median) && median > 0 && median < 15000, `median ${median}`);
  });

  it(`server CPU during a 3-person call of ${CALL_SECONDS} s`, async () => {
    pages.bob = await h.newPage(browser, server);
    await h.joinMeeting(pages.bob, roomId, "Bob");
    ids.bob = (await h.meeting(pages.bob)).peerId;
    await h.expectMediaFlowing(pages.bob, [ids.alice, ids.carol], { label: "Bob" });
    const cpu0 = h.cpuSeconds(server.pid);
    const t0 = process.hrtime.bigint();
    await h.sleep(CALL_SECONDS * 1000); // the measuring window itself
    const cpu1 = h.cpuSeconds(server.pid);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    // The call was really running during the window.
    await h.expectMediaFlowing(pages.alice, [ids.bob, ids.carol], { label: "Alice" });
    await h.expectMediaFlowing(pages.carol, [ids.alice, ids.bob], { label: "Carol" });
    const pct = ((cpu1 - cpu0) / secs) * 100;
    console.log(`MEASURE server CPU during a 3-person call: ${(cpu1 - cpu0).toFixed(2)} s CPU in ${secs.toFixed(1)} s = ${pct.toFixed(1)}% of one core (debug build unless MEETING_SERVICE_BIN says otherwise: ${h.BIN})`);
    assert.ok(Number.isFinite(pct) && pct >= 0);
  });
});
