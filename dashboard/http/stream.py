"""The change feed over HTTP: `/changes` (a page of it) and `/events` (Server-Sent Events, replay then live).

A stream that sees the whole project is written by the hub's delivery itself; each change's frame
is encoded once for every stream of the process (`_Frames`); a client that does not keep up is cut
off and resumes from its `Last-Event-ID`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from tornado.concurrent import future_add_done_callback

from dashboard.auth.access import Scope
from dashboard.auth.roles import EDIT_ANY_COLLECTION, Action, Principal
from dashboard.events import FAVORITE_CHANGED, FAVORITES_SUBMITTED, IMAGE_CREATED, IMAGE_UPDATED, Change
from dashboard.http.base import ApiError
from dashboard.http.images import MAX_PAGE
from dashboard.http.project import ProjectHandler
from dashboard.http.rules import Allow

log = logging.getLogger("fotoflo.api")

SSE_RETRY_MS = 2000
SSE_MAX_BACKLOG = 1000  # batches queued for one slow client before it is cut off to reconnect
SSE_MAX_BUFFER_BYTES = 1024 * 1024  # bytes written but not yet taken by one client's socket: then it is cut off
SSE_FRAME_REUSE_S = 30.0  # an encoded event is sent to other streams for this long (see _Frames)
SSE_FRAMES_KEPT = 4096  # encoded events kept at most

#: Entries about one person's favourites: sent only to those who see everyone's (editors and owners),
#: as `GET …/favorites` shows them; a guest never learns who else is on the link, or what they chose.
#: Comments are not among them: they are shared with everyone who sees their image (a link to one
#: collection: its images', as `Scope.shows` keeps entries by their `image_id`).
PERSONAL = frozenset({FAVORITE_CHANGED, FAVORITES_SUBMITTED})


def sees_personal(principal: Principal, project: str) -> bool:
    role = principal.role_in(project)
    return role is not None and role >= EDIT_ANY_COLLECTION


class ChangesHandler(ProjectHandler):
    """A page of the project's feed after `?after=` (a link to one collection: the changes it sees)."""

    ACTIONS = {"get": Allow(Action.VIEW)}  # an unknown project is the store's `404 unknown_project`

    async def get(self, project: str) -> None:
        after = self.int_arg("after", 0)
        limit = self.int_arg("limit", MAX_PAGE, low=1, high=MAX_PAGE)
        assert after is not None and limit is not None
        changes = await self.run(self.app.store.changes, project, after=after, limit=limit)
        last = await self.run(self.app.store.last_seq, project)
        scope = await self.scope(project, fresh=True)
        if scope is not None:
            changes = [c for c in changes if scope.shows(c)]
        if not sees_personal(self.principal, project):
            changes = [c for c in changes if c.kind not in PERSONAL]
        self.write_json({"changes": [self.wire.change(c, scope) for c in changes], "last_seq": last})


class _Frames:
    """Each change's SSE frame, encoded once for every stream of this process that sends it.

    The hub hands all streams of a project the same `Change` objects from one feed read, so without
    this a thousand streams sign the same URLs and encode the same JSON a thousand times: most of
    the fan-out's CPU. Keyed by the object, which the entry keeps alive (its id cannot be reused),
    and kept at most SSE_FRAME_REUSE_S, so a frame's signed URLs are never much older than fresh ones.
    """

    def __init__(self) -> None:
        self._frames: OrderedDict[int, tuple[Change, bytes, float]] = OrderedDict()
        self._lock = threading.Lock()  # one process may run several servers, each on its own loop

    def get(self, change: Change, encode: Callable[[Change], bytes]) -> bytes:
        now = time.monotonic()
        with self._lock:
            hit = self._frames.get(id(change))
        if hit is not None and hit[0] is change and now - hit[2] < SSE_FRAME_REUSE_S:
            return hit[1]
        frame = encode(change)
        with self._lock:
            self._frames.pop(id(change), None)
            self._frames[id(change)] = (change, frame, now)
            while self._frames:
                _, _, made = next(iter(self._frames.values()))
                if len(self._frames) <= SSE_FRAMES_KEPT and now - made < SSE_FRAME_REUSE_S:
                    break
                self._frames.popitem(last=False)
        return frame


_FRAMES = _Frames()


