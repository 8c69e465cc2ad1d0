"""`SqlComments`: `SqlStore`'s comments on images, threads one level deep.

See `dashboard.store.Comments` for the contract.
"""

from __future__ import annotations

from typing import Any

from dashboard.events import COMMENT_CREATED, COMMENT_DELETED, COMMENT_UPDATED, Change, new_id
from dashboard.store import (
    MAX_BY_KEY_CHARS,
    Comment,
    InvalidValue,
    UnknownComment,
    UnknownImage,
    clean_comment,
    clean_name,
)
from dashboard.store.records import Connection
from dashboard.store.sql_base import SqlBase
from dashboard.timeutil import utc_now_iso

_COLUMNS = "id, image_id, project, text, author_name, author_key, reply_to, created_at, resolved"


def _comment(row: Any) -> Comment:
    return Comment(
        id=row["id"],
        image_id=row["image_id"],
        project=row["project"],
        text=row["text"],
        author=row["author_name"],
        author_key=row["author_key"],
        reply_to=row["reply_to"],
        created_at=row["created_at"],
        resolved=bool(row["resolved"]),  # SQLite's 0/1
    )


class SqlComments(SqlBase):
    """Comments per image; resolving one that already is so writes nothing (idempotent)."""

    def add_comment(
        self, project: str, image_id: str, text: str, *, author: str, author_key: str, reply_to: str | None = None
    ) -> tuple[Comment, Change]:
        text = clean_comment(text)
        author = clean_name(author)
        author_key = clean_name(author_key[:MAX_BY_KEY_CHARS])
        if reply_to is not None and not isinstance(reply_to, str):
            raise InvalidValue(f"reply_to must be a comment id or null, not {reply_to!r}")
        with self._transaction() as conn:
            self._lock(conn, project)
            self._require_image(conn, project, image_id)
            if reply_to is not None:
                parent = self._load(conn, project, image_id, reply_to)
                if parent is None:
                    raise InvalidValue(f"reply_to {reply_to!r} is not a comment of image {image_id!r}")
                reply_to = parent.reply_to or parent.id  # a reply to a reply answers the thread
            now, seq = utc_now_iso(), self._next_seq(conn, project)
            comment = Comment(new_id(), image_id, project, text, author, author_key, reply_to, now, False)
            conn.execute(
                "INSERT INTO comments (id, project, image_id, text, author_name, author_key, reply_to, created_at,"
                " resolved, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (comment.id, project, image_id, self._text(text), self._text(author), author_key, reply_to, now, seq),
            )
            change = self._record(conn, Change(project, seq, COMMENT_CREATED, now, data=comment.data()))
        return comment, change

    def list_comments(self, project: str, image_id: str) -> list[Comment]:
        with self._snapshot() as conn:
            self._require(conn, project)
            self._require_image(conn, project, image_id)
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM comments WHERE project = ? AND image_id = ? ORDER BY seq", (project, image_id)
            ).fetchall()
        return [_comment(r) for r in rows]

    def get_comment(self, project: str, image_id: str, comment_id: str) -> Comment | None:
        with self._read() as conn:
            return self._load(conn, project, image_id, comment_id)

    def resolve_comment(
        self, project: str, image_id: str, comment_id: str, *, resolved: bool
    ) -> tuple[Comment, Change | None]:
        if not isinstance(resolved, bool):
            raise InvalidValue(f"resolved must be true or false, not {resolved!r}")
        with self._transaction() as conn:
            self._lock(conn, project)
            comment = self._load(conn, project, image_id, comment_id)
            if comment is None:
                raise UnknownComment(comment_id)
            if comment.resolved == resolved:
                return comment, None
            conn.execute("UPDATE comments SET resolved = ? WHERE id = ?", (int(resolved), comment_id))
            comment = Comment(**{**vars(comment), "resolved": resolved})
            now, seq = utc_now_iso(), self._next_seq(conn, project)
            change = self._record(conn, Change(project, seq, COMMENT_UPDATED, now, data=comment.data()))
        return comment, change

    def delete_comment(self, project: str, image_id: str, comment_id: str) -> tuple[Comment, Change]:
        with self._transaction() as conn:
            self._lock(conn, project)
            comment = self._load(conn, project, image_id, comment_id)
            if comment is None:
                raise UnknownComment(comment_id)
            replies = conn.execute(
                "SELECT id FROM comments WHERE project = ? AND reply_to = ? ORDER BY seq", (project, comment_id)
            ).fetchall()
            ids = [comment_id, *(r["id"] for r in replies)]
            conn.execute("DELETE FROM comments WHERE project = ? AND reply_to = ?", (project, comment_id))
            conn.execute("DELETE FROM comments WHERE id = ?", (comment_id,))
            data = {"id": comment_id, "image_id": image_id, "ids": ids}
            change = self._record(conn, Change(project, self._next_seq(conn, project), COMMENT_DELETED,
                                               utc_now_iso(), data=data))  # fmt: skip
        return comment, change

    def comment_counts(self, project: str) -> dict[str, int]:
        with self._read() as conn:
            self._require(conn, project)
            rows = conn.execute(
                "SELECT image_id, COUNT(*) AS n FROM comments WHERE project = ? GROUP BY image_id", (project,)
            ).fetchall()
        return {r["image_id"]: int(r["n"]) for r in rows}

    @staticmethod
    def _require_image(conn: Connection, project: str, image_id: str) -> None:
        if conn.execute("SELECT 1 FROM images WHERE project = ? AND id = ?", (project, image_id)).fetchone() is None:
            raise UnknownImage(project, [image_id])

    @staticmethod
    def _load(conn: Connection, project: str, image_id: str, comment_id: str) -> Comment | None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM comments WHERE project = ? AND image_id = ? AND id = ?",
            (project, image_id, comment_id),
        ).fetchone()
        return _comment(row) if row is not None else None
