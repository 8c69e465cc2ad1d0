// The slideshow (`/?mode=slideshow`, dashboard/slideshow.py): one image at a time, full screen, at a pace,
// through the whole project (oldest first), a collection (in its order) or a person's favourites, round
// and round. Its images come through the API and the project's event stream (api.js, stream.js), as the
// gallery's do, so a share link's guest sees what the link grants and nothing more.
//
// New arrivals are shown next, one after each slide of the show's own (the rule: showorder.js). In a
// project show an arrival is a new image; in a collection show, an image added to the collection; in a
// favourites show, a new favourite of that person.
//
// The next slide's picture is loaded and decoded before it is shown (no flash, no jump), over two
// stacked layers, each the whole stage with `object-fit: contain`; they cross-fade unless the viewer
// asks for reduced motion.

import { Api } from "./api.js";
import { LOG, h } from "./dom.js";
import { setLanguage, t } from "./i18n.js";
import { ShowOrder } from "./showorder.js";
import { Stream } from "./stream.js";

// The paces `+` (faster) and `-` (slower) step through, seconds per image.
const PACES_S = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600];
const MIN_PACE_S = 1;
const MAX_PACE_S = 3600;
// The status and controls go after this long without a key, a touch or the mouse moving.
const IDLE_MS = 3000;
const FADE_MS = 800; // gallery: slideshow.css's crossfade
const PAGE = 500; // images a listing request asks for (the API's most)

// Keys by what they do: presentation remotes send PageDown/PageUp (or the arrows), and B or `.` to
// blank the screen; Space pauses and resumes.
const KEYS = {
  next: ["ArrowRight", "ArrowDown", "PageDown", "n", "N"],
  previous: ["ArrowLeft", "ArrowUp", "PageUp", "p", "P"],
  first: ["Home"],
  pause: [" ", "Spacebar", "k", "K", "MediaPlayPause"],
  blank: ["b", "B", "."],
  faster: ["+", "="],
  slower: ["-", "_"],
  fullscreen: ["f", "F"],
  leave: ["Escape"],
};
const ACTION_OF = new Map(Object.entries(KEYS).flatMap(([action, keys]) => keys.map((key) => [key, action])));

// Four corners (no font has a full-screen sign every display can show).
const FULLSCREEN_ICON = '<svg width="16" height="16" viewBox="0 0 16 16" aria-hidden="true" fill="none" ' +
  'stroke="currentColor" stroke-width="2"><path d="M1 6V1h5M10 1h5v5M15 10v5h-5M6 15H1v-5"/></svg>';

// What `show` names: ["project"], ["collection", id] or ["favorites", name] (a name of "": the viewer's own).
function parseShow(show) {
  const colon = show.indexOf(":");
  return colon < 0 ? [show, ""] : [show.slice(0, colon), show.slice(colon + 1)];
}

class Slideshow {
  constructor(model, el) {
    this.model = model;
    this.el = el;
    setLanguage(model.lang, model.catalogue);
    document.documentElement.lang = model.lang; // the page is the slideshow's
    this.api = new Api(model);
    [this.kind, this.name] = parseShow(model.source);
    this.order = new ShowOrder(); // the slides, and which comes next
    this.records = new Map(); // id → image, as the API gave it (fetched when first needed otherwise)
    this.paused = false;
    this.blanked = false;
    this.paceS = model.pace_s;
    this.pictures = new Map(); // id → Promise of its decoded picture (or null): the slide shown and the next
    this.presenting = 0; // the latest slide asked for: a slower load of an earlier one is not shown
    this.skipped = 0; // pictures in a row that could not be loaded
    this.timer = null;
    this.idleTimer = null;
    this.front = 0; // the layer shown
    this.build();
    const show = this;
    // The stream reports its state to the model, and a change of it shows the status for a moment.
    const streamModel = {
      get heartbeat_s() { return model.heartbeat_s; },
      get state() { return model.state; },
      set state(value) {
        model.state = value;
        show.root.dataset.live = value;
        show.poke();
      },
    };
    const api = this.api;
    this.stream = new Stream({ model: streamModel, url: () => api.base + api.projectPath("/events"),
      headers: (extra) => api.headers(extra), ready: api.ready, start: () => this.load(),
      onEvent: (kind, payload) => this.onEvent(kind, payload) });
    this.badgeCorner.append(this.stream.badge);
    this.listen();
    this.poke();
    if (model.bad_source) this.say(t("slideshow.bad_show", { show: model.bad_source }));
    else this.stream.run();
  }

