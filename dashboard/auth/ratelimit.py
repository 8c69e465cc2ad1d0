"""Per-client rate limits: a token bucket per key, in memory, bounded in the number of keys."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_KEYS = 10_000  # clients remembered; the least recently seen are forgotten first


class RateLimiter:
    """`capacity` events at once, refilled at `capacity / period_s` per second, per key.

    `hit(key)` takes one and answers 0 when allowed, else the seconds until one is free (for a
    `Retry-After`). `capacity` 0 means unlimited.
    """

    def __init__(self, capacity: int, period_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.period_s = period_s
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, at)
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.capacity), now))
        return min(float(self.capacity), tokens + (now - at) * self.capacity / self.period_s)

    def hit(self, key: str, cost: float = 1.0) -> float:
        """Take `cost` from `key`'s bucket: 0 if allowed, else seconds to wait (nothing is taken)."""
        if self.capacity <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            tokens = self._level(key, now)
            if tokens < cost:
                self._store(key, tokens, now)
                return max(0.001, (cost - tokens) * self.period_s / self.capacity)
            self._store(key, tokens - cost, now)
            return 0.0

    def blocked(self, key: str) -> float:
        """Seconds until `key` may try again (0: now), without taking anything."""
        if self.capacity <= 0:
            return 0.0
        with self._lock:
            tokens = self._level(key, self._clock())
        return 0.0 if tokens >= 1 else max(0.001, (1 - tokens) * self.period_s / self.capacity)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)


def retry_after(seconds: float) -> str:
    """A `Retry-After` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
