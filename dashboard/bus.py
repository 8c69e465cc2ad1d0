"""The `Bus` protocol: a wake-up that says "project P has news up to seq S".

Messages carry only the project and the sequence; the change feed holds the payload and is
the truth. A subscriber may miss messages (a Redis or NOTIFY listener that was away does), so
readers always catch up from their own cursor in the feed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("fotoflo.bus")

Listener = Callable[[str, int], None]

#: The project of a message that says "you may have missed messages of every project" (sent by a
#: broker's bus after each (re)connection, with seq 0): a listener reads the feed of all it follows.
EVERY_PROJECT = ""


class Bus(Protocol):
    def publish(self, project: str, seq: int) -> None:
        """Announce that `project`'s feed has reached `seq`. Thread-safe, never blocks for long."""

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(project, seq)` for every message, from any thread; returns an unsubscribe.

        `project` may be `EVERY_PROJECT` (after a reconnection, when messages may have been lost).
        """

    @property
    def connected(self) -> bool:
        """Whether messages are flowing (always true in-process)."""

    def close(self) -> None: ...


class Listeners:
    """Thread-safe listeners and the fan-out to them, shared by every bus: one failure stops nothing."""

    def __init__(self) -> None:
        self._items: list[Listener] = []
        self._lock = threading.Lock()

    def add(self, listener: Listener) -> Callable[[], None]:
        """Add `listener`; returns the function that removes it (harmless to call twice)."""
        with self._lock:
            self._items.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._items:
                    self._items.remove(listener)

        return remove

    def call(self, project: str, seq: int) -> None:
        with self._lock:
            listeners = list(self._items)
        for listener in listeners:
            try:
                listener(project, seq)
            except Exception:
                log.exception("bus listener %r failed", listener)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class LocalBus:
    """The in-process bus of the embedded default: synchronous fan-out, one failure stops nothing."""

    def __init__(self) -> None:
        self._listeners = Listeners()

    def publish(self, project: str, seq: int) -> None:
        self._listeners.call(project, seq)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._listeners.add(listener)

    @property
    def connected(self) -> bool:
        return True

    def close(self) -> None:
        self._listeners.clear()
