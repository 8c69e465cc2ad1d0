"""The `Store` protocol: image metadata plus a durable, per-project change feed.

Implementations are thread-safe and blocking; async callers hop to a worker thread
(`asyncio.to_thread`). The feed is the truth: a change and its feed entry commit in one
transaction, sequence numbers are per project and gap-free, and readers page with cursors.
The implementations live beside it (`sqlite`, `postgres`, `dashboard.supabase.store`) and import this
module, never the other way: `dashboard.backends.open_store` picks one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from dashboard.events import FLAGS, LABELS, RATINGS, Change, CollectionRecord, Device, ImageRecord, ImageVersion

MAX_NAME_CHARS = 200
MAX_BY_KEY_CHARS = 300  # a favourite's `by_key` (a principal's key) is cut to this
MAX_COMMENT_CHARS = 2000  # a comment's text, after trimming


class UnknownProject(LookupError):
    """The project does not exist in this store."""


class UnknownImage(LookupError):
    """Image ids that are not images of the project (unknown, or another project's)."""

    def __init__(self, project: str, image_ids: Sequence[str]) -> None:
        super().__init__(f"no image {', '.join(map(repr, image_ids[:5]))} in project {project!r}")
        self.project = project
        self.image_ids = list(image_ids)


class VersionChanged(Exception):
    """The image's current version is not the one the caller based its request on."""


class UnknownCollection(LookupError):
    """No collection with this id in the project."""


class CollectionDeleted(LookupError):
    """The collection is deleted: only `undelete` (and `delete` again) apply to it."""


class NotInCollection(LookupError):
    """The edit needs an image that is not (or no longer) in the collection."""


class UnknownComment(LookupError):
    """No comment with this id on the image."""


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

#: `VersionResult.outcome`: a new version of the image; the same as a current image (nothing
#: written); a new version whose base was stale, the other side kept as a conflict copy.
UPDATED, UNCHANGED, CONFLICT = "updated", "unchanged", "conflict"


@dataclass(frozen=True)
class VersionResult:
    """What `Store.add_version` did with the new bytes of an image.

    `image` is the image that now holds those bytes as its current version (for `unchanged`,
    the image that already had them). On `conflict`, `conflict_copy` is the new image that keeps
    the version the upload did not start from. `changes` are the feed entries written (none for
    `unchanged`), in feed order.
    """

    image: ImageRecord
    outcome: str
    conflict_copy: ImageRecord | None = None
    changes: tuple[Change, ...] = ()


def conflict_name(filename: str, device_name: str | None, created_at: str) -> str:
    """`name (conflict DEVICE YYYY-MM-DD HHMMSS).ext`: a conflict copy's file name.

    `created_at` is the ISO time (UTC) of the version the copy keeps; DEVICE is the device that
    made it ("unknown device" for a web upload or the hot folder).
    """
    stem, dot, ext = filename.rpartition(".")
    if not dot or not stem:
        stem, ext = filename, ""
    stamp = f"{created_at[:10]} {created_at[11:13]}{created_at[14:16]}{created_at[17:19]}"
    tail = f" (conflict {device_name or 'unknown device'} {stamp})"
    return f"{stem}{tail}.{ext}" if ext else f"{stem}{tail}"


def check_rating(rating: Any = None, flag: Any = None, label: Any = None) -> None:
    """Raise `InvalidValue` unless each given value is a valid rating (0-5), flag or label."""
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int) or rating not in RATINGS):
        raise InvalidValue(f"rating must be an integer from 0 to 5, not {rating!r}")
    if flag is not None and flag not in FLAGS:
        raise InvalidValue(f"flag must be one of {', '.join(FLAGS)}, not {flag!r}")
    if label is not None and label not in LABELS:
        raise InvalidValue(f"label must be one of {', '.join(LABELS)}, not {label!r}")


