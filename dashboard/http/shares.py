"""Share links, for owners: list a project's, make one (its URL and QR code are shown once), revoke one,
give one a watermark PNG, and the QR code of one whose link the owner still has.

A link's download rule (`download`: `none`, `preview`, `original`) and watermark text are set when it is
made; its watermark PNG is uploaded apart (`PUT …/shares/{id}/watermark`, an `image/png` body), checked
and re-encoded in a decoder worker, as any untrusted image is (dashboard/imaging/watermark.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING

from dashboard import qrcodes
from dashboard.auth.access import check_share_role
from dashboard.auth.roles import Action, Role
from dashboard.auth.store import DEFAULT_DOWNLOAD, ShareRecord, check_share_rules, digest
from dashboard.http.base import ApiError, body_optional
from dashboard.http.project import ProjectHandler
from dashboard.http.rules import Allow
from dashboard.imaging.errors import WATERMARK_MAX_PNG_BYTES, IngestError

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
        body = self.json_body(
            fields=("role", "collection_id", "expires_in_s", "password", "name", "download", "watermark")
        )
        download = body_optional(body, "download", str) or DEFAULT_DOWNLOAD
        watermark = body_optional(body, "watermark", str)
        collection_id = body_optional(body, "collection_id", str)
        name, password = body_optional(body, "name", str) or "", body_optional(body, "password", str)
        expires_in_s = body_optional(body, "expires_in_s", int) or DEFAULT_SHARE_TTL_S
        if not 60 <= expires_in_s <= MAX_SHARE_TTL_S:
            raise ApiError(400, "bad_argument", f"expires_in_s must be between 60 and {MAX_SHARE_TTL_S}")
        try:
            role = Role.parse(str(body.get("role", "client")))
            check_share_role(role, collection_id)
            watermark = check_share_rules(download, watermark)
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
                expires_at=expires_at, password=password, download=download, watermark=watermark,
            )
        )  # fmt: skip
        log.info("share link %s made by %s: %s on %s, download %s%s", share.id, self.principal.key, role.label,
                 project, download, ", watermarked" if share.watermarked else "")  # fmt: skip
        path = f"/s/{secret}"
        url = f"{self.request.protocol}://{self.request.host}{path}"
        # The secret is kept only as its hash: this answer is the one chance to have the QR code made
        # without passing the link back (`GET …/qr.svg?link=`).
        qr_svg = (await asyncio.to_thread(qrcodes.svg, url)).decode()
        self.write_json({"share": share.to_dict(), "path": path, "url": url, "qr_svg": qr_svg}, 201)


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


async def _project_share(store: AuthStore, project: str, share_id: str) -> ShareRecord:
    share = await asyncio.to_thread(store.get_share, share_id)
    if share is None or share.project != project:
        raise ApiError(404, "unknown_share", f"no share link {share_id!r} in project {project!r}")
    return share


class WatermarkHandler(ProjectHandler):
    """A link's watermark PNG: set it (PUT, an `image/png` body) or take it away (DELETE). Owners only.

    The PNG is untrusted: at most `WATERMARK_MAX_PNG_BYTES` (`413 body_too_large`) and `WATERMARK_MAX_SIDE_PX` a side,
    decoded only in a decoder worker; a refusal is `400`/`413`/`415 bad_watermark` saying why.
    """

    ACTIONS = {"put": Allow(Action.MANAGE), "delete": Allow(Action.MANAGE)}

    @property
    def max_body_bytes(self) -> int:
        return WATERMARK_MAX_PNG_BYTES

    async def put(self, project: str, share_id: str) -> None:
        store = _auth_store(self.app)
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "image/png":
            raise ApiError(415, "bad_watermark", f"send the watermark as an image/png body, not {content_type!r}")
        await _project_share(store, project, share_id)
        try:
            png = await asyncio.to_thread(self.app.ingestor.decoders.check_watermark, self.body)
        except IngestError as exc:
            status = exc.http_status if exc.http_status != 422 else 400
            raise ApiError(status, "bad_watermark", f"the watermark PNG was refused: {exc.reason}") from None
        share = await asyncio.to_thread(store.set_share_watermark_png, share_id, png)
        await asyncio.to_thread(self.app.watermarks.forget, share_id)
        log.info("share link %s: watermark PNG set by %s (%d bytes)", share_id, self.principal.key, len(png))
        self.write_json({"share": (share or await _project_share(store, project, share_id)).to_dict()})

    async def delete(self, project: str, share_id: str) -> None:
        store = _auth_store(self.app)
        await _project_share(store, project, share_id)
        share = await asyncio.to_thread(store.set_share_watermark_png, share_id, None)
        await asyncio.to_thread(self.app.watermarks.forget, share_id)
        self.write_json({"share": (share or await _project_share(store, project, share_id)).to_dict()})


class ShareQrHandler(ProjectHandler):
    """The QR code of a share link (`qr.svg`, `qr.png`), given the link itself: `?link=/s/SECRET` or its URL.

    The secret is kept only as its hash, so the owner passes the link they were given; it must be this
    link's (`404 unknown_share` otherwise). A path is made a URL on the host the request was sent to.
    """

    ACTIONS = {"get": Allow(Action.MANAGE)}

    def initialize(self, app: App, qr_format: str = "svg") -> None:
        super().initialize(app)
        self.qr_format = qr_format

    async def get(self, project: str, share_id: str) -> None:
        store = _auth_store(self.app)
        share = await _project_share(store, project, share_id)
        parsed = qrcodes.link_secret(self.get_argument("link", ""))
        if parsed is None:
            raise ApiError(
                400, "bad_argument", "link must be the share link, as /s/SECRET or its URL: only its hash is kept, "
                "so its QR code cannot be made without it",
            )  # fmt: skip
        secret, origin = parsed
        if digest(secret)[:12] != share.id or await asyncio.to_thread(store.find_share, secret) is None:
            raise ApiError(404, "unknown_share", f"that is not the link of share {share_id!r}")
        url = f"{origin or f'{self.request.protocol}://{self.request.host}'}/s/{secret}"
        make = qrcodes.svg if self.qr_format == "svg" else qrcodes.png
        data = await asyncio.to_thread(make, url)
        self.set_header("Content-Type", "image/svg+xml" if self.qr_format == "svg" else "image/png")
        self.set_header("Cache-Control", "no-store")  # it holds the link's secret
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.finish(data)
