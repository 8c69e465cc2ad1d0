"""`SyncClient`: a folder kept uploaded to a project of a Fotoflo server (the Python API of `fotoflo sync`).

It wires the producer (the folder's watcher and scans) to the persistent queue and the queue to
the uploader, in a state directory of its own: one per folder, server and project, holding the
queue (`queue.sqlite`) and a lock, so two clients never work one queue. With `delete=True`, a
synced file deleted from the folder is deleted from the server too (never by default).

    with SyncClient("~/Pictures/shoot", "http://studio.local:5006", "wedding") as client:
        client.wait_idle()   # everything in the folder is on the server
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import random
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from dashboard.datadir import private_dir
from dashboard.events import Device
from dashboard.sync.queue import FAILED, PENDING, UPLOADING, QueueLocked, SyncQueue, Upload
from dashboard.sync.scanner import Producer, ScanResult
from dashboard.sync.transport import HttpTransport, Transport
from dashboard.sync.uploader import InFlight, RetryPolicy, Uploader
from dashboard.watcher import DEFAULT_RESCAN_S

log = logging.getLogger("fotoflo.sync")

DEFAULT_WORKERS = 2
DEFAULT_POLICY = RetryPolicy()
QUEUE_FILE = "queue.sqlite"


def default_state_root() -> Path:
    """Where sync state lives unless `--state` says otherwise: `$XDG_STATE_HOME/fotoflo/sync`."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "fotoflo" / "sync"


def state_dir_for(folder: Path, server: str, project: str, root: Path | None = None) -> Path:
    """The state directory of one folder + server + project: `ROOT/<folder name>-<hash>`."""
    key = "\n".join((str(Path(folder).resolve()), server.rstrip("/"), project))
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(folder).resolve().name).strip("-")[:40] or "folder"
    return (root or default_state_root()) / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class SyncStatus:
    """What a sync client is doing, as its queue and uploader say (for `fotoflo sync status` and the UI)."""

    folder: str
    server: str
    project: str
    device_name: str
    state_dir: Path
    counts: dict[str, int]
    running: bool = False
    uploading: list[InFlight] = field(default_factory=list)
    bytes_per_s: float = 0.0
    offline: str | None = None  # why the server cannot be reached, while it cannot
    error: str | None = None  # why nothing can be uploaded until a person acts (token, project)
    deletions_held: str | None = None  # with `delete`: why no deletion is being sent (an unmounted drive?)
    failed: list[Upload] = field(default_factory=list)
    pending: list[Upload] = field(default_factory=list)

    @property
    def idle(self) -> bool:
        """Nothing left to send (failed files wait for a person)."""
        return self.counts.get(PENDING, 0) == 0 and self.counts.get(UPLOADING, 0) == 0


def read_status(state_dir: Path) -> SyncStatus:
    """The status of the queue in `state_dir`, read beside (or without) the client that owns it."""
    queue = SyncQueue(Path(state_dir) / QUEUE_FILE, readonly=True)
    try:
        return _status(queue, Path(state_dir))
    finally:
        queue.close()


def _status(queue: SyncQueue, state_dir: Path, **live: Any) -> SyncStatus:
    meta = queue.meta()
    return SyncStatus(
        folder=meta.get("folder", "?"),
        server=meta.get("server", "?"),
        project=meta.get("project", "?"),
        device_name=meta.get("device_name", "?"),
        state_dir=state_dir,
        counts=queue.counts(),
        failed=queue.uploads(states=(FAILED,), limit=100),
        pending=queue.uploads(states=(PENDING, UPLOADING), limit=100),
        **live,
    )


