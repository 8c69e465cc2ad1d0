// Fotoflo live gallery: the browser half of dashboard/gallery.py, and the module that wires the others.
//
// Every tile is keyed by image id and created exactly once; a new image costs one SSE event.
// The modules, one concern each, each object owning its state (dashboard/gallery.py joins them in the
// order their imports give):
//   api.js       the connection: URLs, headers, requests     stream.js    the change feed, the Live badge
//   header.js    name, count, mode switch, filters           upload.js    the Upload button and drops
//   listing.js   the filter and the pages of images          records.js   the image records at hand
//   grid.js      the windowed grid                           arrivals.js  live arrivals, the pill
//   pool.js      Collection mode: selection, band, save bar  curation.js  the collections panel's cards
//   collection.js  the open collection                      export.js    its exports
//   wall.js      the wall display                            lightbox.js  one image large
//   keys.js      the keyboard, focus and hover               tiles.js     the tiles
//   ratings.js   stars, flags and labels, and `Marks`        dom.js       small helpers, toasts
//   first.js     the first tiles painted in the page's HTML, adopted
//   favorites.js the hearts, the photographer's counts, "Send my picks"
//   comments.js  the comment badges, the lightbox's threads
// This one holds what is left to share: the mode, the page's skeleton, and the feed's dispatch.

import { Api } from "./api.js";
import { Arrivals } from "./arrivals.js";
import { Comments } from "./comments.js";
import { CollectionsPanel } from "./curation.js";
import { LOG, Toasts, h } from "./dom.js";
import { Favorites } from "./favorites.js";
import { WindowedGrid } from "./grid.js";
import { Header } from "./header.js";
import { language, languageSwitch, setLanguage, t } from "./i18n.js";
import { Keys } from "./keys.js";
import { Lightbox } from "./lightbox.js";
import { Listing, filterOf, paramOf } from "./listing.js";
import { Pool } from "./pool.js";
import { Marks } from "./ratings.js";
import { Records } from "./records.js";
import { Stream } from "./stream.js";
import { gridTile, refreshTile } from "./tiles.js";
import { Uploader } from "./upload.js";
import { Wall } from "./wall.js";

// What an empty gallery says (catalogue keys).
const EMPTY = "empty.grid";
const EMPTY_WALL = "empty.wall";

