// The keyboard: the Lightroom keys rate what is looked at, the arrows step the lightbox or move the
// pool's focus; and the focus and hover they act on.

import { ratingForKey, typingIn } from "./ratings.js";

export class Keys {
  constructor(gallery) {
    this.gallery = gallery;
    this.focusId = null; // the tile last clicked or moved to with the arrows
    this.hoverId = null; // the tile under the pointer
    this.hoverInCollection = false; // ... and it is in the open collection
    this.handler = (e) => this.onKey(e);
    document.addEventListener("keydown", this.handler);
    gallery.root.addEventListener("mouseover", (e) => {
      this.hoverId = e.target.closest?.("[data-image-id]")?.dataset.imageId || null;
      this.hoverInCollection = Boolean(this.hoverId && e.target.closest(".ff-cgrid"));
    });
  }

  destroy() {
    document.removeEventListener("keydown", this.handler);
  }

  focus(id, scroll) {
    const { grid, records } = this.gallery;
    records.byId.get(this.focusId)?.tile?.classList.remove("ff-focus");
    this.focusId = id;
    if (scroll && !records.byId.get(id)?.tile) grid.reveal(grid.positionOf(id, records.known(id)?.seq));
    const tile = records.byId.get(id)?.tile;
    if (!tile) return;
    tile.classList.add("ff-focus");
    if (scroll) tile.scrollIntoView({ block: "nearest" });
  }

  // What a rating key applies to: the lightbox's image; a tile of the open collection under the
  // pointer; the pool's selection; the tile moved to with the arrows; the tile under the pointer.
  targets() {
    const g = this.gallery;
    if (g.lightbox.id) return [g.lightbox.id];
    if (this.hoverInCollection) return [this.hoverId];
    if (g.mode === "collection" && g.pool.selection.size) return g.pool.selection.ordered();
    const id = g.mode === "collection" ? this.focusId || this.hoverId : this.hoverId || this.focusId;
    return id && g.records.known(id) ? [id] : [];
  }

  onKey(e) {
    const g = this.gallery;
    if (g.mode === "wall" || typingIn(e)) return;
    const rating = ratingForKey(e);
    if (rating) {
      const ids = this.targets();
      if (ids.length) {
        g.marks.rate(ids, rating);
        e.preventDefault();
      }
      return;
    }
    if (g.lightbox.id) {
      if (e.key === "Escape") g.lightbox.close();
      else if (e.key === "ArrowRight") g.lightbox.step(1);
      else if (e.key === "ArrowLeft") g.lightbox.step(-1);
      else return;
      e.preventDefault();
      return;
    }
    if (g.mode === "collection") this.onPoolKey(e);
  }

  // The pool's keys: arrows move the focus (Shift: selecting), Space toggles, Enter opens, Ctrl/Cmd-A
  // selects all, Escape clears.
  onPoolKey(e) {
    const { grid, lightbox, pool } = this.gallery;
    const selection = pool.selection;
    const ids = pool.sequence();
    if (!ids.length) return;
    const at = Math.max(0, ids.indexOf(this.focusId));
    const columns = getComputedStyle(grid.el).gridTemplateColumns.split(" ").length || 1;
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
    if (e.key in moves) {
      const target = ids[Math.min(ids.length - 1, Math.max(0, this.focusId ? at + moves[e.key] : 0))];
      this.focus(target, true);
      if (e.shiftKey) selection.range(selection.anchor || ids[at], target, true);
    } else if (e.key === " ") {
      if (this.focusId) selection.toggle(this.focusId);
    } else if (e.key === "Enter") {
      if (this.focusId) lightbox.open(this.focusId);
    } else if (e.key === "a" && (e.ctrlKey || e.metaKey)) {
      selection.set(ids);
    } else if (e.key === "Escape") {
      selection.clear();
    } else {
      return;
    }
    e.preventDefault();
  }
}
