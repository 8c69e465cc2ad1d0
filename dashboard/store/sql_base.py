"""`SqlBase`: what `SqlStore`'s rules stand on: the engine's hooks, projects, and the feed's one writer.

A subclass brings the database: its connections (`_read`, `_snapshot`, `_transaction`), how a write
locks its project (`_FOR_UPDATE`), how a list of ids is bound (`_ID_LIST`, `_id_list`) and what
text a column can hold (`_text`). The SQL of `SqlStore` and its parts runs on both engines as written:
`?` placeholders (`PostgresStore`'s connections turn them into `%s`, so no statement holds a literal
`?` or `%`), `INSERT … ON CONFLICT DO NOTHING`, `UPDATE … RETURNING`, and rows read by column name.

Every write is one transaction that first locks its project (`_lock`), so each rule sees the state
the project's previous write committed, and its feed entry takes the project's next `seq` in that
same transaction (`_next_seq`): sequence numbers stay gap-free and commit in order.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from dashboard.events import Change
from dashboard.store import UnknownProject
from dashboard.store.records import Connection, create_project, load_changes
from dashboard.timeutil import utc_now_iso


class SqlBase(ABC):
    """The engine's hooks, projects and the feed, under `SqlStore`'s images and collections."""

    #: Appended to the `SELECT` of the project's row in `_lock`: what makes it a write lock, if anything.
    _FOR_UPDATE: str
    #: A table `ids (position, image_id)`, 0-based, of the ids bound (encoded by `_id_list`) to its one `?`.
    _ID_LIST: str

    @abstractmethod
    def _read(self) -> AbstractContextManager[Connection]:
        """A connection for reads that need not see one state together (committed data only)."""

    @abstractmethod
    def _snapshot(self) -> AbstractContextManager[Connection]:
        """A read transaction: its statements all see one committed state."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction: committed when the block ends, rolled back when it raises."""

    @staticmethod
    @abstractmethod
    def _id_list(image_ids: Sequence[str]) -> Any:
        """The parameter for `_ID_LIST`'s `?`."""

    @staticmethod
    def _text(value: str | None) -> str | None:
        """Free text as the database can store it (unchanged, unless a subclass says otherwise)."""
        return value

    @abstractmethod
    def close(self) -> None: ...

    # -- projects -------------------------------------------------------------------------

    def ensure_project(self, project: str) -> None:
        with self._transaction() as conn:
            create_project(conn, project, utc_now_iso())

    def has_project(self, project: str) -> bool:
        with self._read() as conn:
            return conn.execute("SELECT 1 FROM projects WHERE name = ?", (project,)).fetchone() is not None

    def projects(self) -> list[str]:
        with self._read() as conn:
            names = [r["name"] for r in conn.execute("SELECT name FROM projects")]
        # Sorted here, by code point (UTF-8's byte order), whatever collation the database has.
        return sorted(names)

    @staticmethod
    def _require(conn: Connection, project: str) -> None:
        if conn.execute("SELECT 1 FROM projects WHERE name = ?", (project,)).fetchone() is None:
            raise UnknownProject(project)

    def _lock(self, conn: Connection, project: str) -> None:
        """Hold the project's write lock (its row) for the rest of the transaction; raise `UnknownProject`."""
        if conn.execute("SELECT 1 FROM projects WHERE name = ?" + self._FOR_UPDATE, (project,)).fetchone() is None:
            raise UnknownProject(project)

    # -- the feed's one writer per project ----------------------------------------------------

    @staticmethod
    def _next_seq(conn: Connection, project: str) -> int:
        # The counter is in the project row, written under its write lock: seq N+1 cannot commit before seq N.
        row = conn.execute(
            "UPDATE projects SET last_seq = last_seq + 1 WHERE name = ? RETURNING last_seq", (project,)
        ).fetchone()
        return int(row["last_seq"])

    @staticmethod
    def _record(conn: Connection, change: Change) -> Change:
        conn.execute(
            "INSERT INTO changes (project, seq, kind, created_at, image_id, data) VALUES (?, ?, ?, ?, ?, ?)",
            (
                change.project,
                change.seq,
                change.kind,
                change.created_at,
                change.image.id if change.image else None,
                json.dumps(change.data, separators=(",", ":"), ensure_ascii=False),
            ),
        )
        return change

    # -- feed -----------------------------------------------------------------------------

    def changes(self, project: str, *, after: int = 0, limit: int = 500) -> list[Change]:
        with self._read() as conn:
            self._require(conn, project)
            return load_changes(conn, project, after, limit)

    def last_seq(self, project: str) -> int:
        with self._read() as conn:
            row = conn.execute("SELECT last_seq FROM projects WHERE name = ?", (project,)).fetchone()
        if row is None:
            raise UnknownProject(project)
        return int(row["last_seq"])
