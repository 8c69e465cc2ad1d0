"""The studio dashboard's pieces (dashboard/studio/) change by stream and patch as images arrive, never whole.

Each piece is put in a Bokeh document, as a served session would have it, and what the document
would send is recorded: a new image streams one row or patches one cell, however large the project.
A real `App` on a temp data directory feeds them, through its hub, as `fotoflo serve` does.
"""

from __future__ import annotations

import threading
from typing import Any

import panel as pn
from bokeh.document import Document
from bokeh.document.events import (
    ColumnDataChangedEvent,
    ColumnsPatchedEvent,
    ColumnsStreamedEvent,
    DocumentChangedEvent,
    ModelChangedEvent,
)
from bokeh.protocol import Protocol

from dashboard.app import App
from dashboard.store import CollectionEdit
from dashboard.studio import (
    CameraCounts,
    CollectionRatings,
    Distribution,
    ImageTable,
    ShotsPerMinute,
    StudioDashboard,
    image_count,
)
from tests.studio.helpers import PROJECT, app, ingest, settle, started
from tests.support.waiting import wait_until

__all__ = ["app"]  # the fixture


class Sent:
    """What a page showing `view` would be sent: the events of a Bokeh document holding it."""

    def __init__(self, view: Any) -> None:
        self.doc = Document()
        self.doc.add_root(pn.panel(view).get_root(self.doc))
        self.events: list[DocumentChangedEvent] = []
        self.doc.on_change(self.events.append)

    def take(self, until: Any = lambda events: events) -> list[DocumentChangedEvent]:
        """The events recorded once `until(events)` holds, and forget them."""
        wait_until(lambda: until(self.events), timeout_s=5)
        taken, self.events[:] = list(self.events), []
        return taken

    def data(self) -> list[DocumentChangedEvent]:
        return [e for e in self.events if isinstance(e, ColumnsStreamedEvent | ColumnsPatchedEvent)]


def streamed(events: list[DocumentChangedEvent]) -> list[ColumnsStreamedEvent]:
    return [e for e in events if isinstance(e, ColumnsStreamedEvent)]


def patched(events: list[DocumentChangedEvent]) -> list[ColumnsPatchedEvent]:
    return [e for e in events if isinstance(e, ColumnsPatchedEvent)]


def no_whole_data(events: list[DocumentChangedEvent]) -> None:
    assert not [e for e in events if isinstance(e, ColumnDataChangedEvent)], "a source's data was sent whole"
    assert not [e for e in events if isinstance(e, ModelChangedEvent) and e.attr == "data"], "data replaced"


# -- the count and the table: the window --------------------------------------------------------


def test_the_count_indicator_follows_count(app: App):
    ingest(app, 1)
    live = started(app)
    number = image_count(live)
    sent = Sent(number)
    assert number.value == 1

    ingest(app, 2)

    wait_until(lambda: number.value == 2)
    events = sent.take(lambda e: any(getattr(x, "attr", None) == "text" for x in e))
    assert [getattr(e, "attr", None) for e in events] == ["text"], "one value sent"


def test_the_table_streams_a_new_image_rolls_over_and_patches_a_rating(app: App):
    first = [ingest(app, seed, minute=seed) for seed in range(3)]
    live = started(app, window=3)
    table = ImageTable(live)
    sent = Sent(table)
    widget = table.table.widget
    assert list(widget.value["file"]) == [i.filename for i in first], "the window, the newest at the bottom"
    before = widget.value.iloc[1:].copy()

    new = ingest(app, 3, minute=3)

    events = sent.take(lambda e: streamed(e))
    (stream,) = streamed(events)
    assert list(stream.data["file"]) == [new.filename] and stream.rollover == 3, "one row, the oldest rolls over"
    no_whole_data(events)
    assert list(widget.value["file"]) == [first[1].filename, first[2].filename, new.filename]
    assert widget.value.iloc[:2].equals(before), "earlier rows unchanged"

    app.curator.set_rating(PROJECT, first[2].id, rating=4)

    (patch,) = patched(sent.take(lambda e: patched(e)))
    assert patch.patches == {"rating": [(1, 4)]}, "one cell"
    assert list(widget.value["rating"]) == [0, 4, 0]

    app.curator.set_rating(PROJECT, new.id, flag="pick", label="green")
    (patch,) = patched(sent.take(lambda e: patched(e)))
    assert patch.patches == {"flag": [(2, "pick")], "label": [(2, "green")]}


