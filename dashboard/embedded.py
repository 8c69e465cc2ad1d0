"""A Fotoflo API server on a loopback port in a background thread, for notebooks and scripts.

Inside Jupyter the page comes from the Jupyter server, so the gallery needs a Fotoflo server of
its own to page images from and stream events from: this one runs in the kernel, beside the
code that ingests, and is shared by every gallery of the same data directory.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from pathlib import Path
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application

from dashboard import api
from dashboard.config import Settings
from dashboard.server import Fotoflo

log = logging.getLogger("fotoflo.embedded")

_servers: dict[Path, BackgroundServer] = {}
_lock = threading.Lock()


class BackgroundServer:
    """Runs `fotoflo`'s API on 127.0.0.1 in its own thread and event loop until `stop()`."""

    def __init__(self, fotoflo: Fotoflo, port: int = 0) -> None:
        self.fotoflo = fotoflo
        self.port = port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fotoflo-embedded-server", daemon=True)
        self._http: HTTPServer | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
            app = Application(api.routes(self.fotoflo))
            self._http = HTTPServer(app, **api.http_server_kwargs())  # body cap and timeouts
            sockets = bind_sockets(self.port, "127.0.0.1")
            self._http.add_sockets(sockets)
            self.port = sockets[0].getsockname()[1]
            self.fotoflo.start(loop)
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
            self.fotoflo.stop()
            loop.stop()

        loop.call_soon_threadsafe(halt)
        self._thread.join(timeout=10)


def background_server(data: str | Path, project: str = "default", **settings: Any) -> BackgroundServer:
    """The running background server for this data directory, started on first use."""
    data_dir = Path(data).expanduser().resolve()
    with _lock:
        server = _servers.get(data_dir)
        if server is None:
            # Bound to loopback in this kernel: open, whatever FOTOFLO_AUTH and FOTOFLO_ADDRESS say.
            options = {"address": "127.0.0.1", "auth": False, **settings}
            fotoflo = Fotoflo(Settings.from_env(data=data_dir, project=project, cors=True, **options))
            server = _servers[data_dir] = BackgroundServer(fotoflo).start()
        else:
            server.fotoflo.store.ensure_project(project)
        return server


@atexit.register
def stop_all() -> None:
    """Stop every background server this process started (also run at interpreter exit)."""
    with _lock:
        for server in _servers.values():
            server.stop()
        _servers.clear()
