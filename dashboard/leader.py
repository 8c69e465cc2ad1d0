"""One ingesting server per hot folder: the watcher runs only while this process holds the folder's lock.

Servers sharing a PostgreSQL store and a hot folder (on a shared volume, at the same path) would
otherwise all ingest each file: harmless, since ingest is idempotent by content, but every server
would decode every photo. The lock is a PostgreSQL advisory lock on a connection of its own, so it
is released when its holder dies; a standby server takes it over within `retry_s`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from dashboard.watcher import HotFolderWatcher

log = logging.getLogger("fotoflo.leader")

DEFAULT_RETRY_S = 1.0


class Lock(Protocol):
    def try_acquire(self) -> bool: ...

    def held(self) -> bool: ...

    def release(self) -> None: ...


def lock_key(root: Path) -> str:
    return f"fotoflo:hotfolder:{root}"


class HotFolderLeader:
    """Start the watcher when the lock is ours, stop it as soon as it is not (checked every `retry_s`)."""

    def __init__(
        self, root: Path, lock: Lock, make_watcher: Callable[[], HotFolderWatcher], *, retry_s: float = DEFAULT_RETRY_S
    ) -> None:
        self.root = root
        self._lock = lock
        self._make_watcher = make_watcher
        self.retry_s = retry_s
        self._watcher: HotFolderWatcher | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fotoflo-hotfolder-leader", daemon=True)

    @property
    def watching(self) -> bool:
        """Whether this server is the one ingesting the hot folder now."""
        return self._watcher is not None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._stop_watcher()
        self._lock.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._watcher is None:
                    if self._lock.try_acquire() and not self._stop.is_set():
                        log.info("this server now ingests the hot folder %s", self.root)
                        watcher = self._make_watcher()
                        watcher.start()
                        self._watcher = watcher
                elif not self._lock.held():
                    log.warning("lost the hot folder's lock (database connection gone); another server may take over")
                    self._stop_watcher()
            except Exception as exc:
                log.warning("hot folder lock: %s", exc)
                if self._watcher is not None and not self._lock.held():
                    self._stop_watcher()
            self._stop.wait(self.retry_s)

    def _stop_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
