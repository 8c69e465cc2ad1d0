"""The running system of one server process, and `serve()`: Panel app + API on one tornado server."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dashboard import api, backends, logs, preflight
from dashboard.auth import Access, auth_required
from dashboard.auth import pages as auth_pages
from dashboard.blobs import Blobs
from dashboard.bus import Bus
from dashboard.config import ConfigError, Settings
from dashboard.curation import Curator
from dashboard.events import Device
from dashboard.export import Downloads
from dashboard.guard import Boundary, guard
from dashboard.hub import FeedHub
from dashboard.imaging.errors import Limits
from dashboard.ingest import Ingestor, IngestResult
from dashboard.leader import HotFolderLeader, lock_key
from dashboard.quarantine import QUARANTINE_FILE, Quarantine
from dashboard.signing import UrlSigner, load_or_create_secret
from dashboard.store import Store
from dashboard.watcher import HotFolderWatcher
from dashboard.wire import Wire

log = logging.getLogger("fotoflo.server")

_current: Fotoflo | None = None


def current() -> Fotoflo:
    """The system this process serves (set by `Fotoflo.start`)."""
    if _current is None:
        raise RuntimeError("no Fotoflo server is running in this process")
    return _current


class Fotoflo:
    """Store, blobs, bus, ingest, feed hub and hot-folder watcher of one server process."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        blobs: Blobs | None = None,
        bus: Bus | None = None,
        url_prefix: str = "",
    ) -> None:
        self.settings = settings
        preflight.data_dir(settings.data)  # 0700, and what older versions left open is tightened
        # First: a weak --secret or secret.key, and a server that must not run open (off loopback, no
        # auth), stop here (ConfigError), having opened nothing.
        self.signer = UrlSigner(load_or_create_secret(settings.data, settings.secret), prefix=url_prefix)
        self.wire = Wire(self.signer)  # the JSON of images, collections and changes, with signed file URLs
        self.access = Access.for_settings(settings, enabled=auth_required(settings))
        try:
            self.boundary = Boundary(
                settings.address,
                settings.port,
                allowed_hosts=settings.allowed_hosts,
                cors_origins=settings.cors_origins,
            )
        except ValueError as exc:
            self.access.close()
            raise ConfigError(str(exc)) from None
        self.store: Store = store or backends.store_for(settings)
        self.blobs: Blobs = blobs or backends.blobs_for(settings)
        self.bus: Bus = bus or backends.bus_for(settings)
        removed = self.blobs.clean_temp()
        if removed:
            log.info("removed %d temp file(s) left by an interrupted ingest", removed)
        self.ingestor = Ingestor(
            self.store,
            self.blobs,
            self.bus,
            Limits(settings.max_bytes, settings.max_pixels, settings.decode_timeout_s),
            quarantine=Quarantine(settings.data / QUARANTINE_FILE),
        )
        self.curator = Curator(self.store, self.bus)
        self.downloads = Downloads()
        self.hub = FeedHub(self.store, self.bus)
        self.ingest_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="fotoflo-upload")
        self.watcher: HotFolderWatcher | None = None
        self.leader: HotFolderLeader | None = None  # several servers, one store: one of them ingests the folder
        self.store.ensure_project(settings.project)
        self.started = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the hub and the watcher; the hub binds to `loop` or to the loop that first serves."""
        global _current
        self.hub.start(loop)
        watch = self.settings.watch
        lock = backends.hot_folder_lock(self.store, lock_key(watch)) if watch is not None else None
        if watch is not None and lock is not None:
            self.leader = HotFolderLeader(watch, lock, lambda: self._make_watcher(watch))
            self.leader.start()
        elif watch is not None:
            self.watcher = self._make_watcher(watch)
            self.watcher.start()
        self.started = True
        _current = self

    def stop(self) -> None:
        global _current
        if self.leader is not None:
            self.leader.stop()
            self.leader = None
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        self.hub.stop()
        self.ingest_pool.shutdown(wait=True, cancel_futures=True)
        self.bus.close()
        self.store.close()
        self.access.close()
        self.started = False
        if _current is self:
            _current = None

    # -- the one door ---------------------------------------------------------------------

    def ingest_path(self, path: Path, project: str | None = None) -> IngestResult:
        return self.ingestor.ingest(Path(path), project or self.settings.project)

    def _make_watcher(self, root: Path) -> HotFolderWatcher:
        self.ingestor.decoders.warm()
        return HotFolderWatcher(root, self._ingest_watched, rescan_s=self.settings.rescan_s)

    def _ingest_watched(self, path: Path) -> IngestResult:
        return self.ingestor.ingest(path, self.settings.project, log_refusals=False)

    def ingest_bytes(
        self,
        data: bytes,
        filename: str,
        project: str | None = None,
        *,
        expected_sha256: str | None = None,
        replaces: str | None = None,
        base_sha256: str | None = None,
        device: Device | None = None,
    ) -> IngestResult:
        return self.ingestor.ingest(
            data,
            project or self.settings.project,
            filename=filename,
            expected_sha256=expected_sha256,
            replaces=replaces,
            base_sha256=base_sha256,
            device=device,
        )

    def page_project(self, project: str) -> str:
        """The project the page of this session shows: `project`, unless its sign-in grants one other."""
        import panel as pn

        return auth_pages.page_project(self.access, dict(pn.state.cookies or {}), project)

    async def health(self) -> dict[str, Any]:
        try:
            await asyncio.to_thread(self.store.has_project, self.settings.project)
            store_state = "ok"
        except Exception as exc:
            store_state = f"error: {exc}"
        return {
            "status": "ok" if store_state == "ok" and self.bus.connected else "degraded",
            "store": store_state,
            "bus": "connected" if self.bus.connected else "disconnected",
            "watcher": str(self.settings.watch) if self.settings.watch is not None else None,
            "watching": self.watcher is not None or (self.leader is not None and self.leader.watching),
            "store_kind": backends.store_kind(self.store),
            "bus_kind": backends.bus_kind(self.bus),
            "subscribers": self.hub.subscriber_count(),
        }


def panel_app() -> Any:
    """The page at `/`, one per browser session."""
    from dashboard.gallery import app_for_session

    if _current is None:
        raise RuntimeError(
            "Fotoflo's API is not running in this server: use `fotoflo serve`, or "
            "`panel serve apps/fotoflo_app.py --plugins dashboard.plugin`"
        )
    return app_for_session(_current)


def serve(settings: Settings) -> None:
    """Run the Panel app and the API on one tornado server until SIGINT/SIGTERM."""
    import panel as pn

    logs.install()  # again: importing Panel may have given Bokeh's logger a handler of its own
    fotoflo = Fotoflo(settings)
    try:
        preflight.free_port(settings.address, settings.port)  # a port in use: one line, before a token is shown
    except ConfigError:
        fotoflo.stop()
        raise
    guarded: dict[str, Any] = {}
    if fotoflo.access.enabled:
        # The page and its websocket need a session; the API checks its own requests.
        guarded["auth_provider"] = auth_pages.PageAuth(fotoflo.access)
        _announce_owner_token(fotoflo, settings)
    server = pn.serve(
        {"/": panel_app},
        port=settings.port,
        address=settings.address,
        websocket_origin=f"localhost:{settings.port}",  # replaced below, before anything is served
        extra_patterns=(auth_pages.routes(fotoflo) if fotoflo.access.enabled else []) + api.routes(fotoflo),
        show=False,
        **guarded,
        start=False,
        title="Fotoflo",
        # Body cap and timeouts for slow or idle clients (an authorized upload raises its own).
        http_server_kwargs=api.http_server_kwargs(),
        log_function=logs.log_request,  # access lines without share links, signatures or tokens
    )
    guard(server, fotoflo.boundary)
    loop = server.io_loop
    fotoflo.start(loop.asyncio_loop)

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
        fotoflo.stop()
        server.stop()
        log.info("Fotoflo stopped")


def _announce_owner_token(fotoflo: Fotoflo, settings: Settings) -> None:
    """With authentication on and no owner token yet, make one and print it, this once."""
    secret = fotoflo.access.ensure_owner_token()
    if secret is None:
        return
    host = "127.0.0.1" if settings.address in ("0.0.0.0", "::", "") else settings.address
    print(
        "\nFotoflo: authentication is on and there was no owner token, so one was made. It is shown only now:\n\n"
        f"    {secret}\n\nSign in at http://{host}:{settings.port}/login with it, give it to `fotoflo sync --token`, "
        "or make others with `fotoflo token create`.\n",
        file=sys.stderr,
        flush=True,
    )
