"""The plumbing of every API handler: who asks and what they may reach, the body and its caps, JSON answers.

Every handler answers JSON (errors too: `{"error": {"code", "message"}}`), never a traceback.
Blocking store and ingest calls run in worker threads so the loop keeps serving sessions.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from tornado import httputil, web

from dashboard import logs
from dashboard.auth.access import CSRF_HEADER, SESSION_COOKIE, AuthRefused, Identity
from dashboard.auth.ratelimit import retry_after
from dashboard.auth.roles import OPEN, Action, Principal
from dashboard.guard import bad_host_message, local_address
from dashboard.http.rules import Allow

if TYPE_CHECKING:
    from tornado.concurrent import Future

    from dashboard.app import App
    from dashboard.wire import Wire

log = logging.getLogger("fotoflo.api")

MAX_JSON_BYTES = 1024 * 1024  # a request body other than an upload's
#: The HTTP server's own cap on any body (pages, websockets, the API): an upload's is raised once it is authorized.
SERVER_MAX_BODY_BYTES = MAX_JSON_BYTES + 1024 * 1024
BODY_TIMEOUT_S = 60.0  # a request's whole body must arrive within this (an authorized upload's: longer)
IDLE_CONNECTION_TIMEOUT_S = 60.0  # an idle kept-alive connection, and the time allowed for a request's headers
MAX_IDS = 10_000  # image ids in one request


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


@web.stream_request_body
class ApiHandler(web.RequestHandler):
    """Base of the API's handlers: who is asking (before any body is read), the body, JSON errors.

    `ACTIONS` says who may call each method (`Allow`, see `dashboard.http.rules`): `prepare`
    refuses a role that may not, and `ProjectHandler.admit()` runs the rest of its checks. A method
    the handler does not implement, and every refusal of `prepare`, is answered before any body
    byte is read (with `Connection: close`: a client that sends its body anyway may see the
    connection reset, one that waits with `Expect: 100-continue` never sends it). The body is read
    only after that, and only up to `max_body_bytes`.
    """

    app: App
    ACTIONS: ClassVar[dict[str, Allow]] = {}
    principal: Principal = OPEN

    def initialize(self, app: App) -> None:
        self.app = app
        self.set_cors_headers()  # set_default_headers ran before we knew the settings
        self._chunks: list[bytes] = []
        self._body_bytes = 0
        self._early = True  # until `prepare` passes: a refusal then comes before the body is read
        self._admitted = False  # `admit()` ran this method's checks

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
        return self.app.access.proxies.client(self.request)

    @property
    def wire(self) -> Wire:
        """The JSON of records as this request's principal is served (a share link's rules: `Wire.seen_by`)."""
        return self.app.wire.seen_by(self.principal)

    @property
    def allow(self) -> Allow | None:
        """Who may call this request's method (None: a method the handler declares nothing for)."""
        return self.ACTIONS.get((self.request.method or "").lower())

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
            allowed = ", ".join(
                m.upper() for m in ("get", "post", "put", "patch", "delete", "options") if self.implements(m)
            )
            raise ApiError(405, "method_not_allowed", f"{self.request.method} is not allowed here; send {allowed}",
                           headers={"Allow": allowed})  # fmt: skip
        allow = self.allow
        if allow is not None and allow.action is not None:
            await self.authorize(allow.action)
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

    async def identify(self) -> Identity:
        """Who sent this request, by its bearer token or session cookie; `AuthRefused` for a bad one."""
        return await asyncio.to_thread(
            self.app.access.authenticate,
            self.request.headers.get("Authorization"),
            self.get_cookie(SESSION_COOKIE),
            self.client,
        )

    async def authorize(self, action: Action) -> None:
        """Set `principal`, or refuse: 401 (nobody, bad token), 403 (role, project, CSRF), 429."""
        access = self.app.access
        if not access.enabled:
            return  # authentication off: everyone is OPEN, as before
        project = self.path_kwargs.get("project")
        try:
            identity = await self.identify()
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

    def check_admitted(self) -> None:
        """An answer must not pass without the checks its method declares (see `Allow`)."""
        if not self._admitted and self._status_code < 400 and (allow := self.allow) is not None and allow.checks:
            raise RuntimeError(f"{type(self).__name__} answered {self.request.method} without admit()")

    def flush(self, include_footers: bool = False) -> Future[None]:
        self.check_admitted()
        return super().flush(include_footers)

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> Future[None]:
        self.check_admitted()
        return super().finish(chunk)

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

    # -- the boundary: Host, the notebook server's token, cross-site writes, CORS ----------------

    def boundary_refusal(self) -> ApiError | None:
        """Why this request must be refused before anything else: a foreign `Host`, no token, another site's write.

        A write whose `Origin` (or `Sec-Fetch-Site`) says another site's page sent it is refused with
        authentication off, where nothing else would stop it (with it on, a session's write needs
        its CSRF header). A preflight (`OPTIONS`) carries no credentials and passes.
        """
        boundary = self.app.boundary
        # `fotoflo serve` checked it before routing; the routes also run under `panel serve --plugins`.
        host = self.request.headers.get("Host")
        if not boundary.allows_host(host, local_address(self.request.connection)):
            return ApiError(421, "bad_host", bad_host_message(host))
        method = self.request.method or "GET"
        if method == "OPTIONS":
            return None
        signed = any(allow.signed for allow in self.ACTIONS.values())
        if not signed and not boundary.token_ok(self.request.headers.get("Authorization")):
            return ApiError(
                401, "unauthenticated", "this notebook server answers its own galleries only: send its token "
                "as 'Authorization: Bearer TOKEN'", headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        if not self.app.access.enabled:
            why = boundary.cross_origin_write(method, self.request.headers, self.request.host)
            if why is not None:
                return ApiError(403, "cross_origin", why)
        return None

    def set_cors_headers(self) -> None:
        # Only for the origins named with --cors-origin (the notebook's server: its page's origin), exactly.
        app = getattr(self, "app", None)
        if app is None:
            return
        boundary = app.boundary
        if boundary.cors_origins or boundary.token is not None:
            self.set_header("Vary", "Origin")
        origin = boundary.cors_origin(self.request.headers.get("Origin"))
        if origin is not None:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
            self.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
            self.set_header("Access-Control-Expose-Headers", "Content-Disposition")
            self.set_header("Access-Control-Max-Age", "600")

    def options(self, *args: str, **kwargs: str) -> None:
        allowed = self.app.boundary.cors_origin(self.request.headers.get("Origin")) is not None
        self.set_status(204 if allowed else 405)
        self.finish()

    # -- answers ----------------------------------------------------------------------------------

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

    # -- arguments --------------------------------------------------------------------------------

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

    def json_body(self, fields: Iterable[str] | None = None) -> dict[str, Any]:
        """The request body as a JSON object (`{}` when empty); `400 bad_json` otherwise.

        `fields`: the only ones it may hold (else `400 bad_argument`).
        """
        if not self.body.strip():
            body: Any = {}
        else:
            try:
                body = json.loads(self.body)
            except ValueError:
                raise ApiError(400, "bad_json", "the body must be a JSON object") from None
            if not isinstance(body, dict):
                raise ApiError(400, "bad_json", "the body must be a JSON object")
        unknown = sorted(set(body) - set(fields)) if fields is not None else []
        if unknown:
            raise ApiError(400, "bad_argument", f"unknown field(s) {', '.join(unknown)}")
        return body


def body_ids(body: dict[str, Any], name: str, *, required: bool = True) -> tuple[str, ...]:
    """The body's list of image ids `name` (at most MAX_IDS; `()` when absent and not `required`)."""
    value = body.get(name)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise ApiError(400, "bad_argument", f"{name} must be a list of image ids")
    if len(value) > MAX_IDS:
        raise ApiError(400, "bad_argument", f"{name} may hold at most {MAX_IDS} ids")
    return tuple(value)


def body_optional(body: dict[str, Any], name: str, kind: type) -> Any:
    """The body's field `name`, None or of `kind` (`int` or `str`; a bool is neither)."""
    value = body.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise ApiError(400, "bad_argument", f"{name} must be a{'n integer' if kind is int else ' string'}")
    return value


class NotFoundHandler(ApiHandler):
    """Any other `/api/...` path: `404 not_found`, as JSON, whatever the method."""

    async def prepare(self) -> None:
        raise ApiError(404, "not_found", f"no API endpoint at {self.request.path}")
