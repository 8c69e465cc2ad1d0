// Fotoflo curation (Collection mode): the selection pool and saved collections, the browser half of
// dashboard/collections.py. The pool *is* the live gallery's grid, so new images reach it by the one
// keyed, incremental mechanism.
//
// Every edit is an intent sent to the HTTP API; what the page shows comes back through the
// project's change feed (the same SSE stream), so every open window converges on the feed's order.

import { LOG, formatBytes, formatTime, h, sleep } from "./dom.js";
import { ratingControl, showRating } from "./ratings.js";

const UNDO_MS = 8000;
const EXPORT_POLL_MS = 250;

// The order of a collection after one `collection.*` change: a port of
// dashboard.events.apply_collection_change (the server records every op in this resolved form).
function applyCollectionChange(ids, data) {
  const op = data.op;
  if (op === "save" || op === "duplicate" || op === "undelete") return [...data.image_ids];
  if (op === "add") return [...ids.slice(0, data.index), ...data.image_ids, ...ids.slice(data.index)];
  if (op === "remove") {
    const gone = new Set(data.image_ids);
    return ids.filter((id) => !gone.has(id));
  }
  if (op === "move") {
    const moved = new Set(data.image_ids);
    const rest = ids.filter((id) => !moved.has(id));
    return [...rest.slice(0, data.index), ...data.image_ids, ...rest.slice(data.index)];
  }
  return [...ids]; // rename, cover, delete
}

// -- selection ------------------------------------------------------------------------------

// Which pool images are selected: click selects one, Ctrl/Cmd-click toggles, Shift-click selects
// a range, the tile's check toggles (for touch). Keyed by id, so arrivals never disturb it.
export class Selection {
  constructor(gallery) {
    this.gallery = gallery;
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
    const order = this.gallery.sequence();
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
    for (const id of this.ids) if (!next.has(id)) this.gallery.markSelected(id, false);
    for (const id of next) if (!this.ids.has(id)) this.gallery.markSelected(id, true);
    this.ids = next;
    this.anchor = anchor;
    this.gallery.selectionChanged();
  }

  clear() {
    this.set([], null);
  }

  // The selected ids in the order the pool shows them (what a saved collection keeps).
  ordered() {
    const shown = this.gallery.sequence().filter((id) => this.ids.has(id));
    const inPool = new Set(shown);
    const rest = [...this.ids].filter((id) => !inPool.has(id));
    return [...shown, ...rest];
  }
}

// -- collections ------------------------------------------------------------------------------

// The side panel of Collection mode: the save bar's target, the cards of the saved collections and
// the one that is open. Its state is the feed's: cards and the open collection carry the version
// of the last change applied, and a change is applied once, in order; a gap refetches.
export class CollectionsPanel {
  constructor(gallery) {
    this.gallery = gallery;
    this.cards = new Map(); // id → card data (as the API and the feed's events give it)
    this.cardNodes = new Map(); // id → card element
    this.open = null; // {id, version, name, ids, tiles: Map id → tile}
    this.loaded = false;
    this.loading = null;
    this.early = []; // changes that arrived while the list was loading
    this.build();
  }

  api(path = "") {
    return `/api/projects/${encodeURIComponent(this.gallery.project)}/collections${path}`;
  }

  build() {
    this.list = h("div", { class: "ff-cards", "data-testid": "collections" });
    this.emptyList = h("p", { class: "ff-side-empty", text: "No collections yet. Select images in the pool and save them." });
    this.listView = h("div", { class: "ff-side-list" },
      h("h3", { class: "ff-side-title", text: "Collections" }), this.emptyList, this.list);
    this.detail = h("div", { class: "ff-side-detail", hidden: "" });
    this.root = h("aside", { class: "ff-side", "data-testid": "collections-panel" }, this.listView, this.detail);
    this.list.addEventListener("click", (e) => {
      const card = e.target.closest("[data-collection-id]");
      if (card) this.openCollection(card.dataset.collectionId);
    });
  }

  async ensureLoaded() {
    if (this.loaded) return;
    if (!this.loading) this.loading = this.load();
    await this.loading;
  }

  async load() {
    try {
      const page = await this.gallery.fetchJson(this.api());
      for (const card of page.collections) this.upsertCard(card);
      this.loaded = true;
      const early = this.early;
      this.early = [];
      for (const [kind, data] of early) this.onChange(kind, data);
      this.renderEmpty();
    } catch (err) {
      console.warn(`${LOG} loading collections failed`, err);
      this.loading = null;
    }
  }

