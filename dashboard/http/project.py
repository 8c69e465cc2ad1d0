"""Base of the handlers under `/api/projects/{project}`: the checks `Allow` declares, and what a share link sees.

A share link to one collection reaches only that collection (and those its holder saved) and only
its current images; everything else is answered as absent (`404`), never as forbidden.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from dashboard.auth.access import Scope
from dashboard.auth.roles import Action
from dashboard.events import CollectionRecord
from dashboard.http.base import ApiError, ApiHandler
from dashboard.http.rules import BODY, OWN, PATH, SEEN, Allow
from dashboard.store import (
    CollectionDeleted,
    InvalidValue,
    NotInCollection,
    UnknownCollection,
    UnknownComment,
    UnknownImage,
    UnknownProject,
)

if TYPE_CHECKING:
    from dashboard.app import App

T = TypeVar("T")

#: How a store's refusal is answered: its status, code and message (`ProjectHandler.run`).
STORE_ERRORS: dict[type[Exception], tuple[int, str, Callable[[Exception], str]]] = {
    UnknownProject: (404, "unknown_project", lambda exc: f"no project named {exc.args[0]!r}"),
    UnknownImage: (404, "unknown_image", str),
    UnknownCollection: (404, "unknown_collection", lambda exc: f"no collection {exc.args[0]!r}"),
    CollectionDeleted: (410, "collection_deleted", lambda exc: f"collection {exc.args[0]!r} is deleted"),
    NotInCollection: (409, "not_in_collection", str),
    UnknownComment: (404, "unknown_comment", lambda exc: f"no comment {exc.args[0]!r} on this image"),
    InvalidValue: (400, "bad_argument", str),
}


class ProjectHandler(ApiHandler):
    """A handler of one project's resources: `admit()` runs its method's declared checks; `scope()`
    says what a share link to one collection sees; `run()` answers a store's refusals as JSON."""

    def initialize(self, app: App) -> None:
        super().initialize(app)
        self._scope: Scope | None = None  # a share link's, read once per request (per batch for a stream)
        self._scope_read = False

    async def admit(self, images: Iterable[str] = ()) -> None:
        """Run the checks this method's `Allow` declares after its action: project, collection, images.

        `images`: those the body names (declared `images=BODY`). Call it once the arguments are
        read, before anything is looked up or changed.
        """
        allow = self.allow
        if allow is None:
            raise TypeError(f"{type(self).__name__} declares nothing for {self.request.method}: add it to ACTIONS")
        named = list(images)
        if named and allow.images != BODY:
            raise TypeError(f"{type(self).__name__}: images from the body need images=BODY in ACTIONS")
        project = self.path_kwargs["project"]
        if allow.project:
            await self.require_project(project)
        if allow.collection == SEEN:
            await self.require_visible_collection(project, self.path_kwargs["collection_id"])
        elif allow.collection == OWN:
            await self.require_editable(project, self.path_kwargs["collection_id"])
        if allow.images is not None:
            named = [self.path_kwargs["image_id"]] if allow.images == PATH else named
            await self.require_visible_images(project, named)
        self._admitted = True

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn` in a worker thread, its store errors answered as the API's JSON errors."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except tuple(STORE_ERRORS) as exc:
            status, code, message = next(v for kind, v in STORE_ERRORS.items() if isinstance(exc, kind))
            raise ApiError(status, code, message(exc)) from None

    # -- what the principal may reach: a share link to one collection reaches only that ------------

    async def require_project(self, project: str) -> None:
        if not await asyncio.to_thread(self.app.store.has_project, project):
            raise ApiError(404, "unknown_project", f"no project named {project!r}")

    async def scope(self, project: str, *, fresh: bool = False) -> Scope | None:
        """What a share link to one collection sees in `project` (read once; `fresh`: again); None: all."""
        if self.principal.collection_id is None:
            return None
        if fresh or not self._scope_read:
            access, store = self.app.access, self.app.store
            self._scope = await asyncio.to_thread(access.scope, store, self.principal, project)
            self._scope_read = True
        return self._scope

    async def visible_images(self, project: str) -> frozenset[str] | None:
        """The image ids the principal may see in `project`; None: all of them."""
        scope = await self.scope(project)
        return None if scope is None else scope.images

    async def require_visible_images(self, project: str, image_ids: Iterable[str]) -> None:
        """`404 unknown_image` for an image the principal may not see, as if it were not there."""
        visible = await self.visible_images(project)
        hidden = [i for i in image_ids if visible is not None and i not in visible]
        if hidden:
            raise ApiError(404, "unknown_image", f"no image {hidden[0]!r} in project {project!r}")

    async def require_visible_collection(self, project: str, collection_id: str) -> None:
        visible = await asyncio.to_thread(self.app.access.visible_collections, self.principal, project)
        if visible is not None and collection_id not in visible:
            raise ApiError(404, "unknown_collection", f"no collection {collection_id!r} in project {project!r}")

    async def require_editable(self, project: str, collection_id: str) -> None:
        """A client changes only the collections they saved (and sees only what their link shows)."""
        await self.require_visible_collection(project, collection_id)
        access = self.app.access
        if not await asyncio.to_thread(access.may_edit_collection, self.principal, project, collection_id):
            raise ApiError(403, "forbidden", "a client may change only the collections they saved")

    async def live_collection(self, project: str, collection_id: str) -> CollectionRecord:
        """The collection (once `admit()` passed): `404 unknown_collection`, or `410 collection_deleted`."""
        collection = await self.run(self.app.store.get_collection, project, collection_id)
        if collection is None:
            raise ApiError(404, "unknown_collection", f"no collection {collection_id!r} in project {project!r}")
        if collection.deleted:
            raise ApiError(410, "collection_deleted", f"collection {collection_id!r} is deleted")
        return collection


class ProjectsHandler(ApiHandler):
    """The projects the caller sees (a token or link for one project: that one)."""

    ACTIONS = {"get": Allow(Action.VIEW)}

    async def get(self) -> None:
        projects = await asyncio.to_thread(self.app.store.projects)
        self.write_json({"projects": self.app.access.projects_seen(self.principal, projects)})
