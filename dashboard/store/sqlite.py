"""The embedded store: one SQLite file in WAL mode, one writer, readers in parallel."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from dashboard.events import (
    COLLECTION_DELETED,
    COLLECTION_SAVED,
    COLLECTION_UPDATED,
    IMAGE_CREATED,
    IMAGE_UPDATED,
    RATING_CHANGED,
    Change,
    CollectionRecord,
    Device,
    ImageRecord,
    ImageVersion,
    apply_collection_change,
)
from dashboard.store import (
    CONFLICT,
    EDIT_OPS,
    UNCHANGED,
    UPDATED,
    CollectionDeleted,
    CollectionEdit,
    InvalidValue,
    NotInCollection,
    UnknownCollection,
    UnknownImage,
    UnknownProject,
    VersionResult,
    check_rating,
    clean_name,
    conflict_name,
)
from dashboard.timeutil import utc_now_iso

#: `PRAGMA user_version` of a current database; opening an older one runs the missing steps.
SCHEMA_VERSION = 3

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
}

_IMAGE_COLUMNS = (
    "id, project, filename, sha256, size_bytes, width, height, format, mime, captured_at, "
    "camera_make, camera_model, exif, created_at, seq, rating, flag, label, version, conflict_of"
)
_VERSION_COLUMNS = (
    "image_id, version, sha256, filename, size_bytes, width, height, format, mime, created_at, seq, "
    "device_id, device_name"
)
_COLLECTION_COLUMNS = "id, project, name, cover_image_id, created_at, updated_at, version, seq, deleted_at"
MAX_COPY_STEM_CHARS = 190  # so that "<name> copy" is still a valid name
_CHUNK = 500  # ids per `IN (...)`: well under SQLite's limit on bound variables
_NUMBERED = re.compile(r"(.*) \((\d+)\)")


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
        try:
            self._migrate()
        except BaseException:
            self._writer.close()
            raise
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _migrate(self) -> None:
        # One transaction: a second process opening the same old file waits, then finds it current.
        with self._transaction() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this Fotoflo's {SCHEMA_VERSION}"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several queries that see one committed state."""
        conn = self._reader()
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

    # -- projects -------------------------------------------------------------------------

    def ensure_project(self, project: str) -> None:
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO projects (name, created_at) VALUES (?, ?)", (project, utc_now_iso()))

    def has_project(self, project: str) -> bool:
        row = self._reader().execute("SELECT 1 FROM projects WHERE name = ?", (project,)).fetchone()
        return row is not None

    def projects(self) -> list[str]:
        return [r[0] for r in self._reader().execute("SELECT name FROM projects ORDER BY name")]

    def _require(self, project: str, conn: sqlite3.Connection | None = None) -> None:
        row = (conn or self._reader()).execute("SELECT 1 FROM projects WHERE name = ?", (project,)).fetchone()
        if row is None:
            raise UnknownProject(project)

    # -- the feed's one writer --------------------------------------------------------------

    @staticmethod
    def _next_seq(conn: sqlite3.Connection, project: str) -> int:
        return int(
            conn.execute(
                "UPDATE projects SET last_seq = last_seq + 1 WHERE name = ? RETURNING last_seq", (project,)
            ).fetchone()[0]
        )

    @staticmethod
    def _record(conn: sqlite3.Connection, change: Change) -> Change:
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

    # -- images ---------------------------------------------------------------------------

    def find_by_sha(self, project: str, sha256: str) -> ImageRecord | None:
        with self._snapshot() as conn:
            return _find_by_sha(conn, project, sha256)

    def add_image(self, image: ImageRecord, *, device: Device | None = None) -> tuple[ImageRecord, Change | None]:
        check_rating(image.rating, image.flag, image.label)
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT {_IMAGE_COLUMNS} FROM images WHERE project = ? AND sha256 = ?", (image.project, image.sha256)
            ).fetchone()
            if row is not None:
                return _image(row), None
            conn.execute(
                "INSERT OR IGNORE INTO projects (name, created_at) VALUES (?, ?)",
                (image.project, image.created_at),
            )
            stored = replace(image, seq=self._next_seq(conn, image.project), version=1)
            _insert_image(conn, stored)
            _insert_version(conn, stored, stored.seq, stored.created_at, device)
            change = self._record(conn, Change(stored.project, stored.seq, IMAGE_CREATED, stored.created_at, stored))
        return stored, change

    def add_version(
        self, project: str, image_id: str, content: ImageRecord, *, base_sha256: str, device: Device | None = None
    ) -> VersionResult:
        with self._transaction() as conn:
            self._require(project, conn)
            image = _load_image(conn, project, image_id)
            if image is None:
                raise UnknownImage(project, [image_id])
            # The order of these rules is the contract (see `Store.add_version`).
            row = conn.execute(
                f"SELECT {_IMAGE_COLUMNS} FROM images WHERE project = ? AND sha256 = ?", (project, content.sha256)
            ).fetchone()
            if row is not None:
                return VersionResult(_image(row), UNCHANGED)
            if base_sha256 == image.sha256:
                return self._next_version(conn, image, content, device)
            copy = conn.execute(
                f"SELECT {_IMAGE_COLUMNS} FROM images WHERE project = ? AND sha256 = ? AND conflict_of = ?",
                (project, base_sha256, image.id),
            ).fetchone()
            if copy is not None:
                return self._next_version(conn, _image(copy), content, device)
            earlier = _find_by_sha(conn, project, content.sha256)
            if earlier is not None:
                return VersionResult(earlier, UNCHANGED)
            # Both sides changed the same base: the newer upload becomes current, and the version
            # it would have replaced is kept as an image of its own (created after the update, so
            # the UNIQUE (project, sha256) of current versions holds at every statement).
            loser = _load_versions(conn, image.id)[-1]
            updated = self._next_version(conn, image, content, device)
            now = utc_now_iso()
            seq = self._next_seq(conn, project)
            kept = replace(
                image,
                id=secrets.token_urlsafe(9),
                filename=conflict_name(image.filename, loser.device_name, loser.created_at),
                created_at=now,
                seq=seq,
                rating=0,
                flag="none",
                label="none",
                version=1,
                conflict_of=image.id,
            )
            _insert_image(conn, kept)
            loser_device = Device(loser.device_id, loser.device_name or "") if loser.device_id else None
            _insert_version(conn, kept, seq, loser.created_at, loser_device)
            created = self._record(conn, Change(project, seq, IMAGE_CREATED, now, kept))
            return VersionResult(updated.image, CONFLICT, kept, (*updated.changes, created))

    def _next_version(
        self, conn: sqlite3.Connection, image: ImageRecord, content: ImageRecord, device: Device | None
    ) -> VersionResult:
        """Write `content` as the image's next version with its `image.updated` entry (in the caller's transaction)."""
        new = replace(
            content,
            id=image.id,
            project=image.project,
            created_at=image.created_at,
            seq=image.seq,
            rating=image.rating,
            flag=image.flag,
            label=image.label,
            version=image.version + 1,
            conflict_of=image.conflict_of,
        )
        conn.execute(
            "UPDATE images SET filename = ?, sha256 = ?, size_bytes = ?, width = ?, height = ?, format = ?,"
            " mime = ?, captured_at = ?, camera_make = ?, camera_model = ?, exif = ?, version = ? WHERE id = ?",
            (
                new.filename,
                new.sha256,
                new.size_bytes,
                new.width,
                new.height,
                new.format,
                new.mime,
                new.captured_at,
                new.camera_make,
                new.camera_model,
                json.dumps(new.exif),
                new.version,
                new.id,
            ),
        )
        seq = self._next_seq(conn, image.project)
        _insert_version(conn, new, seq, content.created_at, device)
        change = self._record(conn, Change(image.project, seq, IMAGE_UPDATED, content.created_at, new))
        return VersionResult(new, UPDATED, None, (change,))

    def image_versions(self, project: str, image_id: str) -> list[ImageVersion]:
        with self._snapshot() as conn:
            self._require(project, conn)
            if _load_image(conn, project, image_id) is None:
                raise UnknownImage(project, [image_id])
            return _load_versions(conn, image_id)

    def get_image(self, image_id: str) -> ImageRecord | None:
        row = self._reader().execute(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ?", (image_id,)).fetchone()
        return _image(row) if row else None

    def get_images(self, project: str, image_ids: Iterable[str]) -> list[ImageRecord]:
        ids = list(image_ids)
        found: dict[str, ImageRecord] = {}
        conn = self._reader()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = conn.execute(
                f"SELECT {_IMAGE_COLUMNS} FROM images WHERE project = ? AND id IN ({', '.join('?' * len(chunk))})",
                (project, *chunk),
            )
            found.update((r["id"], _image(r)) for r in rows)
        return [found[i] for i in ids if i in found]

    def list_images(
        self,
        project: str,
        *,
        before: int | None = None,
        limit: int = 100,
        min_rating: int | None = None,
        flag: str | None = None,
        label: str | None = None,
    ) -> list[ImageRecord]:
        self._require(project)
        where, params = _filters(min_rating, flag, label)
        rows = self._reader().execute(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE project = ? AND seq < ?{where} ORDER BY seq DESC LIMIT ?",
            (project, before if before is not None else 2**62, *params, limit),
        )
        return [_image(r) for r in rows]

    def count_images(
        self, project: str, *, min_rating: int | None = None, flag: str | None = None, label: str | None = None
    ) -> int:
        self._require(project)
        where, params = _filters(min_rating, flag, label)
        row = self._reader().execute(f"SELECT count(*) FROM images WHERE project = ?{where}", (project, *params))
        return int(row.fetchone()[0])

    def set_rating(
        self,
        project: str,
        image_id: str,
        *,
        rating: int | None = None,
        flag: str | None = None,
        label: str | None = None,
    ) -> tuple[ImageRecord, Change | None]:
        check_rating(rating, flag, label)
        with self._transaction() as conn:
            self._require(project, conn)
            row = conn.execute(
                f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ? AND project = ?", (image_id, project)
            ).fetchone()
            if row is None:
                raise UnknownImage(project, [image_id])
            current = _image(row)
            new = replace(
                current,
                rating=current.rating if rating is None else rating,
                flag=current.flag if flag is None else flag,
                label=current.label if label is None else label,
            )
            if new == current:
                return current, None
            conn.execute(
                "UPDATE images SET rating = ?, flag = ?, label = ? WHERE id = ?",
                (new.rating, new.flag, new.label, new.id),
            )
            data = {"image_id": new.id, "rating": new.rating, "flag": new.flag, "label": new.label}
            change = self._record(
                conn, Change(project, self._next_seq(conn, project), RATING_CHANGED, utc_now_iso(), data=data)
            )
        return new, change

    def _require_images(self, conn: sqlite3.Connection, project: str, image_ids: Sequence[str]) -> None:
        known: set[str] = set()
        for start in range(0, len(image_ids), _CHUNK):
            chunk = image_ids[start : start + _CHUNK]
            rows = conn.execute(
                f"SELECT id FROM images WHERE project = ? AND id IN ({', '.join('?' * len(chunk))})",
                (project, *chunk),
            )
            known.update(r[0] for r in rows)
        missing = [i for i in image_ids if i not in known]
        if missing:
            raise UnknownImage(project, missing)

    # -- collections ----------------------------------------------------------------------

    def get_collection(self, project: str, collection_id: str) -> CollectionRecord | None:
        with self._snapshot() as conn:
            return _load_collection(conn, project, collection_id)

    def list_collections(self, project: str) -> list[CollectionRecord]:
        with self._snapshot() as conn:
            self._require(project, conn)
            rows = conn.execute(
                f"SELECT {_COLLECTION_COLUMNS} FROM collections WHERE project = ? AND deleted_at IS NULL"
                " ORDER BY seq DESC",
                (project,),
            ).fetchall()
            items: dict[str, list[str]] = {r["id"]: [] for r in rows}
            for collection_id, image_id in conn.execute(
                "SELECT i.collection_id, i.image_id FROM collection_items i JOIN collections c"
                " ON c.id = i.collection_id WHERE c.project = ? AND c.deleted_at IS NULL"
                " ORDER BY i.collection_id, i.position",
                (project,),
            ):
                items[collection_id].append(image_id)
        return [_collection(r, items[r["id"]]) for r in rows]

    def save_collection(self, project: str, name: str, image_ids: Sequence[str]) -> tuple[CollectionRecord, Change]:
        name = clean_name(name)
        ids = _unique(image_ids)
        with self._transaction() as conn:
            self._require(project, conn)
            self._require_images(conn, project, ids)
            return self._create(conn, project, name, ids, None, {"op": "save"})

    def duplicate_collection(
        self, project: str, collection_id: str, name: str | None = None
    ) -> tuple[CollectionRecord, Change]:
        new_name = None if name is None else clean_name(name)
        with self._transaction() as conn:
            self._require(project, conn)
            source = _load_collection(conn, project, collection_id)
            if source is None:
                raise UnknownCollection(collection_id)
            if source.deleted:
                raise CollectionDeleted(collection_id)
            cover = conn.execute("SELECT cover_image_id FROM collections WHERE id = ?", (source.id,)).fetchone()[0]
            return self._create(
                conn,
                project,
                new_name or clean_name(f"{source.name[:MAX_COPY_STEM_CHARS]} copy"),
                list(source.image_ids),
                cover,
                {"op": "duplicate", "source_id": source.id},
            )

    def _create(
        self,
        conn: sqlite3.Connection,
        project: str,
        name: str,
        image_ids: list[str],
        cover: str | None,
        op: dict[str, Any],
    ) -> tuple[CollectionRecord, Change]:
        now = utc_now_iso()
        seq = self._next_seq(conn, project)
        collection_id = secrets.token_urlsafe(9)
        conn.execute(
            f"INSERT INTO collections ({_COLLECTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 1, ?, NULL)",
            (collection_id, project, _free_name(conn, project, name), cover, now, now, seq),
        )
        _write_items(conn, collection_id, image_ids)
        record = _load_collection(conn, project, collection_id)
        assert record is not None
        data = {**op, **record.card(), "image_ids": list(record.image_ids)}
        return record, self._record(conn, Change(project, seq, COLLECTION_SAVED, now, data=data))

    def edit_collection(
        self, project: str, collection_id: str, edit: CollectionEdit
    ) -> tuple[CollectionRecord, Change | None]:
        if edit.op not in EDIT_OPS:
            raise InvalidValue(f"op must be one of {', '.join(EDIT_OPS)}, not {edit.op!r}")
        with self._transaction() as conn:
            self._require(project, conn)
            current = _load_collection(conn, project, collection_id)
            if current is None:
                raise UnknownCollection(collection_id)
            if current.deleted and edit.op not in ("delete", "undelete"):
                raise CollectionDeleted(collection_id)
            row = conn.execute("SELECT name, cover_image_id FROM collections WHERE id = ?", (current.id,)).fetchone()
            name, cover = row["name"], row["cover_image_id"]
            deleted = current.deleted
            resolved = self._resolve(conn, current, edit)
            if resolved is None:
                return current, None
            if edit.op == "delete":
                deleted = True
            elif edit.op == "undelete":
                deleted = False
                name = _free_name(conn, project, name, exclude=current.id)
            elif edit.op == "rename":
                name = resolved.pop("name")
            elif edit.op == "cover":
                cover = resolved.pop("cover")
            elif edit.op == "remove" and cover in resolved["image_ids"]:
                cover = None  # back to the first image, rather than a cover outside the collection
            ids = list(current.image_ids)
            if edit.op in ("add", "remove", "move"):
                ids = apply_collection_change(ids, {"op": edit.op, **resolved})
                _write_items(conn, current.id, ids)
            now = utc_now_iso()
            conn.execute(
                "UPDATE collections SET name = ?, cover_image_id = ?, updated_at = ?, version = version + 1,"
                " deleted_at = ? WHERE id = ?",
                (name, cover, now, now if deleted else None, current.id),
            )
            record = _load_collection(conn, project, current.id)
            assert record is not None
            if edit.op == "undelete":
                resolved["image_ids"] = list(record.image_ids)
            kind = COLLECTION_DELETED if edit.op == "delete" else COLLECTION_UPDATED
            data = {"op": edit.op, **record.card(), **resolved}
            change = self._record(conn, Change(project, self._next_seq(conn, project), kind, now, data=data))
        return record, change

    def _resolve(
        self, conn: sqlite3.Connection, current: CollectionRecord, edit: CollectionEdit
    ) -> dict[str, Any] | None:
        """The edit as it applies to the current state (the op's fields of its change), or `None` for a no-op."""
        project, ids = current.project, list(current.image_ids)
        if edit.op == "delete":
            return None if current.deleted else {}
        if edit.op == "undelete":
            return {} if current.deleted else None
        if edit.op == "rename":
            name = clean_name(edit.name)
            if name == current.name:
                return None
            name = _free_name(conn, project, name, exclude=current.id)
            return None if name == current.name else {"name": name}
        if edit.op == "cover":
            stored = conn.execute("SELECT cover_image_id FROM collections WHERE id = ?", (current.id,)).fetchone()[0]
            if edit.image_id is not None:
                self._require_images(conn, project, [edit.image_id])
                if edit.image_id not in ids:
                    raise NotInCollection(f"image {edit.image_id!r} is not in collection {current.id!r}")
            return None if edit.image_id == stored else {"cover": edit.image_id}
        asked = _unique(edit.image_ids)
        if edit.index is not None and (edit.op != "add" or edit.before is not None):
            raise InvalidValue("index is only for add, and not together with before")
        if edit.before is not None and (edit.op == "remove" or edit.before in asked):
            raise InvalidValue("before must be another image of the collection, and only for add or move")
        self._require_images(conn, project, asked + ([edit.before] if edit.before is not None else []))
        members = set(ids)
        if edit.op == "add":
            added = [i for i in asked if i not in members]
            if not added:
                return None
            if edit.index is not None:
                index = min(max(edit.index, 0), len(ids))
            else:
                index = ids.index(edit.before) if edit.before in members else len(ids)
            return {"image_ids": added, "index": index}
        if edit.op == "remove":
            gone = set(asked)
            removed = [i for i in ids if i in gone]
            return {"image_ids": removed} if removed else None
        # move
        moved = [i for i in asked if i in members]  # one removed meanwhile stays removed
        rest = [i for i in ids if i not in set(moved)]
        index = rest.index(edit.before) if edit.before in rest else len(rest)
        change = {"image_ids": moved, "index": index}
        if not moved or apply_collection_change(ids, {"op": "move", **change}) == ids:
            return None
        return change

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
        rating=col("rating"),
        flag=col("flag"),
        label=col("label"),
        version=col("version"),
        conflict_of=col("conflict_of"),
    )


