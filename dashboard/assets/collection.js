// The open collection, in the side panel instead of the cards: its images in its order (dragged to
// reorder), its name (click to rename), its edits (add or remove the selection, cover, duplicate,
// delete) and its exports. Every edit is an intent sent to the API; the order shown is the feed's.

import { h } from "./dom.js";
import { CollectionExport } from "./export.js";
import { t } from "./i18n.js";
import { showMarks } from "./ratings.js";
import { collectionTile } from "./tiles.js";

const UNDO_MS = 8000;
const KEEP_FOCUS_MS = 3000; // a tile moved by the keyboard gets the focus back when its move is shown, if that soon

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

export class OpenCollection {
  // `panel`: the collections panel (curation.js) it is shown in; `body`: the collection as the API gave it.
  constructor(panel, id, body) {
    this.panel = panel;
    this.gallery = panel.gallery;
    this.id = id;
    this.version = body.version; // of the last change shown: the feed's next one is version + 1
    this.ids = []; // its images, in its order
    this.tiles = new Map(); // id → tile
    this.exports = new CollectionExport(this);
    this.build(body);
    this.showOrder(body.image_ids);
  }

  build(card) {
    const back = h("button", { class: "ff-link", "data-testid": "collection-back", text: `‹ ${t("collections.title")}`,
      onclick: () => this.panel.closeCollection() });
    // Renamed by a click, or by Enter or F2 when the keyboard is on it.
    this.nameNode = h("h2", { class: "ff-side-title ff-editable", "data-testid": "collection-title", text: card.name,
      title: t("coll.rename"), tabindex: "0", "aria-keyshortcuts": "Enter F2", onclick: () => this.startRename(),
      onkeydown: (e) => {
        if (e.key !== "Enter" && e.key !== "F2") return;
        e.preventDefault();
        e.stopPropagation();
        this.startRename();
      } });
    this.countNode = h("span", { class: "ff-muted", "data-testid": "collection-count" });
    this.addButton = h("button", { class: "ff-button", "data-testid": "collection-add",
      onclick: () => this.addSelection() });
    const removeSelected = h("button", { class: "ff-button", "data-testid": "collection-remove-selected",
      text: t("coll.remove_selected"), onclick: () => this.removeSelection() });
    // A served page starts the collection's slideshow, a page of its own (slideshow.js).
    const show = `?mode=slideshow&project=${encodeURIComponent(this.gallery.api.project)}&show=collection:${card.id}`;
    const editRow = h("div", { class: "ff-actions" }, this.addButton, removeSelected,
      h("button", { class: "ff-button", "data-testid": "collection-duplicate", text: t("coll.duplicate"),
        onclick: () => this.duplicate() }),
      this.gallery.model.sync_url ? h("a", { class: "ff-button", "data-testid": "collection-slideshow", href: show,
        title: t("slideshow.start.title"), text: t("slideshow.start") }) : null,
      h("button", { class: "ff-button ff-danger", "data-testid": "collection-delete", text: t("coll.delete"),
        onclick: () => this.remove() }));
    this.grid = h("div", { class: "ff-cgrid", "data-testid": "collection-view", "data-collection-id": card.id });
    this.bindGrid();
    this.panel.detail.replaceChildren(back, h("div", { class: "ff-detail-head" }, this.nameNode, this.countNode),
      editRow, this.exports.actions, this.exports.status, this.grid);
    this.updateAddButton();
  }

  updateAddButton() {
    const n = this.gallery.pool.selection.size;
    this.addButton.textContent = t("coll.add_selected", { n });
    this.addButton.disabled = n === 0;
  }

