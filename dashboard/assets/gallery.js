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

function formatBytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MB`;
  if (n >= 1 << 10) return `${Math.round(n / (1 << 10))} KB`;
  return `${n} B`;
}

class LiveGallery {
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.api = (model.api_base || "").replace(/\/$/, "");
    this.project = model.project;
    this.mode = model.mode;
    this.byId = new Map(); // id → {image, tile}
    this.order = []; // ids on screen, newest first
    this.pending = []; // arrived while scrolled down, newest first
    this.incoming = []; // arrived since the last frame, oldest first
    this.queued = new Set(); // ids in `pending` or `incoming`
    this.flushScheduled = false;
    this.cursor = null; // last feed sequence seen
    this.next = null; // paging cursor for older images
    this.total = 0; // images in the project, as of the first page plus live arrivals
    this.loadingMore = false;
    this.destroyed = false;
    this.everLive = false;
    this.controller = null;
    this.lightboxId = null;
    this.uploadQueue = [];
    this.uploadsRunning = 0;
    this.build();
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
      h("span", { class: "ff-spacer" }), wall ? null : uploadButton, this.badge);
    this.pill = h("button", { class: "ff-pill", "data-testid": "new-pill", hidden: "",
      onclick: () => this.flushPending(true) });
    this.grid = h("div", { class: "ff-grid" });
    this.sentinel = h("div", { class: "ff-sentinel" });
    this.empty = h("div", { class: "ff-empty", text: wall ? "Waiting for the first image…"
      : "No images yet. Drop files here, upload, or save into the hot folder." });
    this.scroller = h("div", { class: "ff-scroll" }, this.empty, this.grid, this.sentinel);
    this.uploads = h("ul", { class: "ff-uploads", "data-testid": "upload-list" });
    this.dropHint = h("div", { class: "ff-drop", text: "Drop images to upload" });
    if (wall) {
      this.wallMain = h("img", { class: "ff-wall-main", alt: "" });
      this.wallCaption = h("div", { class: "ff-wall-caption" });
      this.wallStage = h("div", { class: "ff-wall-stage" }, this.wallMain, this.wallCaption);
      this.root.append(this.header, this.wallStage, this.empty, this.grid);
    } else {
      this.root.append(this.header, this.pill, this.scroller, this.uploads, this.dropHint);
      this.scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
      this.observer = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) this.loadMore();
      }, { root: this.scroller, rootMargin: "800px" });
      this.observer.observe(this.sentinel);
      this.grid.addEventListener("click", (e) => {
        const tile = e.target.closest("[data-image-id]");
        if (tile) this.openLightbox(tile.dataset.imageId);
      });
      this.bindDrop();
    }
    this.keyHandler = (e) => this.onKey(e);
    document.addEventListener("keydown", this.keyHandler);
    this.el.append(this.root);
  }

  makeTile(image) {
    const img = h("img", { loading: "lazy", decoding: "async", alt: image.filename, draggable: "false" });
    img.addEventListener("load", () => img.classList.add("ff-loaded"), { once: true });
    img.src = image.thumbnail_url.startsWith("http") ? image.thumbnail_url : this.api + image.thumbnail_url;
    const caption = h("figcaption", {},
      h("span", { class: "ff-name", text: image.filename }),
      h("span", { class: "ff-time", text: formatTime(image.captured_at) }));
    return h("figure", { class: "ff-tile", "data-image-id": image.id,
      title: `${image.filename}\n${formatTime(image.captured_at)}` }, h("div", { class: "ff-box" }, img), caption);
  }

  url(path) {
    return path.startsWith("http") ? path : this.api + path;
  }

  updateCount() {
    const n = Math.max(this.total, this.order.length + this.pending.length);
    this.countLabel.textContent = `${n.toLocaleString()} image${n === 1 ? "" : "s"}`;
    this.empty.hidden = n > 0;
  }

  // -- data --------------------------------------------------------------------------------

  async fetchJson(path) {
    const resp = await fetch(this.api + path, { cache: "no-store" });
    if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
    return resp.json();
  }

  async loadFirstPage() {
    const page = await this.fetchJson(`/api/projects/${encodeURIComponent(this.project)}/images?limit=${this.model.page_size}`);
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
    try {
      const page = await this.fetchJson(
        `/api/projects/${encodeURIComponent(this.project)}/images?limit=${this.model.page_size}&before=${this.next}`);
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
    this.order.push(image.id);
    if (tile) this.grid.append(tile);
    else this.showWall(image, false);
  }

  receive(image) {
    if (this.byId.has(image.id) || this.queued.has(image.id)) return;
    console.info(`${LOG} image received ${image.id} ${image.filename} #${image.seq}`);
    this.total += 1;
    this.queued.add(image.id);
    this.incoming.push(image);
    // A burst (a card dump, a catch-up after an outage) lands in one DOM update per frame.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      requestAnimationFrame(() => this.flushIncoming());
    }
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
    } else if (this.scroller.scrollTop > AT_TOP_PX || this.lightboxId) {
      for (const image of batch) this.pending.unshift(image); // never move what the user is looking at
      this.showPill();
    } else {
      this.prependAll(batch.reverse(), batch.length <= 24);
    }
    this.updateCount();
  }

  prependAll(images, animate) {
    // `images` newest first; one fragment, so the grid lays out once however many arrived.
    const fragment = document.createDocumentFragment();
    for (const image of images) {
      const tile = this.makeTile(image);
      if (animate) tile.classList.add("ff-new");
      this.byId.set(image.id, { image, tile });
      this.queued.delete(image.id);
      fragment.append(tile);
    }
    this.order.unshift(...images.map((image) => image.id));
    this.grid.prepend(fragment);
  }

  showPill() {
    const n = this.pending.length;
    this.pill.textContent = `↑ ${n} new image${n === 1 ? "" : "s"}`;
    this.pill.hidden = n === 0;
  }

  flushPending(scrollTop) {
    const batch = this.pending; // newest first
    this.pending = [];
    this.prependAll(batch, !scrollTop && batch.length <= 24);
    this.showPill();
    if (scrollTop) this.scroller.scrollTo({ top: 0, behavior: "smooth" });
  }

  onScroll() {
    if (this.pending.length && this.scroller.scrollTop <= AT_TOP_PX && !this.lightboxId) this.flushPending(false);
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
    if (data.length && (kind === "image.created" || kind === "image.updated")) {
      this.receive(JSON.parse(data.join("\n")));
    }
    if (id !== null && /^\d+$/.test(id)) this.cursor = Math.max(this.cursor, Number(id));
  }

  // -- lightbox ----------------------------------------------------------------------------

  openLightbox(id) {
    const entry = this.byId.get(id);
    if (!entry) return;
    const image = entry.image;
    if (!this.lightbox) this.buildLightbox();
    this.lightboxId = id;
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
    const index = this.order.indexOf(id);
    lb.prev.disabled = index <= 0;
    lb.next.disabled = index >= this.order.length - 1 && !this.next;
    if (this.model.selected !== id) this.model.selected = id;
    lb.root.focus();
  }

  buildLightbox() {
    const lb = {};
    lb.img = h("img", { class: "ff-lb-img" });
    lb.title = h("h2", { class: "ff-lb-title" });
    lb.meta = h("dl", { class: "ff-lb-meta", "data-testid": "lightbox-exif" });
    lb.download = h("a", { class: "ff-button", text: "Download original", "data-testid": "download" });
    lb.prev = h("button", { class: "ff-lb-nav ff-lb-prev", "aria-label": "Newer", text: "‹", onclick: () => this.step(-1) });
    lb.next = h("button", { class: "ff-lb-nav ff-lb-next", "aria-label": "Older", text: "›", onclick: () => this.step(1) });
    const close = h("button", { class: "ff-lb-close", "aria-label": "Close", text: "×", onclick: () => this.closeLightbox() });
    lb.root = h("div", { class: "ff-lightbox", "data-testid": "lightbox", tabindex: "-1", hidden: "" },
      h("div", { class: "ff-lb-stage" }, lb.img, lb.prev, lb.next),
      h("aside", { class: "ff-lb-side" }, lb.title, lb.meta, lb.download), close);
    lb.root.addEventListener("click", (e) => { if (e.target === lb.root) this.closeLightbox(); });
    this.root.append(lb.root);
    this.lightbox = lb;
  }

  async step(delta) {
    const index = this.order.indexOf(this.lightboxId);
    if (index < 0) return;
    if (index + delta >= this.order.length && this.next) await this.loadMore();
    const target = this.order[index + delta];
    if (target) this.openLightbox(target);
  }

  closeLightbox() {
    if (!this.lightbox) return;
    this.lightbox.root.hidden = true;
    this.lightboxId = null;
    if (this.model.selected !== null) this.model.selected = null;
    this.onScroll();
  }

  onKey(e) {
    if (!this.lightboxId) return;
    if (e.key === "Escape") this.closeLightbox();
    else if (e.key === "ArrowRight") this.step(1);
    else if (e.key === "ArrowLeft") this.step(-1);
    else return;
    e.preventDefault();
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
  model.on("remove", () => gallery.destroy());
}
