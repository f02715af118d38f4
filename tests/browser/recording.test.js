// Recording in real Chromium, checked with the system's ffprobe/ffmpeg:
// (1) a 3-person SFU meeting with a screen share; the host records 20 s from the page;
//     every page (and a late joiner's) shows the "Recording" indicator; every track file
//     has the expected codec, a duration within 1 s of its span, and decodes without an
//     error; the host lists and downloads them (Range), others cannot; a signed link
//     works; `meeting-service recording compose` makes one video and one audio stream
//     of the recording's length;
// (2) SIGKILL 10 s into a recording: the files written until then still probe and decode;
// (3) a recording directory on a tiny tmpfs the test mounts fills up: the host is told
//     (recording:stopped, disk-full), the server logs it, and the meeting goes on.
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const http = require("node:http");
const h = require("./lib/harness");
const { probe, lastPacketSecs, decodesCleanly, recordingDir, indicator, startFromPage } = require("./lib/recording-files");

let skip = h.skipReason();
if (!skip && spawnSync("ffprobe", ["-version"]).status !== 0) skip = "ffprobe/ffmpeg not installed (apt-get install ffmpeg)";
if (skip) test(`${path.basename(__filename)} not run`, { skip }, () => {});

const SPAN_MS = 20000;

async function hostMeeting(server, name) {
  const token = await h.guestToken(server, name);
  const roomId = await h.createMeeting(server, token, { topology: "sfu", settings: { allowRecording: true } });
  return { token, roomId };
}


