// The services a cluster test runs privately inside its network namespace (the host's
// are not reachable from it): a redis-server and a PostgreSQL, each started on a free
// port and stopped by its own PID.
"use strict";

const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const h = require("./harness");

function missing() {
  const base = h.skipReason();
  if (base) return base;
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
  } catch (_) {
    return "redis-server is not installed";
  }
  if (!pgBinDir()) return "PostgreSQL server binaries are not installed";
  return null;
}

function pgBinDir() {
  const root = "/usr/lib/postgresql";
  if (!fs.existsSync(root)) return null;
  const versions = fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, "bin", "initdb")));
  versions.sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(root, versions[0], "bin") : null;
}

function tcpAnswers(port, probe, expect) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    let data = "";
    const end = (v) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(1000, () => end(false));
    sock.on("error", () => end(false));
    sock.on("connect", () => (probe ? sock.write(probe) : end(true)));
    sock.on("data", (d) => {
      data += d;
      if (data.includes(expect)) end(true);
    });
  });
}

/** A child process we started, stopped by its own PID. */
function stopper(child, signal = "SIGTERM") {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise((r) => child.once("exit", r));
    try {
      process.kill(child.pid, signal);
    } catch (_) {
      return;
    }
    const t = setTimeout(() => {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch (_) {
        /* gone */
      }
    }, 5000);
    await done;
    clearTimeout(t);
  };
}

async function startRedis(port) {
  port = port || (await h.freeTcpPort());
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  await h.waitFor(() => tcpAnswers(port, "PING\r\n", "PONG"), { timeout: 10000, what: "private redis-server" });
  return { port, url: `redis://127.0.0.1:${port}`, pid: child.pid, stop: stopper(child) };
}

async function startPostgres() {
  const bin = pgBinDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mtest-pg-"));
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  fs.chownSync(dir, uid, gid);
  const data = path.join(dir, "data");
  execFileSync(path.join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"], { uid, gid, stdio: "ignore" });
  const port = await h.freeTcpPort();
  const child = spawn(
    path.join(bin, "postgres"),
    ["-D", data, "-k", dir, "-p", String(port), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
    { uid, gid, stdio: "ignore" },
  );
  await h.waitFor(() => tcpAnswers(port, null, ""), { timeout: 20000, what: "private PostgreSQL" });
  // Accepting TCP comes slightly before accepting logins; the server retries its pool.
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    pid: child.pid,
    stop: async () => {
      await stopper(child, "SIGINT")();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { missing, pgBinDir, tcpAnswers, stopper, startRedis, startPostgres };
