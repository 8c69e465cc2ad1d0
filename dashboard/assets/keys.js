// The keyboard: the Lightroom keys rate what is looked at, the arrows step the lightbox or move the
// grid's focus (Single and Collection mode); and the focus and hover they act on. Keys pressed on a
// control with keys of its own (a button, a field, a tile of the open collection) are left to it.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { ratingForKey, typingIn } from "./ratings.js";

// What keeps its own Enter, Space and arrows (collection.js handles its tiles' keys).
const OWN_KEYS = "button, a[href], input, select, textarea, label, [role=checkbox], [role=tab], .ff-ctile";

const OWN_KEY_NAMES = new Set(["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", " ", "Enter"]);

function keyTarget(e) {
  const target = e.composedPath()[0];
  return target instanceof Element ? target : null;
}

export class Keys {
  constructor(gallery) {
    this.gallery = gallery;
    this.focusId = null; // the tile last clicked or moved to with the arrows
    this.hoverId = null; // the tile under the pointer
    this.hoverInCollection = false; // ... and it is in the open collection
    this.handler = (e) => this.onKey(e);
    document.addEventListener("keydown", this.handler);
    // Where the arrows moved to, for a screen reader: the focus stays on the scroller (the grid is
    // windowed, its tiles come and go), so the tile is spoken through this polite live region instead.
    this.spoken = h("div", { class: "ff-sr", "aria-live": "polite", "aria-atomic": "true", "data-testid": "focus-spoken" });
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
    if (scroll) this.speak(id);
    const tile = records.byId.get(id)?.tile;
    if (!tile) return;
    tile.classList.add("ff-focus");
    if (scroll) tile.scrollIntoView({ block: "nearest" });
  }

  // "IMG_0042.jpg, 3 of 120, 4 stars, picked, selected" in the live region.
  speak(id) {
    const g = this.gallery;
    const image = g.records.known(id);
    if (!image) return;
    const ids = g.pool.sequence();
    const parts = [t("tile.focused", { name: image.filename, at: ids.indexOf(id) + 1, n: ids.length })];
    if (image.rating) parts.push(t("tile.focused.stars", { n: image.rating }));
    if (image.flag === "pick" || image.flag === "reject") parts.push(t(`tile.focused.${image.flag}`));
    if (g.mode === "collection" && g.pool.selection.has(id)) parts.push(t("tile.focused.selected"));
    this.spoken.textContent = parts.join(", ");
  }

  // What a rating key applies to: the lightbox's image; a tile of the open collection under the
  // pointer; the pool's selection; the tile moved to with the arrows; the tile under the pointer.
  targets() {
    const g = this.gallery;
    if (g.lightbox.id) return [g.lightbox.id];
    const focused = g.root.getRootNode().activeElement?.closest?.(".ff-ctile");
    if (focused) return [focused.dataset.imageId]; // the open collection's tile the keyboard is on
    if (this.hoverInCollection) return [this.hoverId];
    if (g.mode === "collection" && g.pool.selection.size) return g.pool.selection.ordered();
    const id = g.mode === "collection" ? this.focusId || this.hoverId : this.hoverId || this.focusId;
    return id && g.records.known(id) ? [id] : [];
  }

  onKey(e) {
    const g = this.gallery;
    // Escape closes the lightbox even from its comment box; other keys typed in a field are the field's.
    if (g.mode === "wall" || (typingIn(e) && !(e.key === "Escape" && g.lightbox.id))) return;
    if (g.favorites.fromKey(e, () => this.targets())) {
      e.preventDefault();
      return;
    }
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
    if (OWN_KEY_NAMES.has(e.key) && keyTarget(e)?.closest(OWN_KEYS)) return;
    this.onGridKey(e);
  }

  // The grid's keys: arrows move the focus, Enter opens; in Collection mode Shift+arrows select, Space
  // toggles, Ctrl/Cmd-A selects all, Escape clears.
  onGridKey(e) {
    const { grid, lightbox, pool } = this.gallery;
    const collection = this.gallery.mode === "collection";
    const selection = pool.selection;
    const ids = pool.sequence();
    if (!ids.length) return;
    const at = Math.max(0, ids.indexOf(this.focusId));
    const columns = getComputedStyle(grid.el).gridTemplateColumns.split(" ").length || 1;
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
    if (e.key in moves) {
      const target = ids[Math.min(ids.length - 1, Math.max(0, this.focusId ? at + moves[e.key] : 0))];
      this.focus(target, true);
      if (collection && e.shiftKey) selection.range(selection.anchor || ids[at], target, true);
    } else if (e.key === " " && collection) {
      if (this.focusId) selection.toggle(this.focusId);
    } else if (e.key === "Enter") {
      if (this.focusId) lightbox.open(this.focusId);
    } else if (e.key === "a" && (e.ctrlKey || e.metaKey) && collection) {
      selection.set(ids);
    } else if (e.key === "Escape" && collection) {
      selection.clear();
    } else {
      return;
    }
    e.preventDefault();
  }
}
