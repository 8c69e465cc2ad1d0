"""`dashboard.previews` with the ingest door: a large JPEG is published with its thumbnail, its preview follows."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest
from PIL import Image

from dashboard.decoders import DecoderPool
from dashboard.events import IMAGE_CREATED, IMAGE_UPDATED, PREVIEW_MADE
from dashboard.imaging.errors import Limits
from dashboard.previews import TEST_DELAY_ENV, PreviewJob, Previews
from dashboard.samples import with_camera_preview
from tests.support.embedded import Embedded
from tests.support.images import jpeg_bytes

PROJECT = "default"


class FakeSlowPool:
    """A fake decoder pool whose previews take `delay_s` and are counted (the real one runs a process)."""

    size = 1

    def __init__(self, delay_s: float = 0.3) -> None:
        self.delay_s = delay_s
        self.calls = 0
        self._lock = threading.Lock()

    def preview(self, data: bytes | Path, filename: str, limits: Limits) -> bytes:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay_s)
        out = io.BytesIO()
        Image.new("RGB", (200, 150), (10, 200, 10)).save(out, "JPEG")
        return out.getvalue()


def held_previews(embedded: Embedded, monkeypatch: pytest.MonkeyPatch, pool: Any = None) -> Previews:
    """The ingestor's `Previews`, replaced by one whose background jobs wait 30 s (until it is closed)."""
    monkeypatch.setenv(TEST_DELAY_ENV, "30")
    ingestor = embedded.ingestor
    ingestor.previews.close()
    decoders = cast(DecoderPool, pool or ingestor.decoders)
    previews = Previews(
        embedded.store, embedded.blobs, embedded.bus, ingestor.limits, decoders=decoders, background=decoders
    )
    ingestor.previews = previews
    return previews


