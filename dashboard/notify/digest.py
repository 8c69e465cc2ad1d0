"""A digest: what a project's feed entries since the last one add up to ("12 new images", "Anna sent 24 picks").

Built from the change feed only, so it is the same whichever server builds it; the kinds counted are
`NOTIFY_KINDS`, a webhook may ask for fewer (`Digest.only`). `comment.created` is counted by its name,
so comments are counted as soon as the feed carries them.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from dashboard.events import FAVORITES_SUBMITTED, IMAGE_CREATED, Change

COMMENT_CREATED = "comment.created"
#: The feed kinds a digest counts, and a webhook's default `events`.
NOTIFY_KINDS = (IMAGE_CREATED, FAVORITES_SUBMITTED, COMMENT_CREATED)
DIGEST_FORMAT_VERSION = 1


def check_events(events: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The kinds a webhook asks for (default: every kind a digest counts), else `ValueError`."""
    if not events:
        return NOTIFY_KINDS
    unknown = [e for e in events if e not in NOTIFY_KINDS]
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r}: give some of {', '.join(NOTIFY_KINDS)}")
    return tuple(dict.fromkeys(events))


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@dataclass(frozen=True)
class Picks:
    """One `favorites.submitted`: who sent how many, saved as which collection."""

    by: str
    count: int
    collection_id: str | None = None


@dataclass(frozen=True)
class Digest:
    """The counted entries of a project's feed after `after_seq` up to `last_seq`."""

    project: str
    after_seq: int
    last_seq: int
    images: int = 0
    comments: int = 0
    picks: tuple[Picks, ...] = ()
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @classmethod
    def of(cls, project: str, after_seq: int, last_seq: int, changes: Iterable[Change]) -> Digest:
        images = comments = 0
        picks: list[Picks] = []
        for change in changes:
            if change.kind == IMAGE_CREATED:
                images += 1
            elif change.kind == COMMENT_CREATED:
                comments += 1
            elif change.kind == FAVORITES_SUBMITTED:
                data = change.data
                picks.append(Picks(str(data.get("by") or "someone"), int(data.get("count") or 0),
                                   data.get("collection_id")))  # fmt: skip
        return cls(project, after_seq, last_seq, images, comments, tuple(picks))

    @property
    def empty(self) -> bool:
        return not (self.images or self.comments or self.picks)

    def only(self, kinds: Sequence[str]) -> Digest:
        """The digest as a webhook that asked for `kinds` sees it (maybe empty)."""
        return replace(
            self,
            images=self.images if IMAGE_CREATED in kinds else 0,
            comments=self.comments if COMMENT_CREATED in kinds else 0,
            picks=self.picks if FAVORITES_SUBMITTED in kinds else (),
        )

    def counts(self) -> dict[str, int]:
        return {IMAGE_CREATED: self.images, FAVORITES_SUBMITTED: len(self.picks), COMMENT_CREATED: self.comments}

    def lines(self) -> list[str]:
        """The digest for people, one line per item: "12 new images", "Anna sent 24 picks", "3 new comments"."""
        out = [_plural(self.images, "new image", "new images")] if self.images else []
        out += [f"{p.by} sent {_plural(p.count, 'pick', 'picks')}" for p in self.picks]
        if self.comments:
            out.append(_plural(self.comments, "new comment", "new comments"))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The webhook's JSON body (documented in docs/notifications.md)."""
        return {
            "v": DIGEST_FORMAT_VERSION,
            "type": "digest",
            "project": self.project,
            "after_seq": self.after_seq,
            "last_seq": self.last_seq,
            "created_at": self.created_at,
            "counts": self.counts(),
            "picks": [{"by": p.by, "count": p.count, "collection_id": p.collection_id} for p in self.picks],
            "summary": self.lines(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)


def subject(body: dict[str, Any]) -> str:
    """An e-mail's subject from a digest's JSON: `Fotoflo · PROJECT: 12 new images, Anna sent 24 picks`."""
    return f"Fotoflo · {body['project']}: {', '.join(body['summary'])}"


def plain_text(body: dict[str, Any]) -> str:
    lines = [f"New in project {body['project']}:", "", *(f"- {line}" for line in body["summary"])]
    return "\n".join([*lines, "", f"Feed entries {body['after_seq'] + 1} to {body['last_seq']}.", ""])


def html_text(body: dict[str, Any]) -> str:
    """The HTML alternative: the same lines, every piece of text escaped (a guest chose their name)."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in body["summary"])
    project = html.escape(str(body["project"]))
    return f"<!doctype html><html><body><p>New in project <b>{project}</b>:</p><ul>{items}</ul></body></html>\n"
