"""Two real `fotoflo serve` processes sharing PostgreSQL, a bus (Redis or NOTIFY), the blob dir and the hot folder.

An upload on A reaches B's event stream; a Redis outage loses nothing and repeats nothing; when A
dies, B keeps serving its streams and takes over the hot folder. Tokens, share links, sessions and
their revocation live in the database too: what one server (or the CLI) does, the other sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard.auth.access import SESSION_COOKIE
from dashboard.cli import main
from dashboard.events import IMAGE_CREATED
from tests.support.api import assert_json_error, checked_client, upload_new
from tests.support.images import jpeg_bytes
from tests.support.servers import Server, ServerFactory
from tests.support.services import RedisServer
from tests.support.sse import SseStream, sse
from tests.support.waiting import wait_until


@dataclass
class Pair:
    a: Server
    b: Server
    db: str

    def health(self, server: Server) -> dict[str, Any]:
        return dict(httpx.get(f"{server.url}/healthz", timeout=5).json())


PairFactory = Callable[[str], Pair]


@pytest.fixture
def pair_factory(pg_url: str, redis_server: RedisServer, server_factory: ServerFactory) -> Iterator[PairFactory]:
    """Start servers A and B on one PostgreSQL database with the bus `bus` (`redis` or `postgres`).

    Whatever happens to Redis or to the other server, neither may log a traceback.
    """
    started: list[Server] = []

    def start(bus: str) -> Pair:
        bus_arg = redis_server.url if bus == "redis" else "postgres"
        args = ("--db", pg_url, "--bus", bus_arg, "--rescan-s", "1")
        a = server_factory(extra_args=args)
        b = server_factory(extra_args=args)
        started.extend((a, b))
        return Pair(a, b, pg_url)

    yield start
    for server in started:
        assert "Traceback" not in server.log(), server.log()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with checked_client() as c:
        yield c


def image_ids(events: list[Any]) -> list[str]:
    assert all(e.event == IMAGE_CREATED for e in events), [e.event for e in events]
    return [e.json()["id"] for e in events]


def watching(pair: Pair) -> list[bool]:
    return [pair.health(s)["watching"] for s in (pair.a, pair.b)]


@pytest.mark.parametrize("bus", ["redis", "postgres"])
def test_an_upload_on_a_appears_in_the_stream_of_b(pair_factory: PairFactory, client: httpx.Client, bus: str) -> None:
    pair = pair_factory(bus)
    health = pair.health(pair.b)
    assert (health["status"], health["store"], health["bus"]) == ("ok", "ok", "connected")
    assert (health["store_kind"], health["bus_kind"]) == ("postgres", bus)
    # Exactly one of them ingests the shared hot folder.
    wait_until(lambda: sorted(watching(pair)) == [False, True], timeout_s=10)

    with sse(pair.b.api("/events")) as on_b, sse(pair.a.api("/events")) as on_a:
        images = upload_new(client, pair.a, 3)
        uploaded = [i["id"] for i in images]
        assert image_ids(on_b.take(3)) == uploaded
        assert image_ids(on_a.take(3)) == uploaded
        more = upload_new(client, pair.b, 2, first_seed=10)  # and the other way round
        assert image_ids(on_a.take(2)) == [i["id"] for i in more]
        assert image_ids(on_b.take(2)) == [i["id"] for i in more]

    # One store: both list the same images, and a file URL signed by A is served by B (one secret, one blob dir).
    listed = [client.get(s.api("/images")).json()["images"] for s in (pair.a, pair.b)]
    assert [i["id"] for i in listed[0]] == [i["id"] for i in listed[1]] == [i["id"] for i in images + more][::-1]
    thumb = client.get(pair.b.url + images[0]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


def test_a_redis_outage_during_uploads_loses_and_repeats_nothing(
    pair_factory: PairFactory, redis_server: RedisServer, client: httpx.Client
) -> None:
    pair = pair_factory("redis")
    with sse(pair.b.api("/events")) as on_b:
        before = upload_new(client, pair.a, 2)
        assert image_ids(on_b.take(2)) == [i["id"] for i in before]

        redis_server.kill()
        wait_until(lambda: all(pair.health(s)["bus"] == "disconnected" for s in (pair.a, pair.b)), timeout_s=15)
        assert pair.health(pair.b)["status"] == "degraded"
        during = upload_new(client, pair.a, 10, first_seed=100)
        # B's stream stays open and keeps delivering: its hub reads the feed while the bus is away.
        assert image_ids(on_b.take(10, timeout_s=20)) == [i["id"] for i in during]

        redis_server.start()
        after = upload_new(client, pair.a, 10, first_seed=200)  # some of these race the reconnection
        wait_until(lambda: all(pair.health(s)["bus"] == "connected" for s in (pair.a, pair.b)), timeout_s=15)
        assert image_ids(on_b.take(10, timeout_s=20)) == [i["id"] for i in after]

        # Nothing arrives twice: the next event on B is the next image.
        sentinel = upload_new(client, pair.a, 1, first_seed=300)
        assert image_ids([on_b.next()]) == [sentinel[0]["id"]]
        assert on_b.pending() == 0
    assert pair.health(pair.b)["status"] == "ok"


def test_when_a_dies_b_keeps_serving_and_takes_over_the_hot_folder(
    pair_factory: PairFactory, client: httpx.Client
) -> None:
    pair = pair_factory("redis")
    wait_until(lambda: sorted(watching(pair)) == [False, True], timeout_s=10)
    ingesting, standby = (pair.a, pair.b) if watching(pair)[0] else (pair.b, pair.a)

    with sse(standby.api("/events")) as stream:
        (ingesting.watch / "first.jpg").write_bytes(jpeg_bytes((64, 48), seed=1))
        [event] = stream.take(1, timeout_s=20)
        assert event.json()["filename"] == "first.jpg"

        ingesting.proc.kill()  # a crash: no clean shutdown, its lock goes with its database session
        ingesting.proc.wait()
        wait_until(lambda: standby.url and pair.health(standby)["watching"], timeout_s=20)

        (ingesting.watch / "second.jpg").write_bytes(jpeg_bytes((64, 48), seed=2))
        [event] = stream.take(1, timeout_s=20)
        assert event.json()["filename"] == "second.jpg"
        # Its stream stayed open through all this, and uploads to it go on.
        uploaded = upload_new(client, standby, 2, first_seed=50)
        assert image_ids(stream.take(2)) == [i["id"] for i in uploaded]
        assert stream.error is None

    names = [i["filename"] for i in client.get(standby.api("/images")).json()["images"]]
    assert sorted(names) == sorted(["first.jpg", "second.jpg", "img-050.jpg", "img-051.jpg"])


def test_many_subscribers_over_both_servers_each_get_every_event_once(
    pair_factory: PairFactory, client: httpx.Client
) -> None:
    pair = pair_factory("redis")
    streams: list[SseStream] = []
    try:
        for n in range(20):  # spread over both servers
            server = pair.a if n % 2 else pair.b
            stream = SseStream(f"{server.api('/events')}?heartbeat=0.5").open()
            stream.wait_connected()
            streams.append(stream)
        images = upload_new(client, pair.a, 3) + upload_new(client, pair.b, 3, first_seed=10)
        expected = [i["id"] for i in images]
        for stream in streams:
            got = image_ids(stream.take(6, timeout_s=20))
            assert sorted(got) == sorted(expected) and len(set(got)) == 6
        assert all(s.pending() == 0 for s in streams)
    finally:
        for stream in streams:
            stream.close()


# -- access control in the shared database ------------------------------------------------------


def test_tokens_links_sessions_and_revocations_are_seen_by_both_servers(
    pg_url: str, server_factory: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With `--db postgresql://…` the auth store is the database's: a token made by the CLI, a link made on A,
    a browser signed in on A all work on B, and a revocation on A is refused on B at its next request."""
    cli = ["--data", str(tmp_path / "cli"), "--db", pg_url]
    assert main(["token", "create", "--role", "owner", "--name", "studio", *cli]) == 0
    owner = {"Authorization": f"Bearer {capsys.readouterr().out.strip()}"}
    args = ("--db", pg_url, "--bus", "postgres", "--auth")
    a = server_factory(data=tmp_path / "a", extra_args=args)
    b = server_factory(data=tmp_path / "b", extra_args=args)
    assert "created owner token" not in a.log() + b.log()  # the CLI's owner token is theirs too
    assert not (a.data / "auth.sqlite").exists() and not (b.data / "auth.sqlite").exists()

    with checked_client() as client:
        for server in (a, b):
            assert client.get(server.api("/images"), headers=owner).status_code == 200

        # A browser session made on A is B's too (each server's cookie jar is its own client here).
        login = client.post(f"{a.url}/login", data={"token": owner["Authorization"].split()[1]})
        assert login.status_code == 303
        browser = {"Cookie": f"{SESSION_COOKIE}={login.cookies[SESSION_COOKIE]}"}
        client.cookies.clear()
        assert client.get(b.api("/images"), headers=browser).status_code == 200

        # A share link made on A opens on B, and its session works on A.
        made = client.post(a.api("/shares"), json={"role": "viewer", "name": "client"}, headers=owner)
        assert made.status_code == 201, made.text
        share_id, path = made.json()["share"]["id"], made.json()["path"]
        opened = client.get(f"{b.url}{path}")
        assert opened.status_code == 303, opened.text
        guest = {"Cookie": f"{SESSION_COOKIE}={opened.cookies[SESSION_COOKIE]}"}
        client.cookies.clear()
        assert client.get(a.api("/images"), headers=guest).status_code == 200
        listed = client.get(b.api("/shares"), headers=owner).json()["shares"]
        assert [s["id"] for s in listed] == [share_id]

        # Revoked on A: refused on B at once, the link and the sessions it signed in.
        assert client.delete(a.api(f"/shares/{share_id}"), headers=owner).status_code == 200
        assert_json_error(client.get(b.api("/images"), headers=guest), 401, "unauthenticated")
        assert client.get(f"{b.url}{path}").status_code == 410

        # A token revoked by the CLI: refused by both, and the browser it signed in is signed out.
        assert main(["token", "list", *cli]) == 0
        token_id = capsys.readouterr().out.split()[0]
        assert main(["token", "revoke", token_id, *cli]) == 0
        for server in (a, b):
            assert_json_error(client.get(server.api("/images"), headers=owner), 401, "token_revoked")
            assert_json_error(client.get(server.api("/images"), headers=browser), 401, "unauthenticated")
    for server in (a, b):
        assert "Traceback" not in server.log(), server.log()
