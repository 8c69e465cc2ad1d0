"""`SqlFavorites`: `SqlStore`'s favourites per person, and sending them as a collection.

See `dashboard.store.Favorites` for the contract.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboard.events import FAVORITE_CHANGED, FAVORITES_SUBMITTED, Change, CollectionRecord
from dashboard.store import MAX_BY_KEY_CHARS, Favorite, UnknownImage, clean_name
from dashboard.store.sql_collections import SqlCollections, _unique
from dashboard.timeutil import utc_now_iso


class SqlFavorites(SqlCollections):
    """Who marked which image; a mark or unmark that changes nothing writes nothing (idempotent)."""

    def set_favorite(
        self, project: str, image_id: str, *, by: str, by_key: str, favorite: bool
    ) -> tuple[Favorite | None, Change | None]:
        by = clean_name(by)
        by_key = clean_name(by_key[:MAX_BY_KEY_CHARS])
        with self._transaction() as conn:
            self._lock(conn, project)
            known = conn.execute("SELECT 1 FROM images WHERE project = ? AND id = ?", (project, image_id)).fetchone()
            if known is None:
                raise UnknownImage(project, [image_id])
            row = conn.execute(
                "SELECT by_name, at FROM favorites WHERE project = ? AND image_id = ? AND by_key = ?",
                (project, image_id, by_key),
            ).fetchone()
            if (row is not None) == favorite:
                kept = Favorite(image_id, row["by_name"], by_key, row["at"]) if row is not None else None
                return kept, None
            now, seq = utc_now_iso(), self._next_seq(conn, project)
            if favorite:
                conn.execute(
                    "INSERT INTO favorites (project, image_id, by_key, by_name, at, seq) VALUES (?, ?, ?, ?, ?, ?)",
                    (project, image_id, by_key, self._text(by), now, seq),
                )
            else:
                conn.execute(
                    "DELETE FROM favorites WHERE project = ? AND image_id = ? AND by_key = ?",
                    (project, image_id, by_key),
                )
            data = {"image_id": image_id, "by": by, "favorite": favorite}
            change = self._record(conn, Change(project, seq, FAVORITE_CHANGED, now, data=data))
        return (Favorite(image_id, by, by_key, now) if favorite else None), change

    def list_favorites(self, project: str, *, by_key: str | None = None, by: str | None = None) -> list[Favorite]:
        sql = "SELECT image_id, by_name, by_key, at FROM favorites WHERE project = ?"
        args: list[str] = [project]
        if by_key is not None:
            sql += " AND by_key = ?"
            args.append(by_key)
        if by is not None:
            sql += " AND by_name = ?"
            args.append(by)
        with self._read() as conn:
            self._require(conn, project)
            rows = conn.execute(sql + " ORDER BY seq", args).fetchall()  # as they were marked
        return [Favorite(r["image_id"], r["by_name"], r["by_key"], r["at"]) for r in rows]

    def submit_favorites(
        self, project: str, name: str, image_ids: Sequence[str], *, by: str
    ) -> tuple[CollectionRecord, list[Change]]:
        name = clean_name(name)
        ids = _unique(image_ids)
        with self._transaction() as conn:
            self._lock(conn, project)
            self._require_images(conn, project, ids)
            collection, saved = self._create(conn, project, name, ids, None, {"op": "save", "by": by})
            data = {"by": by, "collection_id": collection.id, "count": len(ids)}
            submitted = Change(project, self._next_seq(conn, project), FAVORITES_SUBMITTED, utc_now_iso(), data=data)
            return collection, [saved, self._record(conn, submitted)]
