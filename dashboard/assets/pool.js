// Collection mode's pool: the selection, the selection bar above the grid (count, Select new, Save),
// and the band of arrivals. The pool *is* the gallery's grid (grid.js), so new images reach it by the
// one keyed, incremental mechanism; arrivals join it in a band above, so what is selected from never
// reflows.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { showSelected } from "./tiles.js";

// Which pool images are selected: click selects one, Ctrl/Cmd-click toggles, Shift-click selects
// a range, the tile's check toggles (for touch). Keyed by id, so arrivals never disturb it.
class Selection {
  constructor(pool) {
    this.pool = pool;
    this.ids = new Set();
    this.anchor = null;
  }

  get size() {
    return this.ids.size;
  }

  has(id) {
    return this.ids.has(id);
  }

  click(id, e) {
    if (e.shiftKey && this.anchor) this.range(this.anchor, id, e.ctrlKey || e.metaKey);
    else if (e.ctrlKey || e.metaKey) this.toggle(id);
    else this.set([id], id);
  }

  toggle(id) {
    const next = new Set(this.ids);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    this.set(next, id);
  }

  range(from, to, keep) {
    const order = this.pool.sequence();
    let a = order.indexOf(from);
    let b = order.indexOf(to);
    if (a < 0 || b < 0) return this.set([to], to);
    if (a > b) [a, b] = [b, a];
    const next = new Set(keep ? this.ids : []);
    for (const id of order.slice(a, b + 1)) next.add(id);
    this.set(next, this.anchor);
  }

  set(ids, anchor = this.anchor) {
    const next = new Set(ids);
    for (const id of this.ids) if (!next.has(id)) this.pool.markSelected(id, false);
    for (const id of next) if (!this.ids.has(id)) this.pool.markSelected(id, true);
    this.ids = next;
    this.anchor = anchor;
    this.pool.selectionChanged();
  }

  clear() {
    this.set([], null);
  }

  // The selected ids in the order the pool shows them (what a saved collection keeps).
  ordered() {
    const shown = this.pool.sequence().filter((id) => this.ids.has(id));
    const inPool = new Set(shown);
    const rest = [...this.ids].filter((id) => !inPool.has(id));
    return [...shown, ...rest];
  }
}

// Collection mode's side of the gallery: the selection bar, the band of arrivals joining the grid.
export class Pool {
  constructor(gallery) {
    this.gallery = gallery;
    this.selection = new Selection(this);
    this.fresh = []; // ids in the band of arrivals, newest first
    this.lastScroll = null; // {actual, want}: the scroll position last asked for, to the fraction
    this.bar = this.buildSelectBar();
    this.bandTitle = h("div", { class: "ff-band-title" });
    this.bandGrid = h("div", { class: "ff-grid ff-fresh-grid" });
    this.band = h("section", { class: "ff-band", "data-testid": "new-band", hidden: "" }, this.bandTitle, this.bandGrid);
  }

  buildSelectBar() {
    this.selCount = h("span", { class: "ff-sel-count", "data-testid": "selection-count", text: t("pool.selected", { n: 0 }) });
    this.selectNewButton = h("button", { class: "ff-button", "data-testid": "select-new",
      title: t("pool.select_new.title"), onclick: () => this.selectNew() });
    this.nameInput = h("input", { class: "ff-input", "data-testid": "collection-name", placeholder: t("pool.name"),
      "aria-label": t("pool.name") });
    this.nameInput.addEventListener("keydown", (e) => { if (e.key === "Enter") this.saveCollection(); });
    this.saveButton = h("button", { class: "ff-button ff-primary", "data-testid": "collection-save",
      text: t("pool.save"), onclick: () => this.saveCollection() });
    return h("div", { class: "ff-selectbar", "data-testid": "selection-bar" },
      h("span", { class: "ff-sel-title", text: t("pool.title") }), this.selCount, this.selectNewButton,
      h("button", { class: "ff-button", "data-testid": "select-all", text: t("pool.select_all"),
        onclick: () => this.selection.set(this.sequence()) }),
      h("button", { class: "ff-button", "data-testid": "selection-clear", text: t("pool.clear"),
        onclick: () => this.selection.clear() }),
      h("span", { class: "ff-spacer" }), this.nameInput, this.saveButton);
  }

  enter() {
    this.gallery.scroller.setAttribute("data-testid", "collection-pool");
    this.selectionChanged();
    this.gallery.collections.ensureLoaded();
  }

  // Every image shown in the pool, in the order shown (the band first).
  sequence() {
    return [...this.fresh, ...this.gallery.grid.order];
  }

