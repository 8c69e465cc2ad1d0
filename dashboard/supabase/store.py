"""`SupabaseStore`: the `Store` on a Supabase project's tables, through PostgREST with supabase-py.

PostgREST runs each request in a transaction of its own and cannot hold one across requests, so
every write is one database function of `supabase/migrations/` (called with `rpc`): it locks the
project's row, applies `PostgresStore`'s rules and writes the change with its feed entry, all in
one transaction. Reads are plain table (and view) reads. Checks that need no database (ratings,
names, edit shapes) are made here first, with the same messages as the other stores.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import httpx
from postgrest.exceptions import APIError

from dashboard.events import Change, CollectionRecord, Device, ImageRecord, ImageVersion, new_id
from dashboard.store import (
    EDIT_OPS,
    MAX_BY_KEY_CHARS,
    CollectionDeleted,
    CollectionEdit,
    Comment,
    Favorite,
    ImageFilters,
    InvalidValue,
    NotInCollection,
    UnknownCollection,
    UnknownComment,
    UnknownImage,
    UnknownProject,
    VersionChanged,
    VersionResult,
    check_rating,
    clean_comment,
    clean_name,
)
from dashboard.supabase import sync_client
from dashboard.timeutil import utc_now_iso

#: The `fotoflo_schema_version()` these migrations create; a project at another version is refused.
SCHEMA_VERSION = 7
IDS_PER_REQUEST = 100  # ids in one `in.(…)` filter: keeps the URL short
PAGE_ROWS = 1000  # Supabase's PostgREST returns at most this many rows a request (its "Max rows")
_VERSION_FIELDS = (
    "image_id,version,sha256,filename,size_bytes,width,height,format,mime,created_at,seq,device_id,device_name"
)


class SchemaMissing(RuntimeError):
    """The Supabase project lacks Fotoflo's tables and functions (or has another version of them)."""


