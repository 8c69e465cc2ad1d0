"""The producer: what is in the synced folder becomes rows of the queue.

Events come from the hot folder's own `HotFolderWatcher` (watchdog, close-write, settle time,
periodic rescans; the same rules for hidden, temp and partial names), which calls `note` once a
file is complete. `note` hashes a file only when its size or mtime differ from what the queue
last recorded for its path, so a rescan of a large synced folder costs a `stat` per file.
`scan` walks the whole folder once, synchronously (the start of `fotoflo sync --once`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dashboard.ingest import IMAGE_SUFFIXES
from dashboard.sync.queue import SKIPPED, SyncQueue
from dashboard.sync.uploader import sha256_file
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


class Producer:
    """Feeds the queue from `folder`; `on_queued` is called after each file queued (to wake the uploader)."""

    def __init__(self, folder: Path, queue: SyncQueue, *, on_queued: Callable[[], None] | None = None) -> None:
        self.folder = Path(folder).resolve()
        self.queue = queue
        self._on_queued = on_queued
        self._watcher: HotFolderWatcher | None = None

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
        latest = self.queue.latest(rel)
        fingerprint = (before.st_size, before.st_mtime_ns)
        if latest is not None and latest.state != SKIPPED and (latest.size_bytes, latest.mtime_ns) == fingerprint:
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

    def files(self) -> Iterator[Path]:
        """Every wanted file under the folder (hidden folders are not entered)."""
        for dirpath, dirnames, filenames in os.walk(self.folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if self.wanted(path):
                    yield path

    def scan(self, progress: Callable[[Path, str], None] | None = None) -> ScanResult:
        """One pass over the whole folder; `progress(path, outcome)` after each file."""
        result = ScanResult()
        for path in self.files():
            outcome = self.note(path)
            result.files += 1
            if outcome in ("queued", "renamed", "known", "changing"):
                setattr(result, outcome, getattr(result, outcome) + 1)
            if progress is not None:
                progress(path, outcome)
        return result

    # -- watching -------------------------------------------------------------------------

    def start_watching(self, *, rescan_s: float = DEFAULT_RESCAN_S) -> None:
        """Watch the folder (scanning it at once, then every `rescan_s`), in the watcher's threads."""
        self._watcher = HotFolderWatcher(self.folder, self.note, rescan_s=rescan_s)
        self._watcher.start()

    def stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
