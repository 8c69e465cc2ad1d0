// Fotoflo live gallery: the browser half of dashboard/gallery.py.
//
// The component keeps its own resumable subscription on the project's Server-Sent Events
// (fetch + a small SSE parser, so heartbeats are visible and Last-Event-ID is ours to send).
// Every tile is keyed by image id and created exactly once; a new image costs one SSE event.
// Nothing here depends on the Bokeh websocket staying up: after a server restart or an outage
// longer than the session token, the stream resumes from the last feed sequence it saw.

const LOG = "[fotoflo]";
const OFFLINE_AFTER_MS = 4000; // silence that counts as a lost connection (heartbeats come faster)
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];
const UPLOAD_CONCURRENCY = 3;
const WALL_STRIP = 12;
const AT_TOP_PX = 12;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso.endsWith("Z") || /[+-]\d\d:\d\d$/.test(iso) ? iso : iso + "Z");
  if (Number.isNaN(date.getTime())) return iso;
  // EXIF times without an offset are camera-local: show them as written.
  if (!iso.endsWith("Z") && !/[+-]\d\d:\d\d$/.test(iso)) return iso.replace("T", " ");
  return date.toLocaleString();
}

// With sign-in on, a write from the page carries the session's CSRF token, which the server left in a
// readable cookie. Only to the page's own server (api_base ""): another origin never sees it.
function csrfHeaders(api, headers = {}) {
  const match = api ? null : document.cookie.match(/(?:^|;\s*)fotoflo_csrf=([^;]+)/);
  return match ? { ...headers, "X-Fotoflo-CSRF": decodeURIComponent(match[1]) } : headers;
}

function formatBytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MB`;
  if (n >= 1 << 10) return `${Math.round(n / (1 << 10))} KB`;
  return `${n} B`;
}

const FILTER_FLAGS = [["", "Any flag"], ["pick", "Picks"], ["reject", "Rejected"], ["none", "Unflagged"]];
const FILTER_RATINGS = [["", "Any rating"], ["1", "★ 1+"], ["2", "★ 2+"], ["3", "★ 3+"], ["4", "★ 4+"], ["5", "★ 5"]];

class LiveGallery {
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.api = (model.api_base || "").replace(/\/$/, "");
    this.project = model.project;
    this.mode = model.mode; // "grid" (Single), "collection" (Collection) or "wall"
    this.byId = new Map(); // id → {image, tile} for every image shown (pool, band or strip)
    this.order = []; // ids in the main grid, newest first
    this.fresh = []; // ids in Collection mode's band of arrivals, newest first
    this.arrived = new Set(); // ids that arrived live since the page opened
    this.known_ = new Map(); // id → image, for images shown elsewhere (an open collection)
    this.pending = []; // arrived while scrolled down in Single mode, newest first
    this.incoming = []; // arrived since the last frame, oldest first
    this.queued = new Set(); // ids in `pending` or `incoming`
    this.flushScheduled = false;
    this.cursor = null; // last feed sequence seen
    this.next = null; // paging cursor for older images
    this.total = 0; // images in the project (that pass the filter), as of the first page plus live arrivals
    this.filter = { min_rating: "", flag: "", label: "" };
    this.loadingMore = false;
    this.destroyed = false;
    this.everLive = false;
    this.controller = null;
    this.lightboxId = null;
    this.lightboxOrder = null; // ids the lightbox steps through when not the pool's
    this.focusId = null; // the tile last clicked or moved to with the arrows
    this.hoverId = null; // the tile under the pointer
    this.hoverInCollection = false; // ... and it is in the open collection
    this.justSaved = null;
    this.uploadQueue = [];
    this.uploadsRunning = 0;
    this.selection = new Selection(this);
    this.build();
    if (this.mode === "collection") this.enterCollection();
    this.run();
  }

  // -- DOM ---------------------------------------------------------------------------------

  build() {
    const wall = this.mode === "wall";
    this.root = h("div", { class: `ff-root ff-mode-${this.mode}`, "data-testid": "gallery", tabindex: "-1" });
    this.badge = h("span", { class: "ff-live", "data-testid": "live-indicator", "data-state": "connecting",
      title: "Connecting…", text: "Connecting" });
    this.countLabel = h("span", { class: "ff-count", "data-testid": "image-count", text: "" });
    this.fileInput = h("input", { type: "file", multiple: "", accept: "image/*,.heic,.heif",
      "data-testid": "upload", class: "ff-file", onchange: () => this.pickFiles() });
    const uploadButton = h("label", { class: "ff-button", title: "Upload images (or drop them anywhere)" },
      "Upload", this.fileInput);
    this.header = h("header", { class: "ff-header" },
      h("span", { class: "ff-title", text: this.project }), this.countLabel,
      wall ? null : this.buildModeSwitch(), wall ? null : this.buildFilters(),
      h("span", { class: "ff-spacer" }), wall ? null : uploadButton, this.badge);
    this.pill = h("button", { class: "ff-pill", "data-testid": "new-pill", hidden: "",
      onclick: () => this.onPill() });
    this.grid = h("div", { class: "ff-grid" });
    this.sentinel = h("div", { class: "ff-sentinel" });
    this.empty = h("div", { class: "ff-empty", text: wall ? "Waiting for the first image…"
      : "No images yet. Drop files here, upload, or save into the hot folder." });
    this.freshTitle = h("div", { class: "ff-band-title" });
    this.freshGrid = h("div", { class: "ff-grid ff-fresh-grid" });
    this.freshBand = h("section", { class: "ff-band", "data-testid": "new-band", hidden: "" },
      this.freshTitle, this.freshGrid);
    this.scroller = h("div", { class: "ff-scroll" }, this.empty, this.freshBand, this.grid, this.sentinel);
    this.uploads = h("ul", { class: "ff-uploads", "data-testid": "upload-list" });
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
        this.uploads, this.dropHint, this.toasts);
      this.scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
      this.observer = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) this.loadMore();
      }, { root: this.scroller, rootMargin: "800px" });
      this.observer.observe(this.sentinel);
      this.scroller.addEventListener("click", (e) => this.onTileClick(e));
      this.scroller.addEventListener("dblclick", (e) => {
        const tile = e.target.closest("[data-image-id]");
        if (tile && this.mode === "collection" && !e.target.closest(".ff-rate, .ff-check")) {
          this.openLightbox(tile.dataset.imageId);
        }
      });
      this.root.addEventListener("mouseover", (e) => {
        this.hoverId = e.target.closest?.("[data-image-id]")?.dataset.imageId || null;
        this.hoverInCollection = Boolean(this.hoverId && e.target.closest(".ff-cgrid"));
      });
      this.bindDrop();
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

  buildSelectBar() {
    this.selCount = h("span", { class: "ff-sel-count", "data-testid": "selection-count", text: "0 selected" });
    this.selectNewButton = h("button", { class: "ff-button", "data-testid": "select-new",
      title: "Select every image that arrived since this page opened", onclick: () => this.selectNew() });
    this.nameInput = h("input", { class: "ff-input", "data-testid": "collection-name", placeholder: "New collection name",
      "aria-label": "New collection name" });
    this.nameInput.addEventListener("keydown", (e) => { if (e.key === "Enter") this.saveCollection(); });
    this.saveButton = h("button", { class: "ff-button ff-primary", "data-testid": "collection-save",
      text: "Save collection", onclick: () => this.saveCollection() });
    const bar = h("div", { class: "ff-selectbar", "data-testid": "selection-bar" },
      h("span", { class: "ff-sel-title", text: "New Collection" }), this.selCount, this.selectNewButton,
      h("button", { class: "ff-button", "data-testid": "select-all", text: "Select all",
        onclick: () => this.selection.set(this.sequence()) }),
      h("button", { class: "ff-button", "data-testid": "selection-clear", text: "Clear",
        onclick: () => this.selection.clear() }),
      h("span", { class: "ff-spacer" }), this.nameInput, this.saveButton);
    return bar;
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
    return tile;
  }

  url(path) {
    return path.startsWith("http") ? path : this.api + path;
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

  enterCollection() {
    this.scroller.setAttribute("data-testid", "collection-pool");
    this.selectionChanged();
    this.collections.ensureLoaded();
  }

  // Collection mode's band of arrivals joins the main grid (moved, not re-created).
  mergeFresh() {
    if (!this.fresh.length) return;
    const fragment = document.createDocumentFragment();
    for (const id of this.fresh) fragment.append(this.byId.get(id).tile);
    this.grid.prepend(fragment);
    this.order.unshift(...this.fresh);
    this.fresh = [];
    this.freshBand.hidden = true;
  }

  // Every image shown in the pool, in the order shown (the band first).
  sequence() {
    return [...this.fresh, ...this.order];
  }

  // -- selection ---------------------------------------------------------------------------

  markSelected(id, on) {
    const tile = this.byId.get(id)?.tile;
    if (tile) tile.dataset.selected = String(on);
  }

  selectionChanged() {
    const n = this.selection.size;
    if (this.selCount) this.selCount.textContent = `${n} selected`;
    if (this.saveButton) this.saveButton.disabled = n === 0;
    this.updateSelectNew();
    this.collections?.updateAddButton();
    const ids = this.selection.ordered();
    if (JSON.stringify(this.model.selection) !== JSON.stringify(ids)) this.model.selection = ids;
  }

  updateSelectNew() {
    // Only Collection mode shows the button: Single mode's cost per arrival stays constant.
    if (!this.selectNewButton || this.mode !== "collection") return;
    const n = [...this.arrived].filter((id) => this.byId.has(id)).length;
    this.selectNewButton.textContent = `Select new (${n})`;
    this.selectNewButton.disabled = n === 0;
  }

  selectNew() {
    const ids = this.sequence().filter((id) => this.arrived.has(id));
    this.selection.set(new Set([...this.selection.ids, ...ids]));
  }

  async saveCollection() {
    const name = this.nameInput.value.trim();
    const ids = this.selection.ordered();
    if (!ids.length) return this.toast("Select images in the pool first");
    if (!name) {
      this.nameInput.focus();
      return this.toast("Name the collection first");
    }
    this.saveButton.disabled = true;
    try {
      const saved = await this.collections.save(name, ids);
      this.nameInput.value = "";
      this.selection.clear();
      this.toast(`Saved “${saved.name}” · ${saved.count} image${saved.count === 1 ? "" : "s"}`);
    } catch (err) {
      this.toast(`Could not save: ${err.message}`);
    } finally {
      this.selectionChanged();
    }
  }

  collectionOpened(id) {
    if (this.model.collection !== id) this.model.collection = id;
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

  // Ask the server, and show it at once; the feed's `rating.changed` confirms (or corrects) it.
  rate(ids, fields) {
    for (const id of ids) {
      const before = this.known(id);
      if (!before) continue;
      this.applyRating({ image_id: id, ...fields });
      const path = `/api/projects/${encodeURIComponent(this.project)}/images/${encodeURIComponent(id)}/rating`;
      fetch(this.api + path, { method: "POST", headers: csrfHeaders(this.api, { "Content-Type": "application/json" }),
        body: JSON.stringify(fields) }).then(async (resp) => {
        if (resp.ok) return;
        const body = await resp.json().catch(() => ({}));
        this.applyRating({ image_id: id, rating: before.rating, flag: before.flag, label: before.label });
        this.toast(`Could not rate ${before.filename}: ${body?.error?.message || `HTTP ${resp.status}`}`);
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
    if (this.lightboxId === id) this.showLightboxRating(image);
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
    // Keep the stream and its cursor; only the listing starts again with the new filter.
    for (const { tile } of this.byId.values()) tile?.remove();
    this.byId.clear();
    this.order = [];
    this.fresh = [];
    this.pending = [];
    this.freshBand.hidden = true;
    this.showPill(0);
    this.next = null;
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
    this.updateCount();
    this.updateSelectNew();
  }

  // A rating change made an image leave the filter: its tile goes.
  drop(id) {
    const entry = this.byId.get(id);
    entry?.tile?.remove();
    this.byId.delete(id);
    this.order = this.order.filter((o) => o !== id);
    this.fresh = this.fresh.filter((o) => o !== id);
    this.total = Math.max(0, this.total - 1);
    if (entry) this.known_.set(id, entry.image);
    this.updateCount();
  }

  // A rating change may make an image not shown enter the filter: fetch it and put it in its place.
  async maybeEnter(id) {
    if (!(this.filter.min_rating || this.filter.flag || this.filter.label)) return;
    const image = await this.fetchJson(
      `/api/projects/${encodeURIComponent(this.project)}/images/${encodeURIComponent(id)}`).catch(() => null);
    if (!image || !this.matches(image) || this.byId.has(id)) return;
    const index = this.order.findIndex((other) => this.byId.get(other).image.seq < image.seq);
    if (index < 0 && this.next) return; // older than what is loaded: paging brings it
    const tile = this.makeTile(image);
    this.byId.set(id, { image, tile });
    this.known_.delete(id);
    if (index < 0) {
      this.order.push(id);
      this.grid.append(tile);
    } else {
      this.grid.insertBefore(tile, this.byId.get(this.order[index]).tile);
      this.order.splice(index, 0, id);
    }
    this.total += 1;
    this.updateCount();
  }

  // -- data --------------------------------------------------------------------------------

  async fetchJson(path) {
    const resp = await fetch(this.api + path, { cache: "no-store" });
    if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
    return resp.json();
  }

  async loadFirstPage() {
    const page = await this.fetchJson(`/api/projects/${encodeURIComponent(this.project)}/images?${this.query()}`);
    // The feed position at which this page was read: the stream resumes exactly from there.
    this.cursor = page.last_seq;
    this.total = page.total;
    this.next = page.next;
    for (const image of page.images) this.append(image);
    this.updateCount();
    console.info(`${LOG} loaded ${page.images.length} image(s) of ${this.project} at feed #${this.cursor}`);
  }

  async loadMore() {
    if (this.mode === "wall" || !this.next || this.loadingMore) return;
    this.loadingMore = true;
    const token = this.listing;
    try {
      const query = this.query();
      query.set("before", this.next);
      const page = await this.fetchJson(`/api/projects/${encodeURIComponent(this.project)}/images?${query}`);
      if (token !== this.listing) return;
      this.next = page.next;
      for (const image of page.images) this.append(image);
      this.updateCount();
    } catch (err) {
      console.warn(`${LOG} loading older images failed`, err);
    } finally {
      this.loadingMore = false;
    }
    // Still in view after this page (tall screens): keep filling.
    const rect = this.sentinel.getBoundingClientRect();
    if (this.next && rect.top < this.scroller.getBoundingClientRect().bottom + 800) this.loadMore();
  }

  append(image) {
    if (this.byId.has(image.id)) return;
    const tile = this.mode === "wall" ? null : this.makeTile(image);
    this.byId.set(image.id, { image, tile });
    this.known_.delete(image.id);
    this.order.push(image.id);
    if (tile) this.grid.append(tile);
    else this.showWall(image, false);
  }

  receive(image) {
    if (this.byId.has(image.id) || this.queued.has(image.id)) return;
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
    if (this.lightboxId === image.id) this.openLightbox(image.id, this.lightboxOrder);
  }

  // An image deleted (here or elsewhere): it leaves the grid, the band, the selection and the lightbox;
  // the collections that held it follow their own `collection.updated` events.
  removeImage(id) {
    if (this.lightboxId === id) this.closeLightbox();
    if (this.selection.has(id)) this.selection.set([...this.selection.ids].filter((other) => other !== id));
    this.pending = this.pending.filter((image) => image.id !== id);
    this.incoming = this.incoming.filter((image) => image.id !== id);
    this.queued.delete(id);
    this.arrived.delete(id);
    const filtered = this.filter.min_rating || this.filter.flag || this.filter.label;
    if (this.byId.has(id)) this.drop(id);
    else if (!filtered) this.total = Math.max(0, this.total - 1);
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
      const recent = batch.slice(-(WALL_STRIP + 1));
      for (const image of batch) this.queued.delete(image.id);
      for (const image of recent) {
        this.byId.set(image.id, { image, tile: null });
        this.order.unshift(image.id);
        this.showWall(image, true, image === recent[recent.length - 1]);
      }
    } else if (this.mode === "collection") {
      this.addFresh(batch.reverse());
    } else if (this.scroller.scrollTop > AT_TOP_PX || this.lightboxId) {
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

  prependAll(images, animate) {
    this.grid.prepend(this.makeTiles(images, animate));
    this.order.unshift(...images.map((image) => image.id));
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
      // Band tiles have their final size at once (no content-visibility), so one correction is exact.
      const want = scroll + this.gridOffset() - before;
      this.scroller.scrollTop = want;
      this.lastScroll = { actual: this.scroller.scrollTop, want };
      this.unseen = (this.unseen || 0) + images.length;
      this.showPill(this.unseen);
    }
  }

  keepingView() {
    return this.scroller.scrollTop > AT_TOP_PX || this.selection.size > 0 || Boolean(this.lightboxId);
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
    else this.scroller.scrollTo({ top: 0, behavior: "smooth" });
    this.unseen = 0;
    this.showPill(0);
  }

  flushPending(scrollTop) {
    const batch = this.pending; // newest first
    this.pending = [];
    if (this.mode === "collection") this.addFresh(batch);
    else this.prependAll(batch, !scrollTop && batch.length <= 24);
    this.showPill(0);
    if (scrollTop) this.scroller.scrollTo({ top: 0, behavior: "smooth" });
  }

  onScroll() {
    if (this.scroller.scrollTop > AT_TOP_PX || this.lightboxId) return;
    if (this.pending.length) this.flushPending(false);
    if (this.unseen) {
      this.unseen = 0;
      this.showPill(0);
    }
  }

  // -- clicks and keys ---------------------------------------------------------------------

  onTileClick(e) {
    const tile = e.target.closest("[data-image-id]");
    if (!tile) return;
    const id = tile.dataset.imageId;
    if (this.rateFromClick(e, id)) return;
    this.focus(id, false);
    if (this.mode !== "collection") this.openLightbox(id);
    else if (e.target.closest(".ff-check")) this.selection.toggle(id);
    else this.selection.click(id, e);
  }

  focus(id, scroll) {
    this.byId.get(this.focusId)?.tile?.classList.remove("ff-focus");
    this.focusId = id;
    const tile = this.byId.get(id)?.tile;
    if (!tile) return;
    tile.classList.add("ff-focus");
    if (scroll) tile.scrollIntoView({ block: "nearest" });
  }

  // What a rating key applies to: the lightbox's image; a tile of the open collection under the
  // pointer; the pool's selection; the tile moved to with the arrows; the tile under the pointer.
  keyTargets() {
    if (this.lightboxId) return [this.lightboxId];
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
    if (this.lightboxId) {
      if (e.key === "Escape") this.closeLightbox();
      else if (e.key === "ArrowRight") this.step(1);
      else if (e.key === "ArrowLeft") this.step(-1);
      else return;
      e.preventDefault();
      return;
    }
    if (this.mode === "collection") this.onPoolKey(e);
  }

  onPoolKey(e) {
    const ids = this.sequence();
    if (!ids.length) return;
    const at = Math.max(0, ids.indexOf(this.focusId));
    const columns = getComputedStyle(this.grid).gridTemplateColumns.split(" ").length || 1;
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
    if (e.key in moves) {
      const target = ids[Math.min(ids.length - 1, Math.max(0, this.focusId ? at + moves[e.key] : 0))];
      this.focus(target, true);
      if (e.shiftKey) this.selection.range(this.selection.anchor || ids[at], target, true);
    } else if (e.key === " ") {
      if (this.focusId) this.selection.toggle(this.focusId);
    } else if (e.key === "Enter") {
      if (this.focusId) this.openLightbox(this.focusId);
    } else if (e.key === "a" && (e.ctrlKey || e.metaKey)) {
      this.selection.set(ids);
    } else if (e.key === "Escape") {
      this.selection.clear();
    } else {
      return;
    }
    e.preventDefault();
  }

  // -- wall --------------------------------------------------------------------------------

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
    while (this.grid.children.length > WALL_STRIP) {
      const old = this.grid.lastElementChild;
      this.byId.delete(old.dataset.imageId);
      old.remove();
    }
    this.order = this.order.filter((id) => this.byId.has(id)).slice(0, WALL_STRIP + 1);
  }

  // -- live stream -------------------------------------------------------------------------

  setState(state) {
    if (this.badge.dataset.state === state) return;
    this.badge.dataset.state = state;
    this.badge.textContent = { live: "Live", offline: "Offline", connecting: "Connecting" }[state];
    this.badge.title = { live: "Connected: new images appear at once",
      offline: "Connection lost: reconnecting…", connecting: "Connecting…" }[state];
    if (this.model.state !== state) this.model.state = state;
  }

  async run() {
    let attempt = 0;
    while (!this.destroyed) {
      try {
        if (this.cursor === null) await this.loadFirstPage();
        await this.stream(() => { attempt = 0; });
      } catch (err) {
        if (this.destroyed) return;
        if (this.badge.dataset.state === "live") console.warn(`${LOG} connection lost: ${err.message || err}`);
        else console.warn(`${LOG} cannot connect: ${err.message || err}`);
      }
      if (this.destroyed) return;
      this.setState("offline");
      const base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      attempt += 1;
      await sleep(base * (0.75 + Math.random() * 0.5));
    }
  }

  async stream(onOpen) {
    const controller = new AbortController();
    this.controller = controller;
    let watchdog = null;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(new Error("no heartbeat")), OFFLINE_AFTER_MS);
    };
    try {
      arm();
      const query = `heartbeat=${this.model.heartbeat_s}`;
      const resp = await fetch(`${this.api}/api/projects/${encodeURIComponent(this.project)}/events?${query}`, {
        headers: { Accept: "text/event-stream", "Last-Event-ID": String(this.cursor) },
        cache: "no-store",
        signal: controller.signal,
      });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      onOpen();
      if (this.everLive) console.info(`${LOG} connection re-established, resuming after #${this.cursor}`);
      else console.info(`${LOG} connection opened, live after #${this.cursor}`);
      this.everLive = true;
      this.setState("live");
      arm();
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error("the server closed the stream");
        arm();
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          this.handleEvent(block);
        }
      }
    } finally {
      clearTimeout(watchdog);
      controller.abort();
    }
  }

  handleEvent(block) {
    let id = null;
    let kind = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") kind = value;
      else if (field === "data") data.push(value);
    }
    if (data.length) {
      const payload = JSON.parse(data.join("\n"));
      if (kind === "image.created") this.receive(payload);
      else if (kind === "image.updated") this.replaceImage(payload);
      else if (kind === "image.deleted") this.removeImage(payload.image_id);
      else if (kind === "rating.changed") this.applyRating(payload);
      else if (kind.startsWith("collection.") && this.collections) this.collections.onChange(kind, payload);
    }
    if (id !== null && /^\d+$/.test(id)) this.cursor = Math.max(this.cursor, Number(id));
  }

  // -- lightbox ----------------------------------------------------------------------------

  // `order`: the ids to step through (an open collection's); the pool's by default.
  openLightbox(id, order = null) {
    const image = this.known(id);
    if (!image) return;
    if (!this.lightbox) this.buildLightbox();
    this.lightboxId = id;
    this.lightboxOrder = order;
    const lb = this.lightbox;
    lb.root.hidden = false;
    lb.root.dataset.imageId = id;
    lb.img.classList.remove("ff-loaded");
    lb.img.onload = () => lb.img.classList.add("ff-loaded");
    lb.img.src = this.url(image.preview_url);
    lb.img.alt = image.filename;
    lb.title.textContent = image.filename;
    lb.download.href = this.url(image.url);
    lb.download.setAttribute("download", image.filename);
    const exif = image.exif || {};
    const rows = [
      ["Captured", formatTime(image.captured_at)],
      ["Camera", [image.camera_make, image.camera_model].filter(Boolean).join(" ")],
      ["Lens", exif.lens],
      ["Exposure", exif.exposure_time ? `${exif.exposure_time} s` : null],
      ["Aperture", exif.f_number ? `f/${exif.f_number}` : null],
      ["ISO", exif.iso],
      ["Focal length", exif.focal_length_mm ? `${exif.focal_length_mm} mm` : null],
      ["Size", `${image.width} × ${image.height} · ${formatBytes(image.size_bytes)} · ${image.format}`],
    ];
    lb.meta.replaceChildren(...rows.filter(([, v]) => v).flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: String(v) })]));
    this.showLightboxRating(image);
    const ids = order || this.sequence();
    const index = ids.indexOf(id);
    lb.prev.disabled = index <= 0;
    lb.next.disabled = index >= ids.length - 1 && (order || !this.next);
    if (this.model.selected !== id) this.model.selected = id;
    lb.root.focus();
  }

  showLightboxRating(image) {
    const lb = this.lightbox;
    showRating(lb.rating, image);
    lb.labels.dataset.label = image.label || "none";
    for (const swatch of lb.labels.children) swatch.classList.toggle("ff-on", swatch.dataset.setLabel === image.label);
  }

  buildLightbox() {
    const lb = {};
    lb.img = h("img", { class: "ff-lb-img" });
    lb.title = h("h2", { class: "ff-lb-title" });
    lb.meta = h("dl", { class: "ff-lb-meta", "data-testid": "lightbox-exif" });
    lb.download = h("a", { class: "ff-button", text: "Download original", "data-testid": "download" });
    lb.rating = ratingControl({ rating: 0, flag: "none", label: "none" });
    lb.labels = h("div", { class: "ff-labels", "data-testid": "label" }, ...LABEL_NAMES.map((label) =>
      h("span", { class: `ff-swatch ff-label-${label}`, "data-set-label": label, title: label === "none" ? "No label" : label })));
    const marks = h("div", { class: "ff-lb-marks" }, lb.rating, lb.labels);
    marks.addEventListener("click", (e) => { if (this.lightboxId) this.rateFromClick(e, this.lightboxId); });
    lb.prev = h("button", { class: "ff-lb-nav ff-lb-prev", "aria-label": "Newer", text: "‹", onclick: () => this.step(-1) });
    lb.next = h("button", { class: "ff-lb-nav ff-lb-next", "aria-label": "Older", text: "›", onclick: () => this.step(1) });
    const close = h("button", { class: "ff-lb-close", "aria-label": "Close", text: "×", onclick: () => this.closeLightbox() });
    lb.root = h("div", { class: "ff-lightbox", "data-testid": "lightbox", tabindex: "-1", hidden: "" },
      h("div", { class: "ff-lb-stage" }, lb.img, lb.prev, lb.next),
      h("aside", { class: "ff-lb-side" }, lb.title, marks, lb.meta, lb.download), close);
    lb.root.addEventListener("click", (e) => { if (e.target === lb.root) this.closeLightbox(); });
    this.root.append(lb.root);
    this.lightbox = lb;
  }

  async step(delta) {
    const order = this.lightboxOrder;
    let ids = order || this.sequence();
    const index = ids.indexOf(this.lightboxId);
    if (index < 0) return;
    if (!order && index + delta >= ids.length && this.next) {
      await this.loadMore();
      ids = this.sequence();
    }
    const target = ids[index + delta];
    if (target) this.openLightbox(target, order);
  }

  closeLightbox() {
    if (!this.lightbox) return;
    this.lightbox.root.hidden = true;
    this.lightboxId = null;
    this.lightboxOrder = null;
    if (this.model.selected !== null) this.model.selected = null;
    this.onScroll();
  }

  // -- upload ------------------------------------------------------------------------------

  bindDrop() {
    let depth = 0;
    const hasFiles = (e) => Array.from(e.dataTransfer?.types || []).includes("Files");
    this.root.addEventListener("dragenter", (e) => {
      if (!hasFiles(e)) return;
      depth += 1;
      this.root.classList.add("ff-dragging");
    });
    this.root.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) this.root.classList.remove("ff-dragging");
    });
    this.root.addEventListener("dragover", (e) => { if (hasFiles(e)) e.preventDefault(); });
    this.root.addEventListener("drop", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      this.root.classList.remove("ff-dragging");
      this.upload(Array.from(e.dataTransfer.files));
    });
  }

  pickFiles() {
    this.upload(Array.from(this.fileInput.files));
    this.fileInput.value = "";
  }

  upload(files) {
    for (const file of files) {
      const bar = h("progress", { max: "100", value: "0" });
      const status = h("span", { class: "ff-up-status", text: "waiting" });
      const dismiss = h("button", { class: "ff-up-x", "aria-label": "Dismiss", text: "×", onclick: () => row.remove() });
      const row = h("li", { class: "ff-up", "data-filename": file.name, "data-state": "waiting" },
        h("span", { class: "ff-up-name", text: file.name }), bar, status, dismiss);
      this.uploads.append(row);
      this.uploadQueue.push({ file, row, bar, status });
    }
    this.pumpUploads();
  }

  pumpUploads() {
    while (this.uploadsRunning < UPLOAD_CONCURRENCY && this.uploadQueue.length) {
      const job = this.uploadQueue.shift();
      this.uploadsRunning += 1;
      this.send(job).finally(() => {
        this.uploadsRunning -= 1;
        this.pumpUploads();
      });
    }
  }

  send({ file, row, bar, status }) {
    return new Promise((resolve) => {
      const form = new FormData();
      form.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${this.api}/api/projects/${encodeURIComponent(this.project)}/upload`);
      for (const [name, value] of Object.entries(csrfHeaders(this.api))) xhr.setRequestHeader(name, value);
      row.dataset.state = "uploading";
      status.textContent = "uploading";
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total); };
      const fail = (reason) => {
        row.dataset.state = "error";
        row.setAttribute("data-testid", "upload-error");
        status.textContent = reason;
        status.title = reason;
        console.warn(`${LOG} upload refused ${file.name}: ${reason}`);
        resolve();
      };
      xhr.onerror = () => fail("network error: the server could not be reached");
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
        if (xhr.status === 200 || xhr.status === 201) {
          bar.value = 100;
          row.dataset.state = "done";
          status.textContent = xhr.status === 201 ? "added" : "already in the gallery";
          setTimeout(() => row.remove(), 4000);
          resolve();
        } else {
          fail(body?.errors?.[0]?.reason || body?.error?.message || `HTTP ${xhr.status}`);
        }
      };
      xhr.send(form);
    });
  }

  destroy() {
    this.destroyed = true;
    this.controller?.abort();
    this.observer?.disconnect();
    document.removeEventListener("keydown", this.keyHandler);
  }
}

export function render({ model, el }) {
  const gallery = new LiveGallery(model, el);
  model.on("mode", () => gallery.setMode(model.mode));
  model.on("remove", () => gallery.destroy());
}