class SupabaseStore:
    """`Store` on the Supabase project at `url` with the service role `key`; see `dashboard.store.Store`.

    Thread-safe (one `httpx.Client`, which pools connections). `transport` replaces the network.
    Network errors and PostgREST errors Fotoflo does not expect propagate, as database errors do
    from the other stores.
    """

    def __init__(self, url: str, key: str, *, transport: httpx.BaseTransport | None = None, timeout_s: float = 10.0):
        self.url = url
        self._client, self._http = sync_client(url, key, transport=transport, timeout_s=timeout_s)
        try:
            version = self._rpc("fotoflo_schema_version")
        except APIError as exc:
            self._http.close()
            if exc.code in ("PGRST202", "42883"):
                raise SchemaMissing(
                    "this Supabase project has no Fotoflo schema: run supabase/migrations/*.sql on it (see README)"
                ) from exc
            raise
        if version != SCHEMA_VERSION:
            self._http.close()
            raise SchemaMissing(
                f"the Supabase project has Fotoflo schema version {version}, this Fotoflo needs {SCHEMA_VERSION}:"
                " run supabase/migrations/*.sql on it, in order (see README)"
            )

    # -- plumbing ---------------------------------------------------------------------------

    def _rpc(self, fn: str, **params: Any) -> Any:
        try:
            return self._client.rpc(fn, params).execute().data
        except APIError as exc:
            project = params.get("p_project") or (params.get("p_image") or {}).get("project", "")
            raise _translate(exc, project) from exc

    def _rows(self, query: Any) -> list[dict[str, Any]]:
        return list(query.execute().data)

    def _require(self, project: str) -> None:
        if not self.has_project(project):
            raise UnknownProject(project)

    # -- projects -------------------------------------------------------------------------

    def ensure_project(self, project: str) -> None:
        self._rpc("fotoflo_ensure_project", p_project=project, p_created_at=utc_now_iso())

    def has_project(self, project: str) -> bool:
        return bool(self._rows(self._client.table("projects").select("name").eq("name", project).limit(1)))

    def projects(self) -> list[str]:
        names: list[str] = []
        while True:
            query = self._client.table("projects").select("name").order("name").limit(PAGE_ROWS)
            page = self._rows(query.gt("name", names[-1]) if names else query)
            names += [r["name"] for r in page]
            if len(page) < PAGE_ROWS:
                # Sorted here: by code point, as SQLite sorts, whatever the database's collation.
                return sorted(names)

    # -- images ---------------------------------------------------------------------------

    def find_by_sha(self, project: str, sha256: str) -> ImageRecord | None:
        found = self._rpc("fotoflo_find_by_sha", p_project=project, p_sha256=sha256)
        return _image(found) if found else None

    def add_image(self, image: ImageRecord, *, device: Device | None = None) -> tuple[ImageRecord, Change | None]:
        check_rating(image.rating, image.flag, image.label)
        result = self._rpc("fotoflo_add_image", p_image=_clean(image.to_dict()), p_device=_device(device))
        return _image(result["image"]), _change(result["change"])

    def add_version(
        self, project: str, image_id: str, content: ImageRecord, *, base_sha256: str, device: Device | None = None
    ) -> VersionResult:
        result = self._rpc(
            "fotoflo_add_version",
            p_project=project,
            p_image_id=image_id,
            p_content=_clean(content.to_dict()),
            p_base_sha256=base_sha256,
            p_device=_device(device),
            p_copy_id=new_id(),
            p_now=utc_now_iso(),
        )
        copy = result["conflict_copy"]
        return VersionResult(
            _image(result["image"]),
            result["outcome"],
            _image(copy) if copy else None,
            tuple(Change.from_dict(c) for c in result["changes"]),
        )

    def announce_preview(self, project: str, image_id: str, sha256: str) -> Change | None:
        result = self._rpc(
            "fotoflo_announce_preview", p_project=project, p_image_id=image_id, p_sha256=sha256, p_now=utc_now_iso()
        )
        return _change(result)

    def image_versions(self, project: str, image_id: str) -> list[ImageVersion]:
        rows = self._rows(
            self._client.table("image_versions")
            .select(_VERSION_FIELDS)
            .eq("project", project)
            .eq("image_id", image_id)
            .order("version")
        )
        if not rows:  # every image has a version: none means no such image (or project)
            self._require(project)
            raise UnknownImage(project, [image_id])
        return [ImageVersion(**r) for r in rows]

    def get_image(self, image_id: str) -> ImageRecord | None:
        rows = self._rows(self._client.table("images").select("*").eq("id", image_id))
        return _image(rows[0]) if rows else None

    def get_images(self, project: str, image_ids: Iterable[str]) -> list[ImageRecord]:
        ids = list(image_ids)
        found: dict[str, ImageRecord] = {}
        for start in range(0, len(ids), IDS_PER_REQUEST):
            chunk = ids[start : start + IDS_PER_REQUEST]
            for row in self._rows(self._client.table("images").select("*").eq("project", project).in_("id", chunk)):
                found[row["id"]] = _image(row)
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
        filters = ImageFilters(min_rating, flag, label)
        query = self._filtered(self._client.table("images").select("*"), project, filters)
        if before is not None:
            query = query.lt("seq", before)
        rows = self._rows(query.order("seq", desc=True).limit(limit))
        if not rows:
            self._require(project)
        return [_image(r) for r in rows]

    def count_images(
        self, project: str, *, min_rating: int | None = None, flag: str | None = None, label: str | None = None
    ) -> int:
        filters = ImageFilters(min_rating, flag, label)
        query = self._client.table("images").select("id", count="exact", head=True)  # type: ignore[arg-type]
        count = self._filtered(query, project, filters).execute().count or 0
        if not count:
            self._require(project)
        return int(count)

    @staticmethod
    def _filtered(query: Any, project: str, filters: ImageFilters) -> Any:
        query = query.eq("project", project)
        for column, op, value in filters.conditions():
            query = query.gte(column, value) if op == ">=" else query.eq(column, value)
        return query

    def delete_image(
        self, project: str, image_id: str, *, if_sha256: str | None = None
    ) -> tuple[ImageRecord, list[Change]]:
        result = self._rpc(
            "fotoflo_delete_image", p_project=project, p_image_id=image_id, p_if_sha256=if_sha256, p_now=utc_now_iso()
        )
        return _image(result["image"]), [Change.from_dict(c) for c in result["changes"]]

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
        result = self._rpc(
            "fotoflo_set_rating",
            p_project=project,
            p_image_id=image_id,
            p_rating=rating,
            p_flag=flag,
            p_label=label,
            p_now=utc_now_iso(),
        )
        return _image(result["image"]), _change(result["change"])

    # -- collections ----------------------------------------------------------------------

    def save_collection(self, project: str, name: str, image_ids: Sequence[str]) -> tuple[CollectionRecord, Change]:
        result = self._rpc(
            "fotoflo_save_collection",
            p_project=project,
            p_name=clean_name(name),
            p_image_ids=_unique(image_ids),
            p_id=new_id(),
            p_now=utc_now_iso(),
        )
        return _collection(result["collection"]), Change.from_dict(result["change"])

    def duplicate_collection(
        self, project: str, collection_id: str, name: str | None = None
    ) -> tuple[CollectionRecord, Change]:
        result = self._rpc(
            "fotoflo_duplicate_collection",
            p_project=project,
            p_collection_id=collection_id,
            p_name=None if name is None else clean_name(name),
            p_id=new_id(),
            p_now=utc_now_iso(),
        )
        return _collection(result["collection"]), Change.from_dict(result["change"])

    def edit_collection(
        self, project: str, collection_id: str, edit: CollectionEdit
    ) -> tuple[CollectionRecord, Change | None]:
        if edit.op not in EDIT_OPS:
            raise InvalidValue(f"op must be one of {', '.join(EDIT_OPS)}, not {edit.op!r}")
        name = clean_name(edit.name) if edit.op == "rename" else None
        asked: list[str] = []
        if edit.op in ("add", "remove", "move"):
            asked = _unique(edit.image_ids)
            if edit.index is not None and (edit.op != "add" or edit.before is not None):
                raise InvalidValue("index is only for add, and not together with before")
            if edit.before is not None and (edit.op == "remove" or edit.before in asked):
                raise InvalidValue("before must be another image of the collection, and only for add or move")
        result = self._rpc(
            "fotoflo_edit_collection",
            p_project=project,
            p_collection_id=collection_id,
            p_op=edit.op,
            p_image_ids=asked,
            p_before=edit.before if edit.op in ("add", "move") else None,
            p_index=edit.index if edit.op == "add" else None,
            p_name=name,
            p_image_id=edit.image_id if edit.op == "cover" else None,
            p_now=utc_now_iso(),
        )
        return _collection(result["collection"]), _change(result["change"])

    def get_collection(self, project: str, collection_id: str) -> CollectionRecord | None:
        rows = self._rows(
            self._client.table("fotoflo_collections").select("*").eq("id", collection_id).eq("project", project)
        )
        return _collection_row(rows[0]) if rows else None

    # -- favourites per person (`dashboard.store.Favorites`) ------------------------------------

    def set_favorite(
        self, project: str, image_id: str, *, by: str, by_key: str, favorite: bool
    ) -> tuple[Favorite | None, Change | None]:
        result = self._rpc(
            "fotoflo_set_favorite",
            p_project=project,
            p_image_id=image_id,
            p_by=clean_name(by),
            p_by_key=clean_name(by_key[:MAX_BY_KEY_CHARS]),
            p_favorite=favorite,
            p_now=utc_now_iso(),
        )
        stored = result["favorite"]
        return (Favorite(**stored) if stored else None), _change(result["change"])

    def list_favorites(self, project: str, *, by_key: str | None = None, by: str | None = None) -> list[Favorite]:
        self._require(project)
        query = self._client.table("favorites").select("image_id,by_name,by_key,at").eq("project", project)
        if by_key is not None:
            query = query.eq("by_key", by_key)
        if by is not None:
            query = query.eq("by_name", by)
        rows: list[dict[str, Any]] = []
        while True:  # pages of at most PostgREST's max rows
            page = self._rows(query.order("seq").offset(len(rows)).limit(PAGE_ROWS))  # as they were marked
            rows += page
            if len(page) < PAGE_ROWS:
                break
        return [Favorite(r["image_id"], r["by_name"], r["by_key"], r["at"]) for r in rows]

    def submit_favorites(
        self, project: str, name: str, image_ids: Sequence[str], *, by: str
    ) -> tuple[CollectionRecord, list[Change]]:
        result = self._rpc(
            "fotoflo_submit_favorites",
            p_project=project,
            p_name=clean_name(name),
            p_image_ids=_unique(image_ids),
            p_by=by,
            p_id=new_id(),
            p_now=utc_now_iso(),
        )
        return _collection(result["collection"]), [Change.from_dict(c) for c in result["changes"]]

    # -- comments on images (`dashboard.store.Comments`) -------------------------------------------

    def add_comment(
        self, project: str, image_id: str, text: str, *, author: str, author_key: str, reply_to: str | None = None
    ) -> tuple[Comment, Change]:
        if reply_to is not None and not isinstance(reply_to, str):
            raise InvalidValue(f"reply_to must be a comment id or null, not {reply_to!r}")
        result = self._rpc(
            "fotoflo_add_comment",
            p_project=project,
            p_image_id=image_id,
            p_id=new_id(),
            p_text=_clean(clean_comment(text)),
            p_author=_clean(clean_name(author)),
            p_author_key=clean_name(author_key[:MAX_BY_KEY_CHARS]),
            p_reply_to=reply_to,
            p_now=utc_now_iso(),
        )
        change = _change(result["change"])
        assert change is not None
        return Comment(**result["comment"]), change

    def list_comments(self, project: str, image_id: str) -> list[Comment]:
        self._require(project)
        if not self._rows(self._client.table("images").select("id").eq("project", project).eq("id", image_id)):
            raise UnknownImage(project, [image_id])
        query = self._client.table("comments").select("*").eq("project", project).eq("image_id", image_id)
        rows: list[dict[str, Any]] = []
        while True:  # pages of at most PostgREST's max rows
            page = self._rows(query.order("seq").offset(len(rows)).limit(PAGE_ROWS))
            rows += page
            if len(page) < PAGE_ROWS:
                break
        return [_comment(r) for r in rows]

    def get_comment(self, project: str, image_id: str, comment_id: str) -> Comment | None:
        query = self._client.table("comments").select("*").eq("project", project).eq("image_id", image_id)
        rows = self._rows(query.eq("id", comment_id))
        return _comment(rows[0]) if rows else None

    def resolve_comment(
        self, project: str, image_id: str, comment_id: str, *, resolved: bool
    ) -> tuple[Comment, Change | None]:
        if not isinstance(resolved, bool):
            raise InvalidValue(f"resolved must be true or false, not {resolved!r}")
        result = self._rpc(
            "fotoflo_resolve_comment",
            p_project=project,
            p_image_id=image_id,
            p_id=comment_id,
            p_resolved=resolved,
            p_now=utc_now_iso(),
        )
        return Comment(**result["comment"]), _change(result["change"])

    def delete_comment(self, project: str, image_id: str, comment_id: str) -> tuple[Comment, Change]:
        result = self._rpc(
            "fotoflo_delete_comment", p_project=project, p_image_id=image_id, p_id=comment_id, p_now=utc_now_iso()
        )
        change = _change(result["change"])
        assert change is not None
        return Comment(**result["comment"]), change

    def comment_counts(self, project: str) -> dict[str, int]:
        self._require(project)
        counts: dict[str, int] = {}
        seen = 0
        while True:  # the ids of every comment, a page at a time (PostgREST has no GROUP BY without a view)
            query = self._client.table("comments").select("image_id").eq("project", project).order("seq")
            page = self._rows(query.offset(seen).limit(PAGE_ROWS))
            seen += len(page)
            for row in page:
                counts[row["image_id"]] = counts.get(row["image_id"], 0) + 1
            if len(page) < PAGE_ROWS:
                return counts

    def list_collections(self, project: str) -> list[CollectionRecord]:
        rows: list[dict[str, Any]] = []
        while True:  # pages by seq, newest first, each page one statement
            query = (
                self._client.table("fotoflo_collections")
                .select("*")
                .eq("project", project)
                .is_("deleted_at", "null")
                .order("seq", desc=True)
                .limit(PAGE_ROWS)
            )
            page = self._rows(query.lt("seq", rows[-1]["seq"]) if rows else query)
            rows += page
            if len(page) < PAGE_ROWS:
                break
        if not rows:
            self._require(project)
        return [_collection_row(r) for r in rows]

    # -- feed -----------------------------------------------------------------------------

    def changes(self, project: str, *, after: int = 0, limit: int = 500) -> list[Change]:
        rows = self._rows(
            self._client.table("fotoflo_feed")
            .select("*")
            .eq("project", project)
            .gt("seq", after)
            .order("seq")
            .limit(limit)
        )
        if not rows:
            self._require(project)
        return [Change.from_dict(r) for r in rows]

    def last_seq(self, project: str) -> int:
        rows = self._rows(self._client.table("projects").select("last_seq").eq("name", project))
        if not rows:
            raise UnknownProject(project)
        return int(rows[0]["last_seq"])

    def close(self) -> None:
        self._http.close()


