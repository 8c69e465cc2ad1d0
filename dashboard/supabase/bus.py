"""`SupabaseBus`: Supabase Realtime as the bus between Fotoflo's servers.

Each server joins one Realtime channel with a `postgres_changes` subscription to INSERTs on the
change feed (`public.changes`), so every write by any writer announces itself, and `publish` also
sends a broadcast on the channel (reaching the other servers at once) while this server's own
listeners hear it in-process. Messages carry only project and seq: the feed is the truth.

supabase-py's Realtime client is async-only (`acreate_client`), so the bus runs its own event loop
in a thread; callbacks on that loop only put messages on a queue, never block it. The listener
thread of `BrokerBus` drains the queue and owns the connection's life, because Realtime is known
to lose events and subscriptions without saying so, and each is handled here, not hoped away:

- **Events missed for 1-3 s after SUBSCRIBED** (supabase-js#1599). A subscription counts only once
  Realtime's `system` message confirms the postgres_changes subscription; listeners then read the
  feed from their cursors (`EVERY_PROJECT`), and `connected` stays false for `settle_s` more, so
  the hub polls the feed every 0.5 s meanwhile, and reads it once more when the window closes.
- **Auto-reconnect that drops postgres_changes subscriptions** (realtime-py#213). The client's own
  reconnection is off: every lost socket or channel is reconnected here, on a fresh client, with
  backoff, and a join that Realtime never confirms within `confirm_timeout_s` is torn down and
  tried again.
- **CHANNEL_ERROR (or CLOSED, TIMED_OUT) after hours** (realtime#1414). Any channel state but
  SUBSCRIBED ends the connection; it is rebuilt as above, followed by the same catch-up reads.

The channel is public, so anyone with the project's anon key may broadcast on it too. A broadcast
is therefore only a hint, never trusted for more than a wake-up: it carries no change (the feed is
read from each listener's own cursor, so a forged seq or project changes nothing and skips
nothing), a seq already announced by the database itself (`postgres_changes`) is ignored, and the
rest are coalesced per project and released at most once per `broadcast_interval_s`. A flood of
forged wake-ups costs each server at most one bounded feed read (the hub's, of projects it serves)
per interval, and a bounded dict of held projects; the rows of `postgres_changes` come from the
database's own log and cannot be forged with the anon key.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates
from realtime.message import SuccessSystemPayload
from realtime.types import BroadcastPayload, PostgresChangesPayload

from dashboard.bus import EVERY_PROJECT
from dashboard.buses import CHANNEL, BrokerBus, decode, encode
from supabase import AsyncClient, AsyncClientOptions, acreate_client

log = logging.getLogger("fotoflo.bus")

T = TypeVar("T")

FEED_TABLE = "changes"
NEWS_EVENT = "news"  # the broadcast event `publish` sends
CONFIRM_TIMEOUT_S = 10.0  # a join Realtime has not confirmed by then is torn down and retried
SETTLE_S = 3.0  # after the confirmation, events may still be lost this long (supabase-js#1599)
JOIN_TIMEOUT_S = 10
CALL_TIMEOUT_S = 5.0
BROADCAST_INTERVAL_S = 0.1  # broadcast wake-ups (anyone with the anon key may send one) at most this often
MAX_HELD_PROJECTS = 256  # projects with a broadcast wake-up waiting for the next release; more are dropped
_HELD = ""  # on the queue: broadcast wake-ups wait in `_held`


class SupabaseBus(BrokerBus):
    """`Bus` over the Realtime service of the Supabase project at `url` (see the module).

    `connected` is true while the channel is subscribed, confirmed and past its settle window.
    """

    kind = "supabase"

    def __init__(
        self,
        url: str,
        key: str,
        *,
        channel: str = CHANNEL,
        connect_wait_s: float = 5.0,
        confirm_timeout_s: float = CONFIRM_TIMEOUT_S,
        settle_s: float = SETTLE_S,
        join_timeout_s: int = JOIN_TIMEOUT_S,
        broadcast_interval_s: float = BROADCAST_INTERVAL_S,
    ) -> None:
        super().__init__()
        self.url = url
        self.key = key
        self.topic = channel
        self.confirm_timeout_s = confirm_timeout_s
        self.settle_s = settle_s
        self.join_timeout_s = join_timeout_s
        self.joins = 0  # subscriptions Realtime confirmed, over the bus's life
        self.broadcast_interval_s = broadcast_interval_s
        self.broadcasts = 0  # well-formed broadcasts received, over the bus's life
        self.broadcast_wakeups = 0  # (project, seq) wake-ups released from them to the listeners
        # Broadcasts are untrusted (see the module): the newest seq per project waits here for its
        # release; `_announced` is the newest seq per project the database itself announced.
        self._held: dict[str, int] = {}
        self._held_lock = threading.Lock()
        self._held_signalled = False
        self._announced: dict[str, int] = {}
        self._release_at = 0.0  # monotonic time from which held wake-ups may go out
        self._events: queue.Queue[str | None] = queue.Queue()
        self._generation = 0  # which connection the loop's callbacks belong to
        self._broken: str | None = None
        self._settle_at: float | None = None  # monotonic time the current subscription is trusted from
        self._settled = False
        self._ever_settled = threading.Event()
        self._client: AsyncClient | None = None
        self._channel: AsyncRealtimeChannel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_stop: asyncio.Event | None = None
        self._loop_ready = threading.Event()
        self._loop_thread = threading.Thread(target=self._run_loop, name="fotoflo-supabase-bus-loop", daemon=True)
        self._loop_thread.start()
        self._loop_ready.wait(5)
        started = time.monotonic()
        self._start(connect_wait_s)
        # Connected means settled too (see the module); wait for that within the same budget.
        self._ever_settled.wait(max(0.0, connect_wait_s - (time.monotonic() - started)))

    @property
    def connected(self) -> bool:
        return self._connected and self._settled

    def publish(self, project: str, seq: int) -> None:
        # This server's own listeners at once (the broadcast is not echoed back to its sender).
        self._fan_out(project, seq)
        super().publish(project, seq)

    def close(self) -> None:
        super().close()
        if self._loop is not None and self._loop_stop is not None and self._loop_thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop_stop.set)
        self._loop_thread.join(timeout=10)

    # -- the event loop thread --------------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.run(self._loop_main())

    async def _loop_main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_stop = asyncio.Event()
        self._loop_ready.set()
        await self._loop_stop.wait()
        await self._teardown()

    def _call(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """Run `coro` on the bus's loop and wait for it (from the listener or publisher thread)."""
        if self._loop is None or self._loop.is_closed():
            coro.close()
            raise ConnectionError("the bus's event loop is not running")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout_s)
        except FutureTimeout:
            future.cancel()
            raise ConnectionError(f"Realtime did not answer within {timeout_s} s") from None

    async def _subscribe(self, generation: int) -> None:
        """Connect a fresh client, join the channel, wait for Realtime to confirm the subscription."""
        await self._teardown()
        options = AsyncClientOptions(
            realtime={"auto_reconnect": False, "max_retries": 1}, auto_refresh_token=False, persist_session=False
        )
        self._client = await acreate_client(self.url, self.key, options)
        self._client.realtime.timeout = self.join_timeout_s
        confirmed, failed = asyncio.Event(), asyncio.Event()

        def on_system(payload: SuccessSystemPayload) -> None:
            if payload.extension == "postgres_changes" and generation == self._generation:
                confirmed.set()

        def on_state(state: RealtimeSubscribeStates, error: Exception | None) -> None:
            if state != RealtimeSubscribeStates.SUBSCRIBED and generation == self._generation:
                self._mark_broken(f"channel {state.value}" + (f": {error}" if error else ""))
                failed.set()

        channel = self._client.channel(
            self.topic,
            {"config": {"broadcast": {"ack": False, "self": False}, "presence": {"key": "", "enabled": False},
                        "private": False}},
        )  # fmt: skip
        channel.on_postgres_changes("INSERT", self._on_row, table=FEED_TABLE, schema="public")  # type: ignore[arg-type]
        channel.on_broadcast(NEWS_EVENT, self._on_broadcast)
        channel.on_system(on_system)
        self._channel = channel
        await channel.subscribe(on_state)
        if self._broken or not channel.is_joined:
            raise ConnectionError(self._broken or "Realtime refused the channel")
        # Realtime says "Subscribed to PostgreSQL" once the subscription exists (or errors the channel).
        waits = {asyncio.ensure_future(confirmed.wait()), asyncio.ensure_future(failed.wait())}
        try:
            await asyncio.wait(waits, timeout=self.confirm_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        if not confirmed.is_set():
            raise ConnectionError(
                self._broken
                or f"Realtime did not confirm the postgres_changes subscription within {self.confirm_timeout_s} s"
            )

    async def _teardown(self) -> None:
        client, self._client, self._channel = self._client, None, None
        if client is None:
            return
        try:
            await asyncio.wait_for(client.realtime.remove_all_channels(), CALL_TIMEOUT_S)
        except Exception:
            log.debug("supabase bus: closing the Realtime client failed", exc_info=True)

    def _on_row(self, payload: PostgresChangesPayload) -> None:
        record = payload["data"].get("record") or {}
        message = _message(record.get("project"), record.get("seq"))
        if message is not None and self._put(*message):
            project, seq = message
            with self._held_lock:
                self._announced[project] = max(seq, self._announced.get(project, 0))

    def _on_broadcast(self, payload: BroadcastPayload) -> None:
        # On the loop: untrusted (see the module), so only held for the listener thread's next release.
        body = payload.get("payload") or {}
        message = _message(body.get("project"), body.get("seq"))
        if message is None or encode(*message) is None:
            return
        project, seq = message
        with self._held_lock:
            self.broadcasts += 1
            if seq <= self._announced.get(project, 0) or seq <= self._held.get(project, 0):
                return  # nothing the feed has not announced already
            if project not in self._held and len(self._held) >= MAX_HELD_PROJECTS:
                return  # a flood of made-up project names: the feed poll still delivers the real ones
            self._held[project] = seq
            if self._held_signalled:
                return
            self._held_signalled = True
        self._events.put_nowait(_HELD)

    def _put(self, project: str, seq: int) -> bool:
        # On the loop: hand over, never block.
        text = encode(project, seq)
        if text is not None:
            self._events.put_nowait(text)
        return text is not None

    def _release_held(self, now: float) -> list[str]:
        """The held broadcast wake-ups, if their interval has passed (listener thread)."""
        if now < self._release_at:
            return []
        with self._held_lock:
            held, self._held, self._held_signalled = self._held, {}, False
        if not held:
            return []
        self._release_at = now + self.broadcast_interval_s
        self.broadcast_wakeups += len(held)
        return [text for project, seq in held.items() if (text := encode(project, seq)) is not None]

    def _mark_broken(self, reason: str) -> None:
        if self._broken is None:
            self._broken = reason
        self._events.put_nowait(None)  # wake the listener thread

    # -- BrokerBus hooks (listener and publisher threads) -----------------------------------

    def _connect_listener(self) -> None:
        self._generation += 1
        self._broken = None
        self._settled, self._settle_at = False, None
        while not self._events.empty():
            self._events.get_nowait()
        with self._held_lock:  # the catch-up read after the join covers them
            self._held.clear()
            self._held_signalled = False
        wait_s = self.join_timeout_s + self.confirm_timeout_s + CALL_TIMEOUT_S
        self._call(self._subscribe(self._generation), wait_s)
        self.joins += 1
        self._settle_at = time.monotonic() + self.settle_s
        log.info("supabase bus: subscribed to Realtime (%s)", self.topic)

    def _receive(self, timeout_s: float) -> list[str]:
        deadline = time.monotonic() + timeout_s
        self._check_alive()
        out: list[str] = []
        while True:
            if self._broken:
                raise ConnectionError(self._broken)
            now = time.monotonic()
            if not self._settled and self._settle_at is not None and now >= self._settle_at:
                # The window in which Realtime may still lose events is over: read the feed once more.
                self._settled = True
                self._ever_settled.set()
                self._fan_out(EVERY_PROJECT, 0)
            out.extend(self._release_held(now))
            if out:
                return out
            wake = deadline if self._settled or self._settle_at is None else min(deadline, self._settle_at)
            if self._held_signalled:
                wake = min(wake, self._release_at)
            if now >= wake:
                return []
            try:
                item = self._events.get(timeout=wake - now)
            except queue.Empty:
                continue
            while item is not None:
                if item != _HELD:
                    out.append(item)
                try:
                    item = self._events.get_nowait()
                except queue.Empty:
                    break

    def _check_alive(self) -> None:
        """Catch a socket or channel that ended without a callback (say, realtime-py's reader task failed)."""
        client, channel = self._client, self._channel
        if client is None or channel is None:
            return
        reader = getattr(client.realtime, "_listen_task", None)
        if not client.realtime.is_connected or not channel.is_joined or (reader is not None and reader.done()):
            self._mark_broken("the Realtime connection ended")

    def _disconnect_listener(self) -> None:
        self._generation += 1
        self._settled, self._settle_at = False, None
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._call(self._teardown(), CALL_TIMEOUT_S * 2)
            except ConnectionError:
                log.debug("supabase bus: teardown timed out")

    def _send(self, payload: str) -> None:
        message = decode(payload)
        channel = self._channel
        if message is None or channel is None or not channel.is_joined:
            raise ConnectionError("not subscribed to Realtime")
        project, seq = message
        self._call(channel.send_broadcast(NEWS_EVENT, {"project": project, "seq": seq}), CALL_TIMEOUT_S)

    def _close_sender(self) -> None:
        pass  # the broadcast goes out on the listener's channel


def _message(project: Any, seq: Any) -> tuple[str, int] | None:
    """A well-formed (project, seq) of a Realtime message, else None."""
    if isinstance(project, str) and project and isinstance(seq, int) and not isinstance(seq, bool):
        return project, seq
    return None
