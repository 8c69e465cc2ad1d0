"""`ProjectTally` and `Counts` (dashboard/studio/): counts over a whole project, read once then kept by the feed.

In process from a real `App` on a temp data directory, and from a real `fotoflo serve` over its event stream.
"""

from __future__ import annotations

import threading

from dashboard.app import App
from dashboard.live import live_remote
from dashboard.live.source import read_snapshot
from dashboard.store import CollectionEdit
from dashboard.studio import Counts, ImageTable, Marks, tally_of
from tests.studio.helpers import PROJECT, app, ingest, settle, started
from tests.support.api import checked_client, upload
from tests.support.images import small_jpeg
from tests.support.servers import Server
from tests.support.waiting import wait_until

__all__ = ["app"]  # the fixture


def test_the_tally_counts_the_whole_project_not_the_window(app: App):
    made = [ingest(app, seed, minute=seed % 2, iso=100 * (1 + seed % 3)) for seed in range(6)]
    made.append(ingest(app, 6, camera="EOS R5"))
    live = started(app, window=2)
    tally = tally_of(live)
    assert tally_of(live) is tally, "one per model"

    state = tally.state()
    assert state.facets["camera"] == {"Fujifilm X-T5": 6, "Canon EOS R5": 1}
    assert state.facets["iso"] == {"ISO 100": 2, "ISO 200": 2, "ISO 300": 2, "unknown": 1}
    assert state.facets["focal"] == {"33 mm": 6, "unknown": 1}
    assert sum(state.minutes.values()) == 7 and len(state.minutes) == 2

    app.curator.set_rating(PROJECT, made[0].id, rating=3, flag="pick")  # far outside the window of 2
    wait_until(lambda: tally.state().cameras["Fujifilm X-T5"] == Marks(6, 1, 0, 1, 3))
    app.curator.delete_image(PROJECT, made[0].id)
    wait_until(lambda: tally.state().cameras["Fujifilm X-T5"] == Marks(5, 0, 0, 0, 0))
    assert tally.state().facets["iso"]["ISO 100"] == 1


def test_counts_take_a_feed_entry_twice_without_harm(app: App):
    made = [ingest(app, seed, minute=seed) for seed in range(3)]
    app.curator.set_rating(PROJECT, made[0].id, rating=5, flag="pick")
    collection = app.curator.save_collection(PROJECT, "Keepers", [made[0].id, made[1].id])
    app.curator.edit_collection(PROJECT, collection.id, CollectionEdit("remove", image_ids=(made[1].id,)))
    app.curator.delete_image(PROJECT, made[2].id)
    changes = app.store.changes(PROJECT, limit=100)

    once, twice, read = Counts(), Counts(), Counts()
    once.apply(changes)
    twice.apply(changes)
    twice.apply(changes)
    read.add_images(app.store.list_images(PROJECT, limit=100))
    read.add_collections(app.store.list_collections(PROJECT))
    read.apply(changes)  # the feed from before a read, over the read: what a tally does

    for counts in (twice, read):
        assert counts.state().facets == once.state().facets and counts.state().cameras == once.state().cameras
        assert counts.state().collections == once.state().collections
    (keepers,) = once.state().collections.values()
    assert keepers is not None and (keepers.name, keepers.marks) == ("Keepers", Marks(1, 1, 0, 1, 5))


def test_a_tally_made_while_images_keep_coming_counts_each_once(app: App):
    live = started(app)
    stop = threading.Event()

    def keep_ingesting() -> None:
        for seed in range(40):
            if stop.is_set():
                return
            ingest(app, 100 + seed, minute=seed % 7)

    worker = threading.Thread(target=keep_ingesting)
    worker.start()
    try:
        wait_until(lambda: live.count >= 5)
        tally = tally_of(live)
        assert tally.wait_ready(5)
    finally:
        worker.join()
    wait_until(lambda: tally.last_seq == app.store.last_seq(PROJECT))
    assert tally.state().facets["camera"] == {"Fujifilm X-T5": 40}
    assert sum(tally.state().minutes.values()) == 40


def test_a_new_snapshot_of_the_model_is_read_again_and_counted_once(app: App):
    for seed in range(3):
        ingest(app, seed, minute=seed)
    live = started(app, window=2)
    tally, table = tally_of(live), ImageTable(live)
    seen: list[bool] = []
    tally.param.watch(lambda event: seen.append(event.new), "ready")

    # What a source does when the server behind its address is another one: the model starts over.
    live.deliver_snapshot(read_snapshot(live.feed, live.window))

    wait_until(lambda: seen == [False, True])
    ingest(app, 9, minute=9)
    settle(app, live)
    assert tally.state().facets["camera"] == {"Fujifilm X-T5": 4}
    assert list(table.table.widget.value["file"]) == ["IMG_0002.JPG", "IMG_0009.JPG"]


# -- a remote server ------------------------------------------------------------------------------


def test_a_remote_tally_reads_collections_and_follows_ratings(server: Server):
    with checked_client() as client:
        assert upload(client, server, ("a.jpg", small_jpeg(1)), ("b.jpg", small_jpeg(2))).status_code == 201
        ids = [i["id"] for i in client.get(server.api("/images")).json()["images"]]
        saved = client.post(server.api("/collections"), json={"name": "Picks", "image_ids": ids}).json()
        live = live_remote(server.url, server.project)
        try:
            tally = tally_of(live)
            assert tally.wait_ready(10)
            assert tally.state().collections[saved["id"]].marks.images == 2  # type: ignore[union-attr]

            assert client.post(server.api(f"/images/{ids[0]}/rating"), json={"flag": "pick"}).status_code == 200
            wait_until(lambda: tally.state().collections[saved["id"]].marks.picks == 1)  # type: ignore[union-attr]
        finally:
            live.close()
