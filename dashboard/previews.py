"""Previews made after their image is published: in the background, or on demand when asked for first.

A large JPEG is published as soon as its thumbnail exists (`Ingestor`, `analyze(thumb_only=True)`); its
preview is made right after by `Previews`: a queue of jobs (ids and hashes, never bytes or pixels) served
by at most one thread per worker of the background decoder pool (`shared_background_pool`, niced, and
started only while a worker of the thumbnails' pool is idle, so the thumbnails that make images visible run
first). Each job reads the original from the blobs, has a worker
make the preview (`DecoderPool.preview`), writes it, then announces it on the feed with an `image.updated`
entry (`Store.announce_preview`) and wakes the bus. A preview asked for before it exists (`ensure`, from
`/files/{id}/preview`) is made at once by the pool someone waits for; in this process each image's preview
is made once, whoever asks and however many at the same time (one future per image that all of them wait
on).

Publishing never waits for previews: `schedule` does not block. Past `PREVIEW_BACKLOG` queued jobs a new
one is not queued but left to a sweep (`sweep`), which walks the store for the large JPEGs whose preview
is missing once the queue has drained, and queues them (waiting for places itself). The server sweeps at
start too: the jobs still queued when it stopped (dropped then) and those a crash lost are made then, or
on demand if asked for first.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dashboard.blobs import Blobs, FileBlobs
from dashboard.bus import Bus
from dashboard.events import ImageRecord
from dashboard.imaging.errors import IngestError, Limits
from dashboard.imaging.sizes import preview_plan
from dashboard.store import Store, UnknownProject

if TYPE_CHECKING:
    from dashboard.decoders import DecoderPool

log = logging.getLogger("fotoflo.previews")

#: Jobs queued at most (about 200 bytes each). Past it, a job is not queued and its preview is left to the
#: sweep that follows: publishing never waits for a place.
PREVIEW_BACKLOG = 1024
SWEEP_PAGE = 500  # images a sweep reads from the store at once
HOLD_BACK_S = 0.01  # in seconds: how often a preview held back for thumbnails looks again (`_hold_back`)


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
        self._sweep_wanted = False  # a job was not queued (or a restart left some): walk the store for them
        self._sweeping = False  # the sweep's thread runs
        self._closed = False
        self._closing = threading.Event()
        self._test_delay_s = float(os.environ.get(TEST_DELAY_ENV) or 0)
        self.made = 0  # previews this object made (background and on demand)

    def schedule(self, job: PreviewJob) -> None:
        """Make this preview in the background; never waits (past `PREVIEW_BACKLOG` queued, a sweep makes it)."""
        if self._closed:
            return
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self.sweep()
            return
        self._serve_more()

    def sweep(self) -> None:
        """Make, in the background, every large JPEG's preview the blobs lack (after the queue has drained).

        Called at a server's start, and by `schedule` for the jobs it could not queue. Reads the store a page
        at a time; costs a blob lookup per large JPEG of every project.
        """
        with self._lock:
            if self._closed:
                return
            self._sweep_wanted = True
            if self._sweeping:
                return  # it walks again when done
            self._sweeping = True
        threading.Thread(target=self._sweep, name="fotoflo-preview-sweep", daemon=True).start()

    def _serve_more(self) -> None:
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
        """Wait until every preview scheduled (or swept) so far is made or failed; False if `timeout_s` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0 and self._jobs.empty() and not self._sweeping, timeout_s)

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
            log.info("%d preview(s) not made before stopping: made at the next start, or when first asked for", dropped)
        with self._idle:
            self._idle.notify_all()
            self._idle.wait_for(lambda: self._threads == 0 and not self._sweeping, wait_s)

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
                self._hold_back()
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

    def _hold_back(self) -> None:
        """Wait while every worker of the pool that makes thumbnails is busy (they make images visible).

        Niceness alone still gave previews a tenth of the cores during a bulk import. It looks again every
        `HOLD_BACK_S` rather than waiting in that pool's queue, where it would take the next thumbnail's slot.
        """
        if self.decoders is self.background:
            return
        while not self._closed and self.decoders.saturated():
            self._closing.wait(HOLD_BACK_S)

    def _sweep(self) -> None:
        while True:
            # Jobs queued first: what the sweep finds missing then is what was never queued.
            with self._idle:
                self._idle.wait_for(lambda: self._closed or self._jobs.empty())
                if self._closed or not self._sweep_wanted:
                    self._sweeping = False  # decided under the lock `sweep` takes: no request is lost
                    self._idle.notify_all()
                    return
                self._sweep_wanted = False
            try:
                found = self._walk()
            except Exception:
                log.exception("the sweep for missing previews failed")
                continue
            if found:
                log.info("%d preview(s) missing: made in the background", found)

    def _walk(self) -> int:
        """Queue a job for each large JPEG whose preview is missing, waiting for places; how many."""
        found = 0
        for project in self.store.projects():
            before: int | None = None
            while not self._closed:
                try:
                    page = self.store.list_images(project, before=before, limit=SWEEP_PAGE)
                except UnknownProject:
                    break  # deleted meanwhile
                for image in page:
                    if defers_preview(image) and not self.blobs.exists("preview", image.sha256):
                        found += self._queue_waiting(PreviewJob(project, image.id, image.sha256, image.filename))
                if len(page) < SWEEP_PAGE:
                    break
                before = page[-1].seq
        return found

    def _queue_waiting(self, job: PreviewJob) -> int:
        """Queue `job`, waiting for a place (the sweep may; publishing never does); 1 if queued."""
        while not self._closed:
            try:
                self._jobs.put(job, timeout=0.5)
            except queue.Full:
                continue
            self._serve_more()
            return 1
        return 0

    def _original(self, sha256: str) -> bytes | Path:
        """The original: its file when the blobs are files (the worker reads it), else its bytes (a bucket)."""
        if isinstance(self.blobs, FileBlobs):
            return self.blobs.path("original", sha256)
        reader = self.blobs.open("original", sha256)
        try:
            return reader.read()
        finally:
            reader.close()

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
                preview = decoders.preview(self._original(job.sha256), job.filename, self.limits)
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


def defers_preview(image: ImageRecord) -> bool:
    """Whether ingest may have published `image` before its preview: a JPEG larger than a preview, or a
    HEIC whose thumbnail item made its tile."""
    return image.format in ("JPEG", "HEIF") and preview_plan(image.width, image.height)[0] > 0
