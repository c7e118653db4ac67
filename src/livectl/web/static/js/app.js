// The page shell: sign-in from a link, a hash router over the views, the top bar.
import { forgetToken, session, takeTokenFromLink } from "./auth.js";
import { language, setLanguage, t } from "./i18n.js";
import { renderHome } from "./views/home.js";
import { renderConsole } from "./views/console.js";
import { renderHost } from "./views/host.js";
import { renderController } from "./views/controller.js";
import { renderReport } from "./views/report.js";
import { el } from "./ui.js";

const VIEWS = {
  console: renderConsole,
  host: renderHost,
  controller: renderController,
  report: renderReport,
};

let cleanup = null;

function setConnection(state) {
  const badge = document.getElementById("conn");
  badge.dataset.state = state;
  badge.textContent = t(`conn.${state}`);
}

function topBar(current, room) {
  const nav = document.getElementById("nav");
  const links = [el("a", { href: "#/", class: current ? "" : "active" }, t("nav.rooms"))];
  if (room) {
    for (const view of ["console", "host", "report"]) {
      links.push(el("a", {
        href: `#/${view}/${encodeURIComponent(room)}`,
        class: current === view ? "active" : "",
      }, t(`nav.${view}`)));
    }
  }
  const signedIn = session();
  if (signedIn && ["controller", "admin"].includes(signedIn.claims.role)) {
    const target = room ? `#/controller/${encodeURIComponent(room)}` : "#/controller";
    links.push(el("a", { href: target, class: current === "controller" ? "active" : "" },
      t("nav.controller")));
  }
  nav.replaceChildren(...links);
  document.getElementById("who").textContent = signedIn
    ? `${signedIn.claims.sub} · ${t(`role.${signedIn.claims.role}`)}`
    : "";
  const signOut = document.getElementById("signout");
  signOut.hidden = !signedIn;
  signOut.textContent = t("signin.out");
}

function route() {
  takeTokenFromLink();
  cleanup?.();
  cleanup = null;
  setConnection("idle");
  const [, view, rawRoom] = location.hash.match(/^#\/(\w+)(?:\/([^/]+))?/) || [];
  const room = rawRoom ? decodeURIComponent(rawRoom) : null;
  const main = document.getElementById("view");
  main.replaceChildren();
  const current = session();
  const render = VIEWS[view];
  document.body.dataset.view = render && current ? view : "home";
  topBar(render && current ? view : null, current ? room : null);
  if (!render || !current) {
    renderHome(main);
    return;
  }
  cleanup = render(main, { session: current, room, setConnection });
}

document.documentElement.lang = language();
document.title = t("app.title");
const langButton = document.getElementById("lang");
langButton.textContent = t("lang.switch");
langButton.addEventListener("click", () => {
  setLanguage(language() === "zh-CN" ? "en" : "zh-CN");
  location.reload();
});
document.getElementById("signout").addEventListener("click", () => {
  forgetToken();
  location.hash = "#/";
  route();
});
window.addEventListener("hashchange", route);
route();