def test_a_large_jpeg_is_published_with_its_thumbnail_and_everything_known(
    embedded: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    held_previews(embedded, monkeypatch)
    data = jpeg_bytes((4000, 3000), orientation=6, make="Canon", model="EOS R6", taken="2024:05:17 14:03:00")

    image = embedded.ingestor.ingest(data, PROJECT, filename="IMG_0001.JPG").image

    # Published: the row, the feed entry and the thumbnail are there; the preview is not made yet.
    assert (image.width, image.height) == (3000, 4000)  # upright: orientation 6 turns it
    assert (image.camera_make, image.camera_model, image.captured_at[:19]) == ("Canon", "EOS R6", "2024-05-17T14:03:00")
    assert [c.kind for c in embedded.store.changes(PROJECT)] == [IMAGE_CREATED]
    with Image.open(embedded.blobs.path("thumb", image.sha256)) as thumb:
        assert thumb.size == (360, 480)
    assert not embedded.blobs.exists("preview", image.sha256)


def test_the_preview_follows_and_is_announced_as_image_updated(embedded: Embedded) -> None:
    published: list[int] = []
    embedded.bus.subscribe(lambda project, seq: published.append(seq))

    image = embedded.ingestor.ingest(jpeg_bytes((4000, 3000)), PROJECT, filename="IMG_0002.JPG").image
    assert embedded.ingestor.previews.wait_idle(timeout_s=30)

    with Image.open(embedded.blobs.path("preview", image.sha256)) as preview:
        assert preview.size == (2000, 1500)
    created, updated = embedded.store.changes(PROJECT)
    assert (created.kind, updated.kind, updated.data) == (IMAGE_CREATED, IMAGE_UPDATED, PREVIEW_MADE)
    assert updated.image == image == embedded.store.get_image(image.id)  # nothing about the image changed
    assert published == [created.seq, updated.seq]


def test_a_camera_preview_is_stored_at_once_and_nothing_follows(embedded: Embedded) -> None:
    data = with_camera_preview(jpeg_bytes((4000, 3000)), edge_px=1920)

    image = embedded.ingestor.ingest(data, PROJECT, filename="DSC00001.JPG").image

    assert embedded.blobs.exists("preview", image.sha256)  # the MPF fast path: kept as it is, before publishing
    assert embedded.ingestor.previews.wait_idle(timeout_s=30)
    assert [c.kind for c in embedded.store.changes(PROJECT)] == [IMAGE_CREATED]


def test_small_images_get_both_at_once(embedded: Embedded) -> None:
    image = embedded.ingestor.ingest(jpeg_bytes((2400, 1600)), PROJECT, filename="small.jpg").image

    assert embedded.blobs.exists("preview", image.sha256)
    assert [c.kind for c in embedded.store.changes(PROJECT)] == [IMAGE_CREATED]


def test_a_preview_asked_for_by_many_at_once_is_made_once(embedded: Embedded, monkeypatch: pytest.MonkeyPatch) -> None:
    pool = FakeSlowPool()
    previews = held_previews(embedded, monkeypatch, pool)
    image = embedded.ingestor.ingest(jpeg_bytes((4000, 3000)), PROJECT, filename="IMG_0003.JPG").image
    job = PreviewJob(PROJECT, image.id, image.sha256, image.filename)

    with ThreadPoolExecutor(max_workers=8) as askers:
        for result in [askers.submit(previews.ensure, job) for _ in range(8)]:
            result.result(timeout=30)
    previews.ensure(job)  # and later: it exists

    assert pool.calls == 1
    assert embedded.blobs.exists("preview", image.sha256)
    kinds = [(c.kind, c.data) for c in embedded.store.changes(PROJECT)]
    assert kinds == [(IMAGE_CREATED, {}), (IMAGE_UPDATED, PREVIEW_MADE)]


def test_a_preview_that_cannot_be_made_fails_every_asker(embedded: Embedded, monkeypatch: pytest.MonkeyPatch) -> None:
    previews = held_previews(embedded, monkeypatch)
    image = embedded.ingestor.ingest(jpeg_bytes((4000, 3000)), PROJECT, filename="IMG_0004.JPG").image
    embedded.blobs.path("original", image.sha256).unlink()

    with pytest.raises(FileNotFoundError):
        previews.ensure(PreviewJob(PROJECT, image.id, image.sha256, image.filename))
    assert [c.kind for c in embedded.store.changes(PROJECT)] == [IMAGE_CREATED]


class FakeGatedPool(FakeSlowPool):
    """A fake decoder pool whose previews wait until `gate` is set (the real one runs a process)."""

    def __init__(self) -> None:
        super().__init__(delay_s=0)
        self.gate = threading.Event()

    def preview(self, data: bytes | Path, filename: str, limits: Limits) -> bytes:
        assert self.gate.wait(30)
        return super().preview(data, filename, limits)


def test_publishing_never_waits_for_previews_and_a_full_backlog_is_swept(embedded: Embedded) -> None:
    """Past the backlog a job is not queued (publishing goes on); the sweep makes those previews after."""
    pool = FakeGatedPool()
    fake = cast(DecoderPool, pool)
    embedded.ingestor.previews.close()
    previews = Previews(
        embedded.store, embedded.blobs, embedded.bus, Limits(), decoders=fake, background=fake, backlog=1
    )
    embedded.ingestor.previews = previews
    files = [jpeg_bytes((4000, 3000), seed=n) for n in range(5)]

    publishing = threading.Thread(
        target=lambda: [embedded.ingestor.ingest(data, PROJECT, filename=f"{n}.jpg") for n, data in enumerate(files)]
    )
    publishing.start()
    publishing.join(timeout=60)  # one job taken, one queued, three left to the sweep: none waited for a place
    assert not publishing.is_alive(), "publishing waited for the previews"
    assert embedded.store.count_images(PROJECT) == 5
    pool.gate.set()

    assert previews.wait_idle(timeout_s=30)
    images = embedded.store.list_images(PROJECT, limit=10)
    assert all(embedded.blobs.exists("preview", image.sha256) for image in images)
    announced = [c.image.id for c in embedded.store.changes(PROJECT) if c.data == PREVIEW_MADE]
    assert sorted(announced) == sorted(image.id for image in images)
    assert pool.calls == 5


def test_a_sweep_makes_the_previews_a_stop_left_unmade(embedded: Embedded, monkeypatch: pytest.MonkeyPatch) -> None:
    held = held_previews(embedded, monkeypatch)
    large = embedded.ingestor.ingest(jpeg_bytes((4000, 3000)), PROJECT, filename="IMG_0005.JPG").image
    small = embedded.ingestor.ingest(jpeg_bytes((2400, 1600)), PROJECT, filename="small.jpg").image
    embedded.blobs.path("preview", small.sha256).unlink()  # not one ingest leaves for later: not swept
    held.close()  # the server stops: the queued job is dropped
    assert not embedded.blobs.exists("preview", large.sha256)

    monkeypatch.delenv(TEST_DELAY_ENV)
    pool = FakeSlowPool(delay_s=0)
    fake = cast(DecoderPool, pool)
    restarted = Previews(embedded.store, embedded.blobs, embedded.bus, Limits(), decoders=fake, background=fake)
    restarted.sweep()
    assert restarted.wait_idle(timeout_s=30)
    restarted.close()

    assert embedded.blobs.exists("preview", large.sha256)
    assert pool.calls == 1
    assert [c.image.id for c in embedded.store.changes(PROJECT) if c.data == PREVIEW_MADE] == [large.id]


class FakeBusyPool(FakeSlowPool):
    """A fake thumbnail pool that says it is saturated until `freed` is set (the real one counts its workers)."""

    def __init__(self) -> None:
        super().__init__(delay_s=0)
        self.freed = threading.Event()

    def saturated(self) -> bool:
        return not self.freed.is_set()


def test_previews_hold_back_while_every_thumbnail_worker_is_busy(embedded: Embedded) -> None:
    """A bulk import keeps the thumbnail pool busy: its previews wait for it, then all follow."""
    thumbnails, background = FakeBusyPool(), FakeSlowPool(delay_s=0)
    embedded.ingestor.previews.close()
    previews = Previews(
        embedded.store,
        embedded.blobs,
        embedded.bus,
        Limits(),
        decoders=cast(DecoderPool, thumbnails),
        background=cast(DecoderPool, background),
    )
    embedded.ingestor.previews = previews
    image = embedded.ingestor.ingest(jpeg_bytes((4000, 3000)), PROJECT, filename="IMG_0001.JPG").image

    assert not previews.wait_idle(timeout_s=0.5)
    assert background.calls == 0 and not embedded.blobs.exists("preview", image.sha256)
    thumbnails.freed.set()
    assert previews.wait_idle(timeout_s=30)
    assert background.calls == 1 and embedded.blobs.exists("preview", image.sha256)
    assert [c.image.id for c in embedded.store.changes(PROJECT) if c.data == PREVIEW_MADE] == [image.id]
    previews.close()


def test_a_real_pool_is_saturated_only_while_all_its_workers_decode() -> None:
    pool = DecoderPool(1)
    try:
        assert not pool.saturated()
        with ThreadPoolExecutor(1) as caller:
            decoding = caller.submit(pool.analyze, jpeg_bytes((4000, 3000)), "IMG_0002.JPG")
            deadline = time.monotonic() + 30
            while not pool.saturated() and not decoding.done() and time.monotonic() < deadline:
                time.sleep(0.001)
            assert pool.saturated(), "the pool never said its one worker was busy"
            decoding.result(timeout=60)
        assert not pool.saturated()
    finally:
        pool.close()
