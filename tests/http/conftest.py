"""Fixtures of the HTTP tests that need authentication: one `fotoflo serve --auth` per test module, a project
of each test's own on it, and its owner's client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.auth import AuthServer, running_auth_server
from tests.support.servers import Server, fresh_project


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    with running_auth_server(tmp_path_factory.mktemp("auth-server")) as server:
        yield server


@pytest.fixture
def auth_project(auth_server: AuthServer, request: pytest.FixtureRequest) -> Iterator[Server]:
    """A project of this test's own on the module's server, which must log no traceback meanwhile.
    (Not named `server`: the other HTTP tests use the open server of `tests/conftest.py` by that name.)"""
    logged = len(auth_server.server.log())
    yield fresh_project(auth_server.server, request.node.name)
    assert "Traceback" not in auth_server.server.log()[logged:], auth_server.server.log()[logged:]


@pytest.fixture
def owner(auth_server: AuthServer) -> Iterator[httpx.Client]:
    with auth_server.client("owner") as client:
        yield client