def test_a_deletion_in_the_window_sends_the_window_again(app: App):
    made = [ingest(app, seed, minute=seed) for seed in range(4)]
    live = started(app, window=3)
    table = ImageTable(live)
    widget = table.table.widget

    app.curator.delete_image(PROJECT, made[2].id)

    want = [made[0].filename, made[1].filename, made[3].filename]
    wait_until(lambda: list(widget.value["file"]) == want)
    ingest(app, 9, minute=9)
    wait_until(lambda: list(widget.value["file"]) == [*want[1:], "IMG_0009.JPG"])


# -- the charts and tables of the tally: the whole project -----------------------------------------


def test_shots_per_minute_patches_its_minute_or_streams_a_new_one(app: App):
    ingest(app, 1, minute=5)
    live = started(app)
    chart = ShotsPerMinute(live)
    sent = Sent(chart)
    source = chart.rows.source
    assert list(source.data["shots"]) == [1]

    ingest(app, 2, minute=5)
    (patch,) = patched(sent.take(lambda e: patched(e)))
    assert patch.patches == {"shots": [(0, 2)]}, "the bar of its minute, one cell"

    ingest(app, 3, minute=7)
    events = sent.take(lambda e: streamed(e))
    (stream,) = streamed(events)
    assert list(stream.data["shots"]) == [1] and len(source.data["minute"]) == 2, "one bar more"
    assert list(source.data["shots"])[:1] == [2], "earlier bars unchanged"
    no_whole_data(events)


def test_a_distribution_patches_a_bar_or_adds_one(app: App):
    ingest(app, 1, iso=400)
    live = started(app)
    bars = Distribution(live, facet="iso")
    sent = Sent(bars)
    assert list(bars.figure.y_range.factors) == ["ISO 400"]

    ingest(app, 2, iso=400)
    (patch,) = patched(sent.take(lambda e: patched(e)))
    assert patch.patches == {"images": [(0, 2)]}

    ingest(app, 3, iso=100)
    events = sent.take(lambda e: streamed(e))
    assert [e.attr for e in events if getattr(e, "attr", None) == "factors"] == ["factors"]
    assert list(bars.figure.y_range.factors) == ["ISO 100", "ISO 400"], "by number"
    (stream,) = streamed(events)
    assert dict(stream.data) == {"value": ["ISO 100"], "images": [1]}
    no_whole_data(events)


def test_camera_counts_patch_the_row_of_the_camera(app: App):
    fuji = ingest(app, 1)
    live = started(app)
    cameras = CameraCounts(live)
    sent = Sent(cameras)
    widget = cameras.table.widget

    ingest(app, 2, camera="EOS R5")
    (stream,) = streamed(sent.take(lambda e: streamed(e)))
    assert list(stream.data["camera"]) == ["Canon EOS R5"]

    app.curator.set_rating(PROJECT, fuji.id, rating=4, flag="reject")
    (patch,) = patched(sent.take(lambda e: patched(e)))
    assert patch.patches == {"rejects": [(0, 1)], "rated": [(0, 1)], "mean_rating": [(0, 4.0)]}
    assert widget.value.set_index("camera")["images"].to_dict() == {"Fujifilm X-T5": 1, "Canon EOS R5": 1}


