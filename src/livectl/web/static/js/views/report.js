// The post-live report (复盘): GET /v1/rooms/{room}/report drawn as charts and tables.
import { api, roomPath } from "../api.js";
import { lineChart } from "../charts.js";
import { t } from "../i18n.js";
import { clock, count, el, money, panel, percent, showError } from "../ui.js";

const MINUTE_SERIES = ["online", "comments_per_min", "likes_per_min", "orders_per_min"];
const TOTALS = ["uv", "views", "likes", "comments", "orders", "gmv", "conversion", "aov"];

function table(id, columns, rows) {
  return el("table", { id },
    el("thead", {}, el("tr", {}, columns.map(([key]) => el("th", {}, t(key))))),
    el("tbody", {}, rows.map((row) =>
      el("tr", {}, columns.map(([, cell]) => el("td", {}, cell(row)))))));
}

function minuteCharts(minutes) {
  const xs = minutes.map((m) => m.minute / 1000);
  return el("div", { class: "report-charts" }, MINUTE_SERIES.map((field) => {
    const box = el("div", { class: "report-chart", "data-series": field },
      el("h3", {}, t(`stats.${field}`)));
    lineChart(box, { width: 560, height: 180, series: [field], xs, axes: true,
      ys: [minutes.map((m) => m.stats[field] ?? 0)] });
    return box;
  }));
}

function draw(main, report) {
  const currency = report.room.currency;
  const cash = (v) => money(v, currency);
  const totals = el("dl", { class: "totals", id: "totals" }, TOTALS.flatMap((field) => [
    el("dt", {}, t(`stats.${field}`)),
    el("dd", {}, field === "conversion" ? percent(report.totals[field])
      : ["gmv", "aov"].includes(field) ? cash(report.totals[field]) : count(report.totals[field])),
  ]));
  const funnel = table("funnel", [
    ["col.product", (p) => p.name],
    ["col.exposure", (p) => count(p.exposure_s)],
    ["col.mentions", (p) => count(p.mentions)],
    ["col.clicks", (p) => count(p.clicks)],
    ["col.carts", (p) => count(p.carts)],
    ["col.orders", (p) => count(p.orders)],
    ["col.quantity", (p) => count(p.quantity)],
    ["col.gmv", (p) => cash(p.gmv)],
    ["col.cart_rate", (p) => percent(p.cart_rate)],
    ["col.order_rate", (p) => percent(p.order_rate)],
    ["col.click_to_order", (p) => percent(p.click_to_order)],
  ], report.products);
  const coupons = table("coupon-roi", [
    ["col.coupon", (c) => c.title],
    ["col.time", (c) => clock(c.started_at)],
    ["col.claimed", (c) => `${count(c.claimed)}/${count(c.quantity)}`],
    ["col.redeemed", (c) => count(c.redeemed)],
    ["col.gmv", (c) => cash(c.gmv)],
    ["col.cost", (c) => cash(c.cost)],
    ["col.roi", (c) => (c.roi === null ? "—" : c.roi.toFixed(2))],
    ["col.status", (c) => (c.end_reason ? t(`end.${c.end_reason}`) : t("coupons.live"))],
  ], report.coupons);
  const alerts = table("alert-timeline", [
    ["col.time", (a) => clock(a.created_at)],
    ["col.level", (a) => el("span", { class: `badge ${a.level}` }, t(`level.${a.level}`))],
    ["col.alert", (a) => a.title],
    ["col.status", (a) => t(`alerts.${a.status}`)],
  ], report.alerts);
  const questions = table("top-questions", [
    ["col.question", (q) => q.label],
    ["col.count", (q) => count(q.count)],
  ], report.questions);
  const moderation = report.moderation;
  main.replaceChildren(el("div", { class: "report" },
    el("h1", {}, `${t("report.title")} · ${report.room.title || report.room.id}`),
    panel("report.totals", totals),
    panel("report.minutes", minuteCharts(report.minutes)),
    panel("report.funnel", funnel),
    panel("report.coupons", coupons),
    panel("report.alerts", alerts),
    panel("report.questions", questions),
    panel("report.moderation", el("p", { id: "moderation-summary" },
      `${t("report.hidden")} ${count(moderation.hidden)} · ${t("report.muted")} `,
      count(moderation.muted_users), " · ",
      Object.entries(moderation.by_reason).map(([r, n]) => `${t(`hidden.${r}`)} ${n}`)
        .join(" · ")))));
}

export function renderReport(main, ctx) {
  api("GET", roomPath(ctx.room, "/report"))
    .then((report) => draw(main, report))
    .catch(showError);
  return null;
}
