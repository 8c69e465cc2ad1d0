"""`SqlImages`: `SqlStore`'s images, their versions and ratings (see `dashboard.store.Store`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from dashboard import pairs
from dashboard.events import (
    IMAGE_CREATED,
    IMAGE_UPDATED,
    PAIRED_JPEG,
    PAIRED_RAW,
    PREVIEW_MADE,
    RATING_CHANGED,
    Change,
    Device,
    ImageRecord,
    ImageVersion,
    new_id,
)
from dashboard.store import (
    CONFLICT,
    UNCHANGED,
    UPDATED,
    ImageFilters,
    UnknownImage,
    UnknownProject,
    VersionResult,
    check_rating,
    conflict_name,
)
from dashboard.store.records import (
    IMAGE_COLUMNS,
    IMAGE_NAMES,
    VERSION_COLUMNS,
    Connection,
    create_project,
    find_image_by_sha,
    image_by_sha,
    image_from_row,
    load_image,
    load_versions,
)
from dashboard.store.sql_base import SqlBase
from dashboard.timeutil import utc_now_iso

#: What a new version of an image replaces; the rest (id, ratings, `seq`…) stays the image's.
_CONTENT_NAMES = (
    "filename", "sha256", "size_bytes", "width", "height", "format", "mime", "captured_at",
    "camera_make", "camera_model", "exif", "version",
    "raw_sha256", "raw_filename", "raw_size_bytes", "raw_format",
)  # fmt: skip
_RAW_NAMES = ("raw_sha256", "raw_filename", "raw_size_bytes", "raw_format")
_TEXT_NAMES = (
    "filename",
    "captured_at",
    "camera_make",
    "camera_model",
    "raw_filename",
)  # free text from files and devices
_NEWEST = 2**62  # `list_images(before=None)`: above every seq


class SqlImages(SqlBase):
    """Adding, versioning, listing and rating images; each write in one transaction under the project's lock."""

    def find_by_sha(self, project: str, sha256: str) -> ImageRecord | None:
        with self._snapshot() as conn:
            return find_image_by_sha(conn, project, sha256)

    def add_image(
        self, image: ImageRecord, *, device: Device | None = None, pair_key: str | None = None
    ) -> tuple[ImageRecord, Change | None]:
        check_rating(image.rating, image.flag, image.label)
        with self._transaction() as conn:
            create_project(conn, image.project, image.created_at)
            self._lock(conn, image.project)
            existing = image_by_sha(conn, image.project, image.sha256)
            if existing is not None:
                return existing, None
            if pair_key is not None:
                partner = self._partner(conn, image, pair_key)
                if partner is not None:
                    return self._pair(conn, partner, image, device)
            stored = replace(image, seq=self._next_seq(conn, image.project), version=1)
            self._insert_image(conn, stored)
            if pair_key is not None:
                conn.execute("UPDATE images SET pair_key = ? WHERE id = ?", (pair_key, stored.id))
            self._insert_version(conn, stored, stored.seq, stored.created_at, device)
            change = self._record(conn, Change(stored.project, stored.seq, IMAGE_CREATED, stored.created_at, stored))
        return stored, change

    def _partner(self, conn: Connection, image: ImageRecord, pair_key: str) -> ImageRecord | None:
        """The stored image `image` is the other file of (`dashboard.pairs`), newest first, if any."""
        # Sorted here, not by ORDER BY: with it, SQLite walked the project by seq instead of using the pair index.
        rows = conn.execute(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE project = ? AND pair_key = ?", (image.project, pair_key)
        ).fetchall()
        now = image.created_at
        candidates = sorted(map(image_from_row, rows), key=lambda c: c.seq, reverse=True)
        return next((c for c in candidates if pairs.pairs_with(c, image, now=now)), None)

    def _pair(
        self, conn: Connection, partner: ImageRecord, new: ImageRecord, device: Device | None
    ) -> tuple[ImageRecord, Change]:
        """Make `new` the second file of `partner` (in the caller's transaction); one `image.updated` entry.

        A RAW joins as the image's RAW file (the JPEG stays shown, the version too); a JPEG becomes
        the image's next version, shown from now on, with the RAW it replaces as its RAW file.
        """
        if pairs.role(new.format) == pairs.RAW:
            paired = replace(
                partner,
                raw_sha256=new.sha256,
                raw_filename=new.filename,
                raw_size_bytes=new.size_bytes,
                raw_format=new.format,
            )
            conn.execute(
                f"UPDATE images SET {', '.join(f'{c} = ?' for c in _RAW_NAMES)} WHERE id = ?",
                (
                    paired.raw_sha256,
                    self._text(paired.raw_filename),
                    paired.raw_size_bytes,
                    paired.raw_format,
                    paired.id,
                ),
            )
            seq = self._next_seq(conn, partner.project)
            change = self._record(
                conn, Change(partner.project, seq, IMAGE_UPDATED, new.created_at, paired, dict(PAIRED_RAW))
            )
            return paired, change
        content = replace(
            new,
            raw_sha256=partner.sha256,
            raw_filename=partner.filename,
            raw_size_bytes=partner.size_bytes,
            raw_format=partner.format,
        )
        result = self._next_version(conn, partner, content, device, data=dict(PAIRED_JPEG))
        return result.image, result.changes[0]

    def add_version(
        self, project: str, image_id: str, content: ImageRecord, *, base_sha256: str, device: Device | None = None
    ) -> VersionResult:
        with self._transaction() as conn:
            self._lock(conn, project)
            image = load_image(conn, project, image_id)
            if image is None:
                raise UnknownImage(project, [image_id])
            # The order of these rules is the contract (see `Store.add_version`).
            current = image_by_sha(conn, project, content.sha256)
            if current is not None:
                return VersionResult(current, UNCHANGED)
            if base_sha256 == image.sha256:
                return self._next_version(conn, image, content, device)
            row = conn.execute(
                f"SELECT {IMAGE_COLUMNS} FROM images WHERE project = ? AND sha256 = ? AND conflict_of = ?",
                (project, base_sha256, image.id),
            ).fetchone()
            if row is not None:
                return self._next_version(conn, image_from_row(row), content, device)
            earlier = find_image_by_sha(conn, project, content.sha256)
            if earlier is not None:
                return VersionResult(earlier, UNCHANGED)
            # Both sides changed the same base: the newer upload becomes current, and the version it
            # would have replaced is kept as an image of its own (created after the update, so the
            # UNIQUE (project, sha256) of current versions holds at every statement).
            loser = load_versions(conn, image.id)[-1]
            updated = self._next_version(conn, image, content, device)
            now = utc_now_iso()
            seq = self._next_seq(conn, project)
            kept = replace(
                image,
                raw_sha256=None,  # a pair's RAW stays with the image; the copy keeps only the version it replaced
                raw_filename=None,
                raw_size_bytes=None,
                raw_format=None,
                id=new_id(),
                filename=conflict_name(image.filename, loser.device_name, loser.created_at),
                created_at=now,
                seq=seq,
                rating=0,
                flag="none",
                label="none",
                version=1,
                conflict_of=image.id,
            )
            self._insert_image(conn, kept)
            loser_device = Device(loser.device_id, loser.device_name or "") if loser.device_id else None
            self._insert_version(conn, kept, seq, loser.created_at, loser_device)
            created = self._record(conn, Change(project, seq, IMAGE_CREATED, now, kept))
            return VersionResult(updated.image, CONFLICT, kept, (*updated.changes, created))

    def _next_version(
        self,
        conn: Connection,
        image: ImageRecord,
        content: ImageRecord,
        device: Device | None,
        *,
        data: dict[str, Any] | None = None,
    ) -> VersionResult:
        """Write `content` as the image's next version with its `image.updated` entry (in the caller's transaction).

        A pair's RAW file stays the image's unless `content` brings one (the JPEG that joins a RAW).
        """
        raw = content if content.raw_sha256 is not None else image
        new = replace(
            content,
            raw_sha256=raw.raw_sha256,
            raw_filename=raw.raw_filename,
            raw_size_bytes=raw.raw_size_bytes,
            raw_format=raw.raw_format,
            id=image.id,
            project=image.project,
            created_at=image.created_at,
            seq=image.seq,
            rating=image.rating,
            flag=image.flag,
            label=image.label,
            version=image.version + 1,
            conflict_of=image.conflict_of,
        )
        values = self._image_values(new)
        conn.execute(
            f"UPDATE images SET {', '.join(f'{c} = ?' for c in _CONTENT_NAMES)} WHERE id = ?",
            [*(values[c] for c in _CONTENT_NAMES), new.id],
        )
        seq = self._next_seq(conn, image.project)
        self._insert_version(conn, new, seq, content.created_at, device)
        change = self._record(conn, Change(image.project, seq, IMAGE_UPDATED, content.created_at, new, data or {}))
        return VersionResult(new, UPDATED, None, (change,))

    def _image_values(self, image: ImageRecord) -> dict[str, Any]:
        """The image's column values as bound: EXIF as JSON text, free text as the database holds it."""
        values = {**image.to_dict(), "exif": json.dumps(image.exif)}
        for name in _TEXT_NAMES:
            values[name] = self._text(values[name])
        return values

    def _insert_image(self, conn: Connection, image: ImageRecord) -> None:
        values = self._image_values(image)
        conn.execute(
            f"INSERT INTO images ({IMAGE_COLUMNS}) VALUES ({', '.join('?' * len(IMAGE_NAMES))})",
            [values[c] for c in IMAGE_NAMES],
        )
        # The project's count, kept with the rows it counts (its row is locked): `count_images` reads it.
        conn.execute("UPDATE projects SET image_count = image_count + 1 WHERE name = ?", (image.project,))

    def _insert_version(
        self, conn: Connection, image: ImageRecord, seq: int, created_at: str, device: Device | None
    ) -> None:
        """Record the image's current bytes as its version `image.version`, made by `device` at feed entry `seq`."""
        conn.execute(
            f"INSERT INTO image_versions (project, {VERSION_COLUMNS}) VALUES ({', '.join('?' * 14)})",
            (
                image.project,
                image.id,
                image.version,
                image.sha256,
                self._text(image.filename),
                image.size_bytes,
                image.width,
                image.height,
                image.format,
                image.mime,
                created_at,
                seq,
                device.id if device else None,
                self._text(device.name) if device else None,
            ),
        )

    def announce_preview(self, project: str, image_id: str, sha256: str) -> Change | None:
        with self._transaction() as conn:
            self._lock(conn, project)
            image = load_image(conn, project, image_id)
            if image is None or image.sha256 != sha256:
                return None
            seq = self._next_seq(conn, project)
            return self._record(conn, Change(project, seq, IMAGE_UPDATED, utc_now_iso(), image, dict(PREVIEW_MADE)))

    def image_versions(self, project: str, image_id: str) -> list[ImageVersion]:
        with self._snapshot() as conn:
            self._require(conn, project)
            if load_image(conn, project, image_id) is None:
                raise UnknownImage(project, [image_id])
            return load_versions(conn, image_id)

    def get_image(self, image_id: str) -> ImageRecord | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {IMAGE_COLUMNS} FROM images WHERE id = ?", (image_id,)).fetchone()
        return image_from_row(row) if row else None

    def get_images(self, project: str, image_ids: Iterable[str]) -> list[ImageRecord]:
        ids = list(image_ids)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {IMAGE_COLUMNS} FROM images"
                f" WHERE project = ? AND id IN (SELECT image_id FROM {self._ID_LIST})",
                (project, self._id_list(ids)),
            ).fetchall()
        found = {r["id"]: image_from_row(r) for r in rows}
        return [found[i] for i in ids if i in found]

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
        where, params = _where(ImageFilters(min_rating, flag, label))
        with self._read() as conn:
            self._require(conn, project)
            rows = conn.execute(
                f"SELECT {IMAGE_COLUMNS} FROM images WHERE project = ? AND seq < ?{where} ORDER BY seq DESC LIMIT ?",
                (project, _NEWEST if before is None else before, *params, limit),
            ).fetchall()
        return [image_from_row(r) for r in rows]

    def count_images(
        self, project: str, *, min_rating: int | None = None, flag: str | None = None, label: str | None = None
    ) -> int:
        where, params = _where(ImageFilters(min_rating, flag, label))
        with self._read() as conn:
            if not where:  # the project's own count: one row, not a walk over every image
                row = conn.execute("SELECT image_count FROM projects WHERE name = ?", (project,)).fetchone()
                if row is None:
                    raise UnknownProject(project)
                return int(row["image_count"])
            self._require(conn, project)
            row = conn.execute(f"SELECT count(*) AS n FROM images WHERE project = ?{where}", (project, *params))
            return int(row.fetchone()["n"])

    def set_rating(
        self,
        project: str,
        image_id: str,
        *,
        rating: int | None = None,
        flag: str | None = None,
        label: str | None = None,
    ) -> tuple[ImageRecord, Change | None]:
        check_rating(rating, flag, label)
        with self._transaction() as conn:
            self._lock(conn, project)
            current = load_image(conn, project, image_id)
            if current is None:
                raise UnknownImage(project, [image_id])
            new = replace(
                current,
                rating=current.rating if rating is None else rating,
                flag=current.flag if flag is None else flag,
                label=current.label if label is None else label,
            )
            if new == current:
                return current, None
            conn.execute(
                "UPDATE images SET rating = ?, flag = ?, label = ? WHERE id = ?",
                (new.rating, new.flag, new.label, new.id),
            )
            data = {"image_id": new.id, "rating": new.rating, "flag": new.flag, "label": new.label}
            change = self._record(
                conn, Change(project, self._next_seq(conn, project), RATING_CHANGED, utc_now_iso(), data=data)
            )
        return new, change


def _where(filters: ImageFilters) -> tuple[str, list[Any]]:
    """The filters as `AND` terms to append to a `WHERE`, and their parameters."""
    conditions = filters.conditions()
    return "".join(f" AND {column} {op} ?" for column, op, _ in conditions), [value for *_, value in conditions]
