"""The gallery's first tiles in the page's HTML, painted before Bokeh and Panel's bundles have run.

Opening `/` costs ~0.7 s of script (2.9 MB of Bokeh and Panel bundles evaluated) before the gallery's
component exists, and the component then asks for its first page. So the HTML of a Single-mode page
carries that page twice: as tiles, in the component's own markup and stylesheet (assets/gallery.css),
laid over the place the component will fill; and as the API's JSON in a data block (not a script), which
the component adopts instead of asking again (assets/first.js). It takes the painted tiles away once its
own are in the same places. The page's bundles are moved after the tiles, so the parser reaches them
(and the browser paints them) while the bundles still load.

What is painted is what the images API would answer the session (`images_page`, the same code): a share
link to one collection paints that collection's images only, and a session that may not view the
project paints nothing. File names are untrusted: every text and attribute is escaped, and the JSON
cannot end its block.
"""

from __future__ import annotations

import html
import json
import logging
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from panel.io.resources import BASE_TEMPLATE

from dashboard import i18n
from dashboard.auth.access import SESSION_COOKIE
from dashboard.auth.roles import Action
from dashboard.events import LABELS
from dashboard.http.images import images_page
from dashboard.store import ImageFilters, UnknownProject

log = logging.getLogger("fotoflo.gallery")

ASSETS = Path(__file__).parent / "assets"
#: The id of the painted tiles' element, and of the JSON block the component adopts (assets/first.js).
FIRST_ID = "ff-first"
FIRST_PAGE_ID = "ff-first-page"
#: Tiles whose pictures are asked for at once, first (4 rows of a wide screen): the page does not know
#: the screen, and the others wait until the browser has laid them out (lazy, as in the component).
EAGER_TILES = 24
_EAGER = 'loading="eager" fetchpriority="high"'
_LAZY = 'loading="lazy" decoding="async"'

_SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<code>.*?)</script>", re.DOTALL)
_SRC = re.compile(r'^ type="text/javascript" src="(?P<src>[^"]+)"$')

# Runs Panel's scripts (`steps`: a URL to load, or code) one after another, once the painted tiles had a
# frame to show in (or after a while: a page opened in a background tab has no frames).
_BOOT = """(() => {
  const steps = JSON.parse(document.getElementById("ff-boot").textContent);
  let started = false;
  const run = (i) => {
    if (i >= steps.length) return;
    const [kind, value] = steps[i];
    const script = document.createElement("script");
    if (kind === "src") {
      script.src = value;
      script.onload = script.onerror = () => run(i + 1);
      document.body.append(script);
    } else {
      script.textContent = value;
      document.body.append(script);
      run(i + 1);
    }
  };
  const start = () => { if (!started) { started = true; run(0); } };
  requestAnimationFrame(() => setTimeout(start));
  setTimeout(start, 250);
})();"""


def _boot_steps(bokeh_js: str, plot_script: str) -> list[tuple[str, str]] | None:
    """Panel's bundles and inline scripts, then Bokeh's embedding script, as `_BOOT`'s steps.

    None when they hold something else than scripts of these two forms and JSON blocks (a newer Panel):
    the page then loads them as Panel writes them.
    """
    steps: list[tuple[str, str]] = []
    for match in _SCRIPT.finditer(bokeh_js + plot_script):
        attrs, code = match.group("attrs"), match.group("code")
        if src := _SRC.match(attrs):
            steps.append(("src", html.unescape(src.group("src"))))
        elif attrs in ("", ' type="text/javascript"'):
            steps.append(("code", code))
        elif not _is_data(attrs):
            return None
    rest = _SCRIPT.sub("", bokeh_js + plot_script).strip()
    return steps if not rest else None


