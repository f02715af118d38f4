// Page chrome shared by every view: element lookup, which view shows, and the banner.
import { M } from "./state.js";

export const $ = (id) => document.getElementById(id);

const VIEWS = ["landing", "prejoin", "lobby", "meeting", "done"];

/** A small button (the lists' and tiles' actions): its label, test id and click handler. */
export function smallButton(text, testid, onClick, extraClass) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = extraClass ? `btn small ${extraClass}` : "btn small";
  b.textContent = text;
  b.dataset.testid = testid;
  b.addEventListener("click", onClick);
  return b;
}

export function show(view) {
  for (const v of VIEWS) $("view-" + v).hidden = v !== view;
  document.body.dataset.view = view;
}

let bannerTimer = null;

/** A message over the page; `kind` error (default), warn or info (info hides after 5 s). */
export function banner(text, opts) {
  const o = opts || {};
  $("banner").hidden = false;
  $("banner").className = "banner " + (o.kind || "error");
  $("banner-text").textContent = text;
  const hints = $("banner-hints");
  hints.textContent = "";
  hints.hidden = !o.hints;
  for (const h of o.hints || []) {
    const li = document.createElement("li");
    li.textContent = h;
    hints.appendChild(li);
  }
  M.notices.push(text);
  clearTimeout(bannerTimer);
  if (o.kind === "info") bannerTimer = setTimeout(hideBanner, 5000);
}

export function hideBanner() {
  $("banner").hidden = true;
}

/** Record an error for the tests and show it. */
export function fail(code, message, opts) {
  M.error = { code, message };
  banner(message, opts);
}

export function initials(name) {
  return (name || "?")
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0].toUpperCase())
    .join("");
}

export function initBanner() {
  $("banner-close").addEventListener("click", hideBanner);
}
