// Shared helpers of the browser and Socket.IO tests: a meeting-service process per test
// file (inside the loopback-only network namespace that run.sh made), REST helpers,
// Chromium with fake media, and bounded waits.
"use strict";

const { spawn } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const REPO = path.resolve(__dirname, "..", "..", "..");
const BIN = process.env.MEETING_SERVICE_BIN || path.join(REPO, "target", "debug", "meeting-service");
// The server refuses secrets shorter than 16 characters.
const JWT_SECRET = "browser-tests-jwt-secret";

// Chromium flags of docs/testing.md (shared design): fake devices, loopback ICE.
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--auto-select-desktop-capture-source=Entire screen",
];

/** Why these tests cannot run here, or null. They only run inside run.sh's namespace. */
function skipReason() {
  if (!process.env.MTEST_NETNS) return "not started by tests/browser/run.sh (needs its loopback-only network namespace)";
  const ifaces = Object.keys(os.networkInterfaces());
  if (ifaces.some((n) => n !== "lo")) return `network namespace has more than loopback: ${ifaces.join(", ")}`;
  if (!fs.existsSync(BIN)) return null; // a missing binary is a failure, not a skip
  return null;
}

// The server of the running test file, so that failures can quote its log.
let currentServer = null;

function serverLog(n = 25) {
  return currentServer ? `\n--- last lines of the server log (${currentServer.logPath}) ---\n${currentServer.logTail(n)}` : "";
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `fn` until it returns a truthy value; throw after `timeout` ms. */
async function waitFor(fn, { timeout = 15000, interval = 200, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastErr;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    await sleep(interval);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}` + (lastErr ? ` (last error: ${lastErr.message})` : "") + (last !== undefined ? ` (last value: ${JSON.stringify(last)})` : ""));
}

function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A port free on 127.0.0.1 for both UDP and TCP (the SFU's media ports are both, with
 * ICE-TCP), in 20000-40000 and outside the `avoid` ranges ([lo, hi], inclusive).
 */
async function freeUdpTcpPort(avoid = []) {
  const dgram = require("node:dgram");
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    if (avoid.some(([lo, hi]) => port >= lo && port <= hi)) continue;
    const tcpOk = await new Promise((resolve) => {
      const s = net.createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (!tcpOk) continue;
    const udpOk = await new Promise((resolve) => {
      const u = dgram.createSocket("udp4");
      u.once("error", () => resolve(false));
      u.bind(port, "127.0.0.1", () => u.close(() => resolve(true)));
    });
    if (udpOk) return port;
  }
  throw new Error("no port free for UDP and TCP after 50 tries");
}

/**
 * Start meeting-service; resolves once GET /health answers. `opts.again` (a server this
 * returned, stopped since) starts it again on the same ports and database: a restart.
 */
async function startServer(opts = {}) {
  if (!fs.existsSync(BIN)) throw new Error(`server binary not found: ${BIN} (cargo build -p meeting-service, or set MEETING_SERVICE_BIN)`);
  const again = opts.again || null;
  const port = again ? again.port : await freeTcpPort();
  // The workers also listen on TCP at their ports (ICE-TCP): keep the HTTP port, and
  // `opts.avoidPorts` (ports the test keeps for itself), out of the media range.
  const avoid = [port, ...(opts.avoidPorts || [])];
  let udpBase = again ? again.udpPorts[0] : 20000;
  for (let i = 0; !again && i < 100; i++) {
    udpBase = 20000 + Math.floor(Math.random() * 20000);
    if (!avoid.some((p) => p >= udpBase && p <= udpBase + 9)) break;
  }
  const dir = again ? again.dir : fs.mkdtempSync(path.join(os.tmpdir(), "mtest-"));
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME || dir,
    RUST_LOG: process.env.RUST_LOG || "info",
    RUST_BACKTRACE: "1",
    HOST: "127.0.0.1",
    PORT: String(port),
    DATABASE_URL: `sqlite://${dir}/db.sqlite`,
    MEDIASOUP_ANNOUNCED_IP: "127.0.0.1",
    MEDIASOUP_ALLOW_LOOPBACK: "true",
    MEDIASOUP_LISTEN_IP: "127.0.0.1",
    MEDIASOUP_MIN_PORT: String(udpBase),
    MEDIASOUP_MAX_PORT: String(udpBase + 9),
    MEDIASOUP_WORKERS: "1",
    JWT_SECRET,
    MAX_PARTICIPANTS: String(opts.maxParticipants || 10),
    SFU_MODE_ENABLED: opts.sfu === false ? "false" : "true",
    ...(opts.env || {}),
  };
  const logPath = path.join(dir, "server.log");
  const log = fs.openSync(logPath, "a");
  // cwd: a fresh directory, so that no developer .env is picked up.
  const child = spawn(BIN, [], { env, cwd: dir, stdio: ["ignore", log, log] });
  fs.closeSync(log);
  let exited = null;
  child.on("exit", (code, signal) => {
    exited = { code, signal };
  });
  const base = `http://127.0.0.1:${port}`;
  const server = {
    base,
    port,
    udpPorts: [udpBase, udpBase + 9],
    pid: child.pid,
    dir,
    logPath,
    child,
    get exited() {
      return exited;
    },
    logTail(n = 60) {
      try {
        return fs.readFileSync(logPath, "utf8").split("\n").slice(-n).join("\n");
      } catch (_) {
        return "";
      }
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
      // Keep the log (small, quoted by failures); drop the database.
      if (!process.env.MTEST_KEEP) {
        for (const f of fs.readdirSync(dir)) if (f.startsWith("db.sqlite")) fs.rmSync(path.join(dir, f), { force: true });
      }
      return r;
    },
  };
  try {
    await waitFor(
      async () => {
        if (exited) throw Object.assign(new Error(`server exited early: ${JSON.stringify(exited)}\n${server.logTail()}`), { fatal: true });
        const res = await fetch(base + "/health").catch(() => null);
        return res && res.ok;
      },
      { timeout: 30000, interval: 200, what: "GET /health" },
    );
  } catch (e) {
    await server.stop();
    throw new Error(`${e.message}\n--- server log ---\n${server.logTail()}`);
  }
  currentServer = server;
  return server;
}

