"""Typed records that cross the store, the change feed, the bus and the wire.

One serializer (`to_json` / `from_json`) with a format version, so every backend and every
client reads the same shape.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

FEED_FORMAT_VERSION = 1

IMAGE_CREATED = "image.created"
IMAGE_UPDATED = "image.updated"
COLLECTION_SAVED = "collection.saved"
RATING_CHANGED = "rating.changed"

#: Every change type the feed can carry; the docs test checks each is documented.
CHANGE_KINDS = (IMAGE_CREATED, IMAGE_UPDATED, COLLECTION_SAVED, RATING_CHANGED)


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

    def with_seq(self, seq: int) -> ImageRecord:
        return replace(self, seq=seq)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


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
        image = data.get("image")
        return cls(
            project=data["project"],
            seq=int(data["seq"]),
            kind=data["kind"],
            created_at=data["created_at"],
            image=ImageRecord.from_dict(image) if image else None,
            data=data.get("data") or {},
        )


def to_json(obj: ImageRecord | Change) -> str:
    return json.dumps(obj.to_dict(), separators=(",", ":"), ensure_ascii=False)


def change_from_json(text: str) -> Change:
    return Change.from_dict(json.loads(text))