  // -- cards ----------------------------------------------------------------------------------

  upsertCard(data) {
    const id = data.id || data.collection_id;
    const card = { ...this.cards.get(id), ...data, id };
    this.cards.set(id, card);
    let node = this.cardNodes.get(id);
    if (card.deleted) {
      node?.remove();
      this.cardNodes.delete(id);
      this.renderEmpty();
      return card;
    }
    if (!node) {
      node = h("button", { class: "ff-card", "data-collection-id": id });
      this.cardNodes.set(id, node);
    }
    const cover = card.cover_thumbnail_url
      ? h("img", { src: this.gallery.url(card.cover_thumbnail_url), alt: "", loading: "lazy" })
      : h("span", { class: "ff-card-blank", text: "∅" });
    node.replaceChildren(
      h("span", { class: "ff-card-cover" }, cover),
      h("span", { class: "ff-card-name", "data-testid": "collection-card-name", text: card.name }),
      h("span", { class: "ff-card-meta", "data-testid": "collection-card-count",
        text: `${card.count} image${card.count === 1 ? "" : "s"} · ${formatTime(card.updated_at)}` }));
    node.dataset.count = String(card.count);
    this.placeCard(node, card);
    this.renderEmpty();
    return card;
  }

  placeCard(node, card) {
    // Most recently updated first, as the API lists them.
    const later = [...this.list.children].find((other) => {
      const o = this.cards.get(other.dataset.collectionId);
      return other !== node && o && o.updated_at < card.updated_at;
    });
    if (later) {
      if (node.nextSibling !== later) this.list.insertBefore(node, later);
    } else if (node.parentNode !== this.list || node.nextSibling) {
      this.list.append(node);
    }
  }

  renderEmpty() {
    this.emptyList.hidden = this.cardNodes.size > 0;
  }

  // -- the feed ------------------------------------------------------------------------------

  onChange(kind, data) {
    if (!this.loaded) {
      // While the list loads, keep what it may have missed; before that, the list will be current.
      if (this.loading) this.early.push([kind, data]);
      return;
    }
    const id = data.collection_id;
    const known = this.cards.get(id);
    if (known && data.version <= known.version) return; // already applied (the edit's own answer)
    if (!known && kind !== "collection.saved" && data.op !== "undelete") return; // deleted before we looked
    this.upsertCard({ ...data, id });
    if (kind === "collection.saved" && this.gallery.justSaved === id) this.flash(id);
    if (this.open && this.open.id === id) this.applyToOpen(data);
  }

  flash(id) {
    const node = this.cardNodes.get(id);
    if (!node) return;
    node.classList.remove("ff-flash");
    void node.offsetWidth;
    node.classList.add("ff-flash");
  }

  // -- the open collection ----------------------------------------------------------------------

  async openCollection(id) {
    const body = await this.gallery.fetchJson(this.api(`/${encodeURIComponent(id)}`)).catch((err) => {
      this.gallery.toast(`Cannot open the collection: ${err.message}`);
      return null;
    });
    if (!body) return;
    for (const image of body.images) this.gallery.remember(image);
    this.open = { id, version: body.version, ids: [], tiles: new Map() };
    this.buildDetail(body);
    this.showOrder(body.image_ids);
    this.listView.hidden = true;
    this.detail.hidden = false;
    this.gallery.collectionOpened(id);
  }

  closeCollection() {
    this.open = null;
    this.detail.hidden = true;
    this.detail.replaceChildren();
    this.listView.hidden = false;
    this.gallery.collectionOpened(null);
  }

