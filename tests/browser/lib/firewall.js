// A firewall inside the test's own network namespace (run.sh made it; nothing outside it
// is touched): nftables tables that drop packets to and from chosen ports, with a
// counter per rule so that a test can tell that the browser really tried, and
// `.remove()` to lift them. Used by ice-failure, ice-tcp and one-port tests.
"use strict";

const { execFileSync } = require("node:child_process");
const { skipReason } = require("./harness");

/** Why nftables rules cannot be used here, or null. */
function nftMissing() {
  try {
    execFileSync("nft", ["--version"], { stdio: "ignore", timeout: 5000 });
    return null;
  } catch (_) {
    return "nft (nftables) is not installed (apt-get install nftables)";
  }
}

/** `lo-hi`, or `p` for a single port: nft's port range syntax. */
function portSpec([lo, hi]) {
  return lo === hi ? String(lo) : `${lo}-${hi}`;
}

/**
 * Drop, on input, every packet of `protocols` ("udp", "tcp") to or from `ports`
 * ([lo, hi], inclusive); then let pass what the `accept` rules match, and drop what the
 * `extra` rules match ({ name: nft expression }, each given a counter). On loopback both
 * directions pass the input hook, so a browser's packets to the server and the server's
 * answers are both dropped. Returns `{ table, remove(), counters() }`; `counters()` maps
 * each rule's name to the packets it matched.
 *
 * "Everything but port P" must be written as accept rules for P followed by a drop, not
 * as `udp sport != P udp dport != P`: nft 1.0 merges the two adjacent header matches into
 * one comparison of both fields, which is then true when *either* differs.
 */
function dropPorts(table, { protocols = ["udp"], ports, accept = {}, extra = {} }) {
  // Refuse to run outside run.sh's loopback-only namespace: these rules would apply to
  // the host otherwise.
  const notHere = skipReason();
  if (notHere) throw new Error(`refusing to install nftables rules: ${notHere}`);
  const rules = {};
  if (ports) {
    for (const p of protocols) {
      rules[`${p} to ${portSpec(ports)}`] = `${p} dport ${portSpec(ports)}`;
      rules[`${p} from ${portSpec(ports)}`] = `${p} sport ${portSpec(ports)}`;
    }
  }
  Object.assign(rules, extra);
  const line = (name, expr, verdict) => `  ${expr} counter ${verdict} comment ${JSON.stringify(name)}`;
  const drops = Object.entries(rules).map(([name, expr]) => line(name, expr, "drop"));
  const accepts = Object.entries(accept).map(([name, expr]) => line(name, expr, "accept"));
  // The port range first, then the exceptions, then the catch-all drops.
  const nRange = drops.length - Object.keys(extra).length;
  const body = [...drops.slice(0, nRange), ...accepts, ...drops.slice(nRange)].join("\n");
  // Re-create it from scratch (a table left over by an aborted run is replaced).
  try {
    execFileSync("nft", ["delete", "table", "inet", table], { stdio: "ignore" });
  } catch (_) {
    /* not there: the normal case */
  }
  execFileSync("nft", ["-f", "-"], {
    input: `table inet ${table} {\n chain input {\n  type filter hook input priority 0; policy accept;\n${body}\n }\n}\n`,
    timeout: 10000,
  });
  return {
    table,
    rules,
    remove() {
      try {
        execFileSync("nft", ["delete", "table", "inet", table], { stdio: "ignore", timeout: 10000 });
      } catch (_) {
        /* gone already; the namespace goes away anyway */
      }
    },
    counters() {
      const out = {};
      const json = JSON.parse(execFileSync("nft", ["-j", "list", "table", "inet", table], { timeout: 10000 }).toString());
      for (const item of json.nftables || []) {
        const r = item.rule;
        if (!r) continue;
        const c = (r.expr || []).find((e) => e.counter);
        out[r.comment || JSON.stringify(r.expr)] = c ? c.counter.packets : 0;
      }
      return out;
    },
    /** The ruleset as nft prints it, for failure messages. */
    listing() {
      try {
        return execFileSync("nft", ["list", "table", "inet", table], { timeout: 10000 }).toString();
      } catch (e) {
        return `(nft list failed: ${e.message})`;
      }
    },
  };
}

module.exports = { nftMissing, dropPorts, portSpec };
