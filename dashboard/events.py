"""Typed records that cross the store, the change feed, the bus and the wire.

One serializer (`to_dict` / `to_json`) with a format version, so every backend and every client
reads the same shape; each record reads it back with `from_dict` / `from_json`, also from what the
API sends (dashboard/wire.py), whose signed file URLs it leaves out.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field, fields, replace
from typing import Any

FEED_FORMAT_VERSION = 1

IMAGE_CREATED = "image.created"
IMAGE_UPDATED = "image.updated"
IMAGE_DELETED = "image.deleted"
COLLECTION_SAVED = "collection.saved"
COLLECTION_UPDATED = "collection.updated"
COLLECTION_DELETED = "collection.deleted"
RATING_CHANGED = "rating.changed"
#: A person marked or unmarked an image as a favourite (`{"image_id", "by", "favorite"}`).
FAVORITE_CHANGED = "favorite.changed"
#: A person sent their favourites as a saved collection (`{"by", "collection_id", "count"}`).
FAVORITES_SUBMITTED = "favorites.submitted"
#: A comment on an image, new (`data`: the comment, `{"id", "image_id", "text", "author", "created_at",
#: "resolved", "reply_to"}`), resolved or reopened (the comment after it), or deleted with its replies
#: (`{"id", "image_id", "ids"}`, `ids` every comment that went).
COMMENT_CREATED = "comment.created"
COMMENT_UPDATED = "comment.updated"
COMMENT_DELETED = "comment.deleted"

#: Every change type the feed can carry; the docs test checks each is documented.
CHANGE_KINDS = (
    IMAGE_CREATED,
    IMAGE_UPDATED,
    IMAGE_DELETED,
    COLLECTION_SAVED,
    COLLECTION_UPDATED,
    COLLECTION_DELETED,
    RATING_CHANGED,
    FAVORITE_CHANGED,
    FAVORITES_SUBMITTED,
    COMMENT_CREATED,
    COMMENT_UPDATED,
    COMMENT_DELETED,
)

#: The data of an `image.updated` entry that announces the image's preview, made after the image was
#: published (`dashboard.previews`): the image is the same, only its preview URL now answers at once.
#: A new version's `image.updated` has no data.
PREVIEW_MADE = {"made": "preview"}

#: Ratings and picks, as Lightroom has them: stars, a flag and a colour label per image.
RATINGS = range(0, 6)
FLAGS = ("none", "pick", "reject")
LABELS = ("none", "red", "yellow", "green", "blue", "purple")


@dataclass(frozen=True)
class ImageRecord:
    """One stored image, as every reader sees it; `seq` is the feed entry that created it."""

    id: str
    project: str
    filename: str
    sha256: str
    size_bytes: int
    width: int
    height: int
    format: str
    mime: str
    captured_at: str
    camera_make: str | None
    camera_model: str | None
    created_at: str
    seq: int = 0
    exif: dict[str, Any] = field(default_factory=dict)
    rating: int = 0
    flag: str = "none"
    label: str = "none"
    version: int = 1
    conflict_of: str | None = None  # a conflict copy: the id of the image whose version it was

    def with_seq(self, seq: int) -> ImageRecord:
        return replace(self, seq=seq)

    def to_dict(self) -> dict[str, Any]:
        # Not `dataclasses.asdict`: its recursion and deep copies were most of an images page's time.
        out = {name: getattr(self, name) for name in IMAGE_FIELDS}
        out["exif"] = _json_copy(self.exif)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageRecord:
        """The record from `to_dict`'s shape or the API's image JSON; keys that are not fields (URLs) are ignored."""
        return cls(**{name: data[name] for name in IMAGE_FIELDS if name in data})

    @classmethod
    def from_json(cls, text: str | bytes) -> ImageRecord:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_fields(cls, values: dict[str, Any]) -> ImageRecord:
        """A record from a value for every field (EXIF decoded), as a store's row holds them.

        Skips the frozen `__init__`, which sets each field through `object.__setattr__`: that was half
        the cost of reading a row. `values` must name exactly the fields (`IMAGE_FIELDS`), and becomes
        the record's: do not keep it.
        """
        record = object.__new__(cls)
        record.__dict__.update(values)
        return record


@dataclass(frozen=True)
class Device:
    """A sync client's machine: `id` is stable and opaque, `name` is for people ("Studio Mac")."""

    id: str
    name: str


@dataclass(frozen=True)
class ImageVersion:
    """One stored version of an image (the current one included): its bytes, by whom and when."""

    image_id: str
    version: int
    sha256: str
    filename: str
    size_bytes: int
    width: int
    height: int
    format: str
    mime: str
    created_at: str
    seq: int  # the feed entry that made this version
    device_id: str | None = None
    device_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in VERSION_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageVersion:
        """The version from `to_dict`'s shape or the API's version JSON (its URLs are ignored)."""
        return cls(**{name: data[name] for name in VERSION_FIELDS if name in data})


