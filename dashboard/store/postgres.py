"""`PostgresStore`: the `Store` on PostgreSQL, for several servers sharing one database.

psycopg 3 with a connection pool; the schema is migrated on start (`pg_migrations`). Every write
is one transaction that starts by locking its project's row (`SELECT … FOR UPDATE`): the writes of
a project are serialized as `SQLiteStore`'s single writer serializes them, so every rule (same
bytes, free names, edit resolution) sees the state the previous write committed. The project row
also holds the feed's counter (`UPDATE projects SET last_seq = last_seq + 1 … RETURNING`), so
sequence numbers are gap-free and seq N+1 can only commit after seq N: a reader that pages the
feed by `seq > cursor` never skips an entry that commits later.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

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
from dashboard.store.pg_migrations import migrate
from dashboard.timeutil import utc_now_iso

log = logging.getLogger("fotoflo.store")

Conn = psycopg.Connection[dict[str, Any]]

_IMAGE_COLUMNS = (
    "id, project, filename, sha256, size_bytes, width, height, format, mime, captured_at, "
    "camera_make, camera_model, exif, created_at, seq, rating, flag, label, version, conflict_of"
)
_IMAGE_NAMES = [c.strip() for c in _IMAGE_COLUMNS.split(",")]
_VERSION_COLUMNS = (
    "image_id, version, sha256, filename, size_bytes, width, height, format, mime, created_at, seq, "
    "device_id, device_name"
)
_COLLECTION_COLUMNS = "id, project, name, cover_image_id, created_at, updated_at, version, seq, deleted_at"
MAX_COPY_STEM_CHARS = 190  # so that "<name> copy" is still a valid name
_NUMBERED = re.compile(r"(.*) \((\d+)\)")
CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 5.0  # a request waits this long for a connection (the database down) before it fails


class PostgresStore:
    """`Store` on PostgreSQL at `url` (`postgresql://USER@HOST:PORT/DB`); see `dashboard.store.Store`.

    `pool_size` bounds the connections this process opens; broken connections (a database
    restart) are replaced as they are checked out, so the store recovers by itself.
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            applied = migrate(conn)
        if applied:
            log.info("migrated the PostgreSQL schema to version %d", applied[-1])
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_S, "application_name": "fotoflo"},
            check=ConnectionPool.check_connection,
            name="fotoflo-store",
            timeout=POOL_TIMEOUT_S,
            open=False,
        )
        self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
        self._closed = False

    @contextmanager
    def _transaction(self) -> Iterator[Conn]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def _snapshot(self) -> Iterator[Conn]:
        """A read transaction whose statements all see one committed state."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    # -- projects -------------------------------------------------------------------------

    def ensure_project(self, project: str) -> None:
        with self._transaction() as conn:
            _create_project(conn, project, utc_now_iso())

    def has_project(self, project: str) -> bool:
        with self._transaction() as conn:
            return conn.execute("SELECT 1 FROM projects WHERE name = %s", (project,)).fetchone() is not None

    def projects(self) -> list[str]:
        with self._transaction() as conn:
            # COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
            return [r["name"] for r in conn.execute('SELECT name FROM projects ORDER BY name COLLATE "C"')]

    @staticmethod
    def _require(conn: Conn, project: str) -> None:
        if conn.execute("SELECT 1 FROM projects WHERE name = %s", (project,)).fetchone() is None:
            raise UnknownProject(project)

    @staticmethod
    def _lock(conn: Conn, project: str) -> None:
        """Take the project's write lock (its row) for the transaction; raise `UnknownProject`."""
        if conn.execute("SELECT 1 FROM projects WHERE name = %s FOR UPDATE", (project,)).fetchone() is None:
            raise UnknownProject(project)

    # -- the feed's one writer per project ----------------------------------------------------

    @staticmethod
    def _next_seq(conn: Conn, project: str) -> int:
        row = conn.execute(
            "UPDATE projects SET last_seq = last_seq + 1 WHERE name = %s RETURNING last_seq", (project,)
        ).fetchone()
        assert row is not None
        return int(row["last_seq"])

    @staticmethod
    def _record(conn: Conn, change: Change) -> Change:
        conn.execute(
            "INSERT INTO changes (project, seq, kind, created_at, image_id, data) VALUES (%s, %s, %s, %s, %s, %s)",
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
            _create_project(conn, image.project, image.created_at)
            self._lock(conn, image.project)
            existing = _image_by_sha(conn, image.project, image.sha256)
            if existing is not None:
                return existing, None
            stored = replace(image, seq=self._next_seq(conn, image.project), version=1)
            _insert_image(conn, stored)
            _insert_version(conn, stored, stored.seq, stored.created_at, device)
            change = self._record(conn, Change(stored.project, stored.seq, IMAGE_CREATED, stored.created_at, stored))
        return stored, change

    def add_version(
        self, project: str, image_id: str, content: ImageRecord, *, base_sha256: str, device: Device | None = None
    ) -> VersionResult:
        with self._transaction() as conn:
            self._lock(conn, project)
            image = _load_image(conn, project, image_id)
            if image is None:
                raise UnknownImage(project, [image_id])
            # The order of these rules is the contract (see `Store.add_version`).
            current = _image_by_sha(conn, project, content.sha256)
            if current is not None:
                return VersionResult(current, UNCHANGED)
            if base_sha256 == image.sha256:
                return self._next_version(conn, image, content, device)
            row = conn.execute(
                f"SELECT {_IMAGE_COLUMNS} FROM images WHERE project = %s AND sha256 = %s AND conflict_of = %s",
                (project, base_sha256, image.id),
            ).fetchone()
            if row is not None:
                return self._next_version(conn, _image(row), content, device)
            earlier = _find_by_sha(conn, project, content.sha256)
            if earlier is not None:
                return VersionResult(earlier, UNCHANGED)
            # Both sides changed the same base: the newer upload becomes current, and the version it
            # would have replaced is kept as an image of its own (created after the update, so the
            # UNIQUE (project, sha256) of current versions holds at every statement).
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
        self, conn: Conn, image: ImageRecord, content: ImageRecord, device: Device | None
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
            "UPDATE images SET filename = %s, sha256 = %s, size_bytes = %s, width = %s, height = %s, format = %s,"
            " mime = %s, captured_at = %s, camera_make = %s, camera_model = %s, exif = %s, version = %s WHERE id = %s",
            (
                _text(new.filename),
                new.sha256,
                new.size_bytes,
                new.width,
                new.height,
                new.format,
                new.mime,
                _text(new.captured_at),
                _text(new.camera_make),
                _text(new.camera_model),
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
            self._require(conn, project)
            if _load_image(conn, project, image_id) is None:
                raise UnknownImage(project, [image_id])
            return _load_versions(conn, image_id)

    def get_image(self, image_id: str) -> ImageRecord | None:
        with self._transaction() as conn:
            row = conn.execute(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = %s", (image_id,)).fetchone()
        return _image(row) if row else None

    def get_images(self, project: str, image_ids: Iterable[str]) -> list[ImageRecord]:
        ids = list(image_ids)
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {_IMAGE_COLUMNS} FROM images WHERE project = %s AND id = ANY(%s)", (project, ids)
            ).fetchall()
        found = {r["id"]: _image(r) for r in rows}
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
        where, params = _filters(min_rating, flag, label)
        with self._transaction() as conn:
            self._require(conn, project)
            rows = conn.execute(
                f"SELECT {_IMAGE_COLUMNS} FROM images WHERE project = %s AND seq < %s{where}"
                " ORDER BY seq DESC LIMIT %s",
                (project, before if before is not None else 2**62, *params, limit),
            ).fetchall()
        return [_image(r) for r in rows]

    def count_images(
        self, project: str, *, min_rating: int | None = None, flag: str | None = None, label: str | None = None
    ) -> int:
        where, params = _filters(min_rating, flag, label)
        with self._transaction() as conn:
            self._require(conn, project)
            row = conn.execute(f"SELECT count(*) AS n FROM images WHERE project = %s{where}", (project, *params))
            return int(row.fetchone()["n"])  # type: ignore[index]

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
            self._lock(conn, project)
            current = _load_image(conn, project, image_id)
            if current is None:
                raise UnknownImage(project, [image_id])
            new = replace(
                current,
                rating=current.rating if rating is None else rating,
                flag=current.flag if flag is None else flag,
                label=current.label if label is None else label,
            )
            if new == current:
                return current, None
            conn.execute(
                "UPDATE images SET rating = %s, flag = %s, label = %s WHERE id = %s",
                (new.rating, new.flag, new.label, new.id),
            )
            data = {"image_id": new.id, "rating": new.rating, "flag": new.flag, "label": new.label}
            change = self._record(
                conn, Change(project, self._next_seq(conn, project), RATING_CHANGED, utc_now_iso(), data=data)
            )
        return new, change

    @staticmethod
    def _require_images(conn: Conn, project: str, image_ids: Sequence[str]) -> None:
        rows = conn.execute(
            "SELECT id FROM images WHERE project = %s AND id = ANY(%s)", (project, list(image_ids))
        ).fetchall()
        known = {r["id"] for r in rows}
        missing = [i for i in image_ids if i not in known]
        if missing:
            raise UnknownImage(project, missing)

    # -- collections ----------------------------------------------------------------------

    def get_collection(self, project: str, collection_id: str) -> CollectionRecord | None:
        with self._snapshot() as conn:
            return _load_collection(conn, project, collection_id)

    def list_collections(self, project: str) -> list[CollectionRecord]:
        # One statement, so the cards and their items are of one committed state.
        with self._transaction() as conn:
            self._require(conn, project)
            rows = conn.execute(
                f"SELECT {', '.join('c.' + c.strip() for c in _COLLECTION_COLUMNS.split(','))},"
                " coalesce((SELECT array_agg(i.image_id ORDER BY i.position) FROM collection_items i"
                " WHERE i.collection_id = c.id), '{}') AS image_ids"
                " FROM collections c WHERE c.project = %s AND c.deleted_at IS NULL ORDER BY c.seq DESC",
                (project,),
            ).fetchall()
        return [_collection(r, list(r["image_ids"])) for r in rows]

    def save_collection(self, project: str, name: str, image_ids: Sequence[str]) -> tuple[CollectionRecord, Change]:
        name = clean_name(name)
        ids = _unique(image_ids)
        with self._transaction() as conn:
            self._lock(conn, project)
            self._require_images(conn, project, ids)
            return self._create(conn, project, name, ids, None, {"op": "save"})

    def duplicate_collection(
        self, project: str, collection_id: str, name: str | None = None
    ) -> tuple[CollectionRecord, Change]:
        new_name = None if name is None else clean_name(name)
        with self._transaction() as conn:
            self._lock(conn, project)
            source = _load_collection(conn, project, collection_id)
            if source is None:
                raise UnknownCollection(collection_id)
            if source.deleted:
                raise CollectionDeleted(collection_id)
            cover = _stored_cover(conn, source.id)
            return self._create(
                conn,
                project,
                new_name or clean_name(f"{source.name[:MAX_COPY_STEM_CHARS]} copy"),
                list(source.image_ids),
                cover,
                {"op": "duplicate", "source_id": source.id},
            )

    def _create(
        self, conn: Conn, project: str, name: str, image_ids: list[str], cover: str | None, op: dict[str, Any]
    ) -> tuple[CollectionRecord, Change]:
        now = utc_now_iso()
        seq = self._next_seq(conn, project)
        collection_id = secrets.token_urlsafe(9)
        conn.execute(
            f"INSERT INTO collections ({_COLLECTION_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, 1, %s, NULL)",
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
            self._lock(conn, project)
            current = _load_collection(conn, project, collection_id)
            if current is None:
                raise UnknownCollection(collection_id)
            if current.deleted and edit.op not in ("delete", "undelete"):
                raise CollectionDeleted(collection_id)
            row = conn.execute("SELECT name, cover_image_id FROM collections WHERE id = %s", (current.id,)).fetchone()
            assert row is not None
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
                "UPDATE collections SET name = %s, cover_image_id = %s, updated_at = %s, version = version + 1,"
                " deleted_at = %s WHERE id = %s",
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

    def _resolve(self, conn: Conn, current: CollectionRecord, edit: CollectionEdit) -> dict[str, Any] | None:
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
            stored = _stored_cover(conn, current.id)
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
        with self._transaction() as conn:
            self._require(conn, project)
            rows = conn.execute(
                "SELECT c.project AS c_project, c.seq AS c_seq, c.kind, c.created_at AS c_created_at, c.data, "
                + ", ".join(f"i.{c} AS i_{c}" for c in _IMAGE_NAMES)
                + " FROM changes c LEFT JOIN images i ON i.id = c.image_id"
                " WHERE c.project = %s AND c.seq > %s ORDER BY c.seq LIMIT %s",
                (project, after, limit),
            ).fetchall()
        return [
            Change(
                project=r["c_project"],
                seq=r["c_seq"],
                kind=r["kind"],
                created_at=r["c_created_at"],
                image=_image(r, prefix="i_") if r["i_id"] is not None else None,
                data=json.loads(r["data"]),
            )
            for r in rows
        ]

    def last_seq(self, project: str) -> int:
        with self._transaction() as conn:
            row = conn.execute("SELECT last_seq FROM projects WHERE name = %s", (project,)).fetchone()
        if row is None:
            raise UnknownProject(project)
        return int(row["last_seq"])

    # -- the hot folder's one ingesting server ----------------------------------------------

    def advisory_lock(self, key: str) -> AdvisoryLock:
        """A session-level lock named `key`, held by at most one connection to this database."""
        return AdvisoryLock(self.url, key)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close()


class AdvisoryLock:
    """A PostgreSQL advisory lock on a connection of its own: held while that connection lives.

    When the holder dies (process killed, network gone), PostgreSQL ends its session and the lock
    is free for the next `try_acquire`. `held` checks the connection, so a holder that lost its
    session finds out and stops acting as the owner.
    """

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; `True` when this process holds it (now or already)."""
        if self.held():
            return True
        self.release()
        conn = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="fotoflo-lock",
            keepalives=1,
            keepalives_idle=4,
            keepalives_interval=2,
            keepalives_count=3,
        )
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self.key,)).fetchone()
        except BaseException:
            conn.close()
            raise
        if row and row[0]:
            self._conn = conn
            return True
        conn.close()
        return False

    def held(self) -> bool:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            return False
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # ending the session releases the lock


def _create_project(conn: Conn, project: str, created_at: str) -> None:
    conn.execute(
        "INSERT INTO projects (name, created_at) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING", (project, created_at)
    )


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL (SQLite can); a NUL in a file name or EXIF field becomes U+FFFD.
    return value.replace("\x00", "\ufffd") if value is not None and "\x00" in value else value


def _image(row: dict[str, Any], prefix: str = "") -> ImageRecord:
    values = {name: row[prefix + name] for name in _IMAGE_NAMES}
    values["exif"] = json.loads(values["exif"] or "{}")
    return ImageRecord(**values)


def _image_by_sha(conn: Conn, project: str, sha256: str) -> ImageRecord | None:
    """The image whose current version has these bytes."""
    row = conn.execute(
        f"SELECT {_IMAGE_COLUMNS} FROM images WHERE project = %s AND sha256 = %s", (project, sha256)
    ).fetchone()
    return _image(row) if row else None


def _load_image(conn: Conn, project: str, image_id: str) -> ImageRecord | None:
    row = conn.execute(
        f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = %s AND project = %s", (image_id, project)
    ).fetchone()
    return _image(row) if row else None


def _find_by_sha(conn: Conn, project: str, sha256: str) -> ImageRecord | None:
    """The image whose current version has these bytes, else the newest image that had them before."""
    found = _image_by_sha(conn, project, sha256)
    if found is not None:
        return found
    row = conn.execute(
        f"SELECT {', '.join('i.' + c for c in _IMAGE_NAMES)} FROM image_versions v"
        " JOIN images i ON i.id = v.image_id WHERE v.project = %s AND v.sha256 = %s ORDER BY v.seq DESC LIMIT 1",
        (project, sha256),
    ).fetchone()
    return _image(row) if row else None


def _insert_image(conn: Conn, image: ImageRecord) -> None:
    values = {**image.to_dict(), "exif": json.dumps(image.exif)}
    for name in ("filename", "captured_at", "camera_make", "camera_model"):
        values[name] = _text(values[name])
    conn.execute(
        f"INSERT INTO images ({_IMAGE_COLUMNS}) VALUES ({', '.join(['%s'] * len(_IMAGE_NAMES))})",
        [values[c] for c in _IMAGE_NAMES],
    )


def _insert_version(conn: Conn, image: ImageRecord, seq: int, created_at: str, device: Device | None) -> None:
    """Record the image's current bytes as its version `image.version`, made by `device` at feed entry `seq`."""
    conn.execute(
        f"INSERT INTO image_versions (project, {_VERSION_COLUMNS}) VALUES ({', '.join(['%s'] * 14)})",
        (
            image.project,
            image.id,
            image.version,
            image.sha256,
            _text(image.filename),
            image.size_bytes,
            image.width,
            image.height,
            image.format,
            image.mime,
            created_at,
            seq,
            device.id if device else None,
            _text(device.name) if device else None,
        ),
    )


def _load_versions(conn: Conn, image_id: str) -> list[ImageVersion]:
    rows = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM image_versions WHERE image_id = %s ORDER BY version", (image_id,)
    ).fetchall()
    return [ImageVersion(**r) for r in rows]


def _filters(min_rating: int | None, flag: str | None, label: str | None) -> tuple[str, list[Any]]:
    check_rating(min_rating, flag, label)
    where, params = "", []
    for clause, value in (("rating >= %s", min_rating), ("flag = %s", flag), ("label = %s", label)):
        if value is not None:
            where += f" AND {clause}"
            params.append(value)
    return where, params


def _unique(image_ids: Iterable[str]) -> list[str]:
    """The ids in order, each once (the first time it is named)."""
    if isinstance(image_ids, str) or not all(isinstance(i, str) for i in image_ids):
        raise InvalidValue("image_ids must be a list of image id strings")
    return list(dict.fromkeys(image_ids))


def _free_name(conn: Conn, project: str, name: str, *, exclude: str | None = None) -> str:
    """`name`, or "name (2)", "name (3)"… : the first one no other live collection of the project has."""

    def taken(candidate: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM collections WHERE project = %s AND name = %s AND deleted_at IS NULL"
            " AND id IS DISTINCT FROM %s",
            (project, candidate, exclude),
        ).fetchone()
        return row is not None

    if not taken(name):
        return name
    numbered = _NUMBERED.fullmatch(name)
    stem = numbered.group(1) if numbered else name
    n = 2
    while taken(f"{stem} ({n})"):
        n += 1
    return f"{stem} ({n})"


def _write_items(conn: Conn, collection_id: str, image_ids: list[str]) -> None:
    conn.execute("DELETE FROM collection_items WHERE collection_id = %s", (collection_id,))
    conn.execute(
        "INSERT INTO collection_items (collection_id, image_id, position)"
        " SELECT %s, t.image_id, t.n - 1 FROM unnest(%s::text[]) WITH ORDINALITY AS t(image_id, n)",
        (collection_id, image_ids),
    )


def _stored_cover(conn: Conn, collection_id: str) -> str | None:
    row = conn.execute("SELECT cover_image_id FROM collections WHERE id = %s", (collection_id,)).fetchone()
    return row["cover_image_id"] if row else None


def _load_collection(conn: Conn, project: str, collection_id: str) -> CollectionRecord | None:
    row = conn.execute(
        f"SELECT {_COLLECTION_COLUMNS} FROM collections WHERE id = %s AND project = %s", (collection_id, project)
    ).fetchone()
    if row is None:
        return None
    items = conn.execute(
        "SELECT image_id FROM collection_items WHERE collection_id = %s ORDER BY position", (collection_id,)
    ).fetchall()
    return _collection(row, [r["image_id"] for r in items])


def _collection(row: dict[str, Any], image_ids: list[str]) -> CollectionRecord:
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
