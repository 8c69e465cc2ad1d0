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


class PostgresAuthStore(SqlAuthStore):
    """`AuthStore` on PostgreSQL at `url`; see `dashboard.auth.store.AuthStore`.

    A small pool of its own (`pool_size` connections): each request asks once or twice (a token, or a
    session and what signed it in), and must not wait behind the image store's long reads.
    """

    _P = "auth_"

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            migrate(conn)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = open_pool(url, "fotoflo-auth", pool_size)
        self._closed = False

    @contextmanager
    def _transaction(self) -> Iterator[_Qmark]:
        with self._pool.connection() as conn, conn.transaction():
            yield _Qmark(conn)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close()


class _Qmark:
    """A pooled connection that runs `SqlAuthStore`'s SQL: its `?` placeholders become psycopg's `%s`."""

    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        return self._conn.execute(sql.replace("?", "%s"), parameters)