@dataclass(frozen=True)
class ImageFilters:
    """What `list_images` and `count_images` keep: images rated at least `min_rating`, with this
    `flag`, with this `label` (`None`: any). Checked when made (`InvalidValue`), so every store
    refuses the same values with the same message.
    """

    min_rating: int | None = None
    flag: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        check_rating(self.min_rating, self.flag, self.label)

    def conditions(self) -> list[tuple[str, str, Any]]:
        """The filters given, as `(column, operator, value)`: `>=` for the rating, `=` for the others."""
        asked = (("rating", ">=", self.min_rating), ("flag", "=", self.flag), ("label", "=", self.label))
        return [(column, op, value) for column, op, value in asked if value is not None]

    def passes(self, image: ImageRecord) -> bool:
        """Whether the store's query would keep `image` (for lists filtered outside the store)."""
        return (
            (self.min_rating is None or image.rating >= self.min_rating)
            and (self.flag is None or image.flag == self.flag)
            and (self.label is None or image.label == self.label)
        )


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


@dataclass(frozen=True)
class Favorite:
    """One person's favourite: the image, who marked it (`by`, their name; `by_key`, who they are) and when."""

    image_id: str
    by: str
    by_key: str
    at: str


class FavoritesUnsupported(Exception):
    """The store keeps no favourites (one that does not implement `Favorites`)."""


@runtime_checkable
class Favorites(Protocol):
    """Favourites per person, beside a `Store` (the SQL stores): each write with its feed entry, in one transaction."""

    def set_favorite(
        self, project: str, image_id: str, *, by: str, by_key: str, favorite: bool
    ) -> tuple[Favorite | None, Change | None]:
        """Mark (`favorite`) or unmark the image for the person `by_key` (shown as `by`); `favorite.changed`.

        Returns the favourite as stored (None once unmarked) and the change, or `None` when it was
        already so (idempotent: nothing to publish). Raises `UnknownProject`, `UnknownImage`, `InvalidValue`.
        """

    def list_favorites(self, project: str, *, by_key: str | None = None, by: str | None = None) -> list[Favorite]:
        """The project's favourites, oldest first; only one person's (`by_key`), or those shown as `by`."""

    def submit_favorites(
        self, project: str, name: str, image_ids: Sequence[str], *, by: str
    ) -> tuple[CollectionRecord, list[Change]]:
        """Save these images as a collection named `name` (`collection.saved`), then `favorites.submitted`.

        One transaction; the changes in feed order. Raises `UnknownProject`, `UnknownImage`, `InvalidValue`.
        """


@dataclass(frozen=True)
class Comment:
    """A comment on an image: plain text (never markup), who wrote it (`author`, their name; `author_key`, who
    they are), and the thread it answers (`reply_to`: the thread's first comment, or None for a first one)."""

    id: str
    image_id: str
    project: str
    text: str
    author: str
    author_key: str
    reply_to: str | None
    created_at: str
    resolved: bool

    def data(self) -> dict[str, Any]:
        """The comment as the feed and the API carry it (who wrote it by name only, never their key)."""
        return {
            "id": self.id,
            "image_id": self.image_id,
            "text": self.text,
            "author": self.author,
            "created_at": self.created_at,
            "resolved": self.resolved,
            "reply_to": self.reply_to,
        }


def clean_comment(text: Any) -> str:
    """A comment's text as stored: trimmed, 1 to 2000 characters, lines and tabs kept, no other control characters."""
    if not isinstance(text, str):
        raise InvalidValue(f"text must be a string, not {text!r}")
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise InvalidValue("text must not be empty")
    if len(text) > MAX_COMMENT_CHARS:
        raise InvalidValue(f"text must be at most {MAX_COMMENT_CHARS} characters, not {len(text)}")
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t" for c in text):
        raise InvalidValue("text must not contain control characters")
    return text


class CommentsUnsupported(Exception):
    """The store keeps no comments (one that does not implement `Comments`)."""


