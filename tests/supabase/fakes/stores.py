"""`SupabaseStore`s on the fake HTTP API, for the store contract suite (`tests/support/services.py`), and the
fake under the stores a command opens by itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.supabase.fakes.common import FAKE_URL, SERVICE_KEY, create_supabase_database
from tests.supabase.fakes.fake_http import FakeSupabaseHTTP
from tests.support.services import PostgresServer, StoreBackend


@contextmanager
def supabase_store_backend(server: PostgresServer, tmp_path: Path) -> Iterator[StoreBackend]:
    """Opens `SupabaseStore`s (service role) on one fresh database behind one `FakeSupabaseHTTP`."""
    from dashboard.supabase.store import SupabaseStore

    url = create_supabase_database(server)
    fake = FakeSupabaseHTTP(url, tmp_path / "fake-storage")
    backend = StoreBackend("supabase", url, opener=lambda: SupabaseStore(FAKE_URL, SERVICE_KEY, transport=fake))
    try:
        yield backend
    finally:
        backend.close_all()
        fake.shutdown()
        server.drop_database(url)


def route_clients_to(monkeypatch: pytest.MonkeyPatch, fake: FakeSupabaseHTTP) -> None:
    """Every Supabase store a command opens by itself (`fotoflo token|share --supabase-url …` in this process)
    talks to `fake`: its clients get the fake as their transport, as tests give it to the stores they open."""
    from dashboard.supabase import sync_client

    def through_fake(url: str, key: str, **options: Any) -> Any:
        return sync_client(url, key, **{**options, "transport": fake})

    for module in ("dashboard.supabase.store", "dashboard.supabase.auth"):
        monkeypatch.setattr(f"{module}.sync_client", through_fake)