class LiveGallery {
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.mode = model.mode; // "grid" (Single), "collection" (Collection) or "wall"
    setLanguage(model.lang, model.catalogue); // every module's strings from now on (i18n.js)
    if (model.sync_url) document.documentElement.lang = language(); // the page is the gallery's
    this.destroyed = false;
    this.api = new Api(model);
    this.records = new Records();
    this.listing = new Listing(this);
    this.arrivals = new Arrivals(this);
    this.marks = new Marks(this);
    this.favorites = new Favorites(this);
    this.comments = new Comments(this);
    this.toasts = new Toasts();
    this.lightbox = new Lightbox(this);
    const api = this.api;
    this.uploader = new Uploader({ url: () => api.base + api.projectPath("/upload"), headers: () => api.headers() });
    this.stream = new Stream({ model, url: () => api.base + api.projectPath("/events"), headers: (extra) => api.headers(extra),
      ready: api.ready, start: () => this.listing.loadFirstPage(), onEvent: (kind, payload) => this.onEvent(kind, payload) });
    this.build();
    this.stream.run();
    if (this.mode === "collection") this.pool.enter();
  }

  // The page: the header, then the wall's stage and strip, or the pool's bar, the grid (with the band of
  // arrivals above it) and the collections panel. Only the latter have a grid, a pool and keys.
  build() {
    const wall = this.mode === "wall";
    this.root = h("div", { class: `ff-root ff-mode-${this.mode}`, "data-testid": "gallery", tabindex: "-1" });
    this.header = new Header({ project: this.api.project, mode: this.mode, upload: this.uploader.button,
      badge: this.stream.badge, picks: this.favorites.sendButton, filter: this.listing.filter, onMode: (mode) => this.setMode(mode),
      language: wall ? null : languageSwitch(this.model.languages, (lang) => { this.model.lang = lang; }),
      onFilter: (name, value) => this.pickFilter(name, value) });
    this.empty = h("div", { class: "ff-empty", text: t(wall ? EMPTY_WALL : EMPTY) });
    // Everything but the header is the page's main landmark, the overlays (lightbox, toasts, uploads) too:
    // a screen reader's "go to main" lands on the images, and no content is outside a landmark.
    if (wall) {
      this.wall = new Wall(this);
      this.main = h("main", { class: "ff-body ff-wall-body" }, this.wall.stage, this.empty, this.wall.strip,
        this.arrivals.announcer);
      this.root.append(this.header.root, this.main);
    } else {
      // The scroller takes the keyboard's focus (Tab reaches it; the arrows then move among the tiles, keys.js).
      this.scroller = h("div", { class: "ff-scroll", tabindex: "0", role: "region", "aria-label": t("grid.label"),
        "aria-keyshortcuts": `ArrowLeft ArrowRight ArrowUp ArrowDown Enter Space 0 1 2 3 4 5 P X U 6 7 8 9${
          this.favorites.mayMark ? " H" : ""}` });
      this.grid = new WindowedGrid(this, this.scroller);
      this.pool = new Pool(this);
      this.collections = new CollectionsPanel(this);
      this.keys = new Keys(this);
      this.scroller.append(this.empty, this.pool.band, this.grid.el, this.listing.more);
      const main = h("div", { class: "ff-main" }, this.pool.bar,
        h("div", { class: "ff-scroll-wrap" }, this.arrivals.pill, this.scroller));
      this.main = h("main", { class: "ff-body" }, main, this.collections.root,
        this.uploader.list, h("div", { class: "ff-drop", text: t("upload.drop") }), this.toasts.root,
        this.arrivals.announcer, this.keys.spoken);
      this.root.append(this.header.root, this.main);
      this.scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
      this.scroller.addEventListener("click", (e) => this.onTileClick(e));
      this.scroller.addEventListener("dblclick", (e) => {
        const tile = e.target.closest("[data-image-id]");
        if (tile && this.mode === "collection" && !e.target.closest(".ff-rate, .ff-check, .ff-heart")) {
          this.lightbox.open(tile.dataset.imageId);
        }
      });
      this.uploader.bindDrop(this.root);
    }
    this.el.append(this.root);
  }

  // A grid tile (the pool, Single mode, the wall's strip), selected and focused as its image is now.
  tile(image) {
    const tile = gridTile(image, { src: this.api.url(image.thumbnail_url),
      selected: Boolean(this.pool?.selection.has(image.id)), focused: image.id === this.keys?.focusId });
    return this.comments.decorate(this.favorites.decorate(tile, image), image);
  }

  toast(text, options) {
    this.toasts.show(text, options);
  }

  render() {
    this.grid?.render();
  }

  updateCount() {
    const shown = this.wall ? this.wall.order.length
      : this.grid.order.length + this.pool.fresh.length + this.arrivals.pending.length;
    const n = Math.max(this.listing.total, shown);
    const filtered = this.listing.filtered;
    this.header.showCount(n, filtered);
    this.empty.hidden = n > 0;
    this.empty.textContent = t(filtered ? "empty.filtered" : this.mode === "wall" ? EMPTY_WALL : EMPTY);
  }

  setMode(mode) {
    if (mode === this.mode || this.mode === "wall") return;
    if (mode === "grid") {
      this.pool.mergeFresh();
      this.pool.selection.clear();
    } else {
      if (this.arrivals.pending.length) this.arrivals.flushPending(false);
    }
    this.root.classList.replace(`ff-mode-${this.mode}`, `ff-mode-${mode}`);
    this.mode = mode;
    this.header.showMode(mode);
    if (mode === "collection") this.pool.enter();
    else this.scroller.removeAttribute("data-testid");
    showModeInUrl(this.model, mode);
    if (this.model.mode !== mode) this.model.mode = mode;
    console.info(`${LOG} ${mode === "grid" ? "Single" : "Collection"} mode`);
  }

  // A filter picked in the header: the listing starts again with it, and Python hears of it.
  pickFilter(name, value) {
    this.listing.setFilter({ [name]: value });
    const param = paramOf(name, value);
    if (this.model[name] !== param) this.model[name] = param;
  }

  // The filter params changed (set from Python, or the echo of `pickFilter`): the selects show them and
  // the listing starts again with them, unless they are what it lists already.
  followFilter() {
    if (this.wall) return;
    const filter = filterOf(this.model);
    this.header.showFilter(filter);
    this.listing.setFilter(filter);
  }

  // One change from the project's feed (stream.js), in feed order.
  onEvent(kind, payload) {
    this.favorites.onEvent(kind, payload);
    this.comments.onEvent(kind, payload);
    if (kind === "image.created") this.arrivals.receive(payload);
    else if (kind === "image.updated") this.replaceImage(payload);
    else if (kind === "image.deleted") this.removeImage(payload.image_id);
    else if (kind === "rating.changed") this.marks.apply(payload);
    else if (kind.startsWith("collection.") && this.collections) this.collections.onChange(kind, payload);
  }

  // A new version of an image already shown: the same tile, its picture and data replaced in place.
  replaceImage(image) {
    const entry = this.records.update(image);
    if (!entry) return;
    if (entry.tile) refreshTile(entry.tile, image, this.api.url(image.thumbnail_url));
    this.marks.apply({ image_id: image.id, rating: image.rating, flag: image.flag, label: image.label });
    if (this.lightbox.id === image.id) this.lightbox.open(image.id, this.lightbox.order);
  }

  // An image deleted (here or elsewhere): it leaves the grid, the band, the selection and the lightbox;
  // the collections that held it follow their own `collection.updated` events.
  removeImage(id) {
    if (this.lightbox.id === id) this.lightbox.close();
    const selection = this.pool?.selection;
    if (selection?.has(id)) selection.set([...selection.ids].filter((other) => other !== id));
    this.arrivals.forget(id);
    const listing = this.listing;
    if (!listing.drop(id) && !listing.filtered) listing.total = Math.max(0, listing.total - 1);
    this.records.elsewhere.delete(id);
    if (this.mode === "grid") this.arrivals.showPill(this.arrivals.pending.length);
    this.updateCount();
    this.pool?.updateSelectNew();
  }

  onScroll() {
    this.render();
    this.arrivals.onScroll();
  }

  // A click on a tile: its marks, else Single mode opens it and Collection mode selects it.
  onTileClick(e) {
    const tile = e.target.closest("[data-image-id]");
    if (!tile) return;
    const id = tile.dataset.imageId;
    if (this.marks.fromClick(e, id) || this.favorites.fromClick(e, id)) return;
    this.keys.focus(id, false);
    if (this.mode !== "collection") this.lightbox.open(id);
    else if (e.target.closest(".ff-check")) this.pool.selection.toggle(id);
    else this.pool.selection.click(id, e);
  }

  destroy() {
    this.destroyed = true;
    this.stream.stop();
    this.grid?.destroy();
    this.keys?.destroy();
  }
}