  // Put the tiles in `ids` order, creating only the tiles that are new.
  showOrder(ids) {
    this.ids = [...ids];
    const wanted = new Set(ids);
    for (const [id, tile] of this.tiles) {
      if (!wanted.has(id)) {
        tile.remove();
        this.tiles.delete(id);
      }
    }
    const missing = [];
    let previous = null;
    for (const id of ids) {
      let tile = this.tiles.get(id);
      if (!tile) {
        const image = this.gallery.records.known(id);
        if (!image) {
          missing.push(id);
          continue;
        }
        tile = collectionTile(image, this.gallery.api.url(image.thumbnail_url));
        this.tiles.set(id, tile);
      }
      const expected = previous ? previous.nextSibling : this.grid.firstChild;
      if (expected !== tile) this.grid.insertBefore(tile, expected);
      previous = tile;
    }
    const keep = this.keepFocus;
    if (keep && performance.now() < keep.until && this.tiles.get(keep.id)?.isConnected) {
      const tile = this.tiles.get(keep.id);
      if (this.gallery.root.getRootNode().activeElement !== tile) tile.focus();
    }
    const card = this.panel.cards.get(this.id);
    const n = ids.length;
    this.countNode.textContent = t("images", { n });
    if (card) {
      this.nameNode.textContent = card.name;
      for (const [id, tile] of this.tiles) tile.classList.toggle("ff-cover", id === card.cover_image_id);
    }
    if (missing.length) this.fetchMissing(missing);
  }

  async fetchMissing(ids) {
    const { api, records } = this.gallery;
    await Promise.all(ids.map((id) => api.fetchJson(api.projectPath(`/images/${encodeURIComponent(id)}`))
      .then((image) => records.remember(image)).catch(() => null)));
    const open = this.panel.open; // this collection, or a fresh copy of it (opened again meanwhile)
    if (open && open.id === this.id) open.showOrder(open.ids);
  }

  refreshImage(image) {
    const tile = this.tiles.get(image.id);
    if (tile) showMarks(tile, image);
  }

  bindGrid() {
    let dragged = null;
    this.grid.addEventListener("click", (e) => {
      const tile = e.target.closest("[data-image-id]");
      if (!tile) return;
      const id = tile.dataset.imageId;
      const action = e.target.closest("[data-action]")?.dataset.action;
      if (action === "remove") this.edit({ op: "remove", image_ids: [id] });
      else if (action === "cover") this.edit({ op: "cover", image_id: id });
      else if (action === "earlier" || action === "later") this.moveBy(id, action === "earlier" ? -1 : 1);
      else if (!this.gallery.marks.fromClick(e, id)) this.gallery.lightbox.open(id, this.ids);
    });
    // The keyboard's way to do what the pointer does: Alt+←/→ moves the focused tile a place, Enter opens
    // it, Delete removes it from the collection.
    this.grid.addEventListener("keydown", (e) => {
      const tile = e.target.closest?.(".ff-ctile");
      if (!tile || e.target !== tile) return;
      const id = tile.dataset.imageId;
      if (e.altKey && (e.key === "ArrowLeft" || e.key === "ArrowRight")) this.moveBy(id, e.key === "ArrowLeft" ? -1 : 1);
      else if (e.key === "Enter" && !e.altKey) this.gallery.lightbox.open(id, this.ids);
      else if (e.key === "Delete") this.edit({ op: "remove", image_ids: [id] });
      else if (!e.altKey && (e.key === "ArrowLeft" || e.key === "ArrowRight")) this.focusTile(this.ids[this.ids.indexOf(id) + (e.key === "ArrowLeft" ? -1 : 1)]);
      else return;
      e.preventDefault();
      e.stopPropagation();
    });
    this.grid.addEventListener("dragstart", (e) => {
      const tile = e.target.closest("[data-image-id]");
      if (!tile) return;
      dragged = tile.dataset.imageId;
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", dragged);
      tile.classList.add("ff-dragged");
    });
    this.grid.addEventListener("dragend", (e) => {
      e.target.closest("[data-image-id]")?.classList.remove("ff-dragged");
      dragged = null;
    });
    this.grid.addEventListener("dragover", (e) => {
      if (dragged) e.preventDefault();
    });
    this.grid.addEventListener("drop", (e) => {
      e.preventDefault();
      const target = e.target.closest("[data-image-id]");
      if (!dragged || !target || target.dataset.imageId === dragged) return;
      // Dropped on a tile's right half: after it, i.e. before the one that follows it.
      const rect = target.getBoundingClientRect();
      const after = e.clientX > rect.left + rect.width / 2;
      const ids = this.ids.filter((id) => id !== dragged);
      const index = ids.indexOf(target.dataset.imageId) + (after ? 1 : 0);
      const before = ids[index];
      this.edit(before ? { op: "move", image_ids: [dragged], before } : { op: "move", image_ids: [dragged] });
    });
  }

