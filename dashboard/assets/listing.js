// What the gallery lists: the filter, the pages of images read from the API (newest first, keyset
// paging), and images entering or leaving the list when their marks change or they are deleted.

import { LOG, h } from "./dom.js";
import { adoptFirstPage, dropPainted, handOver } from "./first.js";
import { MAX_PAGE, RETRY_MS } from "./grid.js";
import { t } from "./i18n.js";

// The filter as the model's params give it (Python's `min_rating`, `flag`, `label`; null or 0: any), in
// the header selects' terms ("" for any). The wall shows every image: it has no filter.
export function filterOf(model) {
  if (model.mode === "wall") return { min_rating: "", flag: "", label: "" };
  return { min_rating: model.min_rating ? String(model.min_rating) : "", flag: model.flag || "", label: model.label || "" };
}

// A filter's value from a header select, as the model's param takes it.
export function paramOf(name, value) {
  if (!value) return null;
  return name === "min_rating" ? Number(value) : value;
}

export class Listing {
  constructor(gallery) {
    this.gallery = gallery;
    this.filter = filterOf(gallery.model);
    this.next = null; // paging cursor for older images
    this.total = 0; // images in the project (that pass the filter), as of the first page plus live arrivals
    this.token = 0; // which listing a page belongs to: a new filter starts another
    this.loadingMore = false;
    this.loadFailedAt = -Infinity; // when loading a page last failed: the next try waits a little
    this.more = h("div", { class: "ff-more", "data-testid": "loading-more", hidden: "", text: t("listing.loading") });
  }

  get filtered() {
    return Boolean(this.filter.min_rating || this.filter.flag || this.filter.label);
  }

  query() {
    const params = new URLSearchParams({ limit: String(this.gallery.model.page_size) });
    for (const [key, value] of Object.entries(this.filter)) if (value) params.set(key, value);
    return params;
  }

  matches(image) {
    const f = this.filter;
    return (!f.min_rating || (image.rating || 0) >= Number(f.min_rating))
      && (!f.flag || (image.flag || "none") === f.flag)
      && (!f.label || (image.label || "none") === f.label);
  }

  // Another filter (`changes`: some of its fields): the listing starts again with it. False if it is the same.
  setFilter(changes) {
    const filter = { ...this.filter, ...changes };
    if (Object.keys(filter).every((key) => filter[key] === this.filter[key])) return false;
    this.filter = filter;
    this.reload();
    return true;
  }

  // A page's image, at the end of what is listed (the wall's, or the grid's unless shown already).
  append(image) {
    const g = this.gallery;
    if (g.wall) g.wall.append(image);
    else if (!g.pool.fresh.includes(image.id)) g.grid.append(image);
  }

  // The first page: the one painted into the page's HTML when it is this (first.js), else the API's.
  async loadFirstPage() {
    const g = this.gallery;
    const query = this.query();
    let page = g.api.base ? null : adoptFirstPage(g.api.project, query.toString());
    try {
      page ||= await g.api.fetchJson(g.api.projectPath(`/images?${query}`));
    } catch (err) {
      dropPainted();
      throw err;
    }
    // The feed position at which this page was read: the stream resumes exactly from there.
    this.total = page.total;
    this.next = page.next;
    for (const image of page.images) this.append(image);
    g.render();
    g.updateCount();
    handOver(g.root, g.scroller, () => g.render());
    console.info(`${LOG} loaded ${page.images.length} image(s) of ${g.api.project} at feed #${page.last_seq}`);
    return page.last_seq;
  }

  canLoadMore() {
    return this.next && !this.loadingMore && performance.now() - this.loadFailedAt >= RETRY_MS;
  }

  // The next page of older images (keyset: `before` the last one loaded), never the whole list. One who
  // outruns the pages (`catchUp`: the end of the list is on screen) is going far: the page grows with
  // what is loaded (an eighth of it, up to the API's largest), so the end of 100,000 images is ~200
  // requests away rather than 1,700.
  async loadMore(catchUp = false) {
    const g = this.gallery;
    if (!this.next || this.loadingMore) return;
    this.loadingMore = true;
    this.more.hidden = false;
    const token = this.token;
    try {
      const query = this.query();
      query.set("before", this.next);
      const grown = Math.max(g.model.page_size, Math.round(g.grid.order.length / 8));
      if (catchUp) query.set("limit", String(Math.min(MAX_PAGE, grown)));
      const page = await g.api.fetchJson(g.api.projectPath(`/images?${query}`));
      if (token !== this.token) return;
      this.next = page.next;
      for (const image of page.images) this.append(image);
      g.updateCount();
    } catch (err) {
      console.warn(`${LOG} loading older images failed`, err);
      this.loadFailedAt = performance.now();
      setTimeout(() => g.render(), RETRY_MS);
    } finally {
      this.loadingMore = false;
      this.more.hidden = true;
    }
    g.render(); // which asks for one more page while the end is still near (tall screens)
  }

  async reload() {
    // Keep the stream and its cursor; only the listing starts again (from the top) with the new filter.
    const g = this.gallery;
    g.records.clear();
    g.grid.clear();
    g.pool.clearBand();
    g.arrivals.clear();
    this.next = null;
    g.scroller.scrollTop = 0;
    g.render();
    const token = (this.token += 1);
    try {
      const page = await g.api.fetchJson(g.api.projectPath(`/images?${this.query()}`));
      if (token !== this.token) return; // a newer filter won
      this.total = page.total;
      this.next = page.next;
      for (const image of page.images) this.append(image);
    } catch (err) {
      g.toast(t("listing.failed", { error: err.message }));
    }
    g.render();
    g.updateCount();
    g.pool.updateSelectNew();
  }

  // An image leaves what is shown (a rating change took it out of the filter, or it was deleted):
  // from the band, or from the grid's list whether or not its tile or record is at hand.
  drop(id) {
    const g = this.gallery;
    const entry = g.records.byId.get(id);
    const listed = g.wall ? g.wall.remove(id) : g.pool.removeFromBand(id, entry) || g.grid.remove(id, entry?.image.seq);
    if (!listed) return false;
    g.records.byId.delete(id);
    this.total = Math.max(0, this.total - 1);
    if (entry) g.records.elsewhere.set(id, entry.image);
    g.render();
    g.updateCount();
    return true;
  }

  // A rating change may make an image not shown enter the filter: fetch it and put it in its place.
  async maybeEnter(id) {
    if (!this.filtered) return;
    const g = this.gallery;
    const image = await g.api.fetchJson(g.api.projectPath(`/images/${encodeURIComponent(id)}`)).catch(() => null);
    if (!image || !this.matches(image) || g.records.byId.has(id) || g.grid.positionOf(id, image.seq) >= 0) return;
    const index = g.grid.bisect(image.seq);
    if (index >= g.grid.order.length && this.next) return; // older than what is loaded: paging brings it
    g.grid.insertAt(index, [image]);
    g.records.list(image);
    this.total += 1;
    g.render();
    g.updateCount();
  }
}
