"""What feeds a `LiveImages`: a `Source` (the hub of an `App` in this process, or a server's SSE stream).

A source reads pages of a project's images (newest first, with the feed position they were read
at) and follows the feed after a cursor, handing each batch of changes to the model's worker in
feed order. `read_snapshot` makes the starting state from its pages: the newest images, the total
and the cursor, read at one feed position.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dashboard.events import CollectionRecord, ImageRecord

if TYPE_CHECKING:
    from dashboard.live.model import LiveImages

log = logging.getLogger("fotoflo.live")

#: The most images one page read asks for (the API's largest page).
PAGE_MAX = 500
#: How often the first page is read again when the feed moved while it was read.
SNAPSHOT_TRIES = 8


@dataclass(frozen=True)
class Page:
    """Images newest first, `last_seq` read before them, and `total` (the first page only, else `None`)."""

    last_seq: int
    images: list[ImageRecord]
    total: int | None


@dataclass(frozen=True)
class Snapshot:
    """The state a model starts from: the newest `images`, the project's `total`, the feed's `last_seq`."""

    last_seq: int
    images: list[ImageRecord]
    total: int


class Source(Protocol):
    """One project's images and feed, for one model; blocking methods, called on the model's threads."""

    #: What makes two sources the same (the registry shares one model per key).
    key: Hashable
    #: For people and logs: `'wedding' in this process`, `'wedding' at http://studio:5006`.
    description: str

    def page(self, limit: int, before: int | None = None) -> Page:
        """Up to `limit` images older than the image with seq `before` (newest first); `total` when `before` is None."""

    def last_seq(self) -> int:
        """The project's newest feed seq now."""

    def collections(self) -> list[CollectionRecord]:
        """The project's saved collections (not deleted ones), each with its `image_ids`."""

    def start(self, model: LiveImages) -> None:
        """Read the snapshot and follow the feed after it, feeding `model` through `model.post` until `close`."""

    def tick(self, model: LiveImages) -> None:
        """Called about every second on the model's worker when nothing came: a chance to notice a lost feed."""

    def close(self) -> None:
        """Stop following; threads this source started are joined."""


def read_snapshot(source: Source, window: int) -> Snapshot:
    """The newest `window` images with the total and the feed position they were read at.

    A page reads the feed position first, then the images and the count; a change made between those
    reads would be counted twice (or not at all) once the feed is followed from that position. So the
    first page is read again until the feed has not moved across it (`SNAPSHOT_TRIES` times at most,
    then it is taken as it is, with a warning). Older pages cannot disagree: changes after the position
    only add newer images, or change and delete ones the feed then reports.
    """
    for _ in range(SNAPSHOT_TRIES):
        first = source.page(min(window, PAGE_MAX))
        if source.last_seq() == first.last_seq:
            break
    else:
        log.warning("%s: the feed kept moving while its first page was read; the count may be off", source.description)
    images = list(first.images)
    got, asked = len(first.images), min(window, PAGE_MAX)
    while len(images) < window and got == asked:  # a short page was the last one
        asked = min(window - len(images), PAGE_MAX)
        more = source.page(asked, before=images[-1].seq).images
        images.extend(more)
        got = len(more)
    return Snapshot(first.last_seq, images[:window], first.total or 0)
