"""Previews made after their image is published: in the background, or on demand when asked for first.

A large JPEG is published as soon as its thumbnail exists (`Ingestor`, `analyze(thumb_only=True)`); its
preview is made right after by `Previews`: a bounded queue of jobs (ids and hashes, never bytes) served by
at most one thread per worker of the background decoder pool (`shared_background_pool`, niced, so the
thumbnails that make images visible run first). Each job reads the original from the blobs, has a worker
make the preview (`DecoderPool.preview`), writes it, then announces it on the feed with an `image.updated`
entry (`Store.announce_preview`) and wakes the bus. A preview asked for before it exists (`ensure`, from
`/files/{id}/preview`) is made at once by the pool someone waits for; in this process each image's preview
is made once, whoever asks and however many at the same time (one future per image that all of them wait
on). Jobs still queued when the server stops are dropped: those previews are made on demand later.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dashboard.blobs import Blobs
from dashboard.bus import Bus
from dashboard.imaging.errors import IngestError, Limits
from dashboard.store import Store

if TYPE_CHECKING:
    from dashboard.decoders import DecoderPool

log = logging.getLogger("fotoflo.previews")

#: Jobs waiting at most (about 200 bytes each); a producer past it waits for a free place, so a bulk import
#: larger than this goes on at the pace of its previews instead of holding more.
PREVIEW_BACKLOG = 1024


#: TEST ONLY. With FOTOFLO_TEST_PREVIEW_DELAY_S=N in a server's environment, each background preview
#: starts N seconds late (those asked for still come at once): a test sees an image published whose
#: preview is not made yet. Without the variable nothing waits.
TEST_DELAY_ENV = "FOTOFLO_TEST_PREVIEW_DELAY_S"


@dataclass(frozen=True)
class PreviewJob:
    """The preview of the bytes `sha256` (the original blob), for image `image_id` of `project`."""

    project: str
    image_id: str
    sha256: str
    filename: str


class Previews:
    """Makes the previews that ingest left for later; thread-safe. Its threads end when there is nothing to do.

    `decoders`: the pool for previews someone waits for (`ensure`); `background`: the pool for the rest
    (default: this process's niced background pool).
    """

    def __init__(
        self,
        store: Store,
        blobs: Blobs,
        bus: Bus,
        limits: Limits,
        *,
        decoders: DecoderPool,
        background: DecoderPool | None = None,
        backlog: int = PREVIEW_BACKLOG,
    ) -> None:
        from dashboard.decoders import shared_background_pool

        self.store = store
        self.blobs = blobs
        self.bus = bus
        self.limits = limits
        self.decoders = decoders
        self.background = background or shared_background_pool()
        self._jobs: queue.Queue[PreviewJob] = queue.Queue(maxsize=max(1, backlog))
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._threads = 0  # running, at most `background.size`
        self._busy = 0  # jobs taken and not finished
        self._making: dict[str, Future[None]] = {}  # sha256 → the preview being made
        self._closed = False
        self._closing = threading.Event()
        self._test_delay_s = float(os.environ.get(TEST_DELAY_ENV) or 0)
        self.made = 0  # previews this object made (background and on demand)

    def schedule(self, job: PreviewJob) -> None:
        """Make this preview in the background; waits while `PREVIEW_BACKLOG` jobs are queued already."""
        if self._closed:
            return
        self._jobs.put(job)
        with self._lock:
            if self._threads < self.background.size:
                self._threads += 1
                threading.Thread(target=self._serve, name="fotoflo-preview", daemon=True).start()

    def ensure(self, job: PreviewJob) -> None:
        """Make this preview now unless it exists; returns once it does. Raises `IngestError` if it cannot be made.

        Concurrent calls for one image (and its background job) wait for the one that makes it.
        """
        self._make(job, self.decoders)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Wait until every preview scheduled so far is made (or failed); False if `timeout_s` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0 and self._jobs.empty(), timeout_s)

    def close(self, wait_s: float = 5) -> None:
        """Take no more jobs, drop the queued ones and wait up to `wait_s` for those being made."""
        self._closed = True
        self._closing.set()
        dropped = 0
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
            dropped += 1
        if dropped:
            log.info("%d preview(s) not made before stopping: they are made when first asked for", dropped)
        with self._idle:
            self._idle.notify_all()
            self._idle.wait_for(lambda: self._threads == 0, wait_s)

    # -- the work -------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            with self._lock:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    # Decided under the lock that `schedule` takes after its put: no job is left unserved.
                    self._threads -= 1
                    self._idle.notify_all()
                    return
                self._busy += 1
            try:
                if self._test_delay_s:
                    self._closing.wait(self._test_delay_s)
                if not self._closed:
                    self._make(job, self.background)
            except IngestError as exc:
                log.warning("no preview for %s (%s): %s", job.filename, job.image_id, exc.reason)
            except Exception:
                log.exception("no preview for %s (%s)", job.filename, job.image_id)
            finally:
                with self._lock:
                    self._busy -= 1
                    self._idle.notify_all()

    def _make(self, job: PreviewJob, decoders: DecoderPool) -> None:
        with self._lock:
            making = self._making.get(job.sha256)
            if making is None:
                mine: Future[None] = Future()
                self._making[job.sha256] = mine
        if making is not None:
            making.result()
            return
        try:
            if not self.blobs.exists("preview", job.sha256):  # else made already (same bytes, another process)
                data = self.blobs.path("original", job.sha256).read_bytes()
                preview = decoders.preview(data, job.filename, self.limits)
                self.blobs.put("preview", job.sha256, preview)
                with self._lock:
                    self.made += 1
                change = self.store.announce_preview(job.project, job.image_id, job.sha256)
                if change is not None:
                    log.debug("preview of %s (%s) made, announced as #%d", job.filename, job.image_id, change.seq)
                    self.bus.publish(job.project, change.seq)
            mine.set_result(None)
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        finally:
            # Gone only once the blob is written: a later caller finds the file instead.
            with self._lock:
                del self._making[job.sha256]
