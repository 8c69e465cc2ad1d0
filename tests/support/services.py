"""Real services for tests and benchmarks: throwaway PostgreSQL clusters, redis-server and S3 on loopback.

Each starts in well under a second (PostgreSQL with `fsync=off`), once per test session (the fixtures
are in tests/conftest.py); a test gets a fresh database (copied from a template that already has
Fotoflo's schema), a flushed Redis or a bucket of its own. The binaries come from Debian's `postgresql`
and `redis-server` packages, which `scripts/test` installs. S3 is a stand-in: moto's standalone server
(the `moto[server]` test dependency), an S3-compatible API kept in memory, since MinIO cannot be
installed from the package registries this project uses.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashboard.store import Store
from tests.support.servers import free_port

PG_TEMPLATE = "fotoflo_template"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {timeout_s} s")
        time.sleep(0.02)


# -- PostgreSQL -------------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian keeps them under /usr/lib/postgresql)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """A PostgreSQL cluster of its own in a temp directory, listening on 127.0.0.1:`port`.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user
    (`runuser`); the directory comes from `mkdtemp` because pytest's tmp_path is not reachable by it.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="fotoflo-pg-"))
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.dir, "postgres", "postgres")
        self._numbers = itertools.count(1)

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self._as, *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> PostgresServer:
        if not self.data_dir.exists():
            self._run(str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
                      "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB"
        )
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-o", options,
                  "-l", str(self.dir / "server.log"), "-w", "-t", "30", "start")  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (`immediate` is a crash as far as clients can tell)."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def ensure_template(self) -> None:
        """A database with Fotoflo's schema applied, that `create_database` copies."""
        import psycopg

        from dashboard.store.postgres import PostgresStore

        with psycopg.connect(self.url(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_TEMPLATE,)).fetchone():
                return
            conn.execute(f"CREATE DATABASE {PG_TEMPLATE}")  # type: ignore[arg-type]
        PostgresStore(self.url(PG_TEMPLATE)).close()

    def create_database(self, *, empty: bool = False) -> str:
        """A new database (with Fotoflo's schema, unless `empty`); returns its URL."""
        name = f"test_{os.getpid()}_{next(self._numbers)}"
        if not empty:
            self.ensure_template()
        self.execute(f"CREATE DATABASE {name} TEMPLATE {'template0' if empty else PG_TEMPLATE}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


# -- Redis ------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A `redis-server` without persistence on 127.0.0.1:`port`; `kill` and `start` again to test outages."""

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--daemonize", "no", "--loglevel", "warning"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: _port_open(self.port) or self.proc is None or self.proc.poll() is not None, 10, "redis-server")
        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
        return self

    def kill(self) -> None:
        """Kill it as a crash would (SIGKILL): every client connection drops."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            client.flushall()
        finally:
            client.close()


# -- stores on them ---------------------------------------------------------------------------


@dataclass
class StoreBackend:
    """Opens stores on one database of one kind; every store it opened is closed after the test."""

    kind: str
    location: str  # a data directory (SQLite) or a postgresql:// URL
    opened: list[Store] = field(default_factory=list)
    opener: Callable[[], Store] | None = None  # how to open one, when not `open_store(location)`

    def open(self) -> Store:
        from dashboard.backends import open_store

        store = self.opener() if self.opener is not None else open_store(self.location)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


# -- S3 (a stand-in: moto's server) -------------------------------------------------------------


@dataclass
class S3Server:
    """moto's standalone server on 127.0.0.1:`port`, standing in for S3 (AWS, R2, B2, MinIO).

    It speaks the S3 API over HTTP and keeps objects in memory; `env` is what a process needs to reach
    it through the standard AWS variables (any key pair is accepted).
    """

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "fotoflo-test-key",
            "AWS_SECRET_ACCESS_KEY": "fotoflo-test-secret-not-for-logs",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self) -> S3Server:
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: _port_open(self.port) or self.proc is None or self.proc.poll() is not None, 30, "moto server")
        if self.proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {self.proc.returncode}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self) -> Any:
        """A boto3 S3 client of this server (close it)."""
        import boto3

        env = self.env
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object of `bucket`, by key."""
        client = self.client()
        try:
            out = {}
            for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"]
                out[item["Key"]] = body.read()
                body.close()
            return out
        finally:
            client.close()

    def create_bucket(self) -> str:
        """A new, empty bucket; returns its name."""
        name = f"fotoflo-test-{os.getpid()}-{next(self._numbers)}"
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()
        return name
