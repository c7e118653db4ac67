// The token lives in sessionStorage only: it dies with the tab, and a sign-in link's copy is
// stripped from the address bar (and so from history) as soon as the page has read it.
const TOKEN_KEY = "livectl.token";

const ROLE_ORDER = ["player", "host", "assistant", "controller", "admin"];
// What each role adds over the one below it (API.md, "Auth and roles").
const PERMISSIONS_ADDED = {
  player: ["perm.claim"],
  host: ["perm.read", "perm.pin"],
  assistant: ["perm.soldout", "perm.drop", "perm.moderate", "perm.alerts"],
  controller: ["perm.rooms", "perm.templates", "perm.settings"],
  admin: ["perm.tokens", "perm.ingest"],
};

// A link is `/#token=...`, optionally `&to=/console/ROOM` to open on a view.
export function takeTokenFromLink() {
  if (!location.hash.startsWith("#token=")) return;
  const link = new URLSearchParams(location.hash.slice(1));
  sessionStorage.setItem(TOKEN_KEY, link.get("token"));
  const to = link.get("to") || "";
  const route = /^\/\w+(\/[^/]+)?$/.test(to) ? to : "/";
  history.replaceState(null, "", `${location.pathname}${location.search}#${route}`);
}

export function storeToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

// The claims are read for display and navigation only; the server checks the signature.
export function decodeClaims(raw) {
  const parts = (raw || "").split(".");
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof claims.role !== "string" || !Array.isArray(claims.rooms)) return null;
    return claims;
  } catch {
    return null;
  }
}

export function session() {
  const raw = token();
  const claims = decodeClaims(raw);
  if (!claims || claims.exp * 1000 <= Date.now()) return null;
  return { token: raw, claims };
}

export function atLeast(claims, role) {
  return ROLE_ORDER.indexOf(claims.role) >= ROLE_ORDER.indexOf(role);
}

export function permissions(role) {
  if (role === "ingest") return ["perm.ingest"];
  const upTo = ROLE_ORDER.indexOf(role);
  return ROLE_ORDER.slice(0, upTo + 1).flatMap((r) => PERMISSIONS_ADDED[r]);
}
