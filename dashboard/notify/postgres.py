"""`PostgresNotifyStore`: the `NotifyStore` in the `--db` PostgreSQL database, shared by every server on it.

Its tables (`notify_*`) are step 10 of the image store's migrations (`dashboard.store.pg_migrations`),
applied here too, so `fotoflo webhook add --db postgresql://…` works before any server has started.
The SQL is `SqlNotifyStore`'s; only the server holding the notifications' lock sends (`dashboard.notify.notifier`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from dashboard.auth.postgres import _Qmark
from dashboard.notify.store import SqlNotifyStore
from dashboard.store.pg_migrations import migrate
from dashboard.store.postgres import CONNECT_TIMEOUT_S, open_pool


class PostgresNotifyStore(SqlNotifyStore):
    """`NotifyStore` on PostgreSQL at `url`, with a small pool of its own."""

    def __init__(self, url: str, *, pool_size: int = 2) -> None:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            migrate(conn)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = open_pool(url, "fotoflo-notify", pool_size)
        self._closed = False

    @contextmanager
    def _transaction(self) -> Iterator[_Qmark]:
        with self._pool.connection() as conn, conn.transaction():
            yield _Qmark(conn)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close()