  build() {
    this.layers = [0, 1].map(() => h("img", { class: "ff-show-layer", alt: "", decoding: "async" }));
    this.stage = h("div", { class: "ff-show-stage", "data-testid": "slideshow-stage" }, ...this.layers);
    this.message = h("p", { class: "ff-show-message", "data-testid": "slideshow-message", hidden: "" });
    this.status = h("span", { class: "ff-show-status", "data-testid": "slideshow-status" });
    const button = (action, text, onclick) => h("button", { class: "ff-show-button", type: "button",
      "data-testid": `slideshow-${action}`, text, onclick: (e) => { e.stopPropagation(); onclick(); this.poke(); } });
    this.pauseButton = button("pause", "❚❚", () => this.togglePause());
    this.fullscreenButton = button("fullscreen", "", () => this.toggleFullscreen());
    this.fullscreenButton.innerHTML = FULLSCREEN_ICON;
    const buttons = [
      button("previous", "‹", () => this.back()),
      this.pauseButton,
      button("next", "›", () => this.advance()),
      button("slower", "−", () => this.stepPace(+1)),
      button("faster", "+", () => this.stepPace(-1)),
      this.fullscreenButton,
    ];
    if (!this.model.kiosk) buttons.push(button("leave", "✕", () => this.leave()));
    this.titles = new Map([[buttons[0], "slideshow.previous"], [buttons[2], "slideshow.next"],
      [buttons[3], "slideshow.slower"], [buttons[4], "slideshow.faster"], [buttons[6], "slideshow.leave"]]);
    for (const [node, key] of this.titles) if (node) this.label(node, t(key));
    this.controls = h("div", { class: "ff-show-ui", role: "toolbar", "aria-label": t("slideshow.controls") },
      this.status, h("span", { class: "ff-show-buttons" }, ...buttons));
    this.badgeCorner = h("div", { class: "ff-show-badge" });
    // A share link's QR code in a corner, when the owner's address names the link (`?qr=`, page.py).
    const qr = this.model.wall_qr;
    this.qr = qr ? h("figure", { class: "ff-wall-qr ff-show-qr", "data-testid": "wall-qr" },
      h("img", { src: qr, alt: t("wall.qr.alt") }), h("figcaption", { text: t("wall.qr") })) : null;
    this.heading = h("h1", { class: "ff-sr", text: this.title() });
    document.title = this.title();
    this.root = h("main", { class: "ff-root ff-show", "data-testid": "slideshow", "data-live": "connecting",
      tabindex: "-1" }, this.heading, this.stage, this.message, this.controls, this.badgeCorner, this.qr);
    if (this.model.kiosk) this.root.classList.add("ff-show-kiosk");
    this.el.append(this.root);
    this.showPaused();
    this.showFullscreen();
  }

  label(node, text) {
    node.title = text;
    node.setAttribute("aria-label", text);
  }

  title(name = null) {
    if (this.kind === "collection") return t("slideshow.title.collection", { name: name || this.name });
    if (this.kind === "favorites") {
      return this.name ? t("slideshow.title.favorites", { name: this.name }) : t("slideshow.title.own_favorites");
    }
    return t("slideshow.title.project", { project: this.api.project });
  }

  listen() {
    this.onKey = (e) => this.key(e);
    this.onActivity = () => this.poke();
    this.onFullscreen = () => this.showFullscreen();
    document.addEventListener("keydown", this.onKey);
    document.addEventListener("fullscreenchange", this.onFullscreen);
    for (const kind of ["pointermove", "pointerdown", "wheel"]) this.root.addEventListener(kind, this.onActivity, { passive: true });
    this.stage.addEventListener("dblclick", () => this.toggleFullscreen());
  }

  destroy() {
    this.stream.stop();
    clearTimeout(this.timer);
    clearTimeout(this.idleTimer);
    this.presenting += 1;
    document.removeEventListener("keydown", this.onKey);
    document.removeEventListener("fullscreenchange", this.onFullscreen);
  }

  // ---- what is shown