def _load_image(conn: sqlite3.Connection, project: str, image_id: str) -> ImageRecord | None:
    row = conn.execute(
        f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ? AND project = ?", (image_id, project)
    ).fetchone()
    return _image(row) if row else None


def _find_by_sha(conn: sqlite3.Connection, project: str, sha256: str) -> ImageRecord | None:
    """The image whose current version has these bytes, else the newest image that had them before."""
    row = conn.execute(
        f"SELECT {_IMAGE_COLUMNS} FROM images WHERE project = ? AND sha256 = ?", (project, sha256)
    ).fetchone()
    if row is None:
        row = conn.execute(
            f"SELECT {', '.join('i.' + c.strip() for c in _IMAGE_COLUMNS.split(','))} FROM image_versions v"
            " JOIN images i ON i.id = v.image_id WHERE v.project = ? AND v.sha256 = ? ORDER BY v.seq DESC LIMIT 1",
            (project, sha256),
        ).fetchone()
    return _image(row) if row else None


def _insert_image(conn: sqlite3.Connection, image: ImageRecord) -> None:
    columns = [c.strip() for c in _IMAGE_COLUMNS.split(",")]
    values = {**image.to_dict(), "exif": json.dumps(image.exif)}
    conn.execute(
        f"INSERT INTO images ({_IMAGE_COLUMNS}) VALUES ({', '.join('?' * len(columns))})",
        [values[c] for c in columns],
    )


