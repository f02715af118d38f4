// Several meeting-service nodes behaving as one service through Redis, with the meetings
// in PostgreSQL: a private redis-server and a private PostgreSQL, both started inside
// the test's network namespace (the host's services are not reachable from it) and
// stopped by their PIDs.
//
// - participants who join through different nodes see and hear each other (the second
//   node relays its SFU requests to the node hosting the meeting's media);
// - 200 concurrent joins spread over two nodes admit exactly the meeting's cap;
// - the node hosting the media dies: its lease expires, the others are told to rejoin,
//   and the meeting re-opens on the surviving node;
// - Redis restarts mid-meeting: media keeps flowing, joins fail with UNAVAILABLE while it
//   is down and work again once it is back;
// - the host, whose socket is on the node that does NOT hold the media, records: the
//   node holding it writes the files (which probe and decode), both nodes' pages show
//   the indicator (a late joiner's too), the stop from that same page closes them, and
//   the host lists and downloads them through either node (one shared RECORDINGS_DIR).
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const WebSocket = require("ws");
const h = require("./lib/harness");
const rec = require("./lib/recording-files");
const { missing, startRedis, startPostgres } = require("./lib/services");
const SioClient = require(path.join(h.REPO, "web", "sio.js"));

function sio() {
  return new SioClient({ WebSocket, ackTimeoutMs: 15000, connectTimeoutMs: 10000 });
}

async function startNode(redisUrl, databaseUrl, prefix, recordingsDir) {
  return h.startServer({
    sfu: true,
    maxParticipants: 60,
    env: { REDIS_URL: redisUrl, DATABASE_URL: databaseUrl, REDIS_KEY_PREFIX: prefix, RECORDINGS_DIR: recordingsDir },
  });
}

const hasFfmpeg = spawnSync("ffprobe", ["-version"]).status === 0;

const skip = missing();

