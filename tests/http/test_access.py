"""Access control on a real `fotoflo serve --auth`: every role against every endpoint, tokens, share links,
the browser's login, cookie and CSRF, revocation, rate limits, and the refusal to run open off loopback."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from dashboard.app import App
from dashboard.auth import Action, Role, SQLiteAuthStore
from dashboard.auth.access import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from dashboard.cli import main
from dashboard.config import Settings
from dashboard.http.base import NotFoundHandler
from dashboard.http.files import FileHandler
from dashboard.http.health import HealthHandler
from dashboard.http.project import ProjectHandler
from dashboard.http.routes import routes
from dashboard.http.rules import PATH, Allow
from tests.http.test_limits import connect, multipart, read_answer, send_head
from tests.support import ROOT
from tests.support.api import assert_json_error, checked_client, upload
from tests.support.auth import AuthServer
from tests.support.images import png_bytes, small_jpeg
from tests.support.servers import Server, running_server
from tests.support.sse import sse
from tests.support.waiting import run_loop, wait_until
from tests.test_docs import endpoints

IDENTITIES = ("anonymous", "forged", "viewer", "client", "editor", "owner", "outsider")
_seeds = itertools.count(10_000)


@pytest.fixture
def server(auth_project: Server) -> Server:
    """This module's tests run on the server with authentication on."""
    return auth_project


def owner_token_printed(server: Server) -> str:
    """The owner token a server made at its first start and printed once."""
    found = wait_until(lambda: [w for w in server.log().split() if w.startswith("fft_")], timeout_s=10)
    assert isinstance(found, list) and len(found) == 1, server.log()
    return found[0]


# -- the role × endpoint table --------------------------------------------------------------


@dataclass
class World:
    """What one request needs, made fresh by the owner (a collection to delete, a link to revoke, …)."""

    server: Server
    owner: httpx.Client
    image: dict[str, Any] = field(default_factory=dict)

    def api(self, path: str) -> str:
        return self.server.api(path)

    def new_image(self) -> dict[str, Any]:
        response = upload(self.owner, self.server, (f"img-{next(_seeds)}.jpg", small_jpeg(next(_seeds))))
        assert response.status_code == 201, response.text
        return dict(response.json()["images"][0])

    def collection(self, *, deleted: bool = False) -> str:
        response = self.owner.post(self.api("/collections"), json={"name": "Selects", "image_ids": [self.image["id"]]})
        assert response.status_code == 201, response.text
        collection_id = str(response.json()["id"])
        if deleted:
            assert self.owner.delete(self.api(f"/collections/{collection_id}")).status_code == 200
        return collection_id

    def comment(self) -> str:
        """A new comment of the owner's on the image: only an editor or owner may resolve or delete it."""
        response = self.owner.post(self.api(f"/images/{self.image['id']}/comments"), json={"text": "Crop?"})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def share(self) -> str:
        response = self.owner.post(self.api("/shares"), json={"role": "viewer"})
        assert response.status_code == 201, response.text
        return str(response.json()["share"]["id"])

    def share_qr(self, fmt: str) -> str:
        """A new link's QR code URL: the link passed back (only its hash is kept)."""
        response = self.owner.post(self.api("/shares"), json={"role": "viewer"})
        assert response.status_code == 201, response.text
        return self.api(f"/shares/{response.json()['share']['id']}/qr.{fmt}?link={response.json()['path']}")

    def webhook(self) -> str:
        response = self.owner.post(self.api("/webhooks"), json={"url": "http://127.0.0.1:9/hook"})
        assert response.status_code == 201, response.text
        return str(response.json()["webhook"]["id"])

    def email(self) -> str:
        address = f"someone-{next(_seeds)}@studio.example"
        assert self.owner.post(self.api("/emails"), json={"address": address}).status_code == 201
        return address

    def export_token(self) -> str:
        token = f"export-{next(_seeds)}"
        response = self.owner.get(self.api(f"/collections/{self.collection()}/export.zip?progress={token}"))
        assert response.status_code == 200
        return token


@dataclass(frozen=True)
class Call:
    method: str
    route: str  # as the README documents it (tests/test_docs.py): which endpoint this row covers
    target: Callable[[World], str]
    least: Role | None  # the least role allowed; None: anyone, signed in or not
    ok: int = 200
    body: Callable[[World], dict[str, Any]] | None = None
    files: bool = False  # a multipart upload of a new image
    content: tuple[bytes, str] | None = None  # a raw body and its Content-Type


