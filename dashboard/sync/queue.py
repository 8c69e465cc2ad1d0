"""The sync client's persistent upload queue: one SQLite file per synced folder, server and project.

One row per file version (path, size, mtime, SHA-256) moves pending → uploading → done | failed
(or skipped, when the file went away before it was sent). Every transition is its own committed
transaction, made before the step it announces, so a process killed at any moment restarts from
a state that says what may have happened: an `uploading` row is one whose bytes may or may not
have reached the server, and the uploader asks the server (by SHA-256) before sending them again.
A row's `action` is `upload`, or `delete` (with `--delete`: a synced file gone from the folder, whose
image is to be deleted on the server; deleting is idempotent, so it is simply sent again).

`files` maps each synced path to its image on the server and the bytes last uploaded there (the
base of the next version, when they were that image's current version: `head`). Several threads
share one `SyncQueue`: writes go through one connection under a lock (one writer), reads through
a connection of their own (see `queue_file`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from dashboard.sync.queue_file import (
    ACTIONS,
    COLUMNS,
    COLUMNS_V1,
    DELETE,
    DONE,
    FAILED,
    PENDING,
    QUEUE_SCHEMA_VERSION,
    SKIPPED,
    STATES,
    UPLOAD,
    UPLOADING,
    QueueFile,
    Upload,
)

# The file's names too (`queue_file`): callers import the queue's names from here.
__all__ = [
    "ACTIONS",
    "DELETE",
    "DONE",
    "FAILED",
    "PENDING",
    "QUEUE_SCHEMA_VERSION",
    "REFUSAL_CODES",
    "SKIPPED",
    "STATES",
    "UPLOAD",
    "UPLOADING",
    "Job",
    "QueueLocked",
    "SyncQueue",
    "Synced",
    "Upload",
]

#: Refusals of the file by the server (nothing stored), and local ones.
REFUSAL_CODES = frozenset(
    {"empty", "not_an_image", "unsupported_format", "too_large", "too_many_pixels", "refused", "corrupt", "unreadable"}
)


def _surely_not_sent(row: Upload) -> bool:
    """The row never reached the server from us: it may stand for other bytes of its path (or be dropped)."""
    if row.state == SKIPPED:
        return True
    if row.state == FAILED:
        return row.error_code in REFUSAL_CODES
    return row.state == PENDING and row.attempts == 0 and row.last_error is None


def _newest(conn: sqlite3.Connection, path: str, action: str | None = None) -> Upload | None:
    """The newest row of `path` (of one `action`), read in the writer's transaction."""
    where, args = ("path = ?", (path,)) if action is None else ("path = ? AND action = ?", (path, action))
    row = conn.execute(f"SELECT {COLUMNS} FROM uploads WHERE {where} ORDER BY id DESC LIMIT 1", args).fetchone()
    return Upload(**row) if row else None


def _mapped(conn: sqlite3.Connection, path: str) -> bool:
    return conn.execute("SELECT 1 FROM files WHERE path = ?", (path,)).fetchone() is not None


def _set_state(conn: sqlite3.Connection, upload_id: int, state: str, code: str | None, reason: str, now: float) -> None:
    conn.execute(
        "UPDATE uploads SET state = ?, error_code = ?, last_error = ?, updated_at = ? WHERE id = ?",
        (state, code, reason, now, upload_id),
    )


@dataclass(frozen=True)
class Synced:
    """Where a synced path is on the server: its image, and the bytes last uploaded there.

    `head`: those bytes were then the image's current version (the base of the file's next version).
    """

    image_id: str
    sha256: str
    head: bool


@dataclass(frozen=True)
class Job:
    """A claimed upload: the row, plus the image it replaces and the bytes that image had from us."""

    upload: Upload
    replaces: str | None
    base_sha256: str | None


class QueueLocked(RuntimeError):
    """Another sync client already runs on this state directory."""


