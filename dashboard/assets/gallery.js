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
// The grid keeps in its DOM only the tiles near the viewport (see "the windowed grid" below).
const KEEP_BEHIND = 600; // tiles kept above the viewport once shown: the last ten pages, as they were left
const MAKE_AHEAD = 90; // tiles made below it (and at least two screens): scrolling down never meets a gap
const LOAD_AHEAD_PX = 800; // the next page is asked for while the end of the loaded list is this close
const RECORD_MARGIN = 600; // image records kept either side of the DOM's tiles; farther, only id and seq
const MAX_PAGE = 500; // the API's largest page
const RETRY_MS = 2000; // after a page failed to load, the next try

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
    this.ready = this.originReady(); // every API request waits for it (fetchJson, the stream)
    this.ready.then(() => this.run());
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
    this.more = h("div", { class: "ff-more", "data-testid": "loading-more", hidden: "", text: "Loading…" });
    this.empty = h("div", { class: "ff-empty", text: wall ? "Waiting for the first image…"
      : "No images yet. Drop files here, upload, or save into the hot folder." });
    this.freshTitle = h("div", { class: "ff-band-title" });
    this.freshGrid = h("div", { class: "ff-grid ff-fresh-grid" });
    this.freshBand = h("section", { class: "ff-band", "data-testid": "new-band", hidden: "" },
      this.freshTitle, this.freshGrid);
    this.scroller = h("div", { class: "ff-scroll" }, this.empty, this.freshBand, this.grid, this.more);
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
      this.resizer = new ResizeObserver(() => this.onResize());
      this.resizer.observe(this.scroller);
      this.resizer.observe(this.grid);
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
    if (image.id === this.focusId) tile.classList.add("ff-focus");
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

  // Collection mode's band of arrivals joins the main grid (moved, not re-created, where the grid's
  // window reaches; beyond it a tile goes, and its record stays).
  mergeFresh() {
    if (!this.fresh.length) return;
    this.insertAt(0, this.fresh.map((id) => this.byId.get(id).image));
    this.fresh = [];
    this.render();
    for (const tile of [...this.freshGrid.children]) this.unmount(tile);
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
    const n = [...this.arrived].filter((id) => this.byId.has(id) || this.order.indexOf(id) >= 0).length;
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
    this.cursor = page.last_seq;
    this.total = page.total;
    this.next = page.next;
    for (const image of page.images) this.append(image);
    this.render();
    this.updateCount();
    console.info(`${LOG} loaded ${page.images.length} image(s) of ${this.project} at feed #${this.cursor}`);
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
    if (this.scroller.scrollTop > AT_TOP_PX || this.lightboxId) return;
    if (this.pending.length) this.flushPending(false);
    if (this.unseen) {
      this.unseen = 0;
      this.showPill(0);
    }
  }

  // -- the windowed grid -------------------------------------------------------------------
  //
  // The grid's DOM holds only positions [lo, hi) of `order`, whole rows near the viewport; padding above
  // and below stands for the rows that are not there (tiles are square, so a row's height is known), so
  // the scroll height is the whole loaded list's. Far from the viewport an image is only its id and seq:
  // its record is dropped, and fetched again (by keyset, `before` its seq) if the viewport comes back.

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
    const style = getComputedStyle(this.grid);
    const rowGap = parseFloat(style.rowGap) || 0;
    const colGap = parseFloat(style.columnGap) || 0;
    const width = this.grid.clientWidth;
    const tracks = style.gridTemplateColumns.split(" ").filter((t) => t.endsWith("px"));
    let cols = tracks.length;
    let side = parseFloat(tracks[0]);
    if (!cols || !(side > 0)) {
      const min = parseFloat(style.getPropertyValue("--ff-tile-min")) || 200;
      cols = Math.max(1, Math.floor((width + colGap) / (min + colGap)));
      side = Math.max(1, (width - colGap * (cols - 1)) / cols);
    }
    const tile = this.grid.firstElementChild;
    const height = tile ? tile.getBoundingClientRect().height : 0;
    return { cols, pitch: (height || side) + rowGap, width, measured: height > 0 };
  }

  // Bring the DOM in line with the viewport: make the tiles it nears, drop those it left far behind.
  render() {
    if (this.mode === "wall" || this.destroyed) return;
    if (!this.geo || !this.geo.measured) this.geo = this.measure();
    const { cols, pitch } = this.geo;
    const n = this.order.length;
    const screen = this.scroller.clientHeight || 800;
    const top = this.scroller.scrollTop - this.gridOffset();
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
    this.grid.style.paddingTop = `${(lo / cols) * pitch}px`;
    this.grid.style.paddingBottom = `${(rows - Math.ceil(hi / cols)) * pitch}px`;
    if (!this.geo.measured && this.grid.firstElementChild) this.geo = null; // measure a real tile next time
    if (this.byId.size > hi - lo + 2 * RECORD_MARGIN + 2 * MAX_PAGE) this.evict(lo, hi);
    if (this.ghosts.size && !this.refilling) this.refillNear(lo, hi, first * cols);
    const end = rows * pitch - (top + screen);
    if (end < LOAD_AHEAD_PX && this.next && !this.loadingMore && performance.now() - this.loadFailedAt >= RETRY_MS) {
      this.loadMore(end <= 0);
    }
  }

  // The grid's children become the tiles of order[lo:hi], in order; a tile that stays is never moved.
  reconcile(lo, hi) {
    const want = this.order.slice(lo, hi);
    const wanted = new Set(want);
    let cursor = this.grid.firstElementChild;
    for (const id of want) {
      const node = this.byId.get(id)?.tile || this.ghosts.get(id) || this.mount(id);
      while (cursor && cursor !== node && !wanted.has(cursor.dataset.imageId || cursor.dataset.ghostId)) {
        const next = cursor.nextElementSibling;
        this.unmount(cursor);
        cursor = next;
      }
      if (cursor === node) cursor = cursor.nextElementSibling;
      else this.grid.insertBefore(node, cursor); // new here (or from the band of arrivals)
    }
    while (cursor) {
      const next = cursor.nextElementSibling;
      this.unmount(cursor);
      cursor = next;
    }
  }

  // The tile of an image, or a placeholder while its record is fetched again.
  mount(id) {
    const entry = this.byId.get(id);
    if (!entry) {
      const ghost = h("div", { class: "ff-tile ff-ghost", "data-ghost-id": id }, h("div", { class: "ff-box" }));
      this.ghosts.set(id, ghost);
      return ghost;
    }
    entry.tile = this.makeTile(entry.image);
    if (this.animate.has(id)) entry.tile.classList.add("ff-new");
    return entry.tile;
  }

  unmount(node) {
    const id = node.dataset.imageId || node.dataset.ghostId;
    if (node.dataset.ghostId) this.ghosts.delete(id);
    const entry = this.byId.get(id);
    if (entry && entry.tile === node) entry.tile = null;
    // A lazy image that never came near the viewport stays watched by Chromium's lazy loading, and with
    // it its whole tile, long after the tile left: without a source, there is nothing left to watch for.
    const img = node.querySelector("img");
    if (img && !img.complete) img.removeAttribute("src");
    node.remove();
  }

  // Drop the records of images far from the DOM's tiles (the band's, the lightbox's and tiles' stay).
  evict(lo, hi) {
    const open = this.collections?.open;
    for (const [id, entry] of this.byId) {
      if (entry.tile || id === this.lightboxId) continue;
      const at = this.positionOf(id, entry.image.seq);
      if (at < 0 || (at >= lo - RECORD_MARGIN && at < hi + RECORD_MARGIN)) continue;
      this.byId.delete(id);
      if (open?.tiles.has(id)) this.known_.set(id, entry.image); // still shown in the open collection
    }
  }

  // Fetch again the records of placeholders in [lo, hi), those nearest the viewport first.
  refillNear(lo, hi, from) {
    let at = -1;
    for (let p = Math.max(lo, from); p < hi && at < 0; p += 1) if (!this.byId.has(this.order[p])) at = p;
    for (let p = lo; p < Math.min(hi, from) && at < 0; p += 1) if (!this.byId.has(this.order[p])) at = p;
    if (at >= 0) this.refill(at, Math.min(hi, at + MAX_PAGE));
  }

  // One keyset page from position `at` (its seq and older). Records come back to their places; those that
  // did not come back in the range the page covers were deleted or left the filter meanwhile.
  refill(at, end) {
    const token = this.listing;
    const fromSeq = this.seqs[at];
    const query = this.query();
    query.set("before", String(fromSeq + 1));
    query.set("limit", String(Math.max(1, Math.min(MAX_PAGE, end - at))));
    const path = `/api/projects/${encodeURIComponent(this.project)}/images?${query}`;
    this.refilling = this.fetchJson(path).then((page) => {
      if (token !== this.listing) return;
      for (const image of page.images) {
        const pos = this.positionOf(image.id, image.seq);
        if (pos < 0) continue;
        const entry = this.byId.get(image.id);
        if (entry) {
          entry.image = image;
          continue;
        }
        this.byId.set(image.id, { image, tile: null });
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
        if (!this.byId.has(this.order[p])) gone.push(this.order[p]);
      }
      for (const id of gone) this.drop(id);
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
    for (let tries = 0; tries < 3 && at >= 0 && at < this.order.length && !this.byId.has(this.order[at]); tries += 1) {
      await (this.refilling || this.refill(at, Math.min(this.order.length, at + this.model.page_size)));
    }
  }

  // Scroll just enough to bring position `at` of `order` into view, its tile made at once.
  reveal(at) {
    if (at < 0 || this.mode === "wall") return;
    if (!this.geo) this.geo = this.measure();
    const { cols, pitch } = this.geo;
    const rowTop = this.gridOffset() + Math.floor(at / cols) * pitch;
    const s = this.scroller;
    if (rowTop < s.scrollTop) s.scrollTop = rowTop;
    else if (rowTop + pitch > s.scrollTop + s.clientHeight) s.scrollTop = rowTop + pitch - s.clientHeight;
    this.render();
  }

  // A new width (window, side panel, scroll bar) changes the columns: the first image in view stays there.
  onResize() {
    if (this.mode === "wall") return;
    const old = this.geo;
    if (old && old.width === this.grid.clientWidth && this.screen === this.scroller.clientHeight) return;
    this.screen = this.scroller.clientHeight;
    const top = this.scroller.scrollTop - this.gridOffset();
    this.geo = this.measure();
    if (old && top > 0 && old.cols !== this.geo.cols) {
      const row = Math.floor(top / old.pitch);
      const within = (top - row * old.pitch) / old.pitch;
      const at = row * old.cols;
      this.render(); // padding for the new column count first: the scroll height must allow the new offset
      this.scroller.scrollTop = this.gridOffset() + (Math.floor(at / this.geo.cols) + within) * this.geo.pitch;
    }
    this.render();
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
    if (scroll && !this.byId.get(id)?.tile) this.reveal(this.positionOf(id, this.known(id)?.seq));
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
        headers: this.headers({ Accept: "text/event-stream", "Last-Event-ID": String(this.cursor) }),
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
    if (target && !order && !this.known(target)) await this.recordAt(index + delta - this.fresh.length);
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
      for (const [name, value] of Object.entries(this.headers())) xhr.setRequestHeader(name, value);
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
    this.resizer?.disconnect();
    document.removeEventListener("keydown", this.keyHandler);
  }
}

export function render({ model, el }) {
  const gallery = new LiveGallery(model, el);
  model.on("mode", () => gallery.setMode(model.mode));
  model.on("remove", () => gallery.destroy());
}