P = "/api/projects/{project}"
C = P + "/collections/{collection_id}"
COMMENT = P + "/images/{image_id}/comments/{comment_id}"
TABLE = [
    Call("GET", "/api/projects", lambda w: f"{w.server.url}/api/projects", Role.VIEWER),
    Call("GET", P + "/images", lambda w: w.api("/images"), Role.VIEWER),
    Call("GET", P + "/images/by-sha256/{sha256}", lambda w: w.api(f"/images/by-sha256/{w.image['sha256']}"),
         Role.VIEWER),
    Call("GET", P + "/images/{image_id}", lambda w: w.api(f"/images/{w.image['id']}"), Role.VIEWER),
    Call("DELETE", P + "/images/{image_id}", lambda w: w.api(f"/images/{w.new_image()['id']}"), Role.EDITOR),
    Call("GET", P + "/images/{image_id}/versions", lambda w: w.api(f"/images/{w.image['id']}/versions"), Role.VIEWER),
    Call("POST", P + "/images/{image_id}/rating", lambda w: w.api(f"/images/{w.image['id']}/rating"), Role.CLIENT,
         body=lambda w: {"rating": 3}),
    # Favourites are the caller's own: marking needs a client; the list answers a viewer (their own, none).
    Call("PUT", P + "/images/{image_id}/favorite", lambda w: w.api(f"/images/{w.image['id']}/favorite"), Role.CLIENT),
    Call("DELETE", P + "/images/{image_id}/favorite", lambda w: w.api(f"/images/{w.image['id']}/favorite"),
         Role.CLIENT),
    Call("GET", P + "/favorites", lambda w: w.api("/favorites"), Role.VIEWER),
    Call("POST", P + "/favorites/submit", lambda w: w.api("/favorites/submit"), Role.CLIENT, 201),
    # Comments are shared: a viewer reads them, a client writes; the owner's comment is an editor's to
    # resolve or delete (a client deletes only their own).
    Call("GET", P + "/images/{image_id}/comments", lambda w: w.api(f"/images/{w.image['id']}/comments"), Role.VIEWER),
    Call("POST", P + "/images/{image_id}/comments", lambda w: w.api(f"/images/{w.image['id']}/comments"),
         Role.CLIENT, 201, body=lambda w: {"text": "Lovely"}),
    Call("PATCH", P + "/images/{image_id}/comments/{comment_id}",
         lambda w: w.api(f"/images/{w.image['id']}/comments/{w.comment()}"), Role.EDITOR,
         body=lambda w: {"resolved": True}),
    Call("DELETE", COMMENT,
         lambda w: w.api(f"/images/{w.image['id']}/comments/{w.comment()}"), Role.EDITOR),
    Call("GET", P + "/comment-counts", lambda w: w.api("/comment-counts"), Role.VIEWER),
    Call("POST", P + "/upload", lambda w: w.api("/upload"), Role.EDITOR, 201, files=True),
    Call("GET", P + "/changes", lambda w: w.api("/changes"), Role.VIEWER),
    Call("GET", P + "/events", lambda w: w.api("/events?heartbeat=0.5"), Role.VIEWER),
    Call("GET", P + "/collections", lambda w: w.api("/collections"), Role.VIEWER),
    Call("POST", P + "/collections", lambda w: w.api("/collections"), Role.CLIENT, 201,
         body=lambda w: {"name": "Mine", "image_ids": [w.image["id"]]}),
    Call("GET", C, lambda w: w.api(f"/collections/{w.collection()}"), Role.VIEWER),
    # A client edits only what they saved: the owner's collection needs an editor.
    Call("PATCH", C, lambda w: w.api(f"/collections/{w.collection()}"), Role.EDITOR,
         body=lambda w: {"op": "rename", "name": "Renamed"}),
    Call("DELETE", C, lambda w: w.api(f"/collections/{w.collection()}"), Role.EDITOR),
    Call("POST", C + "/undelete", lambda w: w.api(f"/collections/{w.collection(deleted=True)}/undelete"),
         Role.EDITOR),
    Call("POST", C + "/duplicate", lambda w: w.api(f"/collections/{w.collection()}/duplicate"), Role.CLIENT, 201),
    Call("GET", C + "/export.txt", lambda w: w.api(f"/collections/{w.collection()}/export.txt"), Role.VIEWER),
    Call("GET", C + "/export.csv", lambda w: w.api(f"/collections/{w.collection()}/export.csv"), Role.VIEWER),
    Call("GET", C + "/export.zip", lambda w: w.api(f"/collections/{w.collection()}/export.zip"), Role.VIEWER),
    Call("GET", P + "/exports/{token}", lambda w: w.api(f"/exports/{w.export_token()}"), Role.VIEWER),
    Call("GET", P + "/shares", lambda w: w.api("/shares"), Role.OWNER),
    Call("POST", P + "/shares", lambda w: w.api("/shares"), Role.OWNER, 201, body=lambda w: {"role": "client"}),
    Call("DELETE", P + "/shares/{share_id}", lambda w: w.api(f"/shares/{w.share()}"), Role.OWNER),
    Call("PUT", P + "/shares/{share_id}/watermark", lambda w: w.api(f"/shares/{w.share()}/watermark"), Role.OWNER,
         content=(png_bytes((64, 32)), "image/png")),
    Call("DELETE", P + "/shares/{share_id}/watermark", lambda w: w.api(f"/shares/{w.share()}/watermark"),
         Role.OWNER),
    Call("GET", P + "/shares/{share_id}/qr.svg", lambda w: w.share_qr("svg"), Role.OWNER),
    Call("GET", P + "/shares/{share_id}/qr.png", lambda w: w.share_qr("png"), Role.OWNER),
    Call("GET", P + "/webhooks", lambda w: w.api("/webhooks"), Role.OWNER),
    Call("POST", P + "/webhooks", lambda w: w.api("/webhooks"), Role.OWNER, 201,
         body=lambda w: {"url": "http://127.0.0.1:9/hook"}),
    Call("DELETE", P + "/webhooks/{webhook_id}", lambda w: w.api(f"/webhooks/{w.webhook()}"), Role.OWNER),
    Call("GET", P + "/emails", lambda w: w.api("/emails"), Role.OWNER),
    Call("POST", P + "/emails", lambda w: w.api("/emails"), Role.OWNER, 201,
         body=lambda w: {"address": f"new-{next(_seeds)}@studio.example"}),
    Call("DELETE", P + "/emails/{address}", lambda w: w.api(f"/emails/{w.email()}"), Role.OWNER),
    # Signed file URLs are capabilities: whoever holds one (an <img> tag) may fetch it, signed in or not.
    Call("GET", "/files/{image_id}/{kind}", lambda w: w.server.url + w.image["thumbnail_url"], None),
    Call("GET", "/healthz", lambda w: f"{w.server.url}/healthz", None),
    Call("GET", "/metrics", lambda w: f"{w.server.url}/metrics", Role.OWNER),  # of every project
]  # fmt: skip


def expected(call: Call, identity: str) -> int:
    if call.least is None:
        return call.ok
    if identity in ("anonymous", "forged"):
        return 401
    if identity == "outsider":  # an owner, of another project
        return call.ok if "{project}" not in call.route and call.route != "/metrics" else 403
    return call.ok if Role.parse(identity) >= call.least else 403


def send(client: httpx.Client, call: Call, world: World, headers: dict[str, str]) -> int:
    url = call.target(world)
    kwargs: dict[str, Any] = {"headers": headers}
    if call.body is not None:
        kwargs["json"] = call.body(world)
    if call.content is not None:
        kwargs["content"] = call.content[0]
        kwargs["headers"] = {**headers, "Content-Type": call.content[1]}
    if call.files:
        kwargs["files"] = {"file": (f"new-{next(_seeds)}.jpg", small_jpeg(next(_seeds)), "image/jpeg")}
    with client.stream(call.method, url, **kwargs) as response:
        if response.status_code >= 400:
            response.read()
            assert_json_error(response, response.status_code)
        return response.status_code  # a stream (events) is closed here, unread


def test_the_table_covers_every_endpoint() -> None:
    served = {(m, p) for m, p in endpoints() if m}  # the catch-all /api/* answers 404 to anyone
    assert {(c.method, c.route) for c in TABLE} == served


@pytest.mark.parametrize("call", TABLE, ids=lambda c: f"{c.method} {c.route}")
def test_each_role_against_each_endpoint(call: Call, auth_server: AuthServer, server: Server,
                                         owner: httpx.Client) -> None:  # fmt: skip
    world = World(server, owner)
    world.image = world.new_image()
    got = {}
    with checked_client() as client:
        for identity in IDENTITIES:
            got[identity] = send(client, call, world, auth_server.headers(identity))
    assert got == {identity: expected(call, identity) for identity in IDENTITIES}


