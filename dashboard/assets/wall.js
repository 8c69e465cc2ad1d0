// The wall display (`--wall`, `?mode=wall`): the newest image large on a stage, the few before it in a
// strip beneath; it runs for days, so it keeps only what it shows. Its images come by the gallery's one
// path: the first page (`append`) and live arrivals, a frame's worth at a time (`flush`).

import { formatTime, h } from "./dom.js";
import { t } from "./i18n.js";

export class Wall {
  constructor(gallery) {
    this.gallery = gallery;
    this.records = gallery.records;
    // The wall's one page is its stage and the strip beneath (gallery.py's WALL_STRIP + 1).
    this.stripLength = Math.max(1, gallery.model.page_size - 1);
    this.order = []; // ids shown, newest (the stage's) first
    this.main = h("img", { class: "ff-wall-main", alt: "" });
    this.caption = h("div", { class: "ff-wall-caption" });
    // A share link's QR code in a corner, when the owner's wall URL names the link (`?qr=`, page.py).
    const qr = gallery.model.wall_qr;
    this.qr = qr ? h("figure", { class: "ff-wall-qr", "data-testid": "wall-qr" },
      h("img", { src: qr, alt: t("wall.qr.alt") }), h("figcaption", { text: t("wall.qr") })) : null;
    this.stage = h("div", { class: "ff-wall-stage" }, this.main, this.caption, this.qr);
    this.strip = h("div", { class: "ff-grid" });
  }

  // An image of the first page (newest first): the stage's, then the strip's.
  append(image) {
    if (this.records.byId.has(image.id)) return;
    this.records.list(image);
    this.order.push(image.id);
    this.show(image, false);
  }

  // Live arrivals, oldest first: only the newest takes the stage, and only the last few can still be
  // seen in the strip.
  flush(batch) {
    const recent = batch.slice(-(this.stripLength + 1));
    for (const image of recent) {
      this.records.byId.set(image.id, { image, tile: null });
      this.order.unshift(image.id);
      this.show(image, true, image === recent[recent.length - 1]);
    }
  }

  // An image deleted: the newest listed leaves the list (the stage's will not pass to the strip, a strip
  // tile goes); others stay in the strip until they go off its end.
  remove(id) {
    if (this.order[0] !== id) return false;
    this.records.byId.get(id)?.tile?.remove();
    this.order.shift();
    return true;
  }

  show(image, live, loadPreview = true) {
    if (!live && this.main.dataset.imageId) {
      this.addToStrip(image, false);
      return;
    }
    const previous = this.main.dataset.imageId && this.records.byId.get(this.main.dataset.imageId);
    if (previous) this.addToStrip(previous.image, true);
    this.main.dataset.imageId = image.id;
    this.gallery.empty.hidden = true;
    if (!loadPreview) return; // passed through the stage in a burst: straight to the strip
    // The thumbnail first, in the place the preview takes (the image's own size, contained), then the
    // preview in its stead without a fade: a large JPEG's preview is made after it is published.
    const api = this.gallery.api;
    let shown = null;
    const put = (picture, showing) => {
      // In a burst, pictures finish loading out of order: a late one must not take the stage back
      // from a newer arrival (nor become `previous` and push the newer one out of the strip), nor
      // the thumbnail replace the preview.
      if (this.main.dataset.imageId !== image.id || shown === "preview") return;
      this.main.width = image.width;
      this.main.height = image.height;
      this.main.src = picture.src;
      this.main.dataset.showing = showing;
      if (shown === null) {
        this.main.classList.remove("ff-fade");
        void this.main.offsetWidth;
        this.main.classList.add("ff-fade");
      }
      shown = showing;
    };
    for (const [url, showing] of [[image.thumbnail_url, "thumb"], [image.preview_url, "preview"]]) {
      const picture = new Image();
      picture.src = api.url(url);
      picture.decode().then(() => put(picture, showing), () => {});
    }
    this.caption.textContent = `${image.filename} · ${formatTime(image.captured_at)}`;
  }

  addToStrip(image, atFront) {
    if (this.strip.querySelector(`[data-image-id="${CSS.escape(image.id)}"]`)) return;
    const tile = this.gallery.tile(image);
    const entry = this.records.byId.get(image.id);
    if (entry) entry.tile = tile;
    if (atFront) this.strip.prepend(tile);
    else this.strip.append(tile);
    // A wall runs for days: keep a bounded strip and forget what scrolled off it.
    while (this.strip.children.length > this.stripLength) {
      const old = this.strip.lastElementChild;
      this.records.byId.delete(old.dataset.imageId);
      old.remove();
    }
    this.order = this.order.filter((id) => this.records.byId.has(id)).slice(0, this.stripLength + 1);
  }
}
