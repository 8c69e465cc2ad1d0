"""`PostgresNotifyStore`: the `NotifyStore` in the `--db` PostgreSQL database, shared by every server on it.

Its tables (`notify_*`) are step 10 of the image store's migrations (`dashboard.store.pg_migrations`),
applied here too, so `fotoflo webhook add --db postgresql://…` works before any server has started.
The SQL is `SqlNotifyStore`'s; only the server holding the notifications' lock sends (`dashboard.notify.notifier`).
"""

from __future__ import annotations

from dashboard.auth.postgres import QmarkPool
from dashboard.notify.store import SqlNotifyStore


class PostgresNotifyStore(QmarkPool, SqlNotifyStore):
    """`NotifyStore` on PostgreSQL at `url`, with a small pool of its own."""

    POOL_NAME = "fotoflo-notify"
