"""`SupabaseBus` against a FAKE Realtime (`tests/supabase/fakes/fake_realtime.py`) fed by the real feed table.

Realtime's known failure modes, each with a feed hub following another server's writes: events lost
for a while after SUBSCRIBED, a reconnect whose postgres_changes subscription silently never comes,
and CHANNEL_ERROR. Whatever happens, the hub hands on every change exactly once, in order. (The
`Bus` contract itself runs on SupabaseBus in tests/test_bus_contract.py.)
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from realtime import RealtimeSubscribeStates

from dashboard.buses import CHANNEL
from dashboard.events import Change, ImageRecord
from dashboard.hub import FeedHub
from dashboard.supabase.bus import NEWS_EVENT, SupabaseBus
from dashboard.supabase.store import SupabaseStore
from supabase import AsyncClientOptions, acreate_client
from tests.supabase.fakes.common import ANON_KEY, FAKE_URL, MIGRATIONS, SERVICE_KEY, apply_sql, make_key
from tests.supabase.fakes.fake_http import FakeSupabaseHTTP
from tests.supabase.fakes.fake_realtime import FakeRealtime
from tests.support.records import image_record
from tests.support.waiting import run_loop, wait_until
from tests.test_bus_contract import Heard

PROJECT = "wedding"
_numbers = itertools.count(1)


def record(project: str = PROJECT) -> ImageRecord:
    n = next(_numbers)
    return image_record(n, project, id_prefix="rt", content=f"realtime {n}", created_at="2025-06-14T13:20:03.512Z")


@pytest.fixture
def stores(supabase_db: str, tmp_path: Path) -> Iterator[tuple[SupabaseStore, SupabaseStore]]:
    """Two servers' stores on one fake Supabase: the writer (with no bus of its own) and the follower."""
    fake = FakeSupabaseHTTP(supabase_db, tmp_path / "storage")
    writer, follower = (SupabaseStore(FAKE_URL, SERVICE_KEY, transport=fake) for _ in range(2))
    writer.ensure_project(PROJECT)
    yield writer, follower
    writer.close()
    follower.close()
    fake.shutdown()


def follow(store: SupabaseStore, bus: SupabaseBus, scenario: Callable[[Callable[[int], object]], object]) -> list[int]:
    """Run a feed hub on `bus` (no regular poll: only the bus and the offline poll deliver) while
    `scenario(until)` writes; returns the seqs the hub handed to its one subscription."""
    got: list[int] = []

    async def main() -> None:
        hub = FeedHub(store, bus, poll_s=60)
        hub.start(asyncio.get_running_loop())
        try:
            hub.subscribe(PROJECT, 0, lambda batch: got.extend(c.seq for c in batch))

            def until_seq(seq: int) -> object:
                return got[-1:] == [seq]

            await asyncio.to_thread(scenario, lambda seq: wait_until(lambda: until_seq(seq), timeout_s=15))
        finally:
            hub.stop()

    run_loop(main())
    return got


def write(store: SupabaseStore, count: int) -> int:
    """`count` new images through the writer's store; returns the last seq."""
    seq = 0
    for _ in range(count):
        stored, change = store.add_image(record())
        assert change is not None
        seq = stored.seq
    return seq


def test_changes_of_another_writer_arrive_through_postgres_changes(
    stores: tuple[SupabaseStore, SupabaseStore], fake_realtime: FakeRealtime
) -> None:
    writer, follower = stores
    bus = SupabaseBus(fake_realtime.url, SERVICE_KEY, settle_s=0.1)
    try:
        assert bus.connected

        def scenario(until: Callable[[int], object]) -> None:
            # The hub's only regular poll is every 60 s: these come through Realtime.
            until(write(writer, 3))

        assert follow(follower, bus, scenario) == [1, 2, 3]
    finally:
        bus.close()


def test_events_lost_right_after_subscribed_are_read_from_the_feed(
    stores: tuple[SupabaseStore, SupabaseStore], fake_realtime: FakeRealtime
) -> None:
    """supabase-js#1599: Realtime drops the events of the first seconds after a join."""
    writer, follower = stores
    fake_realtime.blind_after_join_s = 1.5
    bus = SupabaseBus(fake_realtime.url, SERVICE_KEY, settle_s=2.0, connect_wait_s=0)
    heard = Heard()
    bus.subscribe(heard)
    try:

        def scenario(until: Callable[[int], object]) -> None:
            wait_until(lambda: fake_realtime.active_subscriptions() == 1, timeout_s=10)
            last = write(writer, 4)  # inside the blind window
            assert not bus.connected  # not trusted yet: the hub polls the feed meanwhile
            until(last)
            wait_until(lambda: bus.connected, timeout_s=10)
            until(write(writer, 2))  # after it, Realtime delivers

        assert follow(follower, bus, scenario) == [1, 2, 3, 4, 5, 6]
        assert fake_realtime.lost >= 1  # the fake really lost some
        assert heard.resyncs() == 2  # read the feed at SUBSCRIBED and once more when the window closed
    finally:
        bus.close()


