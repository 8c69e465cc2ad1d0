"""`PostgresStore`: the `Store` on PostgreSQL, for several servers sharing one database.

psycopg 3 with a connection pool; the schema is migrated on start (`pg_migrations`). The rules and
their SQL are `SqlStore`'s. Every write is one transaction that starts by locking its project's row
(`SELECT … FOR UPDATE`): the writes of a project are serialized as `SQLiteStore`'s single writer
serializes them, so every rule (same bytes, free names, edit resolution) sees the state the
previous write committed. The project row also holds the feed's counter (`UPDATE projects SET
last_seq = last_seq + 1 … RETURNING`), so sequence numbers are gap-free and seq N+1 can only commit
after seq N: a reader that pages the feed by `seq > cursor` never skips an entry that commits later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from dashboard.store.pg_migrations import migrate
from dashboard.store.sql import SqlStore

log = logging.getLogger("fotoflo.store")

Conn = psycopg.Connection[dict[str, Any]]

CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 5.0  # a request waits this long for a connection (the database down) before it fails


def open_pool(url: str, name: str, size: int, **kwargs: Any) -> ConnectionPool[Any]:
    """A started pool of connections to `url` (checked before use), named `name` (and so in `pg_stat_activity`).

    `kwargs` go to each connection (e.g. `row_factory`, `application_name`). A database that does not answer fails here,
    within twice the connect timeout.
    """
    pool: ConnectionPool[Any] = ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": name, **kwargs},
        check=ConnectionPool.check_connection,
        name=name,
        timeout=POOL_TIMEOUT_S,
        open=False,
    )
    pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
    return pool


class PostgresStore(SqlStore):
    """`Store` on PostgreSQL at `url` (`postgresql://USER@HOST:PORT/DB`); see `dashboard.store.Store`.

    `pool_size` bounds the connections this process opens; broken connections (a database
    restart) are replaced as they are checked out, so the store recovers by itself.
    """

    _FOR_UPDATE = " FOR UPDATE"
    _ID_LIST = "(SELECT n - 1 AS position, image_id FROM unnest(?::text[]) WITH ORDINALITY AS t(image_id, n)) AS ids"

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            applied = migrate(conn)
        if applied:
            log.info("migrated the PostgreSQL schema to version %d", applied[-1])
        self._pool: ConnectionPool[Conn] = open_pool(
            url, "fotoflo-store", pool_size, row_factory=dict_row, application_name="fotoflo"
        )
        self._closed = False

    @contextmanager
    def _transaction(self) -> Iterator[_Qmark]:
        with self._pool.connection() as conn, conn.transaction():
            yield _Qmark(conn)

    _read = _transaction  # read committed: each statement sees the newest commit

    @contextmanager
    def _snapshot(self) -> Iterator[_Qmark]:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield _Qmark(conn)

    @staticmethod
    def _id_list(image_ids: Sequence[str]) -> list[str]:
        return list(image_ids)

    @staticmethod
    def _text(value: str | None) -> str | None:
        # PostgreSQL text cannot hold NUL (SQLite can); a NUL in a file name or EXIF field becomes U+FFFD.
        return value.replace("\x00", "\ufffd") if value is not None and "\x00" in value else value

    # -- the hot folder's one ingesting server ----------------------------------------------

    def advisory_lock(self, key: str) -> AdvisoryLock:
        """A session-level lock named `key`, held by at most one connection to this database."""
        return AdvisoryLock(self.url, key)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close()


class AdvisoryLock:
    """A PostgreSQL advisory lock on a connection of its own: held while that connection lives.

    When the holder dies (process killed, network gone), PostgreSQL ends its session and the lock
    is free for the next `try_acquire`. `held` checks the connection, so a holder that lost its
    session finds out and stops acting as the owner.
    """

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; `True` when this process holds it (now or already)."""
        if self.held():
            return True
        self.release()
        conn = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="fotoflo-lock",
            keepalives=1,
            keepalives_idle=4,
            keepalives_interval=2,
            keepalives_count=3,
        )
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self.key,)).fetchone()
        except BaseException:
            conn.close()
            raise
        if row and row[0]:
            self._conn = conn
            return True
        conn.close()
        return False

    def held(self) -> bool:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            return False
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # ending the session releases the lock


class _Qmark:
    """A pooled connection that runs `SqlStore`'s SQL: its `?` placeholders become psycopg's `%s`."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[dict[str, Any]]:
        return self._conn.execute(sql.replace("?", "%s"), parameters)
