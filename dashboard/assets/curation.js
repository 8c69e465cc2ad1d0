// Fotoflo curation (Collection mode): the side panel of saved collections, the browser half of
// dashboard/collections.py: the cards of the saved collections, or the one that is open (collection.js).
// Beside it, the pool (pool.js) is the live gallery's grid, so new images reach it by the one keyed,
// incremental mechanism.
//
// Every edit is an intent sent to the HTTP API; what the page shows comes back through the
// project's change feed (the same SSE stream), so every open window converges on the feed's order.

import { OpenCollection } from "./collection.js";
import { LOG, formatTime, h } from "./dom.js";
import { t } from "./i18n.js";

// The side panel of Collection mode: the save bar's target, the cards of the saved collections and
// the one that is open. Its state is the feed's: cards and the open collection carry the version
// of the last change applied, and a change is applied once, in order; a gap refetches.
export class CollectionsPanel {
  constructor(gallery) {
    this.gallery = gallery;
    this.cards = new Map(); // id → card data (as the API and the feed's events give it)
    this.cardNodes = new Map(); // id → card element
    this.open = null; // the OpenCollection shown instead of the cards, if any
    this.loaded = false;
    this.loading = null;
    this.early = []; // changes that arrived while the list was loading
    this.justSaved = null; // the collection this page saved last: its `collection.saved` flashes its card
    this.build();
  }

  // The API path of this project's collections, `rest` appended.
  path(rest = "") {
    return this.gallery.api.projectPath(`/collections${rest}`);
  }

  build() {
    this.list = h("div", { class: "ff-cards", "data-testid": "collections" });
    this.emptyList = h("p", { class: "ff-side-empty", text: t("collections.empty") });
    this.listView = h("div", { class: "ff-side-list" },
      h("h2", { class: "ff-side-title", text: t("collections.title") }), this.emptyList, this.list);
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
      const page = await this.gallery.api.fetchJson(this.path());
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
      ? h("img", { src: this.gallery.api.url(card.cover_thumbnail_url), alt: "", loading: "lazy" })
      : h("span", { class: "ff-card-blank", text: "∅" });
    node.replaceChildren(
      h("span", { class: "ff-card-cover" }, cover),
      h("span", { class: "ff-card-name", "data-testid": "collection-card-name", text: card.name }),
      h("span", { class: "ff-card-meta", "data-testid": "collection-card-count",
        text: `${t("images", { n: card.count })} · ${formatTime(card.updated_at)}` }));
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
    if (kind === "collection.saved" && this.justSaved === id) this.flash(id);
    if (this.open && this.open.id === id) this.open.apply(data);
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
    const g = this.gallery;
    const body = await g.api.fetchJson(this.path(`/${encodeURIComponent(id)}`)).catch((err) => {
      g.toast(t("collections.open_failed", { error: err.message }));
      return null;
    });
    if (!body) return;
    for (const image of body.images) g.records.remember(image);
    const hadFocus = this.hasFocus(); // the keyboard was on a card: it goes on to the open collection
    this.open = new OpenCollection(this, id, body);
    this.listView.hidden = true;
    this.detail.hidden = false;
    if (hadFocus) this.detail.querySelector("[data-testid=collection-back]")?.focus();
    this.opened(id);
  }

  closeCollection() {
    const id = this.open?.id;
    const hadFocus = this.hasFocus();
    this.open = null;
    this.detail.hidden = true;
    this.detail.replaceChildren();
    this.listView.hidden = false;
    if (hadFocus) this.cardNodes.get(id)?.focus();
    this.opened(null);
  }

  hasFocus() {
    const active = this.gallery.root.getRootNode().activeElement;
    return Boolean(active && this.root.contains(active));
  }

  opened(id) {
    if (this.gallery.model.collection !== id) this.gallery.model.collection = id;
  }

  updateAddButton() {
    this.open?.updateAddButton();
  }

  refreshImage(image) {
    this.open?.refreshImage(image);
  }

  // The answer to an edit is the collection after it: show it now rather than wait for the event.
  adopt(collection) {
    const known = this.cards.get(collection.id);
    if (known && known.version >= collection.version) return;
    this.upsertCard(collection);
    const open = this.open;
    if (open && open.id === collection.id && collection.version > open.version) {
      if (collection.deleted) return this.closeCollection();
      open.version = collection.version;
      open.showOrder(collection.image_ids);
    }
  }

  async save(name, ids) {
    const collection = await this.gallery.api.request("POST", this.path(), { name, image_ids: ids });
    this.justSaved = collection.id;
    await this.ensureLoaded();
    this.adopt(collection);
    this.flash(collection.id);
    return collection;
  }
}
