"""The embedded store: one SQLite file in WAL mode, one writer, readers in parallel."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from dashboard.datadir import private_dir, touch_private
from dashboard.store.sql import SqlStore

log = logging.getLogger("fotoflo.store")

#: `PRAGMA user_version` of a current database; opening an older one runs the missing steps.
SCHEMA_VERSION = 7

#: SQLite's page cache per connection (KiB). Each reading thread has its own connection, and each cache
#: fills as the project grows, so a long day's server memory grew with its images until every cache was
#: full (benchmarks/soak.py). Small caches are full early; what they leave out is in the OS's page cache.
CACHE_KIB = 512
#: All of SQLite's memory in this process, the caches above included: past it, SQLite reuses its pages.
MEMORY_CAP_BYTES = 8 * 2**20


def memory_used() -> int | None:
    """All of SQLite's memory in this process now (page caches, statements), or None if it cannot be read.

    Read from the libsqlite3 the `sqlite3` module is linked to; a Python with SQLite linked in statically
    keeps it out of reach. `MEMORY_CAP_BYTES` bounds it; `/metrics` reports it.
    """
    used = _sqlite_memory_used_fn()
    return int(used()) if used is not None else None


@functools.cache
def _sqlite_memory_used_fn() -> Callable[[], int] | None:
    try:
        lib = ctypes.CDLL(_linked_sqlite() or ctypes.util.find_library("sqlite3"))
        fn = lib.sqlite3_memory_used
    except (OSError, TypeError, AttributeError):
        return None
    fn.restype = ctypes.c_int64
    fn.argtypes = []
    return cast(Callable[[], int], fn)


def _linked_sqlite() -> str | None:
    """The path of the libsqlite3 loaded into this process (Linux), not just any one installed."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip()
                if "/libsqlite3" in path:
                    return path
    except OSError:
        pass
    return None


