"""A property-based fuzz of every endpoint of a real `fotoflo serve --auth`: whatever the path parameters,
query, headers and body, the answer is never a 5xx nor a traceback, and the server is healthy afterwards."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.auth import Role, SQLiteAuthStore
from dashboard.auth.access import CSRF_HEADER
from dashboard.http.routes import routes
from tests.support.api import upload
from tests.support.images import small_jpeg
from tests.support.servers import Server, running_server

EXAMPLES = 250  # a bounded run: a few seconds against a live server
PAGES = ["/login", "/logout", r"/s/(?P<secret>[A-Za-z0-9_-]{1,128})/?"]
QUERY_NAMES = ["limit", "before", "after", "min_rating", "flag", "label", "heartbeat", "progress", "exp", "sig", "v",
               "sha256", "replaces", "base_sha256", "device_id", "device_name", "next", "mode", "project"]  # fmt: skip


@dataclass
class Fuzzed:
    server: Server
    tokens: dict[str, str]
    ids: dict[str, list[str]]  # path parameter → real values to mix in


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    tmp = tmp_path_factory.mktemp("fuzz-server")
    store = SQLiteAuthStore(tmp / "data" / "auth.sqlite")
    tokens = {r.label: store.create_token(name=r.label, role=r)[1] for r in (Role.OWNER, Role.CLIENT, Role.VIEWER)}
    store.close()
    args = ("--auth", "--login-failures", "0", "--upload-rate", "0", "--max-bytes", "1000000")
    with running_server(tmp, extra_args=args) as server, httpx.Client(timeout=15) as client:
        client.headers["Authorization"] = f"Bearer {tokens['owner']}"
        image = upload(client, server, ("seed.jpg", small_jpeg(1))).json()["images"][0]
        collection = client.post(server.api("/collections"), json={"name": "Seed", "image_ids": [image["id"]]}).json()
        share = client.post(server.api("/shares"), json={"role": "viewer"}).json()
        ids = {
            "project": [server.project, "nope"],
            "image_id": [image["id"]],
            "sha256": [image["sha256"]],
            "collection_id": [collection["id"]],
            "share_id": [share["share"]["id"]],
            "secret": [share["path"].rsplit("/", 1)[1]],
            "kind": ["original", "thumb", "preview"],
            "token": ["abcdefgh12"],
        }
        yield Fuzzed(server, tokens, ids)


def templates() -> list[str]:
    """Every route pattern the server has: the API's and the sign-in pages'."""
    return [pattern for pattern, _, _ in routes(None)] + PAGES  # type: ignore[arg-type]


def fill(pattern: str, draw: st.DrawFn, ids: dict[str, list[str]]) -> str:
    """A concrete path for `pattern`: real ids or hostile text in each named group."""
    pattern = pattern.removesuffix("/?").replace(r"\.", ".").replace(".*", draw(st.sampled_from(["x", "", "a/b"])))

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        hostile = st.text(max_size=40).map(lambda t: quote(t, safe="")) | st.sampled_from(["..", "%2e%2e", "a" * 300])
        return draw(st.sampled_from(ids.get(name, ["x"])) | hostile)

    return re.sub(r"\(\?P<(\w+)>[^)]*\)", value, pattern)


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(str.strip)  # as h11 sends
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


@st.composite
def requests(draw: st.DrawFn, fuzz: Fuzzed) -> dict[str, Any]:
    path = fill(draw(st.sampled_from(templates())), draw, fuzz.ids)
    method = draw(st.sampled_from(["GET", "GET", "POST", "POST", "PATCH", "DELETE", "PUT", "OPTIONS", "HEAD"]))
    query = draw(st.dictionaries(st.sampled_from(QUERY_NAMES) | st.text(max_size=8), st.text(max_size=30), max_size=4))
    who = draw(st.sampled_from(["owner", "owner", "client", "viewer", None, "garbage"]))
    headers: dict[str, str] = {}
    if who == "garbage":
        headers["Authorization"] = draw(header_text)
    elif who is not None:
        headers["Authorization"] = f"Bearer {fuzz.tokens[who]}"
    for name in draw(st.sets(st.sampled_from(["Last-Event-ID", "Content-Type", CSRF_HEADER, "Origin", "Accept",
                                             "If-None-Match", "Cookie"]), max_size=3)):  # fmt: skip
        headers[name] = draw(header_text)
    body_kind = draw(st.sampled_from(["none", "json", "bytes", "multipart"]))
    kwargs: dict[str, Any] = {}
    if body_kind == "json":
        kwargs["content"] = json.dumps(draw(json_values)).encode()
        headers.setdefault("Content-Type", "application/json")
    elif body_kind == "bytes":
        kwargs["content"] = draw(st.binary(max_size=2000))
    elif body_kind == "multipart":
        data = draw(st.one_of(st.binary(max_size=2000), st.just(small_jpeg(draw(st.integers(2, 10**6))))))
        name = draw(st.text(max_size=60))
        field = draw(st.sampled_from(["file", "file", "other"]))
        kwargs["files"] = [(field, (name, data, "application/octet-stream"))]
        kwargs["data"] = draw(st.dictionaries(st.sampled_from(QUERY_NAMES), st.text(max_size=70), max_size=3))
        headers.pop("Content-Type", None)
    return {"method": method, "url": fuzz.server.url + path, "params": query, "headers": headers, **kwargs}


def test_no_input_makes_a_5xx_or_a_traceback(fuzzed: Fuzzed) -> None:
    logged = len(fuzzed.server.log())
    seen: dict[int, int] = {}
    with httpx.Client(timeout=15) as client:

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
        @given(request=requests(fuzzed))
        def check(request: dict[str, Any]) -> None:
            try:
                with client.stream(**request) as response:
                    status = response.status_code
                    # A live event stream is left unread; everything else is read whole.
                    body = b"" if "event-stream" in response.headers.get("content-type", "") else response.read()
            except httpx.RemoteProtocolError:
                return  # the server hung up on a malformed request: a refusal, not a failure
            seen[status] = seen.get(status, 0) + 1
            assert status < 500, (request, status, body[:500])
            assert b"Traceback" not in body, (request, body[:500])

        check()
    assert sum(seen.values()) >= EXAMPLES // 2, seen
    assert any(200 <= s < 300 for s in seen) and any(400 <= s < 500 for s in seen), seen
    log = fuzzed.server.log()[logged:]
    assert "Traceback" not in log and "Uncaught exception" not in log, log[-3000:]
    with httpx.Client(timeout=15, headers={"Authorization": f"Bearer {fuzzed.tokens['owner']}"}) as client:
        health = client.get(f"{fuzzed.server.url}/healthz").json()
        assert health["status"] == "ok", health
        assert upload(client, fuzzed.server, ("after.jpg", small_jpeg(999_999_999))).status_code == 201