  // A GET of the API, or an Error carrying the answer's `status`.
  async get(path) {
    await this.api.ready;
    const resp = await fetch(this.api.url(path), { cache: "no-store", headers: this.api.headers() });
    if (!resp.ok) throw Object.assign(new Error(`${path}: HTTP ${resp.status}`), { status: resp.status });
    return resp.json();
  }

  // The show's images, read once before the stream starts from the feed position it returns.
  async load() {
    const path = (rest) => this.api.projectPath(rest);
    // The feed position first: a change made while the rest is read comes again on the stream.
    const first = await this.get(path(`/images?limit=${this.kind === "project" ? PAGE : 1}`));
    let ids = [];
    try {
      if (this.kind === "project") {
        const images = [...first.images];
        for (let next = first.next; next;) {
          const page = await this.get(path(`/images?limit=${PAGE}&before=${encodeURIComponent(next)}`));
          images.push(...page.images);
          next = page.next;
        }
        images.reverse(); // the API lists newest first; a show goes in the order they came
        ids = this.keep(images);
      } else if (this.kind === "collection") {
        ids = await this.readCollection();
      } else if (this.kind === "favorites") {
        ids = await this.readFavorites();
      } else {
        this.say(t("slideshow.bad_show", { show: this.model.source }));
        return first.last_seq;
      }
    } catch (err) {
      if (err.status !== 403 && err.status !== 404 && err.status !== 501) throw err; // else: the stream tries again
      this.say(t("slideshow.unavailable"));
      console.warn(`${LOG} slideshow: ${err.message}`);
      return first.last_seq;
    }
    console.info(`${LOG} slideshow of ${this.model.source}: ${ids.length} images, ${this.paceS} s each`);
    this.order.reorder(ids, false);
    if (ids.length) this.advance();
    else this.showEmpty();
    return first.last_seq;
  }

  keep(images) {
    for (const image of images) this.records.set(image.id, image);
    return images.map((image) => image.id);
  }

  async readCollection() {
    const body = await this.get(this.api.projectPath(`/collections/${encodeURIComponent(this.name)}`));
    if (body.deleted) return [];
    this.keep(body.images || []);
    const title = this.title(body.name);
    this.heading.textContent = title;
    document.title = title;
    return body.image_ids.filter((id) => this.records.has(id));
  }

  async readFavorites() {
    const query = this.name ? `?by=${encodeURIComponent(this.name)}` : "";
    const body = await this.get(this.api.projectPath(`/favorites${query}`));
    return [...new Set(body.favorites.map((favorite) => favorite.image_id))];
  }

  // One change from the project's feed.
  onEvent(kind, payload) {
    if (kind === "image.created" && this.kind === "project") {
      this.records.set(payload.id, payload);
      if (this.order.add(payload.id)) this.arrived(payload.id);
    } else if (kind === "image.updated") {
      if (this.records.has(payload.id)) this.records.set(payload.id, payload);
      if (this.order.current?.id !== payload.id) this.pictures.delete(payload.id);
    } else if (kind === "image.deleted") {
      this.drop(payload.image_id);
    } else if (kind.startsWith("collection.") && this.kind === "collection" && payload.collection_id === this.name) {
      this.followCollection();
    } else if (kind === "favorite.changed" && this.kind === "favorites" && (!this.name || payload.by === this.name)) {
      if (!payload.favorite) {
        if (!this.name) this.followFavorites(); // another person's may still hold it
        else this.drop(payload.image_id);
      } else if (this.order.add(payload.image_id)) {
        this.arrived(payload.image_id);
      }
    }
  }

  // The collection changed: its order is read again; an image added to it is an arrival, one removed goes.
  async followCollection() {
    let fresh;
    try {
      fresh = await this.readCollection();
    } catch (err) {
      fresh = []; // deleted, or out of this link's reach now
    }
    this.reorder(fresh, true);
  }

  async followFavorites() {
    try {
      this.reorder(await this.readFavorites(), false);
    } catch (err) {
      console.warn(`${LOG} slideshow: ${err.message}`);
    }
  }

  // The show's order is now `fresh`: what left it goes, what came is an arrival (with `arrive`).
  reorder(fresh, arrive) {
    const shown = this.order.current;
    const arrivals = new Set(this.order.arrivals);
    for (const id of this.order.reorder(fresh, arrive)) this.pictures.delete(id);
    for (const id of this.order.arrivals) if (!arrivals.has(id)) this.arrived(id);
    if (shown && !this.order.current) this.moveOn();
    else if (!this.order.current && this.order.size) this.advance();
    this.showStatus();
  }

