"""The hot folder: watchdog events → a settle queue → ingest, plus scans at start and periodically.

A file is read only once it is complete: its size and mtime must still be the same a moment
(`debounce_s`) after the event that made it a candidate, and

- after a close-write event (Linux inotify) or a rename inside the folder, that is all;
- after any other event (created, modified: a file renamed in from outside the watched tree, a hard
  link, a writer at work) the watcher asks the kernel whether anyone holds the file open for writing
  (`nobody_writing`, a read lease). When no one does, the file is complete now: a rename or a link
  made it whole at once. When someone does, or the kernel cannot tell (another user's file without
  CAP_LEASE, a network filesystem, not Linux), it must stay unchanged for `settle_s` as before, unless
  the writer's close-write comes first.

Scans at start and every `rescan_s` catch whatever events were missed; ingest is idempotent, so
seeing a file twice is harmless. Files are handed to ingest in the order they became complete, and
ingests that run in parallel commit in that order too (`dashboard.ingest.Turns`).
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from dashboard.imaging.errors import CorruptImage, IngestError
from dashboard.ingest import Turn, Turns

if sys.platform == "linux":
    import fcntl

log = logging.getLogger("fotoflo.watcher")

DEFAULT_RESCAN_S = 60.0
DEFAULT_SETTLE_S = 1.0  # in seconds: quiet time that proves a file complete without close-write
DEFAULT_DEBOUNCE_S = 0.01  # in seconds: re-check after an event that nobody changed the file since

TEMP_SUFFIXES = (
    ".part",
    ".partial",
    ".tmp",
    ".temp",
    ".crdownload",
    ".download",
    ".filepart",
    ".swp",
    ".!qb",
    "~",
)
TEMP_PREFIXES = ("~$", ".~")


def is_ignored(path: Path, root: Path) -> bool:
    """Hidden files and folders, and the temp/partial names that downloaders and editors use."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return True
    if any(p.startswith(".") for p in parts):
        return True
    name = path.name.lower()
    return name.endswith(TEMP_SUFFIXES) or name.startswith(TEMP_PREFIXES)


def shown(path: Path) -> str:
    """A path as one printable log line: control and direction characters escaped (a name may hold a newline)."""
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in str(path))


Fingerprint = tuple[int, int]  # (size in bytes, mtime in ns)


def _fingerprint(path: Path) -> Fingerprint | None:
    try:
        st = path.stat()
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return st.st_size, st.st_mtime_ns


def nobody_writing(path: Path) -> bool | None:
    """Whether no process holds `path` open for writing: True, False, or None when the kernel cannot tell.

    Linux grants a read lease (`F_SETLEASE`, `F_RDLCK`) only while no one has the file open for
    writing; it is taken and given back at once. It needs the file's owner or CAP_LEASE and a local
    filesystem; elsewhere (and off Linux) the answer is None. A symlink is not followed (None).
    """
    if sys.platform != "linux":
        return None
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):  # opening a device or a FIFO may do something
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        # A writer opening the file while the lease is held makes the kernel signal the holder (SIGIO by
        # default, which would end this process): ask for SIGURG instead, whose default is to ignore it.
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return False if exc.errno in (errno.EAGAIN, errno.EBUSY) else None
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return True
    finally:
        os.close(fd)


@dataclass
class _Candidate:
    seen: Fingerprint | None = None
    closed: bool = False  # the writer closed it (or it was renamed in): only a short check remains
    probe: bool = False  # no close-write seen: after the short check, ask whether anyone still writes it
    due_s: float = 0.0


