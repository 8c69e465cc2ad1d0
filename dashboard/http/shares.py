"""Share links, for owners: list a project's, make one (its URL is shown once), revoke one."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING

from dashboard.auth.access import check_share_role
from dashboard.auth.roles import Action, Role
from dashboard.http.base import ApiError, body_optional
from dashboard.http.project import ProjectHandler
from dashboard.http.rules import Allow

if TYPE_CHECKING:
    from dashboard.app import App
    from dashboard.auth.store import AuthStore

log = logging.getLogger("fotoflo.api")

MAX_SHARE_TTL_S = 366 * 24 * 3600
DEFAULT_SHARE_TTL_S = 30 * 24 * 3600  # as `fotoflo share create`


def _auth_store(app: App) -> AuthStore:
    store = app.access.store
    if store is None:
        raise ApiError(409, "auth_off", "share links need authentication: start the server with --auth")
    return store


class SharesHandler(ProjectHandler):
    """The project's share links (GET); make one (POST). Owners only; needs authentication on."""

    ACTIONS = {"get": Allow(Action.MANAGE, project=True), "post": Allow(Action.MANAGE, project=True)}

    async def get(self, project: str) -> None:
        store = _auth_store(self.app)
        await self.admit()
        shares = await asyncio.to_thread(store.shares, project)
        self.write_json({"shares": [s.to_dict() for s in shares]})

    async def post(self, project: str) -> None:
        store = _auth_store(self.app)
        body = self.json_body(fields=("role", "collection_id", "expires_in_s", "password", "name"))
        collection_id = body_optional(body, "collection_id", str)
        name, password = body_optional(body, "name", str) or "", body_optional(body, "password", str)
        expires_in_s = body_optional(body, "expires_in_s", int) or DEFAULT_SHARE_TTL_S
        if not 60 <= expires_in_s <= MAX_SHARE_TTL_S:
            raise ApiError(400, "bad_argument", f"expires_in_s must be between 60 and {MAX_SHARE_TTL_S}")
        try:
            role = Role.parse(str(body.get("role", "client")))
            check_share_role(role, collection_id)
        except ValueError as exc:
            raise ApiError(400, "bad_argument", str(exc)) from None
        if len(name) > 200 or (password is not None and not 1 <= len(password) <= 1024):
            raise ApiError(400, "bad_argument", "name: at most 200 characters; password: 1 to 1024")
        await self.admit()
        if collection_id is not None:
            await self.live_collection(project, collection_id)
        expires_at = time.time() + expires_in_s
        share, secret = await asyncio.to_thread(
            functools.partial(
                store.create_share, project=project, role=role, name=name, collection_id=collection_id,
                expires_at=expires_at, password=password,
            )
        )  # fmt: skip
        log.info("share link %s made by %s: %s on %s", share.id, self.principal.key, role.label, project)
        path = f"/s/{secret}"
        url = f"{self.request.protocol}://{self.request.host}{path}"
        self.write_json({"share": share.to_dict(), "path": path, "url": url}, 201)


class ShareHandler(ProjectHandler):
    """Revoke one share link: its sessions end at once."""

    ACTIONS = {"delete": Allow(Action.MANAGE)}  # a link of another project is answered `404 unknown_share`

    async def delete(self, project: str, share_id: str) -> None:
        store = _auth_store(self.app)
        share = await asyncio.to_thread(store.get_share, share_id)
        if share is None or share.project != project:
            raise ApiError(404, "unknown_share", f"no share link {share_id!r} in project {project!r}")
        await asyncio.to_thread(store.revoke_share, share_id)
        log.info("share link %s revoked by %s", share_id, self.principal.key)
        self.write_json({"share": (await asyncio.to_thread(store.get_share, share_id) or share).to_dict()})
