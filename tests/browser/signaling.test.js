// Socket.IO without a browser, through the web client's own web/sio.js over the `ws`
// package: auth failures, malformed payloads, host-only actions, mesh relay rules.
"use strict";

const { test, describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const WebSocket = require("ws");
const h = require("./lib/harness");
const SioClient = require(path.join(h.REPO, "web", "sio.js"));

const skip = h.skipReason();

function client() {
  return new SioClient({ WebSocket, ackTimeoutMs: 5000, connectTimeoutMs: 5000 });
}

async function connected(server, token) {
  const c = client();
  await c.connect(server.base, { token });
  return c;
}

/** Collects the events of one name, for bounded waits. */
function collect(c, name) {
  const list = [];
  c.on(name, (p) => list.push(p));
  return list;
}

function assertError(ack, code, what) {
  assert.ok(ack && ack.ok === false, `${what}: expected an error ack, got ${JSON.stringify(ack)}`);
  assert.equal(ack.error && ack.error.code, code, `${what}: ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.error.message, "string");
}

// Counted as skipped (with its reason), not passed, when the tests cannot run here.
if (skip) test(`${require("node:path").basename(__filename)} not run`, { skip }, () => {});

describe("Socket.IO signaling without a browser", { skip: skip || false }, () => {
  let server;
  const open = [];

  before(async () => {
    server = await h.startServer({ sfu: true, maxParticipants: 10 });
  });

  after(async () => {
    for (const c of open) c.close();
    if (server) {
      const crashed = server.exited;
      await server.stop();
      assert.equal(crashed, null, `the server died during the tests:\n${server.logTail()}`);
    }
  });

  async function user(name) {
    const token = await h.guestToken(server, name);
    const c = await connected(server, token);
    open.push(c);
    return { c, token };
  }

  describe("authentication", () => {
    const cases = [
      ["garbage token", "not-a-jwt", "TOKEN_INVALID"],
      ["token signed with another secret", () => h.signJwt({ sub: "mallory", name: "M", exp: Math.floor(Date.now() / 1000) + 600 }, "other-secret"), "TOKEN_INVALID"],
      ["expired token", () => h.signJwt({ sub: "old", name: "Old", exp: Math.floor(Date.now() / 1000) - 3600 }), "TOKEN_EXPIRED"],
    ];
    for (const [what, tok, code] of cases) {
      it(`${what} → connect_error ${code}`, async () => {
        const c = client();
        const token = typeof tok === "function" ? tok() : tok;
        const err = await c.connect(server.base, token === undefined ? {} : { token }).then(
          () => null,
          (e) => e,
        );
        c.close();
        assert.ok(err, "the connection must be refused");
        assert.equal(err.code, code, err.message);
        assert.match(err.message, new RegExp(`^${code}:`));
      });
    }

    // The original service's frontends connect without a token and listen for
    // `meeting-error`: such a socket is let in only to be told, then disconnected.
    it("missing token → meeting-error TOKEN_MISSING, then disconnected", async () => {
      const c = client();
      const errors = [];
      c.on("meeting-error", (p) => errors.push(p));
      await c.connect(server.base, {});
      await h.waitFor(() => errors.length >= 1, { timeout: 5000, what: "meeting-error" });
      assert.equal(errors[0].error.code, "TOKEN_MISSING");
      const ack = await c.emit("join-meeting", { roomId: "ABCD-EFG-HJK", userId: "someone" }).catch((e) => ({ thrown: e.message }));
      c.close();
      assert.equal(ack && ack.error && ack.error.code, "TOKEN_MISSING", JSON.stringify(ack));
    });

    it("a valid self-signed token (JWT_SECRET) is accepted", async () => {
      const token = h.signJwt({ sub: "selfsigned", name: "Self", exp: Math.floor(Date.now() / 1000) + 600 });
      const c = await connected(server, token);
      assert.ok(c.connected);
      c.close();
    });
  });

  describe("malformed payloads get an error ack and the server stays up", () => {
    let roomId;
    let alice;

    before(async () => {
      alice = await user("Alice");
      roomId = await h.createMeeting(server, alice.token, { title: "Malformed" });
    });

    const huge = "x".repeat(100 * 1024);
    const bad = () => [
      ["join-meeting without roomId", "join-meeting", { userName: "A" }, "BAD_REQUEST"],
      ["join-meeting with a numeric roomId", "join-meeting", { roomId: 12345 }, "BAD_REQUEST"],
      ["join-meeting with a string payload", "join-meeting", "ABC", "BAD_REQUEST"],
      ["join-meeting with a 100 KB name", "join-meeting", { roomId, userName: huge }, "BAD_REQUEST"],
      ["join-meeting with a 100 KB roomId", "join-meeting", { roomId: huge }, "BAD_REQUEST"],
      ["join-meeting of an unknown meeting", "join-meeting", { roomId: "NOPE0000" }, "NOT_FOUND"],
      ["toggle-audio with a string flag", "toggle-audio", { roomId, isEnabled: "yes" }, "BAD_REQUEST"],
      ["chat without message", "meeting-chat-message", { roomId }, "BAD_REQUEST"],
      ["sfu-offer with a number as sdp", "sfu-offer", { roomId, sdp: 5 }, "BAD_REQUEST"],
    ];
    for (const [what, event, payload, code] of bad()) {
      it(what, async () => {
        // Payload built lazily: roomId exists only after before().
        const p = bad().find((b) => b[0] === what)[2];
        const ack = await alice.c.emit(event, p);
        assertError(ack, code, what);
      });
    }

    it("requests for a meeting this socket has not joined → NOT_IN_MEETING", async () => {
      assertError(await alice.c.emit("toggle-audio", { roomId, isEnabled: false }), "NOT_IN_MEETING", "toggle-audio");
      assertError(await alice.c.emit("meeting-chat-message", { roomId, message: "hi" }), "NOT_IN_MEETING", "chat");
    });

    it("after joining: a 100 KB chat message and a garbage SDP are refused", async () => {
      const ack = await alice.c.emit("join-meeting", { roomId, userName: "Alice" });
      assert.ok(ack.ok, JSON.stringify(ack));
      assert.equal(ack.data.isHost, true);
      assertError(await alice.c.emit("meeting-chat-message", { roomId, message: huge }), "BAD_REQUEST", "huge chat");
      const sdpAck = await alice.c.emit("sfu-offer", { roomId, sdp: "v=0 this is not sdp", sources: {} });
      assert.equal(sdpAck.ok, false, JSON.stringify(sdpAck));
      assert.ok(["SFU_ERROR", "BAD_REQUEST"].includes(sdpAck.error.code), JSON.stringify(sdpAck));
      const ok = await alice.c.emit("meeting-chat-message", { roomId, message: "still here" });
      assert.ok(ok.ok, JSON.stringify(ok));
    });

    it("raw garbage packets do not take the server down", async () => {
      const c = (await user("Garbage")).c;
      c.sendRaw("2[not json");
      c.sendRaw('2["join-meeting"');
      c.sendRaw("2{}");
      c.sendRaw("299999999999999999999[\"x\"]");
      c.sendRaw("9nonsense");
      const res = await h.waitFor(() => fetch(server.base + "/health").then((r) => r.ok), { timeout: 5000, what: "/health after garbage" });
      assert.ok(res);
      // The other connection still works.
      const ack = await alice.c.emit("meeting-chat-message", { roomId, message: "after garbage" });
      assert.ok(ack.ok, JSON.stringify(ack));
      assert.equal(server.exited, null, "server process still running");
    });
  });

  describe("host-only actions", () => {
    it("a non-host gets FORBIDDEN for host-mute, host-remove and end-meeting", async () => {
      const host = await user("Host");
      const roomId = await h.createMeeting(server, host.token, { title: "Host only" });
      const hj = await host.c.emit("join-meeting", { roomId });
      assert.ok(hj.ok, JSON.stringify(hj));
      assert.equal(hj.data.isHost, true);
      const guest = await user("Guest");
      const joined = await guest.c.emit("join-meeting", { roomId });
      assert.ok(joined.ok, JSON.stringify(joined));
      assert.equal(joined.data.isHost, false);
      const targetUserId = hj.data.userId;
      assert.ok(joined.data.participants.some((p) => p.userId === targetUserId && p.isHost), "the host is listed among the participants");
      assertError(await guest.c.emit("host-mute", { roomId, targetUserId, kind: "audio" }), "FORBIDDEN", "host-mute");
      assertError(await guest.c.emit("host-remove", { roomId, targetUserId }), "FORBIDDEN", "host-remove");
      assertError(await guest.c.emit("end-meeting", { roomId }), "FORBIDDEN", "end-meeting");
      // And the host can: removing the guest tells the guest.
      const removed = collect(guest.c, "control:removed");
      const ack = await host.c.emit("host-remove", { roomId, targetUserId: joined.data.userId });
      assert.ok(ack.ok, JSON.stringify(ack));
      await h.waitFor(() => removed.length > 0, { timeout: 5000, what: "control:removed at the guest" });
      assert.equal(removed[0].roomId, roomId);
    });
  });

  describe("mesh relay", () => {
    it("relays offers/answers/candidates with the documented shape inside a meeting, refuses other meetings", async () => {
      const ann = await user("Ann");
      const ben = await user("Ben");
      const eve = await user("Eve");
      const room1 = await h.createMeeting(server, ann.token, { title: "Mesh 1", topology: "mesh" });
      const room2 = await h.createMeeting(server, eve.token, { title: "Mesh 2", topology: "mesh" });
      const a = await ann.c.emit("join-meeting", { roomId: room1 });
      assert.ok(a.ok, JSON.stringify(a));
      assert.equal(a.data.topology, "mesh");
      const b = await ben.c.emit("join-meeting", { roomId: room1 });
      assert.ok(b.ok, JSON.stringify(b));
      const e = await eve.c.emit("join-meeting", { roomId: room2 });
      assert.ok(e.ok, JSON.stringify(e));

      const annOffers = collect(ann.c, "webrtc-offer");
      const annAnswers = collect(ann.c, "webrtc-answer");
      const annCands = collect(ann.c, "ice-candidate");
      const benOffers = collect(ben.c, "webrtc-offer");
      const eveErrors = collect(eve.c, "peer-connection-error");

      // Ben (newcomer) offers to Ann; Ann answers; both trade a candidate.
      const offer = { type: "offer", sdp: "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n" };
      await ben.c.emit("webrtc-offer", { roomId: room1, targetUserId: a.data.userId, offer }).catch(() => null);
      await h.waitFor(() => annOffers.length > 0, { timeout: 5000, what: "Ann to get Ben's offer" });
      assert.deepEqual(annOffers[0], { fromUserId: b.data.userId, fromPeerId: b.data.peerId, offer });
      const candidate = { candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", sdpMid: "0", sdpMLineIndex: 0 };
      await ben.c.emit("ice-candidate", { roomId: room1, targetUserId: a.data.userId, candidate }).catch(() => null);
      await h.waitFor(() => annCands.length > 0, { timeout: 5000, what: "Ann to get Ben's candidate" });
      assert.deepEqual(annCands[0], { fromUserId: b.data.userId, fromPeerId: b.data.peerId, candidate });
      const answer = { type: "answer", sdp: "v=0\r\n" };
      const benAnswers = collect(ben.c, "webrtc-answer");
      await ann.c.emit("webrtc-answer", { roomId: room1, targetUserId: b.data.userId, answer }).catch(() => null);
      await h.waitFor(() => benAnswers.length > 0, { timeout: 5000, what: "Ben to get Ann's answer" });
      assert.deepEqual(benAnswers[0], { fromUserId: a.data.userId, fromPeerId: a.data.peerId, answer });

      // Eve, in another meeting, offers to Ann: refused, never delivered.
      const evil = await eve.c.emit("webrtc-offer", { roomId: room2, targetUserId: a.data.userId, offer }).catch(() => null);
      await h.waitFor(() => eveErrors.length > 0 || (evil && evil.ok === false), { timeout: 5000, what: "peer-connection-error at Eve" });
      if (eveErrors.length) assert.equal(eveErrors[0].error.code, "PEER_NOT_FOUND", JSON.stringify(eveErrors[0]));
      if (evil && evil.ok === false) assert.equal(evil.error.code, "PEER_NOT_FOUND", JSON.stringify(evil));
      // Eve naming Ann's meeting (not joined) is refused too.
      const evil2 = await eve.c.emit("webrtc-offer", { roomId: room1, targetUserId: a.data.userId, offer }).catch(() => null);
      assert.ok(!evil2 || evil2.ok === false, JSON.stringify(evil2));
      // A chat round trip on Ann's socket orders the check: anything Eve's offers would
      // have produced would have arrived before it.
      assert.ok((await ann.c.emit("meeting-chat-message", { roomId: room1, message: "sync" })).ok);
      assert.equal(annOffers.length, 1, `Ann got only Ben's offer: ${JSON.stringify(annOffers)}`);
      assert.equal(annAnswers.length, 0);
      assert.equal(benOffers.length, 0);
    });
  });
});
