"""The `Bus` contract, on `LocalBus`, `RedisBus` (a real redis-server), `PostgresBus` (real NOTIFY) and
`SupabaseBus` (a fake of Supabase Realtime, `tests/supabase/fakes/`).

Plus what the feed hub makes of a broker outage: every change still arrives exactly once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from dashboard.bus import EVERY_PROJECT, Bus, LocalBus
from dashboard.buses import MAX_MESSAGE_BYTES, decode, encode
from dashboard.buses.postgres import PostgresBus
from dashboard.buses.redis import RedisBus
from dashboard.hub import FeedHub
from tests.support.embedded import Embedded
from tests.support.images import jpeg_bytes
from tests.support.services import PostgresServer, RedisServer
from tests.support.waiting import run_loop, wait_until


@dataclass
class Heard:
    """A listener that keeps every message, thread-safely."""

    messages: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, project: str, seq: int) -> None:
        with self.lock:
            self.messages.append((project, seq))

    def news(self) -> list[tuple[str, int]]:
        """The messages that name a project (not the `EVERY_PROJECT` wake-ups after a connection)."""
        with self.lock:
            return [m for m in self.messages if m[0] != EVERY_PROJECT]

    def resyncs(self) -> int:
        with self.lock:
            return sum(1 for m in self.messages if m[0] == EVERY_PROJECT)


@dataclass
class BusKind:
    """Opens buses of one kind on one broker: each is "another server" (LocalBus: the one process)."""

    name: str
    make: Callable[[], Bus]
    opened: list[Bus] = field(default_factory=list)

    def open(self) -> Bus:
        bus = self.make()
        self.opened.append(bus)
        return bus


@pytest.fixture(params=["local", "redis", "postgres", "supabase"])
def bus_kind(request: pytest.FixtureRequest) -> Iterator[BusKind]:
    if request.param == "local":
        local = LocalBus()
        kind = BusKind("local", lambda: local)
    elif request.param == "redis":
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        kind = BusKind("redis", lambda: RedisBus(redis_server.url))
    elif request.param == "postgres":
        postgres_server: PostgresServer = request.getfixturevalue("postgres_server")
        kind = BusKind("postgres", lambda: PostgresBus(postgres_server.url()))
    else:
        from dashboard.supabase.bus import SupabaseBus
        from tests.supabase.fakes.common import SERVICE_KEY

        realtime = request.getfixturevalue("fake_realtime")
        kind = BusKind("supabase", lambda: SupabaseBus(realtime.url, SERVICE_KEY, settle_s=0.1))
    yield kind
    for bus in kind.opened:
        bus.close()


def test_a_published_message_reaches_every_listener_of_every_server(bus_kind: BusKind) -> None:
    a, b = bus_kind.open(), bus_kind.open()
    on_a, on_b, also_on_b = Heard(), Heard(), Heard()
    a.subscribe(on_a)
    b.subscribe(on_b)
    b.subscribe(also_on_b)
    assert a.connected and b.connected

    a.publish("wedding", 7)

    for heard in (on_a, on_b, also_on_b):
        wait_until(lambda heard=heard: heard.news() == [("wedding", 7)], timeout_s=5)


def test_messages_carry_project_and_seq_of_any_project_name(bus_kind: BusKind) -> None:
    a, b = bus_kind.open(), bus_kind.open()
    heard = Heard()
    b.subscribe(heard)
    names = ["Hochzeit Müller – 2025", "a/b", "x" * 200]

    for n, name in enumerate(names, 1):
        a.publish(name, n)

    wait_until(lambda: sorted(heard.news()) == sorted((name, n) for n, name in enumerate(names, 1)), timeout_s=5)


def test_the_newest_seq_of_a_project_always_arrives(bus_kind: BusKind) -> None:
    # A broker's bus may coalesce a burst (only the newest seq matters to a reader of the feed).
    a, b = bus_kind.open(), bus_kind.open()
    heard = Heard()
    b.subscribe(heard)

    for seq in range(1, 101):
        a.publish("burst", seq)

    wait_until(lambda: heard.news() and heard.news()[-1] == ("burst", 100), timeout_s=5)
    seqs = [seq for _, seq in heard.news()]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_unsubscribe_stops_delivery(bus_kind: BusKind) -> None:
    bus = bus_kind.open()
    gone, kept = Heard(), Heard()
    unsubscribe = bus.subscribe(gone)
    bus.subscribe(kept)
    bus.publish("p", 1)
    wait_until(lambda: gone.news() == [("p", 1)] and kept.news() == [("p", 1)], timeout_s=5)

    unsubscribe()
    unsubscribe()  # idempotent
    bus.publish("p", 2)

    wait_until(lambda: kept.news() == [("p", 1), ("p", 2)], timeout_s=5)
    assert gone.news() == [("p", 1)]


def test_a_failing_listener_does_not_stop_the_others(bus_kind: BusKind, caplog: pytest.LogCaptureFixture) -> None:
    bus = bus_kind.open()
    heard = Heard()

    def broken(project: str, seq: int) -> None:
        raise RuntimeError("this hub is gone")

    bus.subscribe(broken)
    bus.subscribe(heard)
    bus.publish("p", 1)
    bus.publish("p", 2)

    wait_until(lambda: heard.news()[-1:] == [("p", 2)], timeout_s=5)
    assert any("bus listener" in r.getMessage() for r in caplog.records)


def test_close_stops_delivery_and_is_idempotent(bus_kind: BusKind) -> None:
    a, b = bus_kind.open(), bus_kind.open()
    heard = Heard()
    b.subscribe(heard)
    b.close()
    b.close()

    a.publish("p", 1)

    if bus_kind.name != "local":
        assert not b.connected
        a_heard = Heard()
        a.subscribe(a_heard)
        a.publish("p", 2)
        wait_until(lambda: ("p", 2) in a_heard.news(), timeout_s=5)  # a still works; b heard nothing
    assert heard.news() == []


# -- broker outages ---------------------------------------------------------------------------------


def test_wire_format_is_only_project_and_seq() -> None:
    assert encode("p", 3) == '{"project":"p","seq":3}'
    assert decode(encode("wedding", 12) or "") == ("wedding", 12)
    assert encode("x" * MAX_MESSAGE_BYTES, 1) is None  # NOTIFY's cap: the feed poll delivers instead
    for junk in ("", "nope", '{"project": "", "seq": 1}', '{"project": "p", "seq": true}', "[1]", b"\xff"):
        assert decode(junk) is None


def test_redis_killed_and_restarted(redis_server: RedisServer) -> None:
    a, b = RedisBus(redis_server.url), RedisBus(redis_server.url)
    try:
        heard = Heard()
        b.subscribe(heard)
        a.publish("p", 1)
        wait_until(lambda: heard.news() == [("p", 1)], timeout_s=5)

        redis_server.kill()
        wait_until(lambda: not a.connected and not b.connected, timeout_s=10)
        a.publish("p", 2)  # lost (or not): it never blocks, never raises

        redis_server.start()
        wait_until(lambda: a.connected and b.connected, timeout_s=10)
        assert heard.resyncs() >= 1  # told to read the feed: messages may have been missed
        a.publish("p", 3)
        wait_until(lambda: ("p", 3) in heard.news(), timeout_s=5)
    finally:
        a.close()
        b.close()


def test_a_bus_started_while_redis_is_down_connects_when_it_comes_up(redis_server: RedisServer) -> None:
    redis_server.kill()
    bus = RedisBus(redis_server.url, connect_wait_s=0.1)
    try:
        heard = Heard()
        bus.subscribe(heard)
        assert not bus.connected
        redis_server.start()
        wait_until(lambda: bus.connected, timeout_s=10)
        wait_until(lambda: heard.resyncs() >= 1, timeout_s=5)
        bus.publish("p", 1)
        wait_until(lambda: heard.news() == [("p", 1)], timeout_s=5)
    finally:
        bus.close()


def terminate_bus_connections(server: PostgresServer) -> int:
    """Kill the backends of every PostgresBus connection, as a database restart or failover would."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'fotoflo-bus'"
        ).fetchone()
    return int(row[0]) if row else 0


