"""Shared fixtures: image factories, an in-process Fotoflo, and a real `fotoflo serve` on loopback."""

from __future__ import annotations

import asyncio
import io
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image, ImageDraw

from dashboard.blobs import FileBlobs
from dashboard.bus import LocalBus
from dashboard.ingest import Ingestor
from dashboard.store.sqlite import SQLiteStore
from tests.services import pg_url, postgres_server, redis_server, redis_session, store_backend
from tests.supabase_fakes.fixtures import fake_http, fake_realtime, supabase_db

# Real PostgreSQL and Redis for every test module (fixtures defined in tests/services.py), and the
# Supabase fakes on that PostgreSQL (tests/supabase_fakes/).
__all__ = [
    "fake_http",
    "fake_realtime",
    "pg_url",
    "postgres_server",
    "redis_server",
    "redis_session",
    "store_backend",
    "supabase_db",
]

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


# -- leaks ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    """Every thread a test starts (watchers, observers, pools) is stopped by the end of the test."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        leaked = [t for t in set(threading.enumerate()) - before if t.is_alive() and not _benign(t)]
        if not leaked:
            return
        time.sleep(0.05)
    pytest.fail(f"threads leaked: {[t.name for t in leaked]}")


def _benign(thread: threading.Thread) -> bool:
    # asyncio.to_thread's default executor threads live as long as their loop's executor.
    return thread.name.startswith(("asyncio_", "ThreadPoolExecutor-"))


# -- images ---------------------------------------------------------------------------------

ImageFactory = Callable[..., bytes]


def jpeg_bytes(
    size: tuple[int, int] = (640, 480),
    color: tuple[int, int, int] = (200, 30, 30),
    *,
    orientation: int | None = None,
    taken: str | None = None,
    make: str | None = None,
    model: str | None = None,
    quality: int = 90,
    seed: int | None = None,
) -> bytes:
    """A JPEG with optional EXIF; `seed` makes otherwise-identical images differ in bytes."""
    im = Image.new("RGB", size, color)
    if seed is not None:
        # A block big enough to survive JPEG compression, in a colour and place only this seed has.
        rng = random.Random(seed)
        x, y = rng.randrange(max(1, size[0] - 16)), rng.randrange(max(1, size[1] - 16))
        mark = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        ImageDraw.Draw(im).rectangle((x, y, x + 15, y + 15), fill=mark)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (320, 200), color: tuple[int, int, int] = (10, 120, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def make_jpeg() -> ImageFactory:
    return jpeg_bytes


# -- in-process system ----------------------------------------------------------------------


@dataclass
class Embedded:
    data: Path
    store: SQLiteStore
    blobs: FileBlobs
    bus: LocalBus
    ingestor: Ingestor


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    """A real SQLite store, file blobs and the in-process bus in a temp data directory."""
    data = tmp_path / "data"
    store = SQLiteStore(data / "fotoflo.sqlite")
    store.ensure_project("default")
    blobs = FileBlobs(data / "blobs")
    bus = LocalBus()
    yield Embedded(data, store, blobs, bus, Ingestor(store, blobs, bus))
    store.close()


# -- a real server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` in a thread of its own: the browser tests' Playwright holds this thread's loop."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="test-loop")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def wait_until(predicate: Callable[[], object], timeout_s: float = 10.0, interval_s: float = 0.05) -> object:
    """Poll until `predicate()` is truthy; fail with the timeout otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


@dataclass
class Server:
    url: str
    port: int
    data: Path
    watch: Path
    project: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def api(self, path: str) -> str:
        return f"{self.url}/api/projects/{self.project}{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def wait_healthy(self, timeout_s: float) -> None:
        """Wait for `/healthz` to answer 200; fail with the log at once if the process exits."""

        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout_s=timeout_s)


def spawn_server(
    *, data: Path, watch: Path, port: int, project: str, log_path: Path, extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Server:  # fmt: skip
    """Start `fotoflo serve` on loopback `port`, its output appended to `log_path`; the caller waits and stops it."""
    cmd = [sys.executable, "-m", "dashboard.cli", "serve", "--data", str(data), "--watch", str(watch),
           "--port", str(port), "--project", project, *extra_args]  # fmt: skip
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=full_env, cwd=ROOT)
    return Server(f"http://127.0.0.1:{port}", port, data, watch, project, proc, log_path)


ServerFactory = Callable[..., Server]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start real `fotoflo serve` processes on free loopback ports; all are stopped afterwards."""
    started: list[Server] = []

    def start(
        *, data: Path | None = None, watch: Path | None = None, port: int | None = None, project: str = "default",
        extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None,
    ) -> Server:  # fmt: skip
        port = port or free_port()
        server = spawn_server(
            data=data or tmp_path / "data", watch=watch or tmp_path / "hot", port=port, project=project,
            log_path=tmp_path / f"server-{port}-{len(started)}.log", extra_args=extra_args, env=env,
        )  # fmt: skip
        started.append(server)
        server.wait_healthy(timeout_s=30)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(server_factory: ServerFactory) -> Server:
    return server_factory()


# -- one real server per test module (tests/http_helpers.py), a project per test ------------------


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Server]:
    """One real `fotoflo serve` for a whole test module, started with the module's `SERVER_ARGS` if it has them."""
    from tests.http_helpers import running_server

    name = request.module.__name__.rsplit(".", 1)[-1]
    extra_args = tuple(getattr(request.module, "SERVER_ARGS", ()))
    with running_server(tmp_path_factory.mktemp(name), extra_args=extra_args) as server:
        yield server


@pytest.fixture
def shared_project(shared_server: Server, request: pytest.FixtureRequest) -> Iterator[Server]:
    """The module's shared server seen through a project of this test's own; it must log no traceback."""
    from tests.http_helpers import fresh_project

    logged = len(shared_server.log())
    yield fresh_project(shared_server, request.node.name)
    assert "Traceback" not in shared_server.log()[logged:], shared_server.log()[logged:]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An HTTP client whose every response is checked for a leaked traceback."""
    from tests.http_helpers import checked_client

    with checked_client() as c:
        yield c


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fast tests first, then the browser tests: a broken unit fails the run in seconds."""
    items.sort(key=lambda item: "/e2e/" in str(item.path))
