"""`LiveImages` (dashboard/live/): a project's images as params that follow the change feed.

In process from a real `App` (its hub, on the loop of a background server), and from a real
`fotoflo serve` over its event stream, killed and restarted while files are ingested behind its back.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import dashboard
from dashboard import embedded
from dashboard.app import App
from dashboard.config import Settings
from dashboard.embedded import BackgroundServer
from dashboard.events import ImageRecord
from dashboard.live import LiveImages, close_all, live_images, live_remote
from dashboard.store.sqlite import SQLiteStore
from tests.support import ROOT
from tests.support.api import checked_client, upload
from tests.support.images import jpeg_bytes, small_jpeg
from tests.support.servers import Server, ServerFactory, free_port
from tests.support.waiting import wait_until


def ids(images: list[ImageRecord]) -> list[str]:
    return [image.id for image in images]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    """A real `App` on a temp data directory, its API and hub on a background server's loop."""
    fotoflo = App(Settings(data=tmp_path / "data", watch=None))
    server = BackgroundServer(fotoflo).start()
    yield fotoflo
    close_all()
    server.stop()


def ingest(app: App, seed: int, filename: str | None = None, **exif: str) -> ImageRecord:
    result = app.ingest_bytes(jpeg_bytes((96, 64), seed=seed, **exif), filename or f"IMG_{seed:04d}.JPG")
    assert result.created
    return result.image


# -- in process --------------------------------------------------------------------------------


def test_an_ingest_raises_count_sets_latest_and_prepends_to_images(app: App):
    first = ingest(app, 1)
    live = live_images(app)
    assert (live.count, live.latest, ids(live.images)) == (1, first, [first.id]), "read before it returns"
    seen: list[str] = []
    live.param.watch(lambda *events: seen.extend(e.name for e in events), ["count", "latest", "images"])
    wait_until(lambda: live.connected)

    second = ingest(app, 2)

    wait_until(lambda: live.count == 2, timeout_s=5)
    assert live.latest == second and ids(live.images) == [second.id, first.id]
    assert sorted(seen) == ["count", "images", "latest"], "one update, every watcher told"
    assert live.delta.added == (second,) and not live.delta.reset
    assert live.last_seq == app.store.last_seq("default")


def test_images_keep_the_newest_window_and_fill_up_after_a_deletion(app: App):
    made = [ingest(app, seed) for seed in range(2)]
    live = live_images(app, window=3)
    wait_until(lambda: live.connected)
    made += [ingest(app, seed) for seed in range(2, 5)]

    wait_until(lambda: live.count == 5)
    newest = list(reversed(made))
    assert ids(live.images) == ids(newest[:3]), "bounded by the window, newest first"
    assert live.delta.removed, "what was pushed past the window is said to be gone"

    app.curator.delete_image("default", newest[1].id)
    wait_until(lambda: ids(live.images) == [newest[0].id, newest[2].id, newest[3].id])
    assert live.count == 4 and live.delta.appended == (newest[3],), "the next older image fills the gap"

    app.curator.delete_image("default", newest[0].id)
    wait_until(lambda: live.count == 3)
    wait_until(lambda: len(live.images) == 3)
    assert live.latest == newest[2] and ids(live.images) == ids([newest[2], newest[3], newest[4]])


def test_a_larger_window_asked_later_is_filled_from_the_store(app: App):
    made = [ingest(app, seed) for seed in range(4)]
    small = live_images(app, window=2)
    assert ids(small.images) == [made[3].id, made[2].id]

    assert live_images(app, window=4) is small, "one model per project: the larger window wins"
    wait_until(lambda: len(small.images) == 4)
    assert ids(small.images) == ids(list(reversed(made))) and small.window == 4


