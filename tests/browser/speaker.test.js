// The active speaker in an SFU meeting of three Chromium pages, from the audio levels
// (RFC 6464) their fake microphones send (needs `ffmpeg` for the tone they play):
// - the SFU's offer negotiates `urn:ietf:params:rtp-hdrext:ssrc-audio-level` (without it
//   the page sends no levels and nobody is ever named);
// - with all but one muted (a muted track sends silence, level 127), every page's
//   `__meeting.activeSpeaker` names the unmuted one (not the speaker before) within 2 s
//   of the mutes, and its camera tile carries the highlight (`active-speaker` class);
// - when the second unmutes and the first mutes, every page moves to the second;
// - a fourth page that joins with its microphone off (so that nothing changes and the
//   SFU has no reason to report) is told the current speaker when its media connects.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const h = require("./lib/harness");
const { trackPeerConnections } = require("./lib/ice");

const skip = h.skipReason();

describe("active speaker", { skip: skip || false }, () => {
  let server;
  let browser;
  let tone;
  const pages = {};

  before(async () => {
    server = await h.startServer({ sfu: true });
    // Chromium's own fake microphone beeps for 20 ms twice a second, which is no more
    // speech to the detector than a cough: every page plays a steady tone instead.
    tone = path.join(os.tmpdir(), `speaker-tone-${process.pid}.wav`);
    execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10", "-ac", "1", tone]);
    browser = await h.launchBrowser({ audioFile: tone });
  });

  after(async () => {
    await h.teardown({ pages, browser, server });
    if (tone) fs.rmSync(tone, { force: true });
  });

  /** Wait until every page names `peerId` as the speaker and highlights its tile; returns the ms it took. */
  async function speakerEverywhere(peerId, who, timeout) {
    const t0 = Date.now();
    for (const [name, p] of Object.entries(pages)) {
      const left = Math.max(1, timeout - (Date.now() - t0));
      await h.waitFor(() => p.evaluate((id) => window.__meeting.activeSpeaker === id, peerId), { timeout: left, interval: 100, what: `${name}'s page to name ${who} the speaker` })
        .catch(async (e) => {
          const seen = await p.evaluate(() => ({ speaker: window.__meeting.activeSpeaker, speaking: window.__meeting.speaking }));
          throw new Error(`${e.message}: it shows ${JSON.stringify(seen)}${h.serverLog()}`);
        });
    }
    const took = Date.now() - t0;
    for (const [name, p] of Object.entries(pages)) {
      const cls = await p.locator(`[data-testid=tile][data-peer-id="${peerId}"][data-source=camera]`).getAttribute("class");
      assert.match(cls, /\bactive-speaker\b/, `${name}'s tile of ${who} is highlighted`);
    }
    return took;
  }

  async function setMuted(page, muted) {
    const on = await page.evaluate(() => window.__meeting.audioEnabled);
    if (on === !muted) return;
    await page.getByTestId("toggle-mic").click();
    await h.waitFor(() => page.evaluate((m) => window.__meeting.audioEnabled === !m, muted), { what: "the microphone to switch" });
  }

  it("names the one unmuted participant on every page, and follows the floor", async () => {
    const token = await h.guestToken(server, "Hedy");
    const roomId = await h.createMeeting(server, token);
    const names = { a: "Ada", b: "Bo", c: "Cy" };
    const ids = {};
    for (const [k, name] of Object.entries(names)) {
      const p = (pages[k] = await h.newPage(browser, server));
      await p.addInitScript(trackPeerConnections());
      await h.joinMeeting(p, roomId, name, k === "a" ? { token } : {});
      ids[k] = await p.evaluate(() => window.__meeting.peerId);
    }
    for (const k of Object.keys(names)) {
      await h.expectMediaFlowing(pages[k], Object.keys(names).filter((o) => o !== k).map((o) => ids[o]), { sources: ["microphone"], label: names[k] });
    }
    // The SFU offers the audio-level extension on the audio it sends and receives.
    const sdp = await pages.a.evaluate(() => window.__pcs.map((pc) => (pc.remoteDescription ? pc.remoteDescription.sdp : "")).join("\n"));
    const audio = sdp.split(/\r?\nm=/).filter((m) => m.startsWith("audio"));
    assert.ok(audio.length > 0, "the SFU's offer has audio");
    for (const m of audio) assert.match(m, /a=extmap:\d+ urn:ietf:params:rtp-hdrext:ssrc-audio-level/, "audio m-line negotiates RFC 6464 levels");

    // All three play the same tone: the first to speak (Ada) keeps the floor. Now only
    // Cy speaks, so the floor must move.
    await h.waitFor(() => pages.c.evaluate(() => window.__meeting.activeSpeaker), { what: "a first speaker" });
    assert.notEqual(await pages.c.evaluate(() => window.__meeting.activeSpeaker), ids.c, "Cy is not the speaker before the mutes");
    await setMuted(pages.a, true);
    await setMuted(pages.b, true);
    const first = await speakerEverywhere(ids.c, "Cy", 2000);
    console.log(`MEASURE active speaker named on every page ${first} ms after the mutes`);

    // Bo takes the floor, Cy stops.
    await setMuted(pages.b, false);
    await setMuted(pages.c, true);
    const second = await speakerEverywhere(ids.b, "Bo", 6000);
    console.log(`MEASURE floor moved to the second speaker on every page in ${second} ms`);
    for (const [name, p] of Object.entries(pages)) {
      const cls = await p.locator(`[data-testid=tile][data-peer-id="${ids.c}"][data-source=camera]`).getAttribute("class");
      assert.doesNotMatch(cls, /\bactive-speaker\b/, `${name}'s tile of Cy is no longer highlighted`);
    }

    // A late joiner, microphone off: the speaker set does not change, yet it learns Bo.
    const d = (pages.d = await h.newPage(browser, server));
    await d.goto(`/m/${encodeURIComponent(roomId)}`);
    await d.getByTestId("prejoin-audio").uncheck();
    await d.getByTestId("name-input").fill("Dee");
    await d.getByTestId("join-button").click();
    await h.waitFor(() => d.evaluate(() => window.__meeting.state === "joined" && window.__meeting.audioEnabled === false), { what: "Dee to join muted" });
    await speakerEverywhere(ids.b, "Bo", 10000);
  });
});
