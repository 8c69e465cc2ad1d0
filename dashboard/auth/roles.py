"""Roles, the actions they allow, and who is asking (`Principal`).

Roles are per project and ordered: a viewer looks, a client also rates and saves (and edits) their
own selections, an editor also uploads and edits every collection, an owner also manages share
links. `Principal.OPEN` is everyone on a server without authentication: an owner of every project.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.IntEnum):
    """Ordered: each role may do everything the ones below it may."""

    VIEWER = 1
    CLIENT = 2
    EDITOR = 3
    OWNER = 4

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {name!r}: one of {', '.join(ROLE_NAMES)}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


ROLE_NAMES = tuple(r.label for r in Role)


class Action(enum.Enum):
    """What a request does, as the API's handlers declare it per method."""

    VIEW = "view"  # read images, collections, the feed, exports
    RATE = "rate"  # stars, pick/reject, colour labels
    COLLECT = "collect"  # save a new collection (or a copy of one)
    EDIT_COLLECTION = "edit_collection"  # edit, delete, undelete: a client only their own
    COMMENT = "comment"  # write comments on images, and delete one's own
    UPLOAD = "upload"  # new images and versions
    MANAGE = "manage"  # share links
    MODERATE = "moderate"  # resolve and reopen comments, and delete anyone's


#: The least role each action needs; the table the role × endpoint test reads.
MIN_ROLE = {
    Action.VIEW: Role.VIEWER,
    Action.RATE: Role.CLIENT,
    Action.COLLECT: Role.CLIENT,
    Action.EDIT_COLLECTION: Role.CLIENT,
    Action.COMMENT: Role.CLIENT,
    Action.UPLOAD: Role.EDITOR,
    Action.MODERATE: Role.EDITOR,
    Action.MANAGE: Role.OWNER,
}

#: Below this role, `EDIT_COLLECTION` is allowed only on the collections the principal saved.
EDIT_ANY_COLLECTION = Role.EDITOR

ANY_PROJECT = "*"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: an API token, a share link's holder, or everyone (no auth).

    `project` is the one project granted (`*`: all); `collection_id` narrows a share link to one
    collection of it (and the collections its holder saves). `guest`: the id of the named guest a share
    link's browser session acts as (then `name` is theirs); each guest is a person of their own.
    `download` and `watermark`: a share link's rules (dashboard/wire.py signs its file URLs by them).
    """

    kind: str  # "open", "token" or "share"
    id: str
    name: str
    role: Role
    project: str = ANY_PROJECT
    collection_id: str | None = None
    guest: str | None = None
    #: A share link's download rule (`none`, `preview`, `original`) and watermark version (0: none),
    #: as its record said when the request was authenticated: what its file URLs may lead to.
    download: str = "original"
    watermark: int = 0

    @property
    def key(self) -> str:
        """Stable identity for ownership of collections and favourites, and for rate limits."""
        return f"{self.kind}:{self.id}" if self.guest is None else f"guest:{self.id}:{self.guest}"

    def role_in(self, project: str) -> Role | None:
        return self.role if self.project in (ANY_PROJECT, project) else None

    def may(self, action: Action, project: str | None) -> bool:
        """Whether the role allows `action` in `project` (None: an endpoint outside any project)."""
        if project is None:
            return self.role >= MIN_ROLE[action]
        role = self.role_in(project)
        return role is not None and role >= MIN_ROLE[action]

    def sees_project(self, project: str) -> bool:
        return self.role_in(project) is not None


OPEN = Principal("open", "open", "everyone (authentication is off)", Role.OWNER)