# -- wire forms -----------------------------------------------------------------------------


def _translate(exc: APIError, project: str) -> Exception:
    """The Store's exception for an error a Fotoflo function raised (HINT 'fotoflo'), else `exc` itself."""
    if exc.hint != "fotoflo":
        return exc
    try:
        detail = json.loads(exc.details) if isinstance(exc.details, str) else exc.details
    except ValueError:
        detail = exc.details
    code = exc.message
    if code == "unknown_project":
        return UnknownProject(detail)
    if code == "unknown_image":
        return UnknownImage(project, list(detail or []))
    if code == "unknown_collection":
        return UnknownCollection(detail)
    if code == "unknown_comment":
        return UnknownComment(detail)
    if code == "collection_deleted":
        return CollectionDeleted(detail)
    if code == "not_in_collection":
        return NotInCollection(f"image {detail!r} is not in the collection")
    if code == "invalid_value":
        return InvalidValue(detail)
    if code == "version_changed":
        return VersionChanged(detail)
    return exc


def _clean(value: Any) -> Any:
    # PostgreSQL text (and jsonb) cannot hold NUL; as PostgresStore does, a NUL becomes U+FFFD.
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _comment(row: dict[str, Any]) -> Comment:
    """A row of the `comments` table."""
    return Comment(
        id=row["id"],
        image_id=row["image_id"],
        project=row["project"],
        text=row["text"],
        author=row["author_name"],
        author_key=row["author_key"],
        reply_to=row["reply_to"],
        created_at=row["created_at"],
        resolved=bool(row["resolved"]),
    )


