"""A Fotoflo API server on a loopback port in a background thread, for notebooks and scripts.

Inside Jupyter the page comes from the Jupyter server, so the gallery needs a Fotoflo server of
its own to page images from and stream events from: this one runs in the kernel, beside the
code that ingests, and is shared by every gallery of the same data directory.

It is open to nobody else: every API request must carry this process's random token
(`Authorization: Bearer`; the gallery component and `Project` send it, no URL holds it), CORS is
answered only to the origins of the pages that show a gallery (each reports its own through the
notebook's comm, which the Jupyter server authenticates), and its `Host` must be a loopback name or
the name of such a page. Signed file URLs stay usable by `<img>` without the token.

Where the browser cannot reach the kernel's loopback port (JupyterHub, Jupyter on another machine or
in a container), the page reaches this server through the Jupyter server itself, with
`jupyter-server-proxy` at `{base_url}proxy/{port}/`: the Jupyter server checks the user's sign-in, and
forwards the page's own `Host`, which is why a page's name is allowed once the page reported it.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import secrets
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application

from dashboard.app import App
from dashboard.config import Settings
from dashboard.guard import HostGuard, split_host
from dashboard.http.routes import http_server_kwargs, routes

log = logging.getLogger("fotoflo.embedded")

_servers: dict[Path, BackgroundServer] = {}
_lock = threading.Lock()


class BackgroundServer:
    """Runs `app`'s API on 127.0.0.1 in its own thread and event loop until `stop()`."""

    def __init__(self, app: App, port: int = 0) -> None:
        self.app = app
        self.port = port
        #: Required on every API request; only this process (and the pages it renders) knows it.
        self.token = app.boundary.token = secrets.token_urlsafe(32)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fotoflo-embedded-server", daemon=True)
        self._http: HTTPServer | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def allow_origin(self, origin: str) -> None:
        """Let pages of `origin` (a notebook page that shows a gallery of this server) read and write it,
        directly (CORS) or through the Jupyter server's proxy (which forwards the page's `Host`)."""
        boundary = self.app.boundary
        if origin.lower() not in boundary.cors_origins:
            boundary.allow_origin(origin)
            boundary.hosts.add(split_host(urlsplit(origin.lower()).netloc))
            log.info("notebook page origin %s may use %s", origin, self.url)

    def start(self) -> BackgroundServer:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise RuntimeError(f"the embedded Fotoflo server did not start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        try:
            app = Application(routes(self.app))
            guarded = HostGuard(app, self.app.boundary)
            self._http = HTTPServer(guarded, **http_server_kwargs())  # body cap and timeouts
            sockets = bind_sockets(self.port, "127.0.0.1")
            self._http.add_sockets(sockets)
            self.port = self.app.boundary.port = sockets[0].getsockname()[1]
            self.app.start(loop)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        log.info("Fotoflo API for notebooks at %s", self.url)
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def stop(self) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return

        def halt() -> None:
            if self._http is not None:
                self._http.stop()
            self.app.stop()
            loop.stop()

        loop.call_soon_threadsafe(halt)
        self._thread.join(timeout=10)


def background_server(data: str | Path, project: str = "default", **settings: Any) -> BackgroundServer:
    """The running background server for this data directory, started on first use."""
    data_dir = Path(data).expanduser().resolve()
    with _lock:
        server = _servers.get(data_dir)
        if server is None:
            # Bound to loopback in this kernel, without sign-in but with its token, whatever FOTOFLO_AUTH and
            # FOTOFLO_ADDRESS say; no FOTOFLO_CORS_ORIGINS either: the pages that show a gallery say theirs.
            options = {"address": "127.0.0.1", "auth": False, "allowed_hosts": (), "cors_origins": (), **settings}
            app = App(Settings.from_env(data=data_dir, project=project, **options))
            server = _servers[data_dir] = BackgroundServer(app).start()
        else:
            server.app.store.ensure_project(project)
        return server


def running(url: str) -> BackgroundServer | None:
    """The background server of this process at `url`, if it is one (its galleries need its token)."""
    with _lock:
        return next((s for s in _servers.values() if s.url == url.rstrip("/")), None)


@atexit.register
def stop_all() -> None:
    """Stop every background server this process started (also run at interpreter exit)."""
    with _lock:
        for server in _servers.values():
            server.stop()
        _servers.clear()
