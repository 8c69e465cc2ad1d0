"""`FeedHub` in-process: every subscription gets exactly the changes after its cursor, in order, once."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from dashboard import hub as hub_module
from dashboard.bus import LocalBus
from dashboard.events import IMAGE_CREATED, Change
from dashboard.hub import FeedHub
from tests.support.embedded import Embedded
from tests.support.images import jpeg_bytes
from tests.support.waiting import run_loop

PROJECT = "default"


def ingest(embedded: Embedded, n: int) -> int:
    """Store one new image (publishing on the embedded bus); returns its feed sequence."""
    result = embedded.ingestor.ingest(jpeg_bytes((32, 24), seed=n, model=f"hub-{n}"), PROJECT, filename=f"{n}.jpg")
    assert result.created
    return result.image.seq


@dataclass
class Recorder:
    """A feed consumer that keeps every batch it was handed."""

    batches: list[list[Change]] = field(default_factory=list)

    def __call__(self, batch: list[Change]) -> None:
        self.batches.append(list(batch))

    @property
    def seqs(self) -> list[int]:
        return [c.seq for batch in self.batches for c in batch]


async def until(predicate: Callable[[], object], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.01)


@pytest.fixture(params=[hub_module.BATCH, 3], ids=["one-read", "paged-reads"])
def batch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """The hub's read size: the default, and one small enough that backlogs take several reads."""
    monkeypatch.setattr(hub_module, "BATCH", request.param)
    return int(request.param)


def test_subscriptions_with_different_cursors_get_exactly_their_missing_changes(embedded: Embedded, batch: int) -> None:
    backlog = [ingest(embedded, n) for n in range(10)]
    assert backlog == list(range(1, 11))

    async def main() -> dict[int, Recorder]:
        hub = FeedHub(embedded.store, embedded.bus, poll_s=60)
        hub.start(asyncio.get_running_loop())
        try:
            recorders = {cursor: Recorder() for cursor in (0, 3, 7, 10)}
            for cursor, recorder in recorders.items():
                hub.subscribe(PROJECT, cursor, recorder)
            assert hub.subscriber_count(PROJECT) == 4
            for n in range(10, 15):  # live, published from another thread like an upload worker
                await asyncio.to_thread(ingest, embedded, n)
            await until(lambda: all(r.seqs and r.seqs[-1] == 15 for r in recorders.values()))
            return recorders
        finally:
            hub.stop()

    for cursor, recorder in run_loop(main()).items():
        assert recorder.seqs == list(range(cursor + 1, 16)), cursor
        for batch_ in recorder.batches:
            assert batch_ and all(c.kind == IMAGE_CREATED and c.image is not None for c in batch_)
            assert len(batch_) <= batch


def test_subscribing_while_changes_stream_in_never_skips_or_repeats(embedded: Embedded, batch: int) -> None:
    total = 40

    async def main() -> list[tuple[int, Recorder]]:
        hub = FeedHub(embedded.store, embedded.bus, poll_s=60)
        hub.start(asyncio.get_running_loop())
        subs: list[tuple[int, Recorder]] = []
        writer = threading.Thread(target=lambda: [ingest(embedded, n) for n in range(total)], name="test-writer")
        try:
            writer.start()
            while writer.is_alive() or len(subs) < 2:
                cursor = await asyncio.to_thread(embedded.store.last_seq, PROJECT)
                for behind in (0, 2, 5):  # some start at the head, some replay a little first
                    recorder = Recorder()
                    hub.subscribe(PROJECT, max(0, cursor - behind), recorder)
                    subs.append((max(0, cursor - behind), recorder))
                await asyncio.sleep(0.005)
            await until(lambda: all(r.seqs[-1:] == [total] or c == total for c, r in subs))
            return subs
        finally:
            await asyncio.to_thread(writer.join)
            hub.stop()

    subs = run_loop(main())
    assert len(subs) >= 6
    for cursor, recorder in subs:
        assert recorder.seqs == list(range(cursor + 1, total + 1)), cursor


def test_a_consumer_that_raises_is_dropped_and_the_others_go_on(
    embedded: Embedded, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[list[int]] = []

    def broken(batch: list[Change]) -> None:
        calls.append([c.seq for c in batch])
        raise RuntimeError("this browser tab is gone")

    async def main() -> tuple[Recorder, Recorder]:
        hub = FeedHub(embedded.store, embedded.bus, poll_s=60)
        hub.start(asyncio.get_running_loop())
        try:
            before, after = Recorder(), Recorder()
            hub.subscribe(PROJECT, 0, before)
            failing = hub.subscribe(PROJECT, 0, broken)
            hub.subscribe(PROJECT, 0, after)
            await asyncio.to_thread(ingest, embedded, 1)
            await until(lambda: failing.closed and before.seqs == [1] and after.seqs == [1])
            assert hub.subscriber_count(PROJECT) == 2
            for n in range(2, 5):
                await asyncio.to_thread(ingest, embedded, n)
            await until(lambda: before.seqs[-1:] == [4] and after.seqs[-1:] == [4])
            return before, after
        finally:
            hub.stop()

    before, after = run_loop(main())
    assert before.seqs == after.seqs == [1, 2, 3, 4]
    assert calls == [[1]]  # delivered to once, then never again
    dropped = [r for r in caplog.records if r.name == "fotoflo.hub" and r.levelno == logging.ERROR]
    assert len(dropped) == 1 and "dropping" in dropped[0].getMessage()
    assert dropped[0].exc_info is not None and "browser tab is gone" in str(dropped[0].exc_info[1])


def test_lost_bus_messages_are_made_up_by_the_poller(embedded: Embedded) -> None:
    """The hub listens on a bus nobody publishes to: only its poll of the feed can deliver."""
    ingest(embedded, 0)

    async def main() -> Recorder:
        hub = FeedHub(embedded.store, LocalBus(), poll_s=0.05)
        hub.start(asyncio.get_running_loop())
        try:
            recorder = Recorder()
            hub.subscribe(PROJECT, 1, recorder)
            for n in range(1, 4):
                await asyncio.to_thread(ingest, embedded, n)
            await until(lambda: recorder.seqs[-1:] == [4], timeout_s=5)
            return recorder
        finally:
            hub.stop()

    assert run_loop(main()).seqs == [2, 3, 4]


def test_closing_a_subscription_and_stopping_the_hub(embedded: Embedded) -> None:
    async def main() -> None:
        hub = FeedHub(embedded.store, embedded.bus, poll_s=60)
        hub.start(asyncio.get_running_loop())
        try:
            gone, kept = Recorder(), Recorder()
            sub_gone = hub.subscribe(PROJECT, 0, gone)
            sub_kept = hub.subscribe(PROJECT, 0, kept)
            await asyncio.to_thread(ingest, embedded, 1)
            await until(lambda: gone.seqs == [1] and kept.seqs == [1])
            sub_gone.close()
            sub_gone.close()  # idempotent
            assert hub.subscriber_count() == 1
            await asyncio.to_thread(ingest, embedded, 2)
            await until(lambda: kept.seqs == [1, 2])
            assert gone.seqs == [1] and sub_gone.cursor == 1 and sub_kept.cursor == 2
        finally:
            hub.stop()
        assert sub_kept.closed and hub.subscriber_count() == 0

    run_loop(main())
