// What the recording tests check of the files a recording leaves, with the system's
// ffprobe/ffmpeg, and the host's recording control on the page (recording.test.js, and
// cluster.test.js for a recording made on another node).
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const h = require("./harness");

/** ffprobe's view of a file: its streams' codecs and the container's duration. */
function probe(file) {
  const r = spawnSync("ffprobe", ["-v", "error", "-show_entries", "stream=codec_name,codec_type:format=duration", "-of", "json", file], { encoding: "utf8" });
  assert.equal(r.status, 0, `ffprobe ${file}: ${r.stderr}`);
  const j = JSON.parse(r.stdout);
  return { streams: j.streams || [], duration: Number(j.format && j.format.duration) };
}

/** The last packet's end time in seconds (for files whose container has no duration). */
function lastPacketSecs(file) {
  const r = spawnSync("ffprobe", ["-v", "error", "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", file], { encoding: "utf8" });
  assert.equal(r.status, 0, `ffprobe packets ${file}: ${r.stderr}`);
  const lines = r.stdout.trim().split("\n").filter(Boolean);
  const [pts, dur] = lines[lines.length - 1].split(",").map(Number);
  return pts + (Number.isFinite(dur) ? dur : 0);
}

// What ffmpeg's null muxer prints when two frames of a variable-rate video land in one
// tick of the constant rate ffmpeg guessed from the first frames (Chromium's fake camera
// starved of CPU delivers two frames a few ms apart): a re-timing complaint of the
// output side, not a decoding error. Tolerated only when the same file then decodes
// with no output at all at its own time base (`-enc_time_base:v -1`).
const RETIMING = /^\[null @ 0x[0-9a-f]+\] Application provided invalid, non monotonically increasing dts to muxer in stream 0: (\d+) >= \1$/;

/** Decode every frame: `ffmpeg -v error -i FILE -f null -` prints no decoding error. */
function decodesCleanly(file) {
  const r = spawnSync("ffmpeg", ["-nostdin", "-v", "error", "-i", file, "-f", "null", "-"], { encoding: "utf8" });
  assert.equal(r.status, 0, `ffmpeg decode ${file}: ${r.stderr}`);
  const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  const other = lines.filter((l) => !RETIMING.test(l));
  assert.deepEqual(other, [], `ffmpeg decoding errors in ${file}`);
  if (lines.length > 0) {
    const own = spawnSync("ffmpeg", ["-nostdin", "-v", "error", "-i", file, "-enc_time_base:v", "-1", "-f", "null", "-"], { encoding: "utf8" });
    assert.equal(own.status, 0, `ffmpeg decode ${file}: ${own.stderr}`);
    assert.equal(own.stderr.trim(), "", `ffmpeg decoding errors in ${file} at its own time base`);
    console.log(`note: ${path.basename(file)}: ${lines.length} re-timing line(s) from the null muxer, none at the file's own time base`);
  }
}

/** The one recording directory under a server's RECORDINGS_DIR for `roomId`. */
function recordingDir(recordingsDir, roomId) {
  const room = path.join(recordingsDir, roomId);
  const ids = fs.readdirSync(room).filter((n) => !n.startsWith("."));
  assert.equal(ids.length, 1, `recordings of ${roomId}: ${ids}`);
  return path.join(room, ids[0]);
}

/** Whether the page shows the red "Recording" indicator. */
const indicator = (page) => page.getByTestId("recording-indicator").isVisible();

/** The host starts recording from the People panel; waits for its own indicator. */
async function startFromPage(page) {
  await page.getByTestId("toggle-participants").click();
  await page.getByTestId("record-toggle").click();
  await h.waitFor(() => indicator(page), { what: "the host's page to show Recording" });
}

module.exports = { probe, lastPacketSecs, decodesCleanly, recordingDir, indicator, startFromPage };
