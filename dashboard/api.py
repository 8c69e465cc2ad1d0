"""HTTP API and Server-Sent Events: thin tornado handlers over the store, ingest and feed hub.

Every handler answers JSON (errors too: `{"error": {"code", "message"}}`), never a traceback.
Blocking store and ingest calls run in worker threads so the loop keeps serving sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import re
import threading
import time
import unicodedata
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import quote

from tornado import httputil, iostream, web
from tornado.concurrent import future_add_done_callback

from dashboard import export, logs, untrusted
from dashboard.auth.access import CSRF_HEADER, SESSION_COOKIE, AuthRefused, Scope, check_share_role, is_loopback
from dashboard.auth.ratelimit import retry_after
from dashboard.auth.roles import ANY_PROJECT, OPEN, Action, Principal, Role
from dashboard.events import FLAGS, IMAGE_CREATED, IMAGE_UPDATED, LABELS, Change, CollectionRecord, Device, ImageRecord
from dashboard.guard import bad_host_message, local_address
from dashboard.imaging.errors import IngestError, TooLarge
from dashboard.store import (
    CollectionDeleted,
    CollectionEdit,
    ImageFilters,
    InvalidValue,
    NotInCollection,
    UnknownCollection,
    UnknownImage,
    UnknownProject,
    VersionChanged,
)

if TYPE_CHECKING:
    from dashboard.app import App
    from dashboard.auth.store import AuthStore

log = logging.getLogger("fotoflo.api")

MAX_PAGE = 500
DEFAULT_PAGE = 100
SSE_RETRY_MS = 2000
SSE_MAX_BACKLOG = 1000  # batches queued for one slow client before it is cut off to reconnect
SSE_MAX_BUFFER_BYTES = 1024 * 1024  # bytes written but not yet taken by one client's socket: then it is cut off
SSE_FRAME_REUSE_S = 30.0  # an encoded event is sent to other streams for this long (see _Frames)
SSE_FRAMES_KEPT = 4096  # encoded events kept at most
MAX_IDS = 10_000  # image ids in one request
MAX_JSON_BYTES = 1024 * 1024  # a request body other than an upload's
#: The HTTP server's own cap on any body (pages, websockets, the API): an upload's is raised once it is authorized.
SERVER_MAX_BODY_BYTES = MAX_JSON_BYTES + 1024 * 1024
BODY_TIMEOUT_S = 60.0  # a request's whole body must arrive within this (an authorized upload's: below)
UPLOAD_BODY_TIMEOUT_S = 3600.0  # an upload's body (up to 4 × --max-bytes over a slow link)
IDLE_CONNECTION_TIMEOUT_S = 60.0  # an idle kept-alive connection, and the time allowed for a request's headers
BUSY_RETRY_AFTER_S = 5  # the Retry-After of a `503 busy`
T = TypeVar("T")


def http_server_kwargs() -> dict[str, Any]:
    """Tornado `HTTPServer` options of every Fotoflo server: body cap and timeouts (slow or idle clients)."""
    return {
        "max_body_size": SERVER_MAX_BODY_BYTES,
        "body_timeout": BODY_TIMEOUT_S,
        "idle_connection_timeout": IDLE_CONNECTION_TIMEOUT_S,  # tornado also takes it as the header timeout
    }


def encode_json(payload: Any) -> str:
    """An API answer's JSON text: compact, UTF-8 as is.

    No `check_circular`: answers are trees of fresh dicts and lists, and its bookkeeping (an id per
    container) was a tenth to a quarter of the encoding of a 500-image page.
    """
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, check_circular=False)


class ApiError(web.HTTPError):
    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, reason=None)
        self.code = code
        self.message = message
        self.headers = headers or {}

    @classmethod
    def refused(cls, exc: AuthRefused) -> ApiError:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.retry_after_s is not None:
            headers["Retry-After"] = retry_after(exc.retry_after_s)
        return cls(exc.status, exc.code, exc.message, headers=headers)


#: How a store's refusal is answered: its status, code and message (`ApiHandler.run`).
STORE_ERRORS: dict[type[Exception], tuple[int, str, Callable[[Exception], str]]] = {
    UnknownProject: (404, "unknown_project", lambda exc: f"no project named {exc.args[0]!r}"),
    UnknownImage: (404, "unknown_image", str),
    UnknownCollection: (404, "unknown_collection", lambda exc: f"no collection {exc.args[0]!r}"),
    CollectionDeleted: (410, "collection_deleted", lambda exc: f"collection {exc.args[0]!r} is deleted"),
    NotInCollection: (409, "not_in_collection", str),
    InvalidValue: (400, "bad_argument", str),
}


@web.stream_request_body
class ApiHandler(web.RequestHandler):
    """Base of the API's handlers: who is asking (before any body is read), the body, JSON errors.

    `ACTIONS` says what each method does (`Action`), so `prepare` can refuse it by role; a method
    not in it needs no principal (health, signed files). A method the handler does not implement,
    and every refusal of `prepare`, is answered before any body byte is read (with
    `Connection: close`: a client that sends its body anyway may see the connection reset, one
    that waits with `Expect: 100-continue` never sends it). The body is read only after that,
    and only up to `max_body_bytes`.
    """

    fotoflo: App
    ACTIONS: ClassVar[dict[str, Action]] = {}
    SIGNED: ClassVar[bool] = False  # its URLs carry their own signature (files for <img>): no token asked
    principal: Principal = OPEN

    def initialize(self, fotoflo: App) -> None:
        self.fotoflo = fotoflo
        self.set_cors_headers()  # set_default_headers ran before we knew the settings
        self._chunks: list[bytes] = []
        self._body_bytes = 0
        self._scope: Scope | None = None  # a share link's, read once per request (per batch for a stream)
        self._scope_read = False
        self._early = True  # until `prepare` passes: a refusal then comes before the body is read

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_cors_headers()

    @property
    def max_body_bytes(self) -> int:
        return MAX_JSON_BYTES

    @property
    def client(self) -> str:
        """The client's address (behind a `--trusted-proxy`, the one it forwarded for)."""
        return self.fotoflo.access.proxies.client(self.request)

    def implements(self, method: str) -> bool:
        """Whether this handler answers `method` (tornado's defaults answer 405 only after the body)."""
        own = getattr(type(self), method, None)
        return own is not None and own is not getattr(web.RequestHandler, method, None)

    async def prepare(self) -> None:
        crossing = self.boundary_refusal()  # a foreign Host, or a cross-site write
        if crossing is not None:
            raise crossing
        method = (self.request.method or "").lower()
        if not self.implements(method):
            allowed = ", ".join(m.upper() for m in ("get", "post", "patch", "delete", "options") if self.implements(m))
            raise ApiError(405, "method_not_allowed", f"{self.request.method} is not allowed here; send {allowed}",
                           headers={"Allow": allowed})  # fmt: skip
        action = self.ACTIONS.get(method)
        if action is not None:
            await self.authorize(action)
        declared = self.request.headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self.too_large()
        # Tornado's own cap (the server's) a little above ours, so ours answers first, as JSON.
        set_cap = getattr(self.request.connection, "set_max_body_size", None)
        if set_cap is not None:
            set_cap(self.max_body_bytes + 1024 * 1024)
        self._early = False

    def too_large(self) -> ApiError:
        return ApiError(413, "body_too_large", f"the request body is over the limit of {self.max_body_bytes} bytes")

    async def authorize(self, action: Action) -> None:
        """Set `principal`, or refuse: 401 (nobody, bad token), 403 (role, project, CSRF), 429."""
        access = self.fotoflo.access
        if not access.enabled:
            return  # authentication off: everyone is OPEN, as before
        project = self.path_kwargs.get("project")
        try:
            identity = await asyncio.to_thread(
                access.authenticate,
                self.request.headers.get("Authorization"),
                self.get_cookie(SESSION_COOKIE),
                self.client,
            )
            principal = identity.principal
            if principal is None:
                raise AuthRefused(
                    401, "unauthenticated", "sign in: send 'Authorization: Bearer TOKEN', or sign in at /login"
                )
            if not principal.may(action, project):
                role = principal.role_in(project) if project is not None else principal.role
                who = f"a {role.label}" if role is not None else f"{principal.kind} {principal.id}"
                where = f" in project {project!r}" if project is not None else ""
                raise AuthRefused(403, "forbidden", f"{who} may not {action.value}{where}")
            access.check_csrf(identity, self.request.method or "GET", self.request.headers.get(CSRF_HEADER))
        except AuthRefused as exc:
            raise ApiError.refused(exc) from None
        self.principal = principal

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._body_bytes += len(chunk)
        if self._body_bytes > self.max_body_bytes:
            # Answer now and drop the connection rather than read the rest of a body we refuse.
            self._chunks.clear()
            self._early = True
            self.send_error(413, exc_info=(ApiError, self.too_large(), None))
            return
        self._chunks.append(chunk)

    @property
    def body(self) -> bytes:
        if len(self._chunks) != 1:
            self._chunks = [b"".join(self._chunks)]
        return self._chunks[0]

    def boundary_refusal(self) -> ApiError | None:
        """Why this request must be refused before anything else: a foreign `Host`, no token, another site's write.

        A write whose `Origin` (or `Sec-Fetch-Site`) says another site's page sent it is refused with
        authentication off, where nothing else would stop it (with it on, a session's write needs
        its CSRF header). A preflight (`OPTIONS`) carries no credentials and passes.
        """
        boundary = self.fotoflo.boundary
        # `fotoflo serve` checked it before routing; the routes also run under `panel serve --plugins`.
        host = self.request.headers.get("Host")
        if not boundary.allows_host(host, local_address(self.request.connection)):
            return ApiError(421, "bad_host", bad_host_message(host))
        method = self.request.method or "GET"
        if method == "OPTIONS":
            return None
        if not self.SIGNED and not boundary.token_ok(self.request.headers.get("Authorization")):
            return ApiError(
                401, "unauthenticated", "this notebook server answers its own galleries only: send its token "
                "as 'Authorization: Bearer TOKEN'", headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        if not self.fotoflo.access.enabled:
            why = boundary.cross_origin_write(method, self.request.headers, self.request.host)
            if why is not None:
                return ApiError(403, "cross_origin", why)
        return None

    def set_cors_headers(self) -> None:
        # Only for the origins named with --cors-origin (the notebook's server: its page's origin), exactly.
        fotoflo = getattr(self, "fotoflo", None)
        if fotoflo is None:
            return
        boundary = fotoflo.boundary
        if boundary.cors_origins or boundary.token is not None:
            self.set_header("Vary", "Origin")
        origin = boundary.cors_origin(self.request.headers.get("Origin"))
        if origin is not None:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
            self.set_header("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS")
            self.set_header("Access-Control-Expose-Headers", "Content-Disposition")
            self.set_header("Access-Control-Max-Age", "600")

    def options(self, *args: str, **kwargs: str) -> None:
        allowed = self.fotoflo.boundary.cors_origin(self.request.headers.get("Origin")) is not None
        self.set_status(204 if allowed else 405)
        self.finish()

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(encode_json(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            code, message = exc.code, exc.message
            for name, value in exc.headers.items():
                self.set_header(name, value)
        elif isinstance(exc, web.HTTPError):
            code = "http_error"
            message = exc.log_message or httputil.responses.get(status_code, "error")
        else:
            code, message = "internal_error", "the server could not complete the request"
        if 400 <= status_code < 500 or status_code == 503:
            level = logging.WARNING if status_code in (401, 403, 413, 429, 503) else logging.INFO
            log.log(level, "refused %s %s from %s: %d %s", self.request.method, self.request.path,
                    self.client, status_code, code)  # fmt: skip
        if self._early:
            # Tornado hangs up after answering a request whose body it has not read: say so, or a
            # client reusing the connection meets a reset.
            self.set_header("Connection", "close")
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": {"code": code, "message": message}}))

    def _log(self) -> None:
        # Access lines without secrets (sig=, token=) also where the host application logs them
        # itself (the notebook's server): see dashboard/logs.py.
        logs.log_request(self)

    def int_arg(self, name: str, default: int | None, *, low: int = 0, high: int = 2**62) -> int | None:
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, "bad_argument", f"{name} must be an integer, not {raw!r}") from None
        if not low <= value <= high:
            raise ApiError(400, "bad_argument", f"{name} must be between {low} and {high}")
        return value

    def float_arg(self, name: str, default: float) -> float:
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            return float(raw)
        except ValueError:
            raise ApiError(400, "bad_argument", f"{name} must be a number, not {raw!r}") from None

    def choice_arg(self, name: str, choices: tuple[str, ...]) -> str | None:
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return None
        if raw not in choices:
            raise ApiError(400, "bad_argument", f"{name} must be one of {', '.join(choices)}, not {raw!r}")
        return raw

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object (`{}` when empty); `400 bad_json` otherwise."""
        if not self.body.strip():
            return {}
        try:
            body = json.loads(self.body)
        except ValueError:
            raise ApiError(400, "bad_json", "the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(400, "bad_json", "the body must be a JSON object")
        return body

    async def require_project(self, project: str) -> None:
        if not await asyncio.to_thread(self.fotoflo.store.has_project, project):
            raise ApiError(404, "unknown_project", f"no project named {project!r}")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn` in a worker thread, its store errors answered as the API's JSON errors."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except tuple(STORE_ERRORS) as exc:
            status, code, message = next(v for kind, v in STORE_ERRORS.items() if isinstance(exc, kind))
            raise ApiError(status, code, message(exc)) from None

    async def edit(self, project: str, collection_id: str, edit: CollectionEdit) -> None:
        """Apply one collection edit through the curator and answer the collection after it."""
        await self.require_project(project)
        await self.require_editable(project, collection_id)
        # Every image an edit names must be one the principal sees (a link's holder's own collection
        # may still hold images since taken out of the shared one: they are absent to them).
        named = [*edit.image_ids, *(i for i in (edit.before, edit.image_id) if i is not None)]
        await self.require_visible_images(project, named)
        collection = await self.run(self.fotoflo.curator.edit_collection, project, collection_id, edit)
        self.write_json(self.fotoflo.wire.collection(collection, scope=await self.scope(project)))

    async def live_collection(self, project: str, collection_id: str) -> CollectionRecord:
        """The collection, or `404 unknown_project`/`unknown_collection`, `410 collection_deleted`."""
        await self.require_project(project)
        await self.require_visible_collection(project, collection_id)
        collection = await self.run(self.fotoflo.store.get_collection, project, collection_id)
        if collection is None:
            raise ApiError(404, "unknown_collection", f"no collection {collection_id!r} in project {project!r}")
        if collection.deleted:
            raise ApiError(410, "collection_deleted", f"collection {collection_id!r} is deleted")
        return collection

    # -- what the principal may see: a share link to one collection shows only that --------------

    async def scope(self, project: str, *, fresh: bool = False) -> Scope | None:
        """What a share link to one collection sees in `project` (read once; `fresh`: again); None: all."""
        if self.principal.collection_id is None:
            return None
        if fresh or not self._scope_read:
            access, store = self.fotoflo.access, self.fotoflo.store
            self._scope = await asyncio.to_thread(access.scope, store, self.principal, project)
            self._scope_read = True
        return self._scope

    async def visible_images(self, project: str) -> frozenset[str] | None:
        """The image ids the principal may see in `project`; None: all of them."""
        scope = await self.scope(project)
        return None if scope is None else scope.images

    async def require_visible_images(self, project: str, image_ids: Iterable[str]) -> None:
        """`404 unknown_image` for an image the principal may not see, as if it were not there."""
        visible = await self.visible_images(project)
        hidden = [i for i in image_ids if visible is not None and i not in visible]
        if hidden:
            raise ApiError(404, "unknown_image", f"no image {hidden[0]!r} in project {project!r}")

    async def require_visible_collection(self, project: str, collection_id: str) -> None:
        visible = await asyncio.to_thread(self.fotoflo.access.visible_collections, self.principal, project)
        if visible is not None and collection_id not in visible:
            raise ApiError(404, "unknown_collection", f"no collection {collection_id!r} in project {project!r}")

    async def require_editable(self, project: str, collection_id: str) -> None:
        """A client changes only the collections they saved (and sees only what their link shows)."""
        await self.require_visible_collection(project, collection_id)
        access = self.fotoflo.access
        if not await asyncio.to_thread(access.may_edit_collection, self.principal, project, collection_id):
            raise ApiError(403, "forbidden", "a client may change only the collections they saved")

    def export_key(self, token: str) -> str:
        """Where an export's progress is kept: a share link's apart, so it sees only those it started."""
        return token if self.principal.collection_id is None else f"{self.principal.key}/{token}"


class ProjectsHandler(ApiHandler):
    ACTIONS = {"get": Action.VIEW}

    async def get(self) -> None:
        projects = await asyncio.to_thread(self.fotoflo.store.projects)
        self.write_json({"projects": self.fotoflo.access.projects_seen(self.principal, projects)})


class ImagesHandler(ApiHandler):
    ACTIONS = {"get": Action.VIEW}

    async def get(self, project: str) -> None:
        limit = self.int_arg("limit", DEFAULT_PAGE, low=1, high=MAX_PAGE)
        before = self.int_arg("before", None, low=1)
        min_rating = self.int_arg("min_rating", None, low=0, high=5)
        filters = ImageFilters(min_rating, self.choice_arg("flag", FLAGS), self.choice_arg("label", LABELS))
        assert limit is not None
        # One worker thread for all the reads of the page: each hop costs as much as a small query.
        last_seq, images, total = await self.run(self.read_page, project, before, limit, filters)
        next_cursor = str(images[limit - 1].seq) if len(images) > limit else None
        images = images[:limit]
        page = {"images": [self.fotoflo.wire.image(i) for i in images], "next": next_cursor, "last_seq": last_seq}
        if total is not None:
            page["total"] = total
        self.write_json(page)

    def read_page(
        self, project: str, before: int | None, limit: int, filters: ImageFilters
    ) -> tuple[int, list[ImageRecord], int | None]:
        """The feed position, up to `limit + 1` images after `before` and (first page only) the total.

        One more image than asked tells whether another page exists: no `next` that leads nowhere.
        """
        store = self.fotoflo.store
        # The feed position first: a client that streams from it misses nothing listed later.
        last_seq = store.last_seq(project)
        visible = None
        if self.principal.collection_id is not None:
            visible = self.fotoflo.access.visible_images(store, self.principal, project)
        if visible is None:
            rating, flag, label = filters.min_rating, filters.flag, filters.label
            images = store.list_images(
                project, before=before, limit=limit + 1, min_rating=rating, flag=flag, label=label
            )
            total = store.count_images(project, min_rating=rating, flag=flag, label=label) if before is None else None
            return last_seq, images, total
        # A link to one collection: page through its images alone, newest first, as above.
        shown = [i for i in store.get_images(project, visible) if filters.passes(i)]
        shown.sort(key=lambda i: i.seq, reverse=True)
        images = [i for i in shown if before is None or i.seq < before][: limit + 1]
        return last_seq, images, len(shown) if before is None else None


class ImageHandler(ApiHandler):
    ACTIONS = {"get": Action.VIEW, "delete": Action.UPLOAD}  # deleting is an editor's, like adding

    async def get(self, project: str, image_id: str) -> None:
        await self.require_project(project)
        await self.require_visible_images(project, [image_id])
        image = await asyncio.to_thread(self.fotoflo.store.get_image, image_id)
        if image is None or image.project != project:
            raise ApiError(404, "unknown_image", f"no image {image_id!r} in project {project!r}")
        self.write_json(self.fotoflo.wire.image(image))

    async def delete(self, project: str, image_id: str) -> None:
        """Delete the image and its versions; `?if_sha256=` deletes only while that is its current version."""
        raw = self.get_argument("if_sha256", None)
        if_sha256 = _sha256_arg("if_sha256", raw) if raw is not None else None
        await self.require_project(project)
        try:
            image = await self.run(self.fotoflo.curator.delete_image, project, image_id, if_sha256=if_sha256)
        except VersionChanged as exc:
            raise ApiError(409, "changed", f"{exc}; not deleted") from None
        log.info("image %s (%s) deleted from %s", image.id, image.filename, project)
        self.write_json(self.fotoflo.wire.image(image, deleted=True))


class RatingHandler(ApiHandler):
    """Sets any of an image's rating (0-5), flag and label: one `rating.changed` change."""

    FIELDS = ("rating", "flag", "label")
    ACTIONS = {"post": Action.RATE}

    async def post(self, project: str, image_id: str) -> None:
        body = self.json_body()
        unknown = sorted(set(body) - set(self.FIELDS))
        if unknown:
            raise ApiError(400, "bad_argument", f"unknown field(s) {', '.join(unknown)}; send rating, flag or label")
        if not body:
            raise ApiError(400, "bad_argument", "send at least one of rating, flag and label")
        for name, value in body.items():
            if value is None:
                raise ApiError(400, "bad_argument", f"{name} must not be null")
        await self.require_project(project)
        await self.require_visible_images(project, [image_id])
        image = await self.run(self.fotoflo.curator.set_rating, project, image_id, **body)
        self.write_json(self.fotoflo.wire.image(image))


_SHA256 = re.compile(r"[0-9a-f]{64}")
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_DEVICE_NAME_CHARS = 100


def _sha256_arg(name: str, value: str) -> str:
    value = value.strip().lower()
    if not _SHA256.fullmatch(value):
        raise ApiError(400, "bad_argument", f"{name} must be a SHA-256 as 64 hex digits")
    return value


class UploadBudget:
    """Upload bytes held by all requests in flight of one server (their temp files), up to `capacity_bytes`.

    A request takes its declared `Content-Length` before its body is read (or, chunked, each
    chunk as it comes) and gives it back when it ends; past the capacity it is `503 busy`.
    """

    def __init__(self, capacity_bytes: int, spool_dir: Path) -> None:
        self.capacity_bytes = capacity_bytes
        self.used_bytes = 0
        self.spool_dir = spool_dir
        self._lock = threading.Lock()  # one process may run several servers, each on its own loop
        spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Temp files of uploads a crash interrupted (another server on this data directory may be
        # writing younger ones: keep those).
        old = time.time() - 2 * UPLOAD_BODY_TIMEOUT_S
        for leftover in spool_dir.glob("upload-*.part"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < old:
                    leftover.unlink()

    def take(self, size_bytes: int) -> bool:
        with self._lock:
            if self.used_bytes + size_bytes > self.capacity_bytes:
                return False
            self.used_bytes += size_bytes
            return True

    def give_back(self, size_bytes: int) -> None:
        with self._lock:
            self.used_bytes = max(0, self.used_bytes - size_bytes)


_budgets: weakref.WeakKeyDictionary[App, UploadBudget] = weakref.WeakKeyDictionary()
_budgets_lock = threading.Lock()


def upload_budget(fotoflo: App) -> UploadBudget:
    """The server's upload budget, and its spool directory `DATA/tmp` (made on first use)."""
    with _budgets_lock:
        budget = _budgets.get(fotoflo)
        if budget is None:
            settings = fotoflo.settings
            budget = _budgets[fotoflo] = UploadBudget(settings.upload_budget_bytes, settings.data / "tmp")
        return budget


class UploadHandler(ApiHandler):
    """Multipart uploads, streamed: each file part goes to a temp file in `DATA/tmp` as it arrives
    (never the whole body in memory), and is ingested from there, then removed."""

    ACTIONS = {"post": Action.UPLOAD}

    def initialize(self, fotoflo: App) -> None:
        super().initialize(fotoflo)
        self._form: untrusted.FormParser | None = None
        self._form_error: untrusted.BadForm | None = None
        self._budget: UploadBudget | None = None
        self._held_bytes = 0  # of the budget
        self._declared = False  # the budget was taken for the whole declared body at once

    @property
    def max_body_bytes(self) -> int:
        return self.fotoflo.settings.max_bytes * 4 + 1024 * 1024

    async def prepare(self) -> None:
        await super().prepare()
        try:
            self.fotoflo.access.check_upload_rate(self.principal, self.client)
        except AuthRefused as exc:
            self._early = True
            raise ApiError.refused(exc) from None
        budget = self._budget = upload_budget(self.fotoflo)
        declared = self.request.headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit():
            if int(declared) > budget.capacity_bytes:
                self._early = True
                raise self.over_budget()
            if not budget.take(int(declared)):
                self._early = True
                raise self.busy()
            self._held_bytes, self._declared = int(declared), True
        try:
            self._form = untrusted.FormParser(
                self.request.headers.get("Content-Type", ""),
                spool_dir=budget.spool_dir,
                max_files=self.fotoflo.settings.max_files,
                max_part_bytes=self.fotoflo.settings.max_bytes,
            )
        except untrusted.NotMultipart:
            pass  # no form, so no file: answered `400 no_file` once the body is read
        except untrusted.BadForm as exc:
            self._form_error = exc  # answered once the body is read, as any malformed form
        set_timeout = getattr(self.request.connection, "set_body_timeout", None)
        if set_timeout is not None:
            set_timeout(UPLOAD_BODY_TIMEOUT_S)

    def over_budget(self) -> ApiError:
        # Never to fit, however long the client waits: not a 503.
        limit = self._budget.capacity_bytes if self._budget is not None else 0
        return ApiError(413, "body_too_large", f"the upload is over this server's upload buffer of {limit} bytes "
                        "(--upload-buffer-bytes)")  # fmt: skip

    def busy(self) -> ApiError:
        return ApiError(503, "busy", "the server is receiving too many uploads at once; try again shortly",
                        headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})  # fmt: skip

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._body_bytes += len(chunk)
        if self._body_bytes > self.max_body_bytes:
            self.answer_now(self.too_large())
            return
        if not self._declared and self._budget is not None:
            if self._held_bytes + len(chunk) > self._budget.capacity_bytes:
                self.answer_now(self.over_budget())
                return
            if not self._budget.take(len(chunk)):
                self.answer_now(self.busy())
                return
            self._held_bytes += len(chunk)
        if self._form is None or self._form_error is not None:
            return  # a form already refused: the rest is dropped, the answer comes once it is read
        try:
            self._form.feed(chunk)
        except untrusted.BadForm as exc:
            self._form_error = exc

    def answer_now(self, error: ApiError) -> None:
        """Answer `error` in the middle of the body and drop the connection rather than read the rest."""
        self._early = True
        self.send_error(error.status_code, exc_info=(ApiError, error, None))
        self.release()

    def release(self) -> None:
        """Delete the temp files and give their bytes back to the budget (idempotent)."""
        if self._form is not None:
            self._form.remove()
        if self._budget is not None and self._held_bytes:
            self._budget.give_back(self._held_bytes)
            self._held_bytes = 0

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> asyncio.Future[None]:
        self.release()  # before the answer leaves: a client that sees it finds no temp file left
        return super().finish(chunk)

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self.release()

    def parse_form(self) -> list[untrusted.FilePart]:
        """The body's files in the field `file`; its other fields join the query's arguments."""
        try:
            if self._form_error is not None:
                raise self._form_error
            form = self._form.close() if self._form is not None else untrusted.Form()
        except untrusted.TooManyFiles as exc:
            raise ApiError(413, "too_many_files", str(exc)) from None
        except untrusted.BadForm as exc:
            raise ApiError(400, "bad_multipart", f"the body is not a valid form: {exc}") from None
        for name, values in form.fields.items():
            self.request.body_arguments.setdefault(name, []).extend(values)
            self.request.arguments.setdefault(name, []).extend(values)
        return [part for part in form.files if part.field == "file"]

    async def post(self, project: str) -> None:
        await self.require_project(project)
        files = self.parse_form()
        if not files:
            raise ApiError(400, "no_file", "send the image(s) as multipart form field 'file'")
        options = self.sync_options(len(files))
        created: list[dict[str, Any]] = []
        existing: list[dict[str, Any]] = []
        errors: list[IngestError] = []
        loop = asyncio.get_running_loop()
        max_bytes = self.fotoflo.settings.max_bytes
        for part in files:
            name = untrusted.clean_filename(part.filename)
            if part.too_large:
                errors.append(TooLarge(name, f"{part.size_bytes} bytes is over the limit of {max_bytes} bytes"))
                continue
            ingest = functools.partial(
                self.fotoflo.ingestor.ingest, part.path, project, filename=name, quarantine=False, **options
            )
            try:
                result = await loop.run_in_executor(self.fotoflo.ingest_pool, ingest)
            except IngestError as exc:
                errors.append(exc)
                continue
            except UnknownImage:
                raise ApiError(
                    404, "unknown_image", f"no image {options['replaces']!r} in project {project!r}"
                ) from None
            finally:
                part.path.unlink(missing_ok=True)  # ingested (its blobs written) or refused: no longer needed
            extra: dict[str, Any] = {"created": result.created, "updated": result.updated}
            if result.conflict_copy is not None:
                extra["conflict_copy"] = self.fotoflo.wire.image(result.conflict_copy)
            (created if result.created or result.updated else existing).append(
                self.fotoflo.wire.image(result.image, **extra)
            )
        if created:
            status = 201
        elif existing:
            status = 200
        else:
            status = max(e.http_status for e in errors)
        self.write_json({"images": created + existing, "errors": [e.to_dict() for e in errors]}, status)

    def sync_options(self, file_count: int) -> dict[str, Any]:
        """What a sync client adds (query or form fields): checksum, the version replaced, the device."""
        get = self.get_argument
        sha256, replaces, base = get("sha256", None), get("replaces", None), get("base_sha256", None)
        device_id, device_name = get("device_id", None), get("device_name", None)
        if (sha256 or replaces) and file_count != 1:
            raise ApiError(400, "bad_argument", "sha256 and replaces are for an upload of one file")
        if replaces is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", replaces):
            raise ApiError(400, "bad_argument", "replaces must be an image id")
        if (replaces is None) != (base is None):
            raise ApiError(400, "bad_argument", "replaces and base_sha256 go together")
        device = None
        if device_id is not None:
            if not _DEVICE_ID.fullmatch(device_id):
                raise ApiError(400, "bad_argument", "device_id must be 1 to 64 letters, digits, '-' or '_'")
            name = (device_name or device_id).strip()
            if not name or len(name) > MAX_DEVICE_NAME_CHARS or any(unicodedata.category(c) == "Cc" for c in name):
                raise ApiError(
                    400, "bad_argument", f"device_name must be 1 to {MAX_DEVICE_NAME_CHARS} printable characters"
                )
            device = Device(device_id, name.replace("/", "-"))
        elif device_name is not None:
            raise ApiError(400, "bad_argument", "device_name needs a device_id")
        return {
            "expected_sha256": _sha256_arg("sha256", sha256) if sha256 else None,
            "replaces": replaces,
            "base_sha256": _sha256_arg("base_sha256", base) if base is not None else None,
            "device": device,
        }


class ImageBySha256Handler(ApiHandler):
    """Ask before sending the bytes: the image that has (or had) content with this SHA-256."""

    ACTIONS = {"get": Action.VIEW}

    async def get(self, project: str, sha256: str) -> None:
        sha256 = _sha256_arg("sha256", sha256)
        await self.require_project(project)
        image = await self.run(self.fotoflo.store.find_by_sha, project, sha256)
        visible = await self.visible_images(project)
        if image is None or (visible is not None and image.id not in visible):
            raise ApiError(404, "unknown_image", f"no image with SHA-256 {sha256} in project {project!r}")
        self.write_json(self.fotoflo.wire.image(image, current=image.sha256 == sha256))


class ImageVersionsHandler(ApiHandler):
    ACTIONS = {"get": Action.VIEW}

    async def get(self, project: str, image_id: str) -> None:
        await self.require_project(project)
        await self.require_visible_images(project, [image_id])
        versions = await self.run(self.fotoflo.store.image_versions, project, image_id)
        self.write_json({"image_id": image_id, "versions": [self.fotoflo.wire.version(v) for v in versions]})


class ChangesHandler(ApiHandler):
    ACTIONS = {"get": Action.VIEW}

    async def get(self, project: str) -> None:
        after = self.int_arg("after", 0)
        limit = self.int_arg("limit", MAX_PAGE, low=1, high=MAX_PAGE)
        assert after is not None and limit is not None
        changes = await self.run(self.fotoflo.store.changes, project, after=after, limit=limit)
        last = await self.run(self.fotoflo.store.last_seq, project)
        scope = await self.scope(project, fresh=True)
        if scope is not None:
            changes = [c for c in changes if scope.shows(c)]
        self.write_json({"changes": [self.fotoflo.wire.change(c, scope) for c in changes], "last_seq": last})


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


class EventsHandler(ApiHandler):
    """`text/event-stream` of a project's feed: replay after the client's cursor, then live."""

    _queue: asyncio.Queue[list[Change] | None]
    ACTIONS = {"get": Action.VIEW}

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-cache, no-transform")
        self.set_header("X-Accel-Buffering", "no")
        self.set_cors_headers()

    async def get(self, project: str) -> None:
        await self.require_project(project)
        last_id = self.request.headers.get("Last-Event-ID")
        # isascii: str.isdigit() also admits digits int() refuses ('²'); the length keeps it in SQLite's range.
        if last_id is not None and not (last_id.isascii() and last_id.isdigit() and len(last_id) <= 18):
            raise ApiError(400, "bad_argument", "Last-Event-ID must be a feed sequence number")
        after = int(last_id) if last_id is not None else self.int_arg("after", None)
        heartbeat_s = max(0.5, min(60.0, self.float_arg("heartbeat", self.fotoflo.settings.heartbeat_s)))
        last = await asyncio.to_thread(self.fotoflo.store.last_seq, project)
        if after is None or after > last:
            # A cursor beyond the feed comes from another history (a restored or replaced data
            # directory); kept as is, it would hide every event up to it, so start from now.
            after = last
        self._queue = asyncio.Queue()
        # A stream that sees the whole project is written by the hub's delivery itself, as each batch
        # comes: waking a task per stream and event was most of the fan-out's cost. A link to one
        # collection filters each batch first (a store read), on this handler's task.
        self._direct = self.principal.collection_id is None
        self._flushing = self._closed = False
        # Bytes handed to tornado, and how many of them the socket has taken (as far as the last
        # completed flush tells): the difference is this stream's buffer, bounded by SSE_MAX_BUFFER_BYTES.
        self._written_bytes = self._taken_bytes = 0
        sub = self.fotoflo.hub.subscribe(project, after, self._deliver)
        peer = self.client
        log.info("SSE open %s from %s after #%d", project, peer, after)
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
            log.info("SSE closed %s from %s at #%d", project, peer, sub.cursor)
        if not self._finished:
            self.finish()

    def _frame(self, change: Change, scope: Scope | None = None) -> bytes:
        data = json.dumps(self.fotoflo.wire.change_payload(change, scope), separators=(",", ":"))
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
        shown = [c for c in batch if c.image is not None or c.kind not in gone]
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


class FileHandler(ApiHandler):
    """Signed image files: originals byte-for-byte, previews and thumbnails as JPEG."""

    SIGNED = True

    CHUNK_BYTES = 256 * 1024

    async def get(self, image_id: str, kind: str) -> None:
        if not self.fotoflo.signer.verify(
            image_id, kind, self.get_argument("exp", None), self.get_argument("sig", None)
        ):
            raise ApiError(403, "bad_signature", "this file URL is unsigned, forged or expired")
        image = await asyncio.to_thread(self.fotoflo.store.get_image, image_id)
        if image is None:
            raise ApiError(404, "unknown_image", f"no image {image_id!r}")
        sha256, mime, filename = image.sha256, image.mime, image.filename
        version = self.int_arg("v", 1, low=1)
        if version != image.version:
            # Each URL names one version (no `v` is the first), so it can be cached as immutable.
            versions = await asyncio.to_thread(self.fotoflo.store.image_versions, image.project, image.id)
            match = [v for v in versions if v.version == version]
            if not match:
                raise ApiError(404, "unknown_version", f"image {image_id!r} has no version {version}")
            sha256, mime, filename = match[0].sha256, match[0].mime, match[0].filename
        path = self.fotoflo.blobs.path(kind, sha256)
        exp = int(self.get_argument("exp"))
        self.set_header("Content-Type", mime if kind == "original" else "image/jpeg")
        self.set_header("Cache-Control", f"private, max-age={max(0, exp - int(time.time()))}, immutable")
        self.set_header("ETag", f'"{sha256[:32]}-{kind}"')
        # Bytes as uploaded (a polyglot is a valid image too): never rendered as anything but an image.
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        if kind == "original":
            self.set_header("Content-Disposition", f"inline; filename*=UTF-8''{quote(filename)}")
        if self.request.headers.get("If-None-Match") == self._headers.get("ETag"):
            self.set_status(304)
            self.finish()
            return
        try:
            fh = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise ApiError(404, "missing_file", f"the {kind} of {image_id!r} is missing") from None
        with fh:
            self.set_header("Content-Length", str(path.stat().st_size))
            while chunk := await asyncio.to_thread(fh.read, self.CHUNK_BYTES):
                self.write(chunk)
                await self.flush()
        self.finish()


# -- collections ----------------------------------------------------------------------------


def _ids(body: dict[str, Any], name: str, *, required: bool = True) -> tuple[str, ...]:
    value = body.get(name)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise ApiError(400, "bad_argument", f"{name} must be a list of image ids")
    if len(value) > MAX_IDS:
        raise ApiError(400, "bad_argument", f"{name} may hold at most {MAX_IDS} ids")
    return tuple(value)


def _optional(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise ApiError(400, "bad_argument", f"{name} must be a{'n integer' if kind is int else ' string'}")
    return value


#: The fields each op of `PATCH .../collections/{collection_id}` takes (besides `op`).
EDIT_FIELDS = {
    "rename": ("name",),
    "add": ("image_ids", "before", "index"),
    "remove": ("image_ids",),
    "move": ("image_ids", "before"),
    "cover": ("image_id",),
}


class CollectionsHandler(ApiHandler):
    """The project's collections as cards (GET); save a new one (POST)."""

    ACTIONS = {"get": Action.VIEW, "post": Action.COLLECT}

    async def get(self, project: str) -> None:
        store = self.fotoflo.store
        last_seq = await self.run(store.last_seq, project)
        collections = await self.run(store.list_collections, project)
        scope = await self.scope(project)
        if scope is not None:
            collections = [c for c in collections if c.id in scope.collections]
        cards = [self.fotoflo.wire.collection(c, card=True, scope=scope) for c in collections]
        self.write_json({"collections": cards, "last_seq": last_seq})

    async def post(self, project: str) -> None:
        body = self.json_body()
        unknown = sorted(set(body) - {"name", "image_ids"})
        if unknown:
            raise ApiError(400, "bad_argument", f"unknown field(s) {', '.join(unknown)}")
        name = body.get("name")
        image_ids = _ids(body, "image_ids", required=False)
        await self.require_project(project)
        await self.require_visible_images(project, image_ids)
        collection = await self.run(self.fotoflo.curator.save_collection, project, name, image_ids)
        await asyncio.to_thread(self.fotoflo.access.record_collection, self.principal, project, collection.id)
        self.write_json(self.fotoflo.wire.collection(collection, scope=await self.scope(project, fresh=True)), 201)


class CollectionHandler(ApiHandler):
    """One collection: read it with its images (GET), edit it by one op (PATCH), delete it (DELETE)."""

    ACTIONS = {"get": Action.VIEW, "patch": Action.EDIT_COLLECTION, "delete": Action.EDIT_COLLECTION}

    async def get(self, project: str, collection_id: str) -> None:
        collection = await self.live_collection(project, collection_id)
        scope = await self.scope(project)
        ids = collection.image_ids if scope is None else scope.image_ids(collection.image_ids)
        images = await self.run(self.fotoflo.store.get_images, project, ids)
        self.write_json(self.fotoflo.wire.collection(collection, images=images, scope=scope))

    async def patch(self, project: str, collection_id: str) -> None:
        body = self.json_body()
        op = body.get("op")
        if op not in EDIT_FIELDS:
            raise ApiError(400, "bad_argument", f"op must be one of {', '.join(EDIT_FIELDS)}, not {op!r}")
        unknown = sorted(set(body) - {"op", *EDIT_FIELDS[op]})
        if unknown:
            raise ApiError(400, "bad_argument", f"{op} does not take {', '.join(unknown)}")
        if op == "rename" and "name" not in body:
            raise ApiError(400, "bad_argument", "rename needs a name")
        if op == "cover" and "image_id" not in body:
            raise ApiError(400, "bad_argument", "cover needs an image_id (null for the first image)")
        edit = CollectionEdit(
            op=op,
            image_ids=_ids(body, "image_ids") if "image_ids" in EDIT_FIELDS[op] else (),
            before=_optional(body, "before", str),
            index=_optional(body, "index", int),
            name=body.get("name"),
            image_id=_optional(body, "image_id", str),
        )
        await self.edit(project, collection_id, edit)

    async def delete(self, project: str, collection_id: str) -> None:
        await self.edit(project, collection_id, CollectionEdit("delete"))


class UndeleteHandler(ApiHandler):
    ACTIONS = {"post": Action.EDIT_COLLECTION}

    async def post(self, project: str, collection_id: str) -> None:
        await self.edit(project, collection_id, CollectionEdit("undelete"))


class DuplicateHandler(ApiHandler):
    ACTIONS = {"post": Action.COLLECT}

    async def post(self, project: str, collection_id: str) -> None:
        body = self.json_body()
        unknown = sorted(set(body) - {"name"})
        if unknown:
            raise ApiError(400, "bad_argument", f"unknown field(s) {', '.join(unknown)}")
        await self.require_project(project)
        await self.require_visible_collection(project, collection_id)
        copy = await self.run(self.fotoflo.curator.duplicate_collection, project, collection_id, body.get("name"))
        await asyncio.to_thread(self.fotoflo.access.record_collection, self.principal, project, copy.id)
        self.write_json(self.fotoflo.wire.collection(copy, scope=await self.scope(project, fresh=True)), 201)


class ExportHandler(ApiHandler):
    """A collection as a file to save: names (`txt`), metadata (`csv`) or the originals (`zip`)."""

    export_format: str
    ACTIONS = {"get": Action.VIEW}

    def initialize(self, fotoflo: App, export_format: str = "txt") -> None:
        super().initialize(fotoflo)
        self.export_format = export_format

    async def get(self, project: str, collection_id: str) -> None:
        collection = await self.live_collection(project, collection_id)
        scope = await self.scope(project)
        ids = collection.image_ids if scope is None else scope.image_ids(collection.image_ids)
        images = await self.run(self.fotoflo.store.get_images, project, ids)
        self.set_header("Content-Disposition", export.attachment(collection.name, self.export_format))
        self.set_header("Cache-Control", "no-store")
        if self.export_format == "txt":
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(export.filenames_txt(images).encode())
        elif self.export_format == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.finish(export.metadata_csv(images).encode())
        else:
            await self.stream_zip(collection, images)

    async def stream_zip(self, collection: CollectionRecord, images: list[ImageRecord]) -> None:
        token = self.get_argument("progress", None)
        if token is not None and not export.Downloads.TOKEN.fullmatch(token):
            raise ApiError(400, "bad_argument", "progress must be 8 to 64 letters, digits, '-' or '_'")
        archive = export.StoredZip(await asyncio.to_thread(self.zip_members, images))
        size, files = archive.size_bytes, len(images)
        # Without a token the progress is still counted, just not findable.
        progress = (
            self.fotoflo.downloads.start(self.export_key(token), size, files) if token else export.Download(size, files)
        )
        self.set_header("Content-Type", "application/zip")
        self.set_header("Content-Length", str(archive.size_bytes))
        peer = self.client
        log.info("ZIP of %s (%d files, %d bytes) to %s", collection.id, len(images), archive.size_bytes, peer)
        chunks = archive.chunks()
        try:
            # Each read (and CRC) in a worker thread; each flush waits for the socket: memory stays one chunk.
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                self.write(chunk)
                await self.flush()
                progress.bytes_sent += len(chunk)
            self.finish()
            progress.state = "done"
        except iostream.StreamClosedError:
            log.info("ZIP of %s: %s went away", collection.id, peer)
        except OSError:
            # The headers are out: cut the connection, so the client sees a short download, not a bad file.
            log.exception("ZIP of %s failed while streaming", collection.id)
            self.request.connection.close()  # type: ignore[union-attr]
        finally:
            chunks.close()
            if progress.state != "done":
                progress.state = "aborted"

    def zip_members(self, images: list[ImageRecord]) -> list[export.ZipMember]:
        members = []
        for name, image in zip(export.member_names(i.filename for i in images), images, strict=True):
            path = self.fotoflo.blobs.path("original", image.sha256)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                raise ApiError(404, "missing_file", f"the original of {image.id!r} is missing") from None
            members.append(export.ZipMember(name, path, size, export.zip_date_time(image.captured_at)))
        return members


class DownloadHandler(ApiHandler):
    """How far a streamed ZIP export started with `?progress=TOKEN` has gone."""

    ACTIONS = {"get": Action.VIEW}

    async def get(self, project: str, token: str) -> None:
        download = self.fotoflo.downloads.get(self.export_key(token))
        if download is None:
            raise ApiError(404, "unknown_export", f"no export {token!r} (not started yet, or long ago)")
        self.write_json(download.to_dict())


# -- share links (owners) ----------------------------------------------------------------------

MAX_SHARE_TTL_S = 366 * 24 * 3600
DEFAULT_SHARE_TTL_S = 30 * 24 * 3600  # as `fotoflo share create`


def _auth_store(fotoflo: App) -> AuthStore:
    store = fotoflo.access.store
    if store is None:
        raise ApiError(409, "auth_off", "share links need authentication: start the server with --auth")
    return store


class SharesHandler(ApiHandler):
    """The project's share links (GET); make one (POST). Owners only; needs authentication on."""

    ACTIONS = {"get": Action.MANAGE, "post": Action.MANAGE}

    async def get(self, project: str) -> None:
        store = _auth_store(self.fotoflo)
        await self.require_project(project)
        shares = await asyncio.to_thread(store.shares, project)
        self.write_json({"shares": [s.to_dict() for s in shares]})

    async def post(self, project: str) -> None:
        store = _auth_store(self.fotoflo)
        body = self.json_body()
        unknown = sorted(set(body) - {"role", "collection_id", "expires_in_s", "password", "name"})
        if unknown:
            raise ApiError(400, "bad_argument", f"unknown field(s) {', '.join(unknown)}")
        collection_id = _optional(body, "collection_id", str)
        name, password = _optional(body, "name", str) or "", _optional(body, "password", str)
        expires_in_s = _optional(body, "expires_in_s", int) or DEFAULT_SHARE_TTL_S
        if not 60 <= expires_in_s <= MAX_SHARE_TTL_S:
            raise ApiError(400, "bad_argument", f"expires_in_s must be between 60 and {MAX_SHARE_TTL_S}")
        try:
            role = Role.parse(str(body.get("role", "client")))
            check_share_role(role, collection_id)
        except ValueError as exc:
            raise ApiError(400, "bad_argument", str(exc)) from None
        if len(name) > 200 or (password is not None and not 1 <= len(password) <= 1024):
            raise ApiError(400, "bad_argument", "name: at most 200 characters; password: 1 to 1024")
        if collection_id is not None:
            await self.live_collection(project, collection_id)
        else:
            await self.require_project(project)
        expires_at = time.time() + expires_in_s
        share, secret = await asyncio.to_thread(
            functools.partial(
                store.create_share, project=project, role=role, name=name, collection_id=collection_id,
                expires_at=expires_at, password=password,
            )
        )  # fmt: skip
        log.info("share link %s made by %s: %s on %s", share.id, self.principal.key, role.label, project)
        path = f"/s/{secret}"
        url = f"{self.request.protocol}://{self.request.host}{path}"
        self.write_json({"share": share.to_dict(), "path": path, "url": url}, 201)


class ShareHandler(ApiHandler):
    """Revoke one share link: its sessions end at once."""

    ACTIONS = {"delete": Action.MANAGE}

    async def delete(self, project: str, share_id: str) -> None:
        store = _auth_store(self.fotoflo)
        share = await asyncio.to_thread(store.get_share, share_id)
        if share is None or share.project != project:
            raise ApiError(404, "unknown_share", f"no share link {share_id!r} in project {project!r}")
        await asyncio.to_thread(store.revoke_share, share_id)
        log.info("share link %s revoked by %s", share_id, self.principal.key)
        self.write_json({"share": (await asyncio.to_thread(store.get_share, share_id) or share).to_dict()})


class HealthHandler(ApiHandler):
    """`/healthz`: its status to anyone; the details (paths, store errors) to owners, or on loopback when open."""

    async def get(self) -> None:
        health = await self.fotoflo.health()
        self.write_json(health if await self.sees_details() else {"status": health["status"]})

    async def sees_details(self) -> bool:
        access = self.fotoflo.access
        if not access.enabled:
            return is_loopback(self.client)  # behind a --trusted-proxy, the client it forwarded for
        try:
            identity = await asyncio.to_thread(
                access.authenticate,
                self.request.headers.get("Authorization"),
                self.get_cookie(SESSION_COOKIE),
                self.client,
            )
        except AuthRefused:
            return False  # a health check with a wrong token still learns the status, nothing more
        principal = identity.principal
        return principal is not None and principal.role >= Role.OWNER and principal.project == ANY_PROJECT


class NotFoundHandler(ApiHandler):
    async def prepare(self) -> None:
        raise ApiError(404, "not_found", f"no API endpoint at {self.request.path}")


def routes(fotoflo: App) -> list[tuple[str, type[web.RequestHandler], dict[str, Any]]]:
    """URL patterns for the API; served beside the Panel app by `fotoflo serve` and `panel serve`."""
    kw: dict[str, Any] = {"fotoflo": fotoflo}
    ident = r"[A-Za-z0-9_-]+"
    p = r"/api/projects/(?P<project>[^/]+)"
    c = p + rf"/collections/(?P<collection_id>{ident})"
    return [
        (r"/api/projects/?", ProjectsHandler, kw),
        (p + r"/images/?", ImagesHandler, kw),
        (p + r"/images/by-sha256/(?P<sha256>[^/]+)/?", ImageBySha256Handler, kw),
        (p + rf"/images/(?P<image_id>{ident})/?", ImageHandler, kw),
        (p + rf"/images/(?P<image_id>{ident})/versions/?", ImageVersionsHandler, kw),
        (p + rf"/images/(?P<image_id>{ident})/rating/?", RatingHandler, kw),
        (p + r"/upload/?", UploadHandler, kw),
        (p + r"/changes/?", ChangesHandler, kw),
        (p + r"/events/?", EventsHandler, kw),
        (p + r"/collections/?", CollectionsHandler, kw),
        (c + r"/?", CollectionHandler, kw),
        (c + r"/undelete/?", UndeleteHandler, kw),
        (c + r"/duplicate/?", DuplicateHandler, kw),
        *[(c + rf"/export\.{fmt}", ExportHandler, {**kw, "export_format": fmt}) for fmt in ("txt", "csv", "zip")],
        (p + rf"/exports/(?P<token>{ident})", DownloadHandler, kw),
        (p + r"/shares/?", SharesHandler, kw),
        (p + rf"/shares/(?P<share_id>{ident})/?", ShareHandler, kw),
        (rf"/files/(?P<image_id>{ident})/(?P<kind>original|preview|thumb)", FileHandler, kw),
        (r"/healthz", HealthHandler, kw),
        (r"/api/.*", NotFoundHandler, kw),
    ]
