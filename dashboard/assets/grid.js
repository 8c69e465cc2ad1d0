// The windowed grid of Single mode and the Collection mode pool.
//
// The grid's DOM holds only positions [lo, hi) of `order`, whole rows near the viewport; padding above
// and below stands for the rows that are not there (tiles are square, so a row's height is known), so
// the scroll height is the whole loaded list's. Far from the viewport an image is only its id and seq:
// its record is dropped, and fetched again (by keyset, `before` its seq) if the viewport comes back.
// The list grows by the listing's pages (listing.js) and by live arrivals (arrivals.js), never here.

import { LOG, h, sleep } from "./dom.js";

const KEEP_BEHIND = 600; // tiles kept above the viewport once shown: the last ten pages, as they were left
const MAKE_AHEAD = 90; // tiles made below it (and at least two screens): scrolling down never meets a gap
const LOAD_AHEAD_PX = 800; // the next page is asked for while the end of the loaded list is this close
const RECORD_MARGIN = 600; // image records kept either side of the DOM's tiles; farther, only id and seq
export const MAX_PAGE = 500; // the API's largest page
export const RETRY_MS = 2000; // after a page failed to load, the next try

export class WindowedGrid {
  // `scroller`: the element that scrolls the grid (and the band of arrivals above it).
  constructor(gallery, scroller) {
    this.gallery = gallery;
    this.records = gallery.records;
    this.scroller = scroller;
    this.el = h("div", { class: "ff-grid" });
    this.order = []; // ids in the grid, newest first: every image loaded, far from the viewport too
    this.seqs = []; // the feed sequence of each id in `order` (strictly decreasing: positions by bisection)
    this.span = [0, 0]; // positions [lo, hi) of `order` whose tiles (or placeholders) are in the DOM
    this.ghosts = new Map(); // id → placeholder tile, while its record is fetched again
    this.animate = new Set(); // ids whose tile, when made, plays the arrival animation
    this.geo = null; // {cols, pitch, width, measured}: the grid's layout, read from the live page
    this.screen = null; // the scroller's height when the layout was last checked
    this.refilling = null; // the request fetching evicted records again, if one is running
    this.resizer = new ResizeObserver(() => this.onResize());
    this.resizer.observe(scroller);
    this.resizer.observe(this.el);
  }

  destroy() {
    this.resizer.disconnect();
  }

  // A page's image (older than all listed), at the end; false if it is listed already.
  append(image) {
    const last = this.seqs.length ? this.seqs[this.seqs.length - 1] : Infinity;
    if (image.seq >= last) return false;
    this.records.list(image);
    this.order.push(image.id);
    this.seqs.push(image.seq);
    return true;
  }

  // `images` newest first, at the top of the grid (whose window then reaches them: this is done at the top).
  prepend(images, animate) {
    for (const image of images) {
      this.records.list(image);
      if (animate) this.animate.add(image.id);
    }
    this.insertAt(0, images);
    this.render();
    this.animate.clear();
  }

  // Image `id` leaves the list, with its tile or placeholder: false if it is not listed.
  remove(id, seq) {
    const at = this.positionOf(id, seq);
    if (at < 0) return false;
    const node = this.records.byId.get(id)?.tile || this.ghosts.get(id);
    if (node) this.unmount(node);
    this.removeAt(at);
    return true;
  }

  // The list starts again, empty (the records and their tiles are cleared by the caller).
  clear() {
    for (const ghost of this.ghosts.values()) ghost.remove();
    this.ghosts.clear();
    this.order = [];
    this.seqs = [];
    this.span = [0, 0];
  }

  // Where the grid starts in the scrolled content (fractional, unlike offsetTop).
  offset() {
    return this.el.getBoundingClientRect().top - this.scroller.getBoundingClientRect().top + this.scroller.scrollTop;
  }

  // The position of `id` in `order` (by its seq when known), or -1.
  positionOf(id, seq) {
    if (seq === undefined || seq === null) return this.order.indexOf(id);
    const at = this.bisect(seq);
    return this.order[at] === id ? at : -1;
  }

