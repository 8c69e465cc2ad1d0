"""Comments on images: read a thread, write one (or a reply), resolve or reopen it, delete it.

Shared, unlike favourites: everyone who sees the image reads its comments, on the API and on the feed
(`comment.created`, `.updated`, `.deleted`). Whoever may favourite may comment (a client link's named
guest, a client, editor or owner token, the local user with authentication off); editors and owners
also resolve and reopen, and delete anyone's. The text is plain text, never markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from dashboard.auth.roles import Action
from dashboard.http.base import ApiError
from dashboard.http.favorites import person
from dashboard.http.project import ProjectHandler
from dashboard.http.rules import PATH, Allow
from dashboard.store import Comment, CommentsUnsupported

T = TypeVar("T")


class CommentsBase(ProjectHandler):
    """`501 comments_unsupported` on a store that keeps no comments (one without `Comments`)."""

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`run()`, with a store that keeps no comments answered `501`."""
        try:
            return await self.run(fn, *args, **kwargs)
        except CommentsUnsupported as exc:
            raise ApiError(501, "comments_unsupported", str(exc)) from None

    def mine(self, comment: Comment) -> bool:
        return comment.author_key == person(self.principal)[1]


class CommentsHandler(CommentsBase):
    """`GET` the image's comments, oldest first; `POST` a new one (201)."""

    ACTIONS = {
        "get": Allow(Action.VIEW, project=True, images=PATH),
        "post": Allow(Action.COMMENT, project=True, images=PATH),
    }

    async def get(self, project: str, image_id: str) -> None:
        await self.admit()
        comments = await self.call(self.app.curator.list_comments, project, image_id)
        principal = self.principal
        self.write_json({
            "comments": [{**c.data(), "mine": self.mine(c)} for c in comments],
            # What the page offers this caller: a text box, and resolve and delete on everyone's.
            "may_comment": principal.may(Action.COMMENT, project),
            "may_moderate": principal.may(Action.MODERATE, project),
        })  # fmt: skip

    async def post(self, project: str, image_id: str) -> None:
        body = self.json_body(fields=("text", "reply_to"))
        if "text" not in body:
            raise ApiError(400, "bad_argument", "text is required")
        await self.admit()
        name, key = person(self.principal)
        comment = await self.call(
            self.app.curator.add_comment,
            project,
            image_id,
            body["text"],
            author=name,
            author_key=key,
            reply_to=body.get("reply_to"),
        )
        self.write_json(comment.data(), 201)


class CommentHandler(CommentsBase):
    """`PATCH {"resolved": true|false}` (editors and owners); `DELETE` (its author, or an editor or owner)."""

    ACTIONS = {
        "patch": Allow(Action.MODERATE, project=True, images=PATH),
        "delete": Allow(Action.COMMENT, project=True, images=PATH),
    }

    async def patch(self, project: str, image_id: str, comment_id: str) -> None:
        body = self.json_body(fields=("resolved",))
        resolved = body.get("resolved")
        if not isinstance(resolved, bool):
            raise ApiError(400, "bad_argument", "resolved must be true or false")
        await self.admit()
        curator = self.app.curator
        comment = await self.call(curator.resolve_comment, project, image_id, comment_id, resolved=resolved)
        self.write_json(comment.data())

    async def delete(self, project: str, image_id: str, comment_id: str) -> None:
        await self.admit()
        curator = self.app.curator
        comment = await self.call(curator.get_comment, project, image_id, comment_id)
        if comment is None:
            raise ApiError(404, "unknown_comment", f"no comment {comment_id!r} on this image")
        if not self.mine(comment) and not self.principal.may(Action.MODERATE, project):
            raise ApiError(403, "forbidden", "only its author, an editor or an owner may delete a comment")
        await self.call(curator.delete_comment, project, image_id, comment_id)
        self.write_json({**comment.data(), "deleted": True})


class CommentCountsHandler(CommentsBase):
    """How many comments each image the caller sees has: `{"counts": {image_id: n}}` (none: left out)."""

    ACTIONS = {"get": Allow(Action.VIEW, project=True)}

    async def get(self, project: str) -> None:
        await self.admit()
        counts = await self.call(self.app.curator.comment_counts, project)
        visible = await self.visible_images(project)
        self.write_json({"counts": {i: n for i, n in counts.items() if visible is None or i in visible}})
