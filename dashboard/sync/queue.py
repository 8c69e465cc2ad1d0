"""The sync client's persistent upload queue: one SQLite file per synced folder, server and project.

One row per file version (path, size, mtime, SHA-256) moves pending → uploading → done | failed
(or skipped, when the file went away before it was sent). Every transition is its own committed
transaction, made before the step it announces, so a process killed at any moment restarts from
a state that says what may have happened: an `uploading` row is one whose bytes may or may not
have reached the server, and the uploader asks the server (by SHA-256) before sending them again.

`files` maps each synced path to its image on the server and the bytes last uploaded there (the
base of the next version, when they were that image's current version: `head`). Several threads
share one `SyncQueue`: writes go through one connection under a lock (one writer), reads through
a connection of their own.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PENDING, UPLOADING, DONE, FAILED, SKIPPED = "pending", "uploading", "done", "failed", "skipped"
STATES = (PENDING, UPLOADING, DONE, FAILED, SKIPPED)

#: `PRAGMA user_version` of a current queue file.
QUEUE_SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE files (
        path      TEXT PRIMARY KEY,
        image_id  TEXT NOT NULL,
        sha256    TEXT NOT NULL,
        head      INTEGER NOT NULL,
        synced_at REAL NOT NULL
    )""",
    "CREATE INDEX files_by_sha ON files (sha256)",
    f"""CREATE TABLE uploads (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        path            TEXT NOT NULL,
        size_bytes      INTEGER NOT NULL,
        mtime_ns        INTEGER NOT NULL,
        sha256          TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ({", ".join(repr(s) for s in STATES)})),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error      TEXT,
        error_code      TEXT,
        image_id        TEXT,
        outcome         TEXT,
        created_at      REAL NOT NULL,
        updated_at      REAL NOT NULL
    )""",
    "CREATE INDEX uploads_by_state ON uploads (state, next_attempt_at)",
    "CREATE INDEX uploads_by_path ON uploads (path, id)",
)
_COLUMNS = (
    "id, path, size_bytes, mtime_ns, sha256, state, attempts, next_attempt_at, last_error, error_code, "
    "image_id, outcome, created_at, updated_at"
)


@dataclass(frozen=True)
class Upload:
    """One row of the queue: a version of a file and how far it got."""

    id: int
    path: str  # relative to the synced folder, with `/`
    size_bytes: int
    mtime_ns: int
    sha256: str
    state: str
    attempts: int
    next_attempt_at: float  # unix time
    last_error: str | None
    error_code: str | None
    image_id: str | None
    outcome: str | None  # when done: created, updated, conflict, present (already there) or renamed
    created_at: float
    updated_at: float


#: Refusals of the file by the server (nothing stored), and local ones.
REFUSAL_CODES = frozenset(
    {"empty", "not_an_image", "unsupported_format", "too_large", "too_many_pixels", "refused", "corrupt", "unreadable"}
)


def _surely_not_sent(row: Upload) -> bool:
    """The row's bytes never reached the server from us: it may stand for other bytes of its path."""
    if row.state == SKIPPED:
        return True
    if row.state == FAILED:
        return row.error_code in REFUSAL_CODES
    return row.state == PENDING and row.attempts == 0 and row.last_error is None


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


class SyncQueue:
    """The queue in `path` (created if missing). `clock` gives unix seconds (tests pass a fake one).

    `readonly` opens an existing queue only to read it (`fotoflo sync status`, beside a running client).
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time, readonly: bool = False) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        if readonly:
            self._writer = None
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._connect()
        try:
            with self._write() as conn:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version > QUEUE_SCHEMA_VERSION:
                    raise RuntimeError(f"{self.path} was written by a newer Fotoflo (queue schema {version})")
                if version == 0:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {QUEUE_SCHEMA_VERSION}")
        except BaseException:
            self._writer.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL loses no committed transaction when the process dies, only on power loss; a lost
        # transition is redone safely (rescans re-queue files, the server is asked before sending).
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self._writer is None:
            raise RuntimeError("this queue was opened read-only")
        with self._lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _read(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            if self._writer is not None:
                self._writer.close()

    # -- metadata -------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._read().execute("SELECT key, value FROM meta")}

    def set_meta(self, **values: str) -> None:
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    # -- the producer's side --------------------------------------------------------------

    def latest(self, path: str) -> Upload | None:
        """The newest row for `path` (what the queue last knew of the file)."""
        row = (
            self._read()
            .execute(f"SELECT {_COLUMNS} FROM uploads WHERE path = ? ORDER BY id DESC LIMIT 1", (path,))
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
        """
        now = self.clock()
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM uploads WHERE path = ? ORDER BY id DESC LIMIT 1", (path,)
            ).fetchone()
            latest = Upload(**row) if row else None
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
                    if gone(old["path"]):
                        conn.execute("UPDATE files SET path = ? WHERE path = ?", (path, old["path"]))
                        conn.execute(
                            f"INSERT INTO uploads ({_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, 0, 0, NULL, NULL, ?,"
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
                    f"INSERT INTO uploads ({_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, 0, ?, NULL, NULL, NULL, NULL,"
                    " ?, ?)",
                    (path, size_bytes, mtime_ns, sha256, PENDING, now, now, now),
                )
            return "queued"

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
        """
        now = self.clock()
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM uploads u WHERE state = ? AND next_attempt_at <= ? AND NOT EXISTS"
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
            synced = conn.execute(
                "SELECT image_id, sha256 FROM files f WHERE path = ? AND head AND NOT EXISTS"
                " (SELECT 1 FROM files o WHERE o.image_id = f.image_id AND o.path != f.path)",
                (row["path"],),
            ).fetchone()
        upload = Upload(**{**dict(row), "state": UPLOADING, "attempts": row["attempts"] + 1, "updated_at": now})
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
            conn.execute(
                "UPDATE uploads SET state = ?, error_code = ?, last_error = ?, updated_at = ? WHERE id = ?",
                (state, code, reason, self.clock(), upload_id),
            )

    def retry_failed(self) -> int:
        """Every failed row back to pending, with its attempts reset (the photographer's "retry")."""
        now = self.clock()
        with self._write() as conn:
            return conn.execute(
                "UPDATE uploads SET state = ?, attempts = 0, next_attempt_at = ?, updated_at = ? WHERE state = ?",
                (PENDING, now, now, FAILED),
            ).rowcount

    # -- reading --------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Rows in each state (every state present, 0 when none)."""
        out = dict.fromkeys(STATES, 0)
        for state, n in self._read().execute("SELECT state, count(*) FROM uploads GROUP BY state"):
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
            f"SELECT {_COLUMNS} FROM uploads WHERE state IN ({', '.join('?' * len(states))})"
            " ORDER BY updated_at DESC, id DESC LIMIT ?",
            (*states, limit),
        )
        return [Upload(**r) for r in rows]

    def synced(self) -> dict[str, Synced]:
        """Each synced path and the image it maps to."""
        rows = self._read().execute("SELECT path, image_id, sha256, head FROM files")
        return {r["path"]: Synced(r["image_id"], r["sha256"], bool(r["head"])) for r in rows}
