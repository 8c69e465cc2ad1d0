"""The SSE feed of a real `fotoflo serve`: live order, resume by Last-Event-ID or ?after, heartbeats, fan-out."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from dashboard.api import SSE_RETRY_MS
from dashboard.events import IMAGE_CREATED
from tests.conftest import Server, jpeg_bytes, wait_until
from tests.http_helpers import SseEvent, SseStream, sse, upload_new


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
