"""`LiveImages`: a project's images as params that follow its change feed, for Panel and notebooks.

Made like Panel's `Tabulator`: the data is in params (`images`, `count`, `latest`, …) that a view binds
to, and each change of the feed changes them in place with a small step (`delta` says what it did,
as `Tabulator.stream`/`patch` would), never a reread. All the state changes on one worker thread
per model, in feed order; the source (dashboard/live/hub_source.py, sse_source.py) hands it what it
reads. See docs/live.md.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import param

from dashboard.events import (
    FLAGS,
    IMAGE_CREATED,
    IMAGE_DELETED,
    IMAGE_UPDATED,
    LABELS,
    RATING_CHANGED,
    Change,
    ImageRecord,
)
from dashboard.live import registry
from dashboard.live.sessions import SessionParametersDescriptor, watch_where_changed
from dashboard.live.source import PAGE_MAX, Snapshot, Source

log = logging.getLogger("fotoflo.live")

#: Images kept in `images` unless asked otherwise.
WINDOW = 500
#: How long the worker waits for work before it lets the source check its feed, in seconds.
TICK_S = 1.0


@dataclass(frozen=True, eq=False)  # every update is an event of its own, even one equal to the last
class Delta:
    """What the last update did to `images`, for views that stream and patch rather than redraw.

    `added` entered at the front (new images, newest first); `appended` entered at the end (older
    images that fill the window after a deletion or a larger `window`); `updated` were replaced in
    place (a rating, flag or label, a new version); `removed` are the ids that left (deleted, or
    pushed past the window). With `reset`, `images` was replaced as a whole: read it again.
    """

    added: tuple[ImageRecord, ...] = ()
    appended: tuple[ImageRecord, ...] = ()
    updated: tuple[ImageRecord, ...] = ()
    removed: tuple[str, ...] = ()
    reset: bool = False


class LiveImages(param.Parameterized):
    """A project's images, live: the count, the newest image and the newest `window` images as params.

    One per project and process (`dashboard.live.live_images(app, project)`, `live_remote(url,
    project)`, `dashboard.open(...).live()`), shared by every session and cell that asks, fed by one
    subscription to the change feed. Its params change on its worker thread; a watcher registered in
    a served Panel session (`pn.bind`, `param.depends`, `.param.watch`) runs in that session's turn
    instead, with its document locked (dashboard/live/sessions.py). The filters are shared too: a
    session that wants filters of its own binds its own function to `images`.
    """

    count = param.Integer(
        default=0, bounds=(0, None), constant=True, doc="Images in the project (all, not just `images`)."
    )
    latest = param.ClassSelector(
        class_=ImageRecord,
        default=None,
        allow_None=True,
        constant=True,
        doc="The newest image, or None in an empty project.",
    )
    images = param.List(
        default=[],
        constant=True,
        doc="The newest `window` images (`ImageRecord`s), newest first: a new list at each change.",
    )
    window = param.Integer(
        default=WINDOW,
        bounds=(1, None),
        doc="How many of the newest images `images` holds; a change applies shortly after.",
    )
    last_seq = param.Integer(
        default=0,
        constant=True,
        doc="The feed cursor: the seq of the last change applied; what a resumed stream starts after.",
    )
    connected = param.Boolean(
        default=False,
        constant=True,
        doc="True while the feed is followed; False while its server or app is down (the values then wait).",
    )
    min_rating = param.Integer(
        default=None, allow_None=True, bounds=(0, 5), doc="`filtered` keeps images rated at least this; None: any."
    )
    flag: Any = param.Selector(
        default=None, objects=[None, *FLAGS], doc="`filtered` keeps images with this flag; None: any."
    )
    label: Any = param.Selector(
        default=None, objects=[None, *LABELS], doc="`filtered` keeps images with this colour label; None: any."
    )
    query = param.String(
        default="", doc="`filtered` keeps images whose file name, camera or lens contain every word of it (any case)."
    )
    filtered = param.List(default=[], constant=True, doc="`images` as the filters keep them, newest first.")
    delta = param.ClassSelector(
        class_=Delta, default=Delta(), constant=True, doc="What the last change of `images` did."
    )
    changes = param.List(
        default=[], constant=True, doc="The feed entries (`Change`s, every kind) the last update applied, in order."
    )
    source = param.String(default="", constant=True, doc="Where the feed comes from, for people.")

    _per_session = False  # True once made: watchers registered from then on in a session run there

    def __init__(self, feed: Source, *, window: int = WINDOW, key: Hashable = None, **params: Any) -> None:
        super().__init__(window=window, source=feed.description, **params)
        self._feed = feed
        self._key = key
        self._lock = threading.RLock()  # the worker's updates against filters set from other threads
        self._order: deque[str] = deque()  # ids of `images`, newest first
        self._by_id: dict[str, ImageRecord] = {}
        self._inbox: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._ready = threading.Event()  # the first snapshot is in
        self._settled = threading.Event()  # ready, or the first attempt failed
        self._closed = False
        #: The error of the first attempt to read the project, if it failed (the source keeps trying).
        self.error: Exception | None = None
        # The model's own watchers: registered before `_per_session`, so never tied to a session.
        self.param.watch(self._refilter, ["min_rating", "flag", "label", "query"])
        self.param.watch(lambda _: self.post(self._fit_window), ["window"])
        self._worker = threading.Thread(target=self._work, name=f"fotoflo-live {feed.description}", daemon=True)
        self._per_session = True
        self._worker.start()
        feed.start(self)

    # Last in the class body: above, `param` is the module.
    param = SessionParametersDescriptor()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<LiveImages {self.source}: {self.count} images, at #{self.last_seq}, {state}>"

    __str__ = __repr__

    def _repr_html_(self) -> str:
        import html

        return f"<code>{html.escape(repr(self))}</code>"

    # -- for callers --------------------------------------------------------------------------

    feed = property(lambda self: self._feed, doc="Where the model reads the project: for tallies of all of it.")
    closed = property(lambda self: self._closed, doc="True once `close()` was called.")

    @contextmanager
    def holding(self) -> Iterator[LiveImages]:
        """No update while the block runs: copy `images` and watch `delta` in it, so none falls between."""
        with self._lock:
            yield self

    def wait_ready(self, timeout_s: float = 10.0) -> bool:
        """Wait until the first page and count are in (True), or the first attempt failed or time ran out (False)."""
        self._settled.wait(timeout_s)
        return self._ready.is_set()

    def wait_for(self, predicate: Callable[[LiveImages], object], timeout_s: float = 10.0) -> bool:
        """Wait until `predicate(self)` holds after an update (or already does); False when `timeout_s` passed."""
        done = threading.Event()

        def check(*_: object) -> None:
            if predicate(self):
                done.set()

        # Not tied to a session even if called in one: it must run where the values change.
        watcher = watch_where_changed(self, check, ["last_seq", "connected", "images"])
        try:
            check()
            return done.wait(timeout_s)
        finally:
            self.param.unwatch(watcher)

    def close(self) -> None:
        """Stop following the feed, for every user of this model; a later `live()` makes a new one."""
        if self._closed:
            return
        self._closed = True
        registry.forget(self._key, self)
        self._feed.close()
        self._inbox.put(None)
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout=10)
        with self._lock:
            self._publish(connected=False)

    # -- for sources: from any thread ---------------------------------------------------------

    def post(self, job: Callable[[], None]) -> None:
        """Run `job` on this model's worker, after what was posted before it."""
        if not self._closed:
            self._inbox.put(job)

    def deliver_snapshot(self, snapshot: Snapshot) -> None:
        """Start again from `snapshot` (the first state, or a server whose feed is not the one followed)."""
        self.post(lambda: self._reset(snapshot))

    def deliver(self, changes: list[Change]) -> None:
        """Apply feed entries, in feed order; those at or before `last_seq` are skipped (a replay overlap)."""
        self.post(lambda: self._apply(changes))

    def deliver_connected(self, connected: bool) -> None:
        self.post(lambda: self._set_connected(connected))

    def deliver_failure(self, exc: Exception) -> None:
        """The source could not read the project; before the first snapshot, callers waiting are told."""
        if not self._ready.is_set() and self.error is None:
            self.error = exc
            self._settled.set()

    # -- on the worker ------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            try:
                job = self._inbox.get(timeout=TICK_S)
            except queue.Empty:
                job = self._tick
            if job is None:
                return
            try:
                job()
            except Exception:
                if not self._closed:  # else: a read cut short by close()
                    log.exception("%s: updating the live images failed", self.source)

    def _tick(self) -> None:
        self._feed.tick(self)

    def _reset(self, snapshot: Snapshot) -> None:
        with self._lock:
            kept = snapshot.images[: self.window]
            self._order = deque(image.id for image in kept)
            self._by_id = {image.id: image for image in kept}
            self._publish(count=snapshot.total, last_seq=snapshot.last_seq, **self._window_values(Delta(reset=True)))
        self.error = None
        self._ready.set()
        self._settled.set()

    def _set_connected(self, connected: bool) -> None:
        with self._lock:
            self._publish(connected=connected)

    def _apply(self, changes: Iterable[Change]) -> None:
        with self._lock:
            cursor, count = self.last_seq, self.count
            added: list[str] = []  # oldest first
            updated: dict[str, ImageRecord] = {}
            removed: list[str] = []
            applied: list[Change] = []
            deleted = False
            for change in changes:
                if change.seq <= cursor:
                    continue
                cursor = change.seq
                applied.append(change)
                kind, image = change.kind, change.image
                if kind == IMAGE_CREATED:
                    if image is not None and image.id in self._by_id:
                        continue  # read with the first page already: counted there
                    count += 1
                    if image is not None:  # None: deleted since, its `image.deleted` follows
                        self._by_id[image.id] = image
                        self._order.appendleft(image.id)
                        added.append(image.id)
                elif kind == IMAGE_UPDATED:
                    if image is not None and image.id in self._by_id:
                        self._by_id[image.id] = updated[image.id] = image
                elif kind == RATING_CHANGED:
                    old = self._by_id.get(change.data.get("image_id", ""))
                    if old is not None:
                        marks = {k: change.data[k] for k in ("rating", "flag", "label") if k in change.data}
                        self._by_id[old.id] = updated[old.id] = replace(old, **marks)
                elif kind == IMAGE_DELETED:
                    count -= 1
                    image_id = change.data.get("image_id", "")
                    if self._by_id.pop(image_id, None) is not None:
                        self._order.remove(image_id)
                        removed.append(image_id)
                        deleted = True
            if cursor == self.last_seq:
                return
            while len(self._order) > self.window:
                gone = self._order.pop()
                del self._by_id[gone]
                removed.append(gone)
            values: dict[str, Any] = {"count": max(0, count), "last_seq": cursor, "changes": applied}
            if added or updated or removed:
                new = set(added)
                delta = Delta(
                    added=tuple(self._by_id[i] for i in reversed(added) if i in self._by_id),
                    updated=tuple(r for i, r in updated.items() if i in self._by_id and i not in new),
                    removed=tuple(i for i in removed if i not in new),
                )
                values.update(self._window_values(delta))
            self._publish(**values)
        if deleted:
            self._fill()

    def _fit_window(self) -> None:
        with self._lock:
            removed = []
            while len(self._order) > self.window:
                gone = self._order.pop()
                del self._by_id[gone]
                removed.append(gone)
            if removed:
                self._publish(**self._window_values(Delta(removed=tuple(removed))))
        self._fill()

    def _fill(self) -> None:
        """Fill `images` up to `window` with older images (after a deletion, or a larger window)."""
        while True:
            with self._lock:
                missing = self.window - len(self._order)
                if missing <= 0 or self.count <= len(self._order):
                    return
                # Older than the oldest shown; with none shown, than the cursor: never an image whose
                # `image.created` is still to come.
                before = self._by_id[self._order[-1]].seq if self._order else self.last_seq + 1
            older = self._feed.page(min(missing, PAGE_MAX), before=before).images
            with self._lock:
                oldest = self._by_id[self._order[-1]].seq if self._order else self.last_seq + 1
                if oldest != before:
                    continue  # the window changed meanwhile: ask again from where it is now
                fresh = [r for r in older if r.id not in self._by_id][: self.window - len(self._order)]
                for image in fresh:
                    self._by_id[image.id] = image
                    self._order.append(image.id)
                if fresh:
                    self._publish(**self._window_values(Delta(appended=tuple(fresh))))
            if len(older) < min(missing, PAGE_MAX) or not fresh:
                return  # the project has no more

    # -- state to params (under the lock) -------------------------------------------------------

    def _window_values(self, delta: Delta) -> dict[str, Any]:
        images = [self._by_id[i] for i in self._order]
        return {
            "images": images,
            "latest": images[0] if images else None,
            "filtered": self._filter(images),
            "delta": delta,
        }

    def _publish(self, **values: Any) -> None:
        # What `param.edit_constant` does, for the params set only: it visits every param, each time.
        unlocked = [self.param[name] for name in values if self.param[name].constant]
        for p in unlocked:
            p.constant = False
        try:
            self.param.update(values)
        finally:
            for p in unlocked:
                p.constant = True

    def _refilter(self, *_: object) -> None:
        with self._lock:
            self._publish(filtered=self._filter(self.images))

    def _filter(self, images: list[ImageRecord]) -> list[ImageRecord]:
        rating, flag, label = self.min_rating, self.flag, self.label
        words = self.query.casefold().split()
        if rating is None and flag is None and label is None and not words:
            return images  # the same list: `images` is never changed in place, only replaced
        return [
            r
            for r in images
            if (rating is None or r.rating >= rating)
            and (flag is None or r.flag == flag)
            and (label is None or r.label == label)
            and (not words or all(w in _haystack(r) for w in words))
        ]


def _haystack(image: ImageRecord) -> str:
    """What `query` searches in an image: its file name, camera make and model, and lens."""
    lens = image.exif.get("lens") if isinstance(image.exif, dict) else None
    parts = (image.filename, image.camera_make, image.camera_model, lens)
    return " ".join(str(p) for p in parts if p).casefold()
