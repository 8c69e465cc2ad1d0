"""`SqlCollections`: `SqlStore`'s collections: saving, duplicating and editing them (see `dashboard.store.Store`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from dashboard.events import (
    COLLECTION_DELETED,
    COLLECTION_SAVED,
    COLLECTION_UPDATED,
    Change,
    CollectionRecord,
    apply_collection_change,
    new_id,
)
from dashboard.store import (
    EDIT_OPS,
    CollectionDeleted,
    CollectionEdit,
    InvalidValue,
    NotInCollection,
    UnknownCollection,
    UnknownImage,
    clean_name,
)
from dashboard.store.records import (
    COLLECTION_COLUMNS,
    Connection,
    load_collection,
    load_live_collections,
    stored_cover,
)
from dashboard.store.sql_base import SqlBase
from dashboard.timeutil import utc_now_iso

MAX_COPY_STEM_CHARS = 190  # so that "<name> copy" is still a valid name
_NUMBERED = re.compile(r"(.*) \((\d+)\)")


class SqlCollections(SqlBase):
    """A project's collections; an edit resolves against the state it finds, so a repeated one is a no-op."""

    def _require_images(self, conn: Connection, project: str, image_ids: Sequence[str]) -> None:
        rows = conn.execute(
            f"SELECT id FROM images WHERE project = ? AND id IN (SELECT image_id FROM {self._ID_LIST})",
            (project, self._id_list(image_ids)),
        ).fetchall()
        known = {r["id"] for r in rows}
        missing = [i for i in image_ids if i not in known]
        if missing:
            raise UnknownImage(project, missing)

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
