// Small helpers every module of the gallery uses: building DOM nodes, formatting, toasts.

import { formatDate, formatNumber, t } from "./i18n.js";

export const LOG = "[fotoflo]";

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso.endsWith("Z") || /[+-]\d\d:\d\d$/.test(iso) ? iso : iso + "Z");
  if (Number.isNaN(date.getTime())) return iso;
  // EXIF times without an offset are camera-local: show them as written.
  if (!iso.endsWith("Z") && !/[+-]\d\d:\d\d$/.test(iso)) return iso.replace("T", " ");
  return formatDate(date);
}

export function formatBytes(n) {
  const oneDecimal = { minimumFractionDigits: 1, maximumFractionDigits: 1 };
  if (n >= 1 << 20) return t("bytes.mb", { size: formatNumber(n / (1 << 20), oneDecimal) });
  if (n >= 1 << 10) return t("bytes.kb", { size: Math.round(n / (1 << 10)) });
  return t("bytes.b", { size: n });
}

// Short messages in the corner, one with an action (Undo) if asked (`testid`: its button's); each goes
// after `ms`. A polite live region: a screen reader says each one.
export class Toasts {
  constructor() {
    this.root = h("div", { class: "ff-toasts", "data-testid": "toasts", role: "status" });
  }

  show(text, { action = null, onAction = null, ms = 4000, testid = "undo" } = {}) {
    const node = h("div", { class: "ff-toast", "data-testid": "toast" }, h("span", { text }));
    if (action) {
      node.append(h("button", { class: "ff-link", "data-testid": testid, text: action, onclick: () => {
        node.remove();
        onAction();
      } }));
    }
    this.root.append(node);
    setTimeout(() => node.remove(), ms);
  }
}