def test_filters_follow_ratings_flags_labels_and_text(app: App):
    fuji = ingest(app, 1, "DSCF0001.JPG", make="FUJIFILM", model="X-T5")
    canon = ingest(app, 2, "IMG_0002.JPG", make="Canon", model="EOS R5")
    live = live_images(app)
    wait_until(lambda: live.connected)
    assert ids(live.filtered) == [canon.id, fuji.id], "no filter: all of images"

    live.query = "fuji x-t5"
    assert ids(live.filtered) == [fuji.id], "every word, in file name, make, model or lens, any case"
    live.query = "img_0002"
    assert ids(live.filtered) == [canon.id]
    live.query = ""

    live.min_rating = 3
    assert live.filtered == []
    app.curator.set_rating("default", canon.id, rating=4)
    wait_until(lambda: ids(live.filtered) == [canon.id])
    assert live.images[0].rating == 4 and live.delta.updated[0].id == canon.id, "patched in place"
    app.curator.set_rating("default", canon.id, rating=2)
    wait_until(lambda: live.filtered == [])
    live.min_rating = None

    live.param.update(flag="pick", label="green")
    app.curator.set_rating("default", fuji.id, flag="pick")
    wait_until(lambda: live.images[1].flag == "pick")
    assert live.filtered == [], "both filters hold"
    app.curator.set_rating("default", fuji.id, label="green")
    wait_until(lambda: ids(live.filtered) == [fuji.id])
    assert (live.count, ids(live.images)) == (2, [canon.id, fuji.id]), "a rating moves nothing"


def test_a_new_version_replaces_the_image_in_place(app: App):
    old = ingest(app, 1, "portrait.jpg")
    newer = ingest(app, 2)
    live = live_images(app)
    wait_until(lambda: live.connected)

    result = app.ingest_bytes(jpeg_bytes((96, 64), seed=3), "portrait.jpg", replaces=old.id, base_sha256=old.sha256)

    assert result.updated
    wait_until(lambda: live.images[1].version == 2)
    assert ids(live.images) == [newer.id, old.id] and live.count == 2
    assert live.images[1].sha256 == result.image.sha256 and live.delta.updated == (live.images[1],)


def test_a_watcher_that_fails_does_not_keep_the_update_from_the_others(app: App, caplog: pytest.LogCaptureFixture):
    live = live_images(app)
    wait_until(lambda: live.connected)
    threads: list[str] = []

    def broken(_: object) -> None:
        raise RuntimeError("a cell's bug")

    live.param.watch(broken, "count")
    live.param.watch(lambda _: threads.append(threading.current_thread().name), "count")
    with caplog.at_level(logging.ERROR, logger="fotoflo.live"):
        ingest(app, 1)
        wait_until(lambda: threads)

    assert threads[0].startswith("fotoflo-live"), "outside a session, on the model's worker, at once"
    assert "a cell's bug" in caplog.text


def test_connected_says_false_once_the_app_stops(tmp_path: Path):
    fotoflo = App(Settings(data=tmp_path / "data", watch=None))
    server = BackgroundServer(fotoflo).start()
    try:
        live = live_images(fotoflo)
        wait_until(lambda: live.connected)
        server.stop()
        wait_until(lambda: not live.connected, timeout_s=5)
    finally:
        close_all()
        server.stop()


def test_live_from_a_data_directory_is_one_object_per_project(tmp_path: Path):
    try:
        shoot = dashboard.open(tmp_path / "data", project="nb")
        live = shoot.live()
        assert shoot.live() is live and dashboard.open(tmp_path / "data", project="nb").live() is live
        assert isinstance(live, LiveImages) and (live.count, live.latest) == (0, None)
        counts: list[int] = []
        live.param.watch(lambda e: counts.append(e.new), "count")
        wait_until(lambda: live.connected)
        photo = tmp_path / "cell.jpg"
        photo.write_bytes(jpeg_bytes(seed=4))

        shoot.ingest(photo)

        wait_until(lambda: counts == [1], timeout_s=5)
        assert live.latest is not None and live.latest.filename == "cell.jpg"
        assert dashboard.open(tmp_path / "data", project="other").live() is not live
        shoot.close()
    finally:
        close_all()
        embedded.stop_all()


def test_live_images_needs_a_known_project_and_a_loop_for_the_hub(tmp_path: Path, app: App):
    with pytest.raises(LookupError, match="no project 'nope'"):
        live_images(app, "nope")
    idle = App(Settings(data=tmp_path / "idle", watch=None))  # never started: its hub has no loop
    try:
        with pytest.raises(RuntimeError, match="no event loop"):
            live_images(idle)
    finally:
        idle.stop()