// With `sync_url` (a served page), the page's URL says its mode (`?mode=single|collection|wall`): a reload
// opens it again.
function showModeInUrl(model, mode) {
  if (!model.sync_url) return;
  const url = new URL(window.location.href);
  url.searchParams.set("mode", mode === "grid" ? "single" : mode);
  window.history.replaceState(window.history.state, "", url);
}

// The gallery starts again when what it shows changes (set from Python): another project or server, or a
// switch to or from the wall, which is a page of its own (no grid, its own page size).
export function render({ model, el }) {
  let gallery = new LiveGallery(model, el);
  let restarting = false;
  const again = () => {
    if (restarting) return; // several of them changed at once: start again once
    restarting = true;
    queueMicrotask(() => {
      restarting = false;
      gallery.destroy();
      gallery.root.remove();
      gallery = new LiveGallery(model, el);
    });
  };
  // A language picked in the page: Python sends its catalogue, and the gallery starts again in it.
  for (const name of ["project", "api_base", "api_token", "page_size", "catalogue"]) model.on(name, again);
  model.on("mode", () => {
    if ((model.mode === "wall") === Boolean(gallery.wall)) {
      gallery.setMode(model.mode);
    } else {
      showModeInUrl(model, model.mode);
      again();
    }
  });
  // A gallery about to start again reads the filters then.
  for (const name of ["min_rating", "flag", "label"]) model.on(name, () => restarting || gallery.followFilter());
  model.on("remove", () => gallery.destroy());
}