def test_projects_lists_only_what_the_token_grants(auth_server: AuthServer, server: Server) -> None:
    with checked_client() as client:
        everything = client.get(f"{server.url}/api/projects", headers=auth_server.headers("viewer")).json()
        outsider = client.get(f"{server.url}/api/projects", headers=auth_server.headers("outsider")).json()
    assert server.project in everything["projects"]
    assert outsider["projects"] == []  # "elsewhere" does not exist: a grant is not a project


def test_a_client_edits_the_collections_they_saved(auth_server: AuthServer, server: Server,
                                                   owner: httpx.Client) -> None:  # fmt: skip
    image = World(server, owner).new_image()
    with checked_client(headers=auth_server.headers("client")) as client:
        saved = client.post(server.api("/collections"), json={"name": "My picks", "image_ids": [image["id"]]})
        assert saved.status_code == 201
        mine = saved.json()["id"]
        assert client.patch(server.api(f"/collections/{mine}"), json={"op": "rename", "name": "Top"}).status_code == 200
        assert client.delete(server.api(f"/collections/{mine}")).status_code == 200
        assert client.post(server.api(f"/collections/{mine}/undelete")).status_code == 200
        copy = client.post(server.api(f"/collections/{mine}/duplicate")).json()["id"]
        assert client.patch(server.api(f"/collections/{copy}"), json={"op": "remove", "image_ids": [image["id"]]}
                            ).status_code == 200  # fmt: skip
        # Someone else's: read, copy, but not change.
        theirs = owner.post(server.api("/collections"), json={"name": "Studio"}).json()["id"]
        assert client.get(server.api(f"/collections/{theirs}")).status_code == 200
        assert_json_error(client.delete(server.api(f"/collections/{theirs}")), 403, "forbidden")


# -- tokens ---------------------------------------------------------------------------------


def test_revoked_expired_and_malformed_tokens_are_401(auth_server: AuthServer, server: Server) -> None:
    store = SQLiteAuthStore(server.data / "auth.sqlite")
    try:
        revoked, revoked_secret = store.create_token(name="old laptop", role=Role.OWNER)
        _, expired_secret = store.create_token(name="temp", role=Role.OWNER, expires_at=time.time() - 1)
    finally:
        store.close()
    with checked_client() as client:
        url = server.api("/images")
        assert client.get(url, headers={"Authorization": f"Bearer {revoked_secret}"}).status_code == 200
        assert main(["token", "revoke", revoked.id, "--data", str(server.data)]) == 0
        for header, code in [(f"Bearer {revoked_secret}", "token_revoked"), (f"Bearer {expired_secret}",
                             "token_expired"), ("Basic b3duZXI6b3duZXI=", "bad_authorization")]:  # fmt: skip
            response = client.get(url, headers={"Authorization": header})
            assert_json_error(response, 401, code)
            assert response.headers["WWW-Authenticate"] == "Bearer"
        assert_json_error(client.get(url), 401, "unauthenticated")
    assert "failed sign-in from 127.0.0.1: token_revoked" in server.log()


# -- the browser: login, cookie, CSRF -------------------------------------------------------


def sign_in(client: httpx.Client, server: Server, token: str, next_path: str = "/") -> httpx.Response:
    return client.post(f"{server.url}/login", params={"next": next_path}, data={"token": token})


def test_login_sets_a_session_cookie_and_the_page_needs_it(auth_server: AuthServer, server: Server) -> None:
    with checked_client() as client:
        page = client.get(f"{server.url}/?project={server.project}")
        assert page.status_code == 302 and "login?next=" in page.headers["location"]
        form = client.get(f"{server.url}/login", headers={"Accept": "text/html"})
        assert form.status_code == 200 and 'name="token"' in form.text
        assert form.headers["X-Frame-Options"] == "DENY"
        wrong = sign_in(client, server, "fft_wrong")
        assert_json_error(wrong, 401, "invalid_token")
        assert not client.cookies
        response = sign_in(client, server, auth_server.tokens["viewer"], f"/?project={server.project}")
        assert response.status_code == 303 and response.headers["location"] == f"/?project={server.project}"
        cookies = {c.split("=", 1)[0]: c.lower() for c in response.headers.get_list("set-cookie")}
        assert "httponly" in cookies[SESSION_COOKIE] and "samesite=lax" in cookies[SESSION_COOKIE]
        assert "httponly" not in cookies[CSRF_COOKIE] and "samesite=lax" in cookies[CSRF_COOKIE]
        assert "secure" not in cookies[SESSION_COOKIE]  # plain HTTP: Secure only over HTTPS
        page = client.get(f"{server.url}/?project={server.project}")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert client.get(server.api("/images")).status_code == 200
        assert client.get(f"{server.url}/logout").status_code == 303
        assert_json_error(client.get(server.api("/images")), 401, "unauthenticated")


def test_login_redirects_only_within_the_server(auth_server: AuthServer, server: Server) -> None:
    with checked_client() as client:
        for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
            response = sign_in(client, server, auth_server.tokens["viewer"], target)
            assert response.status_code == 303 and response.headers["location"] == "/", target
        cross = client.post(f"{server.url}/login", data={"token": auth_server.tokens["viewer"]},
                            headers={"Origin": "http://evil.example"})  # fmt: skip
        assert_json_error(cross, 403, "bad_origin")