// ------------------------------------------------------------------ REST and tokens

async function api(server, method, route, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(server.base + route, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch (_) {
    /* not JSON */
  }
  return { status: res.status, json, text };
}

async function guestToken(server, name) {
  const r = await api(server, "POST", "/api/auth/guest", { body: { name } });
  const j = r.json || {};
  const token = j.token || (j.data && j.data.token) || j.accessToken;
  if (!token) throw new Error(`POST /api/auth/guest → ${r.status} ${r.text}`);
  return token;
}

async function createMeeting(server, token, body) {
  const r = await api(server, "POST", "/api/meetings/create", { token, body: { title: "Test meeting", ...(body || {}) } });
  const roomId = r.json && r.json.meeting && r.json.meeting.roomId;
  if (!roomId) throw new Error(`POST /api/meetings/create → ${r.status} ${r.text}`);
  return roomId;
}

function b64url(buf) {
  return Buffer.from(buf).toString("base64").replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

/** An HS256 JWT signed with the test secret (or another one). */
function signJwt(claims, secret = JWT_SECRET) {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const sig = b64url(crypto.createHmac("sha256", secret).update(`${head}.${body}`).digest());
  return `${head}.${body}.${sig}`;
}

// ------------------------------------------------------------------ Chromium

/**
 * Chromium with fake devices. `cameras: 2`: two fake cameras (to switch between);
 * `denyMedia`: every camera/microphone permission request is refused, as when the user
 * blocks them. `audioFile`: a WAV every fake microphone plays (looped) instead of
 * Chromium's own, a short beep twice a second.
 */
async function launchBrowser({ cameras, denyMedia, audioFile } = {}) {
  const { chromium } = require("playwright-core");
  let args = CHROMIUM_FLAGS;
  if (audioFile) args = args.concat(`--use-file-for-fake-audio-capture=${audioFile}`);
  if (cameras) args = args.map((f) => (f === "--use-fake-device-for-media-stream" ? `${f}=device-count=${cameras}` : f));
  if (denyMedia) args = args.filter((f) => f !== "--use-fake-ui-for-media-stream").concat("--deny-permission-prompts");
  return chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args, timeout: 30000 });
}

/** A new context+page; collects console errors in page.__errors for failure reports. */
async function newPage(browser, server, { viewport } = {}) {
  const context = await browser.newContext({ viewport: viewport || { width: 800, height: 450 }, baseURL: server.base });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.__errors = [];
  page.on("console", (m) => {
    if (m.type() === "error") page.__errors.push(m.text());
  });
  page.on("pageerror", (e) => page.__errors.push(String(e)));
  return page;
}

async function closePage(page) {
  if (page && !page.isClosed()) await page.context().close().catch(() => {});
}

