// Fotoflo live gallery: the browser half of dashboard/gallery.py, and the module that wires the others.
//
// Every tile is keyed by image id and created exactly once; a new image costs one SSE event.
// The modules, one concern each (dashboard/gallery.py joins them in the order their imports give):
//   stream.js    the resumable change feed and the Live badge
//   grid.js      the windowed grid: only rows near the viewport are in the DOM
//   lightbox.js  one image large
//   upload.js    the Upload button and drops
//   curation.js  Collection mode: the selection pool and saved collections
//   wall.js      the wall display
//   ratings.js   stars, flags and labels; dom.js: small helpers
// This one holds what they share: the list of images shown (newest first), the filters, the modes.

import { CollectionsPanel, Pool, Selection } from "./curation.js";
import { LOG, csrfHeaders, formatTime, h, mixin } from "./dom.js";
import { MAX_PAGE, RETRY_MS, WindowedGrid } from "./grid.js";
import { Lightbox } from "./lightbox.js";
import { LABEL_NAMES, ratingControl, ratingForKey, ratingIntent, showRating, typingIn } from "./ratings.js";
import { Stream } from "./stream.js";
import { Uploader } from "./upload.js";
import { Wall } from "./wall.js";

const AT_TOP_PX = 12;
const FILTER_FLAGS = [["", "Any flag"], ["pick", "Picks"], ["reject", "Rejected"], ["none", "Unflagged"]];
const FILTER_RATINGS = [["", "Any rating"], ["1", "★ 1+"], ["2", "★ 2+"], ["3", "★ 3+"], ["4", "★ 4+"], ["5", "★ 5"]];

