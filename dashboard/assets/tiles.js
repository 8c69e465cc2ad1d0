// The tiles, keyed by image id: a grid tile (the pool, Single mode, the wall's strip) and a tile of an
// open collection. Both carry the image's marks (ratings.js) and are changed in place, never re-made.

import { formatTime, h } from "./dom.js";
import { t } from "./i18n.js";
import { ratingControl } from "./ratings.js";

// `src`: the thumbnail's URL; `selected`, `focused`: as the pool and the keys have it now.
export function gridTile(image, { src, selected, focused }) {
  const img = h("img", { loading: "lazy", decoding: "async", alt: image.filename, draggable: "false" });
  img.addEventListener("load", () => img.classList.add("ff-loaded"), { once: true });
  img.src = src;
  const caption = h("figcaption", {},
    h("span", { class: "ff-name", text: image.filename }),
    h("span", { class: "ff-time", text: formatTime(image.captured_at) }));
  const tile = h("figure", { class: "ff-tile", "data-image-id": image.id,
    "data-selected": String(selected), title: `${image.filename}\n${formatTime(image.captured_at)}` },
    // The check is for a pointer or a finger (the keyboard selects with Space, keys.js): a checkbox a
    // screen reader can read, out of the Tab order, like the tile.
    h("div", { class: "ff-box" }, img), h("span", { class: "ff-check", role: "checkbox", title: t("tile.select"),
      "aria-label": t("tile.select.name", { name: image.filename }), "aria-checked": String(selected) }),
    caption, ratingControl(image));
  tile.dataset.flag = image.flag || "none";
  tile.dataset.label = image.label || "none";
  if (focused) tile.classList.add("ff-focus");
  return tile;
}

// A new version of the image of a grid tile: its picture and name replaced in the same tile.
export function refreshTile(tile, image, src) {
  const img = tile.querySelector("img");
  img.src = src;
  img.alt = image.filename;
  tile.querySelector(".ff-name").textContent = image.filename;
}

// The check of a grid tile shows whether its image is selected.
export function showSelected(tile, on) {
  tile.dataset.selected = String(on);
  tile.querySelector(".ff-check")?.setAttribute("aria-checked", String(on));
}

// A tile of the open collection: dragged to reorder, or moved a place by its buttons or Alt+Arrow keys
// (it takes the keyboard's focus: collection.js), with its cover and remove buttons.
export function collectionTile(image, src) {
  const action = (name, title, text) => h("button", { "data-action": name, title, "aria-label": title, text });
  const tile = h("figure", { class: "ff-ctile", "data-image-id": image.id, draggable: "true", title: image.filename,
    tabindex: "0", "aria-label": image.filename, "aria-keyshortcuts": "Alt+ArrowLeft Alt+ArrowRight Enter Delete" },
    h("div", { class: "ff-box" }, h("img", { src, alt: image.filename,
      loading: "lazy", draggable: "false", class: "ff-loaded" })),
    h("div", { class: "ff-ctile-actions" },
      action("earlier", t("ctile.earlier"), "‹"),
      action("later", t("ctile.later"), "›"),
      action("cover", t("ctile.cover"), "◧"),
      action("remove", t("ctile.remove"), "×")),
    ratingControl(image));
  tile.dataset.flag = image.flag || "none";
  tile.dataset.label = image.label || "none";
  return tile;
}