def test_a_reconnect_that_silently_drops_the_subscription_is_retried(
    stores: tuple[SupabaseStore, SupabaseStore], fake_realtime: FakeRealtime
) -> None:
    """realtime-py#213: after a reconnect the channel says SUBSCRIBED, but no event ever comes."""
    writer, follower = stores
    bus = SupabaseBus(fake_realtime.url, SERVICE_KEY, settle_s=0.1, confirm_timeout_s=0.5)
    try:

        def scenario(until: Callable[[int], object]) -> None:
            until(write(writer, 2))
            fake_realtime.drop_next_subscriptions(1)
            fake_realtime.disconnect_all()
            until(write(writer, 3))  # written while the bus is down, or joined without a subscription
            wait_until(lambda: bus.connected and bus.joins == 2, timeout_s=15)
            until(write(writer, 2))

        assert follow(follower, bus, scenario) == list(range(1, 8))
        assert fake_realtime.joins == 3  # the first, the dropped one, the one that works
    finally:
        bus.close()


def test_channel_error_after_hours_resubscribes_and_misses_nothing(
    stores: tuple[SupabaseStore, SupabaseStore], fake_realtime: FakeRealtime
) -> None:
    """realtime#1414: a channel that has run for hours ends in CHANNEL_ERROR."""
    writer, follower = stores
    bus = SupabaseBus(fake_realtime.url, SERVICE_KEY, settle_s=0.3)
    try:

        def scenario(until: Callable[[int], object]) -> None:
            until(write(writer, 2))
            fake_realtime.channel_error_all()
            wait_until(lambda: not bus.connected, timeout_s=5)
            until(write(writer, 3))
            wait_until(lambda: bus.connected and bus.joins == 2, timeout_s=15)
            until(write(writer, 1))
            fake_realtime.channel_error_all()  # and again, hours later
            until(write(writer, 2))

        assert follow(follower, bus, scenario) == list(range(1, 9))
    finally:
        bus.close()


def test_a_broadcast_reaches_the_other_servers_and_local_listeners_hear_it_once(fake_realtime: FakeRealtime) -> None:
    a, b = (SupabaseBus(fake_realtime.url, SERVICE_KEY, settle_s=0.1) for _ in range(2))
    on_a, on_b = Heard(), Heard()
    a.subscribe(on_a)
    b.subscribe(on_b)
    try:
        a.publish("p", 1)
        wait_until(lambda: on_b.news() == [("p", 1)], timeout_s=5)
        b.publish("p", 2)
        wait_until(lambda: on_a.news() == [("p", 1), ("p", 2)], timeout_s=5)
        assert on_b.news() == [("p", 1), ("p", 2)]  # its own at once, in-process; not echoed back
    finally:
        a.close()
        b.close()


def test_without_the_publication_entry_the_bus_retries_until_the_migration_adds_it(
    supabase_db: str, fake_realtime: FakeRealtime
) -> None:
    with psycopg.connect(supabase_db, autocommit=True) as conn:
        conn.execute("ALTER PUBLICATION supabase_realtime DROP TABLE public.changes")
    bus = SupabaseBus(fake_realtime.url, SERVICE_KEY, settle_s=0.1, connect_wait_s=0.5)
    try:
        wait_until(lambda: fake_realtime.joins >= 2, timeout_s=10)  # refused, and tried again
        assert not bus.connected
        apply_sql(supabase_db, *[m for m in MIGRATIONS if "realtime" in m.name])
        wait_until(lambda: bus.connected, timeout_s=10)
    finally:
        bus.close()


@pytest.mark.parametrize("key", [make_key("service_role", secret="x" * 40), "not-a-jwt"], ids=["forged", "garbage"])
def test_a_refused_key_never_connects_and_closes_cleanly(fake_realtime: FakeRealtime, key: str) -> None:
    bus = SupabaseBus(fake_realtime.url, key, connect_wait_s=0.3)
    try:
        assert not bus.connected
        assert fake_realtime.connections == 0
    finally:
        bus.close()