class LiveGallery {
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.api = (model.api_base || "").replace(/\/$/, "");
    this.project = model.project;
    this.mode = model.mode; // "grid" (Single), "collection" (Collection) or "wall"
    // The wall's one page is its stage and the strip beneath (gallery.py's WALL_STRIP + 1).
    this.wallStrip = Math.max(1, model.page_size - 1);
    this.byId = new Map(); // id → {image, tile}: images whose record is at hand (tile: while in the DOM)
    this.order = []; // ids in the main grid, newest first: every image loaded, far from the viewport too
    this.seqs = []; // the feed sequence of each id in `order` (strictly decreasing: positions by bisection)
    this.span = [0, 0]; // positions [lo, hi) of `order` whose tiles (or placeholders) are in the DOM
    this.ghosts = new Map(); // id → placeholder tile, while its record is fetched again
    this.animate = new Set(); // ids whose tile, when made, plays the arrival animation
    this.geo = null; // {cols, pitch, width, measured}: the grid's layout, read from the live page
    this.refilling = null; // the request fetching evicted records again, if one is running
    this.loadFailedAt = -Infinity; // when loading a page last failed: the next try waits a little
    this.fresh = []; // ids in Collection mode's band of arrivals, newest first
    this.arrived = new Set(); // ids that arrived live since the page opened
    this.known_ = new Map(); // id → image, for images shown elsewhere (an open collection)
    this.pending = []; // arrived while scrolled down in Single mode, newest first
    this.incoming = []; // arrived since the last frame, oldest first
    this.queued = new Set(); // ids in `pending` or `incoming`
    this.flushScheduled = false;
    this.next = null; // paging cursor for older images
    this.total = 0; // images in the project (that pass the filter), as of the first page plus live arrivals
    this.filter = { min_rating: "", flag: "", label: "" };
    this.loadingMore = false;
    this.destroyed = false;
    this.focusId = null; // the tile last clicked or moved to with the arrows
    this.hoverId = null; // the tile under the pointer
    this.hoverInCollection = false; // ... and it is in the open collection
    this.justSaved = null;
    this.selection = new Selection(this);
    this.lightbox = new Lightbox(this);
    this.uploader = new Uploader({ url: () => this.api + this.projectPath("/upload"), headers: () => this.headers() });
    this.ready = this.originReady(); // every API request waits for it (fetchJson, the stream)
    this.stream = new Stream({ model, url: () => this.api + this.projectPath("/events"), headers: (extra) => this.headers(extra),
      ready: this.ready, start: () => this.loadFirstPage(), onEvent: (kind, payload) => this.onEvent(kind, payload) });
    this.build();
    this.stream.run();
    if (this.mode === "collection") this.enterCollection();
  }

  // The notebook's server (a token in the model) answers CORS only to origins its kernel was told of:
  // this page names its own through the model (the notebook's authenticated connection) and waits for
  // the kernel to confirm, so the first request is not refused. A kernel that never answers (a saved
  // notebook opened without one) leaves the stream's retries to show it offline.
  originReady() {
    const origin = window.location.origin;
    if (!this.model.api_token || this.model.allowed_origin === origin) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (this.model.allowed_origin === origin) resolve(); };
      this.model.on("allowed_origin", done);
      setTimeout(resolve, 10000);
      this.model.page_origin = origin;
    });
  }

  // Headers of an API request: the notebook server's token, and with sign-in on the CSRF token of writes.
  headers(extra = {}) {
    const out = csrfHeaders(this.api, extra);
    return this.model.api_token ? { ...out, Authorization: `Bearer ${this.model.api_token}` } : out;
  }

  // A link cannot send the notebook server's token: with one, fetch the file and save it from here.
  async download(url) {
    const resp = await fetch(url, { headers: this.headers() });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const disposition = resp.headers.get("Content-Disposition") || "";
    const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
    const plain = /filename="?([^";]+)"?/.exec(disposition);
    const href = URL.createObjectURL(await resp.blob());
    const link = h("a", { href, download: utf8 ? decodeURIComponent(utf8[1]) : plain ? plain[1] : "" });
    this.el.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
  }

  // -- DOM ---------------------------------------------------------------------------------

  build() {
    const wall = this.mode === "wall";
    this.root = h("div", { class: `ff-root ff-mode-${this.mode}`, "data-testid": "gallery", tabindex: "-1" });
    this.countLabel = h("span", { class: "ff-count", "data-testid": "image-count", text: "" });
    this.header = h("header", { class: "ff-header" },
      h("span", { class: "ff-title", text: this.project }), this.countLabel,
      wall ? null : this.buildModeSwitch(), wall ? null : this.buildFilters(),
      h("span", { class: "ff-spacer" }), wall ? null : this.uploader.button, this.stream.badge);
    this.pill = h("button", { class: "ff-pill", "data-testid": "new-pill", hidden: "",
      onclick: () => this.onPill() });
    this.grid = h("div", { class: "ff-grid" });
    this.more = h("div", { class: "ff-more", "data-testid": "loading-more", hidden: "", text: "Loading…" });
    this.empty = h("div", { class: "ff-empty", text: wall ? "Waiting for the first image…"
      : "No images yet. Drop files here, upload, or save into the hot folder." });
    this.freshTitle = h("div", { class: "ff-band-title" });
    this.freshGrid = h("div", { class: "ff-grid ff-fresh-grid" });
    this.freshBand = h("section", { class: "ff-band", "data-testid": "new-band", hidden: "" },
      this.freshTitle, this.freshGrid);
    this.scroller = h("div", { class: "ff-scroll" }, this.empty, this.freshBand, this.grid, this.more);
    this.dropHint = h("div", { class: "ff-drop", text: "Drop images to upload" });
    this.toasts = h("div", { class: "ff-toasts", "data-testid": "toasts" });
    if (wall) {
      this.wallMain = h("img", { class: "ff-wall-main", alt: "" });
      this.wallCaption = h("div", { class: "ff-wall-caption" });
      this.wallStage = h("div", { class: "ff-wall-stage" }, this.wallMain, this.wallCaption);
      this.root.append(this.header, this.wallStage, this.empty, this.grid);
    } else {
      this.selectBar = this.buildSelectBar();
      this.collections = new CollectionsPanel(this);
      const main = h("div", { class: "ff-main" }, this.selectBar,
        h("div", { class: "ff-scroll-wrap" }, this.pill, this.scroller));
      this.root.append(this.header, h("div", { class: "ff-body" }, main, this.collections.root),
        this.uploader.list, this.dropHint, this.toasts);
      this.scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
      this.resizer = new ResizeObserver(() => this.onResize());
      this.resizer.observe(this.scroller);
      this.resizer.observe(this.grid);
      this.scroller.addEventListener("click", (e) => this.onTileClick(e));
      this.scroller.addEventListener("dblclick", (e) => {
        const tile = e.target.closest("[data-image-id]");
        if (tile && this.mode === "collection" && !e.target.closest(".ff-rate, .ff-check")) {
          this.lightbox.open(tile.dataset.imageId);
        }
      });
      this.root.addEventListener("mouseover", (e) => {
        this.hoverId = e.target.closest?.("[data-image-id]")?.dataset.imageId || null;
        this.hoverInCollection = Boolean(this.hoverId && e.target.closest(".ff-cgrid"));
      });
      this.uploader.bindDrop(this.root);
    }
    this.keyHandler = (e) => this.onKey(e);
    document.addEventListener("keydown", this.keyHandler);
    this.el.append(this.root);
  }

  buildModeSwitch() {
    this.modeSwitch = h("div", { class: "ff-modes", "data-testid": "mode", "data-value": this.mode, role: "tablist" },
      h("button", { "data-mode": "grid", role: "tab", text: "Single", onclick: () => this.setMode("grid") }),
      h("button", { "data-mode": "collection", role: "tab", text: "Collection",
        onclick: () => this.setMode("collection") }));
    return this.modeSwitch;
  }

  buildFilters() {
    const select = (name, testid, options, title) => {
      const node = h("select", { class: "ff-select", "data-testid": testid, title,
        onchange: () => this.setFilter(name, node.value) });
      for (const [value, text] of options) node.append(h("option", { value, text }));
      return node;
    };
    const labels = [["", "Any label"], ...LABEL_NAMES.map((l) => [l, l === "none" ? "No label" : l])];
    return h("span", { class: "ff-filters" },
      select("min_rating", "filter-rating", FILTER_RATINGS, "Show images with at least this rating"),
      select("flag", "filter-flag", FILTER_FLAGS, "Show picks, rejects or unflagged images"),
      select("label", "filter-label", labels, "Show images with this colour label"));
  }

  makeTile(image) {
    const img = h("img", { loading: "lazy", decoding: "async", alt: image.filename, draggable: "false" });
    img.addEventListener("load", () => img.classList.add("ff-loaded"), { once: true });
    img.src = this.url(image.thumbnail_url);
    const caption = h("figcaption", {},
      h("span", { class: "ff-name", text: image.filename }),
      h("span", { class: "ff-time", text: formatTime(image.captured_at) }));
    const tile = h("figure", { class: "ff-tile", "data-image-id": image.id,
      "data-selected": String(this.selection.has(image.id)), title: `${image.filename}\n${formatTime(image.captured_at)}` },
      h("div", { class: "ff-box" }, img), h("span", { class: "ff-check", title: "Select", "aria-label": "Select" }),
      caption, ratingControl(image));
    tile.dataset.flag = image.flag || "none";
    tile.dataset.label = image.label || "none";
    if (image.id === this.focusId) tile.classList.add("ff-focus");
    return tile;
  }

  url(path) {
    return path.startsWith("http") ? path : this.api + path;
  }

  // The API path of this gallery's project, `rest` appended.
  projectPath(rest) {
    return `/api/projects/${encodeURIComponent(this.project)}${rest}`;
  }

  updateCount() {
    const n = Math.max(this.total, this.order.length + this.fresh.length + this.pending.length);
    const filtered = this.filter.min_rating || this.filter.flag || this.filter.label;
    this.countLabel.textContent = `${n.toLocaleString()} image${n === 1 ? "" : "s"}${filtered ? " (filtered)" : ""}`;
    this.empty.hidden = n > 0;
    this.empty.textContent = filtered ? "No images match this filter."
      : this.mode === "wall" ? "Waiting for the first image…"
      : "No images yet. Drop files here, upload, or save into the hot folder.";
  }

  toast(text, { action = null, onAction = null, ms = 4000 } = {}) {
    const node = h("div", { class: "ff-toast", "data-testid": "toast" }, h("span", { text }));
    if (action) {
      node.append(h("button", { class: "ff-link", "data-testid": "undo", text: action, onclick: () => {
        node.remove();
        onAction();
      } }));
    }
    this.toasts.append(node);
    setTimeout(() => node.remove(), ms);
  }

  // -- modes -------------------------------------------------------------------------------

  setMode(mode) {
    if (mode === this.mode || this.mode === "wall") return;
    if (mode === "grid") {
      this.mergeFresh();
      this.selection.clear();
    } else {
      if (this.pending.length) this.flushPending(false);
    }
    this.root.classList.replace(`ff-mode-${this.mode}`, `ff-mode-${mode}`);
    this.mode = mode;
    this.modeSwitch.dataset.value = mode;
    if (mode === "collection") this.enterCollection();
    else this.scroller.removeAttribute("data-testid");
    if (this.model.sync_url) {
      const url = new URL(window.location.href);
      url.searchParams.set("mode", mode === "grid" ? "single" : mode);
      window.history.replaceState(window.history.state, "", url);
    }
    if (this.model.mode !== mode) this.model.mode = mode;
    console.info(`${LOG} ${mode === "grid" ? "Single" : "Collection"} mode`);
  }

  // -- ratings -----------------------------------------------------------------------------

  known(id) {
    return this.byId.get(id)?.image || this.known_.get(id) || null;
  }

  remember(image) {
    if (!this.byId.has(image.id)) this.known_.set(image.id, image);
  }

  rateFromClick(e, id) {
    const image = this.known(id);
    const intent = image && ratingIntent(e.target, image);
    if (!intent) return false;
    this.rate([id], intent);
    return true;
  }

  // Ask the server, and show it at once; the feed's `rating.changed` confirms (or corrects) it. A
  // selected image scrolled far away has no record here: it is rated all the same.
  rate(ids, fields) {
    for (const id of ids) {
      const before = this.known(id);
      if (before) this.applyRating({ image_id: id, ...fields });
      const path = `/api/projects/${encodeURIComponent(this.project)}/images/${encodeURIComponent(id)}/rating`;
      fetch(this.api + path, { method: "POST", headers: this.headers({ "Content-Type": "application/json" }),
        body: JSON.stringify(fields) }).then(async (resp) => {
        if (resp.ok) return;
        const body = await resp.json().catch(() => ({}));
        if (before) this.applyRating({ image_id: id, rating: before.rating, flag: before.flag, label: before.label });
        this.toast(`Could not rate ${before?.filename || id}: ${body?.error?.message || `HTTP ${resp.status}`}`);
      });
    }
  }

  applyRating(data) {
    const id = data.image_id;
    const current = this.known(id);
    if (!current) return this.maybeEnter(id);
    const image = { ...current };
    for (const key of ["rating", "flag", "label"]) if (data[key] !== undefined) image[key] = data[key];
    const entry = this.byId.get(id);
    if (entry) {
      entry.image = image;
      if (entry.tile) {
        showRating(entry.tile.querySelector(".ff-rate"), image);
        entry.tile.dataset.flag = image.flag;
        entry.tile.dataset.label = image.label;
      }
    } else {
      this.known_.set(id, image);
    }
    this.collections?.refreshImage(image);
    if (this.lightbox.id === id) this.lightbox.showRating(image);
    if (entry && !this.matches(image)) this.drop(id);
  }

  // -- filters -----------------------------------------------------------------------------

  query() {
    const params = new URLSearchParams({ limit: String(this.model.page_size) });
    for (const [key, value] of Object.entries(this.filter)) if (value) params.set(key, value);
    return params;
  }

  matches(image) {
    const f = this.filter;
    return (!f.min_rating || (image.rating || 0) >= Number(f.min_rating))
      && (!f.flag || (image.flag || "none") === f.flag)
      && (!f.label || (image.label || "none") === f.label);
  }

  setFilter(name, value) {
    this.filter = { ...this.filter, [name]: value };
    this.reload();
  }

  async reload() {
    // Keep the stream and its cursor; only the listing starts again (from the top) with the new filter.
    for (const { tile } of this.byId.values()) tile?.remove();
    for (const ghost of this.ghosts.values()) ghost.remove();
    this.ghosts.clear();
    this.byId.clear();
    this.order = [];
    this.seqs = [];
    this.span = [0, 0];
    this.fresh = [];
    this.pending = [];
    this.freshBand.hidden = true;
    this.showPill(0);
    this.next = null;
    this.scroller.scrollTop = 0;
    this.render();
    const token = (this.listing = (this.listing || 0) + 1);
    try {
      const page = await this.fetchJson(`/api/projects/${encodeURIComponent(this.project)}/images?${this.query()}`);
      if (token !== this.listing) return; // a newer filter won
      this.total = page.total;
      this.next = page.next;
      for (const image of page.images) this.append(image);
    } catch (err) {
      this.toast(`Could not load images: ${err.message}`);
    }
    this.render();
    this.updateCount();
    this.updateSelectNew();
  }

  // An image leaves what is shown (a rating change took it out of the filter, or it was deleted):
  // from the band, or from the grid's list whether or not its tile or record is at hand.
  drop(id) {
    const entry = this.byId.get(id);
    const inBand = this.fresh.indexOf(id);
    const at = inBand >= 0 ? -1 : this.positionOf(id, entry?.image.seq);
    if (inBand < 0 && at < 0) return false;
    if (inBand >= 0) {
      this.fresh.splice(inBand, 1);
      entry?.tile?.remove();
    } else {
      const node = entry?.tile || this.ghosts.get(id);
      if (node) this.unmount(node);
      this.removeAt(at);
    }
    this.byId.delete(id);
    this.total = Math.max(0, this.total - 1);
    if (entry) this.known_.set(id, entry.image);
    this.render();
    this.updateCount();
    return true;
  }

  // A rating change may make an image not shown enter the filter: fetch it and put it in its place.
  async maybeEnter(id) {
    if (!(this.filter.min_rating || this.filter.flag || this.filter.label)) return;
    const image = await this.fetchJson(
      `/api/projects/${encodeURIComponent(this.project)}/images/${encodeURIComponent(id)}`).catch(() => null);
    if (!image || !this.matches(image) || this.byId.has(id) || this.positionOf(id, image.seq) >= 0) return;
    const index = this.bisect(image.seq);
    if (index >= this.order.length && this.next) return; // older than what is loaded: paging brings it
    this.insertAt(index, [image]);
    this.byId.set(id, { image, tile: null });
    this.known_.delete(id);
    this.total += 1;
    this.render();
    this.updateCount();
  }

  // -- data --------------------------------------------------------------------------------

  async fetchJson(path) {
    await this.ready;
    const resp = await fetch(this.api + path, { cache: "no-store", headers: this.headers() });
    if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
    return resp.json();
  }

  async loadFirstPage() {
    const page = await this.fetchJson(`/api/projects/${encodeURIComponent(this.project)}/images?${this.query()}`);
    // The feed position at which this page was read: the stream resumes exactly from there.
    this.total = page.total;
    this.next = page.next;
    for (const image of page.images) this.append(image);
    this.render();
    this.updateCount();
    console.info(`${LOG} loaded ${page.images.length} image(s) of ${this.project} at feed #${page.last_seq}`);
    return page.last_seq;
  }

  // The next page of older images (keyset: `before` the last one loaded), never the whole list. One who
  // outruns the pages (`catchUp`: the end of the list is on screen) is going far: the page grows with
  // what is loaded (an eighth of it, up to the API's largest), so the end of 100,000 images is ~200
  // requests away rather than 1,700.
  async loadMore(catchUp = false) {
    if (this.mode === "wall" || !this.next || this.loadingMore) return;
    this.loadingMore = true;
    this.more.hidden = false;
    const token = this.listing;
    try {
      const query = this.query();
      query.set("before", this.next);
      const grown = Math.max(this.model.page_size, Math.round(this.order.length / 8));
      if (catchUp) query.set("limit", String(Math.min(MAX_PAGE, grown)));
      const page = await this.fetchJson(`/api/projects/${encodeURIComponent(this.project)}/images?${query}`);
      if (token !== this.listing) return;
      this.next = page.next;
      for (const image of page.images) this.append(image);
      this.updateCount();
    } catch (err) {
      console.warn(`${LOG} loading older images failed`, err);
      this.loadFailedAt = performance.now();
      setTimeout(() => this.render(), RETRY_MS);
    } finally {
      this.loadingMore = false;
      this.more.hidden = true;
    }
    this.render(); // which asks for one more page while the end is still near (tall screens)
  }

  append(image) {
    if (this.mode === "wall") {
      if (this.byId.has(image.id)) return;
      this.byId.set(image.id, { image, tile: null });
      this.known_.delete(image.id);
      this.order.push(image.id);
      this.showWall(image, false);
      return;
    }
    const last = this.seqs.length ? this.seqs[this.seqs.length - 1] : Infinity;
    if (image.seq >= last || this.fresh.includes(image.id)) return; // shown already (pages are older)
    this.byId.set(image.id, { image, tile: null });
    this.known_.delete(image.id);
    this.order.push(image.id);
    this.seqs.push(image.seq);
  }

  receive(image) {
    if (this.byId.has(image.id) || this.queued.has(image.id)) return;
    if (this.positionOf(image.id, image.seq) >= 0) return; // listed, its record far away
    if (!this.matches(image)) return;
    console.info(`${LOG} image received ${image.id} ${image.filename} #${image.seq}`);
    this.total += 1;
    if (this.mode !== "wall") this.arrived.add(image.id); // a wall runs for days: nothing to select there
    this.queued.add(image.id);
    this.incoming.push(image);
    // A burst (a card dump, a catch-up after an outage) lands in one DOM update per frame.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      requestAnimationFrame(() => this.flushIncoming());
    }
  }

  // A new version of an image already shown: the same tile, its picture and data replaced in place.
  replaceImage(image) {
    const entry = this.byId.get(image.id);
    if (!entry) {
      if (this.known_.has(image.id)) this.known_.set(image.id, image);
      return;
    }
    entry.image = image;
    if (entry.tile) {
      const img = entry.tile.querySelector("img");
      img.src = this.url(image.thumbnail_url);
      img.alt = image.filename;
      entry.tile.querySelector(".ff-name").textContent = image.filename;
    }
    this.applyRating({ image_id: image.id, rating: image.rating, flag: image.flag, label: image.label });
    if (this.lightbox.id === image.id) this.lightbox.open(image.id, this.lightbox.order);
  }

  // An image deleted (here or elsewhere): it leaves the grid, the band, the selection and the lightbox;
  // the collections that held it follow their own `collection.updated` events.
  removeImage(id) {
    if (this.lightbox.id === id) this.lightbox.close();
    if (this.selection.has(id)) this.selection.set([...this.selection.ids].filter((other) => other !== id));
    this.pending = this.pending.filter((image) => image.id !== id);
    this.incoming = this.incoming.filter((image) => image.id !== id);
    this.queued.delete(id);
    this.arrived.delete(id);
    const filtered = this.filter.min_rating || this.filter.flag || this.filter.label;
    if (!this.drop(id) && !filtered) this.total = Math.max(0, this.total - 1);
    this.known_.delete(id);
    if (this.mode === "grid") this.showPill(this.pending.length);
    this.updateCount();
    this.updateSelectNew();
  }

  flushIncoming() {
    this.flushScheduled = false;
    const batch = this.incoming; // oldest first, in feed order
    this.incoming = [];
    if (this.mode === "wall") {
      // Only the newest takes the stage, and only the last few can still be seen in the strip.
      const recent = batch.slice(-(this.wallStrip + 1));
      for (const image of batch) this.queued.delete(image.id);
      for (const image of recent) {
        this.byId.set(image.id, { image, tile: null });
        this.order.unshift(image.id);
        this.showWall(image, true, image === recent[recent.length - 1]);
      }
    } else if (this.mode === "collection") {
      this.addFresh(batch.reverse());
    } else if (this.scroller.scrollTop > AT_TOP_PX || this.lightbox.id) {
      for (const image of batch) this.pending.unshift(image); // never move what the user is looking at
      this.showPill(this.pending.length);
    } else {
      this.prependAll(batch.reverse(), batch.length <= 24);
    }
    this.updateCount();
    this.updateSelectNew();
  }

  makeTiles(images, animate) {
    // `images` newest first; one fragment, so the grid lays out once however many arrived.
    const fragment = document.createDocumentFragment();
    for (const image of images) {
      const tile = this.makeTile(image);
      if (animate) tile.classList.add("ff-new");
      this.byId.set(image.id, { image, tile });
      this.known_.delete(image.id);
      this.queued.delete(image.id);
      fragment.append(tile);
    }
    return fragment;
  }

  // `images` newest first, at the top of the grid (whose window then reaches them: this is done at the top).
  prependAll(images, animate) {
    for (const image of images) {
      this.byId.set(image.id, { image, tile: null });
      this.known_.delete(image.id);
      this.queued.delete(image.id);
      if (animate) this.animate.add(image.id);
    }
    this.insertAt(0, images);
    this.render();
    this.animate.clear();
  }

  // Collection mode: arrivals join the pool in a band above it, so the grid being selected from
  // never reflows; while the user selects or has scrolled, what they look at stays where it is.
  addFresh(images) {
    const keepView = this.keepingView();
    const before = this.gridOffset();
    const scroll = this.exactScroll();
    this.freshBand.hidden = false;
    this.freshGrid.prepend(this.makeTiles(images, !keepView && images.length <= 24));
    this.fresh.unshift(...images.map((image) => image.id));
    const n = this.fresh.length;
    this.freshTitle.textContent = `${n} new since you opened this`;
    if (keepView) {
      // Band tiles have their final size at once (square, laid out for real), so one correction is exact.
      const want = scroll + this.gridOffset() - before;
      this.scroller.scrollTop = want;
      this.lastScroll = { actual: this.scroller.scrollTop, want };
      this.unseen = (this.unseen || 0) + images.length;
      this.showPill(this.unseen);
    }
  }

  keepingView() {
    return this.scroller.scrollTop > AT_TOP_PX || this.selection.size > 0 || Boolean(this.lightbox.id);
  }

  gridOffset() {
    // Where the main grid starts in the scrolled content (fractional, unlike offsetTop).
    return this.grid.getBoundingClientRect().top - this.scroller.getBoundingClientRect().top + this.scroller.scrollTop;
  }

  exactScroll() {
    // scrollTop keeps whole pixels: remember the fraction we asked for, so corrections never add up.
    const actual = this.scroller.scrollTop;
    return this.lastScroll && this.lastScroll.actual === actual ? this.lastScroll.want : actual;
  }

  showPill(n) {
    this.pill.textContent = `↑ ${n} new image${n === 1 ? "" : "s"}`;
    this.pill.hidden = n === 0;
  }

  onPill() {
    if (this.pending.length) this.flushPending(true);
    else this.scrollToTop();
    this.unseen = 0;
    this.showPill(0);
  }

  flushPending(scrollTop) {
    const batch = this.pending; // newest first
    this.pending = [];
    if (this.mode === "collection") this.addFresh(batch);
    else this.prependAll(batch, !scrollTop && batch.length <= 24);
    this.showPill(0);
    if (scrollTop) this.scrollToTop();
  }

  scrollToTop() {
    // Smoothly from nearby; from far down in one jump (gliding past thousands of rows would build each).
    const far = this.scroller.scrollTop > 3 * this.scroller.clientHeight;
    this.scroller.scrollTo({ top: 0, behavior: far ? "instant" : "smooth" });
  }

  onScroll() {
    this.render();
    if (this.scroller.scrollTop > AT_TOP_PX || this.lightbox.id) return;
    if (this.pending.length) this.flushPending(false);
    if (this.unseen) {
      this.unseen = 0;
      this.showPill(0);
    }
  }

  // One change from the project's feed (stream.js), in feed order.
  onEvent(kind, payload) {
    if (kind === "image.created") this.receive(payload);
    else if (kind === "image.updated") this.replaceImage(payload);
    else if (kind === "image.deleted") this.removeImage(payload.image_id);
    else if (kind === "rating.changed") this.applyRating(payload);
    else if (kind.startsWith("collection.") && this.collections) this.collections.onChange(kind, payload);
  }

  // -- clicks and keys ---------------------------------------------------------------------

  onTileClick(e) {
    const tile = e.target.closest("[data-image-id]");
    if (!tile) return;
    const id = tile.dataset.imageId;
    if (this.rateFromClick(e, id)) return;
    this.focus(id, false);
    if (this.mode !== "collection") this.lightbox.open(id);
    else if (e.target.closest(".ff-check")) this.selection.toggle(id);
    else this.selection.click(id, e);
  }

  focus(id, scroll) {
    this.byId.get(this.focusId)?.tile?.classList.remove("ff-focus");
    this.focusId = id;
    if (scroll && !this.byId.get(id)?.tile) this.reveal(this.positionOf(id, this.known(id)?.seq));
    const tile = this.byId.get(id)?.tile;
    if (!tile) return;
    tile.classList.add("ff-focus");
    if (scroll) tile.scrollIntoView({ block: "nearest" });
  }

  // What a rating key applies to: the lightbox's image; a tile of the open collection under the
  // pointer; the pool's selection; the tile moved to with the arrows; the tile under the pointer.
  keyTargets() {
    if (this.lightbox.id) return [this.lightbox.id];
    if (this.hoverInCollection) return [this.hoverId];
    if (this.mode === "collection" && this.selection.size) return this.selection.ordered();
    const id = this.mode === "collection" ? this.focusId || this.hoverId : this.hoverId || this.focusId;
    return id && this.known(id) ? [id] : [];
  }

  onKey(e) {
    if (this.mode === "wall" || typingIn(e)) return;
    const rating = ratingForKey(e);
    if (rating) {
      const ids = this.keyTargets();
      if (ids.length) {
        this.rate(ids, rating);
        e.preventDefault();
      }
      return;
    }
    if (this.lightbox.id) {
      if (e.key === "Escape") this.lightbox.close();
      else if (e.key === "ArrowRight") this.lightbox.step(1);
      else if (e.key === "ArrowLeft") this.lightbox.step(-1);
      else return;
      e.preventDefault();
      return;
    }
    if (this.mode === "collection") this.onPoolKey(e);
  }

  destroy() {
    this.destroyed = true;
    this.stream.stop();
    this.resizer?.disconnect();
    document.removeEventListener("keydown", this.keyHandler);
  }
}

mixin(LiveGallery, WindowedGrid);
mixin(LiveGallery, Pool);
mixin(LiveGallery, Wall);

// The gallery starts again when what it shows changes: another project or server (set from Python).
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
  for (const name of ["project", "api_base", "api_token"]) model.on(name, again);
  model.on("mode", () => gallery.setMode(model.mode));
  model.on("remove", () => gallery.destroy());
}
