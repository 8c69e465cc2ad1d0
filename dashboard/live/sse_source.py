"""The feed of a project on a running Fotoflo server: its images API for the snapshot, its SSE stream for changes.

One thread per source reads `GET /api/projects/{p}/events` with `Last-Event-ID` set to the last
change it handed on, so a stream that breaks (the server restarted, the network dropped) resumes
exactly after it: the server replays what was missed, from its durable feed, and nothing is counted
twice. It reconnects with backoff; the model is `connected` only while a stream is open. The server
asks for a heartbeat every `heartbeat_s`, so a silent outage is noticed within three of them.

The stream leaves out an image's `image.created` (or `.updated`) once that image is deleted (its
`image.deleted` comes later): the ids jump there. Those entries still count (an image was added,
then removed), so a jump is filled from `GET /changes`, which lists them without their image.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from dashboard.client import ApiClient, ApiError, Unreachable, error_of, project_path, segment
from dashboard.events import IMAGE_CREATED, IMAGE_UPDATED, Change, CollectionRecord, ImageRecord
from dashboard.live.source import PAGE_MAX, Page, read_snapshot

if TYPE_CHECKING:
    from dashboard.live.model import LiveImages

log = logging.getLogger("fotoflo.live")

HEARTBEAT_S = 1.0  # asked of the server; a stream silent for three of them is taken as lost
CONNECT_TIMEOUT_S = 5.0
BACKOFF_MIN_S = 0.25
BACKOFF_MAX_S = 4.0
#: Larger than any feed seq (the API takes up to 2**62): `/changes` after it lists nothing but says `last_seq`.
_BEYOND_FEED = 2**62


@dataclass
class SseFrame:
    """One event of a `text/event-stream`, as Fotoflo's server writes them (`\\n` line ends)."""

    id: str | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


def parse_frame(frame: bytes) -> SseFrame:
    out = SseFrame()
    for line in frame.decode("utf-8").split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        if line.startswith(":"):
            out.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            out.id = value
        elif name == "event":
            out.event = value
        elif name == "data":
            out.data.append(value)
    return out


def change_of(project: str, seq: int, kind: str, data: dict[str, Any]) -> Change:
    """The feed entry an SSE event stands for: the image for image events, else the change's data.

    The stream does not say when the change was made: `created_at` is left empty.
    """
    if kind in (IMAGE_CREATED, IMAGE_UPDATED):
        return Change(project, seq, kind, "", image=ImageRecord.from_dict(data))
    return Change(project, seq, kind, "", data=data)


