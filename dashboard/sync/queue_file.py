"""The sync queue's SQLite file: its schema and migrations, the row it holds, and the connections to it.

`SyncQueue` (`dashboard.sync.queue`) is the queue's operations on a `QueueFile`. Writes go through one
connection under a lock (one writer), each transition a transaction of its own (`_write`); reads go
through a connection per thread (`_read`).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dashboard.datadir import private_dir

PENDING, UPLOADING, DONE, FAILED, SKIPPED = "pending", "uploading", "done", "failed", "skipped"
STATES = (PENDING, UPLOADING, DONE, FAILED, SKIPPED)
UPLOAD, DELETE = "upload", "delete"  # what a row does: send the file's bytes, or delete its image
ACTIONS = (UPLOAD, DELETE)

#: `PRAGMA user_version` of a current queue file.
QUEUE_SCHEMA_VERSION = 2

#: Version 1 of the queue file; `_MIGRATIONS[n]` takes a file from version n to n + 1.
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
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # Deletions (`--delete`): a row of the queue may stand for deleting a file's image. Old rows upload.
    1: (
        f"ALTER TABLE uploads ADD COLUMN action TEXT NOT NULL DEFAULT '{UPLOAD}'"
        f" CHECK (action IN ({', '.join(repr(a) for a in ACTIONS)}))",
    ),
}
#: The columns of `uploads` a version-1 file has, and all of them: what an `Upload` is read from.
COLUMNS_V1 = (
    "id, path, size_bytes, mtime_ns, sha256, state, attempts, next_attempt_at, last_error, error_code, "
    "image_id, outcome, created_at, updated_at"
)
COLUMNS = f"{COLUMNS_V1}, action"


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
    outcome: str | None  # when done: created, updated, conflict, present (already there) or renamed;
    # for a deletion: deleted, gone (already), changed (on the server since: kept) or kept (shared)
    created_at: float
    updated_at: float
    action: str = UPLOAD  # or DELETE: `image_id` is the image to delete, `sha256` the version it must be


class QueueFile:
    """The queue file in `path`, created if missing and migrated if older, or read as it is (`readonly`)."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time, readonly: bool = False) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._columns = COLUMNS
        if readonly:
            self._writer = None
            if int(self._read().execute("PRAGMA user_version").fetchone()[0]) < 2:
                self._columns = f"{COLUMNS_V1}, '{UPLOAD}' AS action"  # a client of before deletions
            return
        private_dir(self.path.parent)
        self._writer = self._connect()
        try:
            with self._write() as conn:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version > QUEUE_SCHEMA_VERSION:
                    raise RuntimeError(f"{self.path} was written by a newer Fotoflo (queue schema {version})")
                if version == 0:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    version = 1
                for step in range(version, QUEUE_SCHEMA_VERSION):
                    for statement in _MIGRATIONS[step]:
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
