// Favourites per person: the heart on the tiles and in the lightbox, the `H` key, the photographer's
// counts ("♥ 3", who in the title and the lightbox), a guest's "Send my picks" and the photographer's
// notice when someone sent theirs. The browser half of dashboard/http/favorites.py.
//
// Who the page is (`model.person`, dashboard/http/pages.py's `page_person`) decides what it shows: a
// client (a share link's named guest, a client's token) hearts and sends; an editor or owner (the local
// user too, without sign-in) hearts and sees everyone's, live from `favorite.changed`, which the feed
// sends to them only; a viewer sees none of it. A heart is shown at once and sent; the server's refusal
// takes it back, with a toast saying why.

import { LOG, h } from "./dom.js";
import { t } from "./i18n.js";

const RANKS = { viewer: 1, client: 2, editor: 3, owner: 4 }; // dashboard/auth/roles.py's Role
const LOCAL_USER = { name: "local user", role: "owner" }; // no sign-in (dashboard/http/favorites.py's LOCAL_USER)
const KEY = "h";
const NOTICE_MS = 20000; // "Anna sent 24 picks" stays this long: it is the photographer's news

export class Favorites {
  constructor(gallery) {
    this.gallery = gallery;
    const person = gallery.model.person || LOCAL_USER;
    const rank = RANKS[person.role] || 0;
    this.name = person.name; // the name this person's favourites are shown under
    this.shown = gallery.mode !== "wall"; // the wall is a display: no hearts there
    this.mayMark = this.shown && rank >= RANKS.client;
    this.seesEveryone = this.shown && rank >= RANKS.editor; // as the server sends `favorite.changed`
    this.mine = new Set(); // ids this person hearted
    this.everyone = new Map(); // id → Set of names who hearted it (seesEveryone only)
    this.chains = new Map(); // id → the last request about it: one image's requests go in order
    this.early = []; // feed events that came while the list was loading
    this.loaded = false;
    // A client sends their picks to the photographer; editors and owners are the photographer.
    this.sendButton = this.mayMark && !this.seesEveryone
      ? h("button", { class: "ff-button ff-picks", "data-testid": "send-picks", onclick: () => this.send() })
      : null;
    this.showCount();
    if (this.mayMark || this.seesEveryone) this.load();
  }

  // The favourites at hand when the page starts: one's own (a client), or everyone's (the photographer).
  async load() {
    const g = this.gallery;
    try {
      const body = await g.api.fetchJson(g.api.projectPath("/favorites"));
      for (const f of body.favorites) this.note(f.image_id, f.by, true);
    } catch (err) {
      console.warn(`${LOG} loading favourites failed`, err);
    }
    this.loaded = true;
    for (const [kind, payload] of this.early.splice(0)) this.onEvent(kind, payload);
    for (const [id, entry] of g.records.byId) if (entry.tile) this.showTile(entry.tile, id);
    this.showLightbox();
    this.showCount();
  }

  // Image `id` hearted (or not) by `by`, in this page's state.
  note(id, by, favorite) {
    if (by === this.name || !this.seesEveryone) {
      if (favorite) this.mine.add(id);
      else this.mine.delete(id);
    }
    if (!this.seesEveryone) return;
    const names = this.everyone.get(id) || new Set();
    if (favorite) names.add(by);
    else names.delete(by);
    if (names.size) this.everyone.set(id, names);
    else this.everyone.delete(id);
  }

  // -- what the page shows -----------------------------------------------------------------------

  // A grid tile gets its heart (and the photographer's count); `main.js` calls this as it makes one.
  decorate(tile, image) {
    if (!this.mayMark && !this.seesEveryone) return tile;
    const box = h("div", { class: "ff-fav" });
    if (this.mayMark) {
      // Like the tile's select check: for the pointer, out of the Tab order; the keyboard has `H`.
      box.append(h("span", { class: "ff-heart", role: "button", "data-testid": "heart", text: "♥",
        title: t("heart.title"), "aria-label": t("heart.name", { name: image.filename }) }));
    }
    if (this.seesEveryone) box.append(h("span", { class: "ff-hearts", "data-testid": "heart-count" }));
    tile.append(box);
    this.showTile(tile, image.id);
    return tile;
  }

  showTile(tile, id) {
    const heart = tile.querySelector(".ff-heart");
    const on = this.mine.has(id);
    heart?.setAttribute("aria-pressed", String(on));
    tile.classList.toggle("ff-hearted", on);
    const count = tile.querySelector(".ff-hearts");
    if (!count) return;
    const names = this.names(id);
    count.textContent = names.length ? String(names.length) : "";
    count.title = names.join(", ");
    tile.classList.toggle("ff-has-hearts", names.length > 0);
  }

  // Who hearted image `id`, by name (the photographer's view).
  names(id) {
    return [...(this.everyone.get(id) || [])].sort((a, b) => a.localeCompare(b));
  }

  // Everywhere image `id` is shown: its tile and the lightbox.
  show(id) {
    const tile = this.gallery.records.byId.get(id)?.tile;
    if (tile) this.showTile(tile, id);
    if (this.gallery.lightbox.id === id) this.showLightbox();
  }

