"""`SqlStore`: the `Store`'s rules and SQL, written once for `SQLiteStore` and `PostgresStore`.

A subclass brings the database: its connections (`_read`, `_snapshot`, `_transaction`), how a write
locks its project (`_FOR_UPDATE`), how a list of ids is bound (`_ID_LIST`, `_id_list`) and what
text a column can hold (`_text`). The SQL here runs on both engines as written: `?` placeholders
(`PostgresStore`'s connections turn them into `%s`, so no statement holds a literal `?` or `%`),
`INSERT … ON CONFLICT DO NOTHING`, `UPDATE … RETURNING`, and rows read by column name.

Every write is one transaction that first locks its project (`_lock`), so each rule sees the state
the project's previous write committed, and its feed entry takes the project's next `seq` in that
same transaction (`_next_seq`): sequence numbers stay gap-free and commit in order.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from dashboard.events import (
    COLLECTION_DELETED,
    COLLECTION_SAVED,
    COLLECTION_UPDATED,
    IMAGE_CREATED,
    IMAGE_DELETED,
    IMAGE_UPDATED,
    RATING_CHANGED,
    Change,
    CollectionRecord,
    Device,
    ImageRecord,
    ImageVersion,
    apply_collection_change,
    new_id,
)
from dashboard.store import (
    CONFLICT,
    EDIT_OPS,
    UNCHANGED,
    UPDATED,
    CollectionDeleted,
    CollectionEdit,
    ImageFilters,
    InvalidValue,
    NotInCollection,
    UnknownCollection,
    UnknownImage,
    UnknownProject,
    VersionChanged,
    VersionResult,
    check_rating,
    clean_name,
    conflict_name,
)
from dashboard.store.records import (
    COLLECTION_COLUMNS,
    IMAGE_COLUMNS,
    IMAGE_NAMES,
    VERSION_COLUMNS,
    Connection,
    create_project,
    find_image_by_sha,
    image_by_sha,
    image_from_row,
    load_changes,
    load_collection,
    load_image,
    load_live_collections,
    load_versions,
    stored_cover,
)
from dashboard.timeutil import utc_now_iso

#: What a new version of an image replaces; the rest (id, ratings, `seq`…) stays the image's.
_CONTENT_NAMES = (
    "filename", "sha256", "size_bytes", "width", "height", "format", "mime", "captured_at",
    "camera_make", "camera_model", "exif", "version",
)  # fmt: skip
_TEXT_NAMES = ("filename", "captured_at", "camera_make", "camera_model")  # free text from files and devices
MAX_COPY_STEM_CHARS = 190  # so that "<name> copy" is still a valid name
_NUMBERED = re.compile(r"(.*) \((\d+)\)")
_NEWEST = 2**62  # `list_images(before=None)`: above every seq


class SqlStore(ABC):
    """The `Store` contract (see `dashboard.store.Store`) on the tables both engines migrate to."""

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

    # -- images ---------------------------------------------------------------------------

    def find_by_sha(self, project: str, sha256: str) -> ImageRecord | None:
        with self._snapshot() as conn:
            return find_image_by_sha(conn, project, sha256)

    def add_image(self, image: ImageRecord, *, device: Device | None = None) -> tuple[ImageRecord, Change | None]:
        check_rating(image.rating, image.flag, image.label)
        with self._transaction() as conn:
            create_project(conn, image.project, image.created_at)
            self._lock(conn, image.project)
            existing = image_by_sha(conn, image.project, image.sha256)
            if existing is not None:
                return existing, None
            stored = replace(image, seq=self._next_seq(conn, image.project), version=1)
            self._insert_image(conn, stored)
            self._insert_version(conn, stored, stored.seq, stored.created_at, device)
            change = self._record(conn, Change(stored.project, stored.seq, IMAGE_CREATED, stored.created_at, stored))
        return stored, change

    def add_version(
        self, project: str, image_id: str, content: ImageRecord, *, base_sha256: str, device: Device | None = None
    ) -> VersionResult:
        with self._transaction() as conn:
            self._lock(conn, project)
            image = load_image(conn, project, image_id)
            if image is None:
                raise UnknownImage(project, [image_id])
            # The order of these rules is the contract (see `Store.add_version`).
            current = image_by_sha(conn, project, content.sha256)
            if current is not None:
                return VersionResult(current, UNCHANGED)
            if base_sha256 == image.sha256:
                return self._next_version(conn, image, content, device)
            row = conn.execute(
                f"SELECT {IMAGE_COLUMNS} FROM images WHERE project = ? AND sha256 = ? AND conflict_of = ?",
                (project, base_sha256, image.id),
            ).fetchone()
            if row is not None:
                return self._next_version(conn, image_from_row(row), content, device)
            earlier = find_image_by_sha(conn, project, content.sha256)
            if earlier is not None:
                return VersionResult(earlier, UNCHANGED)
            # Both sides changed the same base: the newer upload becomes current, and the version it
            # would have replaced is kept as an image of its own (created after the update, so the
            # UNIQUE (project, sha256) of current versions holds at every statement).
            loser = load_versions(conn, image.id)[-1]
            updated = self._next_version(conn, image, content, device)
            now = utc_now_iso()
            seq = self._next_seq(conn, project)
            kept = replace(
                image,
                id=new_id(),
                filename=conflict_name(image.filename, loser.device_name, loser.created_at),
                created_at=now,
                seq=seq,
                rating=0,
                flag="none",
                label="none",
                version=1,
                conflict_of=image.id,
            )
            self._insert_image(conn, kept)
            loser_device = Device(loser.device_id, loser.device_name or "") if loser.device_id else None
            self._insert_version(conn, kept, seq, loser.created_at, loser_device)
            created = self._record(conn, Change(project, seq, IMAGE_CREATED, now, kept))
            return VersionResult(updated.image, CONFLICT, kept, (*updated.changes, created))

    def _next_version(
        self, conn: Connection, image: ImageRecord, content: ImageRecord, device: Device | None
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
        values = self._image_values(new)
        conn.execute(
            f"UPDATE images SET {', '.join(f'{c} = ?' for c in _CONTENT_NAMES)} WHERE id = ?",
            [*(values[c] for c in _CONTENT_NAMES), new.id],
        )
        seq = self._next_seq(conn, image.project)
        self._insert_version(conn, new, seq, content.created_at, device)
        change = self._record(conn, Change(image.project, seq, IMAGE_UPDATED, content.created_at, new))
        return VersionResult(new, UPDATED, None, (change,))

    def _image_values(self, image: ImageRecord) -> dict[str, Any]:
        """The image's column values as bound: EXIF as JSON text, free text as the database holds it."""
        values = {**image.to_dict(), "exif": json.dumps(image.exif)}
        for name in _TEXT_NAMES:
            values[name] = self._text(values[name])
        return values

    def _insert_image(self, conn: Connection, image: ImageRecord) -> None:
        values = self._image_values(image)
        conn.execute(
            f"INSERT INTO images ({IMAGE_COLUMNS}) VALUES ({', '.join('?' * len(IMAGE_NAMES))})",
            [values[c] for c in IMAGE_NAMES],
        )
        # The project's count, kept with the rows it counts (its row is locked): `count_images` reads it.
        conn.execute("UPDATE projects SET image_count = image_count + 1 WHERE name = ?", (image.project,))

    def _insert_version(
        self, conn: Connection, image: ImageRecord, seq: int, created_at: str, device: Device | None
    ) -> None:
        """Record the image's current bytes as its version `image.version`, made by `device` at feed entry `seq`."""
        conn.execute(
            f"INSERT INTO image_versions (project, {VERSION_COLUMNS}) VALUES ({', '.join('?' * 14)})",
            (
                image.project,
                image.id,
                image.version,
                image.sha256,
                self._text(image.filename),
                image.size_bytes,
                image.width,
                image.height,
                image.format,
                image.mime,
                created_at,
                seq,
                device.id if device else None,
                self._text(device.name) if device else None,
            ),
        )

    def image_versions(self, project: str, image_id: str) -> list[ImageVersion]:
        with self._snapshot() as conn:
            self._require(conn, project)
            if load_image(conn, project, image_id) is None:
                raise UnknownImage(project, [image_id])
            return load_versions(conn, image_id)

    def get_image(self, image_id: str) -> ImageRecord | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {IMAGE_COLUMNS} FROM images WHERE id = ?", (image_id,)).fetchone()
        return image_from_row(row) if row else None

    def get_images(self, project: str, image_ids: Iterable[str]) -> list[ImageRecord]:
        ids = list(image_ids)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {IMAGE_COLUMNS} FROM images"
                f" WHERE project = ? AND id IN (SELECT image_id FROM {self._ID_LIST})",
                (project, self._id_list(ids)),
            ).fetchall()
        found = {r["id"]: image_from_row(r) for r in rows}
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
        where, params = _where(ImageFilters(min_rating, flag, label))
        with self._read() as conn:
            self._require(conn, project)
            rows = conn.execute(
                f"SELECT {IMAGE_COLUMNS} FROM images WHERE project = ? AND seq < ?{where} ORDER BY seq DESC LIMIT ?",
                (project, _NEWEST if before is None else before, *params, limit),
            ).fetchall()
        return [image_from_row(r) for r in rows]

    def count_images(
        self, project: str, *, min_rating: int | None = None, flag: str | None = None, label: str | None = None
    ) -> int:
        where, params = _where(ImageFilters(min_rating, flag, label))
        with self._read() as conn:
            if not where:  # the project's own count: one row, not a walk over every image
                row = conn.execute("SELECT image_count FROM projects WHERE name = ?", (project,)).fetchone()
                if row is None:
                    raise UnknownProject(project)
                return int(row["image_count"])
            self._require(conn, project)
            row = conn.execute(f"SELECT count(*) AS n FROM images WHERE project = ?{where}", (project, *params))
            return int(row.fetchone()["n"])

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
            current = load_image(conn, project, image_id)
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
                "UPDATE images SET rating = ?, flag = ?, label = ? WHERE id = ?",
                (new.rating, new.flag, new.label, new.id),
            )
            data = {"image_id": new.id, "rating": new.rating, "flag": new.flag, "label": new.label}
            change = self._record(
                conn, Change(project, self._next_seq(conn, project), RATING_CHANGED, utc_now_iso(), data=data)
            )
        return new, change

    def delete_image(
        self, project: str, image_id: str, *, if_sha256: str | None = None
    ) -> tuple[ImageRecord, list[Change]]:
        with self._transaction() as conn:
            self._lock(conn, project)
            image = load_image(conn, project, image_id)
            if image is None:
                raise UnknownImage(project, [image_id])
            if if_sha256 is not None and image.sha256 != if_sha256:
                raise VersionChanged(f"image {image_id!r} is at version {image.version}, not {if_sha256[:12]}…")
            changes: list[Change] = []
            holders = conn.execute(
                "SELECT DISTINCT c.id FROM collections c JOIN collection_items i ON i.collection_id = c.id"
                " WHERE i.image_id = ? AND c.deleted_at IS NULL ORDER BY c.id",
                (image_id,),
            ).fetchall()
            for row in holders:
                _, change = self._edit(conn, project, row["id"], CollectionEdit("remove", image_ids=(image_id,)))
                if change is not None:
                    changes.append(change)
            # What is left refers to it without a feed entry of its own: tombstones, conflict copies.
            conn.execute("DELETE FROM collection_items WHERE image_id = ?", (image_id,))
            conn.execute("UPDATE collections SET cover_image_id = NULL WHERE cover_image_id = ?", (image_id,))
            conn.execute("UPDATE images SET conflict_of = NULL WHERE conflict_of = ?", (image_id,))
            conn.execute("DELETE FROM image_versions WHERE image_id = ?", (image_id,))
            conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
            conn.execute("UPDATE projects SET image_count = image_count - 1 WHERE name = ?", (project,))
            data = {"image_id": image_id, "filename": image.filename}
            seq = self._next_seq(conn, project)
            changes.append(self._record(conn, Change(project, seq, IMAGE_DELETED, utc_now_iso(), data=data)))
        return image, changes

    def _require_images(self, conn: Connection, project: str, image_ids: Sequence[str]) -> None:
        rows = conn.execute(
            f"SELECT id FROM images WHERE project = ? AND id IN (SELECT image_id FROM {self._ID_LIST})",
            (project, self._id_list(image_ids)),
        ).fetchall()
        known = {r["id"] for r in rows}
        missing = [i for i in image_ids if i not in known]
        if missing:
            raise UnknownImage(project, missing)

    # -- collections ----------------------------------------------------------------------

    def get_collection(self, project: str, collection_id: str) -> CollectionRecord | None:
        with self._snapshot() as conn:
            return load_collection(conn, project, collection_id)

    def list_collections(self, project: str) -> list[CollectionRecord]:
        with self._snapshot() as conn:
            self._require(conn, project)
            return load_live_collections(conn, project)

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
            source = load_collection(conn, project, collection_id)
            if source is None:
                raise UnknownCollection(collection_id)
            if source.deleted:
                raise CollectionDeleted(collection_id)
            return self._create(
                conn,
                project,
                new_name or clean_name(f"{source.name[:MAX_COPY_STEM_CHARS]} copy"),
                list(source.image_ids),
                stored_cover(conn, source.id),
                {"op": "duplicate", "source_id": source.id},
            )

    def _create(
        self, conn: Connection, project: str, name: str, image_ids: list[str], cover: str | None, op: dict[str, Any]
    ) -> tuple[CollectionRecord, Change]:
        now = utc_now_iso()
        seq = self._next_seq(conn, project)
        collection_id = new_id()
        conn.execute(
            f"INSERT INTO collections ({COLLECTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 1, ?, NULL)",
            (collection_id, project, _free_name(conn, project, name), cover, now, now, seq),
        )
        self._write_items(conn, collection_id, image_ids)
        record = load_collection(conn, project, collection_id)
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
            return self._edit(conn, project, collection_id, edit)

    def _edit(
        self, conn: Connection, project: str, collection_id: str, edit: CollectionEdit
    ) -> tuple[CollectionRecord, Change | None]:
        """One collection edit inside the caller's transaction (the project's row is locked)."""
        current = load_collection(conn, project, collection_id)
        if current is None:
            raise UnknownCollection(collection_id)
        if current.deleted and edit.op not in ("delete", "undelete"):
            raise CollectionDeleted(collection_id)
        name, cover = current.name, stored_cover(conn, current.id)
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
            self._write_items(conn, current.id, ids)
        now = utc_now_iso()
        conn.execute(
            "UPDATE collections SET name = ?, cover_image_id = ?, updated_at = ?, version = version + 1,"
            " deleted_at = ? WHERE id = ?",
            (name, cover, now, now if deleted else None, current.id),
        )
        record = load_collection(conn, project, current.id)
        assert record is not None
        if edit.op == "undelete":
            resolved["image_ids"] = list(record.image_ids)
        kind = COLLECTION_DELETED if edit.op == "delete" else COLLECTION_UPDATED
        data = {"op": edit.op, **record.card(), **resolved}
        change = self._record(conn, Change(project, self._next_seq(conn, project), kind, now, data=data))
        return record, change

    def _resolve(self, conn: Connection, current: CollectionRecord, edit: CollectionEdit) -> dict[str, Any] | None:
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
            stored = stored_cover(conn, current.id)
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

    def _write_items(self, conn: Connection, collection_id: str, image_ids: list[str]) -> None:
        conn.execute("DELETE FROM collection_items WHERE collection_id = ?", (collection_id,))
        conn.execute(
            "INSERT INTO collection_items (collection_id, image_id, position)"
            f" SELECT ?, image_id, position FROM {self._ID_LIST}",
            (collection_id, self._id_list(image_ids)),
        )

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


