"""The `Store` protocol: image metadata plus a durable, per-project change feed.

Implementations are thread-safe and blocking; async callers hop to a worker thread
(`asyncio.to_thread`). The feed is the truth: a change and its feed entry commit in one
transaction, sequence numbers are per project and gap-free, and readers page with cursors.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dashboard.events import FLAGS, LABELS, RATINGS, Change, CollectionRecord, ImageRecord

MAX_NAME_CHARS = 200


class UnknownProject(LookupError):
    """The project does not exist in this store."""


class UnknownImage(LookupError):
    """Image ids that are not images of the project (unknown, or another project's)."""

    def __init__(self, project: str, image_ids: Sequence[str]) -> None:
        super().__init__(f"no image {', '.join(map(repr, image_ids[:5]))} in project {project!r}")
        self.project = project
        self.image_ids = list(image_ids)


class UnknownCollection(LookupError):
    """No collection with this id in the project."""


class CollectionDeleted(LookupError):
    """The collection is deleted: only `undelete` (and `delete` again) apply to it."""


class NotInCollection(LookupError):
    """The edit needs an image that is not (or no longer) in the collection."""


class InvalidValue(ValueError):
    """A rating, flag, label, name or edit the store refuses; the message says which and why."""


@dataclass(frozen=True)
class CollectionEdit:
    """One edit of a saved collection as a window asks for it; the store resolves it against the
    current order in its transaction, so edits from several windows apply one after the other.

    `op` is `rename` (`name`), `add` (`image_ids`, at `before` or `index`, else at the end),
    `remove` (`image_ids`), `move` (`image_ids`, before `before`, else to the end), `cover`
    (`image_id`; `None` goes back to the first image), `delete` or `undelete`. Adding an image that
    is already in, removing or moving one that is not, is a no-op for that image; a `before` that
    is not in the collection means the end.
    """

    op: str
    image_ids: tuple[str, ...] = ()
    before: str | None = None
    index: int | None = None
    name: str | None = None
    image_id: str | None = None


EDIT_OPS = ("rename", "add", "remove", "move", "cover", "delete", "undelete")


def check_rating(rating: Any = None, flag: Any = None, label: Any = None) -> None:
    """Raise `InvalidValue` unless each given value is a valid rating (0-5), flag or label."""
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int) or rating not in RATINGS):
        raise InvalidValue(f"rating must be an integer from 0 to 5, not {rating!r}")
    if flag is not None and flag not in FLAGS:
        raise InvalidValue(f"flag must be one of {', '.join(FLAGS)}, not {flag!r}")
    if label is not None and label not in LABELS:
        raise InvalidValue(f"label must be one of {', '.join(LABELS)}, not {label!r}")


def clean_name(name: Any) -> str:
    """A collection name as stored: stripped, non-empty, at most 200 characters, no control characters."""
    if not isinstance(name, str):
        raise InvalidValue(f"name must be a string, not {name!r}")
    name = name.strip()
    if not name:
        raise InvalidValue("name must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidValue(f"name must be at most {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise InvalidValue("name must not contain control characters")
    return name


class Store(Protocol):
    def ensure_project(self, project: str) -> None:
        """Create the project if it does not exist yet."""

    def has_project(self, project: str) -> bool: ...

    def projects(self) -> list[str]: ...

    def find_by_sha(self, project: str, sha256: str) -> ImageRecord | None: ...

    def add_image(self, image: ImageRecord) -> tuple[ImageRecord, Change | None]:
        """Insert the image and its `image.created` feed entry in one transaction.

        Returns the stored record (with its `seq`) and the change, or the existing record and
        `None` when the same bytes are already in the project (idempotent, nothing published).
        """

    def get_image(self, image_id: str) -> ImageRecord | None: ...

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
        """Newest first; `before` is the `seq` of the last image of the previous page.

        The filters keep images rated at least `min_rating`, with this `flag`, with this `label`.
        """

    def count_images(
        self, project: str, *, min_rating: int | None = None, flag: str | None = None, label: str | None = None
    ) -> int: ...

    def get_images(self, project: str, image_ids: Iterable[str]) -> list[ImageRecord]:
        """The project's images with these ids, in the order given (ids it does not have are left out)."""

    def set_rating(
        self,
        project: str,
        image_id: str,
        *,
        rating: int | None = None,
        flag: str | None = None,
        label: str | None = None,
    ) -> tuple[ImageRecord, Change | None]:
        """Set any of the image's rating, flag and label with a `rating.changed` entry, in one transaction.

        Returns the image as stored and the change, or `None` when nothing changed (nothing to publish).
        Raises `UnknownProject`, `UnknownImage`, `InvalidValue`.
        """

    # -- collections: each write is one transaction with its `collection.*` feed entry ------

    def save_collection(self, project: str, name: str, image_ids: Sequence[str]) -> tuple[CollectionRecord, Change]:
        """Create a collection of these images in this order (`collection.saved`).

        A name already used by another collection of the project gets a suffix: "Name (2)".
        Raises `UnknownProject`, `UnknownImage`, `InvalidValue`.
        """

    def duplicate_collection(
        self, project: str, collection_id: str, name: str | None = None
    ) -> tuple[CollectionRecord, Change]:
        """A new collection with the same images and cover (`collection.saved`), named "Name copy" by default."""

    def edit_collection(
        self, project: str, collection_id: str, edit: CollectionEdit
    ) -> tuple[CollectionRecord, Change | None]:
        """Apply one edit (`collection.updated`, or `collection.deleted` for `delete`).

        Returns the collection after it and the change, or `None` when the edit changed nothing.
        Raises `UnknownProject`, `UnknownCollection`, `CollectionDeleted`, `UnknownImage`,
        `NotInCollection`, `InvalidValue`.
        """

    def get_collection(self, project: str, collection_id: str) -> CollectionRecord | None:
        """The collection (deleted ones too, marked `deleted`), or `None`."""

    def list_collections(self, project: str) -> list[CollectionRecord]:
        """The project's collections that are not deleted, newest first."""

    def changes(self, project: str, *, after: int = 0, limit: int = 500) -> list[Change]:
        """Feed entries with `seq > after`, oldest first."""

    def last_seq(self, project: str) -> int:
        """The newest feed sequence of the project (0 when empty)."""

    def close(self) -> None: ...


def open_store(url_or_path: str) -> Store:
    """Open a store from a database URL or a data directory path (SQLite)."""
    from dashboard.store.sqlite import SQLiteStore

    return SQLiteStore(url_or_path)
