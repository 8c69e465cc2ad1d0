"""How the sync client talks to a Fotoflo server: ask by SHA-256, upload one file, delete an image, and
what answers mean.

`Transport` is the small protocol the uploader needs; `HttpTransport` speaks the HTTP API with
Fotoflo's one HTTP client (dashboard/client.py; the file is streamed from disk, never read whole into
memory). Every failure is one of the `TransportError`s below, which tell the uploader what to do next.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import httpx

from dashboard import client
from dashboard.client import ApiClient, error_of, segment
from dashboard.events import Device

CHUNK_BYTES = 256 * 1024
#: Refusals that stay refusals however often the file is sent (until it changes).
PERMANENT_CODES = ("empty", "not_an_image", "unsupported_format", "too_large", "too_many_pixels", "refused")
#: What a deletion did: the image is `DELETED` now, was `GONE` already, or `CHANGED` since (and is kept).
DELETED, GONE, CHANGED = "deleted", "gone", "changed"


@dataclass(frozen=True)
class Remote:
    """An image on the server that holds the bytes asked about or sent.

    `current`: the bytes are its current version (else an older one). `outcome` says what an
    upload did: `created`, `updated`, `conflict` (a new version; the other side kept as a copy),
    or `present` (the bytes were already there, nothing changed).
    """

    image_id: str
    sha256: str
    current: bool = True
    outcome: str = "present"
    conflict_copy_id: str | None = None


class TransportError(Exception):
    """Base of what can go wrong talking to the server; the message is for people."""


class Unreachable(TransportError):
    """No answer: connection refused, reset or timed out. Try again when the server is back."""


class Retryable(TransportError):
    """The server answered with a transient error (5xx): back off and try this file again."""


class Refused(TransportError):
    """The server refused the file itself (not an image, too large, ...); `code` as the API names it."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ChangedWhileSending(TransportError):
    """The bytes the server received are not the ones hashed: the file changed meanwhile."""


class ReplacedImageGone(TransportError):
    """The image this file was a version of is no longer on the server."""


class Fatal(TransportError):
    """Nothing can be uploaded until a person acts: the token is refused, the project is missing."""


class Transport(Protocol):
    def lookup(self, sha256: str) -> Remote | None:
        """The image that has (or had) these bytes in the project, or `None`."""

    def upload(
        self,
        path: Path,
        name: str,
        sha256: str,
        *,
        replaces: str | None,
        base_sha256: str | None,
        device: Device,
        progress: Callable[[int], None],
        folder: str = "",
    ) -> Remote:
        """Send the file as a new image, or as the next version of `replaces` made from `base_sha256`.

        `progress` is called with the bytes sent so far; `folder` is the file's directory in the synced
        folder (`""`: its top), where the server looks for the other file of a RAW + JPEG pair.
        Raises a `TransportError`.
        """

    def delete(self, image_id: str, *, if_sha256: str) -> str:
        """Delete the image while its current version is `if_sha256`: `DELETED`, `GONE` or `CHANGED` (kept).

        Idempotent: sent again after a lost answer, it says `GONE`. Raises a `TransportError`.
        """

    def close(self) -> None: ...


class _CountingReader:
    """A binary file that reports how much of it has been read (httpx streams multipart bodies by reading)."""

    def __init__(self, fh: IO[bytes], progress: Callable[[int], None]) -> None:
        self._fh = fh
        self._progress = progress
        self._sent = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._fh.read(CHUNK_BYTES if size is None or size < 0 else min(size, CHUNK_BYTES))
        self._sent += len(chunk)
        self._progress(self._sent)
        return chunk

    def fileno(self) -> int:
        return self._fh.fileno()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()


