// Who the page signs in as: the token saved on this device (a guest token the page asked
// for, or one a link brought with ?token=), else a new guest token.
import { requestGuestToken } from "./api.js";

const TOKEN_KEY = "meeting.token";
export const NAME_KEY = "meeting.name";

/** The token's claims, unverified (for expiry only; the server verifies). */
export function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
  } catch (_) {
    return null;
  }
}

/** Save a link's `?token=` and take it out of the address bar. */
export function takeLinkToken() {
  const params = new URLSearchParams(location.search);
  const urlToken = params.get("token");
  if (urlToken) {
    localStorage.setItem(TOKEN_KEY, urlToken);
    params.delete("token");
    const q = params.toString();
    history.replaceState(null, "", location.pathname + (q ? "?" + q : ""));
  }
}

function savedToken() {
  const t = localStorage.getItem(TOKEN_KEY);
  if (!t) return null;
  const c = tokenClaims(t);
  if (c && c.exp && c.exp * 1000 < Date.now() + 60000) {
    localStorage.removeItem(TOKEN_KEY);
    return null;
  }
  return t;
}

async function guestToken(name) {
  const r = await requestGuestToken(name);
  if (r.status === 404 || r.status === 405) {
    // Production servers have no guest sign-in: the embedding app passes ?token=.
    throw Object.assign(new Error("This server needs a sign-in token: open the meeting link from your app, or add ?token=<JWT> to it."), { code: "TOKEN_MISSING" });
  }
  if (!r.ok || !r.token) {
    const msg = (r.body.error && r.body.error.message) || `HTTP ${r.status}`;
    throw Object.assign(new Error(`Could not get a guest sign-in: ${msg}`), { code: "AUTH" });
  }
  localStorage.setItem(TOKEN_KEY, r.token);
  return r.token;
}

/** The saved token, else a new guest token; `renew`: the saved one was refused. */
export async function ensureToken(name, renew) {
  if (!renew) {
    const t = savedToken();
    if (t) return t;
  }
  return guestToken(name);
}