  // A new image waits to be shown next.
  arrived(id) {
    console.info(`${LOG} slideshow: ${id} arrived, ${this.order.arrivals.length} waiting`);
    if (!this.order.current) this.advance();
    else this.preloadNext();
    this.showStatus();
  }

  // An image no longer in the show (deleted, taken out of the collection, no longer a favourite).
  drop(id) {
    if (this.order.drop(id)) this.moveOn();
    this.pictures.delete(id);
    this.showStatus();
  }

  // The slide shown left the show: the next, or the empty show's message.
  moveOn() {
    if (this.order.size) this.advance();
    else this.showEmpty();
  }

  // ---- moving on

  advance() {
    const next = this.order.next();
    if (next) this.present(next);
  }

  back() {
    const slide = this.order.previous();
    if (slide) this.present(slide);
  }

  first() {
    const slide = this.order.first();
    if (slide) this.present(slide);
  }

  async present(slide) {
    const token = ++this.presenting;
    clearTimeout(this.timer);
    const picture = await this.picture(slide.id);
    if (token !== this.presenting) return; // another slide was asked for meanwhile
    if (!picture) {
      // Gone, or not a picture the browser can show: on to the next, unless none can be shown.
      this.skipped += 1;
      this.pictures.delete(slide.id);
      if (this.skipped > this.order.size) this.say(t("slideshow.unavailable"));
      else this.advance();
      return;
    }
    this.skipped = 0;
    const incoming = this.layers[1 - this.front];
    const outgoing = this.layers[this.front];
    incoming.src = picture.src;
    await incoming.decode().catch(() => {});
    if (token !== this.presenting) return;
    // The new picture fades in over the old one, which then goes (gallery: slideshow.css).
    outgoing.classList.replace("ff-front", "ff-behind") || outgoing.classList.add("ff-behind");
    incoming.classList.remove("ff-behind");
    incoming.classList.add("ff-front");
    this.front = 1 - this.front;
    setTimeout(() => { if (!outgoing.classList.contains("ff-front")) outgoing.classList.remove("ff-behind"); }, FADE_MS);
    this.message.hidden = true;
    this.root.dataset.imageId = slide.id;
    this.root.dataset.arrival = String(slide.arrival);
    this.showStatus();
    this.schedule();
    this.preloadNext();
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.paused || !this.order.current) return;
    this.timer = setTimeout(() => this.advance(), this.paceS * 1000);
  }

  // The decoded picture of `id` (its preview), loaded once; null if it cannot be shown.
  picture(id) {
    let picture = this.pictures.get(id);
    if (!picture) {
      picture = this.loadPicture(id, true);
      this.pictures.set(id, picture);
    }
    return picture;
  }

  async loadPicture(id, again) {
    const image = await this.record(id);
    if (!image) return null;
    const picture = new Image();
    picture.src = this.api.url(image.preview_url);
    try {
      await picture.decode();
      return picture;
    } catch (_) {
      if (!again) return null;
      // A file URL is signed for a day, and a show runs longer: once more, with the image's URLs of now.
      this.records.delete(id);
      return this.loadPicture(id, false);
    }
  }

  async record(id) {
    if (!this.records.has(id)) {
      try {
        this.records.set(id, await this.get(this.api.projectPath(`/images/${encodeURIComponent(id)}`)));
      } catch (err) {
        return null;
      }
    }
    return this.records.get(id);
  }

  // Only the slide shown and the next are kept decoded; the next starts loading now.
  preloadNext() {
    const next = this.order.upcoming();
    const keep = new Set([this.order.current?.id, next?.id]);
    for (const id of this.pictures.keys()) if (!keep.has(id)) this.pictures.delete(id);
    if (next) this.picture(next.id);
  }

  // ---- the viewer's controls

  key(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const action = ACTION_OF.get(e.key);
    this.poke();
    if (!action) return;
    // Space and Enter on a focused button press it.
    const target = e.composedPath()[0];
    if (target instanceof HTMLElement && target.closest("button, a, input, select") && e.key === " ") return;
    e.preventDefault();
    if (action === "next") this.advance();
    else if (action === "previous") this.back();
    else if (action === "first") this.first();
    else if (action === "pause") this.togglePause();
    else if (action === "blank") this.toggleBlank();
    else if (action === "faster") this.stepPace(-1);
    else if (action === "slower") this.stepPace(+1);
    else if (action === "fullscreen") this.toggleFullscreen();
    else if (action === "leave") {
      if (document.fullscreenElement) this.toggleFullscreen();
      else if (!this.model.kiosk) this.leave();
    }
  }

  togglePause() {
    this.paused = !this.paused || this.blanked;
    this.blanked = false;
    this.showPaused();
  }

  // A remote's "blank screen" (B, `.`): black and paused, until pressed again.
  toggleBlank() {
    this.blanked = !this.blanked;
    this.paused = this.blanked;
    this.showPaused();
  }

  showPaused() {
    this.root.classList.toggle("ff-show-blanked", this.blanked);
    this.root.dataset.paused = String(this.paused);
    this.pauseButton.textContent = this.paused ? "▶" : "❚❚";
    this.pauseButton.setAttribute("aria-pressed", String(this.paused));
    this.label(this.pauseButton, t(this.paused ? "slideshow.resume" : "slideshow.pause"));
    if (this.paused) clearTimeout(this.timer);
    else this.schedule();
    this.showStatus();
  }

  // A step faster (-1) or slower (+1) along PACES_S; the page's URL keeps it for a reload.
  stepPace(step) {
    const index = PACES_S.findIndex((pace) => pace >= this.paceS);
    const at = index < 0 ? PACES_S.length : index;
    const next = step < 0 ? PACES_S[Math.max(0, at - 1)] : PACES_S[Math.min(PACES_S.length - 1, PACES_S[at] === this.paceS ? at + 1 : at)];
    this.setPace(next);
  }

  setPace(paceS) {
    this.paceS = Math.min(MAX_PACE_S, Math.max(MIN_PACE_S, paceS));
    if (this.model.pace_s !== this.paceS) this.model.pace_s = this.paceS;
    const url = new URL(window.location.href);
    url.searchParams.set("pace", String(this.paceS));
    window.history.replaceState(window.history.state, "", url);
    this.schedule(); // the slide shown stays the new pace from now
    this.showStatus();
  }

  toggleFullscreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen().catch(() => {});
    } else if (document.documentElement.requestFullscreen) {
      document.documentElement.requestFullscreen().catch((err) => console.warn(`${LOG} full screen: ${err.message}`));
    }
  }

  showFullscreen() {
    const on = Boolean(document.fullscreenElement);
    this.fullscreenButton.setAttribute("aria-pressed", String(on));
    this.label(this.fullscreenButton, t(on ? "slideshow.exit_fullscreen" : "slideshow.fullscreen"));
  }

  // Back to the gallery: a collection's show to Collection mode.
  leave() {
    const url = new URL(window.location.pathname, window.location.href);
    url.searchParams.set("project", this.api.project);
    if (this.kind === "collection") url.searchParams.set("mode", "collection");
    window.location.assign(url);
  }

  // ---- the status

  showStatus() {
    const parts = [];
    if (this.paused) parts.push(t("slideshow.paused"));
    const { current, pos, ids, arrivals } = this.order;
    if (current?.arrival) parts.push(t("slideshow.new"));
    else if (current) parts.push(t("slideshow.position", { at: pos + 1, total: ids.length }));
    if (arrivals.length) parts.push(t("slideshow.waiting", { n: arrivals.length }));
    parts.push(t("slideshow.pace", { s: this.paceS }));
    this.status.textContent = parts.join(" · ");
  }

  showEmpty() {
    this.order.current = null;
    for (const layer of this.layers) layer.classList.remove("ff-front", "ff-behind");
    delete this.root.dataset.imageId;
    const key = { collection: "slideshow.empty.collection", favorites: "slideshow.empty.favorites" }[this.kind];
    this.say(t(key || "slideshow.empty.project"));
  }

  say(text) {
    this.message.textContent = text;
    this.message.hidden = false;
    this.showStatus();
  }

  // Something happened: the status and controls show, and go again after a while of nothing.
  poke() {
    this.root.classList.remove("ff-show-idle");
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.root.classList.add("ff-show-idle"), IDLE_MS);
  }
}

export function render({ model, el }) {
  const show = new Slideshow(model, el);
  model.on("pace_s", () => { if (model.pace_s !== show.paceS) show.setPace(model.pace_s); });
  model.on("remove", () => show.destroy());
}
