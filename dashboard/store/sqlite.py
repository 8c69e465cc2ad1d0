"""The embedded store: one SQLite file in WAL mode, one writer, readers in parallel."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dashboard.events import IMAGE_CREATED, Change, ImageRecord
from dashboard.store import UnknownProject
from dashboard.timeutil import utc_now_iso

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    name       TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    last_seq   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS images (
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
);
CREATE INDEX IF NOT EXISTS images_by_project_seq ON images (project, seq DESC);
CREATE TABLE IF NOT EXISTS changes (
    project    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    image_id   TEXT,
    data       TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (project, seq)
) WITHOUT ROWID;
"""

_IMAGE_COLUMNS = (
    "id, project, filename, sha256, size_bytes, width, height, format, mime, captured_at, "
    "camera_make, camera_model, exif, created_at, seq"
)


class SQLiteStore:
    """`Store` on a single SQLite file; see `dashboard.store.Store` for the contract."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir() or not path.suffix:
            path = path / "fotoflo.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        with self._writer:
            self._writer.executescript(SCHEMA)
            self._writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

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

    # -- projects -------------------------------------------------------------------------

    def ensure_project(self, project: str) -> None:
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO projects (name, created_at) VALUES (?, ?)", (project, utc_now_iso()))

    def has_project(self, project: str) -> bool:
        row = self._reader().execute("SELECT 1 FROM projects WHERE name = ?", (project,)).fetchone()
        return row is not None

    def projects(self) -> list[str]:
        return [r[0] for r in self._reader().execute("SELECT name FROM projects ORDER BY name")]

    def _require(self, project: str) -> None:
        if not self.has_project(project):
            raise UnknownProject(project)

    # -- images ---------------------------------------------------------------------------

    def find_by_sha(self, project: str, sha256: str) -> ImageRecord | None:
        row = (
            self._reader()
            .execute(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE project = ? AND sha256 = ?", (project, sha256))
            .fetchone()
        )
        return _image(row) if row else None

    def add_image(self, image: ImageRecord) -> tuple[ImageRecord, Change | None]:
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT {_IMAGE_COLUMNS} FROM images WHERE project = ? AND sha256 = ?",
                (image.project, image.sha256),
            ).fetchone()
            if row is not None:
                return _image(row), None
            conn.execute(
                "INSERT OR IGNORE INTO projects (name, created_at) VALUES (?, ?)",
                (image.project, image.created_at),
            )
            seq = conn.execute(
                "UPDATE projects SET last_seq = last_seq + 1 WHERE name = ? RETURNING last_seq",
                (image.project,),
            ).fetchone()[0]
            stored = image.with_seq(seq)
            conn.execute(
                f"INSERT INTO images ({_IMAGE_COLUMNS}) VALUES ({', '.join('?' * 15)})",
                (
                    stored.id,
                    stored.project,
                    stored.filename,
                    stored.sha256,
                    stored.size_bytes,
                    stored.width,
                    stored.height,
                    stored.format,
                    stored.mime,
                    stored.captured_at,
                    stored.camera_make,
                    stored.camera_model,
                    json.dumps(stored.exif),
                    stored.created_at,
                    stored.seq,
                ),
            )
            change = Change(
                project=stored.project, seq=seq, kind=IMAGE_CREATED, created_at=stored.created_at, image=stored
            )
            conn.execute(
                "INSERT INTO changes (project, seq, kind, created_at, image_id) VALUES (?, ?, ?, ?, ?)",
                (change.project, change.seq, change.kind, change.created_at, stored.id),
            )
        return stored, change

    def get_image(self, image_id: str) -> ImageRecord | None:
        row = self._reader().execute(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ?", (image_id,)).fetchone()
        return _image(row) if row else None

    def list_images(self, project: str, *, before: int | None = None, limit: int = 100) -> list[ImageRecord]:
        self._require(project)
        rows = self._reader().execute(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE project = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            (project, before if before is not None else 2**62, limit),
        )
        return [_image(r) for r in rows]

    def count_images(self, project: str) -> int:
        self._require(project)
        return int(self._reader().execute("SELECT count(*) FROM images WHERE project = ?", (project,)).fetchone()[0])

    # -- feed -----------------------------------------------------------------------------

    def changes(self, project: str, *, after: int = 0, limit: int = 500) -> list[Change]:
        self._require(project)
        rows = self._reader().execute(
            "SELECT c.project, c.seq, c.kind, c.created_at, c.data, "
            + ", ".join(f"i.{c.strip()} AS i_{c.strip()}" for c in _IMAGE_COLUMNS.split(","))
            + " FROM changes c LEFT JOIN images i ON i.id = c.image_id"
            " WHERE c.project = ? AND c.seq > ? ORDER BY c.seq LIMIT ?",
            (project, after, limit),
        )
        out = []
        for r in rows:
            image = _image(r, prefix="i_") if r["i_id"] is not None else None
            out.append(
                Change(
                    project=r["project"],
                    seq=r["seq"],
                    kind=r["kind"],
                    created_at=r["created_at"],
                    image=image,
                    data=json.loads(r["data"]),
                )
            )
        return out

    def last_seq(self, project: str) -> int:
        row = self._reader().execute("SELECT last_seq FROM projects WHERE name = ?", (project,)).fetchone()
        if row is None:
            raise UnknownProject(project)
        return int(row[0])

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._write_lock:
            self._writer.close()


def _image(row: sqlite3.Row, prefix: str = "") -> ImageRecord:
    def col(name: str) -> Any:
        return row[prefix + name]

    return ImageRecord(
        id=col("id"),
        project=col("project"),
        filename=col("filename"),
        sha256=col("sha256"),
        size_bytes=col("size_bytes"),
        width=col("width"),
        height=col("height"),
        format=col("format"),
        mime=col("mime"),
        captured_at=col("captured_at"),
        camera_make=col("camera_make"),
        camera_model=col("camera_model"),
        created_at=col("created_at"),
        seq=col("seq"),
        exif=json.loads(col("exif") or "{}"),
    )
