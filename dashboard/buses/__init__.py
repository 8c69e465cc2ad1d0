"""Buses of a real broker (`RedisBus`, `PostgresBus`) behind the `Bus` protocol.

Both share `BrokerBus`: a listener thread that connects, receives and, when the connection is
lost, reconnects by itself with backoff; a publisher thread, so `publish` never waits for the
network; and the fan-out to listeners. Messages carry only the project and the sequence.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable

from dashboard.bus import EVERY_PROJECT, Listener, Listeners

log = logging.getLogger("fotoflo.bus")

#: The name of the channel (Redis) or NOTIFY channel (PostgreSQL) Fotoflo's servers share.
CHANNEL = "fotoflo"
RECEIVE_TIMEOUT_S = 0.25  # how often the listener thread looks up from the socket (and at `close`)
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 2.0
MAX_MESSAGE_BYTES = 7900  # NOTIFY payloads are capped at 8000 bytes


def encode(project: str, seq: int) -> str | None:
    """The wire form of a message, or `None` when it would be too long (the feed poll still delivers)."""
    text = json.dumps({"project": project, "seq": seq}, separators=(",", ":"), ensure_ascii=False)
    return text if len(text.encode()) <= MAX_MESSAGE_BYTES else None


def decode(payload: str | bytes) -> tuple[str, int] | None:
    """The (project, seq) of a message, or `None` for anything else on the channel."""
    try:
        data = json.loads(payload)
        project, seq = data["project"], data["seq"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(project, str) or not project or isinstance(seq, bool) or not isinstance(seq, int):
        return None
    return project, seq


class BrokerBus:
    """The shared half of a broker-backed bus; subclasses say how to connect, receive and send.

    `connected` is true while the listener's connection is subscribed and healthy. After every
    (re)connection the listeners get one `(EVERY_PROJECT, 0)`: messages may have been missed, so
    they read the feed of every project they follow.
    """

    kind = "broker"

    def __init__(self) -> None:
        self._listeners = Listeners()
        self._pending: dict[str, int] = {}
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._connected = False
        self._ever_connected = threading.Event()
        self._threads = [
            threading.Thread(target=self._listen_forever, name=f"fotoflo-{self.kind}-bus-listen", daemon=True),
            threading.Thread(target=self._publish_forever, name=f"fotoflo-{self.kind}-bus-publish", daemon=True),
        ]

    def _start(self, wait_s: float) -> None:
        """Start the threads; wait up to `wait_s` for the first connection (a broker that is down is not fatal)."""
        for thread in self._threads:
            thread.start()
        if not self._ever_connected.wait(wait_s):
            log.warning("%s bus: not connected yet; retrying in the background", self.kind)

    # -- subclass hooks ---------------------------------------------------------------------

    def _connect_listener(self) -> None:
        """Connect and subscribe; raise when the broker cannot be reached."""
        raise NotImplementedError

    def _receive(self, timeout_s: float) -> Iterable[str | bytes]:
        """The payloads that arrive within `timeout_s`; raise when the connection is lost."""
        raise NotImplementedError

    def _disconnect_listener(self) -> None:
        raise NotImplementedError

    def _send(self, payload: str) -> None:
        """Publish one payload; raise on failure (the caller drops it: the feed is the truth)."""
        raise NotImplementedError

    def _close_sender(self) -> None:
        raise NotImplementedError

    # -- the Bus protocol -------------------------------------------------------------------

    def publish(self, project: str, seq: int) -> None:
        # Coalesced per project: only the newest seq matters to a reader that catches up from the feed.
        with self._wake:
            if seq > self._pending.get(project, -1):
                self._pending[project] = seq
            self._wake.notify()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._listeners.add(listener)

    @property
    def connected(self) -> bool:
        return self._connected

    def close(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=10)
        self._listeners.clear()

    # -- threads ----------------------------------------------------------------------------

    def _fan_out(self, project: str, seq: int) -> None:
        self._listeners.call(project, seq)

    def _listen_forever(self) -> None:
        delay = BACKOFF_FIRST_S
        failures = 0
        while not self._stop.is_set():
            try:
                self._connect_listener()
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("%s bus: cannot connect (%s); retrying with backoff", self.kind, exc)
                self._disconnect_quietly()
                self._stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            if failures:
                log.info("%s bus: connected again after %d failed attempt(s)", self.kind, failures)
            failures, delay = 0, BACKOFF_FIRST_S
            self._connected = True
            self._ever_connected.set()
            self._fan_out(EVERY_PROJECT, 0)
            try:
                while not self._stop.is_set():
                    for payload in self._receive(RECEIVE_TIMEOUT_S):
                        message = decode(payload)
                        if message is not None:
                            self._fan_out(*message)
            except Exception as exc:
                if not self._stop.is_set():
                    log.warning("%s bus: connection lost (%s); reconnecting", self.kind, exc)
            finally:
                self._connected = False
                self._disconnect_quietly()

    def _disconnect_quietly(self) -> None:
        try:
            self._disconnect_listener()
        except Exception:
            log.debug("%s bus: closing the listener connection failed", self.kind, exc_info=True)

    def _publish_forever(self) -> None:
        failing = False
        while True:
            with self._wake:
                while not self._pending and not self._stop.is_set():
                    self._wake.wait()
                if not self._pending:  # closing: what was published before `close` is still sent
                    break
                pending, self._pending = self._pending, {}
            for project, seq in pending.items():
                payload = encode(project, seq)
                if payload is None:
                    log.warning("%s bus: project name too long for a message; the feed poll delivers", self.kind)
                    continue
                try:
                    try:
                        self._send(payload)
                    except Exception:
                        # Once more on a fresh connection: the one we had may be stale (a broker restart).
                        self._send(payload)
                    if failing:
                        log.info("%s bus: publishing again", self.kind)
                    failing = False
                except Exception as exc:
                    if not failing:
                        log.warning("%s bus: publish failed (%s); the feed poll delivers meanwhile", self.kind, exc)
                    failing = True
        try:
            self._close_sender()
        except Exception:
            log.debug("%s bus: closing the publisher connection failed", self.kind, exc_info=True)
