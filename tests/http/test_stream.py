"""The SSE feed of a real `fotoflo serve`: live order, resume by Last-Event-ID or ?after, heartbeats, fan-out."""

from __future__ import annotations

import json
import os
import re
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from dashboard.events import IMAGE_CREATED
from dashboard.http.stream import SSE_MAX_BUFFER_BYTES, SSE_RETRY_MS
from dashboard.store.sqlite import SQLiteStore
from tests.support.api import upload_new
from tests.support.images import jpeg_bytes
from tests.support.records import image_record
from tests.support.servers import Server
from tests.support.sse import SseEvent, SseStream, sse
from tests.support.waiting import wait_until

SLOW_READER_IMAGES = 8000  # ~8 MB of events: more than the sockets' buffers and the server's limit together


@pytest.fixture
def server(shared_project: Server) -> Server:
    """The module's real server, seen through a project of this test's own."""
    return shared_project


def events_url(server: Server) -> str:
    return server.api("/events")


def subscribers(client: httpx.Client, server: Server) -> int:
    return int(client.get(f"{server.url}/healthz").json()["subscribers"])


def assert_image_events(events: list[SseEvent], images: list[dict]) -> None:
    """`events` are exactly the `image.created` events of `images`, in feed order."""
    assert [e.id for e in events] == [str(i["seq"]) for i in images]
    for event, image in zip(events, images, strict=True):
        assert event.event == IMAGE_CREATED
        data = event.json()
        assert data["id"] == image["id"] and data["seq"] == image["seq"]
        assert data["thumbnail_url"].startswith(f"/files/{image['id']}/thumb?")
        assert data["url"].startswith(f"/files/{image['id']}/original?")