def test_listeners_run_off_the_event_loop(fake_realtime: FakeRealtime, stores: Any) -> None:
    """Realtime's callbacks only queue a message: listeners run on the bus's listener thread, so a slow
    one can never stall the loop that keeps the websocket alive."""
    writer, _ = stores
    bus = SupabaseBus(fake_realtime.url, SERVICE_KEY, settle_s=0.1)
    threads: list[str] = []
    bus.subscribe(lambda project, seq: threads.append(threading.current_thread().name) if seq else None)
    try:
        write(writer, 1)
        wait_until(lambda: threads, timeout_s=5)
        assert set(threads) == {"fotoflo-supabase-bus-listen"}
    finally:
        bus.close()


class CountingStore:
    """The follower's real store, counting the feed reads the hub makes (and nothing else changed)."""

    def __init__(self, store: SupabaseStore) -> None:
        self.store = store
        self.reads = 0

    def changes(self, project: str, *, after: int, limit: int) -> list[Change]:
        self.reads += 1
        return self.store.changes(project, after=after, limit=limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def forge_broadcasts(url: str, messages: list[dict[str, Any]]) -> None:
    """What anyone with the anon key can do: join the servers' public channel and broadcast on it."""
    options = AsyncClientOptions(realtime={"auto_reconnect": False}, auto_refresh_token=False, persist_session=False)
    client = await acreate_client(url, ANON_KEY, options)
    config = {"broadcast": {"ack": False, "self": False}, "presence": {"key": "", "enabled": False}, "private": False}
    channel = client.channel(CHANNEL, {"config": config})  # type: ignore[typeddict-item]
    joined = asyncio.Event()
    await channel.subscribe(lambda state, _: joined.set() if state == RealtimeSubscribeStates.SUBSCRIBED else None)
    await asyncio.wait_for(joined.wait(), 10)
    try:
        for message in messages:
            await channel.send_broadcast(NEWS_EVENT, message)
    finally:
        await client.realtime.remove_all_channels()


def test_forged_wake_ups_change_nothing_and_a_flood_costs_one_bounded_read_per_interval(
    stores: tuple[SupabaseStore, SupabaseStore], fake_realtime: FakeRealtime
) -> None:
    """The channel is public: anyone with the anon key may broadcast on it. A wake-up only makes the hub
    read the feed from its own cursors (at most 500 entries), so a forged one changes and skips nothing;
    a flood is coalesced to one wake-up per project and interval, and made-up projects cost no read."""
    writer, follower = stores
    last = write(writer, 2)
    counting = CountingStore(follower)
    interval_s = 2.0
    bus = SupabaseBus(fake_realtime.url, SERVICE_KEY, settle_s=0.1, broadcast_interval_s=interval_s)
    flood = [{"project": PROJECT, "seq": last + n} for n in range(1, 1001)]  # newer and newer: never "seen"
    flood += [{"project": f"made-up-{n}", "seq": 1} for n in range(300)]
    flood += [{"project": PROJECT, "seq": "1 OR 1=1"}, {"project": None, "seq": 5}, {"seq": 10**30}, {}]
    got: list[int] = []
    measured: dict[str, float] = {}

    async def main() -> None:
        hub = FeedHub(counting, bus, poll_s=60)  # type: ignore[arg-type]
        hub.start(asyncio.get_running_loop())
        try:
            hub.subscribe(PROJECT, last, lambda batch: got.extend(c.seq for c in batch))
            await asyncio.to_thread(wait_until, lambda: bus.connected, 10)
            reads_before, started = counting.reads, time.monotonic()
            # From a client of its own (its own thread and loop), as an attacker's would be.
            await asyncio.to_thread(asyncio.run, forge_broadcasts(fake_realtime.url, flood))
            await asyncio.to_thread(wait_until, lambda: bus.broadcasts == 1300 and not bus._held, 30)
            # The database's own announcements still arrive.
            await asyncio.to_thread(write, writer, 1)
            await asyncio.to_thread(wait_until, lambda: got == [last + 1], 10)
            measured.update(reads=counting.reads - reads_before, elapsed_s=time.monotonic() - started)
        finally:
            hub.stop()

    try:
        run_loop(main())
    finally:
        bus.close()
    assert got == [last + 1]  # the forged wake-ups delivered nothing, and hid nothing
    assert follower.last_seq(PROJECT) == last + 1 and follower.projects() == [PROJECT]
    # One read at most per released wake-up, one wake-up per interval (the first at once), plus the write's
    # and the settle window's: not one per broadcast (1,300 of them, 1,000 for this project).
    assert measured["reads"] <= 4 + measured["elapsed_s"] / interval_s, measured