/**
 * A test file's teardown: close its pages and browser, stop its server (printing the
 * server's exit and, with MTEST_VERBOSE, its log tail). Any of them may be missing when
 * `before` failed part-way.
 */
async function teardown({ pages = {}, browser, server } = {}) {
  for (const p of Object.values(pages)) await closePage(p);
  if (browser) await browser.close().catch(() => {});
  if (server) {
    const r = await server.stop();
    if (process.env.MTEST_VERBOSE) console.log(server.logTail(200));
    console.log(`server exit: ${JSON.stringify(r)}`);
  }
}

/** Open /m/<roomId>, enter the name, join; resolves with the page's final join state. */
async function joinMeeting(page, roomId, name, { expect = "joined", token } = {}) {
  await page.goto(`/m/${encodeURIComponent(roomId)}` + (token ? `?token=${encodeURIComponent(token)}` : ""));
  await page.getByTestId("name-input").fill(name);
  await page.getByTestId("join-button").click();
  const state = await waitFor(
    () => page.evaluate(() => (["joining", "idle"].includes(window.__meeting.state) ? null : window.__meeting.state)),
    { timeout: 20000, what: `${name} to finish joining` },
  ).catch((e) => {
    throw new Error(`${e.message}; console: ${page.__errors.slice(-5).join(" | ")}${serverLog()}`);
  });
  if (expect && state !== expect) {
    const err = await page.evaluate(() => window.__meeting.error);
    throw new Error(`${name}: state ${state}, expected ${expect}; error ${JSON.stringify(err)}; console: ${page.__errors.slice(-5).join(" | ")}${serverLog()}`);
  }
  return state;
}

const meeting = (page) => page.evaluate(() => {
  const m = window.__meeting;
  return { state: m.state, error: m.error, userId: m.userId, peerId: m.peerId, participants: m.participants, tiles: m.tiles, chat: m.chat, topology: m.topology, iceState: m.iceState, timings: m.timings, notices: m.notices };
});

const mediaStats = (page) => page.evaluate(() => window.__meeting.mediaStats());

function statFor(stats, peerId, source) {
  return stats.find((s) => s.peerId === peerId && s.source === source) || null;
}

/**
 * Proof of media: for every expected remote peer, video framesDecoded (camera, or the
 * given sources) and audio bytesReceived grow between two samples `gapMs` apart.
 * Returns the second sample.
 */
async function expectMediaFlowing(page, peerIds, { sources = ["camera", "microphone"], timeout = 30000, gapMs = 2500, label = "page" } = {}) {
  const metric = (src) => (src === "microphone" ? "bytesReceived" : "framesDecoded");
  const first = await waitFor(
    async () => {
      const s = await mediaStats(page);
      for (const id of peerIds) for (const src of sources) {
        const e = statFor(s, id, src);
        if (!e || !(e[metric(src)] > 0)) return null;
      }
      return s;
    },
    { timeout, interval: 500, what: `${label}: first media from ${peerIds.join(", ")} (${sources.join("+")})` },
  ).catch(async (e) => {
    const m = await meeting(page).catch(() => ({}));
    const s = await mediaStats(page).catch(() => []);
    throw new Error(`${e.message}\n stats: ${JSON.stringify(s)}\n ice: ${m.iceState} tiles: ${JSON.stringify(m.tiles)}\n console: ${page.__errors.slice(-5).join(" | ")}${serverLog()}`);
  });
  await sleep(gapMs); // the sampling interval of the proof, not a wait for a condition
  const second = await mediaStats(page);
  for (const id of peerIds) for (const src of sources) {
    const a = statFor(first, id, src);
    const b = statFor(second, id, src);
    const k = metric(src);
    if (!b || !(b[k] > a[k])) {
      throw new Error(`${label}: ${src} ${k} from ${id} did not grow: ${a && a[k]} → ${b && b[k]}${serverLog()}`);
    }
  }
  return second;
}

/** CPU seconds (user + system) of a process from /proc/<pid>/stat. */
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100; // USER_HZ is 100 on Linux
}

module.exports = {
  teardown,
  freeTcpPort,
  freeUdpTcpPort,
  REPO,
  BIN,
  JWT_SECRET,
  CHROMIUM_FLAGS,
  skipReason,
  serverLog,
  sleep,
  waitFor,
  startServer,
  api,
  guestToken,
  createMeeting,
  signJwt,
  launchBrowser,
  newPage,
  closePage,
  joinMeeting,
  meeting,
  mediaStats,
  statFor,
  expectMediaFlowing,
  cpuSeconds,
};
