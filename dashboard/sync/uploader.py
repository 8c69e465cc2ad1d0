"""The consumer: claims rows from the queue and gets their bytes onto the server, exactly once.

For each claimed row the uploader checks the file is still the one queued, asks the server whether
it already has those bytes (a restart after a crash, a renamed or copied file: nothing is sent
again), and only then streams the file. Every outcome is committed to the queue before the next
row is claimed. Failures back off exponentially with jitter, per file for server errors and for
the whole client while the server cannot be reached; refusals of the file itself are final.

A deletion row (`--delete`) deletes the image of a synced file gone from the folder, only while the
server's current version is the one this device last synced, and not when the file is back, when
another file here is the same image, or when the whole folder is missing (an unmounted drive).

`run_one()` does one row in the calling thread, so a simulation can drive the uploader step by
step with a fake clock; `start()` runs `workers` threads that loop on it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dashboard.events import Device
from dashboard.sync.queue import DELETE, Job, SyncQueue, Upload
from dashboard.sync.transport import (
    CHANGED,
    GONE,
    PERMANENT_CODES,
    ChangedWhileSending,
    Fatal,
    Refused,
    ReplacedImageGone,
    Retryable,
    Transport,
    Unreachable,
)

log = logging.getLogger("fotoflo.sync")

HASH_CHUNK_BYTES = 1024 * 1024
STOP_GRACE_S = 2.0  # in seconds: how long `stop` lets uploads under way finish before it cuts them off
YOUNG_S = 2.0  # in seconds: a file changed this recently may still be being written
#: This many synced files or more all gone at once is a missing drive, not deletions.
MASS_DELETE_MIN = 2


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter": attempt n waits between d/2 and d, d = min(cap, base·2^(n-1))."""

    base_s: float = 1.0
    cap_s: float = 300.0

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        d = min(self.cap_s, self.base_s * 2 ** max(0, attempt - 1))
        return d / 2 + rng.uniform(0, d / 2)


@dataclass(frozen=True)
class RetryPolicy:
    """How the uploader retries: per file after server errors (`file`, at most `max_attempts` attempts),
    and for the whole client while the server is unreachable (`offline`, never giving up)."""

    file: Backoff = Backoff(1.0, 300.0)
    offline: Backoff = Backoff(0.5, 15.0)
    max_attempts: int = 10


@dataclass
class InFlight:
    """A file being sent right now."""

    path: str
    size_bytes: int
    sent_bytes: int = 0


