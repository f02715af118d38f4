// Who gets into a meeting, over Socket.IO without a browser:
// - a second connection of the same user replaces the first: the old socket is told and
//   is out of the meeting, the others see one leave and one join, and the meeting counts
//   the user once;
// - mesh meetings are capped by MESH_MAX_PARTICIPANTS, within the meeting's own cap.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const WebSocket = require("ws");
const h = require("./lib/harness");
const SioClient = require(path.join(h.REPO, "web", "sio.js"));

const skip = h.skipReason();

function client() {
  return new SioClient({ WebSocket, ackTimeoutMs: 5000, connectTimeoutMs: 5000 });
}

function collect(c, name) {
  const list = [];
  c.on(name, (p) => list.push(p));
  return list;
}

describe("the same user joining twice", { skip: skip || false }, () => {
  let server;
  const open = [];

  before(async () => {
    server = await h.startServer({ sfu: true, maxParticipants: 2 });
  });

  after(async () => {
    for (const c of open) c.close();
    if (server) {
      const crashed = server.exited;
      await server.stop();
      assert.equal(crashed, null, `the server died during the tests:\n${server.logTail()}`);
    }
  });

  async function connect(token) {
    const c = client();
    await c.connect(server.base, { token });
    open.push(c);
    return c;
  }

  it("replaces the first connection cleanly, and does not count twice against the cap", async () => {
    const annToken = await h.guestToken(server, "Ann");
    const benToken = await h.guestToken(server, "Ben");
    const roomId = await h.createMeeting(server, annToken, { maxParticipants: 2 });

    const ben = await connect(benToken);
    const left = collect(ben, "participant-left");
    const joined = collect(ben, "participant-joined");
    assert.ok((await ben.emit("join-meeting", { roomId, userName: "Ben" })).ok);

    const first = await connect(annToken);
    const replaced = collect(first, "meeting:replaced");
    const a1 = await first.emit("join-meeting", { roomId, userName: "Ann" });
    assert.ok(a1.ok, JSON.stringify(a1));

    // The meeting is full (cap 2), yet Ann's second connection gets in: it replaces her first.
    const second = await connect(annToken);
    const a2 = await second.emit("join-meeting", { roomId, userName: "Ann (laptop)" });
    assert.ok(a2.ok, JSON.stringify(a2));
    assert.notEqual(a2.data.peerId, a1.data.peerId);

    await h.waitFor(() => replaced.length === 1, { timeout: 5000, what: "meeting:replaced on the first connection" });
    assert.equal(replaced[0].roomId, roomId);
    await h.waitFor(() => left.some((e) => e.peerId === a1.data.peerId), { timeout: 5000, what: "Ben to see the old connection leave" });
    await h.waitFor(() => joined.some((p) => p.peerId === a2.data.peerId), { timeout: 5000, what: "Ben to see the new connection join" });

    // The old connection is out: its requests are refused.
    const stale = await first.emit("meeting-chat-message", { roomId, message: "from the old tab" });
    assert.equal(stale.ok, false);
    assert.equal(stale.error.code, "NOT_IN_MEETING");

    const r = await h.api(server, "GET", `/api/meetings/${roomId}/participants`, { token: annToken });
    assert.equal(r.status, 200, r.text);
    const peers = JSON.stringify(r.json);
    assert.ok(peers.includes(a2.data.peerId) && !peers.includes(a1.data.peerId), peers);
  });
});

describe("the mesh cap", { skip: skip || false }, () => {
  let server;
  const open = [];

  before(async () => {
    server = await h.startServer({ sfu: false, maxParticipants: 10, env: { MESH_MAX_PARTICIPANTS: "3" } });
  });

  after(async () => {
    for (const c of open) c.close();
    if (server) await server.stop();
  });

  it("a mesh meeting admits MESH_MAX_PARTICIPANTS even when its own cap is higher", async () => {
    const hostToken = await h.guestToken(server, "Host");
    const roomId = await h.createMeeting(server, hostToken, { maxParticipants: 10 });
    const got = await h.api(server, "GET", `/api/meetings/${roomId}`, { token: hostToken });
    assert.equal(got.json.meeting ? got.json.meeting.topology : got.json.topology, "mesh", got.text);

    const acks = [];
    for (let i = 0; i < 4; i++) {
      const c = client();
      open.push(c);
      await c.connect(server.base, { token: i === 0 ? hostToken : await h.guestToken(server, `P${i}`) });
      acks.push(await c.emit("join-meeting", { roomId }));
    }
    assert.deepEqual(acks.slice(0, 3).map((a) => a.ok), [true, true, true]);
    assert.equal(acks[3].ok, false);
    assert.equal(acks[3].error.code, "ROOM_FULL", JSON.stringify(acks[3]));
    assert.match(acks[3].error.message, /3 participants/);
    assert.equal(acks[0].data.topology, "mesh");
  });
});
