"""Open the store and the bus a server is configured with (`--db`, `--bus`).

The embedded default is SQLite in the data directory and the in-process bus; PostgreSQL and
Redis are loaded only when named, so their client libraries are optional (the `postgres` and
`redis` extras).
"""

from __future__ import annotations

from pathlib import Path

from dashboard.bus import Bus, LocalBus
from dashboard.leader import Lock
from dashboard.store import Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: str | Path | None) -> bool:
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def open_store(location: str | Path) -> Store:
    """A `postgresql://` URL opens `PostgresStore`; anything else is a SQLite file or data directory."""
    if is_postgres_url(location):
        from dashboard.store.postgres import PostgresStore

        return PostgresStore(str(location))
    from dashboard.store.sqlite import SQLiteStore

    return SQLiteStore(location)


def open_bus(spec: str | None, *, db_url: str | None = None) -> Bus:
    """`local` (or nothing): in-process; `redis://HOST:PORT/DB`: `RedisBus`; `postgres`: NOTIFY on `db_url`.

    `postgres` may also be a `postgresql://` URL of its own.
    """
    spec = (spec or "local").strip()
    if spec == "local":
        return LocalBus()
    if spec.startswith(("redis://", "rediss://", "unix://")):
        from dashboard.buses.redis import RedisBus

        return RedisBus(spec)
    if spec in ("postgres", "postgresql") or is_postgres_url(spec):
        url = spec if is_postgres_url(spec) else db_url
        if not is_postgres_url(url):
            raise ValueError("--bus postgres needs --db postgresql://… (or a postgresql:// URL of its own)")
        from dashboard.buses.postgres import PostgresBus

        assert url is not None
        return PostgresBus(url)
    raise ValueError(f"unknown bus {spec!r}: use local, redis://HOST:PORT/DB or postgres")


def hot_folder_lock(store: Store, key: str) -> Lock | None:
    """The lock that lets one server of several ingest a shared hot folder; `None` for a store of one server."""
    make = getattr(store, "advisory_lock", None)
    return make(key) if make is not None else None


def store_kind(store: Store) -> str:
    """`sqlite`, `postgres`, or the class name of another store (for `/healthz`)."""
    name = type(store).__name__
    return {"SQLiteStore": "sqlite", "PostgresStore": "postgres"}.get(name, name)


def bus_kind(bus: Bus) -> str:
    """`local`, `redis`, `postgres`, or the class name of another bus (for `/healthz`)."""
    if isinstance(bus, LocalBus):
        return "local"
    return str(getattr(bus, "kind", type(bus).__name__))
