"""Notifications, for owners: a project's webhooks (the secret shown once, when made) and e-mail recipients."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from dashboard.auth.roles import Action
from dashboard.http.base import ApiError
from dashboard.http.project import ProjectHandler
from dashboard.http.rules import Allow
from dashboard.notify.deliver import check_address, check_webhook_url
from dashboard.notify.digest import check_events

log = logging.getLogger("fotoflo.api")

OWNERS = Allow(Action.MANAGE, project=True)


def _checked(check: Any, value: Any) -> Any:
    try:
        return check(value)
    except (ValueError, TypeError) as exc:
        raise ApiError(400, "bad_argument", str(exc)) from None


class WebhooksHandler(ProjectHandler):
    """The project's webhooks (GET); add one (POST `{"url", "events"?}`): its secret is in this answer only."""

    ACTIONS = {"get": OWNERS, "post": OWNERS}

    async def get(self, project: str) -> None:
        await self.admit()
        hooks = await asyncio.to_thread(self.app.notify_store.webhooks, project)
        self.write_json({"webhooks": [h.to_dict() for h in hooks]})

    async def post(self, project: str) -> None:
        body = self.json_body(fields=("url", "events"))
        url = body.get("url")
        if not isinstance(url, str):
            raise ApiError(400, "bad_argument", "url must be a string")
        url = _checked(check_webhook_url, url)
        events = body.get("events")
        if events is not None and (not isinstance(events, list) or not all(isinstance(e, str) for e in events)):
            raise ApiError(400, "bad_argument", "events must be a list of change kinds")
        events = _checked(check_events, events)
        await self.admit()
        start_seq = await self.run(self.app.store.last_seq, project)
        hook, secret = await asyncio.to_thread(
            functools.partial(self.app.notify_store.add_webhook, project, url, events, start_seq=start_seq)
        )
        log.info("webhook %s added by %s to %s", hook.id, self.principal.key, project)
        self.write_json({"webhook": hook.to_dict(), "secret": secret}, 201)


class WebhookHandler(ProjectHandler):
    """Remove one webhook: it gets nothing more, not even what is queued for it."""

    ACTIONS = {"delete": OWNERS}

    async def delete(self, project: str, webhook_id: str) -> None:
        await self.admit()
        hook = await asyncio.to_thread(self.app.notify_store.get_webhook, webhook_id)
        if hook is None or hook.project != project:
            raise ApiError(404, "unknown_webhook", f"no webhook {webhook_id!r} in project {project!r}")
        await asyncio.to_thread(self.app.notify_store.remove_webhook, webhook_id)
        log.info("webhook %s removed by %s", webhook_id, self.principal.key)
        self.write_json({"webhook": hook.to_dict()})


class EmailsHandler(ProjectHandler):
    """The project's e-mail recipients (GET); add one (POST `{"address"}`)."""

    ACTIONS = {"get": OWNERS, "post": OWNERS}

    async def get(self, project: str) -> None:
        await self.admit()
        found = await asyncio.to_thread(self.app.notify_store.emails, project)
        self.write_json({"emails": [address for _, address in found], "smtp": bool(self.app.settings.smtp)})

    async def post(self, project: str) -> None:
        body = self.json_body(fields=("address",))
        address = body.get("address")
        if not isinstance(address, str):
            raise ApiError(400, "bad_argument", "address must be a string")
        address = _checked(check_address, address)
        await self.admit()
        start_seq = await self.run(self.app.store.last_seq, project)
        added = await asyncio.to_thread(
            functools.partial(self.app.notify_store.add_email, project, address, start_seq=start_seq)
        )
        self.write_json({"address": address, "added": added}, 201 if added else 200)


class EmailHandler(ProjectHandler):
    """Remove one e-mail recipient."""

    ACTIONS = {"delete": OWNERS}

    async def delete(self, project: str, address: str) -> None:
        await self.admit()
        if not await asyncio.to_thread(self.app.notify_store.remove_email, project, address):
            raise ApiError(404, "unknown_email", f"{address!r} is not a recipient of project {project!r}")
        self.write_json({"address": address, "removed": True})
