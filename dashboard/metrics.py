"""What one server process has done, for Prometheus: `/metrics` in its text format.

Each `App` has its own registry (a notebook or a test may run several apps in one process), so the
numbers are this server's: with several servers behind a balancer, Prometheus scrapes each one and sums.
Counters only grow from the process's start; gauges are read when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from dashboard.store import sqlite

if TYPE_CHECKING:
    from dashboard.events import Change
    from dashboard.imaging.errors import IngestError

#: Seconds from a file read to its image published (a 12-MP JPEG takes about 0.1 s on two cores).
INGEST_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Seconds from a change's commit to its delivery to this server's streams and sessions.
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """This server's counters, gauges and histograms; `text()` is the body of `/metrics`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.images_ingested = Counter(
            "fotoflo_images_ingested", "Images this server added (uploads, hot folder, API)", registry=r
        )
        self.refusals = Counter(
            "fotoflo_ingest_refusals", "Files refused, by reason (as the API's error codes)", ["reason"], registry=r
        )
        self.ingest_seconds = Histogram(
            "fotoflo_ingest_seconds", "From a file read to its image published", buckets=INGEST_BUCKETS, registry=r
        )
        self.events_delivered = Counter(
            "fotoflo_events_delivered", "Feed entries handed to this server's event streams and sessions", registry=r
        )
        self.feed_lag = Histogram(
            "fotoflo_feed_lag_seconds", "From a change's commit to its delivery here", buckets=LAG_BUCKETS, registry=r
        )
        self.sse_streams = Gauge("fotoflo_sse_streams_open", "Event streams (SSE) open now", registry=r)
        self.subscribers = Gauge(
            "fotoflo_feed_subscribers", "Feed subscriptions open now (streams and sessions)", registry=r
        )
        self.bus_up = Gauge("fotoflo_bus_connected", "1 while the bus is connected, 0 while degraded", registry=r)
        if sqlite.memory_used() is not None:  # (not with SQLite linked into Python statically)
            Gauge(
                "fotoflo_sqlite_memory_bytes",
                f"SQLite's memory in this process: page caches and statements (cap {sqlite.MEMORY_CAP_BYTES})",
                registry=r,
            ).set_function(lambda: float(sqlite.memory_used() or 0))

    def watch(self, *, bus_connected: Callable[[], bool], subscribers: Callable[[], int]) -> None:
        """Read these when scraped: the bus's state and the number of feed subscriptions."""
        self.bus_up.set_function(lambda: float(bus_connected()))
        self.subscribers.set_function(lambda: float(subscribers()))

    # -- what the server reports --------------------------------------------------------------

    def ingested(self, started: float) -> None:
        """An image was published; `started`: `time.perf_counter()` when its file was read."""
        self.images_ingested.inc()
        self.ingest_seconds.observe(time.perf_counter() - started)

    def refused(self, error: IngestError) -> None:
        self.refusals.labels(reason=error.code).inc()

    def delivered(self, batch: list[Change]) -> None:
        """A batch of the feed reached one subscriber; the lag is the newest entry's age."""
        self.events_delivered.inc(len(batch))
        try:
            committed = _epoch(batch[-1].created_at)
        except ValueError:
            return
        self.feed_lag.observe(max(0.0, time.time() - committed))

    def text(self) -> bytes:
        return generate_latest(self.registry)


def _epoch(created_at: str) -> float:
    """A change's `created_at` (ISO 8601, UTC, as `timeutil.utc_now_iso` writes it) in seconds since the epoch."""
    return datetime.fromisoformat(created_at).timestamp()
