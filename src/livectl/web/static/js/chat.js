// The chat column. Messages arrive far faster than a screen refreshes, so they are queued and
// drawn once per animation frame, and only the newest MAX_SHOWN stay in the DOM. While the
// pointer is over the list nothing moves, so a message can be clicked; the queue keeps
// at most MAX_SHOWN too, since older ones would be trimmed on arrival anyway.
import { el } from "./ui.js";
import { t } from "./i18n.js";

export const MAX_SHOWN = 300;

function mood(sentiment) {
  if (sentiment <= -0.3) return "neg";
  if (sentiment >= 0.3) return "pos";
  return "neutral";
}

export class ChatList {
  constructor({ actions }) {
    this.actions = actions; // null for a view that may not moderate
    this.queue = [];
    this.paused = false;
    this.frame = null;
    this.messages = new Map(); // event_id -> message of the rows shown, for their actions
    this.list = el("ol", { class: "chat-list", "aria-live": "off" });
    this.badge = el("div", { class: "chat-paused", hidden: true });
    this.root = el("div", { class: "chat" }, this.badge, this.list);
    // Hide and mute buttons are made for the row under the pointer only: a few hundred rows
    // a second come and go, and most are never pointed at.
    this.list.addEventListener("mouseover", (event) => {
      const row = event.target.closest(".chat-row");
      if (row && this.actions && !row.classList.contains("is-hidden")
          && !row.querySelector(".chat-actions")) {
        row.append(this.actionBar(this.messages.get(row.dataset.eventId)));
      }
    });
    this.list.addEventListener("mouseenter", () => {
      this.paused = true;
    });
    this.list.addEventListener("mouseleave", () => {
      this.paused = false;
      this.badge.hidden = true;
      this.schedule();
    });
  }

  add(message) {
    this.queue.push(message);
    if (this.queue.length > MAX_SHOWN) this.queue.splice(0, this.queue.length - MAX_SHOWN);
    this.schedule();
  }

  remove(eventId) {
    this.list.querySelector(`[data-event-id="${CSS.escape(eventId)}"]`)?.remove();
    this.messages.delete(eventId);
    this.queue = this.queue.filter((m) => m.event_id !== eventId);
  }

  clear() {
    this.queue = [];
    this.messages.clear();
    this.list.replaceChildren();
  }

  schedule() {
    if (this.frame === null) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = null;
    if (this.paused) {
      this.badge.hidden = false;
      this.badge.textContent = t("chat.paused", { n: this.queue.length });
      return;
    }
    if (this.queue.length === 0) return;
    const fragment = document.createDocumentFragment();
    for (const message of this.queue) fragment.append(this.row(message));
    this.queue = [];
    this.list.append(fragment);
    let excess = this.list.childElementCount - MAX_SHOWN;
    while (excess-- > 0) {
      const oldest = this.list.firstElementChild;
      this.messages.delete(oldest.dataset.eventId);
      oldest.remove();
    }
    this.list.scrollTop = this.list.scrollHeight;
  }

  actionBar(message) {
    return el(
      "span",
      { class: "chat-actions" },
      el("button", { type: "button", onclick: (e) => this.actions.hide(e.target, message) },
        t("chat.hide")),
      el("button", { type: "button", onclick: (e) => this.actions.mute(e.target, message) },
        t("chat.mute")),
    );
  }

  row(message) {
    const tags = (message.tags || []).map((tag) => el("span", { class: "tag" }, tag));
    const hidden = message.hidden
      ? el("span", { class: "tag hidden-tag" }, t("chat.hidden"), " · ",
          t(`hidden.${message.hidden_reason}`))
      : null;
    const row = el(
      "li",
      {
        class: `chat-row ${mood(message.sentiment)}${message.hidden ? " is-hidden" : ""}`,
        "data-event-id": message.event_id,
      },
      el("span", { class: "chat-user" }, message.user?.name || message.user?.id || "?"),
      el("span", { class: "chat-text" }, message.text),
      tags,
      hidden,
    );
    this.messages.set(message.event_id, message);
    return row;
  }
}
