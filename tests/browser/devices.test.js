// The page's devices and keyboard (issue #16, items 5, 8 and 9):
// - before joining: a camera preview, a microphone level meter that moves (WebAudio),
//   the lists of microphones, cameras and speakers;
// - during the call: switching to another camera replaces the sender's track; the
//   other page keeps decoding and neither page creates or receives an offer or answer
//   (counted around RTCPeerConnection by an init script);
// - a browser that blocks camera and microphone: the pre-join view says they are
//   blocked and how to allow them, and the page still joins without them;
// - keyboard only: Tab to the name, type, Tab to Join, Enter; focus is visible; M mutes
//   and unmutes, Space on the focused mute button too; ? opens the shortcut list.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./lib/harness");

const skip = h.skipReason();

// Counts every renegotiation step a page takes, and every track replacement.
function countSdp() {
  window.__sdp = { createOffer: 0, createAnswer: 0, setRemoteDescription: 0, replaceTrack: 0 };
  for (const name of ["createOffer", "createAnswer", "setRemoteDescription"]) {
    const orig = RTCPeerConnection.prototype[name];
    RTCPeerConnection.prototype[name] = function (...args) {
      window.__sdp[name] += 1;
      return orig.apply(this, args);
    };
  }
  const replace = RTCRtpSender.prototype.replaceTrack;
  RTCRtpSender.prototype.replaceTrack = function (track) {
    if (track && track.kind === "video") window.__sdp.replaceTrack += 1;
    return replace.call(this, track);
  };
}

const sdp = (page) => page.evaluate(() => Object.assign({}, window.__sdp));