class HttpTransport:
    """The Fotoflo HTTP API of `server` (a base URL), for one project; thread-safe."""

    def __init__(
        self,
        server: str,
        project: str,
        *,
        token: str | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.server = server.rstrip("/")
        self.project = project
        self._client = ApiClient(
            server,
            project,
            token=token,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            user_agent="fotoflo-sync",
            max_keepalive=8,
        )
        self._closed = threading.Event()

    def lookup(self, sha256: str) -> Remote | None:
        response = self._request("GET", f"/images/by-sha256/{segment(sha256)}")
        if response.status_code == 200:
            body = response.json()
            return Remote(body["id"], body["sha256"], current=bool(body.get("current", True)))
        code = _error_code(response)
        if response.status_code == 404 and code == "unknown_image":
            return None
        raise self._unexpected(response, code)

    def upload(
        self,
        path: Path,
        name: str,
        sha256: str,
        *,
        replaces: str | None,
        base_sha256: str | None,
        device: Device,
        progress: Callable[[int], None],
        folder: str = "",
    ) -> Remote:
        fields = {"sha256": sha256, "device_id": device.id, "device_name": device.name}
        if folder:
            fields["folder"] = folder  # where a RAW + JPEG pair is found (dashboard/pairs.py)
        if replaces is not None and base_sha256 is not None:
            fields.update(replaces=replaces, base_sha256=base_sha256)
        try:
            fh = open(path, "rb")  # noqa: SIM115 (closed below, after the request has read it)
        except FileNotFoundError as exc:
            raise ChangedWhileSending("gone before it was sent") from exc
        except OSError as exc:
            raise Refused("unreadable", f"cannot be read ({exc.strerror or exc})") from exc
        with fh:
            reader = _CountingReader(fh, progress)
            files: Any = {"file": (name, reader, "application/octet-stream")}
            response = self._request("POST", "/upload", data=fields, files=files)
        code = _error_code(response)
        if response.status_code in (200, 201):
            image = response.json()["images"][0]
            copy = image.get("conflict_copy")
            if copy is not None:
                outcome = "conflict"
            elif image.get("created"):
                outcome = "created"
            elif image.get("updated"):
                outcome = "updated"
            else:
                outcome = "present"
            current = image["sha256"] == sha256  # else the bytes were an older version of this image
            return Remote(image["id"], image["sha256"], current, outcome, copy["id"] if copy else None)
        if code == "sha256_mismatch":
            raise ChangedWhileSending(_reason(response))
        if response.status_code in (413, 415, 422) and code:
            raise Refused(code, _reason(response))
        if response.status_code == 404 and code == "unknown_image" and replaces is not None:
            raise ReplacedImageGone(_reason(response))
        if response.status_code == 400 and code in ("bad_argument", "no_file"):
            raise Refused(code, f"the server refused the request: {_reason(response)}")
        raise self._unexpected(response, code)

    def delete(self, image_id: str, *, if_sha256: str) -> str:
        response = self._request("DELETE", f"/images/{segment(image_id)}", params={"if_sha256": if_sha256})
        code = _error_code(response)
        if response.status_code == 200:
            return DELETED
        if response.status_code == 404 and code == "unknown_image":
            return GONE
        if response.status_code == 409 and code == "changed":
            return CHANGED
        if response.status_code == 405:
            raise Refused("not_supported", f"{self.server} cannot delete images (HTTP 405): update it")
        raise self._unexpected(response, code)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._closed.is_set():
            raise Unreachable("the client is stopping")
        try:
            return self._client.request(method, path, **kwargs)
        except client.Unreachable as exc:
            raise Unreachable(str(exc)) from exc

    def _unexpected(self, response: httpx.Response, code: str | None) -> TransportError:
        status = response.status_code
        if status in (401, 403):
            return Fatal(f"{self.server} refused the token (HTTP {status}): check --token")
        if status == 404 and code == "unknown_project":
            return Fatal(f"{self.server} has no project {self.project!r} (create it with fotoflo serve --project)")
        if status == 404 and code in (None, "not_found"):
            return Fatal(f"{self.server} does not speak Fotoflo's sync API (HTTP 404 for {response.request.url.path})")
        if status >= 500 or status == 429:
            return Retryable(f"HTTP {status} from {self.server}: {_reason(response)}")
        return Retryable(f"unexpected HTTP {status} from {self.server}: {_reason(response)}")

    def close(self) -> None:
        self._closed.set()
        self._client.close()


def _error_code(response: httpx.Response) -> str | None:
    return error_of(response)[0]


def _reason(response: httpx.Response) -> str:
    return error_of(response)[1]