def test_stream_headers_retry_and_live_events_in_order(server: Server, client: httpx.Client) -> None:
    with sse(events_url(server)) as stream:
        assert stream.status == 200
        assert stream.content_type.startswith("text/event-stream")
        wait_until(lambda: stream.retry_ms is not None, timeout_s=5)
        assert stream.retry_ms == SSE_RETRY_MS
        images = upload_new(client, server, 5)
        assert_image_events(stream.take(5), images)
        # The thumbnail URL in the event is signed and serves a JPEG.
        thumb = client.get(server.url + images[-1]["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


def test_without_cursor_only_new_events_arrive(server: Server, client: httpx.Client) -> None:
    upload_new(client, server, 3)
    with sse(events_url(server)) as stream:
        new = upload_new(client, server, 2, first_seed=100)
        # The first event is the first new one: nothing of the 3 older images is replayed.
        assert_image_events(stream.take(2), new)
        assert stream.pending() == 0


def test_last_event_id_replays_exactly_the_missing_events_then_continues_live(
    server: Server, client: httpx.Client
) -> None:
    images = upload_new(client, server, 6)
    with sse(events_url(server), headers={"Last-Event-ID": "2"}) as stream:
        assert_image_events(stream.take(4), images[2:])
        live = upload_new(client, server, 3, first_seed=100)
        assert_image_events(stream.take(3), live)
        assert stream.pending() == 0


def test_after_query_replays_like_last_event_id(server: Server, client: httpx.Client) -> None:
    images = upload_new(client, server, 5)
    with sse(events_url(server) + "?after=3") as stream:
        assert_image_events(stream.take(2), images[3:])
        live = upload_new(client, server, 2, first_seed=100)
        assert_image_events(stream.take(2), live)
    with sse(events_url(server) + "?after=0") as stream:
        assert_image_events(stream.take(7), images + live)


def test_last_event_id_wins_over_after(server: Server, client: httpx.Client) -> None:
    images = upload_new(client, server, 4)
    with sse(events_url(server) + "?after=0", headers={"Last-Event-ID": "3"}) as stream:
        assert_image_events(stream.take(1), images[3:])


def test_events_published_while_disconnected_are_replayed_on_reconnect(server: Server, client: httpx.Client) -> None:
    with sse(events_url(server)) as stream:
        first = upload_new(client, server, 3)
        seen = stream.take(3)
        assert_image_events(seen, first)
    # The server notices the closed connection and drops the subscription.
    wait_until(lambda: subscribers(client, server) == 0, timeout_s=10)
    missed = upload_new(client, server, 4, first_seed=100)
    with sse(events_url(server), headers={"Last-Event-ID": seen[-1].id or ""}) as stream:
        assert_image_events(stream.take(4), missed)
        live = upload_new(client, server, 2, first_seed=200)
        assert_image_events(stream.take(2), live)
        assert stream.pending() == 0


def test_cursor_beyond_the_feed_starts_from_now(server: Server, client: httpx.Client) -> None:
    """A Last-Event-ID from another history (data dir replaced) must not hide the next events."""
    upload_new(client, server, 2)
    with sse(events_url(server), headers={"Last-Event-ID": "999"}) as stream:
        assert "connected at #2" in stream.comments
        new = upload_new(client, server, 2, first_seed=100)
        assert_image_events(stream.take(2), new)


def test_heartbeat_comments_arrive(server: Server) -> None:
    with sse(events_url(server), heartbeat_s=1) as stream:
        wait_until(lambda: sum(c.startswith("heartbeat") for c in stream.comments) >= 2, timeout_s=6)
        assert any(c.startswith("connected at #") for c in stream.comments)
        assert stream.pending() == 0


def test_two_concurrent_subscribers_both_get_every_event(server: Server, client: httpx.Client) -> None:
    with sse(events_url(server)) as one, sse(events_url(server)) as two:
        images = upload_new(client, server, 6)
        assert_image_events(one.take(6), images)
        assert_image_events(two.take(6), images)


def test_hot_folder_drop_is_pushed_to_subscribers(shared_server: Server) -> None:
    server = shared_server  # the hot folder feeds the project the server was started for
    with sse(events_url(server)) as stream:
        temp = server.watch / "drop.jpg.part"
        temp.write_bytes(jpeg_bytes(seed=7))
        os.rename(temp, server.watch / "drop.jpg")
        event = stream.next(timeout_s=15)
        assert event.event == IMAGE_CREATED and event.json()["filename"] == "drop.jpg"


def refused(url: str, headers: dict[str, bytes] | None = None) -> tuple[int | None, dict]:
    stream = SseStream(url, headers or {}).open()  # type: ignore[arg-type]
    stream.close()
    assert stream.content_type.startswith("application/json"), (url, stream.content_type)
    assert b"Traceback" not in stream.body
    return stream.status, json.loads(stream.body)["error"]


def test_bad_cursor_or_heartbeat_is_400(server: Server) -> None:
    url = events_url(server)
    for value in (b"abc", b"-1", b"1.5", b"+1", b"\xb2", b"9" * 40):
        status, error = refused(url, {"Last-Event-ID": value})
        assert (status, error["code"]) == (400, "bad_argument"), (value, error)
    for query in ("?after=abc", "?after=-1", "?after=1e3", "?heartbeat=abc"):
        status, error = refused(url + query)
        assert (status, error["code"]) == (400, "bad_argument"), (query, error)


def test_unknown_project_is_404(server: Server) -> None:
    status, error = refused(f"{server.url}/api/projects/nope/events")
    assert (status, error["code"]) == (404, "unknown_project")
    status, error = refused(f"{server.url}/api/projects/nope/events", {"Last-Event-ID": b"1"})
    assert status == 404


def test_a_client_that_never_reads_is_cut_off_with_its_buffer_bounded(server: Server, client: httpx.Client) -> None:
    # A long feed, written straight into the server's store (the replay reads it from there).
    store = SQLiteStore(server.data / "fotoflo.sqlite")
    try:
        for n in range(SLOW_READER_IMAGES):
            store.add_image(image_record(n, server.project, id_prefix="slow", filename=f"slow-{n:05d}-{'x' * 150}.jpg"))
    finally:
        store.close()
    logged = len(server.log())
    with sse(events_url(server)) as reader:
        # A client that asks for everything and never reads: its socket buffers are kept small, so
        # what the server cannot hand over stays in the server, until the limit.
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.settimeout(30)
        try:
            stalled.connect(("127.0.0.1", server.port))
            path = urlsplit(events_url(server)).path
            stalled.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: 0\r\n\r\n".encode())
            cut = wait_until(lambda: re.search(r"SSE to \S+ cut off: (\d+) bytes not taken", server.log()[logged:]),
                             timeout_s=30)  # fmt: skip
            assert isinstance(cut, re.Match)
            assert 0 < int(cut.group(1)) <= SSE_MAX_BUFFER_BYTES
            wait_until(lambda: subscribers(client, server) == 1, timeout_s=10)
        finally:
            stalled.close()
        # The other stream was never held up: it gets what comes next.
        images = upload_new(client, server, 1, first_seed=9000)
        event = reader.next()
        assert event.event == IMAGE_CREATED and event.json()["id"] == images[0]["id"]
