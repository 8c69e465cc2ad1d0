"""`ProjectTally`: counts over a whole project (not a window), kept up to date from a `LiveImages`' feed.

One per `LiveImages` (`tally_of(live)`), shared by every view and session. It reads the project once,
page by page with its collections, on a thread of its own; then it follows the feed entries the
model applies (`LiveImages.changes`): a new image, a rating or a deletion costs a few dictionary
steps, whatever the project's size (dashboard/studio/counts.py). Each update says what it changed
as new values (`change`, a `TallyChange`), which views patch in.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import param

from dashboard.live import LiveImages
from dashboard.live.sessions import SessionParametersDescriptor, watch_where_changed
from dashboard.live.source import PAGE_MAX, Source
from dashboard.studio.counts import Counts, TallyChange
from dashboard.studio.facts import Labels

log = logging.getLogger("fotoflo.live")

#: After a failed read of the project, the next try comes this much later, doubling up to RETRY_MAX_S.
RETRY_MIN_S = 0.25
RETRY_MAX_S = 4.0


class ProjectTally(param.Parameterized):
    """Counts over all of a project's images, following a `LiveImages`; the shared one is `tally_of(live)`.

    Until the project has been read (`ready`) the counts are empty; then `change` is set with all of
    them (`reset`). A new snapshot of the model (another server behind its address) reads it again.
    Watchers registered in a served Panel session run on that session's turn, as `LiveImages`' do.
    """

    ready = param.Boolean(default=False, constant=True, doc="True once the whole project was read and counted.")
    change = param.ClassSelector(
        class_=TallyChange, default=TallyChange(), constant=True, doc="What the last update changed, as new values."
    )
    last_seq = param.Integer(default=0, constant=True, doc="The seq of the last feed entry counted.")

    _per_session = False

    def __init__(self, live: LiveImages, **params: Any) -> None:
        super().__init__(**params)
        self.live = live
        self._feed: Source = live.feed
        self._lock = threading.RLock()
        self._labels = Labels()
        self._counts = Counts(self._labels)
        self._pending: list[Any] = []  # feed entries that came while the project was being read
        self._generation = 0  # bumped by a new snapshot of the model: the project is read again
        self._reading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Registered before the read starts: every entry after the read's position reaches the tally.
        self._watchers = [
            watch_where_changed(live, self._on_feed, ["changes", "delta"]),
            watch_where_changed(live, self._on_connected, ["connected"]),
        ]
        with self._lock:
            self._read_again()
        self._per_session = True

    # Last in the class body: above, `param` is the module.
    param = SessionParametersDescriptor()

    def __repr__(self) -> str:
        return f"<ProjectTally of {self.live.source}: {len(self._counts)} images, at #{self.last_seq}>"

    @contextmanager
    def holding(self) -> Iterator[ProjectTally]:
        """No update while the block runs: take `state()` and watch `change` in it, so none falls between."""
        with self._lock:
            yield self

    def state(self) -> TallyChange:
        """All the counts now, as a `TallyChange` with `reset` set."""
        with self._lock:
            return self._counts.state()

    def wait_ready(self, timeout_s: float = 10.0) -> bool:
        """Wait until the project has been read; False if `timeout_s` passed first (for scripts and tests)."""
        done = threading.Event()

        def check(_: object) -> None:
            if self.ready:
                done.set()

        watcher = watch_where_changed(self, check, ["ready"])
        try:
            return self.ready or done.wait(timeout_s)
        finally:
            self.param.unwatch(watcher)

    def close(self) -> None:
        """Stop counting (closing the model stops it too); `tally_of` then makes a new one."""
        self._stop.set()
        with _tallies_lock:
            if _tallies.get(self.live) is self:
                del _tallies[self.live]
        for watcher in self._watchers:
            self.live.param.unwatch(watcher)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    # -- reading the project --------------------------------------------------------------------

    def _read_again(self) -> None:
        """(Under the lock.) Count the project from the start, on the reading thread."""
        self._generation += 1
        self._pending = []
        if self.ready:
            self._set(ready=False)
        if not self._reading and not self._stop.is_set():
            self._reading = True
            self._thread = threading.Thread(target=self._read, name=f"fotoflo-tally {self.live.source}", daemon=True)
            self._thread.start()

    def _read(self) -> None:
        backoff = RETRY_MIN_S
        while not self._stop.is_set() and not self.live.closed:
            generation = self._generation
            try:
                position, counts = self._read_project()
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.info("%s: counting the project failed (%s); retrying", self.live.source, exc)
                self._stop.wait(backoff)
                backoff = min(2 * backoff, RETRY_MAX_S)
                continue
            with self._lock:
                if generation != self._generation or self._stop.is_set():
                    continue  # the model started again meanwhile (so does the count), or it was closed
                # What changed while the pages were read may be in them too; `Counts` takes that in its stride.
                pending = [c for c in self._pending if c.seq > position]
                counts.apply(pending)
                self._counts, self._pending = counts, []
                last = max([position, *(c.seq for c in pending)])
                self._set(ready=True, change=counts.state(), last_seq=last)
                self._reading = False
                return
        with self._lock:
            self._reading = False

    def _read_project(self) -> tuple[int, Counts]:
        """The feed position, then every image and collection of the project (read after it), counted."""
        position = self._feed.last_seq()
        counts = Counts(self._labels)
        before: int | None = None
        while not self._stop.is_set():
            images = self._feed.page(PAGE_MAX, before=before).images
            counts.add_images(images)
            if len(images) < PAGE_MAX:
                break
            before = images[-1].seq
        counts.add_collections(self._feed.collections())
        return position, counts

    # -- following the feed (on the model's worker) ------------------------------------------------

    def _on_feed(self, *events: Any) -> None:
        named = {event.name: event.new for event in events}
        with self._lock:
            delta = named.get("delta")
            if delta is not None and delta.reset:
                self._read_again()
            changes = named.get("changes")
            if not changes:
                return
            if not self.ready:
                self._pending.extend(changes)
                return
            change = self._counts.apply(c for c in changes if c.seq > self.last_seq)
            values: dict[str, Any] = {"last_seq": max(self.last_seq, changes[-1].seq)}
            if change:
                values["change"] = change
            self._set(**values)

    def _on_connected(self, _: object) -> None:
        if self.live.closed:
            self._stop.set()

    def _set(self, **values: Any) -> None:
        with param.edit_constant(self):
            self.param.update(values)


_tallies: weakref.WeakKeyDictionary[LiveImages, ProjectTally] = weakref.WeakKeyDictionary()
_tallies_lock = threading.Lock()


def tally_of(live: LiveImages) -> ProjectTally:
    """The tally of `live`, made the first time it is asked for (the project is then read in the background)."""
    with _tallies_lock:
        tally = _tallies.get(live)
        if tally is None:
            tally = _tallies[live] = ProjectTally(live)
        return tally
