"""Requests to a real `fotoflo serve`: a client that refuses tracebacks, the API's error shape, uploads."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.images import small_jpeg
from tests.support.servers import Server


def _no_traceback(response: httpx.Response) -> None:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return  # a live stream: reading it here would block; SseStream checks its error bodies itself
    response.read()
    assert b"Traceback" not in response.content, f"{response.request.url} answered a traceback:\n{response.text}"


def checked_client(**kwargs: Any) -> httpx.Client:
    """An httpx client that fails the test as soon as any response body contains a traceback."""
    return httpx.Client(timeout=15, event_hooks={"response": [_no_traceback]}, **kwargs)


def assert_json_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is `status` with the API's JSON error shape (and `code`, when given)."""
    assert response.status_code == status, f"{response.request.url}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    error = response.json()["error"]
    assert set(error) == {"code", "message"} and error["message"], error
    if code is not None:
        assert error["code"] == code, error
    return error


def upload(client: httpx.Client, server: Server, *parts: tuple[str, bytes], field_name: str = "file") -> httpx.Response:
    """POST the (filename, bytes) parts to the served project's upload endpoint."""
    files = [(field_name, (name, data, "application/octet-stream")) for name, data in parts]
    return client.post(server.api("/upload"), files=files)


def upload_new(client: httpx.Client, server: Server, count: int, *, first_seed: int = 0) -> list[dict[str, Any]]:
    """Upload `count` distinct small JPEGs one request each; returns the created images in feed order."""
    images = []
    for i in range(first_seed, first_seed + count):
        response = upload(client, server, (f"img-{i:03d}.jpg", small_jpeg(i)))
        assert response.status_code == 201, response.text
        images.append(response.json()["images"][0])
    return images


def file_urls(value: Any) -> list[str]:
    """Every file URL (`/files/…`) in a JSON answer, however deep."""
    if isinstance(value, dict):
        return [u for item in value.values() for u in file_urls(item)]
    if isinstance(value, list):
        return [u for item in value for u in file_urls(item)]
    return [value] if isinstance(value, str) and "/files/" in value else []
