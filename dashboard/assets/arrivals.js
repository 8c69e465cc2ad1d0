// Live arrivals (`image.created`): a burst lands in one DOM update per frame; where it lands depends on
// the mode (the wall's stage, Collection mode's band, the top of Single mode's grid). What the user
// looks at never moves: while they are scrolled down or in the lightbox, arrivals wait behind the pill.

import { LOG, h } from "./dom.js";
import { t } from "./i18n.js";

const AT_TOP_PX = 12;
// Arrivals are told to a screen reader once a burst is over (this long without another), and at least
// this often while one goes on: "3 new photos", never one announcement per image.
const ANNOUNCE_QUIET_MS = 1000;
const ANNOUNCE_MAX_WAIT_MS = 5000;

export class Arrivals {
  constructor(gallery) {
    this.gallery = gallery;
    this.arrived = new Set(); // ids that arrived live since the page opened
    this.incoming = []; // arrived since the last frame, oldest first
    this.pending = []; // arrived while scrolled down in Single mode, newest first
    this.queued = new Set(); // ids in `pending` or `incoming`
    this.scheduled = false;
    this.unseen = 0; // arrivals in Collection mode's band since the user last looked at the top
    this.pill = h("button", { class: "ff-pill", "data-testid": "new-pill", hidden: "", onclick: () => this.onPill() });
    this.announcer = h("div", { class: "ff-sr", role: "status", "aria-live": "polite", "aria-atomic": "true",
      "data-testid": "announcer" });
    this.unannounced = 0; // arrivals not yet told to the announcer
    this.burstStart = 0; // when the first of them came (performance.now())
    this.announceTimer = null;
  }

  receive(image) {
    const g = this.gallery;
    if (g.records.byId.has(image.id) || this.queued.has(image.id)) return;
    if (g.grid && g.grid.positionOf(image.id, image.seq) >= 0) return; // listed, its record far away
    if (!g.listing.matches(image)) return;
    console.info(`${LOG} image received ${image.id} ${image.filename} #${image.seq}`);
    g.listing.total += 1;
    if (!g.wall) this.arrived.add(image.id); // a wall runs for days: nothing to select there
    this.queued.add(image.id);
    this.incoming.push(image);
    this.announceLater();
    // A burst (a card dump, a catch-up after an outage) lands in one DOM update per frame.
    if (!this.scheduled) {
      this.scheduled = true;
      requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    const g = this.gallery;
    this.scheduled = false;
    const batch = this.incoming; // oldest first, in feed order
    this.incoming = [];
    if (g.wall) {
      this.listed(batch);
      g.wall.flush(batch);
    } else if (g.mode === "collection") {
      this.listed(batch);
      g.pool.addFresh(batch.reverse());
    } else if (this.away()) {
      for (const image of batch) this.pending.unshift(image); // never move what the user is looking at
      this.showPill(this.pending.length);
    } else {
      this.listed(batch);
      g.grid.prepend(batch.reverse(), batch.length <= 24);
    }
    g.updateCount();
    g.pool?.updateSelectNew();
  }

  // One more arrival for the announcer: told when the burst is quiet for a moment, or has gone on a while.
  announceLater() {
    const now = performance.now();
    if (!this.unannounced) this.burstStart = now;
    this.unannounced += 1;
    clearTimeout(this.announceTimer);
    const wait = Math.max(0, Math.min(ANNOUNCE_QUIET_MS, this.burstStart + ANNOUNCE_MAX_WAIT_MS - now));
    this.announceTimer = setTimeout(() => this.announce(), wait);
  }

  announce() {
    const n = this.unannounced;
    this.unannounced = 0;
    this.announceTimer = null;
    if (!n || this.gallery.destroyed) return;
    this.announcer.textContent = t("arrivals.announce", { n });
  }

  // The images of `batch` are handed to what lists them: no longer queued here.
  listed(batch) {
    for (const image of batch) this.queued.delete(image.id);
  }

  // The user looks at something other than the top of the grid: scrolled down, or in the lightbox.
  away() {
    return this.gallery.scroller.scrollTop > AT_TOP_PX || Boolean(this.gallery.lightbox.id);
  }

  showPill(n) {
    this.pill.textContent = `↑ ${t("arrivals.pill", { n })}`;
    this.pill.hidden = n === 0;
  }

  // `n` more arrivals joined the band out of sight (Collection mode): the pill counts them.
  notice(n) {
    this.unseen += n;
    this.showPill(this.unseen);
  }

  onPill() {
    if (this.pending.length) this.flushPending(true);
    else this.scrollToTop();
    this.unseen = 0;
    this.showPill(0);
  }

  flushPending(scrollTop) {
    const g = this.gallery;
    const batch = this.pending; // newest first
    this.pending = [];
    this.listed(batch);
    if (g.mode === "collection") g.pool.addFresh(batch);
    else g.grid.prepend(batch, !scrollTop && batch.length <= 24);
    this.showPill(0);
    if (scrollTop) this.scrollToTop();
  }

  scrollToTop() {
    // Smoothly from nearby; from far down in one jump (gliding past thousands of rows would build each).
    const scroller = this.gallery.scroller;
    const far = scroller.scrollTop > 3 * scroller.clientHeight;
    const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    scroller.scrollTo({ top: 0, behavior: far || still ? "instant" : "smooth" });
  }

  // The grid scrolled or the lightbox closed: back at the top, what waited comes in.
  onScroll() {
    if (this.away()) return;
    if (this.pending.length) this.flushPending(false);
    if (this.unseen) {
      this.unseen = 0;
      this.showPill(0);
    }
  }

  // An image deleted: it no longer arrives.
  forget(id) {
    this.pending = this.pending.filter((image) => image.id !== id);
    this.incoming = this.incoming.filter((image) => image.id !== id);
    this.queued.delete(id);
    this.arrived.delete(id);
  }

  // The listing starts again (a new filter): what waited goes, its images will be in the new pages.
  clear() {
    this.pending = [];
    this.showPill(0);
  }
}
