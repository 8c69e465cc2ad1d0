"""Server-Sent Events readers: `SseStream` for a test's assertions, `Subscriber` for a thousand at once.

`SseStream` (with `sse`, its context manager) reads one stream in a thread and parses it as the HTML
spec says, into a queue a test takes events from. `Subscriber` reads one over a raw socket in asyncio,
cheap on purpose (the benchmarks open a thousand on one loop): it notes when each event id came.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.waiting import wait_until

# -- one stream, fully parsed, read by a thread (the tests) --------------------------------------


@dataclass(frozen=True)
class SseEvent:
    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseStream:
    """One `text/event-stream` read by a thread, parsed as the HTML spec says, into a queue.

    The server's heartbeat (`?heartbeat=`, at least 0.5 s) wakes the reader, so `close` returns
    within a heartbeat without tearing the socket down under it.
    """

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    content_type: str = ""
    body: bytes = b""
    retry_ms: int | None = None
    comments: list[str] = field(default_factory=list)
    error: BaseException | None = None
    _events: queue.Queue[SseEvent] = field(default_factory=queue.Queue)
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def open(self, timeout_s: float = 10) -> SseStream:
        self._thread = threading.Thread(target=self._read, name="test-sse-reader", daemon=True)
        self._thread.start()
        assert self._ready.wait(timeout_s), f"no response from {self.url} within {timeout_s} s"
        if self.error is not None:
            raise AssertionError(f"opening {self.url} failed: {self.error!r}")
        return self

    def _read(self) -> None:
        try:
            with httpx.Client(timeout=10) as client, client.stream("GET", self.url, headers=self.headers) as r:
                self.status = r.status_code
                self.content_type = r.headers.get("content-type", "")
                if r.status_code != 200:
                    self.body = r.read()
                    return
                self._ready.set()
                self._parse(r.iter_lines())
        except BaseException as exc:
            if not self._stop.is_set():
                self.error = exc
        finally:
            self._ready.set()

    def _parse(self, lines: Iterator[str]) -> None:
        event_id: str | None = None
        kind, data = "", []
        for line in lines:
            if self._stop.is_set():
                return
            if line == "":
                if data:
                    self._events.put(SseEvent(event_id, kind or "message", "\n".join(data)))
                kind, data = "", []
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                event_id = value
            elif name == "event":
                kind = value
            elif name == "data":
                data.append(value)
            elif name == "retry" and value.isdigit():
                self.retry_ms = int(value)

    def wait_connected(self, timeout_s: float = 10) -> None:
        """Wait for the server's `: connected at #N` comment: from then on the subscription exists."""
        wait_until(lambda: any(c.startswith("connected at #") for c in self.comments), timeout_s=timeout_s)

    def next(self, timeout_s: float = 10) -> SseEvent:
        try:
            return self._events.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(
                f"no event on {self.url} within {timeout_s} s (reader error: {self.error!r})"
            ) from None

    def take(self, count: int, timeout_s: float = 10) -> list[SseEvent]:
        return [self.next(timeout_s) for _ in range(count)]

    def pending(self) -> int:
        return self._events.qsize()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            assert not self._thread.is_alive(), f"SSE reader of {self.url} did not stop"


@contextmanager
def sse(url: str, *, heartbeat_s: float = 0.5, headers: dict[str, str] | None = None) -> Iterator[SseStream]:
    """An event stream, subscribed, for the duration of the block (a fast heartbeat keeps `close` quick)."""
    sep = "&" if "?" in url else "?"
    stream = SseStream(f"{url}{sep}heartbeat={heartbeat_s}", dict(headers or {})).open()
    try:
        assert stream.status == 200, (stream.status, stream.body)
        stream.wait_connected()
        yield stream
    finally:
        stream.close()


# -- many streams in asyncio (benchmarks/scaleout.py, benchmarks/sessions.py) ----------------------