# -- a server over its event stream ----------------------------------------------------------------


def test_remote_follows_ratings_and_deletions_on_the_server(server: Server):
    live = live_remote(server.url, server.project)
    try:
        wait_until(lambda: live.connected)
        assert (live.count, live.images) == (0, [])
        with checked_client() as client:
            assert upload(client, server, ("a.jpg", small_jpeg(1)), ("b.jpg", small_jpeg(2))).status_code == 201
            wait_until(lambda: live.count == 2, timeout_s=5)
            b, a = live.images
            assert (a.filename, b.filename) == ("a.jpg", "b.jpg") and live.latest == b

            live.min_rating = 5
            assert client.post(server.api(f"/images/{a.id}/rating"), json={"rating": 5}).status_code == 200
            wait_until(lambda: ids(live.filtered) == [a.id])

            assert client.delete(server.api(f"/images/{a.id}")).status_code == 200
            wait_until(lambda: live.count == 1)
            assert ids(live.images) == [b.id] and live.filtered == []
        assert live_remote(server.url + "/", server.project) is live
    finally:
        live.close()


def test_remote_catches_up_after_a_restart_counting_each_image_once(server_factory: ServerFactory, tmp_path: Path):
    server = server_factory()
    live = live_remote(server.url, server.project)
    states: list[bool] = []
    live.param.watch(lambda e: states.append(e.new), "connected")
    try:
        wait_until(lambda: live.connected, timeout_s=30)  # a loaded machine is slow, not wrong
        server.watch.mkdir(parents=True, exist_ok=True)
        (server.watch / "before.jpg").write_bytes(small_jpeg(1))
        wait_until(lambda: live.count == 1, timeout_s=30)

        server.stop()
        wait_until(lambda: not live.connected, timeout_s=30)
        # While it is down: three files imported into its data directory, then one of them deleted,
        # so the stream will leave its `image.created` out (see dashboard/live/sse_source.py).
        card = tmp_path / "card"
        card.mkdir()
        for seed in (2, 3, 4):
            (card / f"down-{seed}.jpg").write_bytes(small_jpeg(seed))
        cli = [sys.executable, "-m", "dashboard.cli", "ingest", str(card), "--data", str(server.data), "--project"]
        done = subprocess.run([*cli, server.project], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        store = SQLiteStore(server.data / "fotoflo.sqlite")
        try:
            gone = next(i for i in store.list_images(server.project) if i.filename == "down-3.jpg")
            store.delete_image(server.project, gone.id)
        finally:
            store.close()
        assert live.count == 1 and not live.connected, "nothing arrives while the server is down"

        again = server_factory(data=server.data, watch=server.watch, port=server.port, project=server.project)
        wait_until(lambda: live.connected and live.count == 3, timeout_s=30)
        listed = httpx.get(again.api("/images"), timeout=10).json()
        assert ids(live.images) == [i["id"] for i in listed["images"]], "each image once, newest first"
        assert live.count == listed["total"] and live.last_seq == listed["last_seq"]
        # Down while the server was, up again after (it may have connected before the watch was set).
        assert False in states and states[-1] is True

        (server.watch / "after.jpg").write_bytes(small_jpeg(5))
        wait_until(lambda: live.count == 4, timeout_s=30)
        assert live.latest is not None and live.latest.filename == "after.jpg"
    finally:
        live.close()


def test_remote_waits_for_a_server_that_is_not_up_yet(server_factory: ServerFactory):
    port = free_port()
    live = live_remote(f"http://127.0.0.1:{port}", "default", wait_s=0.5)
    try:
        assert (live.connected, live.count) == (False, 0)
        server = server_factory(port=port)
        with checked_client() as client:
            assert upload(client, server, ("late.jpg", small_jpeg(7))).status_code == 201
        wait_until(lambda: live.connected and live.count == 1, timeout_s=20)
    finally:
        live.close()


def test_remote_unknown_project_is_a_lookup_error(server: Server):
    with pytest.raises(LookupError):
        live_remote(server.url, "no-such-project")