def _insert_version(
    conn: sqlite3.Connection, image: ImageRecord, seq: int, created_at: str, device: Device | None
) -> None:
    """Record the image's current bytes as its version `image.version`, made by `device` at feed entry `seq`."""
    conn.execute(
        f"INSERT INTO image_versions (project, {_VERSION_COLUMNS}) VALUES ({', '.join('?' * 14)})",
        (
            image.project,
            image.id,
            image.version,
            image.sha256,
            image.filename,
            image.size_bytes,
            image.width,
            image.height,
            image.format,
            image.mime,
            created_at,
            seq,
            device.id if device else None,
            device.name if device else None,
        ),
    )


def _load_versions(conn: sqlite3.Connection, image_id: str) -> list[ImageVersion]:
    rows = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM image_versions WHERE image_id = ? ORDER BY version", (image_id,)
    )
    return [ImageVersion(**dict(r)) for r in rows]


def _filters(min_rating: int | None, flag: str | None, label: str | None) -> tuple[str, list[Any]]:
    check_rating(min_rating, flag, label)
    where, params = "", []
    for clause, value in (("rating >= ?", min_rating), ("flag = ?", flag), ("label = ?", label)):
        if value is not None:
            where += f" AND {clause}"
            params.append(value)
    return where, params


def _unique(image_ids: Iterable[str]) -> list[str]:
    """The ids in order, each once (the first time it is named)."""
    if isinstance(image_ids, str) or not all(isinstance(i, str) for i in image_ids):
        raise InvalidValue("image_ids must be a list of image id strings")
    return list(dict.fromkeys(image_ids))