describe("recording", { skip: skip || false }, () => {
  describe("a 3-person meeting with a screen share, recorded for 20 s", () => {
    let server;
    let browser;
    let host;
    const pages = {};
    const ids = {};
    let startedAt;
    let stoppedAt;
    let recDir;
    let manifest;
    // A webhook receiver on loopback: the bodies it was posted.
    const hooks = [];
    let receiver;

    before(async () => {
      receiver = http.createServer((req, res) => {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => {
          try {
            hooks.push(JSON.parse(body));
          } catch (_) {
            hooks.push({ unparsable: body });
          }
          res.writeHead(204).end();
        });
      });
      await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
      server = await h.startServer({
        sfu: true,
        env: {
          WEBHOOK_URL: `http://127.0.0.1:${receiver.address().port}/hook`,
          WEBHOOK_SECRET: "recording-test-webhook-secret",
          RECORDING_AUTO_COMPOSE: "true",
        },
      });
      browser = await h.launchBrowser();
      host = await hostMeeting(server, "Alice");
    });
    after(async () => {
      await h.teardown({ pages, browser, server });
      if (receiver) receiver.close();
    });

    it("three join, one shares a screen, media flows", async () => {
      pages.alice = await h.newPage(browser, server);
      await h.joinMeeting(pages.alice, host.roomId, "Alice", { token: host.token });
      for (const name of ["bob", "carol"]) {
        pages[name] = await h.newPage(browser, server);
        await h.joinMeeting(pages[name], host.roomId, name);
      }
      for (const name of ["alice", "bob", "carol"]) ids[name] = (await h.meeting(pages[name])).peerId;
      await pages.bob.getByTestId("toggle-screen").click();
      await h.waitFor(() => pages.bob.evaluate(() => window.__meeting.screenSharing), { what: "Bob's screen share" });
      await h.expectMediaFlowing(pages.alice, [ids.bob, ids.carol], { label: "Alice" });
      await h.expectMediaFlowing(pages.carol, [ids.bob], { sources: ["screen"], label: "Carol (Bob's screen)" });
    });

    it("a non-host has no recording button; the host starts recording and every page shows it", async () => {
      assert.equal(await pages.bob.getByTestId("record-toggle").isVisible(), false);
      startedAt = Date.now();
      await startFromPage(pages.alice);
      for (const name of ["bob", "carol"]) {
        await h.waitFor(() => indicator(pages[name]), { what: `${name}'s page to show Recording` });
      }
      const m = await pages.carol.evaluate(() => window.__meeting.recording);
      assert.ok(m && m.recordingId, JSON.stringify(m));
      // The REST view agrees, and a second start is refused.
      const r = await h.api(server, "POST", `/api/meetings/${host.roomId}/recording/start`, { token: host.token });
      assert.equal(r.status, 409, r.text);
      assert.equal(r.json.error.code, "ALREADY_RECORDING");
    });

    it("a late joiner sees the indicator at once", async () => {
      pages.dave = await h.newPage(browser, server);
      await h.joinMeeting(pages.dave, host.roomId, "Dave");
      await h.waitFor(() => indicator(pages.dave), { what: "Dave's page to show Recording" });
      ids.dave = (await h.meeting(pages.dave)).peerId;
    });

    it("after 20 s the host stops it; the indicator goes away everywhere", async () => {
      // The span of the recording itself (what the files are checked against).
      await h.sleep(Math.max(0, startedAt + SPAN_MS - Date.now()));
      await pages.alice.getByTestId("record-toggle").click();
      for (const name of ["alice", "bob", "carol", "dave"]) {
        await h.waitFor(async () => !(await indicator(pages[name])), { what: `${name}'s indicator to go` });
      }
      stoppedAt = Date.now();
      const stop = await pages.dave.evaluate(() => window.__meeting.lastRecordingStop);
      assert.equal(stop.reason, "host");
    });

    it("every track: expected codec, duration within 1 s of its span, decodes cleanly", async () => {
      recDir = recordingDir(path.join(server.dir, "data", "recordings"), host.roomId);
      manifest = JSON.parse(fs.readFileSync(path.join(recDir, "manifest.json"), "utf8"));
      assert.equal(manifest.status, "finished");
      assert.equal(manifest.stopReason, "host");
      const span = manifest.stoppedMs;
      assert.ok(Math.abs(span - (stoppedAt - startedAt)) < 3000, `span ${span} ms vs the test's ${stoppedAt - startedAt} ms`);
      const want = [];
      for (const name of ["alice", "bob", "carol", "dave"]) want.push(`${ids[name]}:microphone`, `${ids[name]}:camera`);
      want.push(`${ids.bob}:screen`);
      const have = manifest.tracks.map((t) => `${t.peerId}:${t.source}`);
      assert.deepEqual([...have].sort(), [...want].sort(), JSON.stringify(manifest.tracks, null, 1));
      for (const t of manifest.tracks) {
        const file = path.join(recDir, t.file);
        const p = probe(file);
        assert.equal(p.streams.length, 1, `${t.file}: ${JSON.stringify(p.streams)}`);
        assert.equal(p.streams[0].codec_name, t.kind === "video" ? "vp8" : "opus", t.file);
        assert.equal(p.streams[0].codec_type, t.kind, t.file);
        // Its span on the recording's clock: from its first frame to the stop (Dave's
        // began when he joined).
        const expected = (span - t.startMs) / 1000;
        assert.ok(Math.abs(p.duration - expected) <= 1, `${t.file}: ffprobe says ${p.duration} s, its span is ${expected.toFixed(2)} s (start ${t.startMs} ms)`);
        if (t.peerId !== ids.dave) assert.ok(t.startMs < 1500, `${t.file} starts ${t.startMs} ms into the recording`);
        else assert.ok(t.startMs > 1000, `Dave's ${t.file} starts when he joined (${t.startMs} ms)`);
        decodesCleanly(file);
      }
      const names = manifest.participants.map((p) => p.userName).sort();
      assert.deepEqual(names, ["Alice", "Dave", "bob", "carol"]);
    });

    it("the webhook receiver got recording_finished with the recording's tracks", async () => {
      const hook = await h.waitFor(() => hooks.find((b) => b.event === "recording_finished"), { what: "recording_finished to be posted" });
      assert.equal(hook.meeting.roomId, host.roomId);
      assert.equal(hook.recordingId, manifest.recordingId);
      assert.equal(hook.reason, "host");
      assert.equal(hook.tracks.length, manifest.tracks.length);
      assert.ok(Math.abs(hook.durationSeconds - manifest.stoppedMs / 1000) < 0.5, JSON.stringify(hook));
      const sizes = hook.tracks.reduce((n, t) => n + t.sizeBytes, 0);
      assert.ok(hook.sizeBytes > sizes && sizes > 100000, `${hook.sizeBytes} vs tracks ${sizes}`);
      assert.equal(hooks.filter((b) => b.event === "recording_finished").length, 1, "sent once");
    });

    it("the host lists and downloads (with Range); others cannot; a signed link works", async () => {
      const others = await h.guestToken(server, "Mallory");
      const denied = await h.api(server, "GET", `/api/meetings/${host.roomId}/recordings`, { token: others });
      assert.equal(denied.status, 403);
      const r = await h.api(server, "GET", `/api/meetings/${host.roomId}/recordings`, { token: host.token });
      assert.equal(r.status, 200, r.text);
      const rec = r.json.recordings[0];
      assert.equal(rec.recordingId, manifest.recordingId);
      assert.equal(rec.tracks.length, manifest.tracks.length);
      assert.ok(Math.abs(rec.durationSecs - SPAN_MS / 1000) < 3, JSON.stringify(rec));
      const t = rec.tracks.find((x) => x.source === "camera");
      assert.equal(t.sizeBytes, fs.statSync(path.join(recDir, t.file)).size);
      const url = `${server.base}/api/meetings/${host.roomId}/recordings/${rec.recordingId}/files/${t.file}`;
      const part = await fetch(url, { headers: { authorization: `Bearer ${host.token}`, range: "bytes=0-1023" } });
      assert.equal(part.status, 206);
      assert.equal((await part.arrayBuffer()).byteLength, 1024);
      const whole = await fetch(url, { headers: { authorization: `Bearer ${host.token}` } });
      assert.equal(whole.status, 200);
      assert.equal(Buffer.from(await whole.arrayBuffer()).equals(fs.readFileSync(path.join(recDir, t.file))), true);
      assert.equal((await fetch(url, { headers: { authorization: `Bearer ${others}` } })).status, 403);
      const link = await h.api(server, "POST", `/api/meetings/${host.roomId}/recordings/${rec.recordingId}/link`, { token: host.token, body: { file: t.file, ttlSecs: 60 } });
      assert.equal(link.status, 200, link.text);
      const shared = await fetch(server.base + link.json.url);
      assert.equal(shared.status, 200);
      assert.equal((await shared.arrayBuffer()).byteLength, t.sizeBytes);
    });

    it("RECORDING_AUTO_COMPOSE: the server composed it by itself after the stop", async () => {
      const composed = await h.waitFor(
        async () => {
          const r = await h.api(server, "GET", `/api/meetings/${host.roomId}/recordings`, { token: host.token });
          return r.json && r.json.recordings[0].composed;
        },
        { timeout: 240000, interval: 1000, what: "composed.webm to be listed" },
      );
      assert.equal(composed.file, "composed.webm");
      const p = probe(path.join(recDir, "composed.webm"));
      assert.deepEqual(p.streams.map((x) => x.codec_type).sort(), ["audio", "video"]);
      assert.ok(Math.abs(p.duration - manifest.stoppedMs / 1000) <= 1, `auto-composed: ${p.duration} s`);
      assert.match(fs.readFileSync(server.logPath, "utf8"), /recording composed/);
    });

    it("`recording compose` makes one video and one audio stream of the recording's length", async () => {
      const r = spawnSync(h.BIN, ["recording", "compose", manifest.recordingId], {
        encoding: "utf8",
        cwd: server.dir,
        env: { PATH: process.env.PATH, JWT_SECRET: h.JWT_SECRET, RECORDINGS_DIR: path.join(server.dir, "data", "recordings") },
        timeout: 300000,
      });
      assert.equal(r.status, 0, `compose: ${r.stderr}`);
      const out = r.stdout.trim();
      assert.equal(out, path.join(recDir, "composed.webm"));
      const p = probe(out);
      const kinds = p.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort();
      assert.deepEqual(kinds, ["audio:opus", "video:vp8"]);
      assert.ok(Math.abs(p.duration - manifest.stoppedMs / 1000) <= 1, `composed: ${p.duration} s vs ${manifest.stoppedMs} ms`);
      decodesCleanly(out);
      const perMinute = fs.statSync(out).size / (p.duration / 60);
      console.log(`MEASURE composed file: ${(perMinute / 1e6).toFixed(2)} MB per minute (${manifest.tracks.length} tracks)`);
      for (const t of manifest.tracks) {
        const perHour = fs.statSync(path.join(recDir, t.file)).size / ((manifest.stoppedMs - t.startMs) / 3.6e6);
        console.log(`MEASURE track ${t.source} ${t.kind}: ${(perHour / 1e6).toFixed(0)} MB per hour`);
      }
    });
  });

  describe("SIGKILL 10 s into a recording", () => {
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

    it("leaves every file probing and decoding up to the last frame written", async () => {
      const host = await hostMeeting(server, "Alice");
      pages.alice = await h.newPage(browser, server);
      await h.joinMeeting(pages.alice, host.roomId, "Alice", { token: host.token });
      pages.bob = await h.newPage(browser, server);
      await h.joinMeeting(pages.bob, host.roomId, "Bob");
      const bob = (await h.meeting(pages.bob)).peerId;
      await h.expectMediaFlowing(pages.alice, [bob], { label: "Alice" });
      const t0 = Date.now();
      await startFromPage(pages.alice);
      await h.sleep(Math.max(0, t0 + 10000 - Date.now()));
      process.kill(server.pid, "SIGKILL");
      await h.waitFor(() => server.exited, { what: "the server to die" });
      const dir = recordingDir(path.join(server.dir, "data", "recordings"), host.roomId);
      const files = fs.readdirSync(dir).filter((f) => f.endsWith(".webm"));
      assert.equal(files.length, 4, `files: ${files}`);
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
      assert.equal(manifest.status, "recording", "the last manifest written while it ran");
      for (const f of files) {
        const p = probe(path.join(dir, f));
        assert.equal(p.streams.length, 1, f);
        assert.ok(["vp8", "opus"].includes(p.streams[0].codec_name), `${f}: ${JSON.stringify(p.streams)}`);
        const secs = lastPacketSecs(path.join(dir, f));
        assert.ok(secs > 8 && secs < 11, `${f}: frames up to ${secs} s of a 10 s recording`);
        decodesCleanly(path.join(dir, f));
      }
    });
  });

  describe("a full recordings disk", () => {
    let server;
    let browser;
    let mnt;
    const pages = {};

    before(async () => {
      // A 2 MiB tmpfs of our own (run.sh's namespace has its own mount table).
      mnt = fs.mkdtempSync(path.join(os.tmpdir(), "mtest-recfull-"));
      const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], { encoding: "utf8" });
      assert.equal(m.status, 0, `mount tmpfs: ${m.stderr}`);
      server = await h.startServer({ sfu: true, env: { RECORDINGS_DIR: mnt } });
      browser = await h.launchBrowser();
    });
    after(async () => {
      await h.teardown({ pages, browser, server });
      if (mnt) {
        spawnSync("umount", [mnt]);
        fs.rmSync(mnt, { recursive: true, force: true });
      }
    });

    it("stops the recording, tells the host, logs it, and the meeting goes on", async () => {
      const host = await hostMeeting(server, "Alice");
      pages.alice = await h.newPage(browser, server);
      await h.joinMeeting(pages.alice, host.roomId, "Alice", { token: host.token });
      pages.bob = await h.newPage(browser, server);
      await h.joinMeeting(pages.bob, host.roomId, "Bob");
      const ids = { alice: (await h.meeting(pages.alice)).peerId, bob: (await h.meeting(pages.bob)).peerId };
      await h.expectMediaFlowing(pages.alice, [ids.bob], { label: "Alice" });
      await startFromPage(pages.alice);
      // 2 MiB at a few hundred kbit/s per camera: full within about a minute.
      const stop = await h.waitFor(() => pages.alice.evaluate(() => window.__meeting.lastRecordingStop), { timeout: 90000, what: "the recording to stop by itself" });
      assert.equal(stop.reason, "disk-full");
      assert.match(await pages.alice.getByTestId("banner-text").textContent(), /disk is full/);
      await h.waitFor(async () => !(await indicator(pages.bob)), { what: "Bob's indicator to go" });
      assert.match(fs.readFileSync(server.logPath, "utf8"), /recording stopped.*disk/);
      // The meeting goes on: both still in it, media still flowing both ways.
      assert.equal((await h.meeting(pages.alice)).state, "joined");
      await h.expectMediaFlowing(pages.alice, [ids.bob], { label: "Alice after the disk filled" });
      await h.expectMediaFlowing(pages.bob, [ids.alice], { label: "Bob after the disk filled" });
      const r = await h.api(server, "GET", `/api/meetings/${host.roomId}/recordings`, { token: host.token });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.recording, null);
    });
  });
});