  buildDetail(card) {
    const back = h("button", { class: "ff-link", "data-testid": "collection-back", text: "‹ Collections",
      onclick: () => this.closeCollection() });
    this.nameNode = h("h3", { class: "ff-side-title ff-editable", "data-testid": "collection-title", text: card.name,
      title: "Click to rename", onclick: () => this.startRename() });
    this.countNode = h("span", { class: "ff-muted", "data-testid": "collection-count" });
    this.addButton = h("button", { class: "ff-button", "data-testid": "collection-add",
      onclick: () => this.addSelection() });
    const removeSelected = h("button", { class: "ff-button", "data-testid": "collection-remove-selected",
      text: "Remove selected", onclick: () => this.removeSelection() });
    this.progress = h("progress", { class: "ff-export-progress", "data-testid": "export-progress", max: "100",
      value: "0", hidden: "" });
    this.progressText = h("span", { class: "ff-muted", "data-testid": "export-status" });
    const exportRow = h("div", { class: "ff-actions" },
      h("button", { class: "ff-button", "data-testid": "collection-copy", text: "Copy names",
        title: "Copy the filenames, to paste into Lightroom or Capture One search", onclick: () => this.copyNames() }),
      h("a", { class: "ff-button", "data-testid": "collection-export-txt", text: ".txt", download: "",
        href: this.gallery.url(this.api(`/${card.id}/export.txt`)), onclick: (e) => this.tokenDownload(e) }),
      h("a", { class: "ff-button", "data-testid": "collection-export-csv", text: "CSV", download: "",
        href: this.gallery.url(this.api(`/${card.id}/export.csv`)), onclick: (e) => this.tokenDownload(e) }),
      h("button", { class: "ff-button", "data-testid": "collection-export-zip", text: "ZIP of originals",
        onclick: () => this.exportZip() }));
    const editRow = h("div", { class: "ff-actions" }, this.addButton, removeSelected,
      h("button", { class: "ff-button", "data-testid": "collection-duplicate", text: "Duplicate",
        onclick: () => this.duplicate() }),
      h("button", { class: "ff-button ff-danger", "data-testid": "collection-delete", text: "Delete",
        onclick: () => this.remove() }));
    this.cgrid = h("div", { class: "ff-cgrid", "data-testid": "collection-view", "data-collection-id": card.id });
    this.bindCollectionGrid();
    this.detail.replaceChildren(back, h("div", { class: "ff-detail-head" }, this.nameNode, this.countNode),
      editRow, exportRow, h("div", { class: "ff-export" }, this.progress, this.progressText), this.cgrid);
    this.updateAddButton();
  }

  updateAddButton() {
    if (!this.addButton) return;
    const n = this.gallery.selection.size;
    this.addButton.textContent = `Add selected (${n})`;
    this.addButton.disabled = n === 0;
  }

  // Put the open collection's tiles in `ids` order, creating only the tiles that are new.
  showOrder(ids) {
    const open = this.open;
    open.ids = [...ids];
    const wanted = new Set(ids);
    for (const [id, tile] of open.tiles) {
      if (!wanted.has(id)) {
        tile.remove();
        open.tiles.delete(id);
      }
    }
    const missing = [];
    let previous = null;
    for (const id of ids) {
      let tile = open.tiles.get(id);
      if (!tile) {
        const image = this.gallery.known(id);
        if (!image) {
          missing.push(id);
          continue;
        }
        tile = this.makeTile(image);
        open.tiles.set(id, tile);
      }
      const expected = previous ? previous.nextSibling : this.cgrid.firstChild;
      if (expected !== tile) this.cgrid.insertBefore(tile, expected);
      previous = tile;
    }
    const card = this.cards.get(open.id);
    const n = ids.length;
    this.countNode.textContent = `${n} image${n === 1 ? "" : "s"}`;
    if (card) {
      this.nameNode.textContent = card.name;
      for (const [id, tile] of open.tiles) tile.classList.toggle("ff-cover", id === card.cover_image_id);
    }
    if (missing.length) this.fetchMissing(open.id, missing);
  }

  async fetchMissing(collectionId, ids) {
    const base = `/api/projects/${encodeURIComponent(this.gallery.project)}/images/`;
    await Promise.all(ids.map((id) => this.gallery.fetchJson(base + encodeURIComponent(id))
      .then((image) => this.gallery.remember(image)).catch(() => null)));
    if (this.open && this.open.id === collectionId) this.showOrder(this.open.ids);
  }

  makeTile(image) {
    const tile = h("figure", { class: "ff-ctile", "data-image-id": image.id, draggable: "true", title: image.filename },
      h("div", { class: "ff-box" }, h("img", { src: this.gallery.url(image.thumbnail_url), alt: image.filename,
        loading: "lazy", draggable: "false", class: "ff-loaded" })),
      h("div", { class: "ff-ctile-actions" },
        h("button", { "data-action": "cover", title: "Use as cover", text: "◧" }),
        h("button", { "data-action": "remove", title: "Remove from this collection", text: "×" })),
      ratingControl(image));
    tile.dataset.flag = image.flag || "none";
    tile.dataset.label = image.label || "none";
    return tile;
  }

  refreshImage(image) {
    const tile = this.open?.tiles.get(image.id);
    if (!tile) return;
    showRating(tile.querySelector(".ff-rate"), image);
    tile.dataset.flag = image.flag;
    tile.dataset.label = image.label;
  }