  // Image `id` one place earlier (`delta` -1) or later (+1): the same `move` the drag sends. The tile
  // keeps the keyboard's focus when the new order comes back (`showOrder` moves the node).
  moveBy(id, delta) {
    const at = this.ids.indexOf(id);
    const to = at + delta;
    if (at < 0 || to < 0 || to >= this.ids.length) return;
    const rest = this.ids.filter((other) => other !== id);
    const before = rest[to];
    this.keepFocus = { id, until: performance.now() + KEEP_FOCUS_MS };
    this.edit(before ? { op: "move", image_ids: [id], before } : { op: "move", image_ids: [id] });
  }

  focusTile(id) {
    this.tiles.get(id)?.focus();
  }

  // One `collection.*` change of this collection from the feed, applied once and in order.
  apply(data) {
    if (data.deleted) {
      this.panel.closeCollection();
      return;
    }
    if (data.version === this.version + 1) {
      this.version = data.version;
      this.showOrder(applyCollectionChange(this.ids, data));
    } else if (data.version > this.version) {
      this.panel.openCollection(this.id); // missed a change (cannot happen on one ordered stream, but cheap to mend)
    }
  }

  // -- intents --------------------------------------------------------------------------------

  async edit(change) {
    if (this.panel.open?.id !== this.id) return; // closed meanwhile
    try {
      this.panel.adopt(await this.gallery.api.request("PATCH", this.panel.path(`/${encodeURIComponent(this.id)}`), change));
    } catch (err) {
      this.gallery.toast(t("coll.edit_failed", { op: change.op, error: err.message }));
    }
  }

  addSelection() {
    const ids = this.gallery.pool.selection.ordered();
    if (ids.length) this.edit({ op: "add", image_ids: ids });
  }

  removeSelection() {
    const ids = this.gallery.pool.selection.ordered().filter((id) => this.ids.includes(id));
    if (ids.length) this.edit({ op: "remove", image_ids: ids });
    else this.gallery.toast(t("coll.none_selected"));
  }

  startRename() {
    const card = this.panel.cards.get(this.id);
    const input = h("input", { class: "ff-input", "data-testid": "collection-rename", value: card.name,
      "aria-label": t("coll.name") });
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
    const { api } = this.gallery;
    try {
      const copy = await api.request("POST", this.panel.path(`/${encodeURIComponent(this.id)}/duplicate`), {});
      this.panel.adopt(copy);
      this.gallery.toast(t("coll.duplicated", { name: copy.name }));
    } catch (err) {
      this.gallery.toast(t("coll.duplicate_failed", { error: err.message }));
    }
  }

  async remove() {
    const { api } = this.gallery;
    const panel = this.panel;
    const id = this.id;
    const name = panel.cards.get(id)?.name;
    try {
      panel.adopt(await api.request("DELETE", panel.path(`/${encodeURIComponent(id)}`)));
    } catch (err) {
      this.gallery.toast(t("coll.delete_failed", { error: err.message }));
      return;
    }
    panel.closeCollection();
    this.gallery.toast(t("coll.deleted", { name }), {
      action: t("coll.undo"),
      onAction: async () => {
        try {
          panel.adopt(await api.request("POST", panel.path(`/${encodeURIComponent(id)}/undelete`)));
        } catch (err) {
          this.gallery.toast(t("coll.undo_failed", { error: err.message }));
        }
      },
      ms: UNDO_MS,
    });
  }
}
