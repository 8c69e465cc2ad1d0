"""The producer: what is in the synced folder becomes rows of the queue.

Events come from the hot folder's own `HotFolderWatcher` (watchdog, close-write, settle time,
periodic rescans; the same rules for hidden, temp and partial names), which calls `note` once a
file is complete. `note` hashes a file only when its size or mtime differ from what the queue
last recorded for its path, so a rescan of a large synced folder costs a `stat` per file.
`scan` walks the whole folder once, synchronously (the start of `fotoflo sync --once`).

With `delete` (`--delete`), a synced file gone from the folder becomes a deletion row, found by
reconciling the queue's synced paths with the folder, as Syncthing does with snapshots: at each
`scan`, and every `rescan_s` while watching (`sweep`). A pass first notes the files that may be a
missing file moved (so a move is seen as one, not as a deletion), and a file must be missing at
two passes in a row (one, with `at_once`) to be deleted, so a move made during a pass is noted
before. None is queued while the folder is missing or none of its synced files is left in it (an
unmounted drive, a moved folder: `held` says so).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dashboard.imaging.formats import IMAGE_SUFFIXES
from dashboard.sync.queue import DONE, SKIPPED, UPLOAD, Synced, SyncQueue
from dashboard.sync.uploader import MASS_DELETE_MIN, YOUNG_S, sha256_file
from dashboard.watcher import DEFAULT_RESCAN_S, HotFolderWatcher, is_ignored

log = logging.getLogger("fotoflo.sync")


@dataclass
class ScanResult:
    """What one pass over the folder found, by what `SyncQueue.observe` said (plus `changing`)."""

    files: int = 0
    queued: int = 0
    renamed: int = 0
    known: int = 0
    changing: int = 0  # being written while hashed: looked at again later
    deleting: int = 0  # with `delete`: synced files gone from the folder, queued for deletion


class Producer:
    """Feeds the queue from `folder`; `on_queued` is called after each row queued (to wake the uploader).

    `delete`: synced files gone from the folder are queued for deletion on the server (off by default).
    """

    def __init__(
        self,
        folder: Path,
        queue: SyncQueue,
        *,
        on_queued: Callable[[], None] | None = None,
        delete: bool = False,
    ) -> None:
        self.folder = Path(folder).resolve()
        self.queue = queue
        self.delete = delete
        self.held: str | None = None  # why deletions are not being queued now (the folder looks unmounted)
        self._missing_before: set[str] = set()  # synced paths missing at the last pass
        self._passes = threading.Lock()  # one pass at a time (a sweep, a scan asked for)
        self._on_queued = on_queued
        self._watcher: HotFolderWatcher | None = None
        self._sweeper: threading.Thread | None = None
        self._stop_sweeping = threading.Event()

    def wanted(self, path: Path) -> bool:
        """Image files only (by name: ingest decides by content), not hidden, temp or partial ones."""
        return path.suffix.lower() in IMAGE_SUFFIXES and not is_ignored(path, self.folder)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix()

    def note(self, path: Path) -> str:
        """Queue `path` if it is new or changed.

        Returns `SyncQueue.observe`'s answer, or `ignored`, `gone` or `changing` (hashed while written).
        """
        path = Path(path)
        if not self.wanted(path):
            return "ignored"
        try:
            before = path.stat()
        except OSError:
            return "gone"
        rel = self.relative(path)
        if self._known(rel, before):
            return "known"
        try:
            sha = sha256_file(path)
            after = path.stat()
        except OSError:
            return "gone"
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            return "changing"  # its writer is still at it; its next event brings it back
        outcome = self.queue.observe(
            rel, after.st_size, after.st_mtime_ns, sha, gone=lambda old: not (self.folder / old).exists()
        )
        if outcome == "renamed":
            log.info("%s: renamed from a synced file, nothing to send", rel)
        elif outcome == "queued":
            log.debug("queued %s (%s)", rel, sha[:12])
            if self._on_queued is not None:
                self._on_queued()
        return outcome

    def _known(self, rel: str, st: os.stat_result) -> bool:
        """The queue has this file as it is (same size and mtime): no need to hash it."""
        latest = self.queue.latest(rel)
        return (
            latest is not None
            and latest.action == UPLOAD  # after a deletion, the file is back: `observe` settles that
            and latest.state != SKIPPED
            and (latest.size_bytes, latest.mtime_ns) == (st.st_size, st.st_mtime_ns)
            # A synced file whose mapping went to a copy of it (taken for a move while it was away) is new.
            and (latest.state != DONE or self.queue.mapping(rel) is not None)
        )

    def files(self) -> Iterator[Path]:
        """Every wanted file under the folder (hidden folders are not entered)."""
        for dirpath, dirnames, filenames in os.walk(self.folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if self.wanted(path):
                    yield path

    def scan(self, progress: Callable[[Path, str], None] | None = None) -> ScanResult:
        """One pass over the whole folder; `progress(path, outcome)` after each file. Then, with `delete`,
        the deletions it shows."""
        result = ScanResult()
        for path in self.files():
            outcome = self.note(path)
            result.files += 1
            if outcome in ("queued", "renamed", "known", "changing"):
                setattr(result, outcome, getattr(result, outcome) + 1)
            if progress is not None:
                progress(path, outcome)
        result.deleting = self.find_deletions()
        return result

    # -- deletions ------------------------------------------------------------------------

    def find_deletions(self, *, at_once: bool = False) -> int:
        """With `delete`: one pass over the synced paths; how many deletions it queued.

        A synced file surely gone (a path that cannot be looked at is not) at this pass and at
        the one before (`at_once`: at this one) is queued for deletion. Nothing is queued while the
        folder is missing, or while none of its synced files (`MASS_DELETE_MIN` or more) is left
        in it: `held` then says why.
        """
        if not self.delete:
            return 0
        with self._passes:
            return self._find_deletions(at_once)

    def _find_deletions(self, at_once: bool) -> int:
        synced = self.queue.synced()
        missing = self._missing(synced)
        if missing is None:
            return self._hold(f"{self.folder} is missing" if synced else None)
        if len(missing) == len(synced) >= MASS_DELETE_MIN:
            return self._hold(f"none of the {len(synced)} synced files is in {self.folder} any more")
        self._hold(None)
        confirmed = [rel for rel in missing if at_once or rel in self._missing_before]
        self._missing_before = set(missing)
        queued = sum(self.queue.queue_delete(rel) for rel in confirmed)
        if queued:
            log.info("%d synced file(s) gone from the folder: deleting them on the server", queued)
            if self._on_queued is not None:
                self._on_queued()
        return queued

    def _missing(self, synced: dict[str, Synced]) -> dict[str, str] | None:
        """The synced paths whose files are surely gone, with their SHA-256; `None` if the folder is."""
        if not self.folder.is_dir():
            return None
        missing = {}
        for rel, mapped in synced.items():
            try:
                (self.folder / rel).stat()
            except FileNotFoundError:
                missing[rel] = mapped.sha256
            except OSError:
                continue  # cannot tell (permissions, I/O errors): not gone
        return missing

    def _hold(self, why: str | None) -> int:
        held = None if why is None else f"not deleting anything on the server: {why} (an unmounted drive?)"
        if held is not None and held != self.held:
            log.warning("%s", held)
        self.held = held
        if held is not None:
            self._missing_before = set()  # once it is back, a file must be missed twice again
        return 0

    def sweep(self) -> int:
        """The periodic pass of `delete`: note the files that may be a missing file moved, then `find_deletions`.

        A file the queue does not know yet is noted if it is old enough to be complete, or if its
        bytes are those of a missing synced file (a move: complete by nature); one being written
        is left to the watcher.
        """
        missing = self._missing(self.queue.synced()) if self.delete else None
        if missing:
            moved = set(missing.values())
            for path in self.files():
                try:
                    st = path.stat()
                    if self._known(self.relative(path), st):
                        continue
                    if time.time_ns() - st.st_mtime_ns >= YOUNG_S * 1e9 or sha256_file(path) in moved:
                        self.note(path)
                except OSError:
                    continue  # gone meanwhile
        return self.find_deletions()

    def _sweep_every(self, interval_s: float) -> None:
        while True:
            try:
                self.sweep()
            except Exception:
                log.exception("looking for deleted files in %s failed", self.folder)
            if self._stop_sweeping.wait(interval_s):
                return

    # -- watching -------------------------------------------------------------------------

    def start_watching(self, *, rescan_s: float = DEFAULT_RESCAN_S) -> None:
        """Watch the folder (scanning it at once, then every `rescan_s`), in the watcher's threads;
        with `delete`, look for deleted files as often, in a thread of its own."""
        self._watcher = HotFolderWatcher(self.folder, self.note, rescan_s=rescan_s)
        self._watcher.start()
        if self.delete:
            self._stop_sweeping.clear()
            self._sweeper = threading.Thread(
                target=self._sweep_every, args=(rescan_s,), name="fotoflo-sync-deletions", daemon=True
            )
            self._sweeper.start()

    def stop_watching(self) -> None:
        self._stop_sweeping.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=30)
            self._sweeper = None
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