  bindCollectionGrid() {
    let dragged = null;
    this.cgrid.addEventListener("click", (e) => {
      const tile = e.target.closest("[data-image-id]");
      if (!tile) return;
      const id = tile.dataset.imageId;
      const action = e.target.closest("[data-action]")?.dataset.action;
      if (action === "remove") this.edit({ op: "remove", image_ids: [id] });
      else if (action === "cover") this.edit({ op: "cover", image_id: id });
      else if (!this.gallery.rateFromClick(e, id)) this.gallery.lightbox.open(id, this.open.ids);
    });
    this.cgrid.addEventListener("dragstart", (e) => {
      const tile = e.target.closest("[data-image-id]");
      if (!tile) return;
      dragged = tile.dataset.imageId;
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", dragged);
      tile.classList.add("ff-dragged");
    });
    this.cgrid.addEventListener("dragend", (e) => {
      e.target.closest("[data-image-id]")?.classList.remove("ff-dragged");
      dragged = null;
    });
    this.cgrid.addEventListener("dragover", (e) => {
      if (dragged) e.preventDefault();
    });
    this.cgrid.addEventListener("drop", (e) => {
      e.preventDefault();
      const target = e.target.closest("[data-image-id]");
      if (!dragged || !target || target.dataset.imageId === dragged) return;
      // Dropped on a tile's right half: after it, i.e. before the one that follows it.
      const rect = target.getBoundingClientRect();
      const after = e.clientX > rect.left + rect.width / 2;
      const ids = this.open.ids.filter((id) => id !== dragged);
      const index = ids.indexOf(target.dataset.imageId) + (after ? 1 : 0);
      const before = ids[index];
      this.edit(before ? { op: "move", image_ids: [dragged], before } : { op: "move", image_ids: [dragged] });
    });
  }

  applyToOpen(data) {
    const open = this.open;
    if (data.deleted) {
      this.closeCollection();
      return;
    }
    if (data.version === open.version + 1) {
      open.version = data.version;
      this.showOrder(applyCollectionChange(open.ids, data));
    } else if (data.version > open.version) {
      this.openCollection(open.id); // missed a change (cannot happen on one ordered stream, but cheap to mend)
    }
  }

  // -- intents --------------------------------------------------------------------------------

  async request(method, path, body) {
    const resp = await fetch(this.gallery.url(this.api(path)), {
      method, headers: this.gallery.headers({ "Content-Type": "application/json" }),
      body: body ? JSON.stringify(body) : undefined,
    });
    const answer = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(answer?.error?.message || `HTTP ${resp.status}`);
    return answer;
  }

  // The answer to an edit is the collection after it: show it now rather than wait for the event.
  adopt(collection) {
    const known = this.cards.get(collection.id);
    if (known && known.version >= collection.version) return;
    this.upsertCard(collection);
    if (this.open && this.open.id === collection.id && collection.version > this.open.version) {
      if (collection.deleted) return this.closeCollection();
      this.open.version = collection.version;
      this.showOrder(collection.image_ids);
    }
  }

  async save(name, ids) {
    const collection = await this.request("POST", "", { name, image_ids: ids });
    this.gallery.justSaved = collection.id;
    await this.ensureLoaded();
    this.adopt(collection);
    this.flash(collection.id);
    return collection;
  }

  async edit(change) {
    if (!this.open) return;
    try {
      this.adopt(await this.request("PATCH", `/${encodeURIComponent(this.open.id)}`, change));
    } catch (err) {
      this.gallery.toast(`Could not ${change.op}: ${err.message}`);
    }
  }

  addSelection() {
    const ids = this.gallery.selection.ordered();
    if (ids.length) this.edit({ op: "add", image_ids: ids });
  }

  removeSelection() {
    const ids = this.gallery.selection.ordered().filter((id) => this.open?.ids.includes(id));
    if (ids.length) this.edit({ op: "remove", image_ids: ids });
    else this.gallery.toast("None of the selected images is in this collection");
  }

