// The camera and microphone: ask for what the user chose, settle for what the browser gives.

/**
 * `{ stream, problem }`: the stream (possibly without tracks) and, when something asked for
 * is missing, the sentence that tells the user.
 */
export async function getLocalMedia(wantAudio, wantVideo) {
  if (!wantAudio && !wantVideo) return { stream: new MediaStream(), problem: null };
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return { stream: new MediaStream(), problem: "This browser gives no access to camera and microphone (an insecure http:// page?)." };
  }
  const attempts = [
    { audio: wantAudio, video: wantVideo },
    wantAudio && wantVideo ? { audio: true, video: false } : null,
    wantAudio && wantVideo ? { audio: false, video: true } : null,
  ].filter(Boolean);
  let lastErr = null;
  for (const c of attempts) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(c);
      const missing = [];
      if (wantAudio && !c.audio) missing.push("microphone");
      if (wantVideo && !c.video) missing.push("camera");
      return {
        stream,
        problem: missing.length ? `No access to your ${missing.join(" and ")} (${lastErr && lastErr.name}). You joined without it.` : null,
      };
    } catch (e) {
      lastErr = e;
    }
  }
  const why = lastErr && lastErr.name === "NotAllowedError" ? "access was denied" : (lastErr && lastErr.message) || "unavailable";
  return { stream: new MediaStream(), problem: `Camera and microphone: ${why}. You joined without them; others can still see your name.` };
}
