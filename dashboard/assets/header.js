// The header: the project's name and image count, the mode switch, the filters, the Upload button, the
// Live badge and the language switch. The wall's header keeps only the name, the count and the badge. On a narrow screen it
// wraps (gallery.css): the name, Upload and the badge stay on the first row, the rest goes below.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { LABEL_NAMES } from "./ratings.js";

// The filters' options: [value, text], in the page's language.
const filterFlags = () => [["", t("filter.flag.any")], ["pick", t("filter.flag.pick")], ["reject", t("filter.flag.reject")],
  ["none", t("filter.flag.none")]];
const filterRatings = () => [["", t("filter.rating.any")],
  ...[1, 2, 3, 4].map((n) => [String(n), t("filter.rating.at_least", { n })]), ["5", t("filter.rating.five")]];

export class Header {
  // `upload`, `badge`, `language`: the uploader's button, the stream's badge and the language switch (i18n.js),
  // shown here; `picks`: a guest's "Send my picks" (favorites.js), if any; `filter`: the filter the selects show first; `onMode(mode)`: a mode picked; `onFilter(name,
  // value)`: a filter picked.
  constructor({ project, mode, upload, badge, picks, language, filter, onMode, onFilter }) {
    const wall = mode === "wall";
    this.selects = {}; // the filters' selects by name (none on the wall)
    this.count = h("span", { class: "ff-count", "data-testid": "image-count", text: "" });
    this.modes = wall ? null : h("div", { class: "ff-modes", "data-testid": "mode", "data-value": mode, role: "tablist" },
      h("button", { "data-mode": "grid", role: "tab", text: t("mode.single"), onclick: () => onMode("grid") }),
      h("button", { "data-mode": "collection", role: "tab", text: t("mode.collection"), onclick: () => onMode("collection") }));
    this.root = h("header", { class: "ff-header" },
      // The page's one heading: the project is what the page is about (the wall hides it from sight only).
      h("h1", { class: "ff-title", text: project }), this.count,
      this.modes, wall ? null : this.filters(onFilter),
      h("span", { class: "ff-spacer" }), wall ? null : picks, wall ? null : upload, badge, language);
    this.showFilter(filter);
    if (this.modes) this.showMode(mode);
  }

  showCount(n, filtered) {
    this.count.textContent = t(filtered ? "header.count.filtered" : "header.count", { n });
  }

  showMode(mode) {
    this.modes.dataset.value = mode;
    for (const tab of this.modes.children) tab.setAttribute("aria-selected", String(tab.dataset.mode === mode));
  }

  // The selects show `filter` (a filter set from Python); picking one calls `onFilter`, this does not.
  showFilter(filter) {
    for (const [name, node] of Object.entries(this.selects)) node.value = filter[name] || "";
  }

  filters(onFilter) {
    const select = (name, testid, options, title) => {
      // A title is no label to every screen reader (axe's label-title-only): the name is said as well.
      const node = h("select", { class: "ff-select", "data-testid": testid, title, "aria-label": title,
        onchange: () => onFilter(name, node.value) });
      for (const [value, text] of options) node.append(h("option", { value, text }));
      this.selects[name] = node;
      return node;
    };
    const labels = [["", t("filter.label.any")], ...LABEL_NAMES.map((l) => [l, t(`label.${l}`)])];
    return h("span", { class: "ff-filters" },
      select("min_rating", "filter-rating", filterRatings(), t("filter.rating.title")),
      select("flag", "filter-flag", filterFlags(), t("filter.flag.title")),
      select("label", "filter-label", labels, t("filter.label.title")));
  }
}