class SseSource:
    """One project of the Fotoflo server at `url` (`token`: an API token, for a server with access control)."""

    def __init__(
        self,
        url: str,
        project: str,
        *,
        token: str | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.project = project
        self.key = self.key_of(url, project, token)
        self.description = f"{project!r} at {self.url}"
        self.heartbeat_s = heartbeat_s
        self._client = ApiClient(
            self.url, project, token=token, timeout_s=timeout_s, connect_timeout_s=CONNECT_TIMEOUT_S
        )
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # Its own client: a stream's read timeout is a few heartbeats, not a request's.
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S, read=max(3 * heartbeat_s, 2.0)),
        )
        self._cursor = 0  # the seq of the last change handed to the model
        self._model: LiveImages | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"fotoflo-live-sse {self.description}", daemon=True)
        self._streaming = False  # a stream was open in this round (the backoff starts over)

    @staticmethod
    def key_of(url: str, project: str, token: str | None) -> Hashable:
        return ("url", url.rstrip("/"), project, token)

    # -- reads --------------------------------------------------------------------------------

    def page(self, limit: int, before: int | None = None) -> Page:
        data = self._client.get("/images", limit=limit, before=before)
        images = [ImageRecord.from_dict(image) for image in data["images"]]
        total = data.get("total")
        return Page(int(data["last_seq"]), images, int(total) if total is not None else None)

    def last_seq(self) -> int:
        return int(self._client.get("/changes", after=_BEYOND_FEED, limit=1)["last_seq"])

    def collections(self) -> list[CollectionRecord]:
        # The list has cards (no image ids): each collection is read on its own, as the notebook does.
        cards = self._client.get("/collections")["collections"]
        return [CollectionRecord.from_dict(self._client.get(f"/collections/{segment(c['id'])}")) for c in cards]

    # -- following ----------------------------------------------------------------------------

    def start(self, model: LiveImages) -> None:
        self._model = model
        self._thread.start()

    def tick(self, model: LiveImages) -> None:
        pass  # the stream's own thread notices a lost stream (its read times out)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=3 * self.heartbeat_s + CONNECT_TIMEOUT_S)
        self._http.close()
        self._client.close()

    def _run(self) -> None:
        model = self._model
        assert model is not None
        backoff, start_over, lost_logged = BACKOFF_MIN_S, True, False
        while not self._stop.is_set():
            self._streaming = False
            try:
                if start_over:
                    snapshot = read_snapshot(self, model.window)
                    self._cursor = snapshot.last_seq
                    model.deliver_snapshot(snapshot)
                start_over = self._follow(model)
                if not self._stop.is_set():
                    log.info("%s: the event stream ended; reconnecting from #%d", self.description, self._cursor)
            except (Unreachable, ApiError, httpx.HTTPError, ValueError, KeyError) as exc:
                if self._stop.is_set():
                    break
                model.deliver_failure(exc)
                if not lost_logged:
                    log.info("%s: %s; retrying", self.description, exc or type(exc).__name__)
                    lost_logged = True
            except Exception:
                log.exception("%s: following the feed failed; retrying", self.description)
            model.deliver_connected(False)
            if self._streaming:
                backoff, lost_logged = BACKOFF_MIN_S, False
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _follow(self, model: LiveImages) -> bool:
        """Stream changes after the cursor to `model` until the stream ends; True when the server's feed
        is not the one followed (it is behind the cursor: another data directory), to start over."""
        path = project_path(self.project, "/events")
        headers = {"Last-Event-ID": str(self._cursor)}
        with self._http.stream("GET", path, headers=headers, params={"heartbeat": self.heartbeat_s}) as response:
            if response.status_code != 200:
                response.read()
                code, reason = error_of(response)
                raise ApiError("GET", path, response.status_code, code, reason)
            self._streaming = True
            model.deliver_connected(True)
            log.debug("%s: streaming after #%d", self.description, self._cursor)
            buffer = b""
            for chunk in response.iter_bytes():
                if self._stop.is_set():
                    return False
                buffer += chunk
                if b"\n\n" not in buffer:
                    continue
                *frames, buffer = buffer.split(b"\n\n")
                batch: list[Change] = []
                for raw in frames:
                    frame = parse_frame(raw)
                    if any(_behind(c, self._cursor) for c in frame.comments):
                        log.warning(
                            "%s: the server's feed is behind #%d; reading it again", self.description, self._cursor
                        )
                        return True
                    if frame.id is not None and frame.event is not None:
                        batch.extend(self._accept(int(frame.id), frame.event, json.loads("\n".join(frame.data))))
                if batch:
                    model.deliver(batch)
        return False

    def _accept(self, seq: int, kind: str, data: dict[str, Any]) -> list[Change]:
        """The changes up to this event not handed on yet: those the stream left out (see above), then it."""
        if seq <= self._cursor:
            return []  # a replay overlapping what was handed on
        out = self._left_out(self._cursor, seq) if seq > self._cursor + 1 else []
        out.append(change_of(self.project, seq, kind, data))
        self._cursor = seq
        return out

    def _left_out(self, after: int, upto: int) -> list[Change]:
        out: list[Change] = []
        while after < upto - 1:
            listed = self._client.get("/changes", after=after, limit=min(PAGE_MAX, upto - 1 - after))["changes"]
            entries = [Change.from_dict(c) for c in listed if int(c["seq"]) < upto]
            if not entries:
                break  # not shown to this token (a share link's scope): nothing to count
            out.extend(entries)
            after = entries[-1].seq
        return out


def _behind(comment: str, cursor: int) -> bool:
    """Whether the stream's `connected at #N` comment says it starts before `cursor` (it clamped it)."""
    if not comment.startswith("connected at #"):
        return False
    try:
        return int(comment.removeprefix("connected at #")) < cursor
    except ValueError:
        return False
