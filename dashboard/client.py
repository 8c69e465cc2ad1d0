"""The one HTTP client of Fotoflo's API, for the notebook and the sync client: URLs, the token, errors.

`ApiClient` speaks to one project of a server (`/api/projects/{project}/…`, the name URL-quoted, so
any project name works); `error_of` reads an error answer (`{"error": {"code", "message"}}`, or an
upload's `{"errors": [{"code", "reason"}]}`) into a code and a reason; a server that does not answer
is an `Unreachable`. Imports only httpx and the standard library: the sync client loads it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx


class Unreachable(ConnectionError):
    """No answer: connection refused, reset or timed out; the message names the server."""


class ApiError(Exception):
    """The server answered `method` `path` with an error: `status`, the API's `code` (if any), its `reason`."""

    def __init__(self, method: str, path: str, status: int, code: str | None, reason: str) -> None:
        super().__init__(f"{method} {path}: {reason}")
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.reason = reason


def project_path(project: str, path: str = "") -> str:
    """`/api/projects/{project}{path}`, the project name quoted as one path segment (`a b/c` → `a%20b%2Fc`)."""
    return f"/api/projects/{quote(project, safe='')}{path}"


def segment(text: str) -> str:
    """`text` quoted to be one segment of a URL path (an image or collection id)."""
    return quote(text, safe="")


def error_of(response: httpx.Response) -> tuple[str | None, str]:
    """The API's error code (`None` when the body has none, e.g. a proxy's page) and a reason for people."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("code")), str(errors[0].get("reason"))
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("code")), str(error.get("message"))
    return None, response.reason_phrase


class ApiClient:
    """One project of a Fotoflo server at `server` (a base URL); thread-safe (one pooled `httpx.Client`).

    `token`: an API token, sent as `Authorization: Bearer`. Paths given to its methods are relative
    to the project (`/images`); `request` returns any answer, `get`/`send` raise `ApiError` for an error.
    """

    def __init__(
        self,
        server: str,
        project: str,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float | None = None,
        user_agent: str | None = None,
        max_keepalive: int | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.project = project
        headers = {"User-Agent": user_agent} if user_agent else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s if connect_timeout_s is not None else timeout_s)
        pool: dict[str, Any] = (
            {"limits": httpx.Limits(max_keepalive_connections=max_keepalive)} if max_keepalive else {}
        )
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout, **pool)

    def path(self, path: str = "") -> str:
        """The server path of `path` in this project."""
        return project_path(self.project, path)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request for `path` in this project (httpx's `params`, `json`, `data`, `files`); any answer.

        Raises `Unreachable` when the server does not answer (or this client was closed meanwhile).
        """
        try:
            return self._http.request(method, self.path(path), **kwargs)
        except httpx.TimeoutException as exc:
            raise Unreachable(f"{self.server} did not answer in time ({type(exc).__name__})") from exc
        except (httpx.TransportError, RuntimeError) as exc:
            # RuntimeError: the client was closed under a request by `close()` from another thread.
            raise Unreachable(f"cannot reach {self.server}: {_describe(exc)}") from exc

    def get(self, path: str, **params: Any) -> Any:
        """The JSON of a GET (`None` params are left out). Raises `ApiError`, `Unreachable`."""
        response = self.request("GET", path, params={k: v for k, v in params.items() if v is not None})
        return self._checked("GET", path, response).json()

    def send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """The JSON answer to a JSON body. Raises `ApiError`, `Unreachable`."""
        return self._checked(method, path, self.request(method, path, json=body)).json()

    def content(self, path: str) -> bytes:
        """The bytes of a GET (an export). Raises `ApiError`, `Unreachable`."""
        return self._checked("GET", path, self.request("GET", path)).content

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _checked(self, method: str, path: str, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            code, reason = error_of(response)
            raise ApiError(method, self.path(path), response.status_code, code, reason)
        return response


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "[Errno 111]" in text:
        return "connection refused"
    return text
