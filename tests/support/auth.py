"""A real `fotoflo serve --auth` with one token per role, and the people who use it: token holders and guests
who opened a share link and gave their name."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dashboard.auth import Role, SQLiteAuthStore
from dashboard.auth.access import CSRF_COOKIE, CSRF_HEADER
from tests.support.api import checked_client, upload
from tests.support.images import small_jpeg
from tests.support.servers import Server, running_server

_seeds = itertools.count(50_000)


@dataclass
class AuthServer:
    server: Server
    tokens: dict[str, str]  # identity (a role's label, or "outsider") → bearer token

    def headers(self, identity: str) -> dict[str, str]:
        if identity == "anonymous":
            return {}
        if identity == "forged":
            return {"Authorization": "Bearer fft_" + "A" * 43}
        return {"Authorization": f"Bearer {self.tokens[identity]}"}

    def client(self, identity: str) -> httpx.Client:
        return checked_client(headers=self.headers(identity))


@contextmanager
def running_auth_server(
    tmp: Path, *, extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Iterator[AuthServer]:
    """A server with authentication on, a token per role, and an owner token of another project ("outsider").

    `extra_args` and `env` are added to its command line and environment.
    """
    store = SQLiteAuthStore(tmp / "data" / "auth.sqlite")
    tokens = {role.label: store.create_token(name=f"the {role.label}", role=role)[1] for role in Role}
    tokens["outsider"] = store.create_token(name="another project's owner", role=Role.OWNER, project="elsewhere")[1]
    store.close()
    # Many refusals on purpose in the tests: the lock-out after failed sign-ins is tested on its own server.
    args = ("--auth", "--login-failures", "100000", *extra_args)
    with running_server(tmp, extra_args=args, env=env) as server:
        yield AuthServer(server, tokens)


def new_images(client: httpx.Client, server: Server, count: int) -> list[str]:
    """Upload `count` small JPEGs to the server's project; their ids."""
    ids = []
    for _ in range(count):
        response = upload(client, server, (f"img-{next(_seeds)}.jpg", small_jpeg(next(_seeds))))
        assert response.status_code == 201, response.text
        ids.append(response.json()["images"][0]["id"])
    return ids


def make_link(owner: httpx.Client, server: Server, **fields: Any) -> str:
    """A new share link of the server's project (a client's unless `role` says otherwise); its path."""
    made = owner.post(server.api("/shares"), json={"role": "client", **fields})
    assert made.status_code == 201, made.text
    return str(made.json()["path"])


@dataclass
class Guest:
    client: httpx.Client
    server: Server

    @property
    def csrf(self) -> dict[str, str]:
        return {CSRF_HEADER: self.client.cookies[CSRF_COOKIE]}

    def mark(self, image_id: str) -> httpx.Response:
        return self.client.put(self.server.api(f"/images/{image_id}/favorite"), headers=self.csrf)

    def unmark(self, image_id: str) -> httpx.Response:
        return self.client.delete(self.server.api(f"/images/{image_id}/favorite"), headers=self.csrf)


@contextmanager
def guest(server: Server, link: str, name: str, email: str | None = None) -> Iterator[Guest]:
    """A browser that opened `link` and gave its name (and e-mail)."""
    with checked_client() as client:
        form = {"name": name, **({"email": email} if email else {})}
        opened = client.post(server.url + link, data=form, headers={"Origin": server.url})
        assert opened.status_code == 303, opened.text
        assert opened.headers["location"] == f"/?project={server.project}"
        yield Guest(client, server)