@dataclass(frozen=True)
class Change:
    """One entry of a project's change feed: strictly increasing `seq`, never rewritten."""

    project: str
    seq: int
    kind: str
    created_at: str
    image: ImageRecord | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": FEED_FORMAT_VERSION,
            "project": self.project,
            "seq": self.seq,
            "kind": self.kind,
            "created_at": self.created_at,
            "image": self.image.to_dict() if self.image else None,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        """The change from `to_dict`'s shape or an entry of the API's `/changes`.

        The API adds a collection's signed `cover_thumbnail_url` to its data as it sends it; it is
        not part of the change and is left out. Raises `ValueError` for a newer format version.
        """
        version = data.get("v", FEED_FORMAT_VERSION)
        if version != FEED_FORMAT_VERSION:
            raise ValueError(f"feed format version {version!r}: this client reads version {FEED_FORMAT_VERSION}")
        image = data.get("image")
        payload = data.get("data") or {}
        if _WIRE_COVER_URL in payload:
            payload = {k: v for k, v in payload.items() if k != _WIRE_COVER_URL}
        return cls(
            project=data["project"],
            seq=int(data["seq"]),
            kind=data["kind"],
            created_at=data["created_at"],
            image=ImageRecord.from_dict(image) if image else None,
            data=payload,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Change:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class CollectionRecord:
    """A saved collection: an ordered list of image ids that only its own edits change.

    `cover_image_id` is the effective cover: the one set, else the first image, else `None`.
    `version` counts the edits; `deleted` marks a tombstone that `undelete` can bring back.
    """

    id: str
    project: str
    name: str
    image_ids: tuple[str, ...]
    cover_image_id: str | None
    created_at: str
    updated_at: str
    version: int = 1
    seq: int = 0
    deleted: bool = False

    @property
    def count(self) -> int:
        return len(self.image_ids)

    def card(self) -> dict[str, Any]:
        """What a collection event carries besides its op: enough to draw the collection's card."""
        return {
            "collection_id": self.id,
            "name": self.name,
            "count": self.count,
            "cover_image_id": self.cover_image_id,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "deleted": self.deleted,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CollectionRecord:
        """The collection from the API's collection JSON (not a card: that has no `image_ids`).

        The API does not send a collection's `seq`: it is 0 unless `data` has one. Raises `ValueError`
        for a card.
        """
        if "image_ids" not in data:
            raise ValueError(f"collection {data.get('id')!r} is a card, without its image_ids: get the collection")
        return cls(
            id=data["id"],
            project=data["project"],
            name=data["name"],
            image_ids=tuple(data["image_ids"]),
            cover_image_id=data["cover_image_id"],
            created_at=data["created_at"],
            updated_at=data["updated_at"],
            version=int(data.get("version", 1)),
            seq=int(data.get("seq", 0)),
            deleted=bool(data.get("deleted", False)),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> CollectionRecord:
        return cls.from_dict(json.loads(text))


def apply_collection_change(image_ids: list[str], data: dict[str, Any]) -> list[str]:
    """The order of a collection after the `collection.*` change whose `data` is given.

    The store computes every new state with this function and records the op in resolved form
    (the ids that really moved and a plain index), so a client that applies the feed's changes in
    order with it (or its few lines of JavaScript) ends exactly where the server is.
    """
    op = data["op"]
    if op in ("save", "duplicate", "undelete"):
        return list(data["image_ids"])
    if op == "add":
        index = data["index"]
        return image_ids[:index] + list(data["image_ids"]) + image_ids[index:]
    if op == "remove":
        gone = set(data["image_ids"])
        return [i for i in image_ids if i not in gone]
    if op == "move":
        moved = set(data["image_ids"])
        rest = [i for i in image_ids if i not in moved]
        index = data["index"]
        return rest[:index] + list(data["image_ids"]) + rest[index:]
    if op in ("rename", "cover", "delete"):
        return list(image_ids)
    raise ValueError(f"unknown collection op {op!r}")


def new_id() -> str:
    """A new image or collection id: 12 URL-safe characters, never starting with '-' (a command line
    would take it for an option, as in `fotoflo share create --collection ID`)."""
    while (ident := secrets.token_urlsafe(9)).startswith("-"):
        pass
    return ident


#: What the API adds to a collection change's data (dashboard/wire.py); `Change.from_dict` leaves it out.
_WIRE_COVER_URL = "cover_thumbnail_url"

#: The fields of the records, in order: what `to_dict` writes and `from_dict` reads.
IMAGE_FIELDS = tuple(f.name for f in fields(ImageRecord))
VERSION_FIELDS = tuple(f.name for f in fields(ImageVersion))


def _json_copy(value: Any) -> Any:
    """A copy of JSON-shaped `value` that shares no dict or list with it (as `asdict` made)."""
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_json_copy(v) for v in value)
    return value


def to_json(obj: ImageRecord | Change) -> str:
    return json.dumps(obj.to_dict(), separators=(",", ":"), ensure_ascii=False)


def change_from_json(text: str) -> Change:
    return Change.from_json(text)
