"""The `Store` protocol: image metadata plus a durable, per-project change feed.

Implementations are thread-safe and blocking; async callers hop to a worker thread
(`asyncio.to_thread`). The feed is the truth: a change and its feed entry commit in one
transaction, sequence numbers are per project and gap-free, and readers page with cursors.
"""

from __future__ import annotations

from typing import Protocol

from dashboard.events import Change, ImageRecord


class UnknownProject(LookupError):
    """The project does not exist in this store."""


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

    def list_images(self, project: str, *, before: int | None = None, limit: int = 100) -> list[ImageRecord]:
        """Newest first; `before` is the `seq` of the last image of the previous page."""

    def count_images(self, project: str) -> int: ...

    def changes(self, project: str, *, after: int = 0, limit: int = 500) -> list[Change]:
        """Feed entries with `seq > after`, oldest first."""

    def last_seq(self, project: str) -> int:
        """The newest feed sequence of the project (0 when empty)."""

    def close(self) -> None: ...


def open_store(url_or_path: str) -> Store:
    """Open a store from a database URL or a data directory path (SQLite)."""
    from dashboard.store.sqlite import SQLiteStore

    return SQLiteStore(url_or_path)