def _where(filters: ImageFilters) -> tuple[str, list[Any]]:
    """The filters as `AND` terms to append to a `WHERE`, and their parameters."""
    conditions = filters.conditions()
    return "".join(f" AND {column} {op} ?" for column, op, _ in conditions), [value for *_, value in conditions]


def _unique(image_ids: Iterable[str]) -> list[str]:
    """The ids in order, each once (the first time it is named)."""
    if isinstance(image_ids, str) or not all(isinstance(i, str) for i in image_ids):
        raise InvalidValue("image_ids must be a list of image id strings")
    return list(dict.fromkeys(image_ids))


def _free_name(conn: Connection, project: str, name: str, *, exclude: str | None = None) -> str:
    """`name`, or "name (2)", "name (3)"… : the first one no live collection of the project but `exclude` has."""

    def taken(candidate: str) -> bool:
        # `exclude` is compared here: a NULL-safe "not equal" is `IS NOT` in SQLite (which has
        # `IS DISTINCT FROM` only since 3.39) and `IS DISTINCT FROM` in PostgreSQL.
        rows = conn.execute(
            "SELECT id FROM collections WHERE project = ? AND name = ? AND deleted_at IS NULL", (project, candidate)
        ).fetchall()
        return any(r["id"] != exclude for r in rows)

    if not taken(name):
        return name
    numbered = _NUMBERED.fullmatch(name)
    stem = numbered.group(1) if numbered else name
    n = 2
    while taken(f"{stem} ({n})"):
        n += 1
    return f"{stem} ({n})"