class HotFolderWatcher:
    """Watches `root` recursively and calls `ingest(path)` once per complete new or changed file.

    `ingest` raises `IngestError` to refuse a file; the watcher logs the refusal and does not
    retry that file until it changes (so `ingest` itself should not log it again). The sync
    client passes its own `ingest`, which queues the file for upload.
    """

    def __init__(
        self,
        root: Path,
        ingest: Callable[[Path], object],
        *,
        rescan_s: float = DEFAULT_RESCAN_S,
        settle_s: float = DEFAULT_SETTLE_S,
        debounce_s: float = DEFAULT_DEBOUNCE_S,
        workers: int | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self._ingest = ingest
        self.rescan_s = rescan_s
        self.settle_s = settle_s
        self.debounce_s = debounce_s
        self._pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2, thread_name_prefix="fotoflo-ingest")
        self._cond = threading.Condition()
        self._candidates: dict[Path, _Candidate] = {}
        self._heap: list[tuple[float, int, Path]] = []  # (due, arrival number, path): ties keep arrival order
        self._arrivals = itertools.count()
        self._turns = Turns()
        self._busy: set[Path] = set()
        self._done: dict[Path, Fingerprint] = {}  # ingested or refused, by fingerprint
        self._outside: dict[Path, Path] = {}  # symlinks to outside the folder, by target: each logged once
        self._stopping = False
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._thread: threading.Thread | None = None
        self._next_scan_s = 0.0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        handler = _Handler(self)
        observer = Observer()
        observer.schedule(handler, str(self.root), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._thread = threading.Thread(target=self._run, name="fotoflo-watcher", daemon=True)
        self._thread.start()
        log.info("watching %s (rescan every %.0f s)", self.root, self.rescan_s)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        log.info("stopped watching %s", self.root)

    # -- events in (watchdog thread) ------------------------------------------------------

    def notice(self, path: Path, *, closed: bool) -> None:
        """A file may be new or changed; `closed` means its writer is done with it.

        Either way it is looked at after `debounce_s`; without `closed`, it is taken then only if no one
        holds it open for writing (`nobody_writing`), else after `settle_s` unchanged.
        """
        if is_ignored(path, self.root):
            return
        now = time.monotonic()
        with self._cond:
            cand = self._candidates.setdefault(path, _Candidate())
            cand.closed = closed
            cand.probe = not closed
            cand.seen = _fingerprint(path)
            cand.due_s = now + self.debounce_s
            self._push(cand, path)
            self._cond.notify()

    def _push(self, cand: _Candidate, path: Path) -> None:
        heapq.heappush(self._heap, (cand.due_s, next(self._arrivals), path))

    def forget(self, path: Path) -> None:
        with self._cond:
            self._candidates.pop(path, None)
            self._done.pop(path, None)

    def scan(self, folder: Path | None = None) -> int:
        """Queue every file under `folder` (default: the root) not yet ingested as it is now."""
        queued = 0
        for dirpath, dirnames, filenames in os.walk(folder or self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                path = Path(dirpath) / name
                if is_ignored(path, self.root):
                    continue
                fp = _fingerprint(path)
                with self._cond:
                    if fp is None or self._done.get(path) == fp or path in self._candidates:
                        continue
                    # Present at scan time: complete if it is unchanged a short moment later.
                    cand = self._candidates[path] = _Candidate(
                        seen=fp, closed=True, due_s=time.monotonic() + self.debounce_s
                    )
                    self._push(cand, path)
                    self._cond.notify()
                    queued += 1
        return queued

    # -- settle loop (own thread) ---------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                if now >= self._next_scan_s:
                    self._next_scan_s = now + self.rescan_s
                    scan_due = True
                else:
                    scan_due = False
            if scan_due:
                try:
                    queued = self.scan()
                    if queued:
                        log.info("scan of %s queued %d file(s)", self.root, queued)
                except OSError:
                    log.exception("scanning %s failed", self.root)
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    wait_s = min(self._next_scan_s - now, (self._heap[0][0] - now) if self._heap else 3600)
                    if wait_s <= 0:
                        break
                    self._cond.wait(timeout=wait_s)
                if self._stopping:
                    return
                ready = []
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    due_s, _, path = heapq.heappop(self._heap)
                    cand = self._candidates.get(path)
                    if cand is None or cand.due_s != due_s:
                        continue  # superseded by a later entry for the same file
                    if path in self._busy:  # being ingested: look again once that is done
                        cand.due_s = now + self.debounce_s
                        self._push(cand, path)
                        continue
                    ready.append((path, cand))
            for path, cand in ready:
                self._check(path, cand)

    def _check(self, path: Path, cand: _Candidate) -> None:
        # Asked before the fingerprint is taken: a writer that opens the file after the answer changes it.
        free = nobody_writing(path) if cand.probe else None
        fp = _fingerprint(path)
        with self._cond:
            if self._candidates.get(path) is not cand:
                return
            if fp is None:  # gone (deleted or renamed away)
                self._candidates.pop(path, None)
                return
            if fp != cand.seen:  # still changing: look again later
                cand.seen = fp
                cand.due_s = time.monotonic() + (self.debounce_s if cand.closed or cand.probe else self.settle_s)
                self._push(cand, path)
                return
            if cand.probe:
                cand.probe = False
                if not free:  # someone writes it, or the kernel cannot say: unchanged for the settle time, then
                    cand.due_s = time.monotonic() + self.settle_s
                    self._push(cand, path)
                    return
            if self._done.get(path) == fp:
                self._candidates.pop(path, None)
                return
            del self._candidates[path]
            if self._leaves_root(path):
                self._done[path] = fp  # looked at again only when the link or its target changes
                return
            self._busy.add(path)
            turn = self._turns.take()  # in the order files are found complete: their commits keep it
        self._pool.submit(self._ingest_one, path, fp, turn)

    def _leaves_root(self, path: Path) -> bool:
        """Whether `path` resolves (through symlinks, its own or its folders') to outside the folder; logged once."""
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):  # gone meanwhile, or a symlink loop
            return True
        if target.is_relative_to(self.root):
            self._outside.pop(path, None)
            return False
        if self._outside.get(path) != target:
            self._outside[path] = target
            log.warning("not ingesting %s: it is a symlink to %s, outside the hot folder", shown(path), shown(target))
        return True

    def _ingest_one(self, path: Path, fp: Fingerprint, turn: Turn) -> None:
        try:
            with turn:
                self._ingest(path)
        except CorruptImage as exc:
            # A writer that closes between chunks leaves a truncated file for a moment: only a
            # file that stays as it is for the whole settle time is refused for good.
            if self._still_young(path, fp):
                log.debug("%s is not complete yet (%s); looking again", shown(path), exc.reason)
                self._requeue(path)
            else:
                log.warning("refused %s: %s", shown(path), exc.reason)
                self._mark_done(path, fp)
        except IngestError as exc:
            log.warning("refused %s: %s", shown(path), exc.reason)
            self._mark_done(path, fp)  # not retried until the file changes
        except Exception:
            log.exception("ingesting %s failed", shown(path))
        else:
            self._mark_done(path, fp)
        finally:
            with self._cond:
                self._busy.discard(path)

    def _still_young(self, path: Path, fp: Fingerprint) -> bool:
        return _fingerprint(path) != fp or (time.time_ns() - fp[1]) < self.settle_s * 1e9

    def _requeue(self, path: Path) -> None:
        with self._cond:
            cand = self._candidates.setdefault(path, _Candidate())
            cand.closed = cand.probe = False
            cand.seen = _fingerprint(path)
            cand.due_s = time.monotonic() + self.settle_s
            self._push(cand, path)
            self._cond.notify()

    def _mark_done(self, path: Path, fp: Fingerprint) -> None:
        with self._cond:
            self._done[path] = fp


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: HotFolderWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        src = Path(os.fsdecode(event.src_path))
        if event.is_directory:
            if kind in ("created", "moved"):
                target = Path(os.fsdecode(event.dest_path)) if kind == "moved" else src
                self.watcher.scan(target)
            return
        if kind == "closed":
            self.watcher.notice(src, closed=True)
        elif kind in ("created", "modified"):
            self.watcher.notice(src, closed=False)
        elif kind == "moved":
            self.watcher.forget(src)
            self.watcher.notice(Path(os.fsdecode(event.dest_path)), closed=True)
        elif kind == "deleted":
            self.watcher.forget(src)
