// The camera and microphone: ask for what the user chose, settle for what the browser gives.

/** The constraint for one kind: off, the default device, or the one chosen by its id. */
function constraint(want, deviceId) {
  if (!want) return false;
  return deviceId ? { deviceId: { exact: deviceId } } : true;
}

/**
 * `{ stream, problem, status }`: the stream (possibly without tracks); when something asked
 * for is missing, `problem` (the banner's sentence once joined) and `status` (what the
 * pre-join view says: blocked, missing, busy). `devices`: `{ audioinput, videoinput }`
 * chosen device ids ("" for the default).
 */
export async function getLocalMedia(wantAudio, wantVideo, devices) {
  const d = devices || {};
  if (!wantAudio && !wantVideo) return { stream: new MediaStream(), problem: null, status: null };
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    const text = "This browser gives no access to camera and microphone (an insecure http:// page?).";
    return { stream: new MediaStream(), problem: text, status: text };
  }
  const attempts = [
    { audio: wantAudio, video: wantVideo },
    wantAudio && wantVideo ? { audio: true, video: false } : null,
    wantAudio && wantVideo ? { audio: false, video: true } : null,
  ].filter(Boolean);
  let lastErr = null;
  for (const c of attempts) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: constraint(c.audio, d.audioinput),
        video: constraint(c.video, d.videoinput),
      });
      const missing = [];
      if (wantAudio && !c.audio) missing.push("microphone");
      if (wantVideo && !c.video) missing.push("camera");
      return {
        stream,
        problem: missing.length ? `No access to your ${missing.join(" and ")} (${lastErr && lastErr.name}). You joined without it.` : null,
        status: missing.length ? explain(missing, lastErr) : null,
      };
    } catch (e) {
      lastErr = e;
    }
  }
  const wanted = [wantAudio ? "microphone" : "", wantVideo ? "camera" : ""].filter(Boolean);
  const why = lastErr && lastErr.name === "NotAllowedError" ? "access was denied" : (lastErr && lastErr.message) || "unavailable";
  return {
    stream: new MediaStream(),
    problem: `Camera and microphone: ${why}. You joined without them; others can still see your name.`,
    status: explain(wanted, lastErr),
  };
}

/** What to tell the user about devices they asked for and did not get, and what to do. */
export function explain(missing, err) {
  const what = missing.join(" and ");
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") {
    return `Your ${what} ${missing.length > 1 ? "are" : "is"} blocked for this page. Allow access in the browser's site settings (the icon beside the address), then reload. You can still join without.`;
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") {
    return `No ${what} found. Connect one and reload, or join without.`;
  }
  if (name === "NotReadableError" || name === "AbortError") {
    return `Your ${what} could not start: another application may be using it.`;
  }
  return `Your ${what} could not be opened (${(err && (err.message || err.name)) || "unavailable"}).`;
}
