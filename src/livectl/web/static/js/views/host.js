// The host view (主播提词): large type, readable from two metres on a tablet. What is being
// explained and what to explain next, the top questions, the live coupon, critical alerts.
import { t } from "../i18n.js";
import { secondsLeft } from "../state.js";
import { count, el, money } from "../ui.js";
import { follow } from "./live.js";

const QUESTIONS_SHOWN = 3;

export function renderHost(main, ctx) {
  const now = el("div", { class: "host-now", id: "host-now" });
  const next = el("div", { class: "host-next", id: "host-next" });
  const questions = el("ol", { class: "host-questions", id: "host-questions" });
  const coupon = el("div", { class: "host-coupon", id: "host-coupon" });
  const alerts = el("div", { class: "host-alerts", id: "host-alerts" });
  main.replaceChildren(el("div", { class: "host" },
    el("section", { class: "host-card" }, el("h2", {}, t("host.now")), now),
    el("section", { class: "host-card" }, el("h2", {}, t("host.next")), next),
    el("section", { class: "host-card" }, el("h2", {}, t("host.questions")), questions),
    el("section", { class: "host-card" }, el("h2", {}, t("host.coupon")), coupon),
    alerts));

  const productLine = (id) => {
    const product = id ? live.state.product(id) : null;
    if (!product) return [t("host.nothing")];
    return [el("span", { class: "host-name" }, product.name), " ",
      el("span", { class: "host-price" }, money(product.price, live.state.room?.currency))];
  };

  function drawProducts() {
    now.replaceChildren(...productLine(live.state.pinned));
    next.replaceChildren(...productLine(live.state.recommended));
  }

  function drawQuestions() {
    const items = live.state.questions.slice(0, QUESTIONS_SHOWN);
    questions.replaceChildren(...(items.length ? items.map((q) =>
      el("li", {}, el("span", {}, q.label), " ", el("span", { class: "count" }, `×${q.count}`)))
      : [el("li", { class: "muted" }, t("host.noQuestions"))]));
  }

  function drawCoupon() {
    const drop = live.state.liveCoupon();
    coupon.replaceChildren(...(drop
      ? [el("span", { class: "host-name" }, drop.title), " ",
        el("span", { class: "host-countdown" }, t("coupons.ends", { s: secondsLeft(drop) })), " ",
        el("span", { class: "host-stock" },
          t("coupons.left", { n: count(drop.remaining), total: count(drop.quantity) }))]
      : [t("host.nothing")]));
  }

  function drawAlerts() {
    const critical = [...live.state.alerts.values()].filter((a) => a.level === "critical");
    alerts.replaceChildren(...critical.map((a) =>
      el("div", { class: "host-alert" }, `${t("level.critical")} · ${a.title}`)));
  }

  const draw = {
    all: () => {
      drawProducts();
      drawQuestions();
      drawCoupon();
      drawAlerts();
    },
    products: drawProducts,
    questions: drawQuestions,
    coupons: drawCoupon,
    alerts: drawAlerts,
  };
  const live = follow(ctx, main, (part) => draw[part]?.());
  const countdown = setInterval(drawCoupon, 1000);
  return () => {
    clearInterval(countdown);
    live.socket.close();
  };
}