def test_collection_ratings_follow_collection_changes_and_ratings(app: App):
    a, b, c = (ingest(app, seed) for seed in range(3))
    live = started(app)
    ratings = CollectionRatings(live)
    sent = Sent(ratings)
    widget = ratings.table.widget
    assert widget.value.empty

    saved = app.curator.save_collection(PROJECT, "Ceremony", [a.id, b.id])
    (stream,) = streamed(sent.take(lambda e: streamed(e)))
    assert (list(stream.data["collection"]), list(stream.data["images"])) == (["Ceremony"], [2])

    app.curator.set_rating(PROJECT, b.id, rating=5, flag="pick")
    (patch,) = patched(sent.take(lambda e: patched(e)))
    assert patch.patches == {"picks": [(0, 1)], "rated": [(0, 1)], "mean_rating": [(0, 5.0)]}

    app.curator.edit_collection(PROJECT, saved.id, CollectionEdit("add", image_ids=(c.id,)))
    (patch,) = patched(sent.take(lambda e: patched(e)))
    assert patch.patches == {"images": [(0, 3)]}
    app.curator.edit_collection(PROJECT, saved.id, CollectionEdit("rename", name="Vows"))
    (patch,) = patched(sent.take(lambda e: patched(e)))
    assert patch.patches == {"collection": [(0, "Vows")]}

    other = app.curator.save_collection(PROJECT, "Party", [c.id])
    wait_until(lambda: len(widget.value) == 2)
    app.curator.edit_collection(PROJECT, saved.id, CollectionEdit("delete"))
    wait_until(lambda: list(widget.value["collection"]) == ["Party"])
    assert other.id in ratings.table


def test_the_dashboard_sends_the_same_bytes_per_new_image_however_large_the_project(app: App):
    live = started(app, window=5)
    dashboard = StudioDashboard(live)
    sent = Sent(dashboard)
    protocol = Protocol()

    def bytes_of_next(seed: int) -> int:
        settle(app, live)
        sent.take()
        ingest(app, seed, minute=seed % 60)
        settle(app, live)
        events = sent.take()
        no_whole_data(events)
        # Streamed: the table's row, the minute's bar; patched: the four bars and the camera's image count.
        assert [len(next(iter(e.data.values()))) for e in streamed(events)] == [1, 1], "one row each"
        assert sorted(len(cells) for e in patched(events) for cells in e.patches.values()) == [1] * 5
        message = protocol.create("PATCH-DOC", events)
        return len(message.content_json) + sum(len(b.to_bytes()) for b in message.buffers)

    for seed in range(8):
        ingest(app, seed, minute=seed)
    small = bytes_of_next(10)
    for seed in range(11, 50):
        ingest(app, seed, minute=seed)
    large = bytes_of_next(50)
    assert abs(large - small) <= 32, (small, large)


# -- sessions ---------------------------------------------------------------------------------------


def test_an_update_from_the_feed_waits_for_the_sessions_turn_while_the_server_runs_its_callback():
    """The model's worker must not take a session's document for its own while the server patches Bokeh's curdoc.

    Bokeh's `curdoc()` during a session callback is one for all threads, and Panel's current document
    falls back on it: the pieces' charts, changed from the worker then, broke the server's document lock.
    """
    from bokeh.io.doc import patch_curdoc

    from dashboard.live.sessions import SessionWatcher

    doc = Document()
    doc._session_context = lambda: object()  # type: ignore[assignment]  # a served session's document
    threads: list[int] = []
    watcher = SessionWatcher(doc, lambda: threads.append(threading.get_ident()))
    with patch_curdoc(doc):  # the server runs one of the session's callbacks...
        worker = threading.Thread(target=watcher)  # ...while the feed's worker delivers an update
        worker.start()
        worker.join()
    assert threads == [], "not run on the worker"
    (scheduled,) = doc.session_callbacks
    scheduled.callback()
    assert threads == [threading.get_ident()], "run on the session's turn"
