"""The page at `/` of a Fotoflo server, one per browser session: the gallery, or the studio dashboard."""

from __future__ import annotations

import logging
from typing import Any

import panel as pn

from dashboard import i18n
from dashboard.first_paint import install_first_paint
from dashboard.gallery import MODE_ALIASES, MODES, PAGE_SIZE, Gallery, page_heartbeat_s
from dashboard.http.pages import page_download, page_person, page_project, page_sees_whole_project, wall_qr
from dashboard.slideshow import slideshow_view
from dashboard.studio import dashboard_page

log = logging.getLogger("fotoflo.gallery")


PAGE_CSS = """
html, body { margin: 0; height: 100%; background: #141414; }
body > .bk-Column, body > div { height: 100vh; }
"""


def app_for_session(app: Any) -> pn.viewable.Viewable:
    """The page at `/` for one browser session of `app`'s server: `?mode=single|collection|wall|slideshow|dashboard`.

    `--wall` makes the wall display the default; `?qr=/s/SECRET` puts that share link's QR code in a corner
    of an owner's wall or slideshow (`dashboard.http.pages.wall_qr`). The slideshow
    (`?mode=slideshow&show=…&pace=…`) reads what it shows through the API, as the gallery does. A share
    link's session sees the project it grants;
    the studio dashboard (`?mode=dashboard`: the gallery beside the live counts, charts and tables of
    the whole project) only a session that may see the whole project, others get the gallery.
    """
    if PAGE_CSS not in pn.config.raw_css:
        pn.config.raw_css = [*pn.config.raw_css, PAGE_CSS]
    query = pn.state.location.query_params if pn.state.location else {}
    mode = str(query.get("mode") or ("wall" if app.settings.wall else "grid"))
    mode = MODE_ALIASES.get(mode, mode)
    cookies = dict(pn.state.cookies or {})
    project = str(query.get("project") or app.settings.project)
    project = page_project(app.access, cookies, project)
    lang = page_language(cookies)
    person = page_person(app.access, cookies, project)
    if mode == "dashboard" and page_sees_whole_project(app.access, cookies, project):
        _log_session(project, mode)
        return dashboard_page(app, project, lang, person)
    heartbeat_s = page_heartbeat_s(app.settings.heartbeat_s)
    qr = ""
    if mode in ("wall", "slideshow") and query.get("qr"):
        # `?qr=/s/SECRET`: the screen shows that share link's QR code in a corner (an owner's only).
        qr = wall_qr(app.access, cookies, project, str(query["qr"]), _page_origin())
    if mode == "slideshow":
        _log_session(project, mode)
        return pn.Column(slideshow_view(project, query, heartbeat_s=heartbeat_s, lang=lang, wall_qr=qr),
                         sizing_mode="stretch_both", margin=0)  # fmt: skip
    mode = mode if mode in MODES else "grid"
    extra: dict[str, Any] = {"download": page_download(app.access, cookies), "wall_qr": qr}
    gallery = Gallery(
        app=app, project=project, mode=mode, heartbeat_s=heartbeat_s, sync_url=True, lang=lang, person=person, **extra
    )
    if mode == "grid" and pn.state.curdoc is not None:
        # Single mode's first page is in the HTML, painted long before the bundles have run (first_paint.py).
        install_first_paint(pn.state.curdoc, app, cookies, project, PAGE_SIZE, lang)
    _log_session(project, mode)
    return pn.Column(gallery, sizing_mode="stretch_both", margin=0)


def _page_origin() -> str:
    """`scheme://host[:port]` of this page, as the browser asked for it."""
    location = pn.state.location
    if location is None:
        return ""
    host = location.hostname + (f":{location.port}" if location.port else "")
    return f"{location.protocol.rstrip(':') or 'http'}://{host}"


def page_language(cookies: dict[str, str]) -> str:
    """The language of this session's page: its `fotoflo_lang` cookie's, else its `Accept-Language`'s."""
    accept = (pn.state.headers or {}).get("Accept-Language")
    return i18n.negotiate(accept if isinstance(accept, str) else None, cookies.get(i18n.COOKIE))


def _log_session(project: str, mode: str) -> None:
    doc = pn.state.curdoc
    session_id = getattr(getattr(doc, "session_context", None), "id", "?")
    log.info("session opened %s (project %s, %s)", session_id, project, mode)

    def closed(_: Any) -> None:
        log.info("session closed %s", session_id)

    if doc is not None:
        doc.on_session_destroyed(closed)