class SyncClient:
    """Keeps `folder` (recursively) uploaded to `project` on the Fotoflo server at `server`.

    `start()` recovers the queue, starts the uploader and watches the folder; `stop()` ends both
    (uploads in flight are sent again next time, never twice). Without `start`, `scan()` and
    `status()` work on the queue alone. `delete`: a synced file deleted from the folder (not moved)
    is deleted from the server once two passes (`scan()`, or a rescan every `rescan_s`) miss it,
    unless another device changed it since. `transport`, `clock` and `rng` are for tests.
    """

    def __init__(
        self,
        folder: str | Path,
        server: str,
        project: str,
        *,
        token: str | None = None,
        state_dir: str | Path | None = None,
        device_name: str | None = None,
        workers: int = DEFAULT_WORKERS,
        rescan_s: float = DEFAULT_RESCAN_S,
        delete: bool = False,
        policy: RetryPolicy = DEFAULT_POLICY,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.folder = Path(folder).expanduser().resolve()
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder} is not a folder")
        self.server = server.rstrip("/")
        self.project = project
        self.state_dir = (
            Path(state_dir).expanduser().resolve() if state_dir else state_dir_for(self.folder, server, project)
        )
        self.rescan_s = rescan_s
        self.delete = delete
        self._lock_file: IO[str] | None = None
        self.queue = SyncQueue(self.state_dir / QUEUE_FILE, clock=clock)
        meta = self.queue.meta()
        device = Device(
            meta.get("device_id") or secrets.token_urlsafe(12),
            (device_name or meta.get("device_name") or socket.gethostname() or "unnamed device").strip()[:100],
        )
        self.queue.set_meta(
            folder=str(self.folder), server=self.server, project=project, device_id=device.id, device_name=device.name
        )
        self.device = device
        self.uploader = Uploader(
            self.queue,
            transport or HttpTransport(self.server, project, token=token),
            self.folder,
            device,
            workers=workers,
            policy=policy,
            clock=clock,
            rng=rng,
            recheck=self._recheck,
        )
        self.producer = Producer(self.folder, self.queue, on_queued=self.uploader.wake, delete=delete)
        self.running = False
        self._stopped = False

    def _recheck(self, rel: str) -> None:
        self.producer.note(self.folder / rel)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, *, watch: bool = True) -> None:
        """Take the state directory's lock, recover the queue, start uploading and (by default) watching.

        A client runs once: after `stop()`, make a new one.
        """
        if self._stopped:
            raise RuntimeError("this SyncClient was stopped; make a new one")
        self._lock()
        recovered = self.queue.recover()
        if recovered:
            # The uploader asks the server for these before it sends them again.
            log.info("%d upload(s) were in flight when the last run ended; checking them again", recovered)
        self.uploader.start()
        self.running = True
        if watch:
            self.watch()

    def watch(self) -> None:
        """Watch the folder: scan it now and every `rescan_s`, and follow its changes."""
        self.producer.start_watching(rescan_s=self.rescan_s)

    def stop(self) -> None:
        self._stopped = True
        self.producer.stop_watching()
        self.uploader.stop()
        self.running = False
        self._unlock()

    def close(self) -> None:
        if self.running:
            self.stop()
        self.queue.close()

    def __enter__(self) -> SyncClient:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lock(self) -> None:
        private_dir(self.state_dir)  # what was sent where, from which folder: this user's business only
        fh = open(self.state_dir / "lock", "a")  # noqa: SIM115 (held open as the lock until stop)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise QueueLocked(f"another fotoflo sync is running on {self.state_dir}") from None
        self._lock_file = fh

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock (so does the process dying)
            self._lock_file = None

    # -- intents --------------------------------------------------------------------------

    def scan(self, progress: Callable[[Path, str], None] | None = None) -> ScanResult:
        """Look at every file of the folder now (the watcher also does, at start and every `rescan_s`),
        and with `delete` for the synced files gone from it."""
        result = self.producer.scan(progress)
        self.uploader.wake()
        return result

    def retry_failed(self) -> int:
        """Send the failed files again; returns how many."""
        count = self.queue.retry_failed()
        self.uploader.resume()
        return count

    def resume(self) -> None:
        """Try again now (after fixing what a fatal error named, or to cut an offline wait short)."""
        self.uploader.resume()

    def wait_idle(self, timeout_s: float | None = None, *, poll_s: float = 0.05) -> bool:
        """Wait until nothing is left to send (`True`), or a fatal error or the timeout (`False`)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if self.uploader.fatal is not None:
                return False
            counts = self.queue.counts()
            if counts[PENDING] == 0 and counts[UPLOADING] == 0:
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(poll_s)

    # -- reading --------------------------------------------------------------------------

    def status(self) -> SyncStatus:
        return _status(
            self.queue,
            self.state_dir,
            running=self.running,
            uploading=self.uploader.uploading(),
            bytes_per_s=self.uploader.bytes_per_s(),
            offline=self.uploader.offline_reason,
            error=self.uploader.fatal,
            deletions_held=self.producer.held,
        )

    def gallery_url(self) -> str:
        """The project's gallery on the server."""
        return f"{self.server}/?project={quote(self.project)}"