class SyncQueue(QueueFile):
    """The queue in `path` (created if missing, migrated if older). `clock` gives unix seconds (tests pass a fake one).

    `readonly` opens an existing queue only to read it (`fotoflo sync status`, beside a running client),
    as it is: an older file is read as its version says.
    """

    # -- the producer's side --------------------------------------------------------------

    def latest(self, path: str, *, action: str | None = None) -> Upload | None:
        """The newest row for `path` (what the queue last knew of the file), or its newest of one `action`."""
        where, args = ("path = ?", (path,)) if action is None else ("path = ? AND action = ?", (path, action))
        row = (
            self._read()
            .execute(f"SELECT {self._columns} FROM uploads WHERE {where} ORDER BY id DESC LIMIT 1", args)
            .fetchone()
        )
        return Upload(**row) if row else None

    def observe(self, path: str, size_bytes: int, mtime_ns: int, sha256: str, *, gone: Callable[[str], bool]) -> str:
        """Record that `path` now holds these bytes; returns what that meant.

        `known`: the queue already has this version (its fingerprint is refreshed). `renamed`:
        the bytes are those of a synced file whose path is `gone`; the mapping moves to the new
        path and nothing is sent. `queued`: a version to upload. A row of an older version is
        reused only if its bytes are surely not on the server (never tried, skipped, refused);
        one that may have arrived keeps its course, so the uploader can settle what it became.
        A deletion of the file (or of the one it was moved from) that was never sent is called off;
        one that may have been sent keeps its course too (the uploader sees the file back).
        """
        now = self.clock()
        with self._write() as conn:
            latest = _newest(conn, path)
            if latest is not None and latest.action == DELETE:
                if latest.state == DONE:
                    latest = None  # its image was dealt with: what is there now is a new file
                else:
                    if latest.state == PENDING and _surely_not_sent(latest):
                        _set_state(conn, latest.id, SKIPPED, None, "back before it was deleted", now)
                    latest = _newest(conn, path, UPLOAD)
            if latest is not None and latest.state == DONE and not _mapped(conn, path):
                latest = None  # its mapping went to a path it was taken to be moved to: this file is new
            if latest is not None and latest.sha256 == sha256 and latest.state != SKIPPED:
                if (latest.size_bytes, latest.mtime_ns) != (size_bytes, mtime_ns):
                    conn.execute(
                        "UPDATE uploads SET size_bytes = ?, mtime_ns = ? WHERE id = ?",
                        (size_bytes, mtime_ns, latest.id),
                    )
                return "known"
            if latest is None:
                # A file that was its image's current version, moved: its lineage moves with it.
                olds = conn.execute("SELECT path, image_id FROM files WHERE sha256 = ? AND head", (sha256,)).fetchall()
                for old in olds:
                    if not gone(old["path"]):
                        continue
                    deleting = _newest(conn, old["path"])
                    if deleting is not None and deleting.action == DELETE and deleting.state in (PENDING, UPLOADING):
                        if not _surely_not_sent(deleting):
                            continue  # its image may be deleted already: this file goes up as it is
                        _set_state(conn, deleting.id, SKIPPED, None, f"moved to {path}, not deleted", now)
                    conn.execute("UPDATE files SET path = ? WHERE path = ?", (path, old["path"]))
                    conn.execute(
                        f"INSERT INTO uploads ({COLUMNS_V1}) VALUES (NULL, ?, ?, ?, ?, ?, 0, 0, NULL, NULL, ?,"
                        " 'renamed', ?, ?)",
                        (path, size_bytes, mtime_ns, sha256, DONE, old["image_id"], now, now),
                    )
                    return "renamed"
            if latest is not None and _surely_not_sent(latest):
                conn.execute(
                    "UPDATE uploads SET size_bytes = ?, mtime_ns = ?, sha256 = ?, state = ?, attempts = 0,"
                    " next_attempt_at = ?, last_error = NULL, error_code = NULL, updated_at = ? WHERE id = ?",
                    (size_bytes, mtime_ns, sha256, PENDING, now, now, latest.id),
                )
            else:
                conn.execute(
                    f"INSERT INTO uploads ({COLUMNS_V1}) VALUES (NULL, ?, ?, ?, ?, ?, 0, ?, NULL, NULL, NULL, NULL,"
                    " ?, ?)",
                    (path, size_bytes, mtime_ns, sha256, PENDING, now, now, now),
                )
            return "queued"

    def queue_delete(self, path: str) -> bool:
        """Queue deleting the image of the synced `path`, whose file is gone.

        `False` when there is nothing to queue: the path is not synced, or a deletion of it is
        already pending, in flight or failed (a failed one waits for "retry failed").
        """
        now = self.clock()
        with self._write() as conn:
            synced = conn.execute("SELECT image_id, sha256 FROM files WHERE path = ?", (path,)).fetchone()
            if synced is None:
                return False
            latest = _newest(conn, path)
            if latest is not None and latest.action == DELETE and latest.state in (PENDING, UPLOADING, FAILED):
                return False
            size_bytes, mtime_ns = (latest.size_bytes, latest.mtime_ns) if latest is not None else (0, 0)
            conn.execute(
                f"INSERT INTO uploads ({COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, 0, ?, NULL, NULL, ?, NULL, ?, ?, ?)",
                (path, size_bytes, mtime_ns, synced["sha256"], PENDING, now, synced["image_id"], now, now, DELETE),
            )  # fmt: skip
            return True

    # -- the consumer's side --------------------------------------------------------------

    def recover(self) -> int:
        """At start: uploads a dead process left `uploading` may or may not have arrived; try them again."""
        with self._write() as conn:
            return conn.execute(
                "UPDATE uploads SET state = ?, next_attempt_at = ?, updated_at = ? WHERE state = ?",
                (PENDING, self.clock(), self.clock(), UPLOADING),
            ).rowcount

    def claim(self) -> Job | None:
        """The oldest due pending row, now `uploading` (one attempt more), or `None`.

        A path's versions go one at a time, in order: a row waits while an older one of its path
        is pending or uploading. A file that shares its image with another path (a copy: same
        bytes, same image) goes up as a new image rather than as a version of the shared one, so
        one device never makes a conflict with itself; so does a file whose bytes were found as an
        older version of an image (its edits start a lineage of their own).

        A deletion takes the image and version to delete from the path's mapping as it is now (an
        upload that finished after the deletion was queued moved it on), committed with the claim.
        """
        now = self.clock()
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {COLUMNS} FROM uploads u WHERE state = ? AND next_attempt_at <= ? AND NOT EXISTS"
                " (SELECT 1 FROM uploads o WHERE o.path = u.path AND o.id < u.id AND o.state IN (?, ?))"
                " ORDER BY id LIMIT 1",
                (PENDING, now, PENDING, UPLOADING),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE uploads SET state = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?",
                (UPLOADING, now, row["id"]),
            )
            claimed = {**dict(row), "state": UPLOADING, "attempts": row["attempts"] + 1, "updated_at": now}
            if row["action"] == DELETE:
                target = conn.execute("SELECT image_id, sha256 FROM files WHERE path = ?", (row["path"],)).fetchone()
                if target is not None:
                    claimed.update(image_id=target["image_id"], sha256=target["sha256"])
                else:
                    claimed.update(image_id=None)  # not synced any more: nothing to delete
                conn.execute(
                    "UPDATE uploads SET image_id = ?, sha256 = ? WHERE id = ?",
                    (claimed["image_id"], claimed["sha256"], row["id"]),
                )
                return Job(Upload(**claimed), None, None)
            synced = conn.execute(
                "SELECT image_id, sha256 FROM files f WHERE path = ? AND head AND NOT EXISTS"
                " (SELECT 1 FROM files o WHERE o.image_id = f.image_id AND o.path != f.path)",
                (row["path"],),
            ).fetchone()
        upload = Upload(**claimed)
        if synced is None:
            return Job(upload, None, None)
        return Job(upload, synced["image_id"], synced["sha256"])

    def finish(self, upload_id: int, image_id: str, outcome: str, *, head: bool = True) -> None:
        """The server has the row's bytes as (a version of) `image_id`; the path maps to it from now on.

        `head`: they are its current version (else an older one: the file's edits will not be its versions).
        """
        now = self.clock()
        with self._write() as conn:
            row = conn.execute("SELECT path, sha256 FROM uploads WHERE id = ?", (upload_id,)).fetchone()
            conn.execute(
                "UPDATE uploads SET state = ?, image_id = ?, outcome = ?, last_error = NULL, error_code = NULL,"
                " updated_at = ? WHERE id = ?",
                (DONE, image_id, outcome, now, upload_id),
            )
            conn.execute(
                "INSERT INTO files (path, image_id, sha256, head, synced_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (path)"
                " DO UPDATE SET image_id = excluded.image_id, sha256 = excluded.sha256, head = excluded.head,"
                " synced_at = excluded.synced_at",
                (row["path"], image_id, row["sha256"], head, now),
            )

    def forget_image(self, path: str) -> None:
        """The image `path` mapped to is gone from the server: its next upload is a new image."""
        with self._write() as conn:
            conn.execute("DELETE FROM files WHERE path = ?", (path,))

    def finish_delete(self, upload_id: int, outcome: str, reason: str | None = None) -> None:
        """A deletion is settled (`deleted`, `gone`, or not done: `changed`, `kept`, with the `reason`).

        Either way its path is not synced any more: a file that appears there later is a new one.
        """
        now = self.clock()
        with self._write() as conn:
            row = conn.execute("SELECT path FROM uploads WHERE id = ?", (upload_id,)).fetchone()
            conn.execute(
                "UPDATE uploads SET state = ?, outcome = ?, last_error = ?, error_code = NULL, updated_at = ?"
                " WHERE id = ?",
                (DONE, outcome, reason, now, upload_id),
            )
            conn.execute("DELETE FROM files WHERE path = ?", (row["path"],))

    def fail(self, upload_id: int, code: str, reason: str) -> None:
        """Refused for good (not an image, too large, ...): not tried again until the file changes."""
        self._set(upload_id, FAILED, code, reason)

    def skip(self, upload_id: int, reason: str) -> None:
        """Not sent, and never will be: the file changed or went away before its bytes reached the server."""
        self._set(upload_id, SKIPPED, None, reason)

    def retry(self, upload_id: int, reason: str, *, delay_s: float, count_attempt: bool = True) -> None:
        """Back to pending, due after `delay_s`; an attempt that did not count (offline, stopping) is given back."""
        now = self.clock()
        with self._write() as conn:
            conn.execute(
                "UPDATE uploads SET state = ?, next_attempt_at = ?, last_error = ?, updated_at = ?,"
                " attempts = attempts - ? WHERE id = ?",
                (PENDING, now + delay_s, reason, now, 0 if count_attempt else 1, upload_id),
            )

    def _set(self, upload_id: int, state: str, code: str | None, reason: str) -> None:
        with self._write() as conn:
            _set_state(conn, upload_id, state, code, reason, self.clock())

    def retry_failed(self) -> int:
        """Every failed row back to pending, with its attempts reset (the photographer's "retry")."""
        now = self.clock()
        with self._write() as conn:
            return conn.execute(
                "UPDATE uploads SET state = ?, attempts = 0, next_attempt_at = ?, updated_at = ? WHERE state = ?",
                (PENDING, now, now, FAILED),
            ).rowcount

    # -- reading --------------------------------------------------------------------------

    def counts(self, *, action: str | None = None) -> dict[str, int]:
        """Rows in each state (every state present, 0 when none), of every action or of one."""
        out = dict.fromkeys(STATES, 0)
        where, args = ("", ()) if action is None else (" WHERE action = ?", (action,))
        if self._columns != COLUMNS and action is not None:  # a queue of before deletions: all uploads
            if action != UPLOAD:
                return out
            where, args = "", ()
        for state, n in self._read().execute(f"SELECT state, count(*) FROM uploads{where} GROUP BY state", args):
            out[state] = n
        return out

    def next_due(self) -> float | None:
        """When `claim` will next have a row (unix time), or `None` when none is pending.

        Only the oldest pending row of each path counts: the others wait for it, not for a time.
        """
        row = (
            self._read()
            .execute(
                "SELECT min(next_attempt_at) FROM uploads u WHERE state = ? AND NOT EXISTS"
                " (SELECT 1 FROM uploads o WHERE o.path = u.path AND o.id < u.id AND o.state IN (?, ?))",
                (PENDING, PENDING, UPLOADING),
            )
            .fetchone()
        )
        return None if row[0] is None else float(row[0])

    def uploads(self, *, states: tuple[str, ...] = STATES, limit: int = 200) -> list[Upload]:
        """Rows in these states, the most recently changed first."""
        rows = self._read().execute(
            f"SELECT {self._columns} FROM uploads WHERE state IN ({', '.join('?' * len(states))})"
            " ORDER BY updated_at DESC, id DESC LIMIT ?",
            (*states, limit),
        )
        return [Upload(**r) for r in rows]

    def mapping(self, path: str) -> Synced | None:
        """The image the synced `path` maps to, or `None`."""
        row = self._read().execute("SELECT image_id, sha256, head FROM files WHERE path = ?", (path,)).fetchone()
        return None if row is None else Synced(row["image_id"], row["sha256"], bool(row["head"]))

    def shares_image(self, path: str) -> bool:
        """Another synced path maps to the image `path` maps to (a copy of the file, or of its bytes)."""
        row = (
            self._read()
            .execute(
                "SELECT 1 FROM files f JOIN files o ON o.image_id = f.image_id AND o.path != f.path WHERE f.path = ?",
                (path,),
            )
            .fetchone()
        )
        return row is not None

    def synced(self) -> dict[str, Synced]:
        """Each synced path and the image it maps to."""
        rows = self._read().execute("SELECT path, image_id, sha256, head FROM files")
        return {r["path"]: Synced(r["image_id"], r["sha256"], bool(r["head"])) for r in rows}