def _device(device: Device | None) -> dict[str, str] | None:
    return _clean({"id": device.id, "name": device.name}) if device else None


def _image(row: dict[str, Any]) -> ImageRecord:
    return ImageRecord.from_dict(row)


def _change(data: dict[str, Any] | None) -> Change | None:
    return Change.from_dict(data) if data else None


def _unique(image_ids: Iterable[str]) -> list[str]:
    """The ids in order, each once (the first time it is named)."""
    if isinstance(image_ids, str) or not all(isinstance(i, str) for i in image_ids):
        raise InvalidValue("image_ids must be a list of image id strings")
    return list(dict.fromkeys(image_ids))


def _collection(data: dict[str, Any]) -> CollectionRecord:
    """A collection as the functions return it (the effective cover already resolved)."""
    return CollectionRecord(**{**data, "image_ids": tuple(data["image_ids"])})


def _collection_row(row: dict[str, Any]) -> CollectionRecord:
    """A row of the `fotoflo_collections` view: the cover is the one set, else the first image."""
    ids = list(row["image_ids"] or [])
    cover = row["cover_image_id"] if row["cover_image_id"] in ids else (ids[0] if ids else None)
    return CollectionRecord(
        id=row["id"],
        project=row["project"],
        name=row["name"],
        image_ids=tuple(ids),
        cover_image_id=cover,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
        seq=row["seq"],
        deleted=row["deleted_at"] is not None,
    )
