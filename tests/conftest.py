"""The suite's fixtures: leak checks, an in-process Fotoflo, real `fotoflo serve` processes, PostgreSQL and Redis.

What they are built of (image factories, the server process, the services, SSE readers) is in
tests/support/, shared with the benchmarks; the Supabase fakes' fixtures are in tests/supabase/fakes/.
"""

from __future__ import annotations

import gc
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.supabase.fakes.fixtures import fake_http, fake_realtime, supabase_db
from tests.support.api import checked_client
from tests.support.embedded import Embedded, open_embedded
from tests.support.images import ImageFactory, jpeg_bytes
from tests.support.servers import Server, ServerFactory, free_port, fresh_project, running_server, spawn_server
from tests.support.services import PostgresServer, RedisServer, S3Server, StoreBackend, postgres_bin_dir

# The Supabase fakes on the session's PostgreSQL (tests/supabase/fakes/), for every test module.
__all__ = ["fake_http", "fake_realtime", "supabase_db"]


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


@pytest.fixture(autouse=True, scope="module")
def _collect_garbage() -> Iterator[None]:
    """Unclosed sockets and files held in reference cycles are reported when the garbage collector frees
    them (a `ResourceWarning`, an error here): collecting at the end of each module reports them in the
    module that left them, not in whichever later test the collector happened to run."""
    yield
    gc.collect()


def _benign(thread: threading.Thread) -> bool:
    # asyncio.to_thread's default executor threads live as long as their loop's executor.
    return thread.name.startswith(("asyncio_", "ThreadPoolExecutor-"))


# -- images and the in-process system -------------------------------------------------------


@pytest.fixture
def make_jpeg() -> ImageFactory:
    return jpeg_bytes


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    """A real SQLite store, file blobs and the in-process bus in a temp data directory."""
    system = open_embedded(tmp_path / "data")
    yield system
    system.ingestor.previews.close()
    system.store.close()


# -- a real server --------------------------------------------------------------------------


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


# -- one real server per test module (tests/support/servers.py), a project per test -------------


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Server]:
    """One real `fotoflo serve` for a whole test module, started with the module's `SERVER_ARGS` if it has them."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    extra_args = tuple(getattr(request.module, "SERVER_ARGS", ()))
    with running_server(tmp_path_factory.mktemp(name), extra_args=extra_args) as server:
        yield server


@pytest.fixture
def shared_project(shared_server: Server, request: pytest.FixtureRequest) -> Iterator[Server]:
    """The module's shared server seen through a project of this test's own; it must log no traceback."""
    logged = len(shared_server.log())
    yield fresh_project(shared_server, request.node.name)
    assert "Traceback" not in shared_server.log()[logged:], shared_server.log()[logged:]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An HTTP client whose every response is checked for a leaked traceback."""
    with checked_client() as c:
        yield c


# -- real PostgreSQL and Redis (tests/support/services.py) ------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session (started on first use)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed: install Debian's postgresql (scripts/test does)")
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database with Fotoflo's schema, dropped after the test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists():
        pytest.fail("redis-server is not installed: install Debian's redis-server (scripts/test does)")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis_server(redis_session: RedisServer) -> Iterator[RedisServer]:
    """The session's redis-server, running and empty (a test that kills it gets it started again)."""
    if not redis_session.running:
        redis_session.start()
    redis_session.flush()
    yield redis_session
    if not redis_session.running:
        redis_session.start()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3 stand-in (moto's server, tests/support/services.py) for the session, started on first use."""
    server = S3Server().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the S3 stand-in, with the AWS variables set to reach it; returns its name."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return s3_server.create_bucket()


@pytest.fixture(params=["sqlite", "postgres", "supabase"])
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBackend]:
    """The store contract's backends: the embedded SQLite file, PostgreSQL (a fresh database) and
    Supabase (`SupabaseStore` through a fake of Supabase's HTTP API on a fresh PostgreSQL database)."""
    if request.param == "sqlite":
        backend = StoreBackend("sqlite", str(tmp_path / "data"))
        yield backend
        backend.close_all()
        return
    if request.param == "supabase":
        from tests.supabase.fakes.stores import supabase_store_backend

        with supabase_store_backend(request.getfixturevalue("postgres_server"), tmp_path) as backend:
            yield backend
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    backend = StoreBackend("postgres", url)
    try:
        yield backend
    finally:
        backend.close_all()
        server.drop_database(url)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fast tests first, then the browser tests: a broken unit fails the run in seconds."""
    items.sort(key=lambda item: "/e2e/" in str(item.path))
