"""The services of one server process (`App`), built from its settings and passed to whoever needs them."""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dashboard import backends, pairs, preflight
from dashboard.auth import Access, auth_required
from dashboard.blobs import Blobs
from dashboard.bus import Bus
from dashboard.config import ConfigError, Settings
from dashboard.curation import Curator
from dashboard.events import Device
from dashboard.export import Downloads
from dashboard.guard import Boundary
from dashboard.hub import FeedHub
from dashboard.imaging.errors import Limits
from dashboard.ingest import Ingestor, IngestResult
from dashboard.leader import HotFolderLeader, lock_key
from dashboard.metrics import Metrics
from dashboard.notify.notifier import LOCK_KEY as NOTIFY_LOCK_KEY
from dashboard.notify.notifier import Notifier
from dashboard.quarantine import QUARANTINE_FILE, Quarantine
from dashboard.signing import UrlSigner, load_or_create_secret
from dashboard.store import Store
from dashboard.watcher import HotFolderWatcher
from dashboard.watermarks import CACHE_DIR as WATERMARK_CACHE_DIR
from dashboard.watermarks import Watermarks
from dashboard.wire import Wire

log = logging.getLogger("fotoflo.app")


class App:
    """The services of one Fotoflo server process: settings, store, blobs, bus, hub, ingest, curation, auth.

    Made once per process by whoever serves (`fotoflo serve`, the `panel serve` plugin, a notebook's
    embedded server) and passed explicitly to the handlers and views that need it; there is no
    module-global "current" app. `start()` binds the feed hub and starts the hot-folder watcher.
    """

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
        self._own_blobs = blobs is None  # what it opened, it closes (an S3 client's connection pool)
        self.bus: Bus = bus or backends.bus_for(settings)
        self.metrics = Metrics()  # this process's counters, served at /metrics
        removed = self.blobs.clean_temp()
        if removed:
            log.info("removed %d temp file(s) left by an interrupted ingest", removed)
        self.ingestor = Ingestor(
            self.store,
            self.blobs,
            self.bus,
            Limits(settings.max_bytes, settings.max_pixels, settings.decode_timeout_s),
            quarantine=Quarantine(settings.data / QUARANTINE_FILE),
            metrics=self.metrics,
        )
        self.curator = Curator(self.store, self.bus)
        # Share links' watermarked previews and thumbnails, made in the decoders and kept in DATA/cache.
        self.watermarks = Watermarks(settings.data / WATERMARK_CACHE_DIR, self.blobs, self.ingestor.decoders)
        self.downloads = Downloads()
        self.hub = FeedHub(self.store, self.bus)
        self.hub.on_delivered = self.metrics.delivered
        self.metrics.watch(bus_connected=lambda: self.bus.connected, subscribers=self.hub.subscriber_count)
        self.ingest_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="fotoflo-upload")
        self.watcher: HotFolderWatcher | None = None
        self.leader: HotFolderLeader | None = None  # several servers, one store: one of them ingests the folder
        self.store.ensure_project(settings.project)
        # Webhooks, e-mail recipients and the outbox (DATA/notify.sqlite, or `notify_*` tables on PostgreSQL).
        self.notify_store = backends.notify_store_for(settings)
        self.notifier: Notifier | None = None
        self.started = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the hub and the watcher; the hub binds to `loop` or to the loop that first serves."""
        self.hub.start(loop)
        self.ingestor.previews.sweep()  # the previews a stop or a crash left unmade, in the background
        watch = self.settings.watch
        lock = backends.hot_folder_lock(self.store, lock_key(watch)) if watch is not None else None
        if watch is not None and lock is not None:
            self.leader = HotFolderLeader(watch, lock, lambda: self._make_watcher(watch))
            self.leader.start()
        elif watch is not None:
            self.watcher = self._make_watcher(watch)
            self.watcher.start()
        self.notifier = self._make_notifier()
        self.notifier.start()
        self.started = True

    def _make_notifier(self) -> Notifier:
        from dashboard.notify.deliver import SmtpConfig

        smtp = SmtpConfig.parse(self.settings.smtp, self.settings.smtp_from) if self.settings.smtp else None
        if smtp is not None:
            log.info("e-mail digests through %s", backends.redact_url(self.settings.smtp or ""))
        return Notifier(
            self.store,
            self.notify_store,
            interval_s=self.settings.notify_interval_s,
            smtp=smtp,
            lock=backends.hot_folder_lock(self.store, NOTIFY_LOCK_KEY),  # several servers: one sends
        )

    def stop(self) -> None:
        if self.leader is not None:
            self.leader.stop()
            self.leader = None
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.notifier is not None:
            self.notifier.stop()
            self.notifier = None
        self.hub.stop()
        self.ingest_pool.shutdown(wait=True, cancel_futures=True)
        self.ingestor.previews.close()  # before the store closes; queued ones are made on demand later
        self.bus.close()
        self.store.close()
        close_blobs = getattr(self.blobs, "close", None)
        if self._own_blobs and close_blobs is not None:
            close_blobs()
        self.access.close()
        self.notify_store.close()
        self.started = False

    # -- the one door ---------------------------------------------------------------------

    def ingest_path(self, path: Path, project: str | None = None) -> IngestResult:
        return self.ingestor.ingest(Path(path), project or self.settings.project)

    def _make_watcher(self, root: Path) -> HotFolderWatcher:
        self.ingestor.decoders.warm()
        return HotFolderWatcher(
            root,
            lambda path: self._ingest_watched(path, root),
            rescan_s=self.settings.rescan_s,
            on_refused=self.metrics.refused,
        )

    def _ingest_watched(self, path: Path, root: Path) -> IngestResult:
        # A RAW and a JPEG of one capture pair only within one folder of the hot folder.
        folder = pairs.folder_of(path, root)
        return self.ingestor.ingest(path, self.settings.project, log_refusals=False, folder=folder)

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
            "blobs_kind": backends.blobs_kind(self.blobs),
            "subscribers": self.hub.subscriber_count(),
        }
