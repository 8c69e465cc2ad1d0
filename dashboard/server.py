"""`serve()`: the Panel app and the API of one `App` on one tornado server (`app serve`)."""

from __future__ import annotations

import gc
import logging
import signal
import sys
from typing import Any

from dashboard import logs, preflight
from dashboard.app import App
from dashboard.config import ConfigError, Settings
from dashboard.guard import guard
from dashboard.http.caching import cache_fingerprinted
from dashboard.http.pages import PageAuth
from dashboard.http.routes import http_server_kwargs, server_routes
from dashboard.page import app_for_session

log = logging.getLogger("fotoflo.server")


def serve(settings: Settings) -> None:
    """Run the Panel app and the API on one tornado server until SIGINT/SIGTERM."""
    import panel as pn

    logs.install()  # again: importing Panel may have given Bokeh's logger a handler of its own
    app = App(settings)
    try:
        preflight.free_port(settings.address, settings.port)  # a port in use: one line, before a token is shown
    except ConfigError:
        app.stop()
        raise
    guarded: dict[str, Any] = {}
    if app.access.enabled:
        # The page and its websocket need a session; the API checks its own requests.
        guarded["auth_provider"] = PageAuth(app.access)
        _announce_owner_token(app, settings)
    server = pn.serve(
        {"/": lambda: app_for_session(app)},  # each session gets this process's app, explicitly
        port=settings.port,
        address=settings.address,
        websocket_origin=f"localhost:{settings.port}",  # replaced below, before anything is served
        extra_patterns=server_routes(app),  # the sign-in pages (authentication on) and the API
        show=False,
        **guarded,
        start=False,
        title="Fotoflo",
        # Body cap and timeouts for slow or idle clients (an authorized upload raises its own).
        http_server_kwargs=http_server_kwargs(),
        log_function=logs.log_request,  # access lines without share links, signatures or tokens
    )
    guard(server, app.boundary)
    cache_fingerprinted(server._tornado)
    loop = server.io_loop
    app.start(loop.asyncio_loop)

    def shutdown(*_: object) -> None:
        loop.add_callback_from_signal(loop.stop)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    server.start()
    log.info("Fotoflo serving project %r at http://%s:%d/", settings.project, settings.address, settings.port)
    # Panel runs a full gc.collect() on the loop after sessions close; without this it walks the
    # whole start-up heap (Panel, Bokeh, pandas) each time, 50 to 130 ms of a blocked loop.
    gc.freeze()
    try:
        loop.start()
    finally:
        app.stop()
        server.stop()
        log.info("Fotoflo stopped")


def _announce_owner_token(app: App, settings: Settings) -> None:
    """With authentication on and no owner token yet, make one and print it, this once."""
    secret = app.access.ensure_owner_token()
    if secret is None:
        return
    host = "127.0.0.1" if settings.address in ("0.0.0.0", "::", "") else settings.address
    print(
        "\nFotoflo: authentication is on and there was no owner token, so one was made. It is shown only now:\n\n"
        f"    {secret}\n\nSign in at http://{host}:{settings.port}/login with it, give it to `app sync --token`, "
        "or make others with `app token create`.\n",
        file=sys.stderr,
        flush=True,
    )
