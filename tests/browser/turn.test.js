// TURN in real Chromium: a private coturn on the namespace's loopback with the TURN REST
// API secret (`use-auth-secret`), meeting-service handing out per-participant ephemeral
// credentials (TURN_SECRET), pages forced to `iceTransportPolicy: "relay"`.
// (a) the REST endpoint mints credentials coturn's formula accepts; (b) over TURN/UDP and
// (c) over TURN/TCP two participants decode each other's media through the SFU, and the
// selected pair really is a relay of that transport; (d) wrong and expired credentials
// are refused by coturn and the page reports the failed media connection.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./lib/harness");
const t = require("./lib/turn");

const skip = h.skipReason() || t.coturnMissing();
const SECRET = "turn-test-shared-secret-0123456789";
const TTL = 3600;

describe("TURN relay with ephemeral credentials", { skip: skip || false }, () => {
  let coturn;
  let server;
  let browser;
  const open = [];

  before(async () => {
    coturn = await t.startCoturn({ secret: SECRET });
    server = await h.startServer({
      sfu: true,
      env: {
        TURN_SERVER_URL: `turn:127.0.0.1:${coturn.port}?transport=udp,turn:127.0.0.1:${coturn.port}?transport=tcp`,
        TURN_SECRET: SECRET,
        TURN_CREDENTIAL_TTL: String(TTL),
      },
    });
    browser = await h.launchBrowser();
  });

  after(async () => {
    for (const p of open) await h.closePage(p);
    if (browser) await browser.close().catch(() => {});
    if (server) await server.stop();
    if (coturn) {
      const r = await coturn.stop();
      if (process.env.MTEST_VERBOSE) console.log(coturn.logTail(200));
      console.log(`coturn exit: ${JSON.stringify(r)}`);
    }
  });

  function turnLog(n = 20) {
    return coturn ? `\n--- last lines of the coturn log ---\n${coturn.logTail(n)}` : "";
  }

  async function relayPage(opts) {
    const page = await h.newPage(browser, server);
    open.push(page);
    await page.addInitScript(t.forceRelayScript(opts));
    return page;
  }

  it("(a) GET /api/ice-servers mints per-user credentials in the TURN REST API form", async () => {
    const token = await h.guestToken(server, "Rest");
    const before = Math.floor(Date.now() / 1000);
    const r = await h.api(server, "GET", "/api/ice-servers", { token });
    assert.equal(r.status, 200, r.text);
    const turn = r.json.iceServers.find((s) => s.urls.some((u) => u.startsWith("turn:")));
    assert.ok(turn, `no TURN entry in ${r.text}`);
    assert.deepEqual(turn.urls, [`turn:127.0.0.1:${coturn.port}?transport=udp`, `turn:127.0.0.1:${coturn.port}?transport=tcp`]);
    const m = /^(\d+):(guest_\w+)$/.exec(turn.username);
    assert.ok(m, `username ${turn.username} is not <expiry>:<userId>`);
    const expiry = Number(m[1]);
    assert.ok(expiry >= before + TTL - 5 && expiry <= before + TTL + 60, `expiry ${expiry} is not about now + ${TTL}`);
    assert.equal(turn.credential, t.turnRestCredentials(SECRET, m[2], expiry).credential);
    assert.ok(!r.text.includes(SECRET), "the shared secret leaked to the client");
    // Without a token there are no credentials.
    const anon = await h.api(server, "GET", "/api/ice-servers");
    assert.equal(anon.status, 401);
  });

  for (const transport of ["udp", "tcp"]) {
    it(`(${transport === "udp" ? "b" : "c"}) relay-only over TURN/${transport.toUpperCase()}: both decode each other through the SFU`, async () => {
      const token = await h.guestToken(server, "Host");
      const roomId = await h.createMeeting(server, token, { title: `TURN ${transport}`, topology: "sfu" });
      const alice = await relayPage({ transport });
      const bob = await relayPage({ transport });
      await h.joinMeeting(alice, roomId, "Alice");
      await h.joinMeeting(bob, roomId, "Bob");
      const a = await h.meeting(alice);
      const b = await h.meeting(bob);
      assert.equal(a.topology, "sfu");
      for (const [page, label] of [
        [alice, "Alice"],
        [bob, "Bob"],
      ]) {
        const cfg = await page.evaluate(() => window.__turn.config);
        assert.equal(cfg.iceTransportPolicy, "relay");
        assert.ok(cfg.iceServers.length > 0 && cfg.iceServers.every((s) => s.urls.every((u) => u.endsWith(`transport=${transport}`))), `${label}: ${JSON.stringify(cfg)}`);
      }
      try {
        await h.expectMediaFlowing(alice, [b.peerId], { label: "Alice", timeout: 40000 });
        await h.expectMediaFlowing(bob, [a.peerId], { label: "Bob", timeout: 40000 });
      } catch (e) {
        e.message += turnLog();
        throw e;
      }
      for (const [page, label, userId] of [
        [alice, "Alice", a.userId],
        [bob, "Bob", b.userId],
      ]) {
        const pair = await h.waitFor(() => t.selectedPair(page), { what: `${label}: a selected candidate pair` });
        assert.equal(pair.local.candidateType, "relay", `${label}: ${JSON.stringify(pair)}`);
        assert.equal(pair.local.relayProtocol, transport, `${label}: ${JSON.stringify(pair)}`);
        assert.equal(pair.remote.address, "127.0.0.1", `${label}: the SFU's candidate: ${JSON.stringify(pair)}`);
        // coturn authenticated this participant's own ephemeral username.
        assert.match(coturn.log(), new RegExp(`user <\\d+:${userId}>: incoming packet ALLOCATE processed, success`), `${label}: coturn granted ${userId} no allocation${turnLog()}`);
      }
      await h.closePage(alice);
      await h.closePage(bob);
    });
  }

  it("(d) wrong or expired TURN credentials: coturn refuses them and the page reports the failure", async () => {
    const token = await h.guestToken(server, "Host");
    const roomId = await h.createMeeting(server, token, { title: "TURN refused", topology: "sfu" });
    const now = Math.floor(Date.now() / 1000);
    const wrong = t.turnRestCredentials("not-the-shared-secret", "intruder", now + 3600);
    const expired = t.turnRestCredentials(SECRET, "latecomer", now - 60);
    const pages = {
      wrong: await relayPage({ transport: "udp", override: wrong }),
      expired: await relayPage({ transport: "tcp", override: expired }),
    };
    await h.joinMeeting(pages.wrong, roomId, "Wrong");
    await h.joinMeeting(pages.expired, roomId, "Expired");
    for (const [label, page] of Object.entries(pages)) {
      await h
        .waitFor(() => page.evaluate(() => window.__meeting.error && window.__meeting.error.code === "ICE_FAILED"), {
          timeout: 45000,
          interval: 500,
          what: `${label}: the page to report the failed media connection`,
        })
        .catch((e) => {
          throw new Error(`${e.message}${turnLog()}`);
        });
      const m = await h.meeting(page);
      assert.notEqual(m.iceState, "connected", label);
      assert.equal(await page.getByTestId("banner").isVisible(), true, `${label}: no banner`);
      assert.match(await page.getByTestId("banner-hints").textContent(), /TURN/, `${label}: no TURN hint`);
      // The browser itself saw the TURN server refuse the allocation.
      const errors = await page.evaluate(() => window.__turn.errors);
      assert.ok(
        errors.some((e) => e.url && e.url.startsWith("turn:127.0.0.1") && e.errorCode === 401),
        `${label}: expected a 401 icecandidateerror from the TURN server, got ${JSON.stringify(errors)}${turnLog()}`,
      );
    }
    // coturn refused both usernames and never granted them a relay.
    const log = coturn.log();
    for (const c of [wrong, expired]) {
      assert.match(log, new RegExp(`user <${c.username}>: incoming packet message processed, error 401`), `${c.username} not refused${turnLog()}`);
      assert.doesNotMatch(log, new RegExp(`user <${c.username}>: incoming packet ALLOCATE processed, success`));
    }
  });
});
