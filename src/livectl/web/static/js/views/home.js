// Sign-in (paste a token or follow a link carrying one), what the role may do, the rooms.
import { api } from "../api.js";
import { decodeClaims, permissions, session, storeToken } from "../auth.js";
import { t } from "../i18n.js";
import { clock, el, showError } from "../ui.js";

function signInForm(main) {
  const input = el("textarea", { id: "token-input", rows: 4, placeholder: t("signin.paste") });
  const message = el("p", { class: "form-error", role: "alert" });
  const form = el("form", { class: "signin" }, el("h1", {}, t("signin.title")), input,
    el("button", { type: "submit", id: "signin-submit" }, t("signin.submit")), message);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const claims = decodeClaims(input.value.trim());
    if (!claims) {
      message.textContent = t("signin.invalid");
      return;
    }
    if (claims.exp * 1000 <= Date.now()) {
      message.textContent = t("signin.expired");
      return;
    }
    storeToken(input.value);
    renderHome(main);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  });
  main.replaceChildren(form);
}

function claimsCard(claims) {
  const rooms = claims.rooms.includes("*") ? t("signin.allRooms") : claims.rooms.join(", ");
  return el("section", { class: "panel claims" },
    el("dl", {},
      el("dt", {}, t("signin.role")), el("dd", { id: "role" }, t(`role.${claims.role}`)),
      el("dt", {}, t("signin.rooms")), el("dd", {}, rooms),
      el("dt", {}, t("signin.expires")), el("dd", {}, clock(claims.exp * 1000))),
    el("h2", {}, t("signin.may")),
    el("ul", { id: "permissions" }, permissions(claims.role).map((p) => el("li", {}, t(p)))));
}

function roomLinks(room) {
  const id = encodeURIComponent(room.id);
  return el("li", { class: "room-item", "data-room": room.id },
    el("span", { class: `status ${room.status}` }, t(`status.${room.status}`)),
    el("strong", {}, room.title || room.id), " ", el("code", {}, room.id), " ",
    el("a", { href: `#/console/${id}` }, t("nav.console")), " ",
    el("a", { href: `#/host/${id}` }, t("nav.host")), " ",
    el("a", { href: `#/report/${id}` }, t("nav.report")));
}

export function renderHome(main) {
  const current = session();
  if (!current) {
    signInForm(main);
    return;
  }
  const list = el("ul", { class: "rooms", id: "rooms" });
  const roomInput = el("input", { placeholder: t("rooms.enter"), id: "room-input" });
  const open = el("form", { class: "inline" }, roomInput,
    el("button", { type: "submit" }, t("rooms.open")));
  open.addEventListener("submit", (event) => {
    event.preventDefault();
    if (roomInput.value.trim()) {
      location.hash = `#/console/${encodeURIComponent(roomInput.value.trim())}`;
    }
  });
  main.replaceChildren(el("div", { class: "home" }, claimsCard(current.claims),
    el("section", { class: "panel" }, el("h2", {}, t("rooms.title")), list, open)));
  if (current.claims.role === "ingest") return;
  api("GET", "/v1/rooms")
    .then((rooms) => {
      list.replaceChildren(...(rooms.length ? rooms.map(roomLinks)
        : [el("li", {}, t("rooms.none"))]));
    })
    .catch(showError);
}
