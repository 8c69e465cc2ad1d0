"""A project's images: a page of the list, one image, its rating, its versions, by SHA-256, delete."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

from dashboard.auth.roles import Action, Principal
from dashboard.events import FLAGS, LABELS, ImageRecord
from dashboard.http.base import ApiError
from dashboard.http.project import ProjectHandler
from dashboard.http.rules import PATH, Allow
from dashboard.store import ImageFilters, VersionChanged

if TYPE_CHECKING:
    from dashboard.app import App

log = logging.getLogger("fotoflo.api")

MAX_PAGE = 500
DEFAULT_PAGE = 100
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_arg(name: str, value: str) -> str:
    """`value` as a SHA-256 in lower-case hex, or `400 bad_argument`."""
    value = value.strip().lower()
    if not _SHA256.fullmatch(value):
        raise ApiError(400, "bad_argument", f"{name} must be a SHA-256 as 64 hex digits")
    return value


class ImagesHandler(ProjectHandler):
    """A page of the project's images, newest first (a link to one collection: its images only)."""

    ACTIONS = {"get": Allow(Action.VIEW)}  # an unknown project is the store's `404 unknown_project`

    async def get(self, project: str) -> None:
        limit = self.int_arg("limit", DEFAULT_PAGE, low=1, high=MAX_PAGE)
        before = self.int_arg("before", None, low=1)
        min_rating = self.int_arg("min_rating", None, low=0, high=5)
        filters = ImageFilters(min_rating, self.choice_arg("flag", FLAGS), self.choice_arg("label", LABELS))
        assert limit is not None
        # One worker thread for all the reads of the page: each hop costs as much as a small query.
        self.write_json(await self.run(images_page, self.app, self.principal, project, before, limit, filters))


def images_page(
    app: App, principal: Principal, project: str, before: int | None, limit: int, filters: ImageFilters
) -> dict[str, Any]:
    """A page of `project`'s images as `principal` sees them: the answer of `GET …/images`.

    The gallery's page renders its first tiles from this too (dashboard/first_paint.py), so a share
    link to one collection shows only that collection's images there as well. The principal must be
    admitted to view `project` already; an unknown project raises the store's `UnknownProject`.
    """
    last_seq, images, total = _read_page(app, principal, project, before, limit, filters)
    next_cursor = str(images[limit - 1].seq) if len(images) > limit else None
    images = images[:limit]
    wire = app.wire.seen_by(principal)
    page: dict[str, Any] = {"images": [wire.image(i) for i in images], "next": next_cursor, "last_seq": last_seq}
    if total is not None:
        page["total"] = total
    return page


def _read_page(
    app: App, principal: Principal, project: str, before: int | None, limit: int, filters: ImageFilters
) -> tuple[int, list[ImageRecord], int | None]:
    """The feed position, up to `limit + 1` images after `before` and (first page only) the total.

    One more image than asked tells whether another page exists: no `next` that leads nowhere.
    """
    store = app.store
    # The feed position first: a client that streams from it misses nothing listed later.
    last_seq = store.last_seq(project)
    visible = None
    if principal.collection_id is not None:
        visible = app.access.visible_images(store, principal, project)
    if visible is None:
        rating, flag, label = filters.min_rating, filters.flag, filters.label
        images = store.list_images(project, before=before, limit=limit + 1, min_rating=rating, flag=flag, label=label)
        total = store.count_images(project, min_rating=rating, flag=flag, label=label) if before is None else None
        return last_seq, images, total
    # A link to one collection: page through its images alone, newest first, as above.
    shown = [i for i in store.get_images(project, visible) if filters.passes(i)]
    shown.sort(key=lambda i: i.seq, reverse=True)
    images = [i for i in shown if before is None or i.seq < before][: limit + 1]
    return last_seq, images, len(shown) if before is None else None


class ImageHandler(ProjectHandler):
    """One image (GET); delete it and its versions (DELETE)."""

    ACTIONS = {
        "get": Allow(Action.VIEW, project=True, images=PATH),
        "delete": Allow(Action.UPLOAD, project=True),  # deleting is an editor's, like adding
    }

    async def get(self, project: str, image_id: str) -> None:
        await self.admit()
        image = await asyncio.to_thread(self.app.store.get_image, image_id)
        if image is None or image.project != project:
            raise ApiError(404, "unknown_image", f"no image {image_id!r} in project {project!r}")
        self.write_json(self.wire.image(image))

    async def delete(self, project: str, image_id: str) -> None:
        """Delete the image and its versions; `?if_sha256=` deletes only while that is its current version."""
        raw = self.get_argument("if_sha256", None)
        if_sha256 = sha256_arg("if_sha256", raw) if raw is not None else None
        await self.admit()
        try:
            image = await self.run(self.app.curator.delete_image, project, image_id, if_sha256=if_sha256)
        except VersionChanged as exc:
            raise ApiError(409, "changed", f"{exc}; not deleted") from None
        log.info("image %s (%s) deleted from %s", image.id, image.filename, project)
        self.write_json(self.wire.image(image, deleted=True))


class RatingHandler(ProjectHandler):
    """Sets any of an image's rating (0-5), flag and label: one `rating.changed` change."""

    FIELDS = ("rating", "flag", "label")
    ACTIONS = {"post": Allow(Action.RATE, project=True, images=PATH)}

    async def post(self, project: str, image_id: str) -> None:
        body = self.json_body()
        unknown = sorted(set(body) - set(self.FIELDS))
        if unknown:
            raise ApiError(400, "bad_argument", f"unknown field(s) {', '.join(unknown)}; send rating, flag or label")
        if not body:
            raise ApiError(400, "bad_argument", "send at least one of rating, flag and label")
        for name, value in body.items():
            if value is None:
                raise ApiError(400, "bad_argument", f"{name} must not be null")
        await self.admit()
        image = await self.run(self.app.curator.set_rating, project, image_id, **body)
        self.write_json(self.wire.image(image))


class ImageVersionsHandler(ProjectHandler):
    """An image's versions, newest first."""

    ACTIONS = {"get": Allow(Action.VIEW, project=True, images=PATH)}

    async def get(self, project: str, image_id: str) -> None:
        await self.admit()
        versions = await self.run(self.app.store.image_versions, project, image_id)
        self.write_json({"image_id": image_id, "versions": [self.wire.version(v) for v in versions]})


class ImageBySha256Handler(ProjectHandler):
    """Ask before sending the bytes: the image that has (or had) content with this SHA-256."""

    # The image is named by its content: one a link does not show is answered as absent, below.
    ACTIONS = {"get": Allow(Action.VIEW, project=True)}

    async def get(self, project: str, sha256: str) -> None:
        sha256 = sha256_arg("sha256", sha256)
        await self.admit()
        image = await self.run(self.app.store.find_by_sha, project, sha256)
        visible = await self.visible_images(project)
        if image is None or (visible is not None and image.id not in visible):
            raise ApiError(404, "unknown_image", f"no image with SHA-256 {sha256} in project {project!r}")
        self.write_json(self.wire.image(image, current=image.sha256 == sha256))