def test_login_refuses_null_and_foreign_origins(auth_server: AuthServer, server: Server) -> None:
    """Login CSRF: a sandboxed frame (`Origin: null`) or another site's page must not sign this browser in."""
    token = auth_server.tokens["viewer"]
    with checked_client() as client:
        other_port = f"http://127.0.0.1:{server.port + 1}"
        for headers in ({"Origin": "null"}, {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
                        {"Origin": "http://evil.example"}, {"Origin": other_port},
                        {"Sec-Fetch-Site": "cross-site"}):  # fmt: skip
            refused = client.post(f"{server.url}/login", data={"token": token}, headers=headers)
            assert_json_error(refused, 403, "bad_origin")
            assert SESSION_COOKIE not in client.cookies, headers
        own = client.post(f"{server.url}/login", data={"token": token}, headers={"Origin": server.url})
        assert own.status_code == 303 and SESSION_COOKIE in client.cookies
    with checked_client() as client:  # the login form itself, if its page sent no referrer (Origin: null)
        form = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
        assert client.post(f"{server.url}/login", data={"token": token}, headers=form).status_code == 303


def test_a_session_s_writes_need_the_csrf_token(auth_server: AuthServer, server: Server, owner: httpx.Client) -> None:
    image = World(server, owner).new_image()
    with checked_client() as client:
        assert sign_in(client, server, auth_server.tokens["editor"]).status_code == 303
        csrf = client.cookies[CSRF_COOKIE]
        rating = server.api(f"/images/{image['id']}/rating")
        assert_json_error(client.post(rating, json={"rating": 5}), 403, "csrf_failed")
        assert_json_error(client.post(rating, json={"rating": 5}, headers={CSRF_HEADER: "forged"}), 403, "csrf_failed")
        assert owner.get(server.api(f"/images/{image['id']}")).json()["rating"] == 0
        assert client.post(rating, json={"rating": 5}, headers={CSRF_HEADER: csrf}).status_code == 200
        sent = client.post(server.api("/upload"), files={"file": ("x.jpg", small_jpeg(next(_seeds)))},
                           headers={CSRF_HEADER: csrf})  # fmt: skip
        assert sent.status_code == 201
        assert client.get(server.api("/images")).status_code == 200  # reads need no token


# -- share links ----------------------------------------------------------------------------


def make_share(server: Server, *args: str, capsys: pytest.CaptureFixture[str]) -> str:
    """`fotoflo share create` on the server's data directory; the secret of the link it printed."""
    capsys.readouterr()
    code = main(["share", "create", "--project", server.project, "--url", server.url, "--data", str(server.data),
                 *args])  # fmt: skip
    assert code == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith(f"{server.url}/s/")
    return url.rsplit("/", 1)[1]


def open_link(client: httpx.Client, server: Server, secret: str, password: str | None = None) -> httpx.Response:
    if password is None:
        return client.get(f"{server.url}/s/{secret}")
    return client.post(f"{server.url}/s/{secret}", data={"password": password})


def test_a_project_link_grants_its_role_in_its_project_only(server: Server, owner: httpx.Client,
                                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    image = World(server, owner).new_image()
    secret = make_share(server, "--role", "client", capsys=capsys)
    with checked_client() as client:
        opened = open_link(client, server, secret)
        assert opened.status_code == 303 and opened.headers["location"] == f"/?project={server.project}"
        csrf = {CSRF_HEADER: client.cookies[CSRF_COOKIE]}
        assert [i["id"] for i in client.get(server.api("/images")).json()["images"]] == [image["id"]]
        assert client.post(server.api(f"/images/{image['id']}/rating"), json={"flag": "pick"},
                           headers=csrf).status_code == 200  # fmt: skip
        assert_json_error(client.post(server.api("/upload"), files={"file": ("a.jpg", small_jpeg(1))}, headers=csrf),
                          403, "forbidden")  # fmt: skip
        assert_json_error(client.get(f"{server.url}/api/projects/default/images"), 403, "forbidden")
        assert client.get(f"{server.url}/api/projects").json() == {"projects": [server.project]}
        # The page of another project shows the link's own.
        assert client.get(f"{server.url}/?project=default").status_code == 200


def test_a_link_asks_before_replacing_the_browser_s_session(auth_server: AuthServer, server: Server,
                                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """Login CSRF by link: `GET /s/SECRET` shows both identities and switches only on the page's POST."""
    secret = make_share(server, "--role", "viewer", "--name", "Guest link", capsys=capsys)
    with checked_client() as client:
        assert sign_in(client, server, auth_server.tokens["editor"]).status_code == 303
        session = client.cookies[SESSION_COOKIE]
        asked = open_link(client, server, secret)
        assert asked.status_code == 200 and "text/html" in asked.headers["content-type"]
        assert "editor" in asked.text and "Guest link" in asked.text and 'method="post"' in asked.text
        german = client.get(f"{server.url}/s/{secret}", headers={"Accept": "text/html", "Accept-Language": "de"})
        assert "Diesen Link öffnen?" in german.text and "(Bearbeiter)" in german.text, german.text
        assert f"Guest link (Betrachter des Projekts {server.project})" in german.text
        assert client.cookies[SESSION_COOKIE] == session, "still signed in as before"
        assert client.post(server.api("/collections"), json={"name": "mine", "image_ids": []},
                           headers={CSRF_HEADER: client.cookies[CSRF_COOKIE]}).status_code == 201  # fmt: skip
        # Another site's page cannot press the button.
        foreign = client.post(f"{server.url}/s/{secret}", headers={"Origin": "http://evil.example"})
        assert_json_error(foreign, 403, "bad_origin")
        assert client.cookies[SESSION_COOKIE] == session
        switched = client.post(f"{server.url}/s/{secret}", headers={"Origin": server.url})
        assert switched.status_code == 303 and client.cookies[SESSION_COOKIE] != session
        # Signed in by that very link: opening it again just goes on.
        again = open_link(client, server, secret)
        assert again.status_code == 303


def test_a_collection_link_shows_that_collection_only_live(server: Server, owner: httpx.Client,
                                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    world = World(server, owner)
    shown, hidden = world.new_image(), world.new_image()
    shared = owner.post(server.api("/collections"), json={"name": "Proofs", "image_ids": [shown["id"]]}).json()
    other = owner.post(server.api("/collections"), json={"name": "Private", "image_ids": [hidden["id"]]}).json()
    secret = make_share(server, "--role", "viewer", "--collection", shared["id"], capsys=capsys)
    with checked_client() as client:
        assert open_link(client, server, secret).status_code == 303
        assert [i["id"] for i in client.get(server.api("/images")).json()["images"]] == [shown["id"]]
        assert client.get(server.api("/images")).json()["total"] == 1
        assert client.get(server.api(f"/images/{shown['id']}")).status_code == 200
        assert_json_error(client.get(server.api(f"/images/{hidden['id']}")), 404, "unknown_image")
        assert_json_error(client.get(server.api(f"/images/by-sha256/{hidden['sha256']}")), 404, "unknown_image")
        assert_json_error(client.get(server.api(f"/images/{hidden['id']}/versions")), 404, "unknown_image")
        assert [c["id"] for c in client.get(server.api("/collections")).json()["collections"]] == [shared["id"]]
        assert_json_error(client.get(server.api(f"/collections/{other['id']}")), 404, "unknown_collection")
        assert_json_error(client.get(server.api(f"/collections/{other['id']}/export.zip")), 404, "unknown_collection")
        kinds = {(c["kind"], (c["image"] or {}).get("id") or c["data"].get("collection_id"))
                 for c in client.get(server.api("/changes")).json()["changes"]}  # fmt: skip
        assert kinds == {("image.created", shown["id"]), ("collection.saved", shared["id"])}
        # Live: what the link does not show never reaches its stream.
        cookie = {"Cookie": f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"}
        with sse(server.api("/events"), headers=cookie) as stream:
            world.new_image()
            assert owner.post(server.api(f"/images/{hidden['id']}/rating"), json={"rating": 2}).status_code == 200
            assert owner.post(server.api(f"/images/{shown['id']}/rating"), json={"rating": 4}).status_code == 200
            event = stream.next()
            assert (event.event, event.json()["image_id"], event.json()["rating"]) == ("rating.changed", shown["id"], 4)
            added = owner.patch(server.api(f"/collections/{shared['id']}"),
                                json={"op": "add", "image_ids": [hidden["id"]]})  # fmt: skip
            assert added.status_code == 200
            assert stream.next().event == "collection.updated"
            assert owner.post(server.api(f"/images/{hidden['id']}/rating"), json={"rating": 1}).status_code == 200
            assert stream.next().json()["image_id"] == hidden["id"]  # now in the collection: now shown
            assert stream.pending() == 0
        assert client.get(server.api(f"/images/{hidden['id']}")).status_code == 200


def test_a_client_link_to_a_collection_saves_a_selection_of_it(server: Server, owner: httpx.Client,
                                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    world = World(server, owner)
    shown, hidden = world.new_image(), world.new_image()
    shared = owner.post(server.api("/collections"), json={"name": "Proofs", "image_ids": [shown["id"]]}).json()
    secret = make_share(server, "--collection", shared["id"], capsys=capsys)  # a client, by default
    with checked_client() as client:
        opened = open_link(client, server, secret)
        assert opened.headers["location"] == f"/?project={server.project}&mode=collection"
        csrf = {CSRF_HEADER: client.cookies[CSRF_COOKIE]}
        sneaky = client.post(server.api("/collections"), json={"name": "x", "image_ids": [hidden["id"]]}, headers=csrf)
        assert_json_error(sneaky, 404, "unknown_image")
        mine = client.post(server.api("/collections"), json={"name": "Picks", "image_ids": [shown["id"]]}, headers=csrf)
        assert mine.status_code == 201
        listed = {c["id"] for c in client.get(server.api("/collections")).json()["collections"]}
        assert listed == {shared["id"], mine.json()["id"]}
        rename, mine_url = {"op": "rename", "name": "Final"}, server.api(f"/collections/{mine.json()['id']}")
        assert client.patch(mine_url, json=rename, headers=csrf).status_code == 200
        assert_json_error(client.patch(server.api(f"/collections/{shared['id']}"), json=rename, headers=csrf), 403)
        add = {"op": "add", "image_ids": [hidden["id"]]}
        assert_json_error(client.patch(mine_url, json=add, headers=csrf), 404)


# -- share-link scope: exactly the shared collection's current members, on every route ------------


@dataclass
class Link:
    """A client's link to the owner's collection `shared`, opened in `client` (a browser session)."""

    client: httpx.Client
    csrf: dict[str, str]
    shared: str
    kept: dict[str, Any]  # an image that stays in the shared collection
    gone: dict[str, Any]  # outside it from the start, or removed from it after the link was made
    own: list[str]  # the holder's own collections (a copy of the shared one, a selection): made while `gone` was in

    @property
    def cookie(self) -> dict[str, str]:
        return {"Cookie": f"{SESSION_COOKIE}={self.client.cookies[SESSION_COOKIE]}"}


@contextmanager
def collection_link(world: World, case: str) -> Iterator[Link]:
    """`case` "outside": `gone` was never in the shared collection; "removed": it was, and the holder saved it
    in a copy and a selection of their own, then the owner removed it from the shared collection."""
    kept, gone = world.new_image(), world.new_image()
    # A collection the link does not show: none of its feed entries may reach the link either.
    private = world.owner.post(world.api("/collections"), json={"name": "Private", "image_ids": [gone["id"]]})
    assert private.status_code == 201
    members = [kept["id"], gone["id"]] if case == "removed" else [kept["id"]]
    shared = world.owner.post(world.api("/collections"), json={"name": "Proofs", "image_ids": members}).json()["id"]
    made = world.owner.post(world.api("/shares"), json={"role": "client", "collection_id": shared})
    assert made.status_code == 201, made.text
    with checked_client() as client:
        assert client.get(world.server.url + made.json()["path"]).status_code == 303
        csrf = {CSRF_HEADER: client.cookies[CSRF_COOKIE]}
        own = []
        if case == "removed":
            copy = client.post(world.api(f"/collections/{shared}/duplicate"), headers=csrf)
            selection = {"name": "Picks", "image_ids": [gone["id"], kept["id"]]}
            picks = client.post(world.api("/collections"), json=selection, headers=csrf)
            assert copy.status_code == picks.status_code == 201, (copy.text, picks.text)
            own = [copy.json()["id"], picks.json()["id"]]
            removed = world.owner.patch(world.api(f"/collections/{shared}"),
                                        json={"op": "remove", "image_ids": [gone["id"]]})  # fmt: skip
            assert removed.status_code == 200, removed.text
        yield Link(client, csrf, shared, kept, gone, own)


def expected_in_scope(call: Call) -> int:
    """What a client's link to another collection gets for `call` about an image outside it: 404, as if absent."""
    if call.least is None:
        return call.ok  # a signed file URL is a capability of its own (the link is never given one for the image)
    # A collection's edits, and deleting a comment, need an editor only because the target is the owner's:
    # a client passes the role check and is refused on the image instead.
    owners_target = "{collection_id}" in call.route or (call.method, call.route) == ("DELETE", COMMENT)
    if call.least > Role.CLIENT and not owners_target:
        return 403  # refused by role first
    names_one = ("{image_id}", "{sha256}", "{collection_id}", "{token}")
    if any(name in call.route for name in names_one) or (call.method, call.route) == ("POST", P + "/collections"):
        return 404  # the image, a collection holding it, an export of one: as if absent
    return call.ok  # a list: it answers, without the image (checked below)


def assert_absent(text: str, image: dict[str, Any], where: str) -> None:
    for value in (image["id"], image["sha256"], image["filename"]):
        assert value not in text, f"{where} shows {value!r}: {text[:2000]}"


@pytest.mark.parametrize("case", ["outside", "removed"])
@pytest.mark.parametrize("call", TABLE, ids=lambda c: f"{c.method} {c.route}")
def test_a_collection_link_gets_nothing_outside_its_collection_on_each_endpoint(
    call: Call, case: str, server: Server, owner: httpx.Client
) -> None:
    world = World(server, owner)
    with collection_link(world, case) as link:
        world.image = link.gone
        url = call.target(world)
        kwargs: dict[str, Any] = {"headers": link.csrf}
        if call.body is not None:
            kwargs["json"] = call.body(world)
        if call.files:
            kwargs["files"] = {"file": (f"new-{next(_seeds)}.jpg", small_jpeg(next(_seeds)), "image/jpeg")}
        if call.route == P + "/events":
            last = str(owner.get(server.api("/changes")).json()["last_seq"])  # a change of the shared collection
            with sse(url, headers={**link.cookie, "Last-Event-ID": "0"}) as stream:
                replayed = [stream.next()]
                while replayed[-1].id != last:
                    replayed.append(stream.next())
            assert_absent(shown_feed([e.data for e in replayed], link.gone), link.gone, "the event stream")
            return
        response = link.client.request(call.method, url, **kwargs)
        assert response.status_code == expected_in_scope(call), (url, response.text)
        if response.status_code == 404:
            assert_json_error(response, 404)
        elif call.route == P + "/changes":
            changes = [json.dumps(c, separators=(",", ":")) for c in response.json()["changes"]]
            assert_absent(shown_feed(changes, link.gone), link.gone, call.route)
        elif call.method == "GET" and "{project}" in call.route:
            assert_absent(response.text, link.gone, call.route)
        assert owner.get(server.api(f"/images/{link.gone['id']}")).json()["rating"] == 0


def test_a_link_holder_s_own_collections_follow_the_shared_collection(server: Server, owner: httpx.Client) -> None:
    """(a) A copy or a selection the holder saved keeps no image the owner has since removed from the shared one."""
    world = World(server, owner)
    with collection_link(world, "removed") as link:
        client, gone, kept = link.client, link.gone, link.kept
        assert [i["id"] for i in client.get(server.api("/images")).json()["images"]] == [kept["id"]]
        assert client.get(server.api("/images")).json()["total"] == 1
        cards = {c["id"]: c for c in client.get(server.api("/collections")).json()["collections"]}
        assert set(cards) == {link.shared, *link.own}
        for collection_id in link.own:
            card = cards[collection_id]
            assert (card["count"], card["cover_image_id"]) == (1, None if collection_id == link.own[1] else kept["id"])
            body = client.get(server.api(f"/collections/{collection_id}")).json()
            assert body["image_ids"] == [kept["id"]] and [i["id"] for i in body["images"]] == [kept["id"]]
            for fmt in ("txt", "csv", "zip"):
                exported = client.get(server.api(f"/collections/{collection_id}/export.{fmt}"))
                assert exported.status_code == 200
                assert gone["filename"].encode() not in exported.content, fmt
                assert kept["filename"].encode() in exported.content, fmt
            # And the holder cannot bring it back through their own collection.
            for edit in ({"op": "move", "image_ids": [gone["id"]]}, {"op": "cover", "image_id": gone["id"]},
                         {"op": "remove", "image_ids": [gone["id"]]}):  # fmt: skip
                refused = client.patch(server.api(f"/collections/{collection_id}"), json=edit, headers=link.csrf)
                assert_json_error(refused, 404, "unknown_image")
        # The owner still sees the holder's collections whole.
        assert owner.get(server.api(f"/collections/{link.own[1]}")).json()["image_ids"] == [gone["id"], kept["id"]]
        # Live: the removed image's changes no longer reach the holder's stream, through any of their collections.
        owner_headers = {"Authorization": owner.headers["Authorization"]}
        with sse(server.api("/events"), headers=owner_headers) as everything, \
                sse(server.api("/events"), headers=link.cookie) as stream:  # fmt: skip
            assert owner.post(server.api(f"/images/{gone['id']}/rating"), json={"rating": 2}).status_code == 200
            assert owner.post(server.api(f"/images/{kept['id']}/rating"), json={"rating": 4}).status_code == 200
            event = stream.next()
            assert (event.event, event.json()["image_id"]) == ("rating.changed", kept["id"])
            # The same change, sent to both streams: the owner's frame names the cover, the link's does not.
            rename = {"op": "rename", "name": "Final"}
            renaming = client.patch(server.api(f"/collections/{link.own[1]}"), json=rename, headers=link.csrf)
            assert renaming.status_code == 200
            seen = everything.take(3)[-1].json()
            assert (seen["name"], seen["cover_image_id"]) == ("Final", gone["id"]) and seen["cover_thumbnail_url"]
            renamed = stream.next().json()
            assert (renamed["name"], renamed["cover_image_id"], renamed["cover_thumbnail_url"]) == ("Final", None, None)
            assert stream.pending() == 0
        replay = client.get(server.api("/changes")).json()["changes"]
        assert_absent(shown_feed([json.dumps(c, separators=(",", ":")) for c in replay], gone), gone, "/changes")


def shown_feed(datas: list[str], gone: dict[str, Any]) -> str:
    """Events' data as a link sees them, but for the `remove` op that names what left (so an open page drops it)."""
    removed = f'"image_ids":["{gone["id"]}"]'
    return "\n".join(d.replace(removed, "") if '"op":"remove"' in d else d for d in datas)


def test_a_replay_signs_no_cover_the_link_does_not_show(server: Server, owner: httpx.Client) -> None:
    """(b) A cover removed before the link existed comes back from the feed as null, in /changes and in the
    stream's replay, while the owner's stream of the same server still gets it signed."""
    world = World(server, owner)
    old_cover, kept = world.new_image(), world.new_image()
    shared = owner.post(server.api("/collections"),
                        json={"name": "Proofs", "image_ids": [old_cover["id"], kept["id"]]}).json()  # fmt: skip
    assert shared["cover_image_id"] == old_cover["id"]
    assert owner.patch(server.api(f"/collections/{shared['id']}"),
                       json={"op": "remove", "image_ids": [old_cover["id"]]}).status_code == 200  # fmt: skip
    made = owner.post(server.api("/shares"), json={"role": "viewer", "collection_id": shared["id"]}).json()
    owner_headers = {"Authorization": owner.headers["Authorization"], "Last-Event-ID": "0"}
    with checked_client() as client:
        assert client.get(server.url + made["path"]).status_code == 303
        cookie = {"Cookie": f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"}
        changes = client.get(server.api("/changes")).json()["changes"]
        saved = [c for c in changes if c["kind"] == "collection.saved"]
        assert len(saved) == 1 and saved[0]["data"]["image_ids"] == [kept["id"]]
        assert (saved[0]["data"]["cover_image_id"], saved[0]["data"]["cover_thumbnail_url"]) == (None, None)
        with sse(server.api("/events"), headers=owner_headers) as everything:
            mine = [everything.next() for _ in range(4)]  # two images, saved, updated: the owner's frames first
            assert mine[2].json()["cover_thumbnail_url"].startswith(f"/files/{old_cover['id']}/thumb")
            with sse(server.api("/events"), headers={**cookie, "Last-Event-ID": "0"}) as stream:
                replay = stream.take(3)  # kept, saved, updated
        assert [e.event for e in replay] == ["image.created", "collection.saved", "collection.updated"]
        for event in replay[1:]:
            assert_absent(event.data.replace(f'"image_ids":["{old_cover["id"]}"]', ""), old_cover, event.event)
            cover = event.json()["cover_thumbnail_url"]
            assert cover is None or cover.startswith(f"/files/{kept['id']}/thumb"), cover
        assert replay[1].json()["cover_thumbnail_url"] is None


def test_password_expired_revoked_and_forged_links(server: Server, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    secret = make_share(server, "--password", capsys=capsys)
    with checked_client() as client:
        form = client.get(f"{server.url}/s/{secret}", headers={"Accept": "text/html"})
        assert form.status_code == 200 and 'name="password"' in form.text
        assert_json_error(client.get(f"{server.url}/s/{secret}"), 401, "password_required")
        assert_json_error(open_link(client, server, secret, "wrong"), 401, "wrong_password")
        assert not client.cookies
        assert open_link(client, server, secret, "correct horse").status_code == 303
        assert client.get(server.api("/images")).status_code == 200
        # Revoked: the link and the sessions it opened stop at once.
        share_id = SQLiteAuthStore(server.data / "auth.sqlite").shares(server.project)[-1].id
        assert main(["share", "revoke", share_id, "--data", str(server.data)]) == 0
        assert_json_error(client.get(server.api("/images")), 401, "unauthenticated")
        assert_json_error(open_link(client, server, secret, "correct horse"), 410, "share_revoked")
        store = SQLiteAuthStore(server.data / "auth.sqlite")
        try:
            _, expired = store.create_share(project=server.project, role=Role.VIEWER, expires_at=time.time() - 1)
        finally:
            store.close()
        assert_json_error(open_link(client, server, expired), 410, "share_expired")
        assert_json_error(open_link(client, server, "A" * 32), 404, "unknown_share")
        page = client.get(f"{server.url}/s/{'B' * 32}", headers={"Accept": "text/html"})
        assert page.status_code == 404 and "no such share link" in page.text


def test_owners_manage_links_over_the_api(server: Server, owner: httpx.Client) -> None:
    made = owner.post(server.api("/shares"), json={"role": "viewer", "name": "Anna", "expires_in_s": 3600})
    assert made.status_code == 201
    body = made.json()
    assert body["url"] == f"{server.url}{body['path']}" and body["share"]["name"] == "Anna"
    assert body["share"]["expires_at"] == pytest.approx(time.time() + 3600, abs=60)
    assert [s["id"] for s in owner.get(server.api("/shares")).json()["shares"]] == [body["share"]["id"]]
    for bad in ({"role": "owner"}, {"role": "boss"}, {"expires_in_s": 5}, {"collection_id": "nope"}, {"x": 1}):
        assert owner.post(server.api("/shares"), json=bad).status_code in (400, 404), bad
    assert owner.delete(server.api(f"/shares/{body['share']['id']}")).json()["share"]["state"] == "revoked"
    assert_json_error(owner.delete(server.api("/shares/nope")), 404, "unknown_share")
    with checked_client() as client:
        assert_json_error(client.get(server.url + body["path"]), 410, "share_revoked")


# -- off loopback: an owner token printed once, and the limits ------------------------------


@pytest.fixture(scope="module")
def network_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server bound to every interface, with no token yet and a small upload rate."""
    tmp = tmp_path_factory.mktemp("network-server")
    with running_server(tmp, extra_args=("--address", "0.0.0.0", "--upload-rate", "3")) as server:
        yield server


def test_off_loopback_auth_is_on_and_an_owner_token_is_printed_once(network_server: Server) -> None:
    token = owner_token_printed(network_server)
    with checked_client() as client:
        assert_json_error(client.get(network_server.api("/images")), 401, "unauthenticated")
        signed = client.get(network_server.api("/images"), headers={"Authorization": f"Bearer {token}"})
        assert signed.status_code == 200
    listed = SQLiteAuthStore(network_server.data / "auth.sqlite").tokens()
    assert [(t.role, t.state()) for t in listed] == [(Role.OWNER, "active")]


def test_off_loopback_the_server_refuses_to_run_open(tmp_path: Path) -> None:
    env = {**os.environ, "FOTOFLO_AUTH": "off"}
    cmd = [sys.executable, "-m", "dashboard.cli", "serve", "--data", str(tmp_path), "--address", "0.0.0.0"]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "refusing to serve '0.0.0.0' without authentication" in done.stderr
    assert not (tmp_path / "fotoflo.sqlite").exists()


def test_uploads_and_failed_sign_ins_are_rate_limited(network_server: Server) -> None:
    token = owner_token_printed(network_server)
    with checked_client(headers={"Authorization": f"Bearer {token}"}) as client:
        statuses = [upload(client, network_server, ("a.jpg", small_jpeg(next(_seeds)))).status_code for _ in range(4)]
        assert statuses == [201, 201, 201, 429]
        refused = upload(client, network_server, ("a.jpg", small_jpeg(next(_seeds))))
        assert_json_error(refused, 429, "too_many_uploads")
        assert 1 <= int(refused.headers["Retry-After"]) <= 20
    with checked_client() as client:
        for _ in range(10):
            assert_json_error(sign_in(client, network_server, "fft_guess"), 401, "invalid_token")
        locked = sign_in(client, network_server, "fft_guess")  # another guess, too soon
        assert_json_error(locked, 429, "too_many_attempts")
        assert int(locked.headers["Retry-After"]) >= 1
        forged = client.get(network_server.api("/images"), headers={"Authorization": "Bearer fft_other"})
        assert_json_error(forged, 429, "too_many_attempts")
        # The right token is never refused for the guesses made from its address (issue 16, point 9).
        assert sign_in(client, network_server, token).status_code == 303
        api_call = client.get(network_server.api("/images"), headers={"Authorization": f"Bearer {token}"})
        assert api_call.status_code == 200
        assert client.get(f"{network_server.url}/healthz").json()["status"] == "ok"
    assert "Traceback" not in network_server.log()


# -- refused before the body ----------------------------------------------------------------


@pytest.mark.parametrize(("identity", "status"), [("anonymous", 401), ("forged", 401), ("viewer", 403)])
@pytest.mark.parametrize("declared", [100, 50 * 1024**2])
def test_an_unauthorized_upload_is_refused_before_any_body_byte(
    auth_server: AuthServer, server: Server, identity: str, status: int, declared: int
) -> None:
    # The body is announced and never sent: the answer must come without it, small or large.
    headers = {**auth_server.headers(identity), "Content-Length": str(declared),
               "Content-Type": "multipart/form-data; boundary=x"}  # fmt: skip
    with connect(server) as sock:
        send_head(sock, "POST", server.api("/upload"), headers)
        answer = read_answer(sock)
    assert answer.status == status and answer.headers["connection"] == "close"
    # A client that asks first (Expect: 100-continue) is told no, and never sends its body.
    with connect(server) as sock:
        send_head(sock, "POST", server.api("/upload"), {**headers, "Expect": "100-continue"})
        answer = read_answer(sock)
    assert answer.status == status and "100" not in answer.head.split("\r\n")[0]


def test_an_authorized_upload_that_asks_first_is_told_to_continue(auth_server: AuthServer, server: Server) -> None:
    body, content_type = multipart(("asked.jpg", small_jpeg(next(_seeds))))
    headers = {**auth_server.headers("editor"), "Content-Length": str(len(body)), "Content-Type": content_type,
               "Expect": "100-continue"}  # fmt: skip
    with connect(server) as sock:
        send_head(sock, "POST", server.api("/upload"), headers)
        assert sock.recv(64).startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        answer = read_answer(sock)
    assert answer.status == 201


# -- behind a reverse proxy ------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxied_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that believes 127.0.0.1 (a reverse proxy on this machine) about who its clients are."""
    tmp = tmp_path_factory.mktemp("proxied-server")
    args = ("--auth", "--trusted-proxy", "127.0.0.1", "--login-failures", "3")
    with running_server(tmp, extra_args=args) as server:
        yield server


def from_address(address: str) -> httpx.Client:
    """A client whose connections come from `address` (any 127.x.y.z reaches a loopback server)."""
    return checked_client(transport=httpx.HTTPTransport(local_address=address))


def cookie_flags(response: httpx.Response) -> list[bool]:
    """Per cookie set: whether it is `Secure`."""
    return ["secure" in [p.strip().lower() for p in c.split(";")] for c in response.headers.get_list("set-cookie")]


def test_behind_a_trusted_proxy_each_client_has_its_own_lockout(proxied_server: Server) -> None:
    token = owner_token_printed(proxied_server)
    images = proxied_server.api("/images")

    def guess(client: httpx.Client, forwarded_for: str) -> httpx.Response:
        return client.get(images, headers={"X-Forwarded-For": forwarded_for, "Authorization": "Bearer fft_guess"})

    with from_address("127.0.0.1") as proxy:
        for _ in range(3):
            assert_json_error(guess(proxy, "203.0.113.5"), 401, "invalid_token")
        assert_json_error(guess(proxy, "203.0.113.5"), 429, "too_many_attempts")
        # Another client behind the same proxy guesses on its own account.
        assert_json_error(guess(proxy, "198.51.100.7"), 401, "invalid_token")
        # What the client wrote before the proxy's hop is not believed: the right-most address is its own.
        assert_json_error(guess(proxy, "198.51.100.99, 203.0.113.5"), 429, "too_many_attempts")
        # The locked-out address's valid token works, through the API and the login form.
        signed = {"X-Forwarded-For": "203.0.113.5", "Authorization": f"Bearer {token}"}
        assert proxy.get(images, headers=signed).status_code == 200
        login = proxy.post(f"{proxied_server.url}/login", data={"token": token},
                           headers={"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"})  # fmt: skip
        assert login.status_code == 303 and cookie_flags(login) == [True, True]  # the client came over HTTPS
        plain = proxy.post(f"{proxied_server.url}/login", data={"token": token})
        assert plain.status_code == 303 and cookie_flags(plain) == [False, False]
    assert "failed sign-in from 203.0.113.5: invalid_token" in proxied_server.log()


def test_forwarding_headers_from_an_untrusted_peer_are_ignored(proxied_server: Server) -> None:
    token = owner_token_printed(proxied_server)
    images = proxied_server.api("/images")
    with from_address("127.0.0.2") as stranger:
        for n in range(3):  # a new "client" each time: it cannot dodge the lockout so
            forged = {"X-Forwarded-For": f"192.0.2.{n}", "Authorization": "Bearer fft_guess"}
            assert_json_error(stranger.get(images, headers=forged), 401, "invalid_token")
        forged = {"X-Forwarded-For": "192.0.2.200", "Authorization": "Bearer fft_guess"}
        assert_json_error(stranger.get(images, headers=forged), 429, "too_many_attempts")
        login = stranger.post(f"{proxied_server.url}/login", data={"token": token},
                              headers={"X-Forwarded-Proto": "https"})  # fmt: skip
        assert login.status_code == 303 and cookie_flags(login) == [False, False]
    log = proxied_server.log()
    assert "failed sign-in from 127.0.0.2: invalid_token" in log and "192.0.2." not in log


def test_api_routes_are_all_in_the_table_s_module() -> None:
    # Every handler class declares what each of its methods does (or is one of the open ones).
    open_handlers = {FileHandler, HealthHandler, NotFoundHandler}
    for _, handler, _ in routes(None):  # type: ignore[arg-type]
        methods = {m for m in ("get", "post", "patch", "delete") if m in vars(handler)}
        if handler not in open_handlers:
            assert methods <= set(handler.ACTIONS), handler  # type: ignore[attr-defined]


def test_each_route_s_declared_checks_name_groups_of_its_path() -> None:
    # What `admit()` checks is named by the path: a route that declares a collection or an image names it.
    for pattern, handler, _ in routes(None):  # type: ignore[arg-type]
        for method, allow in getattr(handler, "ACTIONS", {}).items():
            needs = {"project"} if allow.checks else set()
            needs |= {"collection_id"} if allow.collection is not None else set()
            needs |= {"image_id"} if allow.images == PATH else set()
            assert needs <= set(re.compile(pattern).groupindex), (pattern, method)


def test_a_handler_that_skips_its_declared_checks_answers_500(tmp_path: Path) -> None:
    class Careless(ProjectHandler):
        ACTIONS = {"get": Allow(Action.VIEW, project=True)}

        async def get(self, project: str) -> None:
            self.write_json({"project": project})  # no `await self.admit()` first

    app = App(Settings(data=tmp_path / "data", watch=None))

    async def fetch() -> httpx.Response:
        server = HTTPServer(web.Application([(r"/api/projects/(?P<project>[^/]+)", Careless, {"app": app})]))
        sockets = bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                return await client.get(f"http://127.0.0.1:{sockets[0].getsockname()[1]}/api/projects/default")
        finally:
            server.stop()

    try:
        response = run_loop(fetch())
    finally:
        app.stop()
    assert_json_error(response, 500, "internal_error")
