"""Helpers for tests against a real `fotoflo serve`: a client that refuses tracebacks, uploads, an SSE reader."""

from __future__ import annotations

import dataclasses
import itertools
import json
import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dashboard.store.sqlite import SQLiteStore
from tests.conftest import Server, free_port, jpeg_bytes, spawn_server, wait_until

# -- one server for many tests --------------------------------------------------------------


@contextmanager
def running_server(tmp: Path, *, project: str = "default", extra_args: tuple[str, ...] = ()) -> Iterator[Server]:
    """A real `fotoflo serve` started like conftest's `server_factory`, for a fixture wider than one test.

    Starting the server (Panel's import alone) costs seconds of CPU; a module shares one and
    isolates its tests by giving each its own project (`fresh_project`).
    """
    port = free_port()
    server = spawn_server(
        data=tmp / "data",
        watch=tmp / "hot",
        port=port,
        project=project,
        log_path=tmp / f"server-{port}.log",
        extra_args=extra_args,
    )
    try:
        server.wait_healthy(timeout_s=60)
        yield server
    finally:
        server.stop()


_project_numbers = itertools.count(1)


def fresh_project(server: Server, test_name: str) -> Server:
    """`server` seen through a new, empty project of its store (created beside the running server)."""
    name = f"{re.sub(r'[^a-z0-9]+', '-', test_name.lower()).strip('-')[:60]}-{next(_project_numbers)}"
    store = SQLiteStore(server.data / "fotoflo.sqlite")  # SQLite's file locks make a second writer safe
    try:
        store.ensure_project(name)
    finally:
        store.close()
    return dataclasses.replace(server, project=name)


# -- requests -------------------------------------------------------------------------------


def _no_traceback(response: httpx.Response) -> None:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return  # a live stream: reading it here would block; SseStream checks its error bodies itself
    response.read()
    assert b"Traceback" not in response.content, f"{response.request.url} answered a traceback:\n{response.text}"


def checked_client(**kwargs: Any) -> httpx.Client:
    """An httpx client that fails the test as soon as any response body contains a traceback."""
    return httpx.Client(timeout=15, event_hooks={"response": [_no_traceback]}, **kwargs)


def assert_json_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is `status` with the API's JSON error shape (and `code`, when given)."""
    assert response.status_code == status, f"{response.request.url}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    error = response.json()["error"]
    assert set(error) == {"code", "message"} and error["message"], error
    if code is not None:
        assert error["code"] == code, error
    return error


def upload(client: httpx.Client, server: Server, *parts: tuple[str, bytes], field_name: str = "file") -> httpx.Response:
    """POST the (filename, bytes) parts to the served project's upload endpoint."""
    files = [(field_name, (name, data, "application/octet-stream")) for name, data in parts]
    return client.post(server.api("/upload"), files=files)


def small_jpeg(seed: int) -> bytes:
    """A tiny JPEG whose bytes differ for every seed (a one-pixel seed can vanish in quantization)."""
    return jpeg_bytes((64, 48), seed=seed, model=f"test-{seed}")


def upload_new(client: httpx.Client, server: Server, count: int, *, first_seed: int = 0) -> list[dict[str, Any]]:
    """Upload `count` distinct small JPEGs one request each; returns the created images in feed order."""
    images = []
    for i in range(first_seed, first_seed + count):
        response = upload(client, server, (f"img-{i:03d}.jpg", small_jpeg(i)))
        assert response.status_code == 201, response.text
        images.append(response.json()["images"][0])
    return images


# -- Server-Sent Events ---------------------------------------------------------------------


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
