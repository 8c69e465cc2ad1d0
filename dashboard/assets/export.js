// Exporting the open collection: its filenames copied or as .txt / CSV, and a ZIP of the originals,
// whose progress the page follows.

import { formatBytes, h, sleep } from "./dom.js";
import { t } from "./i18n.js";

const EXPORT_POLL_MS = 250;

export class CollectionExport {
  // `open`: the open collection (collection.js) whose files these are.
  constructor(open) {
    this.open = open;
    this.gallery = open.gallery;
    const files = (name) => this.gallery.api.url(open.panel.path(`/${open.id}/${name}`));
    this.progress = h("progress", { class: "ff-export-progress", "data-testid": "export-progress", max: "100",
      value: "0", hidden: "" });
    this.progressText = h("span", { class: "ff-muted", "data-testid": "export-status" });
    this.actions = h("div", { class: "ff-actions" },
      h("button", { class: "ff-button", "data-testid": "collection-copy", text: t("exports.copy"),
        title: t("exports.copy.title"), onclick: () => this.copyNames() }),
      h("a", { class: "ff-button", "data-testid": "collection-export-txt", text: ".txt", download: "",
        href: files("export.txt"), onclick: (e) => this.tokenDownload(e) }),
      h("a", { class: "ff-button", "data-testid": "collection-export-csv", text: "CSV", download: "",
        href: files("export.csv"), onclick: (e) => this.tokenDownload(e) }),
      // A ZIP holds the originals: not offered where the share link may not download them.
      h("button", { class: "ff-button", "data-testid": "collection-export-zip", text: t("exports.zip"),
        hidden: this.gallery.model.download === "original" ? undefined : "", onclick: () => this.exportZip() }));
    this.status = h("div", { class: "ff-export" }, this.progress, this.progressText);
  }

  // The API path of a file of this collection (its id encoded).
  path(rest) {
    return this.open.panel.path(`/${encodeURIComponent(this.open.id)}${rest}`);
  }

  async copyNames() {
    const { api } = this.gallery;
    try {
      const resp = await fetch(api.url(this.path("/export.txt")), { headers: api.headers() });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const text = await resp.text();
      await copyText(text);
      const n = text.split("\n").filter(Boolean).length;
      this.gallery.toast(t("exports.copied", { n }));
    } catch (err) {
      this.gallery.toast(t("exports.copy_failed", { error: err.message }));
    }
  }

  // The notebook's server needs its token, which a link cannot send: the page fetches the file instead.
  tokenDownload(event) {
    const g = this.gallery;
    if (!g.model.api_token) return;
    event.preventDefault();
    g.api.download(event.currentTarget.href, g.el).catch((err) => g.toast(t("exports.failed", { error: err.message })));
  }

  // The browser's own download streams the ZIP to disk (no copy in page memory); the page follows
  // the bytes the server has sent through a progress token.
  async exportZip() {
    const g = this.gallery;
    const token = crypto.getRandomValues(new Uint32Array(4)).reduce((s, n) => s + n.toString(36), "");
    const url = g.api.url(this.path(`/export.zip?progress=${token}`));
    if (g.model.api_token) {
      g.api.download(url, g.el).catch((err) => g.toast(t("exports.failed", { error: err.message })));
    } else {
      const link = h("a", { href: url, download: "" });
      this.open.panel.detail.append(link);
      link.click();
      link.remove();
    }
    this.progress.hidden = false;
    this.progress.value = 0;
    this.progressText.textContent = t("exports.zip.preparing");
    const path = g.api.projectPath(`/exports/${token}`);
    for (let waited = 0; waited < 30000 || this.progress.dataset.state === "sending"; waited += EXPORT_POLL_MS) {
      await sleep(EXPORT_POLL_MS);
      const state = await g.api.fetchJson(path).catch(() => null);
      if (!state) continue;
      this.progress.dataset.state = state.state;
      const pct = state.size_bytes ? Math.floor((100 * state.bytes_sent) / state.size_bytes) : 100;
      this.progress.value = pct;
      this.progressText.textContent =
        t("exports.zip.progress", { pct, sent: formatBytes(state.bytes_sent), size: formatBytes(state.size_bytes) });
      if (state.state === "done") {
        this.progressText.textContent = t("exports.zip.done", { n: state.files, size: formatBytes(state.size_bytes) });
        return;
      }
      if (state.state === "aborted") {
        this.progressText.textContent = t("exports.zip.aborted");
        return;
      }
    }
    this.progressText.textContent = t("exports.zip.failed");
  }
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on a studio network is not a secure context: the old way still works there.
  const area = h("textarea", { style: "position:fixed;opacity:0" });
  area.value = text;
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error(t("exports.copy_refused"));
}
