"""Fan-out of the change feed to everything open in this server process.

The bus only wakes the hub; the hub reads the feed once per wake-up and project (not once per
listener) and hands each subscription exactly the changes after its own cursor, in order. A
subscription that starts behind (a reconnecting browser with `Last-Event-ID`) is served from the
same reads, so replay and live delivery can neither skip nor repeat an event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dashboard.bus import EVERY_PROJECT, Bus
from dashboard.events import Change
from dashboard.store import Store

log = logging.getLogger("fotoflo.hub")

BATCH = 500
OFFLINE_POLL_S = 0.5  # while the bus is disconnected the feed poll delivers, at this pace
POLL_FAILURE_LOG_EVERY_S = 60.0  # a store that stays down is logged this often, not at every poll


class FeedSubscription:
    """Delivery of one project's feed after `cursor` to one consumer, on the hub's loop."""

    def __init__(self, hub: FeedHub, project: str, cursor: int, deliver: Callable[[list[Change]], None]) -> None:
        self.hub = hub
        self.project = project
        self.cursor = cursor
        self._deliver = deliver
        self.closed = False

    def _offer(self, batch: list[Change]) -> None:
        fresh = [c for c in batch if c.seq > self.cursor]
        if not fresh or self.closed:
            return
        self.cursor = fresh[-1].seq
        try:
            self._deliver(fresh)
            if self.hub.on_delivered is not None:
                self.hub.on_delivered(fresh)
        except Exception:
            log.exception("a feed consumer of %s failed; dropping it", self.project)
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub._forget(self)


@dataclass
class _ProjectState:
    subs: set[FeedSubscription] = field(default_factory=set)
    dirty: bool = False
    task: asyncio.Task[None] | None = None


class FeedHub:
    """Owns one bus subscription per process and feeds every local subscription from the store."""

    def __init__(self, store: Store, bus: Bus, *, poll_s: float = 5.0) -> None:
        self.store = store
        self.bus = bus
        self.poll_s = poll_s  # backstop for bus messages lost while a listener was away
        self.offline_poll_s = min(poll_s, OFFLINE_POLL_S)
        self._projects: dict[str, _ProjectState] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._poll_failed_logged_at = 0.0  # monotonic time of the last logged poll failure; 0: none
        #: Told of each batch handed to a subscription (the server's metrics), on the hub's loop.
        self.on_delivered: Callable[[list[Change]], None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Listen to the bus; without `loop`, bind to the loop of the first `subscribe` call."""
        self._unsubscribe = self.bus.subscribe(self._on_bus)
        if loop is not None:
            self._bind(loop)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._poller = loop.create_task(self._poll_forever())

    def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        if self._poller:
            self._poller.cancel()
            self._poller = None
        for state in self._projects.values():
            if state.task:
                state.task.cancel()
            for sub in list(state.subs):
                sub.closed = True
        self._projects.clear()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "FeedHub.start() was not called"
        return self._loop

    def subscribe(self, project: str, after: int, deliver: Callable[[list[Change]], None]) -> FeedSubscription:
        """Deliver every change with `seq > after`, first the backlog then live. Call on the hub's loop."""
        if self._loop is None:
            self._bind(asyncio.get_running_loop())
        sub = FeedSubscription(self, project, after, deliver)
        self._projects.setdefault(project, _ProjectState()).subs.add(sub)
        self._wake(project)
        return sub

    def subscriber_count(self, project: str | None = None) -> int:
        states = [self._projects.get(project)] if project else list(self._projects.values())
        return sum(len(s.subs) for s in states if s)

    def _forget(self, sub: FeedSubscription) -> None:
        state = self._projects.get(sub.project)
        if state:
            state.subs.discard(sub)

    def _on_bus(self, project: str, seq: int) -> None:
        # Called from the publisher's thread (watchdog, upload worker, Redis reader).
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_all if project == EVERY_PROJECT else self._wake, project)

    def _wake_all(self, _: str = EVERY_PROJECT) -> None:
        for project in list(self._projects):
            self._wake(project)

    def _wake(self, project: str) -> None:
        state = self._projects.get(project)
        if state is None or not state.subs:
            return
        state.dirty = True
        if state.task is None or state.task.done():
            state.task = self.loop.create_task(self._pump(project, state))

    async def _pump(self, project: str, state: _ProjectState) -> None:
        try:
            while state.dirty:
                state.dirty = False
                while state.subs:
                    cursor = min(s.cursor for s in state.subs)
                    batch = await asyncio.to_thread(self.store.changes, project, after=cursor, limit=BATCH)
                    for sub in list(state.subs):
                        # One that subscribed during the read, further back, would get a gap: its
                        # subscribe() set `dirty`, so the next read starts from its cursor.
                        if sub.cursor >= cursor:
                            sub._offer(batch)
                    if len(batch) < BATCH:
                        break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reading the feed of %s failed; retrying", project)
            self.loop.call_later(1.0, self._wake, project)

    async def _poll_forever(self) -> None:
        # Every `poll_s`, and every `offline_poll_s` while the bus is down: a server that lost Redis
        # (or NOTIFY) keeps delivering from the feed, a little later, until the bus is back.
        waited = 0.0
        while True:
            await asyncio.sleep(self.offline_poll_s)
            waited += self.offline_poll_s
            if waited < self.poll_s and self.bus.connected:
                continue
            waited = 0.0
            for project, state in list(self._projects.items()):
                if not state.subs:
                    continue
                try:
                    last = await asyncio.to_thread(self.store.last_seq, project)
                except Exception as exc:
                    # The store is down: say so once, then every minute, not every half second.
                    now = time.monotonic()
                    if now - self._poll_failed_logged_at >= POLL_FAILURE_LOG_EVERY_S:
                        self._poll_failed_logged_at = now
                        log.warning("polling the feed of %s failed (%s); retrying", project, exc)
                    continue
                if self._poll_failed_logged_at:
                    self._poll_failed_logged_at = 0.0
                    log.info("polling the feed of %s works again", project)
                if any(s.cursor < last for s in state.subs):
                    self._wake(project)
