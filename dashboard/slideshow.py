"""The slideshow for a wall (`/?mode=slideshow`): a collection, a person's favourites or the whole project,
one image at a time at a chosen pace, with new arrivals shown next as they come.

The browser half (assets/slideshow.js) reads everything through the HTTP API and the project's event
stream, as the gallery does, so what a share link's guest sees is what their link grants, nothing more.
"""

from __future__ import annotations

import math
import re
from typing import Any

import param
from panel.custom import JSComponent

from dashboard import i18n
from dashboard.gallery import ASSETS, PAGE_HEARTBEAT_S, esm_bundle

#: Seconds each image stays, unless `?pace=` says otherwise; and the shortest and longest pace taken.
DEFAULT_PACE_S = 8.0
MIN_PACE_S = 1.0
MAX_PACE_S = 3600.0

#: What `?show=` may say: the whole project, one collection, or one person's favourites (empty: the caller's).
_SHOW = re.compile(r"project|collection:[A-Za-z0-9_-]+|favorites(?::.{0,200})?", re.DOTALL)


def pace_s(text: str | None) -> float:
    """The pace a `?pace=` asks for, in seconds: kept within 1 s to 1 h; missing or not a number: 8 s."""
    try:
        value = float(text) if text is not None else DEFAULT_PACE_S
    except ValueError:
        return DEFAULT_PACE_S
    if not math.isfinite(value):
        return DEFAULT_PACE_S
    return min(MAX_PACE_S, max(MIN_PACE_S, value))


def show_of(text: str | None) -> str:
    """What a `?show=` asks for, as the page takes it: `project`, `collection:ID` or `favorites[:NAME]`.

    Missing means the project; anything else raises ValueError (the page says so rather than showing
    something other than what was asked for).
    """
    if not text:
        return "project"
    if not _SHOW.fullmatch(text):
        raise ValueError(f"?show= takes project, collection:ID or favorites:NAME, not {text!r}")
    return text


class Slideshow(JSComponent):
    """The browser half of the slideshow: its images and their arrivals from the API and the event stream."""

    api_base = param.String(default="", doc="URL prefix of the Fotoflo API; '' means the page's own server.")
    api_token = param.String(default="", doc="A notebook server's token for API requests; '' for none.")
    project = param.String(default="default", doc="Project whose images are shown.")
    # Not `show`, which is Panel's (`Viewable.show()`); the URL's `?show=` is this.
    source = param.String(
        default="project",
        doc="What is shown: 'project', 'collection:ID' or 'favorites:NAME' ('favorites': the viewer's own).",
    )
    bad_source = param.String(default="", doc="A `?show=` the page could not take: it says so instead; '' if none.")
    pace_s = param.Number(
        default=DEFAULT_PACE_S, bounds=(MIN_PACE_S, MAX_PACE_S), doc="Seconds each image stays; + and - change it."
    )
    kiosk = param.Boolean(
        default=False, doc="A display no one leaves: no buttons, and Escape does not go back to the gallery."
    )
    heartbeat_s = param.Number(
        default=PAGE_HEARTBEAT_S, bounds=(0.5, 30), doc="Seconds between the heartbeats the page asks of the server."
    )
    state: Any = param.Selector(
        default="connecting",
        objects=["connecting", "live", "offline"],
        doc="Connection state of the event stream, reported by the browser.",
    )
    lang: Any = param.Selector(default=i18n.DEFAULT, objects=list(i18n.LANGUAGES), doc="The page's language.")
    wall_qr = param.String(
        default="", doc="A `data:` URL of a share link's QR code, shown in a corner (`?qr=`, page.py); '' for none."
    )
    catalogue = param.Dict(default={}, doc="The strings of `lang` (dashboard/i18n.py), sent with the page.")

    def __init__(self, **params: Any) -> None:
        params.setdefault("catalogue", i18n.catalogue(params.get("lang", i18n.DEFAULT)))
        super().__init__(**params)

    _esm = esm_bundle(ASSETS / "slideshow.js")
    # The gallery's sheet for what the two share (the badge, the palette, reduced motion), then its own.
    _stylesheets = [(ASSETS / "gallery.css").read_text(), (ASSETS / "slideshow.css").read_text()]


def slideshow_view(
    project: str, query: dict[str, Any], *, heartbeat_s: float, lang: str, wall_qr: str = ""
) -> Slideshow:
    """The slideshow a page's query asks for (`show=`, `pace=`, `kiosk=1`) of `project`, from the page's own server.

    `wall_qr`: the QR code to show in a corner (`dashboard.http.pages.wall_qr` made it from `?qr=`), or ''.
    """
    pace = pace_s(str(query["pace"]) if query.get("pace") is not None else None)
    asked = str(query["show"]) if query.get("show") is not None else None
    try:
        show, bad = show_of(asked), ""
    except ValueError:
        show, bad = "project", str(asked)
    kiosk = str(query.get("kiosk", "")).lower() in ("1", "true", "yes")
    return Slideshow(
        project=project, source=show, bad_source=bad, pace_s=pace, kiosk=kiosk, heartbeat_s=heartbeat_s, lang=lang,
        wall_qr=wall_qr, sizing_mode="stretch_both", min_height=240,
    )  # fmt: skip