def _free_name(conn: sqlite3.Connection, project: str, name: str, *, exclude: str | None = None) -> str:
    """`name`, or "name (2)", "name (3)"… : the first one no other live collection of the project has."""

    def taken(candidate: str) -> bool:
        return (
            conn.execute(
                "SELECT 1 FROM collections WHERE project = ? AND name = ? AND deleted_at IS NULL AND id IS NOT ?",
                (project, candidate, exclude),
            ).fetchone()
            is not None
        )

    if not taken(name):
        return name
    numbered = _NUMBERED.fullmatch(name)
    stem = numbered.group(1) if numbered else name
    n = 2
    while taken(f"{stem} ({n})"):
        n += 1
    return f"{stem} ({n})"


def _write_items(conn: sqlite3.Connection, collection_id: str, image_ids: list[str]) -> None:
    conn.execute("DELETE FROM collection_items WHERE collection_id = ?", (collection_id,))
    conn.executemany(
        "INSERT INTO collection_items (collection_id, image_id, position) VALUES (?, ?, ?)",
        [(collection_id, image_id, position) for position, image_id in enumerate(image_ids)],
    )


def _load_collection(conn: sqlite3.Connection, project: str, collection_id: str) -> CollectionRecord | None:
    row = conn.execute(
        f"SELECT {_COLLECTION_COLUMNS} FROM collections WHERE id = ? AND project = ?", (collection_id, project)
    ).fetchone()
    if row is None:
        return None
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT image_id FROM collection_items WHERE collection_id = ? ORDER BY position", (collection_id,)
        )
    ]
    return _collection(row, ids)


def _collection(row: sqlite3.Row, image_ids: list[str]) -> CollectionRecord:
    cover = row["cover_image_id"]
    if cover not in image_ids:
        cover = image_ids[0] if image_ids else None
    return CollectionRecord(
        id=row["id"],
        project=row["project"],
        name=row["name"],
        image_ids=tuple(image_ids),
        cover_image_id=cover,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
        seq=row["seq"],
        deleted=row["deleted_at"] is not None,
    )
