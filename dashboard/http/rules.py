"""Who may call a route: each handler's `ACTIONS` maps its methods to an `Allow`, read top to bottom.

    class RatingHandler(ProjectHandler):
        ACTIONS = {"post": Allow(Action.RATE, project=True, images=PATH)}

says: a `POST` needs a role that may rate in the path's project; the project must exist; and the
image in the path must be one the caller sees (a share link to one collection sees only its images).
`python -m dashboard.http.routes` prints the whole table, one line per URL and method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dashboard.auth.roles import MIN_ROLE, Action

#: Where the images a request names are: the path's `image_id`, or the JSON body (the handler passes them).
PATH: Literal["path"] = "path"
BODY: Literal["body"] = "body"
#: What the caller must be able to do with the path's `collection_id`: see it, or change it.
SEEN: Literal["seen"] = "seen"
OWN: Literal["own"] = "own"


@dataclass(frozen=True)
class Allow:
    """Who may call one method of a route, checked in this order, each refusal answered as JSON:

    1. `action`: the caller's role in the path's project (or any project, outside one) must allow it,
       else `401`/`403 forbidden`; checked in `prepare`, before any body byte is read. None: anyone,
       no principal is asked (`/healthz`); `signed`: the URL carries its own signature (`/files/`).
    2. `project`: the path's project must exist (`404 unknown_project`).
    3. `collection`: the path's collection must be one the caller sees (`SEEN`), or one it may change
       (`OWN`: a client only the ones they saved, else `403 forbidden`); `404 unknown_collection`.
    4. `images`: every image named in the path (`PATH`) or the body (`BODY`) must be one the caller
       sees, else `404 unknown_image`, as if it were not there.

    2 to 4 run when the handler calls `admit()`, once it has read its arguments; an answer that
    passes without it is a bug (`ApiHandler.finish` refuses it). What a list or a stream shows a
    share link (only its collection's images) is narrowed by the handler itself, with `scope()`.
    """

    action: Action | None = None
    project: bool = False
    collection: Literal["seen", "own"] | None = None
    images: Literal["path", "body"] | None = None
    signed: bool = False

    @property
    def checks(self) -> bool:
        """Whether `admit()` has anything to check."""
        return self.project or self.collection is not None or self.images is not None

    def describe(self) -> str:
        """One line for people, as `client (rate); project exists; image in the path seen`."""
        if self.signed:
            who = "anyone with a signed URL"
        elif self.action is None:
            who = "anyone"
        else:
            who = f"{MIN_ROLE[self.action].label} ({self.action.value})"
        parts = [who]
        if self.project:
            parts.append("project exists")
        if self.collection == SEEN:
            parts.append("collection in the path seen")
        elif self.collection == OWN:
            parts.append("collection in the path theirs to change (a client's: saved by them)")
        if self.images == PATH:
            parts.append("image in the path seen")
        elif self.images == BODY:
            parts.append("images in the body seen")
        return "; ".join(parts)


#: `/healthz`: anyone (it tells the details only to owners, itself).
ANYONE = Allow()
#: `/files/...`: the URL's signature is the capability; no token asked.
SIGNED_URL = Allow(signed=True)
