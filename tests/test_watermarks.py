"""`Watermarks`: a share link's watermarked renditions are burned once in a decoder worker, then served from
a cache bounded in size, whose names change with the watermark so an entry is never stale."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from dashboard.auth.roles import Role
from dashboard.auth.store import ShareRecord
from dashboard.blobs import FileBlobs
from dashboard.decoders import DecoderPool, shared_pool
from dashboard.watermarks import Watermarks
from tests.support.images import jpeg_bytes


class CountingPool:
    """The real decoder pool, counting its `burn_watermark` calls (not a fake: the worker does the work)."""

    def __init__(self, pool: DecoderPool) -> None:
        self.pool = pool
        self.calls = 0
        self._lock = threading.Lock()

    def burn_watermark(self, jpeg: bytes, text: str | None, png: bytes | None) -> bytes:
        with self._lock:
            self.calls += 1
        return self.pool.burn_watermark(jpeg, text, png)


def share(share_id: str = "link1", version: int = 1, text: str = "© Studio") -> ShareRecord:
    return ShareRecord(share_id, "", Role.CLIENT, "p", None, None, 0.0, watermark_text=text,
                       watermark_version=version)  # fmt: skip


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobs:
    return FileBlobs(tmp_path / "blobs")


def previews(blobs: FileBlobs, count: int) -> list[str]:
    shas = []
    for seed in range(count):
        data = jpeg_bytes((320, 240), (90, 140, 200), seed=seed)
        sha = hashlib.sha256(data).hexdigest()
        blobs.put("preview", sha, data)
        shas.append(sha)
    return shas


def test_a_rendition_is_burned_once_however_many_ask_and_then_read_from_the_cache(
    tmp_path: Path, blobs: FileBlobs
) -> None:
    (sha,) = previews(blobs, 1)
    pool = CountingPool(shared_pool())
    cache = Watermarks(tmp_path / "cache", blobs, pool)  # type: ignore[arg-type]
    with ThreadPoolExecutor(max_workers=4) as workers:
        answers = list(workers.map(lambda _: cache.rendition(share(), sha, "preview", lambda: None), range(4)))
    assert pool.calls == 1 and len({data for data, _ in answers}) == 1
    assert sorted(hit for _, hit in answers) == [False, True, True, True]
    with Image.open(io.BytesIO(answers[0][0])) as marked:
        assert marked.size == (320, 240) and marked.format == "JPEG"
    # Another watermark version is another file: never the old one's.
    cache.rendition(share(version=2), sha, "preview", lambda: None)
    assert pool.calls == 2 and sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        f"link1-1-{sha}-preview.jpg", f"link1-2-{sha}-preview.jpg",
    ]  # fmt: skip
    cache.forget("link1")
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_cache_keeps_to_its_size_dropping_the_least_recently_served(tmp_path: Path, blobs: FileBlobs) -> None:
    shas = previews(blobs, 4)
    cache = Watermarks(tmp_path / "cache", blobs, shared_pool())
    first, _ = cache.rendition(share(), shas[0], "preview", lambda: None)
    cache.max_bytes = len(first) * 3  # room for about three
    for when, sha in enumerate(shas[1:3], start=1):
        cache.rendition(share(), sha, "preview", lambda: None)
        os.utime(cache.path(share(), sha, "preview"), (1000 + when, 1000 + when))
    os.utime(cache.path(share(), shas[0], "preview"), (999, 999))
    assert cache.rendition(share(), shas[0], "preview", lambda: None)[1]  # a hit: now the most recently served
    cache.rendition(share(), shas[3], "preview", lambda: None)  # over the size: the oldest go
    kept = {p.name.split("-")[2] for p in (tmp_path / "cache").iterdir()}
    assert shas[0] in kept and shas[3] in kept and shas[1] not in kept
    assert sum(p.stat().st_size for p in (tmp_path / "cache").iterdir()) <= cache.max_bytes


def test_a_missing_rendition_is_file_not_found(tmp_path: Path, blobs: FileBlobs) -> None:
    with pytest.raises(FileNotFoundError):
        Watermarks(tmp_path / "cache", blobs, shared_pool()).rendition(share(), "0" * 64, "thumb", lambda: None)
