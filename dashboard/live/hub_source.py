"""The feed of a project from the `App` of this process: its store for the snapshot, its hub for changes.

Used by `fotoflo serve`, the `panel serve` plugin and a data directory opened in a notebook (its
background server holds an `App`). The hub delivers on its loop; this source only queues each batch
for the model's worker, so no store read or param event ever runs on the server's loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable
from typing import TYPE_CHECKING

from dashboard.live.source import Page, read_snapshot

if TYPE_CHECKING:
    from dashboard.app import App
    from dashboard.events import CollectionRecord
    from dashboard.hub import FeedSubscription
    from dashboard.live.model import LiveImages

log = logging.getLogger("fotoflo.live")

#: After a failed first read of the store, the next try comes this much later, in seconds.
RETRY_S = 2.0


class HubSource:
    """One project of `app`: pages from `app.store`, changes from `app.hub` after the snapshot's cursor.

    Made on a thread that can name the hub's loop: the hub is already bound to one (the app was started
    with its loop, or served), or this thread runs the loop the hub will bind to (a Panel session of the
    `panel serve` plugin). `connected` is True while the subscription is open, False once the app stopped.
    """

    def __init__(self, app: App, project: str) -> None:
        self.app = app
        self.project = project
        self.key = self.key_of(app, project)
        self.description = f"{project!r} in this process"
        self._loop = _hub_loop(app)
        self._model: LiveImages | None = None
        self._sub: FeedSubscription | None = None
        self._retry_at: float | None = None  # monotonic time of the next try after a failed snapshot
        self._closed = False

    @staticmethod
    def key_of(app: App, project: str) -> Hashable:
        return ("app", app, project)

    def page(self, limit: int, before: int | None = None) -> Page:
        store = self.app.store
        last = store.last_seq(self.project)
        images = store.list_images(self.project, before=before, limit=limit)
        total = store.count_images(self.project) if before is None else None
        return Page(last, images, total)

    def last_seq(self) -> int:
        return self.app.store.last_seq(self.project)

    def collections(self) -> list[CollectionRecord]:
        return self.app.store.list_collections(self.project)

    def start(self, model: LiveImages) -> None:
        self._model = model
        model.post(self._begin)

    def _begin(self) -> None:
        """On the model's worker: the snapshot, then the subscription after it, on the hub's loop."""
        model = self._model
        assert model is not None
        self._retry_at = None
        try:
            snapshot = read_snapshot(self, model.window)
        except Exception as exc:
            log.warning("%s: reading the project failed (%s); retrying", self.description, exc)
            model.deliver_failure(exc)
            self._retry_at = time.monotonic() + RETRY_S
            return
        model.deliver_snapshot(snapshot)

        def subscribe() -> None:  # on the hub's loop
            if self._closed:
                return
            self._sub = self.app.hub.subscribe(self.project, snapshot.last_seq, model.deliver)
            model.deliver_connected(True)

        try:
            self._loop.call_soon_threadsafe(subscribe)
        except RuntimeError:  # the loop is closed: the app was stopped
            log.info("%s: the app's loop is closed; not following its feed", self.description)

    def tick(self, model: LiveImages) -> None:
        if self._closed:
            return
        if self._retry_at is not None and time.monotonic() >= self._retry_at:
            self._begin()
        elif self._sub is not None and self._sub.closed:
            # The hub dropped it: the app stopped (or this consumer failed, which the hub logged).
            self._sub = None
            model.deliver_connected(False)

    def close(self) -> None:
        self._closed = True
        sub, self._sub = self._sub, None
        if sub is not None and not sub.closed:
            try:
                self._loop.call_soon_threadsafe(sub.close)  # the hub's state is its loop's
            except RuntimeError:
                sub.closed = True


def _hub_loop(app: App) -> asyncio.AbstractEventLoop:
    """The loop the hub of `app` delivers on: the one it is bound to, else the one running this thread."""
    try:
        bound = app.hub.loop
    except AssertionError:  # not bound yet (the property asserts it is)
        bound = None
    if bound is not None:
        return bound
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "this App's feed hub runs on no event loop yet: ask for live images in a session of the server "
            "that serves it, or start the app with its loop (`app.start(loop)`), as `fotoflo serve`, the "
            "`panel serve` plugin and a notebook's data directory do"
        ) from None
