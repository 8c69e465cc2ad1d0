"""Helpers of the studio tests: a real `App` on a temp data directory (fixture), images shot at a given minute."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.app import App
from dashboard.config import Settings
from dashboard.embedded import BackgroundServer
from dashboard.events import ImageRecord
from dashboard.live import LiveImages, close_all, live_images
from dashboard.samples import photo_jpeg
from dashboard.studio import tally_of
from tests.support.images import jpeg_bytes
from tests.support.waiting import wait_until

PROJECT = "default"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    """A real `App` on a temp data directory, its API and hub on a background server's loop."""
    fotoflo = App(Settings(data=tmp_path / "data", watch=None))
    server = BackgroundServer(fotoflo).start()
    yield fotoflo
    close_all()
    server.stop()


def ingest(app: App, seed: int, *, minute: int = 0, camera: str = "X-T5", iso: int = 400) -> ImageRecord:
    """An image shot at 10:`minute` on `camera` (a Fujifilm) at `iso`."""
    data = photo_jpeg(seed, (96, 64), captured=f"2026:05:01 10:{minute:02d}:{seed % 60:02d}", iso=iso)
    if camera != "X-T5":
        data = jpeg_bytes((96, 64), seed=seed, make="Canon", model=camera, taken=f"2026:05:01 10:{minute:02d}:00")
    result = app.ingest_bytes(data, f"IMG_{seed:04d}.JPG")
    assert result.created
    return result.image


def settle(app: App, live: LiveImages) -> None:
    """Wait until the model and its tally have applied the whole feed and told every watcher."""
    tally = tally_of(live)
    wait_until(lambda: live.last_seq == tally.last_seq == app.store.last_seq(PROJECT))
    with live.holding():  # the watchers outside a session run inside the update, which holds it
        pass


def started(app: App, window: int = 500) -> LiveImages:
    live = live_images(app, window=window)
    wait_until(lambda: live.connected)
    assert tally_of(live).wait_ready(5)
    return live