class Subscriber:
    """One SSE stream read over a raw socket; `arrived[event_id]` is when each event came, by `clock`.

    Cheap on purpose (a thousand of them share one loop with the benchmark): no parsing beyond the
    `id:` line, unless `keep_data`, which also keeps `(id, event, data)` of every event in `events`.
    `last_event_id` resumes from a feed cursor as a gallery page does (`Last-Event-ID`), and
    `fetch_thumbnails` GETs each `image.created` event's `thumbnail_url` as the page's new tile does:
    `thumbnails[event_id]` is then when its last byte came (by `clock`), its HTTP status and size.
    An `https://` URL is read over TLS without checking the certificate (a proxy's self-signed one);
    `host` is then the site's name, sent as `Host` and in the TLS handshake.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.perf_counter,
        heartbeat_s: float = 5,
        keep_data: bool = False,
        last_event_id: str | None = None,
        fetch_thumbnails: bool = False,
        host: str | None = None,
    ) -> None:
        self.url = url
        self.host = host
        self.clock = clock
        self.heartbeat_s = heartbeat_s
        self.keep_data = keep_data
        self.last_event_id = last_event_id
        self.fetch_thumbnails = fetch_thumbnails
        self.arrived: dict[str, float] = {}
        self.order: list[str] = []
        self.events: list[tuple[str, str, str]] = []
        self.thumbnails: dict[str, tuple[float, int, int]] = {}
        self.thumbnail_fetches = 0  # GETs started; more than `len(thumbnails)` only while some are in flight
        self._fetching: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()
        self.changed = asyncio.Event()
        self.ended = False

    async def run(self) -> None:
        scheme, _, rest = self.url.partition("://")
        host_port, _, path = rest.partition("/")
        host, _, port = host_port.partition(":")
        tls: dict[str, Any] = {}
        if scheme == "https":
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            tls = {"ssl": context, "server_hostname": (self.host or host).partition(":")[0]}
        reader, writer = await asyncio.open_connection(host, int(port), limit=2**20, **tls)
        host_port = self.host or host_port
        resume = f"Last-Event-ID: {self.last_event_id}\r\n" if self.last_event_id is not None else ""
        writer.write(
            f"GET /{path}?heartbeat={self.heartbeat_s:g} HTTP/1.1\r\nHost: {host_port}\r\n"
            f"Accept: text/event-stream\r\n{resume}\r\n".encode()
        )
        parse = self.keep_data or self.fetch_thumbnails
        # A page's images come over connections of their own, kept alive, never over its event stream.
        images = None
        if self.fetch_thumbnails:
            base = f"{scheme}://{rest.partition('/')[0]}"
            images = httpx.AsyncClient(base_url=base, timeout=30, verify=False, headers={"Host": host_port})
        try:
            while (await reader.readline()).strip():
                pass  # headers
            event_id = None
            kind = data = ""
            while line := await reader.readline():
                text = line.decode().strip()
                if text.startswith(": connected at #"):
                    self.connected.set()
                elif text.startswith("id:"):
                    event_id = text[3:].strip()
                elif parse and text.startswith("event:"):
                    kind = text[6:].strip()
                elif parse and text.startswith("data:"):
                    data = text[5:].strip()
                elif not text and event_id is not None:
                    self.arrived.setdefault(event_id, self.clock())
                    self.order.append(event_id)
                    if self.keep_data:
                        self.events.append((event_id, kind, data))
                    if images is not None and kind == "image.created":
                        task = asyncio.create_task(self._fetch_thumbnail(images, event_id, data))
                        self._fetching.add(task)
                        task.add_done_callback(self._fetching.discard)
                    event_id = None
                    kind = data = ""
                    self.changed.set()
        finally:
            self.ended = True
            writer.close()
            for task in list(self._fetching):
                task.cancel()
            if images is not None:
                with contextlib.suppress(Exception):
                    await images.aclose()

    async def _fetch_thumbnail(self, images: httpx.AsyncClient, event_id: str, data: str) -> None:
        """GET the event's `thumbnail_url` (relative to the server, as `url()` in gallery.js resolves it)."""
        self.thumbnail_fetches += 1
        try:
            resp = await images.get(json.loads(data)["thumbnail_url"])
            status, size_bytes = resp.status_code, len(resp.content)
        except (httpx.HTTPError, KeyError, ValueError):
            status, size_bytes = 0, 0  # counted as a failed fetch, not raised into the stream's loop
        self.thumbnails.setdefault(event_id, (self.clock(), status, size_bytes))


async def open_subscribers(
    urls: list[str], timeout_s: float = 120, **options: Any
) -> tuple[list[Subscriber], list[asyncio.Task[None]]]:
    """One `Subscriber` per URL (`options` go to each), opened 50 at a time; returns once all are connected."""
    subs = [Subscriber(u, **options) for u in urls]
    return subs, await start_subscribers(subs, timeout_s)


async def start_subscribers(subs: Sequence[Subscriber], timeout_s: float = 120) -> list[asyncio.Task[None]]:
    """Run each of `subs` in a task, 50 at a time; returns the tasks once every one is connected."""
    tasks = []
    for n, sub in enumerate(subs):
        tasks.append(asyncio.create_task(sub.run()))
        if n % 50 == 49:
            await asyncio.sleep(0.05)  # do not open a thousand connections in one burst
    await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in subs)), timeout=timeout_s)
    return tasks