def _boot(bokeh_js: str, plot_script: str) -> Markup:
    """Panel's scripts after the painted tiles, started once they have been painted (see `_BOOT`).

    A script in the page's `<head>` (or anywhere) keeps the parser, and so the first paint, waiting
    for it: 2.9 MB of bundles evaluated take ~0.7 s. Here they are preloaded at once (`_preloads`),
    and run in Panel's order after the first frame; the embedding script runs last, as before.
    """
    steps = _boot_steps(bokeh_js, plot_script)
    if steps is None:
        return Markup(bokeh_js + plot_script)
    data = "".join(m.group(0) for m in _SCRIPT.finditer(bokeh_js + plot_script) if _is_data(m.group("attrs")))
    return Markup(
        f'{data}<script type="application/json" id="ff-boot">{_json_in_html(steps)}</script><script>{_BOOT}</script>'
    )


def _is_data(attrs: str) -> bool:
    """Whether a `<script>` with `attrs` is data (the document's JSON, es-module-shims' options), not code."""
    return 'type="application/json"' in attrs or 'type="esms-options"' in attrs


def _preloads(bokeh_js: str, plot_script: str) -> Markup:
    """`<link rel=preload>` for the bundles `_boot` loads, so they download while the page is parsed."""
    steps = _boot_steps(bokeh_js, plot_script)
    if steps is None:
        return Markup("")
    return Markup(
        "".join(f'<link rel="preload" as="script" href="{_escape(src)}">' for kind, src in steps if kind == "src")
    )


_ENV = jinja2.Environment(autoescape=False)
_ENV.globals.update(ff_boot=_boot, ff_preloads=_preloads)
# Panel's page (panel/_templates/base.html) with the tiles first in <body>, then its scripts (the
# thumbnails are asked for before the bundles).
_TEMPLATE = _ENV.from_string(
    "{% extends ff_base %}{% block js_resources %}{% endblock %}{% block inner_body %}{{ ff_first }}"
    "{{ ff_preloads(bokeh_js or '', plot_script or '') }}{{ self.contents() }}"
    "{{ ff_boot(bokeh_js or '', plot_script or '') }}{% endblock %}"
)

# The component's stylesheet, in the page: its `:host` is the painted tiles' element, fixed over the
# place the component fills (the whole page, see page.py's PAGE_CSS); the pictures show as they load.
_CSS = (ASSETS / "gallery.css").read_text(encoding="utf-8").replace(":host {", f"#{FIRST_ID} {{", 1) + (
    f"\n#{FIRST_ID} {{ position: fixed; inset: 0; z-index: 1000; }}\n"
    f"#{FIRST_ID} .ff-box img {{ opacity: 1; transition: none; }}\n"
)

# The header as header.js makes it (same elements, so the same height): a picture of it, inert. Its
# filters' titles and options, as catalogue keys (dashboard/i18n.py).
_FILTERS = (
    ("filter.rating.title", ["filter.rating.any", *["filter.rating.at_least"] * 4, "filter.rating.five"]),
    ("filter.flag.title", ["filter.flag.any", "filter.flag.pick", "filter.flag.reject", "filter.flag.none"]),
    ("filter.label.title", ["filter.label.any", *(f"label.{name}" for name in ("none", *LABELS))]),
)


def install_first_paint(
    doc: Any, app: Any, cookies: dict[str, str], project: str, page_size: int, lang: str = i18n.DEFAULT
) -> bool:
    """Make `doc`'s page paint the first `page_size` tiles of `project` as this session may see them.

    `cookies` are the session's (the share link or sign-in it came with); `lang` the page's language.
    False, and the page as Panel makes it, when the session may not view the project or the project
    does not exist.
    """
    principal = app.access.page_principal(cookies.get(SESSION_COOKIE))
    if principal is None or not principal.may(Action.VIEW, project):
        return False
    try:
        page = images_page(app, principal, project, None, page_size, ImageFilters(None, None, None))
    except UnknownProject:
        return False
    doc.template = _TEMPLATE
    doc.template_variables.update(ff_base=BASE_TEMPLATE, ff_first=first_paint_html(project, page, page_size, lang))
    return True


