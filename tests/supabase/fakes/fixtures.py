"""pytest fixtures for the Supabase fakes (registered in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.supabase.fakes.common import create_supabase_database
from tests.supabase.fakes.fake_http import FakeSupabaseHTTP
from tests.supabase.fakes.fake_realtime import FakeRealtime
from tests.support.services import PostgresServer


@pytest.fixture
def supabase_db(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database with the Supabase shim and Fotoflo's Supabase migrations; dropped after the test."""
    url = create_supabase_database(postgres_server)
    yield url
    postgres_server.drop_database(url)


@pytest.fixture
def fake_http(supabase_db: str, tmp_path: Path) -> Iterator[FakeSupabaseHTTP]:
    """A FakeSupabaseHTTP on `supabase_db`, its Storage in a temp directory: the `transport` to give the clients."""
    fake = FakeSupabaseHTTP(supabase_db, tmp_path / "fake-storage")
    yield fake
    fake.shutdown()


@pytest.fixture
def fake_realtime(supabase_db: str) -> Iterator[FakeRealtime]:
    """A FakeRealtime fed by `supabase_db`; its `url` is the Supabase URL to give the clients."""
    server = FakeRealtime(supabase_db).start()
    yield server
    server.stop()