@runtime_checkable
class Comments(Protocol):
    """Comments on images, beside a `Store`: each write with its feed entry, in one transaction. Shared: everyone
    who sees the image reads them (unlike favourites)."""

    def add_comment(
        self, project: str, image_id: str, text: str, *, author: str, author_key: str, reply_to: str | None = None
    ) -> tuple[Comment, Change]:
        """A new comment on the image (`comment.created`); `text` is cleaned by `clean_comment`.

        `reply_to` must be a comment of the same image (else `InvalidValue`); a reply to a reply answers
        the thread's first comment (one level of threading). Raises `UnknownProject`, `UnknownImage`,
        `InvalidValue`.
        """

    def list_comments(self, project: str, image_id: str) -> list[Comment]:
        """The image's comments, oldest first. Raises `UnknownProject`, `UnknownImage`."""

    def get_comment(self, project: str, image_id: str, comment_id: str) -> Comment | None:
        """The comment, if it is one of this image's."""

    def resolve_comment(
        self, project: str, image_id: str, comment_id: str, *, resolved: bool
    ) -> tuple[Comment, Change | None]:
        """Mark the comment resolved or open again (`comment.updated`; None when it already was so).

        Raises `UnknownProject`, `UnknownComment`.
        """

    def delete_comment(self, project: str, image_id: str, comment_id: str) -> tuple[Comment, Change]:
        """Delete the comment and the replies to it (one `comment.deleted`).

        Returns the comment as it was. Raises `UnknownProject`, `UnknownComment`.
        """

    def comment_counts(self, project: str) -> dict[str, int]:
        """How many comments each image of the project has (images without any are left out)."""


class Store(Protocol):
    def ensure_project(self, project: str) -> None:
        """Create the project if it does not exist yet."""

    def has_project(self, project: str) -> bool: ...

    def projects(self) -> list[str]: ...

    def find_by_sha(self, project: str, sha256: str) -> ImageRecord | None:
        """The image whose current version has these bytes, else one that had them in an older version."""

    def add_image(self, image: ImageRecord, *, device: Device | None = None) -> tuple[ImageRecord, Change | None]:
        """Insert the image (its version 1, made by `device`) and its `image.created` feed entry in one transaction.

        Returns the stored record (with its `seq`) and the change, or the existing record and
        `None` when the same bytes are already an image's current version (idempotent, nothing
        published). Bytes that only an older version had make a new image.
        """

    def add_version(
        self, project: str, image_id: str, content: ImageRecord, *, base_sha256: str, device: Device | None = None
    ) -> VersionResult:
        """Make `content` (new bytes; its id, seq and ratings are ignored) the next version of the image.

        `base_sha256` is the version the sender's bytes were made from. Decided in one transaction,
        in this order: bytes that are some image's current version change nothing (`unchanged`,
        that image); a base that is the current version, or the current version of a conflict
        copy of the image, makes the next version of that image (`updated`, one `image.updated`
        entry); bytes that were an older version of some image change nothing (a retry of an
        upload that already arrived); otherwise both sides changed the same base (`conflict`):
        the new bytes become the image's next version and the version they replace becomes a
        new image named by `conflict_name` (`image.updated`, then `image.created` for the copy).
        The image keeps its id, ratings and `seq`. Raises `UnknownProject`, `UnknownImage`.
        """

    def announce_preview(self, project: str, image_id: str, sha256: str) -> Change | None:
        """Write an `image.updated` entry with data `PREVIEW_MADE`: the preview of these bytes now exists.

        Returns the change, or `None` (nothing written) when the image is gone or its current version
        is other bytes by now. The image itself does not change. Raises `UnknownProject`.
        """

    def image_versions(self, project: str, image_id: str) -> list[ImageVersion]:
        """Every version of the image, oldest first (the last is current). Raises `UnknownImage`."""

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

    def delete_image(
        self, project: str, image_id: str, *, if_sha256: str | None = None
    ) -> tuple[ImageRecord, list[Change]]:
        """Delete an image with all its versions, in one transaction; returns it as it was and the changes.

        Every live collection that holds it loses it (one `collection.updated` remove each, as an
        edit would), then one `image.deleted` entry. A deleted collection's tombstone forgets it too,
        so `undelete` never brings back a deleted image. `if_sha256`: delete only while that is the
        current version's SHA-256, else raise `VersionChanged` (another device changed it since).
        Raises `UnknownProject`, `UnknownImage`, `VersionChanged`. The files stay in the blob store.
        """

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
