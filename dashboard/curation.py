"""The one door for ratings, favourites, comments, collections and deleting images: the store writes each change
with its feed entry, then the bus.

Like `Ingestor` for images: the API (and any other caller) is a thin caller of these methods, and a
change is published only after it is committed. An edit that changes nothing publishes nothing.
Blocking; async callers hop to a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboard.bus import Bus
from dashboard.events import Change, CollectionRecord, ImageRecord
from dashboard.store import (
    CollectionEdit,
    Comment,
    Comments,
    CommentsUnsupported,
    Favorite,
    Favorites,
    FavoritesUnsupported,
    Store,
)


class Curator:
    """Rates images and saves and edits collections of one store, announcing each change on the bus."""

    def __init__(self, store: Store, bus: Bus) -> None:
        self.store = store
        self.bus = bus

    def set_rating(
        self,
        project: str,
        image_id: str,
        *,
        rating: int | None = None,
        flag: str | None = None,
        label: str | None = None,
    ) -> ImageRecord:
        image, change = self.store.set_rating(project, image_id, rating=rating, flag=flag, label=label)
        self._publish(change)
        return image

    def delete_image(self, project: str, image_id: str, *, if_sha256: str | None = None) -> ImageRecord:
        """Delete an image: its collections lose it, then `image.deleted` (see `Store.delete_image`)."""
        image, changes = self.store.delete_image(project, image_id, if_sha256=if_sha256)
        for change in changes:
            self._publish(change)
        return image

    def save_collection(self, project: str, name: str, image_ids: Sequence[str]) -> CollectionRecord:
        collection, change = self.store.save_collection(project, name, image_ids)
        self._publish(change)
        return collection

    def duplicate_collection(self, project: str, collection_id: str, name: str | None = None) -> CollectionRecord:
        collection, change = self.store.duplicate_collection(project, collection_id, name)
        self._publish(change)
        return collection

    def edit_collection(self, project: str, collection_id: str, edit: CollectionEdit) -> CollectionRecord:
        collection, change = self.store.edit_collection(project, collection_id, edit)
        self._publish(change)
        return collection

    # -- favourites per person (the SQL stores; `FavoritesUnsupported` on the others) --------------

    @property
    def favorites(self) -> Favorites:
        """The store's favourites; `FavoritesUnsupported` when it keeps none."""
        if not isinstance(self.store, Favorites):
            raise FavoritesUnsupported(f"{type(self.store).__name__} keeps no favourites")
        return self.store

    def list_favorites(self, project: str, *, by_key: str | None = None, by: str | None = None) -> list[Favorite]:
        return self.favorites.list_favorites(project, by_key=by_key, by=by)

    def set_favorite(self, project: str, image_id: str, *, by: str, by_key: str, favorite: bool) -> Favorite | None:
        """Mark or unmark the image for one person (idempotent: a repeat publishes nothing)."""
        stored, change = self.favorites.set_favorite(project, image_id, by=by, by_key=by_key, favorite=favorite)
        self._publish(change)
        return stored

    def submit_favorites(self, project: str, name: str, image_ids: Sequence[str], *, by: str) -> CollectionRecord:
        """Save a person's favourites as a collection named `name`, and say so on the feed (`favorites.submitted`)."""
        collection, changes = self.favorites.submit_favorites(project, name, image_ids, by=by)
        for change in changes:
            self._publish(change)
        return collection

    # -- comments on images (the stores with `Comments`; `CommentsUnsupported` on the others) --------

    @property
    def comments(self) -> Comments:
        """The store's comments; `CommentsUnsupported` when it keeps none."""
        if not isinstance(self.store, Comments):
            raise CommentsUnsupported(f"{type(self.store).__name__} keeps no comments")
        return self.store

    def list_comments(self, project: str, image_id: str) -> list[Comment]:
        return self.comments.list_comments(project, image_id)

    def get_comment(self, project: str, image_id: str, comment_id: str) -> Comment | None:
        return self.comments.get_comment(project, image_id, comment_id)

    def comment_counts(self, project: str) -> dict[str, int]:
        return self.comments.comment_counts(project)

    def add_comment(
        self, project: str, image_id: str, text: str, *, author: str, author_key: str, reply_to: str | None = None
    ) -> Comment:
        """A new comment on the image (or a reply in a thread), published as `comment.created`."""
        comment, change = self.comments.add_comment(
            project, image_id, text, author=author, author_key=author_key, reply_to=reply_to
        )
        self._publish(change)
        return comment

    def resolve_comment(self, project: str, image_id: str, comment_id: str, *, resolved: bool) -> Comment:
        """Resolve or reopen a comment (a repeat publishes nothing)."""
        comment, change = self.comments.resolve_comment(project, image_id, comment_id, resolved=resolved)
        self._publish(change)
        return comment

    def delete_comment(self, project: str, image_id: str, comment_id: str) -> Comment:
        """Delete a comment with its replies, published as one `comment.deleted`."""
        comment, change = self.comments.delete_comment(project, image_id, comment_id)
        self._publish(change)
        return comment

    def _publish(self, change: Change | None) -> None:
        if change is not None:
            self.bus.publish(change.project, change.seq)
