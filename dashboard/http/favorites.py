"""Favourites per person: mark and unmark an image, list them, send them to the photographer as a collection.

Whoever calls is the person: a share link's named guest, a token, the local user (authentication
off). Each write is one `favorite.changed` entry on the feed; sending is a saved collection named after
the person and a `favorites.submitted` entry, which is the photographer's notice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from dashboard.auth.roles import EDIT_ANY_COLLECTION, Action, Principal
from dashboard.http.base import ApiError
from dashboard.http.project import ProjectHandler
from dashboard.http.rules import PATH, Allow
from dashboard.store import Favorite, FavoritesUnsupported

T = TypeVar("T")

#: Who the local user is in the favourites of a server without authentication.
LOCAL_USER = "local user"


def person(principal: Principal) -> tuple[str, str]:
    """(the name a person's favourites are shown under, the key that tells them apart)."""
    return (LOCAL_USER if principal.kind == "open" else principal.name), principal.key


def favorite_json(favorite: Favorite) -> dict[str, Any]:
    return {"image_id": favorite.image_id, "by": favorite.by, "at": favorite.at}


class FavoritesBase(ProjectHandler):
    """`501 favorites_unsupported` on a store that keeps no favourites (one without `Favorites`)."""

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`run()`, with a store that keeps no favourites answered `501`."""
        try:
            return await self.run(fn, *args, **kwargs)
        except FavoritesUnsupported as exc:
            raise ApiError(501, "favorites_unsupported", str(exc)) from None

    async def list_for(self, project: str, *, everyone: bool, by: str | None = None) -> list[Favorite]:
        """The caller's favourites (`everyone`: all people's, those shown as `by`), as far as they see the images."""
        if everyone:
            favorites = await self.call(self.app.curator.list_favorites, project, by=by)
        else:
            favorites = await self.call(self.app.curator.list_favorites, project, by_key=person(self.principal)[1])
        visible = await self.visible_images(project)
        return [f for f in favorites if visible is None or f.image_id in visible]


class FavoriteHandler(FavoritesBase):
    """`PUT` marks the image as the caller's favourite, `DELETE` unmarks it; both idempotent."""

    ACTIONS = {
        "put": Allow(Action.RATE, project=True, images=PATH),
        "delete": Allow(Action.RATE, project=True, images=PATH),
    }

    async def put(self, project: str, image_id: str) -> None:
        await self.mark(project, image_id, favorite=True)

    async def delete(self, project: str, image_id: str) -> None:
        await self.mark(project, image_id, favorite=False)

    async def mark(self, project: str, image_id: str, *, favorite: bool) -> None:
        await self.admit()
        name, key = person(self.principal)
        curator = self.app.curator
        stored = await self.call(curator.set_favorite, project, image_id, by=name, by_key=key, favorite=favorite)
        at = stored.at if stored is not None else None
        self.write_json({"image_id": image_id, "by": name, "at": at, "favorite": favorite})


class FavoritesHandler(FavoritesBase):
    """The favourites: a guest (or any client) sees their own; editors and owners everyone's (`?by=NAME`)."""

    ACTIONS = {"get": Allow(Action.VIEW, project=True)}

    async def get(self, project: str) -> None:
        await self.admit()
        role = self.principal.role_in(project)
        everyone = role is not None and role >= EDIT_ANY_COLLECTION
        by = self.get_argument("by", None) or None
        favorites = await self.list_for(project, everyone=everyone, by=by)
        self.write_json({"favorites": [favorite_json(f) for f in favorites]})


class SubmitFavoritesHandler(FavoritesBase):
    """Send the caller's favourites to the photographer: a new collection named after them (201, the collection)."""

    ACTIONS = {"post": Allow(Action.COLLECT, project=True)}

    async def post(self, project: str) -> None:
        self.json_body(fields=())
        await self.admit()
        name, _ = person(self.principal)
        ids = [f.image_id for f in await self.list_for(project, everyone=False)]
        collection = await self.call(self.app.curator.submit_favorites, project, name, ids, by=name)
        await asyncio.to_thread(self.app.access.record_collection, self.principal, project, collection.id)
        self.write_json(self.wire.collection(collection, scope=await self.scope(project, fresh=True)), 201)
