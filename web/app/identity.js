// Who the page signs in as (docs/protocol.md, "The built-in page's sign-in").
//
// - The device's saved sign-in: localStorage `meeting.token`, a guest token the page asked
//   for, or a link's token the user chose to keep.
// - A link's token (`?token=<JWT>`, how an embedding app hands a sign-in to the page): taken
//   out of the address bar at once, so that a copied link, the history entry or a Referer
//   does not carry it; kept in sessionStorage for this tab only (it survives a reload, e.g.
//   "Rejoin"), and used by this tab instead of the saved one. It never replaces the saved
//   sign-in by itself: the page says whose it is and the user may keep it or drop it.
import { requestGuestToken } from "./api.js";
import { $ } from "./ui.js";

const TOKEN_KEY = "meeting.token";
const LINK_TOKEN_KEY = "meeting.linkToken";
export const NAME_KEY = "meeting.name";

/** The token's claims, unverified (for display and expiry only; the server verifies). */
export function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
  } catch (_) {
    return null;
  }
}

function who(token) {
  const c = tokenClaims(token);
  return (c && (c.name || c.sub)) || "an unknown user";
}

/** Move `?token=` from the address bar into this tab's storage. Runs before anything else. */
export function takeLinkToken() {
  const params = new URLSearchParams(location.search);
  if (!params.has("token")) return;
  const token = params.get("token");
  params.delete("token");
  const q = params.toString();
  history.replaceState(history.state, "", location.pathname + (q ? "?" + q : "") + location.hash);
  if (token) sessionStorage.setItem(LINK_TOKEN_KEY, token);
}

/** Use `token` as this tab's link token (a redeemed invite's sign-in). */
export function setLinkToken(token) {
  sessionStorage.setItem(LINK_TOKEN_KEY, token);
}

/** The link's token this tab uses, or null. */
export function linkToken() {
  return sessionStorage.getItem(LINK_TOKEN_KEY);
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

/**
 * The token to use: the link's, else the saved one, else a new guest token. `renew` asks
 * for a new guest token (the saved one was refused); a link's token is never swapped for
 * a guest behind the user's back, so callers check `linkToken()` before renewing.
 */
export async function ensureToken(name, renew) {
  const link = linkToken();
  if (link) return link;
  if (!renew) {
    const t = savedToken();
    if (t) return t;
  }
  return guestToken(name);
}

/** The words for a refused link token (the server's code says why). */
export function linkTokenRefused(code) {
  const why = code === "TOKEN_EXPIRED" ? "has expired" : "was refused";
  return `The sign-in in the link you opened (${who(linkToken())}) ${why}. Open a fresh link from your app, or use this device's own sign-in.`;
}

// ---------------------------------------------------------------- the identity line

/** Fill the identity line of the view shown (`landing` or `prejoin`); empty the others. */
export function renderIdentity(view) {
  for (const v of ["landing", "prejoin"]) {
    const box = $(v + "-identity");
    box.textContent = "";
    box.hidden = true;
  }
  const link = linkToken();
  const box = $(view + "-identity");
  if (!box || !link) return;
  const saved = savedToken();
  const linkClaims = tokenClaims(link) || {};
  const savedClaims = saved ? tokenClaims(saved) || {} : null;
  const text = document.createElement("span");
  text.dataset.testid = "identity-text";
  let words = `Signed in from the link as ${who(link)}, in this tab only.`;
  if (savedClaims && savedClaims.sub !== linkClaims.sub) {
    words += ` This device's saved sign-in (${who(saved)}) stays as it is.`;
  }
  text.textContent = words;
  const keep = document.createElement("button");
  keep.type = "button";
  keep.className = "btn small";
  keep.dataset.testid = "identity-remember";
  keep.textContent = "Keep it on this device";
  keep.addEventListener("click", () => {
    localStorage.setItem(TOKEN_KEY, link);
    sessionStorage.removeItem(LINK_TOKEN_KEY);
    renderIdentity(view);
  });
  const drop = document.createElement("button");
  drop.type = "button";
  drop.className = "btn small ghost";
  drop.dataset.testid = "identity-forget";
  drop.textContent = saved ? `Use ${who(saved)} instead` : "Don't use it";
  drop.addEventListener("click", () => {
    sessionStorage.removeItem(LINK_TOKEN_KEY);
    renderIdentity(view);
  });
  box.append(text, keep, drop);
  box.hidden = false;
}
