"""The SQL stores' tables as `SqlStore`'s rules read them: rows to records, and shared lookups.

Every function takes a connection of either engine (`Connection`: `?` placeholders, rows by column
name) and runs in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from dashboard.events import Change, CollectionRecord, ImageRecord, ImageVersion

IMAGE_NAMES = (
    "id", "project", "filename", "sha256", "size_bytes", "width", "height", "format", "mime", "captured_at",
    "camera_make", "camera_model", "exif", "created_at", "seq", "rating", "flag", "label", "version", "conflict_of",
    "raw_sha256", "raw_filename", "raw_size_bytes", "raw_format",
)  # fmt: skip
IMAGE_COLUMNS = ", ".join(IMAGE_NAMES)
VERSION_COLUMNS = (
    "image_id, version, sha256, filename, size_bytes, width, height, format, mime, created_at, seq, "
    "device_id, device_name"
)
COLLECTION_COLUMNS = "id, project, name, cover_image_id, created_at, updated_at, version, seq, deleted_at"


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the rules need of a connection: `execute` with `?` placeholders, rows indexed by column name."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...


def row_values(row: Any) -> Sequence[Any]:
    """A row's values in column order: SQLite's rows iterate over them, psycopg's `dict_row`s are dicts."""
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


def image_from_row(row: Any, start: int = 0) -> ImageRecord:
    """The image of a row whose columns from `start` on are `IMAGE_COLUMNS` (a join selects others first).

    Read by position and built without the dataclass's `__init__`: the list, the feed and the
    notebook read rows by the hundred, and by name it cost three times as much.
    """
    values = dict(zip(IMAGE_NAMES, row_values(row)[start : start + len(IMAGE_NAMES)], strict=True))
    values["exif"] = json_object(values["exif"])
    return ImageRecord.from_fields(values)


def json_object(text: str | None) -> dict[str, Any]:
    """A JSON object column as a dict; the empty one (most feed entries' `data`) without the decoder."""
    return {} if not text or text == "{}" else json.loads(text)


def collection_from_row(row: Any, image_ids: list[str]) -> CollectionRecord:
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


def create_project(conn: Connection, project: str, created_at: str) -> None:
    conn.execute(
        "INSERT INTO projects (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (project, created_at)
    )


def image_by_sha(conn: Connection, project: str, sha256: str) -> ImageRecord | None:
    """The image whose current version has these bytes, or whose RAW file (of a pair) has them.

    Two lookups, each by its own index: one query with `sha256 = ? OR raw_sha256 = ?` made SQLite read
    every image of the project, so each ingest got slower as the project grew.
    """
    for column in ("sha256", "raw_sha256"):
        row = conn.execute(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE project = ? AND {column} = ? LIMIT 1", (project, sha256)
        ).fetchone()
        if row:
            return image_from_row(row)
    return None


def find_image_by_sha(conn: Connection, project: str, sha256: str) -> ImageRecord | None:
    """The image whose current version has these bytes, else the newest image that had them before."""
    found = image_by_sha(conn, project, sha256)
    if found is not None:
        return found
    row = conn.execute(
        f"SELECT {', '.join('i.' + c for c in IMAGE_NAMES)} FROM image_versions v"
        " JOIN images i ON i.id = v.image_id WHERE v.project = ? AND v.sha256 = ? ORDER BY v.seq DESC LIMIT 1",
        (project, sha256),
    ).fetchone()
    return image_from_row(row) if row else None


def load_image(conn: Connection, project: str, image_id: str) -> ImageRecord | None:
    row = conn.execute(
        f"SELECT {IMAGE_COLUMNS} FROM images WHERE id = ? AND project = ?", (image_id, project)
    ).fetchone()
    return image_from_row(row) if row else None


def load_versions(conn: Connection, image_id: str) -> list[ImageVersion]:
    rows = conn.execute(
        f"SELECT {VERSION_COLUMNS} FROM image_versions WHERE image_id = ? ORDER BY version", (image_id,)
    ).fetchall()
    return [ImageVersion(**dict(r)) for r in rows]


def stored_cover(conn: Connection, collection_id: str) -> str | None:
    """The cover as set (`None`: the first image), not `CollectionRecord`'s effective one."""
    row = conn.execute("SELECT cover_image_id FROM collections WHERE id = ?", (collection_id,)).fetchone()
    return row["cover_image_id"] if row else None


def load_collection(conn: Connection, project: str, collection_id: str) -> CollectionRecord | None:
    row = conn.execute(
        f"SELECT {COLLECTION_COLUMNS} FROM collections WHERE id = ? AND project = ?", (collection_id, project)
    ).fetchone()
    if row is None:
        return None
    items = conn.execute(
        "SELECT image_id FROM collection_items WHERE collection_id = ? ORDER BY position", (collection_id,)
    ).fetchall()
    return collection_from_row(row, [r["image_id"] for r in items])


def load_live_collections(conn: Connection, project: str) -> list[CollectionRecord]:
    """The project's collections that are not deleted, newest first (in a snapshot: items and cards agree)."""
    rows = conn.execute(
        f"SELECT {COLLECTION_COLUMNS} FROM collections WHERE project = ? AND deleted_at IS NULL ORDER BY seq DESC",
        (project,),
    ).fetchall()
    items: dict[str, list[str]] = {r["id"]: [] for r in rows}
    for item in conn.execute(
        "SELECT i.collection_id, i.image_id FROM collection_items i JOIN collections c"
        " ON c.id = i.collection_id WHERE c.project = ? AND c.deleted_at IS NULL"
        " ORDER BY i.collection_id, i.position",
        (project,),
    ):
        items[item["collection_id"]].append(item["image_id"])
    return [collection_from_row(r, items[r["id"]]) for r in rows]


def load_changes(conn: Connection, project: str, after: int, limit: int) -> list[Change]:
    """Feed entries with `seq > after`, oldest first, each with its image as it is now."""
    rows = conn.execute(
        # Named apart: an entry and its image both have project, seq and created_at. The image's
        # columns come last, in `IMAGE_COLUMNS` order, for `image_from_row`.
        "SELECT c.project AS c_project, c.seq AS c_seq, c.kind, c.created_at AS c_created_at, c.data, "
        + ", ".join(f"i.{c} AS i_{c}" for c in IMAGE_NAMES)
        + " FROM changes c LEFT JOIN images i ON i.id = c.image_id"
        " WHERE c.project = ? AND c.seq > ? ORDER BY c.seq LIMIT ?",
        (project, after, limit),
    ).fetchall()
    return [
        Change(
            project=r["c_project"],
            seq=r["c_seq"],
            kind=r["kind"],
            created_at=r["c_created_at"],
            image=image_from_row(r, start=5) if r["i_id"] is not None else None,
            data=json_object(r["data"]),
        )
        for r in rows
    ]
