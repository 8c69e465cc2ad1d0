"""`/healthz` and `/metrics`: the server's status to anyone; details and numbers to owners, or on loopback when open."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST

from dashboard.auth.access import AuthRefused, is_loopback
from dashboard.auth.roles import ANY_PROJECT, Role
from dashboard.http.base import ApiError, ApiHandler
from dashboard.http.rules import ANYONE


class OperatorHandler(ApiHandler):
    """Base of what an operator reads: with auth on, an owner of every project; with it off, loopback only."""

    async def is_operator(self) -> bool:
        if not self.app.access.enabled:
            return is_loopback(self.client)  # behind a --trusted-proxy, the client it forwarded for
        try:
            identity = await self.identify()
        except AuthRefused:
            return False  # a health check with a wrong token still learns the status, nothing more
        principal = identity.principal
        return principal is not None and principal.role >= Role.OWNER and principal.project == ANY_PROJECT


class HealthHandler(OperatorHandler):
    """`/healthz`: its status to anyone; the details (paths, store errors) to operators."""

    ACTIONS = {"get": ANYONE}

    async def get(self) -> None:
        health = await self.app.health()
        self.write_json(health if await self.is_operator() else {"status": health["status"]})


class MetricsHandler(OperatorHandler):
    """`/metrics`: this server's counters in Prometheus's text format, to operators only."""

    ACTIONS = {"get": ANYONE}  # checked below: the numbers tell how busy the studio is

    async def get(self) -> None:
        if self.app.access.enabled:
            await self.require_operator()
        elif not is_loopback(self.client):
            raise ApiError(403, "forbidden", "/metrics answers on loopback only while sign-in is off")
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.set_header("Cache-Control", "no-store")
        self.finish(self.app.metrics.text())

    async def require_operator(self) -> None:
        """401 without a (valid) token or session; 403 for anyone but an owner of every project."""
        try:
            principal = (await self.identify()).principal
        except AuthRefused as exc:
            raise ApiError.refused(exc) from None
        if principal is None:
            raise ApiError.refused(AuthRefused(401, "unauthenticated", "send 'Authorization: Bearer TOKEN'"))
        if principal.role < Role.OWNER or principal.project != ANY_PROJECT:
            raise ApiError(403, "forbidden", "/metrics is for an owner of every project")
