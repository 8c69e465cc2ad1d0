"""The one door every image comes through: read, hash, decode once (in a worker), store, publish.

Watcher, web upload, API upload, CLI and sync client all call `Ingestor.ingest`; bulk import is
`Ingestor.ingest_many`. It decides by content (never by name or Content-Type), refuses bad input with
a typed `IngestError` naming the file and the reason, and publishes to the bus only after the files
and the row are committed. The decode itself (`dashboard.imaging.decode.analyze`) runs only in decoder
worker processes (`dashboard.decoders`); blobs and store commits stay in the caller's process.

Thumbnail first: a JPEG larger than a preview is decoded for its thumbnail alone (at 1/8 scale for 12 MP)
and published with everything else known (size, EXIF, orientation); its preview is made right after by
`Ingestor.previews` (`dashboard.previews`), which announces it with an `image.updated` entry.
"""

from __future__ import annotations

import copy
import logging
import mimetypes
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from dashboard import pairs
from dashboard.blobs import Blobs
from dashboard.bus import Bus
from dashboard.events import IMAGE_UPDATED, PAIRED_RAW, Device, ImageRecord, new_id
from dashboard.imaging.analysis import Analysis, sha256_of
from dashboard.imaging.errors import ChecksumMismatch, DecoderFailed, IngestError, Limits, TooLarge
from dashboard.imaging.formats import MIME_BY_FORMAT
from dashboard.previews import PreviewJob, Previews
from dashboard.store import CONFLICT, UPDATED, Store, UnknownImage
from dashboard.timeutil import epoch_to_iso, utc_now_iso
from dashboard.untrusted import clean_filename

if TYPE_CHECKING:
    from dashboard.decoders import DecoderPool
    from dashboard.metrics import Metrics
    from dashboard.quarantine import Quarantine

#: `IngestError` is public API here (its subclasses are in `dashboard.imaging.errors`).
__all__ = ["IngestError", "IngestResult", "IngestStats", "Ingestor", "Limits", "Turn", "Turns"]

log = logging.getLogger("fotoflo.ingest")

T = TypeVar("T")

TURN_WAIT_S = 120.0  # in seconds: longest a commit waits for earlier arrivals before it goes ahead anyway
THREADS_PER_DECODER = 2  # `ingest_many`: threads per decoder process (one waits on its fsyncs, one keeps it busy)