  startRename() {
    const card = this.cards.get(this.open.id);
    const input = h("input", { class: "ff-input", "data-testid": "collection-rename", value: card.name,
      "aria-label": "Collection name" });
    let done = false;
    const finish = async (keep) => {
      if (done) return;
      done = true;
      input.replaceWith(this.nameNode);
      const name = input.value.trim();
      if (keep && name && name !== card.name) await this.edit({ op: "rename", name });
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") finish(true);
      else if (e.key === "Escape") finish(false);
      e.stopPropagation();
    });
    input.addEventListener("blur", () => finish(true));
    this.nameNode.replaceWith(input);
    input.focus();
    input.select();
  }

  async duplicate() {
    try {
      const copy = await this.request("POST", `/${encodeURIComponent(this.open.id)}/duplicate`, {});
      this.adopt(copy);
      this.gallery.toast(`Duplicated as “${copy.name}”`);
    } catch (err) {
      this.gallery.toast(`Could not duplicate: ${err.message}`);
    }
  }

  async remove() {
    const id = this.open.id;
    const name = this.cards.get(id)?.name;
    try {
      this.adopt(await this.request("DELETE", `/${encodeURIComponent(id)}`));
    } catch (err) {
      this.gallery.toast(`Could not delete: ${err.message}`);
      return;
    }
    this.closeCollection();
    this.gallery.toast(`Deleted “${name}”`, {
      action: "Undo",
      onAction: async () => {
        try {
          this.adopt(await this.request("POST", `/${encodeURIComponent(id)}/undelete`));
        } catch (err) {
          this.gallery.toast(`Could not undo: ${err.message}`);
        }
      },
      ms: UNDO_MS,
    });
  }

  // -- export ---------------------------------------------------------------------------------

  async copyNames() {
    try {
      const resp = await fetch(this.gallery.url(this.api(`/${encodeURIComponent(this.open.id)}/export.txt`)),
        { headers: this.gallery.headers() });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const text = await resp.text();
      await copyText(text);
      const n = text.split("\n").filter(Boolean).length;
      this.gallery.toast(`Copied ${n} filename${n === 1 ? "" : "s"}`);
    } catch (err) {
      this.gallery.toast(`Could not copy: ${err.message}`);
    }
  }

  // The notebook's server needs its token, which a link cannot send: the page fetches the file instead.
  tokenDownload(event) {
    if (!this.gallery.model.api_token) return;
    event.preventDefault();
    this.gallery.download(event.currentTarget.href)
      .catch((err) => this.gallery.toast(`Could not export: ${err.message}`));
  }

  // The browser's own download streams the ZIP to disk (no copy in page memory); the page follows
  // the bytes the server has sent through a progress token.
  async exportZip() {
    const id = this.open.id;
    const token = crypto.getRandomValues(new Uint32Array(4)).reduce((s, n) => s + n.toString(36), "");
    const url = this.gallery.url(this.api(`/${encodeURIComponent(id)}/export.zip?progress=${token}`));
    if (this.gallery.model.api_token) {
      this.gallery.download(url).catch((err) => this.gallery.toast(`Could not export: ${err.message}`));
    } else {
      const link = h("a", { href: url, download: "" });
      this.detail.append(link);
      link.click();
      link.remove();
    }
    this.progress.hidden = false;
    this.progress.value = 0;
    this.progressText.textContent = "Preparing ZIP…";
    const path = `/api/projects/${encodeURIComponent(this.gallery.project)}/exports/${token}`;
    for (let waited = 0; waited < 30000 || this.progress.dataset.state === "sending"; waited += EXPORT_POLL_MS) {
      await sleep(EXPORT_POLL_MS);
      const state = await this.gallery.fetchJson(path).catch(() => null);
      if (!state) continue;
      this.progress.dataset.state = state.state;
      const pct = state.size_bytes ? Math.floor((100 * state.bytes_sent) / state.size_bytes) : 100;
      this.progress.value = pct;
      this.progressText.textContent =
        `ZIP ${pct} % · ${formatBytes(state.bytes_sent)} of ${formatBytes(state.size_bytes)}`;
      if (state.state === "done") {
        this.progressText.textContent = `ZIP downloaded · ${state.files} files, ${formatBytes(state.size_bytes)}`;
        return;
      }
      if (state.state === "aborted") {
        this.progressText.textContent = "ZIP download stopped before the end";
        return;
      }
    }
    this.progressText.textContent = "The ZIP download did not start";
  }
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on a studio network is not a secure context: the old way still works there.
  const area = h("textarea", { style: "position:fixed;opacity:0" });
  area.value = text;
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("the browser refused to copy");
}

// -- the pool -----------------------------------------------------------------------------------

// Collection mode's side of the gallery, installed on it (`mixin` in main.js): the selection bar,
// the band of arrivals joining the grid, and the pool's keys.
export class Pool {
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
      if (this.focusId) this.lightbox.open(this.focusId);
    } else if (e.key === "a" && (e.ctrlKey || e.metaKey)) {
      this.selection.set(ids);
    } else if (e.key === "Escape") {
      this.selection.clear();
    } else {
      return;
    }
    e.preventDefault();
  }
}