class EventsHandler(ProjectHandler):
    """`text/event-stream` of a project's feed: replay after the client's cursor, then live."""

    _queue: asyncio.Queue[list[Change] | None]
    ACTIONS = {"get": Allow(Action.VIEW, project=True)}

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-cache, no-transform")
        self.set_header("X-Accel-Buffering", "no")
        self.set_cors_headers()

    async def get(self, project: str) -> None:
        await self.admit()
        last_id = self.request.headers.get("Last-Event-ID")
        # isascii: str.isdigit() also admits digits int() refuses ('²'); the length keeps it in SQLite's range.
        if last_id is not None and not (last_id.isascii() and last_id.isdigit() and len(last_id) <= 18):
            raise ApiError(400, "bad_argument", "Last-Event-ID must be a feed sequence number")
        after = int(last_id) if last_id is not None else self.int_arg("after", None)
        heartbeat_s = max(0.5, min(60.0, self.float_arg("heartbeat", self.app.settings.heartbeat_s)))
        last = await asyncio.to_thread(self.app.store.last_seq, project)
        if after is None or after > last:
            # A cursor beyond the feed comes from another history (a restored or replaced data
            # directory); kept as is, it would hide every event up to it, so start from now.
            after = last
        self._queue = asyncio.Queue()
        # A stream that sees the whole project is written by the hub's delivery itself, as each batch
        # comes: waking a task per stream and event was most of the fan-out's cost. A link to one
        # collection filters each batch first (a store read), on this handler's task.
        self._direct = self.principal.collection_id is None
        self._personal = sees_personal(self.principal, project)
        self._flushing = self._closed = False
        # Bytes handed to tornado, and how many of them the socket has taken (as far as the last
        # completed flush tells): the difference is this stream's buffer, bounded by SSE_MAX_BUFFER_BYTES.
        self._written_bytes = self._taken_bytes = 0
        sub = self.app.hub.subscribe(project, after, self._deliver)
        peer = self.client
        log.info("SSE open %s from %s after #%d", project, peer, after)
        self.app.metrics.sse_streams.inc()
        try:
            self._send(f"retry: {SSE_RETRY_MS}\n: connected at #{after}\n\n".encode())
            while True:
                try:
                    async with asyncio.timeout(heartbeat_s):  # no task per wait, as wait_for() would make
                        batch = await self._queue.get()
                except TimeoutError:
                    self._send(f": heartbeat {math.floor(time.time())}\n\n".encode())
                    continue
                if batch is None:
                    break
                # A link to one collection: what it shows may have changed with this batch.
                scope = await self.scope(project, fresh=True)
                self._send_changes([c for c in batch if scope is None or scope.shows(c)], scope)
        finally:
            self._closed = True
            sub.close()
            self.app.metrics.sse_streams.dec()
            log.info("SSE closed %s from %s at #%d", project, peer, sub.cursor)
        if not self._finished:
            self.finish()

    def _frame(self, change: Change, scope: Scope | None = None) -> bytes:
        data = json.dumps(self.wire.change_payload(change, scope), separators=(",", ":"))
        return f"id: {change.seq}\nevent: {change.kind}\ndata: {data}\n\n".encode()

    def _scoped_frame(self, change: Change, scope: Scope) -> bytes:
        """A share link's frame: the shared one unless the link sees this change's data otherwise (a
        collection's cover or images it does not show), then its own, never cached for others."""
        data = change.data
        if change.image is None and "cover_image_id" in data and scope.collection_data(data) is not data:
            return self._frame(change, scope)
        return _FRAMES.get(change, self._frame)

    def _deliver(self, batch: list[Change]) -> None:
        if self._closed:
            return
        if not self._direct:
            if self._queue.qsize() >= SSE_MAX_BACKLOG:
                # Too slow to keep up: end the stream; the client resumes from its Last-Event-ID.
                self._cut_off(f"{SSE_MAX_BACKLOG} batches queued")
                return
            self._queue.put_nowait(batch)
            return
        try:
            self._send_changes(batch)
        except Exception:
            self._end()  # the hub drops this subscription: end the stream, the client resumes where it was
            raise

    def _send_changes(self, batch: list[Change], scope: Scope | None = None) -> None:
        # An image deleted since its `image.created` or `.updated`: its `image.deleted` comes later in the feed.
        gone = (IMAGE_CREATED, IMAGE_UPDATED)
        shown = [
            c for c in batch
            if (c.image is not None or c.kind not in gone) and (self._personal or c.kind not in PERSONAL)
        ]  # fmt: skip
        if scope is None:
            frames = [_FRAMES.get(c, self._frame) for c in shown]
        else:
            frames = [self._scoped_frame(c, scope) for c in shown]
        if frames:
            self._send(b"".join(frames))

    def _send(self, data: bytes) -> None:
        """Write `data` and flush it now, or right after the flush under way: tornado keeps one write
        future per connection, so a second flush at once would leave the first one's unresolved.

        A client that does not take what was sent (a stalled or hostile reader) is cut off once its
        buffer would pass SSE_MAX_BUFFER_BYTES: the server never holds more for one stream.
        """
        if self._closed:
            return
        buffered = self._written_bytes - self._taken_bytes
        if buffered and buffered + len(data) > SSE_MAX_BUFFER_BYTES:
            self._cut_off(f"{buffered} bytes not taken by the client (limit {SSE_MAX_BUFFER_BYTES})")
            return
        self.write(data)
        self._written_bytes += len(data)
        if not self._flushing:
            self._flush()

    def _flush(self) -> None:
        self._flushing = True
        mark = self._written_bytes
        # At once when the socket took it all.
        future_add_done_callback(self.flush(), functools.partial(self._flushed, mark))

    def _flushed(self, mark: int, done: asyncio.Future[None]) -> None:
        self._flushing = False
        if done.cancelled() or done.exception() is not None:  # StreamClosedError: the client went away
            self._end()
            return
        self._taken_bytes = mark
        if self._written_bytes > mark and not self._closed:
            self._flush()

    def _cut_off(self, why: str) -> None:
        """End a stream whose client does not keep up, dropping what it has not taken; it resumes from its cursor."""
        log.warning("SSE to %s cut off: %s; it resumes from its last event", self.client, why)
        self._end()
        connection = self.request.connection
        if connection is not None and hasattr(connection, "close"):
            connection.close()  # drops tornado's buffer now: finishing would wait for a reader that never reads

    def _end(self) -> None:
        self._closed = True
        self._queue.put_nowait(None)

    def on_connection_close(self) -> None:
        if hasattr(self, "_queue"):
            self._end()