  // The lightbox's heart and who hearted its image; `lightbox.js` calls it as it builds and opens.
  showLightbox() {
    const lb = this.gallery.lightbox;
    if (!lb.dom || (!this.mayMark && !this.seesEveryone)) return;
    if (!lb.dom.heart) this.buildLightbox(lb.dom);
    const { heart, hearts } = lb.dom;
    const id = lb.id;
    if (heart) heart.setAttribute("aria-pressed", String(this.mine.has(id)));
    if (hearts) {
      const names = this.names(id);
      hearts.textContent = names.length ? t("heart.by", { n: names.length, names: names.join(", ") }) : "";
    }
  }

  buildLightbox(dom) {
    const row = h("div", { class: "ff-lb-fav" });
    if (this.mayMark) {
      dom.heart = h("button", { class: "ff-button ff-lb-heart", "data-testid": "lightbox-heart", "aria-pressed": "false",
        "aria-keyshortcuts": "H", title: t("heart.title"), onclick: () => this.toggle([this.gallery.lightbox.id]) },
      h("span", { class: "ff-heart-glyph", "aria-hidden": "true", text: "♥ " }), t("heart.label"));
      row.append(dom.heart);
    }
    if (this.seesEveryone) {
      dom.hearts = h("span", { class: "ff-lb-hearts", "data-testid": "lightbox-hearts" });
      row.append(dom.hearts);
    }
    dom.rating.closest(".ff-lb-marks").append(row);
  }

  // "Send my picks (N)": N is how many this person hearted.
  showCount() {
    if (!this.sendButton) return;
    const n = this.mine.size;
    this.sendButton.textContent = t("picks.send", { n });
    this.sendButton.disabled = n === 0;
    this.sendButton.title = n ? t("picks.send.title") : t("picks.none");
  }

  // -- what the person does ----------------------------------------------------------------------

  // A click on a tile's heart: true if it was one (main.js then does nothing else with the click).
  fromClick(e, id) {
    if (!this.mayMark || !e.target.closest(".ff-heart")) return false;
    this.toggle([id]);
    return true;
  }

  // The `H` key on what the keys act on (`targets()`: the lightbox's image, the focused tile, the
  // selection): true if it was the key.
  fromKey(e, targets) {
    if (!this.mayMark || e.ctrlKey || e.metaKey || e.altKey || e.key.toLowerCase() !== KEY) return false;
    const ids = targets();
    if (ids.length) this.toggle(ids);
    return true;
  }

  // Heart `ids`, or take the hearts off if all of them have one: shown at once, then sent.
  toggle(ids) {
    const favorite = !ids.every((id) => this.mine.has(id));
    for (const id of ids) if (this.mine.has(id) !== favorite) this.set(id, favorite);
  }

  set(id, favorite) {
    const g = this.gallery;
    this.note(id, this.name, favorite);
    this.show(id);
    this.showCount();
    const path = g.api.projectPath(`/images/${encodeURIComponent(id)}/favorite`);
    const before = this.chains.get(id) || Promise.resolve();
    const chain = before.then(() => g.api.request(favorite ? "PUT" : "DELETE", path)).then(() => {}, (err) => {
      this.note(id, this.name, !favorite);
      this.show(id);
      this.showCount();
      const name = g.records.known(id)?.filename || id;
      g.toast(t(favorite ? "heart.failed" : "heart.unmark_failed", { name, error: err.message }));
    }).finally(() => {
      if (this.chains.get(id) === chain) this.chains.delete(id);
    });
    this.chains.set(id, chain);
  }

  // Send this person's favourites to the photographer, once they confirm: a collection named after them.
  async send() {
    const g = this.gallery;
    const n = this.mine.size;
    if (!n || !window.confirm(t("picks.confirm", { n }))) return;
    this.sendButton.disabled = true;
    try {
      await Promise.all(this.chains.values()); // the hearts still on their way first
      const collection = await g.api.request("POST", g.api.projectPath("/favorites/submit"));
      g.toast(t("picks.sent", { n: collection.image_ids.length }), { ms: 8000 });
    } catch (err) {
      g.toast(t("picks.failed", { error: err.message }));
    } finally {
      this.showCount();
    }
  }

  // -- the feed ----------------------------------------------------------------------------------

  // One change from the feed (main.js passes every one): someone's heart, someone's picks sent, an image gone.
  onEvent(kind, payload) {
    if (kind === "image.deleted") {
      this.mine.delete(payload.image_id);
      this.everyone.delete(payload.image_id);
      this.showCount();
    } else if (kind === "favorite.changed") {
      if (!this.loaded) {
        this.early.push([kind, payload]);
        return;
      }
      // This person's own heart while a request about it is on its way: the request's answer decides.
      if (payload.by === this.name && this.chains.has(payload.image_id)) return;
      this.note(payload.image_id, payload.by, payload.favorite);
      this.show(payload.image_id);
      this.showCount();
    } else if (kind === "favorites.submitted") {
      this.notice(payload);
    }
  }

  // "Anna sent 24 picks", with a button that opens the collection they became.
  notice({ by, count, collection_id: id }) {
    const g = this.gallery;
    if (!g.collections) return; // the wall: no panel to open it in
    g.toast(t("picks.received", { name: by, n: count }), { ms: NOTICE_MS, action: t("picks.open"), testid: "open-picks",
      onAction: () => {
        if (g.mode !== "collection") g.setMode("collection");
        g.collections.openCollection(id);
      } });
  }
}
