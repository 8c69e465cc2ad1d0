"""Share links' watermarked previews and thumbnails: burned in a decoder worker once, then served from a cache.

A file is named by what it shows, `{link id}-{watermark version}-{image sha256}-{kind}.jpg`, in
`DATA/cache/watermarks/` (each server its own: it is only a cache, remade on a miss). A new watermark
(another version) or another image version is another name, so an entry is never stale, only unused.
The cache is bounded by its size (`max_bytes`, default `DEFAULT_MAX_BYTES`): past it, the least recently
served files go until it is back under three quarters of it. A hit touches its file's time, so what
is served stays. Two requests for one missing file make it once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dashboard.datadir import private_dir

if TYPE_CHECKING:
    from dashboard.auth.store import ShareRecord
    from dashboard.blobs import Blobs
    from dashboard.decoders import DecoderPool

log = logging.getLogger("fotoflo.watermarks")

DEFAULT_MAX_BYTES = 512 * 1024 * 1024  # in bytes: the cache's size on disk
CACHE_DIR = Path("cache") / "watermarks"
_NAME = re.compile(r"[A-Za-z0-9_-]+-\d+-[0-9a-f]{64}-(preview|thumb)\.jpg")


class Watermarks:
    """Watermarked renditions of share links (see the module docstring); safe across threads."""

    def __init__(
        self, root: Path, blobs: Blobs, decoders: DecoderPool | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.root = root
        self.blobs = blobs
        self._decoders = decoders
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._making: dict[str, threading.Lock] = {}
        self._total_bytes: int | None = None  # counted on first use, then kept up to date
        self.hits = 0
        self.misses = 0

    @property
    def decoders(self) -> DecoderPool:
        if self._decoders is None:
            from dashboard.decoders import shared_pool

            self._decoders = shared_pool()
        return self._decoders

    def path(self, share: ShareRecord, sha256: str, kind: str) -> Path:
        return self.root / f"{share.id}-{share.watermark_version}-{sha256}-{kind}.jpg"

    def rendition(
        self, share: ShareRecord, sha256: str, kind: str, png: Callable[[], bytes | None]
    ) -> tuple[bytes, bool]:
        """The `kind` (`preview` or `thumb`) of `sha256` with `share`'s watermark, and whether the cache had it.

        `png`: reads the link's watermark PNG (only on a miss). `FileNotFoundError` if the rendition is
        missing from the blobs; `IngestError` if the worker refuses.
        """
        path = self.path(share, sha256, kind)
        data = self._read(path)
        if data is not None:
            return data, True
        with self._lock:
            making = self._making.setdefault(path.name, threading.Lock())
        try:
            with making:  # one worker call per file, however many ask at once
                data = self._read(path)
                if data is not None:
                    return data, True
                with self._lock:
                    self.misses += 1
                reader = self.blobs.open(kind, sha256)
                try:
                    source = reader.read()
                finally:
                    reader.close()
                png_bytes = png() if share.watermark_png_sha is not None else None
                data = self.decoders.burn_watermark(source, share.watermark_text, png_bytes)
                self._write(path, data)
                return data, False
        finally:
            with self._lock:
                self._making.pop(path.name, None)

    def _read(self, path: Path) -> bytes | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        with contextlib.suppress(OSError):  # pruned meanwhile: still served this once
            os.utime(path)  # recently served: the last to go
        with self._lock:
            self.hits += 1
        return data

    def _write(self, path: Path, data: bytes) -> None:
        private_dir(self.root)
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        temp.write_bytes(data)
        os.replace(temp, path)  # a reader sees the whole file or none
        with self._lock:
            total = self._count() + len(data)
            self._total_bytes = total
        if total > self.max_bytes:
            self.prune()

    def _count(self) -> int:
        if self._total_bytes is None:
            self._total_bytes = sum(size for _, size, _ in self._entries())
        return self._total_bytes

    def _entries(self) -> list[tuple[float, int, Path]]:
        entries = []
        try:
            for entry in os.scandir(self.root):
                if _NAME.fullmatch(entry.name):
                    try:
                        stat = entry.stat()
                    except FileNotFoundError:
                        continue
                    entries.append((stat.st_mtime, stat.st_size, Path(entry.path)))
        except FileNotFoundError:
            pass
        return entries

    def prune(self) -> int:
        """Remove the least recently served files until the cache is under 3/4 of `max_bytes`; how many went.

        Counted again from the directory, so what other servers on a shared data directory wrote counts too.
        """
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in entries:
            if total <= self.max_bytes * 3 // 4:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size
            removed += 1
        with self._lock:
            self._total_bytes = total
        if removed:
            log.info("watermark cache: removed %d least recently served file(s)", removed)
        return removed

    def forget(self, share_id: str) -> None:
        """Remove a link's files now (its watermark changed): they would only wait to be pruned."""
        for _, _, path in self._entries():
            if path.name.startswith(f"{share_id}-"):
                path.unlink(missing_ok=True)
        with self._lock:
            self._total_bytes = None
