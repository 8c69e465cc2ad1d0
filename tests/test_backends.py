"""`dashboard.backends`: `--db` and `--bus` name the store and the bus; the embedded default stays the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.backends import bus_kind, hot_folder_lock, open_bus, open_store, store_kind
from dashboard.bus import LocalBus
from dashboard.buses.postgres import PostgresBus
from dashboard.buses.redis import RedisBus
from dashboard.store.postgres import PostgresStore
from dashboard.store.sqlite import SQLiteStore
from tests.support.services import RedisServer


def test_a_path_opens_sqlite_and_a_postgresql_url_opens_postgres(tmp_path: Path, pg_url: str) -> None:
    sqlite = open_store(tmp_path / "data")
    postgres = open_store(pg_url)
    try:
        assert isinstance(sqlite, SQLiteStore) and sqlite.path == tmp_path / "data" / "fotoflo.sqlite"
        assert isinstance(postgres, PostgresStore)
        assert (store_kind(sqlite), store_kind(postgres)) == ("sqlite", "postgres")
        assert hot_folder_lock(sqlite, "k") is None  # one server per SQLite file: it always ingests
        assert hot_folder_lock(postgres, "k") is not None
    finally:
        sqlite.close()
        postgres.close()


def test_bus_specs(pg_url: str, redis_server: RedisServer) -> None:
    buses = [open_bus(None), open_bus("local"), open_bus(redis_server.url), open_bus("postgres", db_url=pg_url)]
    try:
        assert [type(b) for b in buses] == [LocalBus, LocalBus, RedisBus, PostgresBus]
        assert [bus_kind(b) for b in buses] == ["local", "local", "redis", "postgres"]
        assert all(b.connected for b in buses)
    finally:
        for bus in buses:
            bus.close()


@pytest.mark.parametrize(
    ("spec", "db", "message"),
    [
        ("postgres", None, "needs --db"),
        ("postgres", "/var/lib/fotoflo", "needs --db"),
        ("kafka://broker", None, "unknown bus"),
    ],
)
def test_bad_bus_specs_are_refused(spec: str, db: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_bus(spec, db_url=db)
