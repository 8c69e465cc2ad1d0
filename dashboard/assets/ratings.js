// Ratings, flags and colour labels: the controls on tiles and in the lightbox, the Lightroom keys, and
// `Marks`, which sends a change to the server and shows it everywhere the image is.

import { h } from "./dom.js";
import { failure, t } from "./i18n.js";

const FLAG_KEYS = { p: "pick", x: "reject", u: "none" };
const LABEL_KEYS = { 6: "red", 7: "yellow", 8: "green", 9: "blue" }; // as in Lightroom
export const LABEL_NAMES = ["none", "red", "yellow", "green", "blue", "purple"];

// The rating strip of a tile or the lightbox: 5 stars and the pick / reject flag.
export function ratingControl(image) {
  const stars = [1, 2, 3, 4, 5].map((n) => h("span", { class: "ff-star", "data-star": String(n),
    title: t("marks.stars", { n, key: String(n) }), text: "★" }));
  const pick = h("span", { class: "ff-flag-btn", "data-set-flag": "pick", title: t("marks.pick"), text: "⚑" });
  const reject = h("span", { class: "ff-flag-btn", "data-set-flag": "reject", title: t("marks.reject"), text: "✕" });
  const control = h("div", { class: "ff-rate", "data-testid": "rating" }, ...stars, pick, reject);
  showRating(control, image);
  return control;
}

export function showRating(control, image) {
  control.dataset.value = String(image.rating || 0);
  control.dataset.flag = image.flag || "none";
  control.dataset.label = image.label || "none";
  control.querySelectorAll("[data-star]").forEach((star) => {
    star.classList.toggle("ff-on", Number(star.dataset.star) <= (image.rating || 0));
  });
}

// The marks of a tile (grid or collection) changed in place: its control, flag and label.
export function showMarks(tile, image) {
  showRating(tile.querySelector(".ff-rate"), image);
  tile.dataset.flag = image.flag;
  tile.dataset.label = image.label;
}

// What a click on a rating control asks for, or null when the click was elsewhere.
export function ratingIntent(target, image) {
  const star = target.closest("[data-star]");
  if (star) {
    const n = Number(star.dataset.star);
    return { rating: image.rating === n ? 0 : n }; // clicking the current rating clears it
  }
  const flag = target.closest("[data-set-flag]");
  if (flag) return { flag: image.flag === flag.dataset.setFlag ? "none" : flag.dataset.setFlag };
  const label = target.closest("[data-set-label]");
  if (label) return { label: label.dataset.setLabel };
  return null;
}

// The Lightroom keys: 0-5 stars, P pick, X reject, U unflag, 6-9 colour labels.
export function ratingForKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return null;
  const key = e.key.toLowerCase();
  if (/^[0-5]$/.test(key)) return { rating: Number(key) };
  if (FLAG_KEYS[key]) return { flag: FLAG_KEYS[key] };
  if (LABEL_KEYS[key]) return { label: LABEL_KEYS[key] };
  return null;
}

export function typingIn(e) {
  const target = e.composedPath()[0];
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}


// The marks of the gallery's images: a change asked for (a click, a key) is sent to the server and shown
// at once; the feed's `rating.changed` confirms (or corrects) it, here and in every other window.
export class Marks {
  constructor(gallery) {
    this.gallery = gallery;
  }

  // A click on the rating control of image `id` (a tile's, the lightbox's): true if it asked for a change.
  fromClick(e, id) {
    const image = this.gallery.records.known(id);
    const intent = image && ratingIntent(e.target, image);
    if (!intent) return false;
    this.rate([id], intent);
    return true;
  }

  // Ask the server, and show it at once. A selected image scrolled far away has no record here: it is
  // rated all the same.
  rate(ids, fields) {
    const g = this.gallery;
    for (const id of ids) {
      const before = g.records.known(id);
      if (before) this.apply({ image_id: id, ...fields });
      const path = g.api.projectPath(`/images/${encodeURIComponent(id)}/rating`);
      fetch(g.api.base + path, { method: "POST", headers: g.api.headers({ "Content-Type": "application/json" }),
        body: JSON.stringify(fields) }).then(async (resp) => {
        if (resp.ok) return;
        const body = await resp.json().catch(() => ({}));
        if (before) this.apply({ image_id: id, rating: before.rating, flag: before.flag, label: before.label });
        g.toast(t("marks.failed", { name: before?.filename || id, error: failure(body, resp.status) }));
      });
    }
  }

  // New marks of one image (`rating.changed`, or asked for here): its tiles, the lightbox, and the
  // filter, which it may now leave or enter.
  apply(data) {
    const g = this.gallery;
    const id = data.image_id;
    const current = g.records.known(id);
    if (!current) return g.listing.maybeEnter(id);
    const image = { ...current };
    for (const key of ["rating", "flag", "label"]) if (data[key] !== undefined) image[key] = data[key];
    const entry = g.records.byId.get(id);
    if (entry) {
      entry.image = image;
      if (entry.tile) showMarks(entry.tile, image);
    } else {
      g.records.elsewhere.set(id, image);
    }
    g.collections?.refreshImage(image);
    if (g.lightbox.id === id) g.lightbox.showRating(image);
    if (entry && !g.listing.matches(image)) g.listing.drop(id);
  }
}
