"""The URL table: every route Fotoflo serves beside the Panel app, and its HTTP server's options.

Who may call each URL is declared on its handler, per method (`ACTIONS`, see `dashboard.http.rules`);
`python -m dashboard.http.routes` prints the two together, one line per URL and method.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

from tornado import web

from dashboard.http.base import BODY_TIMEOUT_S, IDLE_CONNECTION_TIMEOUT_S, SERVER_MAX_BODY_BYTES, NotFoundHandler
from dashboard.http.collections import CollectionHandler, CollectionsHandler, DuplicateHandler, UndeleteHandler
from dashboard.http.comments import CommentCountsHandler, CommentHandler, CommentsHandler
from dashboard.http.exports import DownloadHandler, ExportHandler
from dashboard.http.favorites import FavoriteHandler, FavoritesHandler, SubmitFavoritesHandler
from dashboard.http.files import FileHandler
from dashboard.http.health import HealthHandler, MetricsHandler
from dashboard.http.images import (
    ImageBySha256Handler,
    ImageHandler,
    ImagesHandler,
    ImageVersionsHandler,
    RatingHandler,
)
from dashboard.http.notify import EmailHandler, EmailsHandler, WebhookHandler, WebhooksHandler
from dashboard.http.pages import LOGIN_PATH, LoginHandler, LogoutHandler, ShareLinkHandler
from dashboard.http.project import ProjectsHandler
from dashboard.http.rules import Allow
from dashboard.http.shares import ShareHandler, ShareQrHandler, SharesHandler, WatermarkHandler
from dashboard.http.stream import ChangesHandler, EventsHandler
from dashboard.http.upload import UploadHandler

if TYPE_CHECKING:
    from dashboard.app import App

#: A tornado route: URL pattern, handler class, its `initialize` keywords.
Route = tuple[str, type[web.RequestHandler], dict[str, Any]]

ID = r"[A-Za-z0-9_-]+"
PROJECT = r"/api/projects/(?P<project>[^/]+)"
IMAGE = PROJECT + rf"/images/(?P<image_id>{ID})"
COLLECTION = PROJECT + rf"/collections/(?P<collection_id>{ID})"


def http_server_kwargs() -> dict[str, Any]:
    """Tornado `HTTPServer` options of every Fotoflo server: body cap and timeouts (slow or idle clients)."""
    return {
        "max_body_size": SERVER_MAX_BODY_BYTES,
        "body_timeout": BODY_TIMEOUT_S,
        "idle_connection_timeout": IDLE_CONNECTION_TIMEOUT_S,  # tornado also takes it as the header timeout
    }


def routes(app: App) -> list[Route]:
    """The API, signed files and `/healthz`; served beside the Panel app by `fotoflo serve`, `panel serve`
    and a notebook's embedded server."""
    kw: dict[str, Any] = {"app": app}
    return [
        (r"/api/projects/?", ProjectsHandler, kw),
        (PROJECT + r"/images/?", ImagesHandler, kw),
        (PROJECT + r"/images/by-sha256/(?P<sha256>[^/]+)/?", ImageBySha256Handler, kw),
        (IMAGE + r"/?", ImageHandler, kw),
        (IMAGE + r"/versions/?", ImageVersionsHandler, kw),
        (IMAGE + r"/rating/?", RatingHandler, kw),
        (IMAGE + r"/favorite/?", FavoriteHandler, kw),
        (PROJECT + r"/favorites/?", FavoritesHandler, kw),
        (PROJECT + r"/favorites/submit/?", SubmitFavoritesHandler, kw),
        (IMAGE + r"/comments/?", CommentsHandler, kw),
        (IMAGE + rf"/comments/(?P<comment_id>{ID})/?", CommentHandler, kw),
        (PROJECT + r"/comment-counts/?", CommentCountsHandler, kw),
        (PROJECT + r"/upload/?", UploadHandler, kw),
        (PROJECT + r"/changes/?", ChangesHandler, kw),
        (PROJECT + r"/events/?", EventsHandler, kw),
        (PROJECT + r"/collections/?", CollectionsHandler, kw),
        (COLLECTION + r"/?", CollectionHandler, kw),
        (COLLECTION + r"/undelete/?", UndeleteHandler, kw),
        (COLLECTION + r"/duplicate/?", DuplicateHandler, kw),
        *[
            (COLLECTION + rf"/export\.{fmt}", ExportHandler, {**kw, "export_format": fmt})
            for fmt in ("txt", "csv", "zip")
        ],
        (PROJECT + rf"/exports/(?P<token>{ID})", DownloadHandler, kw),
        (PROJECT + r"/shares/?", SharesHandler, kw),
        (PROJECT + rf"/shares/(?P<share_id>{ID})/?", ShareHandler, kw),
        (PROJECT + rf"/shares/(?P<share_id>{ID})/watermark/?", WatermarkHandler, kw),
        *[
            (PROJECT + rf"/shares/(?P<share_id>{ID})/qr\.{fmt}", ShareQrHandler, {**kw, "qr_format": fmt})
            for fmt in ("svg", "png")
        ],
        (PROJECT + r"/webhooks/?", WebhooksHandler, kw),
        (PROJECT + rf"/webhooks/(?P<webhook_id>{ID})/?", WebhookHandler, kw),
        (PROJECT + r"/emails/?", EmailsHandler, kw),
        (PROJECT + r"/emails/(?P<address>[^/]+)/?", EmailHandler, kw),
        (rf"/files/(?P<image_id>{ID})/(?P<kind>original|raw|preview|thumb)", FileHandler, kw),
        (r"/healthz", HealthHandler, kw),
        (r"/metrics", MetricsHandler, kw),
        (r"/api/.*", NotFoundHandler, kw),
    ]


def page_routes(app: App) -> list[Route]:
    """The sign-in pages (`/login`, `/logout`, share links `/s/{secret}`): served when authentication is on."""
    kw: dict[str, Any] = {"app": app}
    return [
        (LOGIN_PATH, LoginHandler, kw),
        (r"/logout", LogoutHandler, kw),
        (r"/s/(?P<secret>[A-Za-z0-9_-]{1,128})/?", ShareLinkHandler, kw),
    ]


def server_routes(app: App) -> list[Route]:
    """Everything a Fotoflo server adds to Panel's: the sign-in pages (authentication on) and the API."""
    return (page_routes(app) if app.access.enabled else []) + routes(app)


def describe() -> list[str]:
    """`GET /api/projects/{project}/images  viewer (view)`: each route's methods and who may call them."""
    lines = []
    for pattern, handler, _ in page_routes(cast(Any, None)) + routes(cast(Any, None)):
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern.removesuffix("/?"))
        path = path.replace("\\.", ".").replace(".*", "*")
        actions: dict[str, Allow] = getattr(handler, "ACTIONS", {})
        methods = [m for m in ("get", "post", "put", "patch", "delete") if m in vars(handler)]
        if not methods:
            lines.append(f"{'*':6} {path:64} 404 not_found")
        for method in methods:
            who = actions[method].describe() if method in actions else "anyone (a sign-in page)"
            lines.append(f"{method.upper():6} {path:64} {who}")
    return lines


if __name__ == "__main__":
    print("\n".join(describe()))