_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # v1: projects, images and the feed. IF NOT EXISTS: v1 set its version after its tables.
    1: (
        """CREATE TABLE IF NOT EXISTS projects (
            name       TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            last_seq   INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE IF NOT EXISTS images (
            id           TEXT PRIMARY KEY,
            project      TEXT NOT NULL REFERENCES projects(name),
            filename     TEXT NOT NULL,
            sha256       TEXT NOT NULL,
            size_bytes   INTEGER NOT NULL,
            width        INTEGER NOT NULL,
            height       INTEGER NOT NULL,
            format       TEXT NOT NULL,
            mime         TEXT NOT NULL,
            captured_at  TEXT NOT NULL,
            camera_make  TEXT,
            camera_model TEXT,
            exif         TEXT NOT NULL DEFAULT '{}',
            created_at   TEXT NOT NULL,
            seq          INTEGER NOT NULL,
            UNIQUE (project, sha256)
        )""",
        "CREATE INDEX IF NOT EXISTS images_by_project_seq ON images (project, seq DESC)",
        """CREATE TABLE IF NOT EXISTS changes (
            project    TEXT NOT NULL,
            seq        INTEGER NOT NULL,
            kind       TEXT NOT NULL,
            created_at TEXT NOT NULL,
            image_id   TEXT,
            data       TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (project, seq)
        ) WITHOUT ROWID""",
    ),
    # v2: ratings and picks on images; saved collections (deleted ones kept as tombstones).
    2: (
        "ALTER TABLE images ADD COLUMN rating INTEGER NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5)",
        "ALTER TABLE images ADD COLUMN flag TEXT NOT NULL DEFAULT 'none' CHECK (flag IN ('none', 'pick', 'reject'))",
        "ALTER TABLE images ADD COLUMN label TEXT NOT NULL DEFAULT 'none'"
        " CHECK (label IN ('none', 'red', 'yellow', 'green', 'blue', 'purple'))",
        """CREATE TABLE collections (
            id             TEXT PRIMARY KEY,
            project        TEXT NOT NULL REFERENCES projects(name),
            name           TEXT NOT NULL,
            cover_image_id TEXT REFERENCES images(id),
            created_at     TEXT NOT NULL,
            updated_at     TEXT NOT NULL,
            version        INTEGER NOT NULL DEFAULT 1,
            seq            INTEGER NOT NULL,
            deleted_at     TEXT
        )""",
        # Two live collections of a project never share a name; a tombstone may.
        "CREATE UNIQUE INDEX collections_live_name ON collections (project, name) WHERE deleted_at IS NULL",
        "CREATE INDEX collections_by_project_seq ON collections (project, seq DESC)",
        """CREATE TABLE collection_items (
            collection_id TEXT NOT NULL REFERENCES collections(id),
            image_id      TEXT NOT NULL REFERENCES images(id),
            position      INTEGER NOT NULL,
            PRIMARY KEY (collection_id, image_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX collection_items_in_order ON collection_items (collection_id, position)",
    ),
    # v3: file versions. `images` holds each image's current version; `image_versions` every version
    # (the current one too), with the device that made it. A conflict copy names its origin.
    3: (
        "ALTER TABLE images ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE images ADD COLUMN conflict_of TEXT REFERENCES images(id)",
        """CREATE TABLE image_versions (
            image_id    TEXT NOT NULL REFERENCES images(id),
            version     INTEGER NOT NULL,
            project     TEXT NOT NULL,
            sha256      TEXT NOT NULL,
            filename    TEXT NOT NULL,
            size_bytes  INTEGER NOT NULL,
            width       INTEGER NOT NULL,
            height      INTEGER NOT NULL,
            format      TEXT NOT NULL,
            mime        TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            seq         INTEGER NOT NULL,
            device_id   TEXT,
            device_name TEXT,
            PRIMARY KEY (image_id, version)
        ) WITHOUT ROWID""",
        "CREATE INDEX image_versions_by_sha ON image_versions (project, sha256)",
        "INSERT INTO image_versions (image_id, version, project, sha256, filename, size_bytes, width, height,"
        " format, mime, created_at, seq) SELECT id, 1, project, sha256, filename, size_bytes, width, height,"
        " format, mime, created_at, seq FROM images",
    ),
    # v4: counting fast. The project row counts its images (kept by the writes that add and delete
    # them), so the unfiltered count reads one row; the filters join the newest-first index, so a
    # filtered count reads only the index (at 100,000 images: 9 ms, not 55) and a filtered page skips
    # rows there before it reads them.
    4: (
        "ALTER TABLE projects ADD COLUMN image_count INTEGER NOT NULL DEFAULT 0",
        "UPDATE projects SET image_count = (SELECT count(*) FROM images i WHERE i.project = projects.name)",
        "CREATE INDEX images_by_project_seq_filters ON images (project, seq DESC, rating, flag, label)",
        "DROP INDEX images_by_project_seq",
    ),
    # v5: favourites per person (`by_key` who, stably: a guest, a token, the local user; `by_name` as shown;
    # `seq` the feed entry that marked it: the order they were marked in).
    5: (
        """CREATE TABLE favorites (
            project  TEXT NOT NULL REFERENCES projects(name),
            image_id TEXT NOT NULL REFERENCES images(id),
            by_key   TEXT NOT NULL,
            by_name  TEXT NOT NULL,
            at       TEXT NOT NULL,
            seq      INTEGER NOT NULL,
            PRIMARY KEY (project, image_id, by_key)
        ) WITHOUT ROWID""",
        "CREATE INDEX favorites_by_person ON favorites (project, by_key)",
    ),
    # v6: comments on images (`reply_to` the thread's first comment; `resolved` 0 or 1; `seq` the entry that
    # wrote it: the order they were written in).
    6: (
        """CREATE TABLE comments (
            id          TEXT PRIMARY KEY,
            project     TEXT NOT NULL REFERENCES projects(name),
            image_id    TEXT NOT NULL REFERENCES images(id),
            text        TEXT NOT NULL,
            author_name TEXT NOT NULL,
            author_key  TEXT NOT NULL,
            reply_to    TEXT,
            created_at  TEXT NOT NULL,
            resolved    INTEGER NOT NULL DEFAULT 0,
            seq         INTEGER NOT NULL
        )""",
        "CREATE INDEX comments_by_image ON comments (project, image_id, seq)",
    ),
    # v7: RAW + JPEG pairs (dashboard/pairs.py). `pair_key` (folder and stem) finds a file's partner;
    # `raw_*` is a pair's RAW file beside the JPEG the row shows. A RAW's bytes are found as an image's too.
    7: (
        "ALTER TABLE images ADD COLUMN pair_key TEXT",
        "ALTER TABLE images ADD COLUMN raw_sha256 TEXT",
        "ALTER TABLE images ADD COLUMN raw_filename TEXT",
        "ALTER TABLE images ADD COLUMN raw_size_bytes INTEGER",
        "ALTER TABLE images ADD COLUMN raw_format TEXT",
        "CREATE INDEX images_by_pair_key ON images (project, pair_key) WHERE pair_key IS NOT NULL",
        "CREATE INDEX images_by_raw_sha ON images (project, raw_sha256) WHERE raw_sha256 IS NOT NULL",
    ),
}


class _ThreadReader:
    """A thread's reader connection, kept in its `threading.local`: dropped (and closed) when the thread ends."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


class SQLiteStore(SqlStore):
    """`Store` on a single SQLite file; see `dashboard.store.Store` for the contract.

    Writes run one at a time on the one writer connection (`BEGIN IMMEDIATE` under a lock), so
    locking a project needs nothing more; reads run in parallel on a connection per thread.
    """

    _FOR_UPDATE = ""  # the writer lock already runs one write transaction at a time
    # json_each: any number of ids in one bound parameter (SQLite caps the variables of a statement).
    _ID_LIST = "(SELECT key AS position, value AS image_id FROM json_each(?)) AS ids"

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir() or not path.suffix:
            path = path / "fotoflo.sqlite"
        private_dir(path.parent)
        touch_private(path)  # 0600 before SQLite makes it (its -wal and -shm copy the mode)
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        try:
            self._migrate()
        except BaseException:
            self._writer.close()
            raise
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        # Reads in flight on other threads: `close()` waits for them, since closing a connection while
        # another thread runs a statement on it crashes the process (SQLite's C code, not an exception).
        self._reading = threading.Condition()
        self._reads = 0
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        conn.execute(f"PRAGMA soft_heap_limit = {MEMORY_CAP_BYTES}")
        return conn

    def _migrate(self) -> None:
        # One transaction: a second process opening the same old file waits, then finds it current.
        with self._transaction() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this Fotoflo's {SCHEMA_VERSION}"
                )
            for step in sorted(s for s in _MIGRATIONS if s > version):
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _reader(self) -> sqlite3.Connection:
        """This thread's connection for reading, made on its first read and closed when the thread ends.

        Threads come and go (a preview sweep, a request's executor): a connection kept after its thread
        ended would hold its page cache and three file descriptors for as long as the server runs.
        """
        held: _ThreadReader | None = getattr(self._local, "reader", None)
        if held is None:
            held = _ThreadReader(self._connect())
            with self._readers_lock:
                self._readers.append(held.conn)
            self._local.reader = held
            weakref.finalize(held, self._drop_reader, held.conn).atexit = False
        return held.conn

    def _drop_reader(self, conn: sqlite3.Connection) -> None:
        """Close a reader whose thread has ended (unless `close` did)."""
        with self._readers_lock:
            if conn not in self._readers:  # (connections compare by identity)
                return
            self._readers.remove(conn)
        conn.close()

    @staticmethod
    def _id_list(image_ids: Sequence[str]) -> str:
        return json.dumps(list(image_ids))

    @contextmanager
    def _in_use(self) -> Iterator[sqlite3.Connection]:
        """The thread's reader, counted as in use until the block ends; a closed store refuses."""
        with self._reading:
            if self._closed:
                raise sqlite3.ProgrammingError(f"{self.path}: the store is closed")
            self._reads += 1
        try:
            yield self._reader()
        finally:
            with self._reading:
                self._reads -= 1
                self._reading.notify_all()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The thread's reader, outside a transaction: each statement sees the newest commit."""
        with self._in_use() as conn:
            yield conn

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several queries that see one committed state."""
        with self._in_use() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection, once the reads other threads are running have ended (at most 30 s)."""
        with self._reading:
            self._closed = True
            if not self._reading.wait_for(lambda: self._reads == 0, timeout=30):
                log.warning("%s: closed with reads still running", self.path)
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._write_lock:
            self._writer.close()
