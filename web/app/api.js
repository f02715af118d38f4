// The REST calls the page makes (docs/rest-api.md).

/** POST /api/auth/guest: `{ status, ok, token }` (token null when refused). */
export async function requestGuestToken(name) {
  const res = await fetch("/api/auth/guest", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: name || "Guest" }),
  });
  const body = await res.json().catch(() => ({}));
  const token = body.token || (body.data && body.data.token) || body.accessToken || null;
  return { status: res.status, ok: res.ok, token, body };
}

/** POST /api/meetings/create: `{ status, ok, body }`. */
export async function createMeeting(token, title) {
  const res = await fetch("/api/meetings/create", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + token },
    body: JSON.stringify({ title }),
  });
  const body = await res.json().catch(() => ({}));
  return { status: res.status, ok: res.ok, body };
}

/** The `{ error: { code, message } }` of a refused REST call, or null. */
export function restError(body) {
  return (body && body.error) || null;
}