class Turns:
    """Commit order for ingests that run in parallel: tickets taken in arrival order, commits in ticket order.

    The hot folder takes a `Turn` for each file as it becomes complete and runs its ingest inside
    `with turn:`; `Ingestor` then commits and publishes that file only after every earlier ticket's file
    has been committed or given up on (refused, a duplicate, failed). The decoding still runs in parallel.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._taken = 0
        self._next = 0  # the lowest ticket not yet done
        self._done: set[int] = set()  # done tickets above `_next`

    def take(self) -> Turn:
        with self._cond:
            self._taken += 1
            return Turn(self, self._taken - 1)

    def _wait(self, number: int, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._next >= number, timeout=timeout_s)

    def _finish(self, number: int) -> None:
        with self._cond:
            if number < self._next:
                return
            self._done.add(number)
            while self._next in self._done:
                self._done.discard(self._next)
                self._next += 1
            self._cond.notify_all()


_turn: ContextVar[Turn | None] = ContextVar("fotoflo_ingest_turn", default=None)


class Turn:
    """One arrival's place in its `Turns`; `with turn:` around an ingest makes its commit wait for it.

    Leaving the block hands the turn on whatever happened (a refusal or a duplicate commits nothing).
    """

    def __init__(self, turns: Turns, number: int) -> None:
        self._turns = turns
        self.number = number

    def wait(self) -> None:
        """Block until every earlier ticket is done (at most `TURN_WAIT_S`, then go ahead and say so)."""
        if not self._turns._wait(self.number, TURN_WAIT_S):
            log.warning(
                "arrival %d waited %.0f s for earlier arrivals; committing it out of order", self.number, TURN_WAIT_S
            )

    def done(self) -> None:
        self._turns._finish(self.number)

    def __enter__(self) -> Turn:
        self._token = _turn.set(self)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        _turn.reset(self._token)
        self.done()


@dataclass(frozen=True)
class IngestResult:
    """`created`: a new image; `updated`: a new version of `image`, or its other file of a RAW + JPEG pair
    (`dashboard.pairs`); neither: the bytes were already there.

    `conflict_copy` is the image made to keep the other side of a conflict (see `Store.add_version`).
    """

    image: ImageRecord
    created: bool
    updated: bool = False
    conflict_copy: ImageRecord | None = None


@dataclass
class IngestStats:
    created: int = 0
    duplicates: int = 0
    refused: list[IngestError] = field(default_factory=list)


class Ingestor:
    """Turns bytes into a stored, thumbnailed, published image, or refuses them with a reason."""

    def __init__(
        self,
        store: Store,
        blobs: Blobs,
        bus: Bus,
        limits: Limits = Limits(),
        *,
        decoders: DecoderPool | None = None,
        quarantine: Quarantine | None = None,
        previews: Previews | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """`decoders`: the worker processes that decode (default: this process's shared pool).

        `quarantine`: where files read from a path (hot folder, `fotoflo ingest`) whose decoder died are
        remembered, so that they are refused without decoding until their bytes change.
        `previews`: what makes the previews left for after publishing (default: one on `decoders` and
        this process's background pool). Whoever ends the process first calls `previews.close()`, or
        `previews.wait_idle()` to have them all made. `metrics`: this server's counters (images
        published, refusals, ingest time), if it keeps them.
        """
        from dashboard.decoders import shared_pool

        self.store = store
        self.blobs = blobs
        self.bus = bus
        self.limits = limits
        self.decoders = decoders or shared_pool()
        self.quarantine = quarantine
        self.previews = previews or Previews(store, blobs, bus, limits, decoders=self.decoders)
        self.metrics = metrics

    def ingest(
        self,
        source: bytes | Path,
        project: str,
        *,
        filename: str | None = None,
        mtime_s: float | None = None,
        log_refusals: bool = True,
        expected_sha256: str | None = None,
        replaces: str | None = None,
        base_sha256: str | None = None,
        device: Device | None = None,
        quarantine: bool | None = None,
        folder: str | None = None,
    ) -> IngestResult:
        """Ingest one file or one upload's bytes; raises `IngestError` for refused input.

        Refusals are logged with their reason unless `log_refusals` is false (the watcher logs
        its own: a half-written file is refused for a moment before it is complete).
        `expected_sha256` refuses bytes that hash otherwise (`ChecksumMismatch`). With `replaces`
        (an image id of the project, else `UnknownImage`) the bytes are a new version of that
        image made from its version `base_sha256`, by `device`: see `Store.add_version`.
        `quarantine`: whether a file whose decoder dies is quarantined (default: when `source` is a
        path; an upload, which its sender sees refused, passes False for the temp file it was kept in).
        `folder`: the file's directory relative to what is watched or synced (`""`, the default: a web
        upload's); a RAW and a JPEG of one capture pair only within one folder (`dashboard.pairs`).
        """
        started = time.perf_counter()
        if quarantine is None:
            quarantine = not isinstance(source, bytes | bytearray | memoryview)
        try:
            data, name, mtime_s = self._read(source, filename, mtime_s)
            sha = sha256_of(data)
            if expected_sha256 is not None and sha != expected_sha256:
                raise ChecksumMismatch(name, f"the bytes received hash to {sha}, not {expected_sha256}")
            existing = self._current(project, sha) if data else None
            if replaces is not None:
                current = self.store.get_image(replaces)
                if current is None or current.project != project:
                    raise UnknownImage(project, [replaces])
            if existing is not None:
                log.info("duplicate %s in %s: already stored as %s", name, project, existing.id)
                return IngestResult(existing, created=False)
            analysis = self._analyze_keeping(data, name, sha, quarantine=quarantine)
        except IngestError as exc:
            if log_refusals:
                log.warning("refused %s: %s", exc.filename, exc.reason)
                if self.metrics is not None:
                    self.metrics.refused(exc)
            raise
        if replaces is not None:
            return self.commit_version(analysis, data, name, project, mtime_s, replaces, base_sha256 or "", device)
        result = self.commit(analysis, data, name, project, mtime_s, device=device, folder=folder or "")
        if result.created and self.metrics is not None:
            self.metrics.ingested(started)
        return result

    def _analyze(self, data: bytes, name: str, sha: str, *, quarantine: bool) -> Analysis:
        """Decode in a worker; with `quarantine`, a file whose decoder died is refused so from then on."""
        listed = self.quarantine if quarantine else None
        if listed is not None and data:
            reason = listed.reason(sha)
            if reason is not None:
                raise DecoderFailed(name, f"quarantined, not decoded again until the file changes ({reason})")
        try:
            return self.decoders.analyze(data, name, self.limits, sha, thumb_only=True)
        except DecoderFailed as exc:
            if listed is not None:
                listed.add(sha, name, exc.reason)
            raise

    def _analyze_keeping(self, data: bytes, name: str, sha: str, *, quarantine: bool) -> Analysis:
        """`_analyze`, writing the original to the blobs meanwhile; kept only if the bytes are accepted.

        The decode is CPU in a worker process, the write (fsynced) mostly a wait on the disk: side by side
        they take the longer of the two before the image can be published, not their sum. The write goes
        to a name of this call's own (`FileBlobs.put_aside`), moved into place once the decode succeeded,
        unlinked if it failed: a refusal never deletes the original that an image with the same bytes
        (stored before, or by a concurrent ingest, in any process) has. Blobs that cannot write aside get
        the original with the renditions.
        """
        put_aside = getattr(self.blobs, "put_aside", None)
        keep = getattr(self.blobs, "keep", None)
        if put_aside is None or keep is None or not data or self.blobs.exists("original", sha):
            return self._analyze(data, name, sha, quarantine=quarantine)
        writing: Future[Path] = _in_thread(put_aside, "original", sha, data)
        try:
            analysis = self._analyze(data, name, sha, quarantine=quarantine)
        except BaseException:
            if writing.exception() is None:  # (waits for the write)
                writing.result().unlink(missing_ok=True)
            raise
        keep("original", sha, writing.result())
        return analysis

    def _current(self, project: str, sha: str) -> ImageRecord | None:
        """The image whose current version, or pair's RAW file, has these bytes (older versions' make new images)."""
        image = self.store.find_by_sha(project, sha)
        return image if image is not None and sha in (image.sha256, image.raw_sha256) else None

    def commit(
        self,
        analysis: Analysis,
        data: bytes,
        filename: str,
        project: str,
        mtime_s: float | None,
        *,
        device: Device | None = None,
        folder: str = "",
    ) -> IngestResult:
        """Write the files, then the row and its feed entry, then wake the bus.

        Inside a `Turn` (the hot folder), the row is added only once every earlier arrival is committed.
        A RAW or JPEG whose partner of one capture is stored already joins that image (`dashboard.pairs`):
        the result is then `updated`, never a second image.
        """
        record = self._store_blobs(analysis, data, filename, project, mtime_s)
        turn = _turn.get()
        if turn is not None:
            turn.wait()
        key = pairs.pair_key(folder, filename, analysis.format)
        stored, change = self.store.add_image(record, device=device, pair_key=key)
        if change is None:
            return IngestResult(stored, created=False)
        paired = change.kind == IMAGE_UPDATED
        if paired:
            log.info("pair made %s → %s (%s) #%d", filename, project, stored.id, change.seq)
        else:
            log.info("image received %s → %s #%d (%s)", filename, project, stored.seq, stored.id)
        self.bus.publish(project, change.seq)
        if turn is not None:
            turn.done()
        if change.data != PAIRED_RAW:  # a pair's RAW is not shown: its preview is never asked for
            self._preview_later(analysis, stored)
        return IngestResult(stored, created=not paired, updated=paired)

    def commit_version(
        self,
        analysis: Analysis,
        data: bytes,
        filename: str,
        project: str,
        mtime_s: float | None,
        replaces: str,
        base_sha256: str,
        device: Device | None,
    ) -> IngestResult:
        """Write the files, then the new version (and any conflict copy) with its feed entries, then wake the bus."""
        record = self._store_blobs(analysis, data, filename, project, mtime_s)
        turn = _turn.get()
        if turn is not None:
            turn.wait()
        result = self.store.add_version(project, replaces, record, base_sha256=base_sha256, device=device)
        if not result.changes:
            log.info("duplicate %s in %s: already stored as %s", filename, project, result.image.id)
            return IngestResult(result.image, created=False)
        image = result.image
        log.info("version %d of %s: %s → %s #%d", image.version, image.id, filename, project, result.changes[0].seq)
        if result.outcome == CONFLICT and result.conflict_copy is not None:
            copy = result.conflict_copy
            log.warning(
                "conflict on %s in %s: the other version is kept as %s (%s)", image.id, project, copy.filename, copy.id
            )
        self.bus.publish(project, result.changes[-1].seq)
        if turn is not None:
            turn.done()
        self._preview_later(analysis, image)
        return IngestResult(
            image, created=False, updated=result.outcome in (UPDATED, CONFLICT), conflict_copy=result.conflict_copy
        )

    def _store_blobs(
        self, analysis: Analysis, data: bytes, filename: str, project: str, mtime_s: float | None
    ) -> ImageRecord:
        """Write the original and its renditions (unless there: `_analyze_writing`); the record to store for them."""
        self.blobs.put("original", analysis.sha256, data)
        self._put_renditions(analysis)
        now = utc_now_iso()
        return ImageRecord(
            id=new_id(),
            project=project,
            filename=filename,
            sha256=analysis.sha256,
            size_bytes=len(data),
            width=analysis.width,
            height=analysis.height,
            format=analysis.format,
            mime=MIME_BY_FORMAT.get(analysis.format) or mimetypes.guess_type(filename)[0] or "image/*",
            captured_at=analysis.captured_at or (epoch_to_iso(mtime_s) if mtime_s else now),
            camera_make=analysis.camera_make,
            camera_model=analysis.camera_model,
            created_at=now,
            exif=analysis.exif,
        )

    def _put_renditions(self, analysis: Analysis) -> None:
        if analysis.preview_jpeg is not None:
            self.blobs.put("preview", analysis.sha256, analysis.preview_jpeg)
        self.blobs.put("thumb", analysis.sha256, analysis.thumb_jpeg)

    def _analyze_writing(self, data: bytes, name: str, sha: str) -> Analysis:
        """`_analyze_keeping`, then the renditions written too (`ingest_many`'s decode threads).

        Each blob write waits for its fsync: done here, the writes of several files overlap, instead of
        queuing in the one thread that commits them in order (its `put` then finds them there).
        """
        analysis = self._analyze_keeping(data, name, sha, quarantine=True)
        self._put_renditions(analysis)
        return analysis

    def _preview_later(self, analysis: Analysis, image: ImageRecord) -> None:
        """Have the preview the decode left out made now that the image is published (unless it exists)."""
        if analysis.preview_jpeg is None and not self.blobs.exists("preview", analysis.sha256):
            self.previews.schedule(PreviewJob(image.project, image.id, analysis.sha256, image.filename))

    def _read(
        self, source: bytes | Path, filename: str | None, mtime_s: float | None
    ) -> tuple[bytes, str, float | None]:
        # A name is only a label, but it is logged and exported: one printable line, whatever its source.
        if isinstance(source, bytes | bytearray | memoryview):
            return bytes(source), clean_filename(filename), mtime_s
        path = Path(source)
        name = clean_filename(filename or path.name)
        try:
            stat = path.stat()
            if stat.st_size > self.limits.max_bytes:
                raise TooLarge(name, f"{stat.st_size} bytes is over the limit of {self.limits.max_bytes} bytes")
            return path.read_bytes(), name, stat.st_mtime if mtime_s is None else mtime_s
        except OSError as exc:
            raise IngestError(name, f"cannot be read ({exc.strerror or exc})") from exc

    def ingest_many(
        self,
        paths: Iterable[Path],
        project: str,
        *,
        workers: int | None = None,
        on_result: Callable[[Path, IngestResult | IngestError], None] | None = None,
    ) -> IngestStats:
        """Bulk import: decode in `workers` decoder processes at once (default: the pool's), commit in this thread."""
        from dashboard.decoders import DecoderPool

        stats = IngestStats()
        own = DecoderPool(workers) if workers and workers != self.decoders.size else None
        decoders = own or self.decoders
        try:
            threads = decoders.size * THREADS_PER_DECODER
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fotoflo-decode") as pool:
                for path, outcome in self._pipeline(paths, project, pool, decoders, window=threads * 2):
                    if isinstance(outcome, IngestError):
                        stats.refused.append(outcome)
                    elif outcome.created:
                        stats.created += 1
                    else:
                        stats.duplicates += 1
                    if on_result:
                        on_result(path, outcome)
        finally:
            if own is not None:
                own.close()
        return stats

    def _pipeline(
        self, paths: Iterable[Path], project: str, pool: Executor, decoders: DecoderPool, window: int
    ) -> Iterator[tuple[Path, IngestResult | IngestError]]:
        pending: list[tuple[Path, bytes, str, str, float | None, Future[Analysis] | None]] = []
        ingestor = self if decoders is self.decoders else copy.copy(self)
        ingestor.decoders = decoders

        def drain(limit: int) -> Iterator[tuple[Path, IngestResult | IngestError]]:
            while len(pending) > limit:
                path, data, name, sha, mtime_s, future = pending.pop(0)
                try:
                    if future is None:
                        existing = self._current(project, sha)
                        assert existing is not None
                        yield path, IngestResult(existing, created=False)
                    else:
                        folder = path.parent.as_posix()
                        yield path, self.commit(future.result(), data, name, project, mtime_s, folder=folder)
                except IngestError as exc:
                    log.warning("refused %s: %s", exc.filename, exc.reason)
                    yield path, exc

        for path in paths:
            try:
                data, name, mtime_s = self._read(path, None, None)
            except IngestError as exc:
                yield path, exc
                continue
            sha = sha256_of(data)
            duplicate = bool(data) and self._current(project, sha) is not None
            future = None if duplicate else pool.submit(ingestor._analyze_writing, data, name, sha)
            pending.append((path, data, name, sha, mtime_s, future))
            yield from drain(window)
        yield from drain(0)


def _in_thread(fn: Callable[..., T], *args: Any) -> Future[T]:
    """Run `fn(*args)` in a thread of its own; its outcome as a future (a short one: no pool to stop)."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=run, name="fotoflo-keep-original", daemon=True).start()
    return future