describe("devices and keyboard", { skip: skip || false }, () => {
  let server;
  let browser;
  let blocked;
  const pages = {};

  before(async () => {
    server = await h.startServer({ sfu: true });
    // Three fake cameras: Chromium's second one delivers Y16 (depth) frames, which no
    // encoder takes; the third (MJPEG) is an ordinary camera to switch to.
    browser = await h.launchBrowser({ cameras: 3 });
    blocked = await h.launchBrowser({ denyMedia: true });
  });

  after(async () => {
    await h.teardown({ pages, browser, server });
    if (blocked) await blocked.close().catch(() => {});
  });

  it("preview and meter before joining; a camera switched mid-call keeps the other page decoding without an offer or answer", async () => {
    const token = await h.guestToken(server, "Ada");
    const roomId = await h.createMeeting(server, token);
    const a = (pages.a = await h.newPage(browser, server));
    await a.addInitScript(countSdp);
    await a.goto(`/m/${roomId}`);
    // The preview plays the camera; the lists name both fake cameras and the speakers.
    await h.waitFor(() => a.evaluate(() => {
      const v = document.querySelector("[data-testid=prejoin-preview]");
      return v.videoWidth > 0 && !v.paused;
    }), { what: "the pre-join preview to play" });
    await h.waitFor(() => a.evaluate(() => window.__meeting.devices.filter((d) => d.kind === "videoinput").length === 3), { what: "three cameras listed" });
    const cams = await a.locator("[data-testid=select-camera] option").allTextContents();
    assert.deepEqual(cams, ["fake_device_0", "fake_device_1", "fake_device_2"]);
    assert.ok((await a.locator("[data-testid=select-mic] option").count()) >= 1);
    assert.equal(await a.locator("#speaker-row").isVisible(), true, "Chromium has setSinkId: the speaker is offered");
    // The meter follows the microphone once a gesture lets audio run (autoplay policy).
    await a.getByTestId("name-input").click();
    await h.waitFor(() => a.evaluate(() => window.__meeting.micPeak > 0.01), { what: "the microphone meter to move" });
    assert.ok((await a.getByTestId("mic-level").evaluate((m) => m.value)) >= 0);

    await a.getByTestId("name-input").fill("Ada");
    await a.getByTestId("join-button").click();
    await h.waitFor(() => a.evaluate(() => window.__meeting.state === "joined"), { what: "Ada to join" });
    const b = (pages.b = await h.newPage(browser, server));
    await b.addInitScript(countSdp);
    await h.joinMeeting(b, roomId, "Bo");
    const adaPeer = await a.evaluate(() => window.__meeting.peerId);
    await h.expectMediaFlowing(b, [adaPeer], { sources: ["camera", "microphone"], label: "Bo" });
    const localLabel = () => a.evaluate(() => document.querySelector(".tile.local video").srcObject.getVideoTracks()[0].label);
    assert.equal(await localLabel(), "fake_device_0");

    // Both pages are settled: no offer in flight. Then Ada picks the other camera.
    await h.sleep(1000);
    const before = { a: await sdp(a), b: await sdp(b) };
    const framesBefore = h.statFor(await h.mediaStats(b), adaPeer, "camera").framesDecoded;
    await a.getByTestId("toggle-devices").click();
    const second = await a.locator("[data-testid=select-camera] option", { hasText: "fake_device_2" }).getAttribute("value");
    await a.getByTestId("select-camera").selectOption(second);
    await h.waitFor(() => a.evaluate(() => window.__meeting.deviceSwitches === 1), { what: "the camera switch" });
    assert.equal(await localLabel(), "fake_device_2", "the local tile shows the new camera");
    await h.expectMediaFlowing(b, [adaPeer], { sources: ["camera", "microphone"], label: "Bo after the switch" });
    const framesAfter = h.statFor(await h.mediaStats(b), adaPeer, "camera").framesDecoded;
    assert.ok(framesAfter > framesBefore, `Bo keeps decoding Ada's camera (${framesBefore} → ${framesAfter})`);
    const after = { a: await sdp(a), b: await sdp(b) };
    assert.equal(after.a.replaceTrack, before.a.replaceTrack + 1, "the camera went out by replaceTrack");
    for (const k of ["createOffer", "createAnswer", "setRemoteDescription"]) {
      assert.equal(after.a[k], before.a[k], `Ada: no ${k} for the switch`);
      assert.equal(after.b[k], before.b[k], `Bo: no ${k} for the switch`);
    }

    // The speaker: the remote audio plays on the chosen output.
    const out = await a.locator("[data-testid=select-speaker] option").nth(1).getAttribute("value");
    await a.getByTestId("select-speaker").selectOption(out);
    await h.waitFor(() => a.evaluate((id) => [...document.querySelectorAll("#grid audio")].every((el) => el.sinkId === id), out), { what: "the audio on the chosen speaker" });
  });

  it("blocked camera and microphone: the pre-join view says so and how to allow them; joining still works", async () => {
    const token = await h.guestToken(server, "Host");
    const roomId = await h.createMeeting(server, token);
    const page = (pages.blocked = await h.newPage(blocked, server));
    await page.goto(`/m/${roomId}`);
    const status = page.getByTestId("media-status");
    await status.waitFor({ state: "visible" });
    const text = await status.textContent();
    assert.match(text, /microphone and camera are blocked/i);
    assert.match(text, /site settings/i);
    assert.equal(await page.getByTestId("prejoin-preview").isVisible(), false, "no preview without a camera");
    await page.getByTestId("name-input").fill("Bea");
    await page.getByTestId("join-button").click();
    await h.waitFor(() => page.evaluate(() => window.__meeting.state === "joined"), { what: "Bea to join without devices" });
    assert.match(await page.getByTestId("banner-text").textContent(), /denied/i);
    assert.equal(await page.getByTestId("toggle-mic").isDisabled(), true);
    assert.equal(await page.getByTestId("toggle-camera").isDisabled(), true);
  });

  it("keyboard only: join, visible focus, M and Space mute and unmute, ? lists the shortcuts", async () => {
    const token = await h.guestToken(server, "Host");
    const roomId = await h.createMeeting(server, token);
    const page = (pages.keys = await h.newPage(browser, server));
    await page.goto(`/m/${roomId}`);
    await page.getByTestId("prejoin-code").waitFor({ state: "visible" });
    const focused = () => page.evaluate(() => document.activeElement && document.activeElement.dataset.testid);
    const tabTo = async (testid) => {
      for (let i = 0; i < 40 && (await focused()) !== testid; i++) await page.keyboard.press("Tab");
      assert.equal(await focused(), testid, `Tab reaches ${testid}`);
    };
    const outline = () => page.evaluate(() => {
      const s = getComputedStyle(document.activeElement);
      return s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2;
    });
    await tabTo("name-input");
    await page.keyboard.type("Kay");
    await tabTo("join-button");
    assert.ok(await outline(), "the focused Join button shows its focus");
    await page.keyboard.press("Enter");
    await h.waitFor(() => page.evaluate(() => window.__meeting.state === "joined"), { what: "Kay to join by keyboard" });
    assert.equal(await page.evaluate(() => window.__meeting.audioEnabled), true);

    await page.keyboard.press("m");
    await h.waitFor(() => page.evaluate(() => window.__meeting.audioEnabled === false), { what: "M to mute" });
    assert.equal(await page.getByTestId("toggle-mic").textContent(), "Unmute");
    await page.keyboard.press("m");
    await h.waitFor(() => page.evaluate(() => window.__meeting.audioEnabled === true), { what: "M to unmute" });
    await page.keyboard.press("v");
    await h.waitFor(() => page.evaluate(() => window.__meeting.videoEnabled === false), { what: "V to stop the camera" });

    await tabTo("toggle-mic");
    assert.ok(await outline(), "the focused mute button shows its focus");
    await page.keyboard.press("Space");
    await h.waitFor(() => page.evaluate(() => window.__meeting.audioEnabled === false), { what: "Space on Mute to mute" });
    // Typing in the chat never triggers a shortcut.
    await page.getByTestId("toggle-chat").focus();
    await page.keyboard.press("Enter");
    await h.waitFor(() => focused().then((f) => f === "chat-input"), { what: "the chat field to take the focus" });
    await page.keyboard.type("mmm");
    assert.equal(await page.evaluate(() => window.__meeting.audioEnabled), false, "typing m in the chat does not unmute");
    assert.equal(await page.getByTestId("chat-input").inputValue(), "mmm");

    await page.getByTestId("toggle-mic").focus();
    await page.keyboard.press("Shift+?");
    await page.getByTestId("help").waitFor({ state: "visible" });
    assert.match(await page.getByTestId("help").textContent(), /Mute or unmute/);
    await page.keyboard.press("Escape");
    await page.getByTestId("help").waitFor({ state: "hidden" });
    // Every control of the bar has a name a screen reader can say.
    const unnamed = await page.evaluate(() => [...document.querySelectorAll(".controls button")].filter((b) => !(b.getAttribute("aria-label") || b.textContent.trim())).length);
    assert.equal(unnamed, 0);
  });
});
