// Invite links (docs/protocol.md "Invite links"):
// - a guest's side: `/m/<code>?invite=<token>` is taken out of the address bar at once
//   (as a link's ?token= is: no copied link, history entry or Referer carries it) and kept
//   for this tab; at join the page redeems it with the typed name (POST
//   /api/invites/redeem) for a sign-in limited to this meeting and the invite's role;
// - the host's and co-hosts' side: the Invite panel makes links (role, expiry, uses),
//   lists them with a Copy button, and revokes them (`invite-create` / `invite-list` /
//   `invite-revoke`).
import { M, moderates } from "./state.js";
import { $, banner, smallButton } from "./ui.js";
import { hostAction } from "./people.js";
import { tokenClaims } from "./identity.js";

const INVITE_KEY = "meeting.invite";

const REFUSALS = {
  INVITE_EXPIRED: "This invite link has expired. Ask the host for a new one.",
  INVITE_USED_UP: "This invite link has already been used as many times as it allows. Ask the host for a new one.",
  INVITE_REVOKED: "The host revoked this invite link. Ask them for a new one.",
  INVITE_WRONG_MEETING: "This invite link is for another meeting: open the link exactly as you received it.",
  INVITE_INVALID: "This invite link is not valid: open the link exactly as you received it.",
  ROOM_LOCKED: "The host has locked this meeting: nobody new can join, invite links included.",
  MEETING_ENDED: "This meeting has ended.",
  NOT_FOUND: "There is no meeting with this code.",
};

/** Move `?invite=` from the address bar into this tab's storage. Runs before anything else. */
export function takeInvite() {
  const params = new URLSearchParams(location.search);
  if (!params.has("invite")) return;
  const token = params.get("invite");
  params.delete("invite");
  const q = params.toString();
  history.replaceState(history.state, "", location.pathname + (q ? "?" + q : "") + location.hash);
  if (token) sessionStorage.setItem(INVITE_KEY, token);
}

/** The invite this tab holds, not yet redeemed, or null. */
export function pendingInvite() {
  return sessionStorage.getItem(INVITE_KEY);
}

/** The role the pending invite gives (for the pre-join view), or null. */
export function invitedRole() {
  const t = pendingInvite();
  const c = t && tokenClaims(t);
  return (c && c.role) || null;
}

/**
 * Redeem the pending invite as `name`: the sign-in token, or an Error whose `code` is the
 * server's and whose message the page shows as it is. Used or refused, the invite is
 * dropped (a refused one would be refused again).
 */
export async function redeemInvite(name) {
  const token = pendingInvite();
  const res = await fetch("/api/invites/redeem", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token, name, roomId: M.roomId }),
  });
  const body = await res.json().catch(() => ({}));
  sessionStorage.removeItem(INVITE_KEY);
  if (res.ok && body.redeemed && body.redeemed.token) return body.redeemed.token;
  const err = body.error || { code: "HTTP", message: `HTTP ${res.status}` };
  const text = REFUSALS[err.code] || `The invite link was refused: ${err.message}`;
  throw Object.assign(new Error(text), { code: err.code, readable: true });
}

// ---------------------------------------------------------------- the Invite panel

const ROLE_WORDS = { participant: "participant", viewer: "viewer (watch only)", coHost: "co-host" };

function inviteUrl(link) {
  return location.origin + link.path;
}

function describe(link) {
  const parts = [ROLE_WORDS[link.role] || link.role];
  const uses = link.maxUses == null ? `${link.uses} used` : `${link.uses}/${link.maxUses} used`;
  parts.push(uses);
  if (link.revokedAt) parts.push("revoked");
  else if (Date.parse(link.expiresAt) <= Date.now()) parts.push("expired");
  else parts.push("until " + new Date(link.expiresAt).toLocaleString());
  return parts.join(" · ");
}

function render(links) {
  const ul = $("invite-list");
  ul.textContent = "";
  for (const link of links) {
    const li = document.createElement("li");
    li.dataset.testid = "invite";
    li.dataset.inviteId = link.inviteId;
    const text = document.createElement("span");
    text.className = "pname";
    text.dataset.testid = "invite-text";
    text.textContent = describe(link);
    const url = document.createElement("input");
    url.readOnly = true;
    url.value = inviteUrl(link);
    url.dataset.testid = "invite-url";
    url.setAttribute("aria-label", "Invite link");
    const copy = smallButton("Copy", "invite-copy", async () => {
      try {
        await navigator.clipboard.writeText(url.value);
        banner("Invite link copied.", { kind: "info" });
      } catch (_) {
        url.select(); // no clipboard permission: selected for Ctrl+C
      }
    });
    li.append(text, url, copy);
    if (!link.revokedAt) li.append(smallButton("Revoke", "invite-revoke", () => revoke(link.inviteId)));
    ul.appendChild(li);
  }
}


async function refresh() {
  const ack = await hostAction("invite-list", {});
  if (ack) render(ack.invites || []);
}

async function revoke(inviteId) {
  if (await hostAction("invite-revoke", { inviteId }, true)) await refresh();
}

async function create() {
  const uses = $("invite-uses").value.trim();
  const payload = {
    role: $("invite-role").value,
    expiresIn: Number($("invite-expiry").value),
    maxUses: uses ? Number(uses) : null,
  };
  const ack = await hostAction("invite-create", payload);
  if (!ack) return;
  await refresh();
}

/** Show the Invite section to the host and co-hosts (co-hosts cannot invite co-hosts). */
export function updateInvites() {
  $("invite-panel").hidden = !moderates();
  $("invite-role-cohost").hidden = M.role !== "host";
  $("invite-role-cohost").disabled = M.role !== "host";
}

export function initInvites() {
  $("invite-create").addEventListener("click", () => create().catch((e) => console.error("invite", e)));
  $("invite-refresh").addEventListener("click", () => refresh().catch((e) => console.error("invite", e)));
}
