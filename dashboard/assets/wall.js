// The wall display (`--wall`, `?mode=wall`): the newest image large on a stage, the few before it in a
// strip beneath; it runs for days, so it keeps only what it shows. Installed on the gallery (`mixin`
// in main.js): arrivals reach it through the gallery's one path (`append`, `flushIncoming`).

import { formatTime } from "./dom.js";

export class Wall {
  showWall(image, live, loadPreview = true) {
    if (!live && this.wallMain.dataset.imageId) {
      this.addToStrip(image, false);
      return;
    }
    const previous = this.wallMain.dataset.imageId && this.byId.get(this.wallMain.dataset.imageId);
    if (previous) this.addToStrip(previous.image, true);
    this.wallMain.dataset.imageId = image.id;
    this.empty.hidden = true;
    if (!loadPreview) return; // passed through the stage in a burst: straight to the strip
    const next = new Image();
    next.onload = () => {
      // In a burst, previews finish loading out of order: a late one must not take the stage back
      // from a newer arrival (nor become `previous` and push the newer one out of the strip).
      if (this.wallMain.dataset.imageId !== image.id) return;
      this.wallMain.src = next.src;
      this.wallMain.classList.remove("ff-fade");
      void this.wallMain.offsetWidth;
      this.wallMain.classList.add("ff-fade");
    };
    next.src = this.url(image.preview_url);
    this.wallCaption.textContent = `${image.filename} · ${formatTime(image.captured_at)}`;
  }

  addToStrip(image, atFront) {
    if (this.grid.querySelector(`[data-image-id="${CSS.escape(image.id)}"]`)) return;
    const tile = this.makeTile(image);
    const entry = this.byId.get(image.id);
    if (entry) entry.tile = tile;
    if (atFront) this.grid.prepend(tile);
    else this.grid.append(tile);
    // A wall runs for days: keep a bounded strip and forget what scrolled off it.
    while (this.grid.children.length > this.wallStrip) {
      const old = this.grid.lastElementChild;
      this.byId.delete(old.dataset.imageId);
      old.remove();
    }
    this.order = this.order.filter((id) => this.byId.has(id)).slice(0, this.wallStrip + 1);
  }
}
