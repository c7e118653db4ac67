// Small DOM helpers. Text always goes in as text nodes: chat and names come from viewers.
import { ApiError } from "./api.js";
import { language, t } from "./i18n.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

let toastTimer = null;

export function showError(error) {
  const box = document.getElementById("toast");
  box.replaceChildren(
    el("strong", {}, error instanceof ApiError ? error.error : "error"),
    " ",
    error instanceof ApiError ? error.detail : String(error),
  );
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    box.hidden = true;
  }, 8000);
}

// Run a button's REST call, disabled meanwhile, any {error, detail} shown.
export async function act(button, call) {
  button.disabled = true;
  try {
    return await call();
  } catch (error) {
    showError(error);
    return undefined;
  } finally {
    button.disabled = false;
  }
}

export function money(units, currency = "CNY") {
  return new Intl.NumberFormat(language(), { style: "currency", currency }).format(
    (units ?? 0) / 100,
  );
}

export function percent(ratio) {
  return ratio === null || ratio === undefined ? "—" : `${(ratio * 100).toFixed(1)}%`;
}

export function count(n) {
  return new Intl.NumberFormat(language()).format(n ?? 0);
}

export function clock(ms) {
  return new Date(ms).toLocaleTimeString(language(), { hour12: false });
}

export function panel(titleKey, ...children) {
  return el("section", { class: "panel" }, el("h2", {}, t(titleKey)), ...children);
}