describe("a cluster of two nodes (Redis + PostgreSQL)", { skip: skip || false }, () => {
  let redis;
  let pg;
  let node1;
  let node2;
  let browser;
  const pages = [];
  const prefix = `mtest${process.pid}:`;
  // Both nodes write and serve recordings in one directory (docs/recording.md, Cluster).
  const recordings = fs.mkdtempSync(path.join(os.tmpdir(), "mtest-cluster-rec-"));

  before(async () => {
    redis = await startRedis();
    pg = await startPostgres();
    node1 = await startNode(redis.url, pg.url, prefix, recordings);
    node2 = await startNode(redis.url, pg.url, prefix, recordings);
    browser = await h.launchBrowser();
  });

  after(async () => {
    for (const p of pages) await h.closePage(p);
    if (browser) await browser.close().catch(() => {});
    for (const n of [node1, node2]) if (n) await n.stop();
    if (pg) await pg.stop();
    if (redis) await redis.stop();
    fs.rmSync(recordings, { recursive: true, force: true });
  });

  async function pageOn(node, roomId, name) {
    const page = await h.newPage(browser, node);
    pages.push(page);
    await h.joinMeeting(page, roomId, name);
    return page;
  }

  it("participants who join through different nodes see and hear each other", async () => {
    const token = await h.guestToken(node1, "Host");
    const roomId = await h.createMeeting(node1, token);
    // The meeting created on node 1 is visible on node 2: one store.
    const seen = await h.api(node2, "GET", `/api/meetings/${roomId}`, { token });
    assert.equal(seen.status, 200, seen.text);

    const a = await pageOn(node1, roomId, "Ann");
    const b = await pageOn(node2, roomId, "Ben");
    const ma = await h.meeting(a);
    const mb = await h.meeting(b);
    await h.expectMediaFlowing(a, [mb.peerId], { label: "Ann (node 1)" });
    await h.expectMediaFlowing(b, [ma.peerId], { label: "Ben (node 2)" });

    // Both nodes list both participants: the live registry is shared.
    for (const node of [node1, node2]) {
      const r = await h.api(node, "GET", `/api/meetings/${roomId}/participants`, { token });
      assert.equal(r.status, 200, r.text);
      const text = JSON.stringify(r.json);
      assert.ok(text.includes(ma.peerId) && text.includes(mb.peerId), `${node.base}: ${text}`);
    }

    // Ben's media settings reach Ann through the Socket.IO Redis adapter.
    await b.getByTestId("toggle-mic").click();
    await h.waitFor(
      () => a.evaluate((id) => (window.__meeting.participants || []).some((p) => p.peerId === id && p.audioEnabled === false), mb.peerId),
      { timeout: 10000, what: "Ann to see Ben's microphone off" },
    );
    for (const p of pages.slice(-2)) await h.closePage(p);
  });

  it("200 concurrent joins spread over two nodes admit exactly the meeting's cap", async () => {
    const cap = 50;
    const hostToken = await h.guestToken(node1, "Cap host");
    const roomId = await h.createMeeting(node1, hostToken, { maxParticipants: cap });
    const clients = [];
    try {
      const tokens = await Promise.all(
        Array.from({ length: 200 }, (_, i) => h.guestToken(i % 2 ? node2 : node1, `Joiner ${i}`)),
      );
      for (let i = 0; i < 200; i++) {
        const c = sio();
        clients.push(c);
      }
      await Promise.all(clients.map((c, i) => c.connect((i % 2 ? node2 : node1).base, { token: tokens[i] })));
      const acks = await Promise.all(clients.map((c) => c.emit("join-meeting", { roomId, userName: "x" })));
      const ok = acks.filter((a) => a && a.ok).length;
      const full = acks.filter((a) => a && a.ok === false && a.error && a.error.code === "ROOM_FULL").length;
      assert.equal(ok, cap, `admitted ${ok}, refused ${full}: ${JSON.stringify(acks.find((a) => !a || (!a.ok && a.error.code !== "ROOM_FULL")))}`);
      assert.equal(full, 200 - cap);
      const r = await h.api(node2, "GET", `/api/meetings/${roomId}/participants`, { token: hostToken });
      assert.equal(r.status, 200, r.text);
    } finally {
      for (const c of clients) c.close();
    }
  });

  it("Redis restarts mid-meeting: media keeps flowing, joins fail while it is down and work after", async () => {
    const token = await h.guestToken(node1, "Host");
    const roomId = await h.createMeeting(node1, token);
    const a = await pageOn(node1, roomId, "Ada");
    const b = await pageOn(node2, roomId, "Bo");
    const ma = await h.meeting(a);
    const mb = await h.meeting(b);
    await h.expectMediaFlowing(a, [mb.peerId], { label: "Ada before" });

    const port = redis.port;
    await redis.stop();
    try {
      await h.expectMediaFlowing(a, [mb.peerId], { label: "Ada while Redis is down" });
      await h.expectMediaFlowing(b, [ma.peerId], { label: "Bo while Redis is down" });

      const c = sio();
      try {
        await c.connect(node1.base, { token: await h.guestToken(node1, "Late") });
        const ack = await c.emit("join-meeting", { roomId, userName: "Late" });
        assert.equal(ack && ack.ok, false, JSON.stringify(ack));
        assert.equal(ack.error.code, "UNAVAILABLE", JSON.stringify(ack));
      } finally {
        c.close();
      }
    } finally {
      redis = await startRedis(port);
    }

    // Back: the nodes reconnect by themselves (backoff) and joins work again.
    const late = await h.guestToken(node2, "Later");
    await h.waitFor(
      async () => {
        const c = sio();
        try {
          await c.connect(node2.base, { token: late });
          const ack = await c.emit("join-meeting", { roomId, userName: "Later" });
          return ack && ack.ok;
        } catch (_) {
          return false;
        } finally {
          c.close();
        }
      },
      { timeout: 30000, interval: 1000, what: "a join to work again after Redis came back" },
    );
    await h.expectMediaFlowing(a, [mb.peerId], { label: "Ada after" });
    for (const p of pages.slice(-2)) await h.closePage(p);
  });

  it("the host on the other node records: the media's node writes it, every page is told", { skip: hasFfmpeg ? false : "ffprobe/ffmpeg not installed" }, async () => {
    const token = await h.guestToken(node2, "Host");
    const roomId = await h.createMeeting(node2, token, { topology: "sfu", settings: { allowRecording: true } });
    // Ann joins first through node 1, so node 1 holds the media; the host is on node 2.
    const a = await pageOn(node1, roomId, "Ann");
    const host = await h.newPage(browser, node2);
    pages.push(host);
    await h.joinMeeting(host, roomId, "Host", { token });
    const ma = await h.meeting(a);
    const mh = await h.meeting(host);
    await h.expectMediaFlowing(host, [ma.peerId], { label: "Host (node 2)" });

    const startedAt = Date.now();
    await rec.startFromPage(host);
    await h.waitFor(() => rec.indicator(a), { what: "Ann's page (node 1) to show Recording" });
    // The media's node records it, not the node the request came through.
    const started = /recording started/;
    await h.waitFor(() => started.test(fs.readFileSync(node1.logPath, "utf8")), { what: "node 1 to log the recording's start" });
    assert.doesNotMatch(fs.readFileSync(node2.logPath, "utf8"), started);
    // A second start through node 1's REST is refused by the recording node.
    const again = await h.api(node1, "POST", `/api/meetings/${roomId}/recording/start`, { token });
    assert.equal(again.status, 409, again.text);
    assert.equal(again.json.error.code, "ALREADY_RECORDING");

    // A late joiner on node 2 learns it from node 1.
    const c = await pageOn(node2, roomId, "Cy");
    await h.waitFor(() => rec.indicator(c), { what: "Cy's page (node 2, late) to show Recording" });
    const listed = await h.api(node2, "GET", `/api/meetings/${roomId}/recordings`, { token });
    assert.equal(listed.status, 200, listed.text);
    assert.ok(listed.json.recording && listed.json.recording.recordingId, listed.text);

    await h.sleep(Math.max(0, startedAt + 8000 - Date.now()));
    await host.getByTestId("record-toggle").click();
    for (const [name, page] of [["Host", host], ["Ann", a], ["Cy", c]]) {
      await h.waitFor(async () => !(await rec.indicator(page)), { what: `${name}'s indicator to go` });
    }
    assert.equal((await a.evaluate(() => window.__meeting.lastRecordingStop)).reason, "host");

    const dir = rec.recordingDir(recordings, roomId);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
    assert.equal(manifest.status, "finished");
    const have = manifest.tracks.map((t) => `${t.peerId}:${t.source}`).sort();
    for (const want of [`${ma.peerId}:camera`, `${ma.peerId}:microphone`, `${mh.peerId}:camera`, `${mh.peerId}:microphone`]) {
      assert.ok(have.includes(want), `${want} in ${have}`);
    }
    for (const t of manifest.tracks) {
      const file = path.join(dir, t.file);
      const p = rec.probe(file);
      assert.equal(p.streams[0].codec_name, t.kind === "video" ? "vp8" : "opus", t.file);
      const expected = (manifest.stoppedMs - t.startMs) / 1000;
      assert.ok(Math.abs(p.duration - expected) <= 1, `${t.file}: ${p.duration} s, its span ${expected.toFixed(2)} s`);
      rec.decodesCleanly(file);
    }

    // The host lists and downloads through either node (the directory is shared).
    for (const node of [node1, node2]) {
      const r = await h.api(node, "GET", `/api/meetings/${roomId}/recordings`, { token });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.recording, null, r.text);
      assert.equal(r.json.recordings[0].recordingId, manifest.recordingId);
      const t = manifest.tracks[0];
      const res = await fetch(`${node.base}/api/meetings/${roomId}/recordings/${manifest.recordingId}/files/${t.file}`, {
        headers: { authorization: `Bearer ${token}`, range: "bytes=0-99" },
      });
      assert.equal(res.status, 206);
      assert.equal((await res.arrayBuffer()).byteLength, 100);
    }
    for (const p of pages.slice(-3)) await h.closePage(p);
  });

  it("the node hosting the media dies: the others rejoin and the meeting re-opens on a live node", async () => {
    const token = await h.guestToken(node2, "Host");
    const roomId = await h.createMeeting(node2, token);
    // Ann joins first through node 1, so node 1 hosts the media; Ben is on node 2.
    const a = await pageOn(node1, roomId, "Ann");
    const b = await pageOn(node2, roomId, "Ben");
    const ma = await h.meeting(a);
    await h.expectMediaFlowing(b, [ma.peerId], { label: "Ben before" });

    // Kill node 1 (by its PID, no goodbye): Ann's page loses its server.
    process.kill(node1.pid, "SIGKILL");
    await h.waitFor(() => node1.exited !== null, { timeout: 10000, what: "node 1 to die" });

    // Ben is told to rejoin once node 1's lease has expired, and is back in the meeting.
    await h.waitFor(() => b.evaluate(() => (window.__meeting.rejoins || 0) > 0 && window.__meeting.state === "joined"), {
      timeout: 60000,
      interval: 500,
      what: "Ben to rejoin after node 1 died",
    });

    // A newcomer through node 2: the meeting's media now lives there; Ben and Cy see
    // each other.
    const c = await pageOn(node2, roomId, "Cy");
    const mb = await h.meeting(b);
    const mc = await h.meeting(c);
    await h.expectMediaFlowing(b, [mc.peerId], { label: "Ben after", timeout: 45000 });
    await h.expectMediaFlowing(c, [mb.peerId], { label: "Cy after", timeout: 45000 });
  });
});
