// Uploads: the Upload button and dropping files anywhere on the gallery, a few at a time, each with
// its progress row; a refused file keeps its row with the server's reason.

import { LOG, h } from "./dom.js";
import { failure, t } from "./i18n.js";

const UPLOAD_CONCURRENCY = 3;
const DONE_ROW_MS = 4000; // a finished upload's row stays this long

export class Uploader {
  // `url()`: where a file is posted; `headers()`: the API's headers.
  constructor({ url, headers }) {
    this.url = url;
    this.headers = headers;
    this.queue = [];
    this.running = 0;
    this.input = h("input", { type: "file", multiple: "", accept: "image/*,.heic,.heif",
      "data-testid": "upload", class: "ff-file", onchange: () => this.pickFiles() });
    this.button = h("label", { class: "ff-button", title: t("upload.title") },
      t("upload.button"), this.input);
    this.list = h("ul", { class: "ff-uploads", "data-testid": "upload-list" });
  }

  // Files dropped anywhere on `root` are uploaded; while dragging, `root` shows the drop hint.
  bindDrop(root) {
    let depth = 0;
    const hasFiles = (e) => Array.from(e.dataTransfer?.types || []).includes("Files");
    root.addEventListener("dragenter", (e) => {
      if (!hasFiles(e)) return;
      depth += 1;
      root.classList.add("ff-dragging");
    });
    root.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) root.classList.remove("ff-dragging");
    });
    root.addEventListener("dragover", (e) => { if (hasFiles(e)) e.preventDefault(); });
    root.addEventListener("drop", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      root.classList.remove("ff-dragging");
      this.upload(Array.from(e.dataTransfer.files));
    });
  }

  pickFiles() {
    this.upload(Array.from(this.input.files));
    this.input.value = "";
  }

  upload(files) {
    for (const file of files) {
      const bar = h("progress", { max: "100", value: "0" });
      const status = h("span", { class: "ff-up-status", text: t("upload.waiting") });
      const dismiss = h("button", { class: "ff-up-x", "aria-label": t("upload.dismiss"), text: "×", onclick: () => row.remove() });
      const row = h("li", { class: "ff-up", "data-filename": file.name, "data-state": "waiting" },
        h("span", { class: "ff-up-name", text: file.name }), bar, status, dismiss);
      this.list.append(row);
      this.queue.push({ file, row, bar, status });
    }
    this.pump();
  }

  pump() {
    while (this.running < UPLOAD_CONCURRENCY && this.queue.length) {
      const job = this.queue.shift();
      this.running += 1;
      this.send(job).finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
  }

  send({ file, row, bar, status }) {
    return new Promise((resolve) => {
      const form = new FormData();
      form.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", this.url());
      for (const [name, value] of Object.entries(this.headers())) xhr.setRequestHeader(name, value);
      row.dataset.state = "uploading";
      status.textContent = t("upload.uploading");
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total); };
      const fail = (reason, detail = reason) => {
        row.dataset.state = "error";
        row.setAttribute("data-testid", "upload-error");
        status.textContent = reason;
        status.title = detail;
        console.warn(`${LOG} upload refused ${file.name}: ${reason}`);
        resolve();
      };
      xhr.onerror = () => fail(t("upload.network_error"));
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
        if (xhr.status === 200 || xhr.status === 201) {
          bar.value = 100;
          row.dataset.state = "done";
          status.textContent = t(xhr.status === 201 ? "upload.added" : "upload.duplicate");
          setTimeout(() => row.remove(), DONE_ROW_MS);
          resolve();
        } else {
          // In the page's language; the server's own words (naming the file and the cause) on hover.
          fail(failure(body, xhr.status), body?.errors?.[0]?.reason || body?.error?.message || `HTTP ${xhr.status}`);
        }
      };
      xhr.send(form);
    });
  }
}