  // -- the band of arrivals ------------------------------------------------------------------

  // Arrivals (newest first) join the pool in the band; while the user selects or has scrolled, what they
  // look at stays where it is.
  addFresh(images) {
    const g = this.gallery;
    const keepView = this.keepingView();
    const before = g.grid.offset();
    const scroll = this.exactScroll();
    this.band.hidden = false;
    this.bandGrid.prepend(this.makeTiles(images, !keepView && images.length <= 24));
    this.fresh.unshift(...images.map((image) => image.id));
    const n = this.fresh.length;
    this.bandTitle.textContent = t("pool.band", { n });
    if (keepView) {
      // Band tiles have their final size at once (square, laid out for real), so one correction is exact.
      const want = scroll + g.grid.offset() - before;
      g.scroller.scrollTop = want;
      this.lastScroll = { actual: g.scroller.scrollTop, want };
      g.arrivals.notice(images.length);
    }
  }

  makeTiles(images, animate) {
    // `images` newest first; one fragment, so the grid lays out once however many arrived.
    const fragment = document.createDocumentFragment();
    for (const image of images) {
      const tile = this.gallery.tile(image);
      if (animate) tile.classList.add("ff-new");
      this.gallery.records.list(image, tile);
      fragment.append(tile);
    }
    return fragment;
  }

  keepingView() {
    return this.gallery.arrivals.away() || this.selection.size > 0;
  }

  exactScroll() {
    // scrollTop keeps whole pixels: remember the fraction we asked for, so corrections never add up.
    const actual = this.gallery.scroller.scrollTop;
    return this.lastScroll && this.lastScroll.actual === actual ? this.lastScroll.want : actual;
  }

  // The band joins the main grid (moved, not re-created, where the grid's window reaches; beyond it a
  // tile goes, and its record stays): on leaving Collection mode.
  mergeFresh() {
    if (!this.fresh.length) return;
    const g = this.gallery;
    g.grid.insertAt(0, this.fresh.map((id) => g.records.byId.get(id).image));
    this.fresh = [];
    g.render();
    for (const tile of [...this.bandGrid.children]) g.grid.unmount(tile);
    this.band.hidden = true;
  }

  // Image `id` leaves the band (its tile with it): false if it is not in the band.
  removeFromBand(id, entry) {
    const at = this.fresh.indexOf(id);
    if (at < 0) return false;
    this.fresh.splice(at, 1);
    entry?.tile?.remove();
    return true;
  }

  clearBand() {
    this.fresh = [];
    this.band.hidden = true;
  }

  // -- the selection -------------------------------------------------------------------------

  markSelected(id, on) {
    const tile = this.gallery.records.byId.get(id)?.tile;
    if (tile) showSelected(tile, on);
  }

  selectionChanged() {
    const g = this.gallery;
    const n = this.selection.size;
    this.selCount.textContent = t("pool.selected", { n: String(n) }); // digits alone, as programs read it back
    this.saveButton.disabled = n === 0;
    this.updateSelectNew();
    g.collections?.updateAddButton();
    const ids = this.selection.ordered();
    if (JSON.stringify(g.model.selection) !== JSON.stringify(ids)) g.model.selection = ids;
  }

  updateSelectNew() {
    // Only Collection mode shows the button: Single mode's cost per arrival stays constant.
    const g = this.gallery;
    if (g.mode !== "collection") return;
    const n = [...g.arrivals.arrived].filter((id) => g.records.byId.has(id) || g.grid.order.indexOf(id) >= 0).length;
    this.selectNewButton.textContent = t("pool.select_new", { n });
    this.selectNewButton.disabled = n === 0;
  }

  selectNew() {
    const ids = this.sequence().filter((id) => this.gallery.arrivals.arrived.has(id));
    this.selection.set(new Set([...this.selection.ids, ...ids]));
  }

  async saveCollection() {
    const g = this.gallery;
    const name = this.nameInput.value.trim();
    const ids = this.selection.ordered();
    if (!ids.length) return g.toast(t("pool.select_first"));
    if (!name) {
      this.nameInput.focus();
      return g.toast(t("pool.name_first"));
    }
    this.saveButton.disabled = true;
    try {
      const saved = await g.collections.save(name, ids);
      this.nameInput.value = "";
      this.selection.clear();
      g.toast(t("pool.saved", { name: saved.name, n: saved.count }));
    } catch (err) {
      g.toast(t("pool.save_failed", { error: err.message }));
    } finally {
      this.selectionChanged();
    }
  }
}
