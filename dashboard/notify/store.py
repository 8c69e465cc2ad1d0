"""Where notifications are configured and queued: webhooks, e-mail recipients, the feed cursor, the outbox.

`NotifyStore` is the small protocol. `SQLiteNotifyStore` keeps it in `DATA/notify.sqlite`, beside (not
in) the image store, so the CLI can manage it without a running server; `PostgresNotifyStore`
(`dashboard.notify.postgres`) keeps it in the `notify_*` tables of the `--db` database (step 10 of its
migrations), shared by every server on it. Both run `SqlNotifyStore`'s SQL (`?` placeholders).

A digest is queued with `enqueue`, which moves the project's cursor and writes the outbox rows in one
transaction: a feed entry is counted in exactly one digest, whatever stops in between.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dashboard.datadir import private_dir, touch_private
from dashboard.events import new_id

SCHEMA_VERSION = 1
SECRET_PREFIX = "whsec_"

WEBHOOK, EMAIL = "webhook", "email"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_webhooks (
    id TEXT PRIMARY KEY, project TEXT NOT NULL, url TEXT NOT NULL, secret TEXT NOT NULL,
    events TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS notify_emails (
    project TEXT NOT NULL, address TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (project, address));
CREATE TABLE IF NOT EXISTS notify_cursors (project TEXT PRIMARY KEY, last_seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS notify_outbox (
    id TEXT PRIMARY KEY, project TEXT NOT NULL, channel TEXT NOT NULL, target TEXT NOT NULL, body TEXT NOT NULL,
    created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', last_error TEXT, done_at REAL);
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (state, next_at);
"""


@dataclass(frozen=True)
class Webhook:
    """A URL that gets a project's digests, signed with `secret` (which `to_dict` never shows)."""

    id: str
    project: str
    url: str
    events: tuple[str, ...]
    created_at: float
    secret: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "url": self.url,
            "events": list(self.events),
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class OutboxItem:
    """One notification to deliver: a digest (`body`, JSON) for one webhook (`target`: its id) or address."""

    id: str
    project: str
    channel: str
    target: str
    body: str
    created_at: float
    attempts: int = 0
    next_at: float = 0.0
    state: str = PENDING
    last_error: str | None = None


class NotifyStore(Protocol):
    def add_webhook(self, project: str, url: str, events: Sequence[str], *, start_seq: int) -> tuple[Webhook, str]:
        """Add a webhook; returns it and its signing secret (shown once).

        `start_seq` is the project's newest feed entry: when it is the project's first target, its
        digests start after it (not with the project's whole history).
        """

    def webhooks(self, project: str | None = None) -> list[Webhook]:
        """The webhooks (of `project`), oldest first, each with its secret."""

    def get_webhook(self, webhook_id: str) -> Webhook | None: ...

    def remove_webhook(self, webhook_id: str) -> Webhook | None:
        """Remove it; its notifications not yet delivered are dropped when their turn comes."""

    def add_email(self, project: str, address: str, *, start_seq: int) -> bool:
        """Add a recipient of the project's e-mail digests; False when it already was one."""

    def emails(self, project: str | None = None) -> list[tuple[str, str]]:
        """(project, address) of every recipient (of `project`)."""

    def remove_email(self, project: str, address: str) -> bool: ...

    def targeted_projects(self) -> list[str]:
        """The projects with at least one webhook or recipient."""

    def cursor(self, project: str) -> int | None:
        """The last feed entry counted in a digest of the project (None: none yet)."""

    def enqueue(self, project: str, after_seq: int, last_seq: int, items: Sequence[tuple[str, str, str]]) -> bool:
        """Move the cursor from `after_seq` to `last_seq` and queue `items` (channel, target, body), atomically.

        False (nothing written) when the cursor was no longer `after_seq`: another sender counted them.
        """

    def due(self, now_s: float, limit: int = 50) -> list[OutboxItem]:
        """Pending items whose next attempt is due, oldest first."""

    def outbox(self, project: str | None = None, limit: int = 100) -> list[OutboxItem]:
        """The newest items (of `project`), newest first, whatever their state."""

    def delivered(self, item_id: str, now_s: float) -> None: ...

    def retry(self, item_id: str, *, attempts: int, next_at: float, error: str) -> None: ...

    def failed(self, item_id: str, *, attempts: int, error: str, now_s: float) -> None: ...

    def close(self) -> None: ...


