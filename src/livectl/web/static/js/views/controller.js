// The controller view (场控): rooms and products, coupon templates, moderation settings,
// automation rules and tokens for the team.
import { api, ApiError, roomPath } from "../api.js";
import { atLeast } from "../auth.js";
import { t } from "../i18n.js";
import { act, el, panel, showError } from "../ui.js";

const ROLES = ["host", "assistant", "controller", "player", "ingest", "admin"];
const TEMPLATE_EXAMPLE = {
  title: "直播间专享", kind: "amount_off", value: 1000, min_spend: 9900,
  quantity: 100, per_user: 1, duration_s: 60,
};

// A JSON document edited in place: `save` gets the parsed value; {error, detail} answers
// (validation errors above all) are shown under the editor.
function jsonEditor({ id, value, save, saveLabel = t("ctl.save") }) {
  const area = el("textarea", { id, class: "json", rows: 10, spellcheck: "false" });
  area.value = JSON.stringify(value, null, 2);
  const message = el("p", { class: "form-result", role: "status" });
  const button = el("button", { type: "button" }, saveLabel);
  button.addEventListener("click", async () => {
    let parsed;
    try {
      parsed = JSON.parse(area.value);
    } catch (error) {
      message.className = "form-result form-error";
      message.textContent = `${t("ctl.badJson")}: ${error.message}`;
      return;
    }
    button.disabled = true;
    try {
      await save(parsed);
      message.className = "form-result ok";
      message.textContent = t("ctl.saved");
    } catch (error) {
      message.className = "form-result form-error";
      message.textContent = error instanceof ApiError
        ? `${error.error}: ${error.detail}` : String(error);
    } finally {
      button.disabled = false;
    }
  });
  return el("div", { class: "json-editor" }, area, button, message);
}

const EDITABLE_PRODUCT_FIELDS = ["id", "name", "aliases", "price", "stock"];

function roomsPanel(selected) {
  const list = el("ul", { class: "rooms" });
  const idInput = el("input", { placeholder: t("ctl.roomId"), id: "new-room-id" });
  const titleInput = el("input", { placeholder: t("ctl.roomTitle"), id: "new-room-title" });
  const create = el("button", { type: "submit" }, t("ctl.create"));
  const form = el("form", { class: "inline" }, idInput, titleInput, create);
  const refresh = () => api("GET", "/v1/rooms").then((rooms) => {
    list.replaceChildren(...rooms.map((room) => {
      const path = roomPath(room.id);
      return el("li", { class: room.id === selected ? "selected" : "" },
        el("a", { href: `#/controller/${encodeURIComponent(room.id)}` }, room.title || room.id),
        " ", el("span", { class: `status ${room.status}` }, t(`status.${room.status}`)), " ",
        room.status === "created" && el("button", { type: "button", onclick: (e) =>
          act(e.target, () => api("POST", `${path}/start`).then(refresh)) }, t("ctl.start")),
        room.status === "live" && el("button", { type: "button", onclick: (e) =>
          act(e.target, () => api("POST", `${path}/end`).then(refresh)) }, t("ctl.end")));
    }));
  }).catch(showError);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(create, async () => {
      await api("POST", "/v1/rooms", { id: idInput.value.trim(), title: titleInput.value });
      location.hash = `#/controller/${encodeURIComponent(idInput.value.trim())}`;
    });
  });
  refresh();
  return panel("ctl.rooms", list, form);
}

function tokensPanel(room) {
  const sub = el("input", { placeholder: t("ctl.sub"), id: "token-sub" });
  const role = el("select", { id: "token-role" },
    ROLES.map((r) => el("option", { value: r }, t(`role.${r}`))));
  const rooms = el("input", { value: room || "", placeholder: t("signin.rooms"),
    id: "token-rooms" });
  const ttl = el("input", { type: "number", value: 43200, min: 60, id: "token-ttl" });
  const issue = el("button", { type: "submit", id: "token-issue" }, t("ctl.issue"));
  const result = el("div", { class: "token-result", id: "token-result" });
  const form = el("form", { class: "inline" }, sub, role, rooms, ttl, issue);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(issue, async () => {
      const issued = await api("POST", "/v1/tokens", {
        sub: sub.value.trim(), role: role.value, ttl_s: Number(ttl.value),
        rooms: rooms.value.split(",").map((r) => r.trim()).filter(Boolean),
      });
      const link = `${location.origin}/#token=${issued.token}`;
      result.replaceChildren(el("label", {}, t("ctl.link")),
        el("input", { readonly: true, value: link, class: "token-link" }));
    });
  });
  return panel("ctl.tokens", form, result);
}

async function roomPanels(room) {
  const path = (rest) => roomPath(room, rest);
  const [products, templates, moderation] = await Promise.all([
    api("GET", path("/products")),
    api("GET", path("/coupon-templates")),
    api("GET", path("/moderation")),
  ]);
  const productDocs = products.map((p) =>
    Object.fromEntries(EDITABLE_PRODUCT_FIELDS.filter((f) => p[f] !== undefined && p[f] !== null)
      .map((f) => [f, p[f]])));
  const templateList = el("ul", { id: "template-list" },
    templates.map((tpl) => el("li", {}, el("code", {}, tpl.id), " ", tpl.terms.title)));
  const blocked = el("textarea", { id: "blocked-words", rows: 5 });
  blocked.value = moderation.blocked_words.join("\n");
  const slow = el("input", { type: "number", min: 0, value: moderation.slow_mode_s,
    id: "slow-mode" });
  const saveModeration = el("button", { type: "button", id: "save-moderation", onclick: (e) => act(e.target, () =>
    api("PUT", path("/moderation"), {
      blocked_words: blocked.value.split("\n").map((w) => w.trim()).filter(Boolean),
      slow_mode_s: Number(slow.value),
    })) }, t("ctl.save"));
  const panels = [
    panel("ctl.products", jsonEditor({ id: "products-json", value: productDocs,
      save: (doc) => api("PUT", path("/products"), doc) })),
    panel("ctl.templates", templateList, jsonEditor({ id: "template-json",
      value: TEMPLATE_EXAMPLE, saveLabel: t("ctl.addTemplate"),
      save: async (doc) => {
        const made = await api("POST", path("/coupon-templates"), doc);
        templateList.append(el("li", {}, el("code", {}, made.id), " ", made.terms.title));
      } })),
    panel("ctl.moderation", el("label", {}, t("ctl.blocked"), blocked),
      el("label", {}, t("ctl.slow"), slow), saveModeration),
  ];
  // Automation rules exist only where the rules endpoint does: a bare 404 hides the panel.
  try {
    const rules = await api("GET", path("/rules"));
    panels.push(panel("ctl.rules", jsonEditor({ id: "rules-json", value: rules,
      save: (doc) => api("PUT", path("/rules"), doc) })));
  } catch (error) {
    if (error.error !== "not_found") showError(error);
  }
  return panels;
}

export function renderController(main, ctx) {
  const claims = ctx.session.claims;
  const grid = el("div", { class: "controller" }, roomsPanel(ctx.room));
  if (atLeast(claims, "admin")) grid.append(tokensPanel(ctx.room));
  main.replaceChildren(grid);
  if (ctx.room) roomPanels(ctx.room).then((panels) => grid.append(...panels)).catch(showError);
  return null;
}
