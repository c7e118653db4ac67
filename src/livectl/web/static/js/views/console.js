// The assistant console (中控台): chat, ranked products, coupons, alerts, live stat tiles.
import { api, roomPath } from "../api.js";
import { atLeast } from "../auth.js";
import { StatTile } from "../charts.js";
import { ChatList } from "../chat.js";
import { reason, t } from "../i18n.js";
import { secondsLeft } from "../state.js";
import { act, count, el, money, panel, percent, showError } from "../ui.js";
import { follow } from "./live.js";

const MUTE_SECONDS = 600;

export function renderConsole(main, ctx) {
  const { room } = ctx;
  const claims = ctx.session.claims;
  const assistant = atLeast(claims, "assistant");
  const post = (path, body) => api("POST", roomPath(room, path), body);

  const chat = new ChatList({
    actions: assistant
      ? {
          hide: (button, m) =>
            act(button, () => post(`/messages/${encodeURIComponent(m.event_id)}/hide`)),
          mute: (button, m) =>
            act(button, () => post("/mutes", { user_id: m.user.id, seconds: MUTE_SECONDS })),
        }
      : null,
  });
  const currency = () => live.state.room?.currency || "CNY";
  const tiles = {
    online: new StatTile(t("stats.online"), count),
    comments_per_min: new StatTile(t("stats.comments_per_min"), count),
    likes_per_min: new StatTile(t("stats.likes_per_min"), count),
    orders: new StatTile(t("stats.orders"), count),
    gmv: new StatTile(t("stats.gmv"), (v) => money(v, currency())),
    conversion: new StatTile(t("stats.conversion"), percent),
  };
  const title = el("h1", { class: "room-title" });
  const productList = el("ol", { class: "products", id: "products" });
  const templateList = el("div", { class: "templates", id: "templates" });
  const couponList = el("div", { class: "coupons", id: "coupons" });
  const alertList = el("ol", { class: "alerts", id: "alerts" });

  main.replaceChildren(el("div", { class: "console" },
    el("div", { class: "console-head" }, title,
      el("div", { class: "tiles", id: "tiles" }, Object.values(tiles).map((x) => x.root))),
    panel("chat.title", chat.root),
    panel("products.title", productList),
    el("div", { class: "stack" },
      panel("coupons.title", templateList, couponList),
      panel("alerts.title", alertList))));

  function drawRoom() {
    const r = live.state.room;
    title.replaceChildren(r.title || r.id, " ",
      el("span", { class: `status ${r.status}` }, t(`status.${r.status}`)));
  }

  function drawProducts() {
    const { state } = live;
    productList.replaceChildren(...state.products.map((p) => {
      const pinned = state.pinned === p.id;
      const path = `/products/${encodeURIComponent(p.id)}`;
      return el("li", {
        class: `product${pinned ? " pinned" : ""}${p.sold_out ? " sold-out" : ""}`,
        "data-product": p.id,
      },
      el("div", { class: "product-line" },
        el("span", { class: "rank" }, p.rank ?? ""),
        el("strong", {}, p.name),
        el("span", { class: "price" }, money(p.price, currency())),
        pinned && el("span", { class: "badge pin" }, t("products.pinned")),
        state.recommended === p.id && el("span", { class: "badge next" },
          t("products.recommended")),
        p.sold_out && el("span", { class: "badge out" }, t("products.isSoldOut"))),
      el("div", { class: "reasons" }, (p.reasons || []).map(reason).join(" · ")),
      el("div", { class: "product-actions" },
        pinned
          ? el("button", { type: "button", class: "unpin",
              onclick: (e) => act(e.target, () => api("DELETE", roomPath(room, `${path}/pin`))) },
            t("products.unpin"))
          : el("button", { type: "button", class: "pin", disabled: p.sold_out,
              onclick: (e) => act(e.target, () => post(`${path}/pin`)) }, t("products.pin")),
        assistant && !p.sold_out && el("button", { type: "button", class: "soldout",
          onclick: (e) => act(e.target, () => post(`${path}/sold-out`)) },
        t("products.soldout"))));
    }));
  }

  function drawCoupons() {
    const coupons = [...live.state.coupons.values()].reverse();
    couponList.replaceChildren(...(coupons.length ? coupons.map((c) => {
      const ended = c.state === "ended";
      return el("div", { class: `coupon${ended ? " ended" : ""}`, "data-coupon": c.id },
        el("div", {}, el("strong", {}, c.title), " ",
          el("span", { class: "coupon-left" },
            t("coupons.left", { n: count(c.remaining), total: count(c.quantity) })), " ",
          el("span", { class: "coupon-time" }, ended
            ? `${t("coupons.ended")} · ${t(`end.${c.end_reason}`)}`
            : t("coupons.ends", { s: secondsLeft(c) }))),
        el("progress", { max: c.quantity, value: c.quantity - c.remaining }),
        assistant && !ended && el("button", { type: "button", class: "stop",
          onclick: (e) => act(e.target, () => post(`/coupons/${c.id}/stop`)) },
        t("coupons.stop")));
    }) : [el("p", { class: "muted" }, t("coupons.none"))]));
  }

  function drawAlerts() {
    const alerts = [...live.state.alerts.values()].sort((a, b) => b.created_at - a.created_at);
    alertList.replaceChildren(...(alerts.length ? alerts.map((a) =>
      el("li", { class: `alert ${a.level} ${a.status}`, "data-alert": a.id },
        el("div", {}, el("span", { class: `badge ${a.level}` }, t(`level.${a.level}`)), " ",
          el("strong", {}, a.title), " ",
          el("span", { class: "alert-status" }, t(`alerts.${a.status}`))),
        el("ul", { class: "samples" }, a.samples.slice(0, 3).map((s) =>
          el("li", {}, `${s.user}: ${s.text}`))),
        assistant && el("div", {},
          a.status === "open" && el("button", { type: "button", class: "ack",
            onclick: (e) => act(e.target, () => post(`/alerts/${a.id}/ack`)) }, t("alerts.ack")),
          el("button", { type: "button", class: "resolve",
            onclick: (e) => act(e.target, () => post(`/alerts/${a.id}/resolve`)) },
          t("alerts.resolve")))))
      : [el("li", { class: "muted" }, t("alerts.none"))]));
  }

  function drawStats(ts) {
    const stats = live.state.stats;
    if (!stats) return;
    for (const [field, tile] of Object.entries(tiles)) tile.push(ts, stats[field]);
  }

  const draw = {
    all: (envelope) => {
      chat.clear();
      drawRoom();
      drawProducts();
      drawCoupons();
      drawAlerts();
      drawStats(envelope.ts);
    },
    room: drawRoom,
    products: drawProducts,
    coupons: drawCoupons,
    alerts: drawAlerts,
    stats: (envelope) => drawStats(envelope.ts),
    chat: (envelope) => chat.add(envelope.data),
    moderation: (envelope) => {
      if (envelope.data.action === "hide") chat.remove(envelope.data.event_id);
    },
  };
  const live = follow(ctx, main, (part, envelope) => draw[part]?.(envelope));

  if (assistant) {
    api("GET", roomPath(room, "/coupon-templates"))
      .then((templates) => {
        templateList.replaceChildren(...(templates.length ? templates.map((tpl) =>
          el("button", { type: "button", class: "drop", "data-template": tpl.id,
            onclick: (e) => act(e.target, () => post("/coupons", { template_id: tpl.id })) },
          `${t("coupons.drop")} · ${tpl.terms.title}`))
          : [el("p", { class: "muted" }, t("coupons.noTemplates"))]));
      })
      .catch(showError);
  }
  const countdown = setInterval(() => {
    if (live.state.liveCoupon()) drawCoupons();
  }, 1000);
  return () => {
    clearInterval(countdown);
    live.socket.close();
  };
}
