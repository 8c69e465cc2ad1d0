// The lightbox: one image large, its EXIF and marks, stepping through the pool or an open collection.

import { formatBytes, formatTime, h } from "./dom.js";
import { formatNumber, t } from "./i18n.js";
import { LABEL_NAMES, ratingControl, showRating } from "./ratings.js";

const SWIPE_PX = 50; // a shorter move is a tap or a wobble
const FOCUSABLE = "button:not([disabled]), a[href], input:not([disabled]), textarea:not([disabled]), select, [tabindex]:not([tabindex='-1'])";

export class Lightbox {
  constructor(gallery) {
    this.gallery = gallery;
    this.id = null; // the image shown, while open
    this.order = null; // ids it steps through when not the pool's
    this.dom = null; // built the first time it opens
  }

  // `order`: the ids to step through (an open collection's); the pool's by default.
  open(id, order = null) {
    const g = this.gallery;
    const image = g.records.known(id);
    if (!image) return;
    if (!this.dom) this.build();
    // Where the keyboard was, to go back to on closing (the grid, a tile of the open collection).
    if (!this.id) this.returnFocus = this.gallery.root.getRootNode().activeElement;
    this.id = id;
    this.order = order;
    const lb = this.dom;
    lb.root.hidden = false;
    lb.root.dataset.imageId = id;
    this.showPicture(image);
    lb.img.alt = image.filename;
    lb.title.textContent = image.filename;
    // A share link may give the preview as its download (`download_name`: a JPEG's) or nothing at all.
    lb.download.hidden = !image.url;
    if (image.url) lb.download.href = g.api.url(image.url);
    else lb.download.removeAttribute("href");
    lb.download.setAttribute("download", image.download_name || image.filename);
    lb.download.textContent = t(image.download_name ? "lightbox.download.preview" : "lightbox.download");
    // A RAW + JPEG pair's RAW (its second file, see `files` in docs/http-api.md): a download of its own.
    const raw = (image.files || []).find((file, i) => i > 0 && file.role === "raw");
    lb.downloadRaw.hidden = !raw;
    if (raw) {
      lb.downloadRaw.href = g.api.url(raw.url);
      lb.downloadRaw.setAttribute("download", raw.filename);
      lb.downloadRaw.textContent = t("lightbox.download_raw", { format: raw.format });
    }
    const exif = image.exif || {};
    const rows = [
      ["lightbox.captured", formatTime(image.captured_at)],
      ["lightbox.camera", [image.camera_make, image.camera_model].filter(Boolean).join(" ")],
      ["lightbox.lens", exif.lens],
      ["lightbox.exposure", exif.exposure_time ? `${exif.exposure_time} s` : null],
      ["lightbox.aperture", exif.f_number ? `f/${formatNumber(exif.f_number)}` : null],
      ["lightbox.iso", exif.iso ? formatNumber(exif.iso) : null],
      ["lightbox.focal_length", exif.focal_length_mm ? `${formatNumber(exif.focal_length_mm)} mm` : null],
      ["lightbox.size",
        `${formatNumber(image.width)} × ${formatNumber(image.height)} · ${formatBytes(image.size_bytes)} · ${image.format}`],
    ];
    lb.meta.replaceChildren(...rows.filter(([, v]) => v).flatMap(([k, v]) => [h("dt", { text: t(k) }), h("dd", { text: String(v) })]));
    this.showRating(image);
    g.favorites.showLightbox();
    g.comments.showLightbox(lb, id);
    const ids = order || g.pool.sequence();
    const index = ids.indexOf(id);
    lb.prev.disabled = index <= 0;
    lb.next.disabled = index >= ids.length - 1 && (order || !g.listing.next);
    if (g.model.selected !== id) g.model.selected = id;
    lb.root.focus();
  }

  // The picture: the thumbnail (at hand from the grid) at once, in the place the preview will take, then
  // the preview once it is loaded and decoded, so it replaces the thumbnail without a flash or a jump. A
  // large JPEG's preview is made after the image is published; asked for before, the server makes it then.
  // The same image again (its `image.updated`: the preview made, marks, a new version) keeps what is shown
  // unless its preview URL changed.
  showPicture(image) {
    const { img } = this.dom;
    const api = this.gallery.api;
    const preview = api.url(image.preview_url);
    if (img.dataset.preview === preview) return;
    img.dataset.preview = preview;
    img.dataset.imageId = image.id;
    // Both pictures fill the box of the image's own size, scaled down to the stage (`object-fit: contain`).
    img.width = image.width;
    img.height = image.height;
    img.classList.remove("ff-loaded");
    img.onload = () => img.classList.add("ff-loaded");
    img.dataset.showing = "thumb";
    img.src = api.url(image.thumbnail_url);
    const next = new Image();
    next.src = preview;
    next.decode().then(() => {
      if (img.dataset.preview !== preview) return; // another image was opened meanwhile
      img.src = preview;
      img.dataset.showing = "preview";
      img.classList.add("ff-loaded");
    }, () => {
      if (img.dataset.preview === preview) delete img.dataset.preview; // opened again, it tries again
    });
  }