def test_postgres_bus_reconnects_after_its_connection_is_killed(postgres_server: PostgresServer) -> None:
    a, b = PostgresBus(postgres_server.url()), PostgresBus(postgres_server.url())
    try:
        heard = Heard()
        b.subscribe(heard)
        a.publish("p", 1)
        wait_until(lambda: heard.news() == [("p", 1)], timeout_s=5)
        resyncs = heard.resyncs()

        assert terminate_bus_connections(postgres_server) >= 2
        wait_until(lambda: heard.resyncs() > resyncs, timeout_s=10)  # reconnected, and said so
        wait_until(lambda: a.connected and b.connected, timeout_s=10)
        a.publish("p", 2)
        wait_until(lambda: ("p", 2) in heard.news(), timeout_s=5)
    finally:
        a.close()
        b.close()


# -- the hub across an outage -------------------------------------------------------------------------


def _ingest(embedded: Embedded, n: int) -> int:
    result = embedded.ingestor.ingest(jpeg_bytes((32, 24), seed=n, model=f"bus-{n}"), "default", filename=f"{n}.jpg")
    assert result.created
    return result.image.seq


def test_the_hub_delivers_every_change_once_across_a_redis_outage(
    embedded: Embedded, redis_server: RedisServer
) -> None:
    """Server A ingests and publishes on Redis; server B's hub follows. Redis dies in the middle."""
    publisher, listener = RedisBus(redis_server.url), RedisBus(redis_server.url)
    embedded.ingestor.bus = publisher
    got: list[int] = []

    async def main() -> dict[str, Any]:
        hub = FeedHub(embedded.store, listener, poll_s=60)  # no regular poll: bus, reconnect, offline poll
        hub.start(asyncio.get_running_loop())
        try:
            hub.subscribe("default", 0, lambda batch: got.extend(c.seq for c in batch))
            for n in range(1, 4):
                await asyncio.to_thread(_ingest, embedded, n)
            await _until(lambda: got[-1:] == [3])
            redis_server.kill()
            await _until(lambda: not listener.connected)
            for n in range(4, 8):  # delivered by the hub's offline poll while Redis is away
                await asyncio.to_thread(_ingest, embedded, n)
            await _until(lambda: got[-1:] == [7])
            await asyncio.to_thread(redis_server.start)
            await _until(lambda: listener.connected and publisher.connected)
            for n in range(8, 11):
                await asyncio.to_thread(_ingest, embedded, n)
            await _until(lambda: got[-1:] == [10])
            return {"subscribers": hub.subscriber_count()}
        finally:
            hub.stop()

    try:
        assert run_loop(main()) == {"subscribers": 1}
    finally:
        publisher.close()
        listener.close()
    assert got == list(range(1, 11))


async def _until(predicate: Callable[[], object], timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.01)