class Uploader:
    """Uploads the queue's rows through `transport`; `folder` is where their paths are."""

    def __init__(
        self,
        queue: SyncQueue,
        transport: Transport,
        folder: Path,
        device: Device,
        *,
        workers: int = 2,
        policy: RetryPolicy = RetryPolicy(),
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_change: Callable[[], None] | None = None,
        recheck: Callable[[str], object] | None = None,
    ) -> None:
        """`recheck(path)` asks the producer to look at a file again (it changed under an upload)."""
        self.queue = queue
        self.transport = transport
        self.folder = Path(folder)
        self.device = device
        self.workers = workers
        self.policy = policy
        self.clock = clock
        self.rng = rng or random.Random()
        self._on_change = on_change
        self._recheck = recheck
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.in_flight: dict[int, InFlight] = {}
        self.offline_reason: str | None = None
        self.offline_until = 0.0
        self._offline_failures = 0
        self.fatal: str | None = None
        self._sent: deque[tuple[float, int]] = deque(maxlen=4096)  # (monotonic time, bytes) for throughput

    # -- threads --------------------------------------------------------------------------

    def start(self) -> None:
        for n in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"fotoflo-sync-upload-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop claiming; uploads still in flight after a short grace are cut off and go back to pending
        (sent again next time)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        # First let the requests under way end by themselves: closing the HTTP client while one of them
        # is still connecting leaves that connection outside its pool, open until the garbage collector.
        deadline = time.monotonic() + STOP_GRACE_S
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.transport.close()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()

    def wake(self) -> None:
        """Something new may be due (the producer queued a file, or a person asked to retry)."""
        with self._cond:
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                wait_s = self._blocked_for()
            if wait_s > 0:
                with self._cond:
                    if not self._stopping:
                        self._cond.wait(timeout=wait_s)
                continue
            try:
                worked = self.run_one()
            except Exception:
                log.exception("sync upload step failed")
                worked = False
            if not worked:
                due = self.queue.next_due()
                wait_s = 1.0 if due is None else min(1.0, max(0.05, due - self.clock()))
                with self._cond:
                    if not self._stopping:
                        self._cond.wait(timeout=wait_s)

    def _blocked_for(self) -> float:
        """Seconds to wait before claiming anything (offline backoff; 1 s rechecks while fatal)."""
        if self.fatal is not None:
            return 1.0
        return max(0.0, self.offline_until - self.clock())

    # -- one row --------------------------------------------------------------------------

    def run_one(self) -> bool:
        """Claim and process one due row; `False` when none was due (or the client cannot upload now)."""
        if self.fatal is not None or self.offline_until > self.clock():
            return False
        job = self.queue.claim()
        if job is None:
            return False
        try:
            self._process(job)
        except Exception as exc:
            # A bug, not a verdict on the file: the row must not stay `uploading` in a process that lives on.
            if job.upload.attempts >= self.policy.max_attempts:
                self.queue.fail(job.upload.id, "error", f"gave up after {job.upload.attempts} attempts: {exc!r}")
            else:
                delay_s = self.policy.file.delay_s(job.upload.attempts, self.rng)
                self.queue.retry(job.upload.id, f"error: {exc!r}", delay_s=delay_s)
            raise
        finally:
            with self._cond:
                self.in_flight.pop(job.upload.id, None)
            if self._on_change is not None:
                self._on_change()
        return True

    def _process(self, job: Job) -> None:
        if job.upload.action == DELETE:
            self._delete(job.upload)
            return
        row = job.upload
        path = self.folder / row.path
        try:
            st = path.stat()
            fingerprint: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            fingerprint = None
        except OSError as exc:
            self.queue.fail(row.id, "unreadable", f"cannot be read ({exc.strerror or exc})")
            return
        unchanged = fingerprint == (row.size_bytes, row.mtime_ns)
        with self._cond:
            self.in_flight[row.id] = InFlight(row.path, row.size_bytes)
        asked = False
        try:
            # Ask first: bytes sent before a crash or a lost answer, or a renamed or copied file,
            # are not sent again. A changed file's row stands for bytes it no longer has: it is
            # settled by this answer alone (the new bytes are a row of their own). Bytes that are
            # only an older version of an image are sent: the server decides what they become.
            remote = self.transport.lookup(row.sha256)
            if remote is not None and remote.current:
                self._online()
                self.queue.finish(row.id, remote.image_id, "present")
                return
            if not unchanged:
                self._online()
                gone = fingerprint is None
                self.queue.skip(row.id, "deleted or moved before it was sent" if gone else "changed before it was sent")
                if not gone and self._recheck is not None:
                    self._recheck(row.path)
                return
            asked = True
            remote = self.transport.upload(
                path,
                Path(row.path).name,
                row.sha256,
                replaces=job.replaces,
                base_sha256=job.base_sha256,
                device=self.device,
                progress=lambda sent: self._progress(row.id, sent),
                folder=posixpath.dirname(row.path),
            )
        except Unreachable as exc:
            if asked:
                # The server answered the question a moment ago: it is this upload that broke off
                # (cut, or a body the server will not take). Back this file off, without holding
                # up the others, and give up on it after `max_attempts`.
                self._online()
                self._back_off(row, exc)
            else:
                self._offline(str(exc))
                self.queue.retry(row.id, str(exc), delay_s=0, count_attempt=False)
            return
        except Fatal as exc:
            self._stop_for(row, exc)
            return
        except ChangedWhileSending as exc:
            # The server refused bytes that were not the ones hashed: nothing of them is stored.
            self._online()
            self.queue.skip(row.id, f"changed while it was sent ({exc})")
            if self._recheck is not None:
                self._recheck(row.path)
            return
        except ReplacedImageGone:
            # The image was removed from the server: what the file holds goes up as a new image.
            self._online()
            self.queue.forget_image(row.path)
            self.queue.retry(row.id, "its image is gone from the server: sending it as a new image", delay_s=0)
            return
        except Refused as exc:
            self._online()
            if exc.code == "corrupt" and self._maybe_incomplete(path, row.size_bytes, row.mtime_ns):
                self.queue.retry(row.id, f"not complete yet? ({exc.reason})", delay_s=YOUNG_S)
            elif exc.code in PERMANENT_CODES or exc.code == "corrupt" or row.attempts >= self.policy.max_attempts:
                log.info("refused %s: %s", row.path, exc.reason)
                self.queue.fail(row.id, exc.code, exc.reason)
            else:
                self.queue.retry(row.id, exc.reason, delay_s=self.policy.file.delay_s(row.attempts, self.rng))
            return
        except Retryable as exc:
            self._online()
            self._back_off(row, exc)
            return
        self._online()
        if remote.outcome == "conflict":
            log.warning("conflict on %s: the other version is kept as image %s", row.path, remote.conflict_copy_id)
        self.queue.finish(row.id, remote.image_id, remote.outcome, head=remote.current)

    def _delete(self, row: Upload) -> None:
        if row.image_id is None:
            self.queue.finish_delete(row.id, GONE, "not synced any more: nothing to delete")
            return
        unmounted = self._unmounted()
        if unmounted is not None:
            # Never from a folder that is gone as a whole: an unmounted drive is not a deletion.
            self.queue.skip(row.id, f"not deleted: {unmounted} (an unmounted drive?)")
            return
        try:
            (self.folder / row.path).stat()
            back = True
        except FileNotFoundError:
            back = False
        except OSError as exc:
            self.queue.skip(row.id, f"not deleted: cannot tell whether it is gone ({exc.strerror or exc})")
            return
        if not back and self.queue.shares_image(row.path):
            self.queue.finish_delete(row.id, "kept", "not deleted: another file here is the same image")
            return
        try:
            if back:
                # Restored (or a deletion that may have been sent is being retried): whether its
                # image is still there says if the file must go up again.
                remote = self.transport.lookup(row.sha256)
                self._online()
                if remote is not None and remote.image_id == row.image_id:
                    self.queue.skip(row.id, "back before it was deleted")
                else:
                    self.queue.finish_delete(row.id, GONE, "back, but its image is gone from the server")
                    if self._recheck is not None:
                        self._recheck(row.path)
                return
            outcome = self.transport.delete(row.image_id, if_sha256=row.sha256)
        except Unreachable as exc:
            # One request, idempotent: whether it was cut or refused, it is simply sent again.
            self._offline(str(exc))
            self.queue.retry(row.id, str(exc), delay_s=0, count_attempt=False)
            return
        except Fatal as exc:
            self._stop_for(row, exc)
            return
        except Refused as exc:
            self._online()
            self.queue.fail(row.id, exc.code, exc.reason)
            return
        except Retryable as exc:
            self._online()
            self._back_off(row, exc)
            return
        self._online()
        if outcome == CHANGED:
            log.warning("%s was changed on the server since this device synced it: not deleted", row.path)
            self.queue.finish_delete(row.id, CHANGED, "changed on the server since; not deleted")
        else:
            log.info("%s: deleted from the server (%s)", row.path, outcome)
            self.queue.finish_delete(row.id, outcome)

    def _unmounted(self) -> str | None:
        """Why the folder looks unmounted (missing, or empty while it had synced files), else `None`."""
        try:
            with os.scandir(self.folder) as entries:
                empty = next(entries, None) is None
        except OSError:
            return "the folder is missing"
        if empty and len(self.queue.synced()) >= MASS_DELETE_MIN:
            return "the folder is empty"
        return None

    def _stop_for(self, row: Upload, exc: Fatal) -> None:
        if self.fatal is None:
            log.warning("sync stopped: %s", exc)
        self.fatal = str(exc)
        self.queue.retry(row.id, str(exc), delay_s=0, count_attempt=False)

    def _back_off(self, row: Upload, exc: Exception) -> None:
        """A transient server error: this row again later, or failed after `max_attempts`."""
        if row.attempts >= self.policy.max_attempts:
            self.queue.fail(row.id, "gave_up", f"gave up after {row.attempts} attempts: {exc}")
        else:
            self.queue.retry(row.id, str(exc), delay_s=self.policy.file.delay_s(row.attempts, self.rng))

    def _maybe_incomplete(self, path: Path, size_bytes: int, mtime_ns: int) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        changed = (st.st_size, st.st_mtime_ns) != (size_bytes, mtime_ns)
        return changed or (time.time_ns() - st.st_mtime_ns) < YOUNG_S * 1e9

    # -- connection state -----------------------------------------------------------------

    def _offline(self, reason: str) -> None:
        with self._cond:
            self._offline_failures += 1
            delay_s = self.policy.offline.delay_s(self._offline_failures, self.rng)
            if self.offline_reason is None:
                log.warning("%s; retrying in %.1f s", reason, delay_s)
            self.offline_reason = reason
            self.offline_until = max(self.offline_until, self.clock() + delay_s)

    def _online(self) -> None:
        with self._cond:
            if self.offline_reason is not None:
                log.info("connected again")
            self.offline_reason = None
            self._offline_failures = 0
            self.offline_until = 0.0

    def resume(self) -> None:
        """Try again now: after a fatal error a person fixed, or to end an offline wait early."""
        with self._cond:
            self.fatal = None
            self.offline_until = 0.0
            self._cond.notify_all()

    # -- progress -------------------------------------------------------------------------

    def _progress(self, upload_id: int, sent_bytes: int) -> None:
        with self._cond:
            current = self.in_flight.get(upload_id)
            if current is None:
                return
            self._sent.append((time.monotonic(), sent_bytes - current.sent_bytes))
            current.sent_bytes = sent_bytes

    def bytes_per_s(self, window_s: float = 5.0) -> float:
        """Bytes sent per second over the last `window_s` seconds."""
        now = time.monotonic()
        with self._cond:
            recent = sum(n for t, n in self._sent if now - t <= window_s)
        return recent / window_s

    def uploading(self) -> list[InFlight]:
        with self._cond:
            return [InFlight(f.path, f.size_bytes, f.sent_bytes) for f in self.in_flight.values()]