  // The marks of the image shown (a rating changed here or in another window).
  showRating(image) {
    const lb = this.dom;
    showRating(lb.rating, image);
    lb.labels.dataset.label = image.label || "none";
    for (const swatch of lb.labels.children) {
      const on = swatch.dataset.setLabel === image.label;
      swatch.classList.toggle("ff-on", on);
      swatch.setAttribute("aria-pressed", String(on));
    }
  }

  build() {
    const lb = {};
    lb.img = h("img", { class: "ff-lb-img" });
    lb.title = h("h2", { class: "ff-lb-title", id: "ff-lb-title" });
    lb.meta = h("dl", { class: "ff-lb-meta", "data-testid": "lightbox-exif" });
    lb.download = h("a", { class: "ff-button", text: t("lightbox.download"), "data-testid": "download" });
    lb.downloadRaw = h("a", { class: "ff-button ff-download-raw", "data-testid": "download-raw", hidden: "" });
    lb.rating = ratingControl({ rating: 0, flag: "none", label: "none" });
    lb.labels = h("div", { class: "ff-labels", "data-testid": "label" }, ...LABEL_NAMES.map((label) =>
      h("button", { class: `ff-swatch ff-label-${label}`, "data-set-label": label,
        title: t(`label.${label}`),
        "aria-label": label === "none" ? t("label.none") : t("lightbox.label", { label: t(`label.${label}`) }) })));
    const marks = h("div", { class: "ff-lb-marks" }, lb.rating, lb.labels);
    marks.addEventListener("click", (e) => { if (this.id) this.gallery.marks.fromClick(e, this.id); });
    lb.prev = h("button", { class: "ff-lb-nav ff-lb-prev", "aria-label": t("lightbox.newer"), text: "‹", onclick: () => this.step(-1) });
    lb.next = h("button", { class: "ff-lb-nav ff-lb-next", "aria-label": t("lightbox.older"), text: "›", onclick: () => this.step(1) });
    const close = h("button", { class: "ff-lb-close", "aria-label": t("lightbox.close"), text: "×", onclick: () => this.close() });
    lb.stage = h("div", { class: "ff-lb-stage" }, lb.img, lb.prev, lb.next);
    lb.side = h("aside", { class: "ff-lb-side" }, lb.title, marks, lb.meta, lb.download, lb.downloadRaw);
    lb.root = h("div", { class: "ff-lightbox", "data-testid": "lightbox", tabindex: "-1", hidden: "",
      role: "dialog", "aria-modal": "true", "aria-labelledby": "ff-lb-title" }, lb.stage,
      lb.side, close);
    lb.root.addEventListener("click", (e) => { if (e.target === lb.root) this.close(); });
    lb.root.addEventListener("keydown", (e) => this.keepFocus(e));
    this.bindSwipe(lb.stage);
    this.gallery.main.append(lb.root);
    this.dom = lb;
  }

  // A modal dialog keeps the keyboard: Tab from its last control goes to its first, Shift+Tab from its
  // first (or from the dialog itself) to its last, never to the page behind it.
  keepFocus(e) {
    if (e.key !== "Tab") return;
    const root = this.dom.root;
    const controls = [...root.querySelectorAll(FOCUSABLE)].filter((el) => el.getClientRects().length);
    if (!controls.length) return;
    const active = root.getRootNode().activeElement;
    const first = controls[0];
    const last = controls[controls.length - 1];
    if (e.shiftKey && (active === first || active === root)) last.focus();
    else if (!e.shiftKey && active === last) first.focus();
    else return;
    e.preventDefault();
  }

  // On a touch screen a horizontal swipe steps, as the arrows do: left to the next (older), right back.
  bindSwipe(stage) {
    let start = null;
    stage.addEventListener("pointerdown", (e) => {
      if (e.pointerType !== "mouse" && e.isPrimary) start = { x: e.clientX, y: e.clientY };
    });
    stage.addEventListener("pointercancel", () => { start = null; });
    stage.addEventListener("pointerup", (e) => {
      if (!start) return;
      const dx = e.clientX - start.x;
      const dy = e.clientY - start.y;
      start = null;
      if (Math.abs(dx) >= SWIPE_PX && Math.abs(dx) > 2 * Math.abs(dy)) this.step(dx < 0 ? 1 : -1);
    });
  }

  async step(delta) {
    const g = this.gallery;
    const order = this.order;
    let ids = order || g.pool.sequence();
    const index = ids.indexOf(this.id);
    if (index < 0) return;
    if (!order && index + delta >= ids.length && g.listing.next) {
      await g.listing.loadMore();
      ids = g.pool.sequence();
    }
    const target = ids[index + delta];
    if (target && !order && !g.records.known(target)) await g.grid.recordAt(index + delta - g.pool.fresh.length);
    if (target) this.open(target, order);
  }

  close() {
    if (!this.dom) return;
    this.dom.root.hidden = true;
    this.id = null;
    this.gallery.comments.closed();
    if (this.returnFocus?.isConnected) this.returnFocus.focus({ preventScroll: true });
    this.returnFocus = null;
    this.order = null;
    if (this.gallery.model.selected !== null) this.gallery.model.selected = null;
    this.gallery.onScroll();
  }
}
