"""`PostgresAuthStore`: the `AuthStore` in the `--db` PostgreSQL database, shared by every server on it.

Its tables (`auth_tokens`, `auth_shares`, `auth_sessions`, `auth_collection_owners`) are step 5 of
the image store's migrations (`dashboard.store.pg_migrations`), applied here too, so
`fotoflo token create --db postgresql://…` works before any server has started. The SQL is
`SqlAuthStore`'s. Nothing is cached in the process: a token or link revoked on one server (or by
the CLI) is refused by every other at its next request.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from dashboard.auth.store import SqlAuthStore
from dashboard.store.pg_migrations import migrate
from dashboard.store.postgres import CONNECT_TIMEOUT_S, open_pool


class QmarkPool:
    """A store whose SQL (with `?` placeholders, as sqlite3 takes them) runs on a small PostgreSQL pool of its
    own, `POOL_SIZE` connections named `POOL_NAME`, opened once the image store's migrations are applied."""

    POOL_NAME = "fotoflo"
    POOL_SIZE = 2

    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            migrate(conn)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = open_pool(
            url, self.POOL_NAME, pool_size or self.POOL_SIZE
        )
        self._closed = False

    @contextmanager
    def _transaction(self) -> Iterator[_Qmark]:
        with self._pool.connection() as conn, conn.transaction():
            yield _Qmark(conn)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close()


class PostgresAuthStore(QmarkPool, SqlAuthStore):
    """`AuthStore` on PostgreSQL at `url`; see `dashboard.auth.store.AuthStore`.

    A small pool of its own (`pool_size` connections, default 4): each request asks once or twice (a token,
    or a session and what signed it in), and must not wait behind the image store's long reads.
    """

    _P = "auth_"
    POOL_NAME = "fotoflo-auth"
    POOL_SIZE = 4


class _Qmark:
    """A pooled connection that runs `SqlAuthStore`'s SQL: its `?` placeholders become psycopg's `%s`."""

    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        return self._conn.execute(sql.replace("?", "%s"), parameters)
