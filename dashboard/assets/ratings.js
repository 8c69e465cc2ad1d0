// Ratings, flags and colour labels: the controls on tiles and in the lightbox, and the Lightroom keys.

import { h } from "./dom.js";

const FLAG_KEYS = { p: "pick", x: "reject", u: "none" };
const LABEL_KEYS = { 6: "red", 7: "yellow", 8: "green", 9: "blue" }; // as in Lightroom
export const LABEL_NAMES = ["none", "red", "yellow", "green", "blue", "purple"];

// The rating strip of a tile or the lightbox: 5 stars and the pick / reject flag.
export function ratingControl(image) {
  const stars = [1, 2, 3, 4, 5].map((n) => h("span", { class: "ff-star", "data-star": String(n),
    title: `${n} star${n > 1 ? "s" : ""} (key ${n})`, text: "★" }));
  const pick = h("span", { class: "ff-flag-btn", "data-set-flag": "pick", title: "Pick (P)", text: "⚑" });
  const reject = h("span", { class: "ff-flag-btn", "data-set-flag": "reject", title: "Reject (X)", text: "✕" });
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

