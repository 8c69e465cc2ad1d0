// The page's connection to the Fotoflo API: its base URL and the project's paths, the headers every
// request carries, and the wait for a notebook server to accept this page's origin.

import { h } from "./dom.js";
import { failure } from "./i18n.js";

export class Api {
  constructor(model) {
    this.model = model;
    this.base = (model.api_base || "").replace(/\/$/, ""); // "" is the page's own server
    this.project = model.project;
    // Every API request waits for it (fetchJson, the stream, writes): the origin accepted, the route chosen.
    this.ready = this.originReady().then(() => this.route());
  }

  // In Jupyter, the kernel's loopback port may be out of the browser's reach (JupyterHub, a remote
  // server, a container): when the Jupyter server proxies it (jupyter-server-proxy), the page talks to
  // its notebook server through `{baseUrl}proxy/{port}`, on the page's own origin. Otherwise directly.
  async route() {
    const proxy = jupyterProxy(this.base, this.model.api_token);
    if (!proxy) return;
    try {
      const resp = await fetch(`${proxy}/healthz`, { cache: "no-store", headers: this.headers() });
      const health = resp.ok ? await resp.json() : null;
      if (health && health.status) this.base = proxy;
    } catch (_) { /* no proxy there: directly */ }
    console.info(`[fotoflo] notebook server ${this.base === proxy ? `through Jupyter at ${proxy}` : `at ${this.base}`}`);
  }

  // The notebook's server (a token in the model) answers CORS only to origins its kernel was told of:
  // this page names its own through the model (the notebook's authenticated connection) and waits for
  // the kernel to confirm, so the first request is not refused. A kernel that never answers (a saved
  // notebook opened without one) leaves the stream's retries to show it offline.
  originReady() {
    const origin = window.location.origin;
    if (!this.model.api_token || this.model.allowed_origin === origin) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (this.model.allowed_origin === origin) resolve(); };
      this.model.on("allowed_origin", done);
      setTimeout(resolve, 10000);
      this.model.page_origin = origin;
    });
  }

  // Headers of an API request: the notebook server's token, and with sign-in on the CSRF token of writes.
  headers(extra = {}) {
    const out = csrfHeaders(this.base, extra);
    return this.model.api_token ? { ...out, Authorization: `Bearer ${this.model.api_token}` } : out;
  }

  // The URL of an API path, or of a file URL the API gave (which may be absolute: signed, elsewhere).
  url(path) {
    return path.startsWith("http") ? path : this.base + path;
  }

  // The API path of this gallery's project, `rest` appended.
  projectPath(rest) {
    return `/api/projects/${encodeURIComponent(this.project)}${rest}`;
  }

  async fetchJson(path) {
    await this.ready;
    const resp = await fetch(this.base + path, { cache: "no-store", headers: this.headers() });
    if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
    return resp.json();
  }

  // A write with a JSON body; its answer, or an Error with the server's reason.
  async request(method, path, body) {
    await this.ready;
    const resp = await fetch(this.url(path), {
      method, headers: this.headers({ "Content-Type": "application/json" }),
      body: body ? JSON.stringify(body) : undefined,
    });
    const answer = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(failure(answer, resp.status));
    return answer;
  }

  // A link cannot send the notebook server's token: with one, fetch the file and save it from here
  // (through a link added to `parent` for the moment of its click).
  async download(url, parent) {
    await this.ready;
    const resp = await fetch(url, { headers: this.headers() });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const disposition = resp.headers.get("Content-Disposition") || "";
    const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
    const plain = /filename="?([^";]+)"?/.exec(disposition);
    const href = URL.createObjectURL(await resp.blob());
    const link = h("a", { href, download: utf8 ? decodeURIComponent(utf8[1]) : plain ? plain[1] : "" });
    parent.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
  }
}

// With sign-in on, a write from the page carries the session's CSRF token, which the server left in a
// readable cookie. Only to the page's own server (api_base ""): another origin never sees it.
function csrfHeaders(api, headers = {}) {
  const match = api ? null : document.cookie.match(/(?:^|;\s*)fotoflo_csrf=([^;]+)/);
  return match ? { ...headers, "X-Fotoflo-CSRF": decodeURIComponent(match[1]) } : headers;
}

// The path of the Jupyter server's proxy to the notebook server at `base` (a loopback URL), when this
// page is a Jupyter page (JupyterLab and Notebook 7 name their base URL in `jupyter-config-data`).
function jupyterProxy(base, token) {
  const config = document.getElementById("jupyter-config-data");
  const port = /^http:\/\/(?:127\.0\.0\.1|localhost|\[::1\]):(\d+)$/.exec(base);
  if (!token || !config || !port) return null;
  try {
    const baseUrl = JSON.parse(config.textContent).baseUrl || "/";
    return `${baseUrl.replace(/\/?$/, "/")}proxy/${port[1]}`;
  } catch (_) {
    return null;
  }
}
