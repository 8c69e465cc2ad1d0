"""A project's collections: the list and a new one, one collection and its edits, undelete, duplicate."""

from __future__ import annotations

import asyncio

from dashboard.auth.roles import Action
from dashboard.http.base import ApiError, body_ids, body_optional
from dashboard.http.project import ProjectHandler
from dashboard.http.rules import BODY, OWN, SEEN, Allow
from dashboard.store import CollectionEdit

#: The fields each op of `PATCH .../collections/{collection_id}` takes (besides `op`).
EDIT_FIELDS = {
    "rename": ("name",),
    "add": ("image_ids", "before", "index"),
    "remove": ("image_ids",),
    "move": ("image_ids", "before"),
    "cover": ("image_id",),
}


class CollectionsHandler(ProjectHandler):
    """The project's collections as cards (GET); save a new one (POST)."""

    ACTIONS = {
        "get": Allow(Action.VIEW),  # a link to one collection lists it and those its holder saved
        "post": Allow(Action.COLLECT, project=True, images=BODY),
    }

    async def get(self, project: str) -> None:
        store = self.app.store
        last_seq = await self.run(store.last_seq, project)
        collections = await self.run(store.list_collections, project)
        scope = await self.scope(project)
        if scope is not None:
            collections = [c for c in collections if c.id in scope.collections]
        cards = [self.wire.collection(c, card=True, scope=scope) for c in collections]
        self.write_json({"collections": cards, "last_seq": last_seq})

    async def post(self, project: str) -> None:
        body = self.json_body(fields=("name", "image_ids"))
        name = body.get("name")
        image_ids = body_ids(body, "image_ids", required=False)
        await self.admit(image_ids)
        collection = await self.run(self.app.curator.save_collection, project, name, image_ids)
        await asyncio.to_thread(self.app.access.record_collection, self.principal, project, collection.id)
        self.write_json(self.wire.collection(collection, scope=await self.scope(project, fresh=True)), 201)


class EditHandler(ProjectHandler):
    """Base of the handlers that change one collection through the curator."""

    async def edit(self, project: str, collection_id: str, edit: CollectionEdit) -> None:
        """Apply one collection edit and answer the collection after it, as the principal sees it."""
        # Every image an edit names must be one the principal sees (a link's holder's own collection
        # may still hold images since taken out of the shared one: they are absent to them).
        await self.admit([*edit.image_ids, *(i for i in (edit.before, edit.image_id) if i is not None)])
        scope = await self.scope(project)  # as it was before the edit
        collection = await self.run(self.app.curator.edit_collection, project, collection_id, edit)
        self.write_json(self.wire.collection(collection, scope=scope))


class CollectionHandler(EditHandler):
    """One collection: read it with its images (GET), edit it by one op (PATCH), delete it (DELETE)."""

    ACTIONS = {
        "get": Allow(Action.VIEW, project=True, collection=SEEN),
        "patch": Allow(Action.EDIT_COLLECTION, project=True, collection=OWN, images=BODY),
        "delete": Allow(Action.EDIT_COLLECTION, project=True, collection=OWN),
    }

    async def get(self, project: str, collection_id: str) -> None:
        await self.admit()
        collection = await self.live_collection(project, collection_id)
        scope = await self.scope(project)
        ids = collection.image_ids if scope is None else scope.image_ids(collection.image_ids)
        images = await self.run(self.app.store.get_images, project, ids)
        self.write_json(self.wire.collection(collection, images=images, scope=scope))

    async def patch(self, project: str, collection_id: str) -> None:
        body = self.json_body()
        op = body.get("op")
        if op not in EDIT_FIELDS:
            raise ApiError(400, "bad_argument", f"op must be one of {', '.join(EDIT_FIELDS)}, not {op!r}")
        unknown = sorted(set(body) - {"op", *EDIT_FIELDS[op]})
        if unknown:
            raise ApiError(400, "bad_argument", f"{op} does not take {', '.join(unknown)}")
        if op == "rename" and "name" not in body:
            raise ApiError(400, "bad_argument", "rename needs a name")
        if op == "cover" and "image_id" not in body:
            raise ApiError(400, "bad_argument", "cover needs an image_id (null for the first image)")
        edit = CollectionEdit(
            op=op,
            image_ids=body_ids(body, "image_ids") if "image_ids" in EDIT_FIELDS[op] else (),
            before=body_optional(body, "before", str),
            index=body_optional(body, "index", int),
            name=body.get("name"),
            image_id=body_optional(body, "image_id", str),
        )
        await self.edit(project, collection_id, edit)

    async def delete(self, project: str, collection_id: str) -> None:
        await self.edit(project, collection_id, CollectionEdit("delete"))


class UndeleteHandler(EditHandler):
    """Bring a deleted collection back."""

    ACTIONS = {"post": Allow(Action.EDIT_COLLECTION, project=True, collection=OWN)}

    async def post(self, project: str, collection_id: str) -> None:
        await self.edit(project, collection_id, CollectionEdit("undelete"))


class DuplicateHandler(ProjectHandler):
    """Save a copy of a collection (the caller's own, a client's too)."""

    ACTIONS = {"post": Allow(Action.COLLECT, project=True, collection=SEEN)}

    async def post(self, project: str, collection_id: str) -> None:
        body = self.json_body(fields=("name",))
        await self.admit()
        copy = await self.run(self.app.curator.duplicate_collection, project, collection_id, body.get("name"))
        await asyncio.to_thread(self.app.access.record_collection, self.principal, project, copy.id)
        self.write_json(self.wire.collection(copy, scope=await self.scope(project, fresh=True)), 201)
