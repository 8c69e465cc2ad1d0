"""`/healthz`: the server's status to anyone; the details (paths, store errors) to owners, or on loopback when open."""

from __future__ import annotations

from dashboard.auth.access import AuthRefused, is_loopback
from dashboard.auth.roles import ANY_PROJECT, Role
from dashboard.http.base import ApiHandler
from dashboard.http.rules import ANYONE


class HealthHandler(ApiHandler):
    """`/healthz`: its status to anyone; the details (paths, store errors) to owners, or on loopback when open."""

    ACTIONS = {"get": ANYONE}

    async def get(self) -> None:
        health = await self.app.health()
        self.write_json(health if await self.sees_details() else {"status": health["status"]})

    async def sees_details(self) -> bool:
        if not self.app.access.enabled:
            return is_loopback(self.client)  # behind a --trusted-proxy, the client it forwarded for
        try:
            identity = await self.identify()
        except AuthRefused:
            return False  # a health check with a wrong token still learns the status, nothing more
        principal = identity.principal
        return principal is not None and principal.role >= Role.OWNER and principal.project == ANY_PROJECT
