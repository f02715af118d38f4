// TURN helpers of the browser tests: a private coturn (Debian `turnserver`) on the
// namespace's loopback with the TURN REST API secret (`use-auth-secret`), credentials
// computed the way coturn checks them, and a page init script that forces Chromium to
// relay-only ICE through a chosen TURN transport.
"use strict";

const { spawn, execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { waitFor, freeUdpTcpPort } = require("./harness");

const TURNSERVER = "/usr/bin/turnserver";

/** Why coturn tests cannot run here, or null. */
function coturnMissing() {
  if (!fs.existsSync(TURNSERVER)) return "coturn is not installed (apt-get install coturn)";
  try {
    execFileSync(TURNSERVER, ["--version"], { stdio: "ignore", timeout: 5000 });
  } catch (_) {
    return "turnserver --version failed";
  }
  return null;
}


/**
 * Start coturn on 127.0.0.1 with `use-auth-secret`; resolves once its TCP listener
 * accepts connections. Stop it with `.stop()` (by its PID).
 */
async function startCoturn({ secret, realm = "meeting.test" }) {
  // coturn listens on UDP and TCP at the same port.
  const port = await freeUdpTcpPort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mturn-"));
  const logPath = path.join(dir, "turn.log");
  // Relay ports: a range of their own, away from the server's worker ports (20000-40000)
  // and coturn's listening port (30000-40000).
  const relayMin = 40000 + Math.floor(Math.random() * 200) * 100;
  const args = [
    "-n",
    "--no-cli",
    `--listening-ip=127.0.0.1`,
    `--relay-ip=127.0.0.1`,
    `--listening-port=${port}`,
    `--min-port=${relayMin}`,
    `--max-port=${relayMin + 99}`,
    "--use-auth-secret",
    `--static-auth-secret=${secret}`,
    `--realm=${realm}`,
    "--fingerprint",
    "--allow-loopback-peers",
    "--no-tls",
    "--no-dtls",
    "--no-stdout-log",
    "--simple-log",
    `--log-file=${logPath}`,
    `--pidfile=${path.join(dir, "turnserver.pid")}`,
    // Its (unused) user database stays in the test's directory, not /var/lib/turn.
    `--userdb=${path.join(dir, "turndb")}`,
    "--verbose",
  ];
  const errPath = path.join(dir, "turn.stderr");
  const err = fs.openSync(errPath, "a");
  const child = spawn(TURNSERVER, args, { cwd: dir, stdio: ["ignore", err, err] });
  fs.closeSync(err);
  let exited = null;
  child.on("exit", (code, signal) => {
    exited = { code, signal };
  });
  const turn = {
    port,
    pid: child.pid,
    dir,
    logPath,
    get exited() {
      return exited;
    },
    log() {
      // coturn may add a date suffix to the file name; read whatever it wrote in dir.
      let out = "";
      for (const f of fs.readdirSync(dir)) {
        if (f.startsWith("turn")) {
          try {
            out += fs.readFileSync(path.join(dir, f), "utf8");
          } catch (_) {
            /* unreadable: skip */
          }
        }
      }
      return out;
    },
    logTail(n = 30) {
      return this.log().split("\n").slice(-n).join("\n");
    },
    async stop() {
      if (exited) return exited;
      const done = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
      try {
        process.kill(child.pid, "SIGTERM");
      } catch (_) {
        /* gone already */
      }
      const t = setTimeout(() => {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch (_) {
          /* gone */
        }
      }, 5000);
      const r = await done;
      clearTimeout(t);
      return r;
    },
  };
  try {
    await waitFor(
      () =>
        new Promise((resolve, reject) => {
          if (exited) return reject(new Error(`turnserver exited early: ${JSON.stringify(exited)}`));
          const s = net.connect(port, "127.0.0.1");
          s.once("connect", () => {
            s.destroy();
            resolve(true);
          });
          s.once("error", () => resolve(false));
        }),
      { timeout: 15000, interval: 200, what: `coturn listening on 127.0.0.1:${port}` },
    );
  } catch (e) {
    await turn.stop();
    throw new Error(`${e.message}\n--- coturn log ---\n${turn.logTail()}`);
  }
  return turn;
}

/** TURN REST API credentials, as coturn's `use-auth-secret` recomputes them. */
function turnRestCredentials(secret, userId, expiresAtUnix) {
  const username = `${expiresAtUnix}:${userId}`;
  const credential = crypto.createHmac("sha1", secret).update(username).digest("base64");
  return { username, credential };
}

/**
 * A Playwright init script: every RTCPeerConnection of the page is created with
 * `iceTransportPolicy: "relay"`, keeps only the TURN URLs of `transport` ("udp" or
 * "tcp"), and (when `override` is given) uses those credentials instead of the
 * server's. It records the connections in `window.__turn.pcs`, the configuration the
 * page really used in `window.__turn.config`, and `icecandidateerror`s in
 * `window.__turn.errors`. The web client itself is unchanged.
 */
function forceRelayScript({ transport, override }) {
  return {
    content: `(${function (opts) {
      const Orig = window.RTCPeerConnection;
      const T = (window.__turn = { pcs: [], errors: [], config: null });
      function Relay(config, ...rest) {
        const c = Object.assign({}, config || {});
        c.iceTransportPolicy = "relay";
        c.iceServers = (c.iceServers || [])
          .map((s) => Object.assign({}, s, { urls: [].concat(s.urls).filter((u) => /^turns?:/.test(u) && (!opts.transport || u.includes(`transport=${opts.transport}`))) }))
          .filter((s) => s.urls.length > 0)
          .map((s) => (opts.override ? Object.assign({}, s, opts.override) : s));
        T.config = JSON.parse(JSON.stringify(c));
        const pc = new Orig(c, ...rest);
        pc.addEventListener("icecandidateerror", (e) => T.errors.push({ url: e.url, errorCode: e.errorCode, errorText: e.errorText }));
        T.pcs.push(pc);
        return pc;
      }
      Relay.prototype = Orig.prototype;
      Object.setPrototypeOf(Relay, Orig);
      window.RTCPeerConnection = Relay;
    }})(${JSON.stringify({ transport: transport || null, override: override || null })});`,
  };
}

/** The selected candidate pair of the page's first peer connection, with both candidates. */
function selectedPair(page) {
  return page.evaluate(async () => {
    const pc = window.__turn && window.__turn.pcs[0];
    if (!pc) return null;
    const stats = await pc.getStats();
    let pairId = null;
    stats.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    const pair = pairId && stats.get(pairId);
    if (!pair) return null;
    const local = stats.get(pair.localCandidateId) || {};
    const remote = stats.get(pair.remoteCandidateId) || {};
    return {
      state: pair.state,
      local: { candidateType: local.candidateType, relayProtocol: local.relayProtocol, protocol: local.protocol, address: local.address, url: local.url },
      remote: { candidateType: remote.candidateType, protocol: remote.protocol, address: remote.address, port: remote.port },
    };
  });
}

module.exports = { coturnMissing, startCoturn, turnRestCredentials, forceRelayScript, selectedPair };