class _Conn(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any: ...


def _webhook(row: Sequence[Any]) -> Webhook:
    return Webhook(
        id=row[0], project=row[1], url=row[2], events=tuple(json.loads(row[4])), created_at=row[5], secret=row[3]
    )


_WEBHOOK_COLUMNS = "id, project, url, secret, events, created_at"
_OUTBOX_COLUMNS = "id, project, channel, target, body, created_at, attempts, next_at, state, last_error"


def _item(row: Sequence[Any]) -> OutboxItem:
    return OutboxItem(*row)


class SqlNotifyStore:
    """`NotifyStore`'s SQL, for SQLite and PostgreSQL: subclasses give `_transaction`."""

    def _transaction(self) -> AbstractContextManager[_Conn]:
        raise NotImplementedError

    def _start_cursor(self, conn: _Conn, project: str, start_seq: int) -> None:
        """The project's first target: its digests start after `start_seq` (not from an old cursor)."""
        targets = conn.execute(
            "SELECT (SELECT count(*) FROM notify_webhooks WHERE project = ?)"
            " + (SELECT count(*) FROM notify_emails WHERE project = ?)",
            (project, project),
        ).fetchone()[0]
        if int(targets) == 0:
            conn.execute(
                "INSERT INTO notify_cursors (project, last_seq) VALUES (?, ?)"
                " ON CONFLICT (project) DO UPDATE SET last_seq = excluded.last_seq",
                (project, start_seq),
            )

    def add_webhook(self, project: str, url: str, events: Sequence[str], *, start_seq: int) -> tuple[Webhook, str]:
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        hook = Webhook(new_id(), project, url, tuple(events), time.time(), secret)
        with self._transaction() as conn:
            self._start_cursor(conn, project, start_seq)
            conn.execute(
                f"INSERT INTO notify_webhooks ({_WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (hook.id, project, url, secret, json.dumps(list(events)), hook.created_at),
            )
        return hook, secret

    def webhooks(self, project: str | None = None) -> list[Webhook]:
        with self._transaction() as conn:
            if project is None:
                rows = conn.execute(f"SELECT {_WEBHOOK_COLUMNS} FROM notify_webhooks ORDER BY created_at, id")
            else:
                rows = conn.execute(
                    f"SELECT {_WEBHOOK_COLUMNS} FROM notify_webhooks WHERE project = ? ORDER BY created_at, id",
                    (project,),
                )
            return [_webhook(row) for row in rows.fetchall()]

    def get_webhook(self, webhook_id: str) -> Webhook | None:
        with self._transaction() as conn:
            row = conn.execute(f"SELECT {_WEBHOOK_COLUMNS} FROM notify_webhooks WHERE id = ?", (webhook_id,)).fetchone()
        return _webhook(row) if row else None

    def remove_webhook(self, webhook_id: str) -> Webhook | None:
        with self._transaction() as conn:
            row = conn.execute(f"SELECT {_WEBHOOK_COLUMNS} FROM notify_webhooks WHERE id = ?", (webhook_id,)).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM notify_webhooks WHERE id = ?", (webhook_id,))
        return _webhook(row)

    def add_email(self, project: str, address: str, *, start_seq: int) -> bool:
        with self._transaction() as conn:
            if conn.execute(
                "SELECT 1 FROM notify_emails WHERE project = ? AND address = ?", (project, address)
            ).fetchone():
                return False
            self._start_cursor(conn, project, start_seq)
            conn.execute(
                "INSERT INTO notify_emails (project, address, created_at) VALUES (?, ?, ?)",
                (project, address, time.time()),
            )
        return True

    def emails(self, project: str | None = None) -> list[tuple[str, str]]:
        with self._transaction() as conn:
            if project is None:
                rows = conn.execute("SELECT project, address FROM notify_emails ORDER BY project, created_at")
            else:
                rows = conn.execute(
                    "SELECT project, address FROM notify_emails WHERE project = ? ORDER BY created_at", (project,)
                )
            return [(row[0], row[1]) for row in rows.fetchall()]

    def remove_email(self, project: str, address: str) -> bool:
        with self._transaction() as conn:
            gone = conn.execute(
                "DELETE FROM notify_emails WHERE project = ? AND address = ?", (project, address)
            ).rowcount
        return bool(gone)

    def targeted_projects(self) -> list[str]:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT project FROM notify_webhooks UNION SELECT project FROM notify_emails ORDER BY 1"
            ).fetchall()
        return [row[0] for row in rows]

    def cursor(self, project: str) -> int | None:
        with self._transaction() as conn:
            row = conn.execute("SELECT last_seq FROM notify_cursors WHERE project = ?", (project,)).fetchone()
        return int(row[0]) if row else None

    def enqueue(self, project: str, after_seq: int, last_seq: int, items: Sequence[tuple[str, str, str]]) -> bool:
        now = time.time()
        with self._transaction() as conn:
            row = conn.execute("SELECT last_seq FROM notify_cursors WHERE project = ?", (project,)).fetchone()
            if (int(row[0]) if row else 0) != after_seq:
                return False
            conn.execute(
                "INSERT INTO notify_cursors (project, last_seq) VALUES (?, ?)"
                " ON CONFLICT (project) DO UPDATE SET last_seq = excluded.last_seq",
                (project, last_seq),
            )
            for channel, target, body in items:
                conn.execute(
                    "INSERT INTO notify_outbox (id, project, channel, target, body, created_at, next_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (new_id(), project, channel, target, body, now, now),
                )
        return True

    def due(self, now_s: float, limit: int = 50) -> list[OutboxItem]:
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM notify_outbox WHERE state = ? AND next_at <= ?"
                " ORDER BY created_at, id LIMIT ?",
                (PENDING, now_s, limit),
            ).fetchall()
        return [_item(row) for row in rows]

    def outbox(self, project: str | None = None, limit: int = 100) -> list[OutboxItem]:
        with self._transaction() as conn:
            if project is None:
                rows = conn.execute(
                    f"SELECT {_OUTBOX_COLUMNS} FROM notify_outbox ORDER BY created_at DESC, id LIMIT ?", (limit,)
                )
            else:
                rows = conn.execute(
                    f"SELECT {_OUTBOX_COLUMNS} FROM notify_outbox WHERE project = ?"
                    " ORDER BY created_at DESC, id LIMIT ?",
                    (project, limit),
                )
            return [_item(row) for row in rows.fetchall()]

    def delivered(self, item_id: str, now_s: float) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE notify_outbox SET state = ?, attempts = attempts + 1, done_at = ?, last_error = NULL"
                " WHERE id = ?",
                (DELIVERED, now_s, item_id),
            )

    def retry(self, item_id: str, *, attempts: int, next_at: float, error: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE notify_outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
                (attempts, next_at, error[:500], item_id),
            )

    def failed(self, item_id: str, *, attempts: int, error: str, now_s: float) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE notify_outbox SET state = ?, attempts = ?, last_error = ?, done_at = ? WHERE id = ?",
                (FAILED, attempts, error[:500], now_s, item_id),
            )


class SQLiteNotifyStore(SqlNotifyStore):
    """`NotifyStore` in its own SQLite file (`DATA/notify.sqlite`, 0600: it holds the webhooks' secrets)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)
        touch_private(self.path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.execute("PRAGMA journal_mode = WAL")
        with self._transaction() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} has schema version {version}, newer than this Fotoflo's")
            if version < SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # One connection, one transaction at a time: the notifier and a request or two, never busy.
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