  // The first position whose seq is at most `seq` (`seqs` decreases).
  bisect(seq) {
    let lo = 0;
    let hi = this.seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.seqs[mid] > seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insertAt(at, images) {
    this.order.splice(at, 0, ...images.map((image) => image.id));
    this.seqs.splice(at, 0, ...images.map((image) => image.seq));
    const [lo, hi] = this.span;
    if (at <= lo && lo < hi) this.span = [lo + images.length, hi + images.length];
    else if (at < hi) this.span = [lo, hi + images.length];
  }

  removeAt(at) {
    this.order.splice(at, 1);
    this.seqs.splice(at, 1);
    const [lo, hi] = this.span;
    if (at < lo) this.span = [lo - 1, hi - 1];
    else if (at < hi) this.span = [lo, hi - 1];
  }

  // Columns and row pitch from the live layout (`repeat(auto-fill, minmax(--ff-tile-min, 1fr))`).
  measure() {
    const style = getComputedStyle(this.el);
    const rowGap = parseFloat(style.rowGap) || 0;
    const colGap = parseFloat(style.columnGap) || 0;
    const width = this.el.clientWidth;
    const tracks = style.gridTemplateColumns.split(" ").filter((t) => t.endsWith("px"));
    let cols = tracks.length;
    let side = parseFloat(tracks[0]);
    if (!cols || !(side > 0)) {
      const min = parseFloat(style.getPropertyValue("--ff-tile-min")) || 200;
      cols = Math.max(1, Math.floor((width + colGap) / (min + colGap)));
      side = Math.max(1, (width - colGap * (cols - 1)) / cols);
    }
    const tile = this.el.firstElementChild;
    const height = tile ? tile.getBoundingClientRect().height : 0;
    return { cols, pitch: (height || side) + rowGap, width, measured: height > 0 };
  }

  // Bring the DOM in line with the viewport: make the tiles it nears, drop those it left far behind.
  render() {
    const g = this.gallery;
    if (g.destroyed) return;
    if (!this.geo || !this.geo.measured) this.geo = this.measure();
    const { cols, pitch } = this.geo;
    const n = this.order.length;
    const screen = this.scroller.clientHeight || 800;
    const top = this.scroller.scrollTop - this.offset();
    const rows = Math.ceil(n / cols);
    const first = Math.min(rows, Math.max(0, Math.floor(top / pitch)));
    const last = Math.min(rows, Math.max(0, Math.floor((top + screen) / pitch) + 1));
    const screenRows = Math.ceil(screen / pitch);
    const ahead = Math.max(2 * screenRows, Math.ceil(MAKE_AHEAD / cols));
    const behind = 2 * screenRows;
    // Made: two screens above, MAKE_AHEAD below. Kept until KEEP_BEHIND above or twice as far below:
    // scrolling to and fro near the edges neither rebuilds nor churns tiles.
    const make = [Math.max(0, first - behind) * cols, Math.min(n, (last + ahead) * cols)];
    const keep = [Math.max(0, first - Math.max(behind, Math.ceil(KEEP_BEHIND / cols))) * cols,
      Math.min(n, (last + 2 * ahead) * cols)];
    let [lo, hi] = this.span;
    if (hi <= lo || hi < make[0] || lo > make[1]) [lo, hi] = make;
    else [lo, hi] = [Math.min(lo, make[0]), Math.max(hi, make[1])];
    lo = Math.floor(Math.max(lo, keep[0]) / cols) * cols;
    hi = Math.max(lo, Math.min(hi, keep[1], n));
    this.span = [lo, hi];
    this.reconcile(lo, hi);
    this.el.style.paddingTop = `${(lo / cols) * pitch}px`;
    this.el.style.paddingBottom = `${(rows - Math.ceil(hi / cols)) * pitch}px`;
    if (!this.geo.measured && this.el.firstElementChild) this.geo = null; // measure a real tile next time
    if (this.records.byId.size > hi - lo + 2 * RECORD_MARGIN + 2 * MAX_PAGE) this.evict(lo, hi);
    if (this.ghosts.size && !this.refilling) this.refillNear(lo, hi, first * cols);
    const end = rows * pitch - (top + screen);
    if (end < LOAD_AHEAD_PX && g.listing.canLoadMore()) g.listing.loadMore(end <= 0);
  }

  // The grid's children become the tiles of order[lo:hi], in order; a tile that stays is never moved.
  reconcile(lo, hi) {
    const want = this.order.slice(lo, hi);
    const wanted = new Set(want);
    let cursor = this.el.firstElementChild;
    for (const id of want) {
      const node = this.records.byId.get(id)?.tile || this.ghosts.get(id) || this.mount(id);
      while (cursor && cursor !== node && !wanted.has(cursor.dataset.imageId || cursor.dataset.ghostId)) {
        const next = cursor.nextElementSibling;
        this.unmount(cursor);
        cursor = next;
      }
      if (cursor === node) cursor = cursor.nextElementSibling;
      else this.el.insertBefore(node, cursor); // new here (or from the band of arrivals)
    }
    while (cursor) {
      const next = cursor.nextElementSibling;
      this.unmount(cursor);
      cursor = next;
    }
  }

  // The tile of an image, or a placeholder while its record is fetched again.
  mount(id) {
    const entry = this.records.byId.get(id);
    if (!entry) {
      const ghost = h("div", { class: "ff-tile ff-ghost", "data-ghost-id": id }, h("div", { class: "ff-box" }));
      this.ghosts.set(id, ghost);
      return ghost;
    }
    entry.tile = this.gallery.tile(entry.image);
    if (this.animate.has(id)) entry.tile.classList.add("ff-new");
    return entry.tile;
  }

  unmount(node) {
    const id = node.dataset.imageId || node.dataset.ghostId;
    if (node.dataset.ghostId) this.ghosts.delete(id);
    const entry = this.records.byId.get(id);
    if (entry && entry.tile === node) entry.tile = null;
    // A lazy image that never came near the viewport stays watched by Chromium's lazy loading, and with
    // it its whole tile, long after the tile left: without a source, there is nothing left to watch for.
    const img = node.querySelector("img");
    if (img && !img.complete) img.removeAttribute("src");
    node.remove();
  }

  // Drop the records of images far from the DOM's tiles (the band's, the lightbox's and tiles' stay).
  evict(lo, hi) {
    const { byId, elsewhere } = this.records;
    const open = this.gallery.collections.open;
    for (const [id, entry] of byId) {
      if (entry.tile || id === this.gallery.lightbox.id) continue;
      const at = this.positionOf(id, entry.image.seq);
      if (at < 0 || (at >= lo - RECORD_MARGIN && at < hi + RECORD_MARGIN)) continue;
      byId.delete(id);
      if (open?.tiles.has(id)) elsewhere.set(id, entry.image); // still shown in the open collection
    }
  }

  // Fetch again the records of placeholders in [lo, hi), those nearest the viewport first.
  refillNear(lo, hi, from) {
    let at = -1;
    const { byId } = this.records;
    for (let p = Math.max(lo, from); p < hi && at < 0; p += 1) if (!byId.has(this.order[p])) at = p;
    for (let p = lo; p < Math.min(hi, from) && at < 0; p += 1) if (!byId.has(this.order[p])) at = p;
    if (at >= 0) this.refill(at, Math.min(hi, at + MAX_PAGE));
  }

  // One keyset page from position `at` (its seq and older). Records come back to their places; those that
  // did not come back in the range the page covers were deleted or left the filter meanwhile.
  refill(at, end) {
    const { api, listing } = this.gallery;
    const { byId } = this.records;
    const token = listing.token;
    const fromSeq = this.seqs[at];
    const query = listing.query();
    query.set("before", String(fromSeq + 1));
    query.set("limit", String(Math.max(1, Math.min(MAX_PAGE, end - at))));
    this.refilling = api.fetchJson(api.projectPath(`/images?${query}`)).then((page) => {
      if (token !== listing.token) return;
      for (const image of page.images) {
        const pos = this.positionOf(image.id, image.seq);
        if (pos < 0) continue;
        const entry = byId.get(image.id);
        if (entry) {
          entry.image = image;
          continue;
        }
        byId.set(image.id, { image, tile: null });
        const ghost = this.ghosts.get(image.id);
        if (ghost) {
          this.ghosts.delete(image.id);
          const tile = this.mount(image.id);
          ghost.replaceWith(tile);
        }
      }
      const covered = page.next === null ? -Infinity : page.images[page.images.length - 1].seq;
      const gone = []; // positions may have moved meanwhile: start again from the seq asked for
      for (let p = this.bisect(fromSeq); p < this.order.length && this.seqs[p] >= covered; p += 1) {
        if (!byId.has(this.order[p])) gone.push(this.order[p]);
      }
      for (const id of gone) listing.drop(id);
    }).catch((err) => {
      console.warn(`${LOG} fetching images again failed`, err);
      return sleep(RETRY_MS);
    }).finally(() => {
      this.refilling = null;
      this.render();
    });
    return this.refilling;
  }

  // The record at position `at` of `order`, fetched again if it was dropped.
  async recordAt(at) {
    const { byId } = this.records;
    for (let tries = 0; tries < 3 && at >= 0 && at < this.order.length && !byId.has(this.order[at]); tries += 1) {
      await (this.refilling || this.refill(at, Math.min(this.order.length, at + this.gallery.model.page_size)));
    }
  }

  // Scroll just enough to bring position `at` of `order` into view, its tile made at once.
  reveal(at) {
    if (at < 0) return;
    if (!this.geo) this.geo = this.measure();
    const { cols, pitch } = this.geo;
    const rowTop = this.offset() + Math.floor(at / cols) * pitch;
    const s = this.scroller;
    if (rowTop < s.scrollTop) s.scrollTop = rowTop;
    else if (rowTop + pitch > s.scrollTop + s.clientHeight) s.scrollTop = rowTop + pitch - s.clientHeight;
    this.render();
  }

  // A new width (window, side panel, scroll bar) changes the columns: the first image in view stays there.
  onResize() {
    const old = this.geo;
    if (old && old.width === this.el.clientWidth && this.screen === this.scroller.clientHeight) return;
    this.screen = this.scroller.clientHeight;
    const top = this.scroller.scrollTop - this.offset();
    this.geo = this.measure();
    if (old && top > 0 && old.cols !== this.geo.cols) {
      const row = Math.floor(top / old.pitch);
      const within = (top - row * old.pitch) / old.pitch;
      const at = row * old.cols;
      this.render(); // padding for the new column count first: the scroll height must allow the new offset
      this.scroller.scrollTop = this.offset() + (Math.floor(at / this.geo.cols) + within) * this.geo.pitch;
    }
    this.render();
  }
}
