// The connection quality of each participant as this page receives them, from getStats
// every few seconds: packet loss over the last interval, the round trip to whoever
// sends (the server in SFU mode, the other browser in mesh mode) and the received
// camera resolution. tiles.js shows it as a coloured dot with the numbers in its label.
import { M, session } from "./state.js";
import { remoteTracks, eachInbound } from "./remote-media.js";
import { renderTiles } from "./tiles.js";

const EVERY_MS = 2000;
// Above these, the connection is "fair", then "poor" (video calls degrade visibly past
// a few percent of loss or a few hundred milliseconds of round trip).
const FAIR = { loss: 2, rtt: 250 };
const POOR = { loss: 8, rtt: 500 };

let timer = null;
// peerId → { lost, received } at the last sample, for the loss of the interval.
let last = new Map();

function level(loss, rtt) {
  if (loss > POOR.loss || (rtt != null && rtt > POOR.rtt)) return "poor";
  if (loss > FAIR.loss || (rtt != null && rtt > FAIR.rtt)) return "fair";
  return "good";
}

/** The selected candidate pair's round trip of one connection, in ms (or null). */
function roundTrip(report) {
  let rtt = null;
  report.forEach((s) => {
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.currentRoundTripTime != null) {
      rtt = s.currentRoundTripTime * 1000;
    }
  });
  return rtt;
}

async function sample() {
  const tracks = remoteTracks().filter((t) => t.source === "camera" || t.source === "microphone");
  const next = new Map();
  const quality = {};
  const rtts = new Map();
  await eachInbound(tracks, (t, s, report) => {
    if (!rtts.has(report)) rtts.set(report, roundTrip(report));
    const acc = next.get(t.peerId) || { lost: 0, received: 0, width: 0, height: 0 };
    acc.lost += Math.max(0, s.packetsLost || 0);
    acc.received += s.packetsReceived || 0;
    if (t.source === "camera" && s.frameWidth) {
      acc.width = s.frameWidth;
      acc.height = s.frameHeight;
    }
    acc.rtt = rtts.get(report);
    next.set(t.peerId, acc);
  });
  for (const [peerId, now] of next) {
    const before = last.get(peerId) || { lost: 0, received: 0 };
    const lost = Math.max(0, now.lost - before.lost);
    const got = Math.max(0, now.received - before.received);
    const loss = lost + got > 0 ? (100 * lost) / (lost + got) : 0;
    // Nothing received in the interval: nothing to judge (a sender with both devices off).
    quality[peerId] = { level: got === 0 ? "idle" : level(loss, now.rtt), loss, rtt: now.rtt, width: now.width, height: now.height };
  }
  last = next;
  M.quality = quality;
  renderTiles();
}

/** Sample while the call lasts. */
export function startQuality() {
  stopQuality();
  timer = setInterval(() => {
    if (M.state === "joined" && (session.pc || session.meshPeers.size)) sample().catch(() => {});
  }, EVERY_MS);
}

export function stopQuality() {
  clearInterval(timer);
  timer = null;
  last = new Map();
  M.quality = {};
}