def first_paint_html(project: str, page: dict[str, Any], page_size: int, lang: str = i18n.DEFAULT) -> str:
    """The painted tiles of `page` (an images API answer), their stylesheet and the JSON to adopt, in `lang`."""
    e = _escape

    def tr(key: str, **values: Any) -> str:
        return e(i18n.t(lang, key, **values))

    total = int(page.get("total") or len(page["images"]))
    selects = "".join(
        f'<select class="ff-select" title="{tr(title)}" disabled>'
        + "".join(f"<option>{tr(key, n=n)}</option>" for n, key in enumerate(options))
        + "</select>"
        for title, options in _FILTERS
    )
    header = (
        f'<header class="ff-header"><h1 class="ff-title">{e(project)}</h1>'
        f'<span class="ff-count">{tr("header.count", n=total)}</span>'
        f'<div class="ff-modes" data-value="grid"><button data-mode="grid">{tr("mode.single")}</button>'
        f'<button data-mode="collection">{tr("mode.collection")}</button></div>'
        f'<span class="ff-filters">{selects}</span><span class="ff-spacer"></span>'
        f'<label class="ff-button">{tr("upload.button")}</label>'
        f'<span class="ff-live" data-state="connecting">{tr("live.connecting")}</span>'
        f'<select class="ff-select ff-lang" title="{tr("language.label")}" disabled>'
        f"<option>{tr('language.name')}</option></select></header>"
    )
    tiles = "".join(_tile(image, eager=n < EAGER_TILES) for n, image in enumerate(page["images"]))
    adopt = {"project": project, "query": f"limit={page_size}", "page": page}
    return (
        # The page's language before anything is painted (Panel's template says `lang="en"`).
        f"<script>document.documentElement.lang = {json.dumps(lang)};</script>"
        f"<style>{_CSS}</style>"
        f'<div id="{FIRST_ID}" data-testid="first-page" aria-busy="true">'
        f'<div class="ff-root ff-mode-grid">{header}<main class="ff-body"><div class="ff-main">'
        '<div class="ff-scroll-wrap">'
        f'<div class="ff-scroll"><div class="ff-grid">{tiles}</div></div></div></div></main></div></div>'
        f'<script type="application/json" id="{FIRST_PAGE_ID}">{_json_in_html(adopt)}</script>'
    )


def _tile(image: dict[str, Any], *, eager: bool) -> str:
    """One tile as tiles.js's `gridTile` makes it, keyed by `data-first-id` (the component's are `data-image-id`)."""
    e = _escape
    name = str(image.get("filename") or "")
    when = str(image.get("captured_at") or "").replace("T", " ")[:16]
    rating = int(image.get("rating") or 0)
    flag, label = str(image.get("flag") or "none"), str(image.get("label") or "none")
    stars = "".join(
        f'<span class="ff-star{" ff-on" if n <= rating else ""}" data-star="{n}">★</span>' for n in range(1, 6)
    )
    return (
        f'<figure class="ff-tile" data-first-id="{e(str(image["id"]))}" data-selected="false" '
        f'data-flag="{e(flag)}" data-label="{e(label)}" title="{e(name)}">'
        f'<div class="ff-box"><img class="ff-loaded" {_EAGER if eager else _LAZY} alt="{e(name)}" '
        f'draggable="false" src="{e(str(image.get("thumbnail_url") or ""))}"></div><span class="ff-check"></span>'
        f'<figcaption><span class="ff-name">{e(name)}</span><span class="ff-time">{e(when)}</span></figcaption>'
        f'<div class="ff-rate" data-value="{rating}" data-flag="{e(flag)}" data-label="{e(label)}">{stars}'
        '<span class="ff-flag-btn" data-set-flag="pick">⚑</span>'
        '<span class="ff-flag-btn" data-set-flag="reject">✕</span>'
        "</div></figure>"
    )


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _json_in_html(value: Any) -> str:
    """`value` as JSON that cannot close its `<script>` block or open a comment in it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text
