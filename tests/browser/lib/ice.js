// Which ICE path a page's media really took: a Playwright init script records every
// RTCPeerConnection the web client creates (the client itself is unchanged), and
// `selectedPairs` reads each one's selected candidate pair from getStats(), with the
// server's candidates as its SDP offered them (for failure reports).
"use strict";

/** Add before the page's first navigation: `await page.addInitScript(trackPeerConnections())`. */
function trackPeerConnections() {
  return {
    content: `(${function () {
      const Orig = window.RTCPeerConnection;
      const pcs = (window.__pcs = []);
      function Tracked(...args) {
        const pc = new Orig(...args);
        pcs.push(pc);
        return pc;
      }
      Tracked.prototype = Orig.prototype;
      Object.setPrototypeOf(Tracked, Orig);
      window.RTCPeerConnection = Tracked;
    }})();`,
  };
}

/**
 * For every open peer connection of the page: its state, the selected candidate pair
 * (the transport's `selectedCandidatePairId`, else a nominated succeeded pair) with its
 * local and remote candidates, and the `a=candidate` lines of the remote description.
 */
function selectedPairs(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const pc of window.__pcs || []) {
      if (pc.connectionState === "closed") continue;
      const stats = await pc.getStats();
      let pair = null;
      stats.forEach((s) => {
        if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId) || pair;
      });
      if (!pair) {
        stats.forEach((s) => {
          if (s.type === "candidate-pair" && s.state === "succeeded" && s.nominated) pair = s;
        });
      }
      const cand = (id) => {
        const c = id && stats.get(id);
        return c ? { protocol: c.protocol, address: c.address, port: c.port, candidateType: c.candidateType, tcpType: c.tcpType } : null;
      };
      const sdp = (pc.remoteDescription && pc.remoteDescription.sdp) || "";
      out.push({
        connectionState: pc.connectionState,
        iceConnectionState: pc.iceConnectionState,
        pair: pair ? { state: pair.state, nominated: pair.nominated, bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived } : null,
        local: pair ? cand(pair.localCandidateId) : null,
        remote: pair ? cand(pair.remoteCandidateId) : null,
        remoteCandidates: [...new Set(sdp.split(/\r?\n/).filter((l) => l.startsWith("a=candidate")))],
      });
    }
    return out;
  });
}

/** Waits (bounded) until the page has a connected peer connection with a selected pair; returns it. */
async function connectedPair(page, waitFor, { label = "page", timeout = 30000 } = {}) {
  return waitFor(
    async () => {
      const all = await selectedPairs(page);
      return all.find((p) => p.connectionState === "connected" && p.pair && p.remote) || null;
    },
    { timeout, interval: 500, what: `${label}: a connected peer connection with a selected candidate pair` },
  ).catch(async (e) => {
    const all = await selectedPairs(page).catch(() => []);
    throw new Error(`${e.message}\n peer connections: ${JSON.stringify(all, null, 1)}`);
  });
}

module.exports = { trackPeerConnections, selectedPairs, connectedPair };
