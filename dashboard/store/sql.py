"""`SqlStore`: the `Store`'s rules and SQL, written once for `SQLiteStore` and `PostgresStore`.

It is put together from parts, one concern each, that all stand on `SqlBase` (`sql_base`: the
engine's hooks, projects, the feed's one writer per project, and how the SQL is written to run on
both engines): `SqlImages` (`sql_images`: images, versions, ratings), `SqlCollections`
(`sql_collections`) and, on top of it, `SqlFavorites` (`sql_favorites`: favourites per person), and
`SqlComments` (`sql_comments`: comments on images).
Deleting an image is here: it edits every collection that holds it.

Every write is one transaction that first locks its project (`_lock`), so each rule sees the state
the project's previous write committed, and its feed entry takes the project's next `seq` in that
same transaction (`_next_seq`): sequence numbers stay gap-free and commit in order.
"""

from __future__ import annotations

from dashboard.events import IMAGE_DELETED, Change, ImageRecord
from dashboard.store import CollectionEdit, UnknownImage, VersionChanged
from dashboard.store.records import load_image
from dashboard.store.sql_comments import SqlComments
from dashboard.store.sql_favorites import SqlFavorites
from dashboard.store.sql_images import SqlImages
from dashboard.timeutil import utc_now_iso


class SqlStore(SqlImages, SqlFavorites, SqlComments):
    """The `Store` contract (see `dashboard.store.Store`) on the tables both engines migrate to."""

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
            conn.execute("DELETE FROM favorites WHERE image_id = ?", (image_id,))  # gone with it, no entry of their own
            conn.execute("DELETE FROM comments WHERE image_id = ?", (image_id,))  # as are its comments
            conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
            conn.execute("UPDATE projects SET image_count = image_count - 1 WHERE name = ?", (project,))
            data = {"image_id": image_id, "filename": image.filename}
            seq = self._next_seq(conn, project)
            changes.append(self._record(conn, Change(project, seq, IMAGE_DELETED, utc_now_iso(), data=data)))
        return image, changes
