// Small helpers every module of the gallery uses: building DOM nodes, formatting, request headers.

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
  return date.toLocaleString();
}

export function formatBytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MB`;
  if (n >= 1 << 10) return `${Math.round(n / (1 << 10))} KB`;
  return `${n} B`;
}

// With sign-in on, a write from the page carries the session's CSRF token, which the server left in a
// readable cookie. Only to the page's own server (api_base ""): another origin never sees it.
export function csrfHeaders(api, headers = {}) {
  const match = api ? null : document.cookie.match(/(?:^|;\s*)fotoflo_csrf=([^;]+)/);
  return match ? { ...headers, "X-Fotoflo-CSRF": decodeURIComponent(match[1]) } : headers;
}

// Install the methods of `source` (a class used only as a bag of methods) on `target`'s prototype:
// a concern that works on the gallery's own state (the list of ids, the grid) lives in its own module.
export function mixin(target, source) {
  for (const name of Object.getOwnPropertyNames(source.prototype)) {
    if (name === "constructor") continue;
    if (name in target.prototype) throw new Error(`${LOG} ${source.name}.${name} would replace ${target.name}.${name}`);
    Object.defineProperty(target.prototype, name, Object.getOwnPropertyDescriptor(source.prototype, name));
  }
}
