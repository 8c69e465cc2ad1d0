"""`SupabaseStore` through the FAKE Supabase HTTP API, beyond the `Store` contract.

The contract itself (tests/test_store*.py) runs on this store too: the `store_backend` fixture's
`supabase` backend. Here: what is Supabase's own: a project without the migrations, outages, text
PostgreSQL cannot hold, ids PostgREST must quote, long id lists, and the settings that select it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from postgrest.exceptions import APIError

from dashboard.backends import blobs_for, bus_kind, hot_folder_lock, store_for, store_kind, supabase_project
from dashboard.cli import build_parser
from dashboard.config import Settings
from dashboard.events import Device, ImageRecord
from dashboard.store import UnknownImage, UnknownProject
from dashboard.supabase.blobs import SupabaseBlobs
from dashboard.supabase.store import IDS_PER_REQUEST, SchemaMissing, SupabaseStore
from tests.supabase.fakes.common import FAKE_URL, SERVICE_KEY, SHIM, apply_sql
from tests.supabase.fakes.fake_http import FakeSupabaseHTTP
from tests.support.records import CANON_R5, image_record
from tests.support.services import PostgresServer

_numbers = itertools.count(1)


def record(project: str = "alpha", **overrides: Any) -> ImageRecord:
    n = next(_numbers)
    fields: dict[str, Any] = {**CANON_R5, "created_at": "2024-05-17T14:03:10.000Z", **overrides}
    return image_record(n, project, id_prefix="sb", content=f"supabase {n}", **fields)


@pytest.fixture
def store(fake_http: FakeSupabaseHTTP) -> Iterator[SupabaseStore]:
    store = SupabaseStore(FAKE_URL, SERVICE_KEY, transport=fake_http)
    store.ensure_project("alpha")
    yield store
    store.close()


def test_a_project_without_the_migrations_is_refused_with_what_to_do(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database(empty=True)
    fake = FakeSupabaseHTTP(url, tmp_path / "storage")
    try:
        apply_sql(url, SHIM)
        with pytest.raises(SchemaMissing, match=r"supabase/migrations"):
            SupabaseStore(FAKE_URL, SERVICE_KEY, transport=fake)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE FUNCTION public.fotoflo_schema_version() RETURNS integer LANGUAGE sql AS 'SELECT 99'")
            conn.execute("GRANT EXECUTE ON FUNCTION public.fotoflo_schema_version() TO service_role")
        with pytest.raises(SchemaMissing, match="version 99"):
            SupabaseStore(FAKE_URL, SERVICE_KEY, transport=fake)
    finally:
        fake.shutdown()
        postgres_server.drop_database(url)


def test_an_outage_fails_the_call_and_the_store_recovers(store: SupabaseStore, fake_http: FakeSupabaseHTTP) -> None:
    stored, _ = store.add_image(record())
    fake_http.outage = True
    with pytest.raises(APIError):
        store.add_image(record())
    with pytest.raises(APIError):
        store.changes("alpha")
    fake_http.outage = False
    assert [c.seq for c in store.changes("alpha")] == [1]  # the failed write wrote nothing
    assert store.add_image(record())[0].seq == 2
    assert store.get_image(stored.id) == stored


def test_nul_in_text_is_stored_as_a_replacement_character(store: SupabaseStore) -> None:
    stored, _ = store.add_image(
        record(filename="a\x00b.jpg", camera_model="R\x005", exif={"lens": "RF\x0050"}),
        device=Device("dev-1", "Studio\x00Mac"),
    )
    assert (stored.filename, stored.camera_model, stored.exif) == ("a\ufffdb.jpg", "R\ufffd5", {"lens": "RF\ufffd50"})
    assert store.image_versions("alpha", stored.id)[0].device_name == "Studio\ufffdMac"


def test_ids_that_postgrest_must_quote_and_long_id_lists(store: SupabaseStore) -> None:
    odd = [store.add_image(record(id=i))[0].id for i in ("a,b", 'q"uote', "(paren)", "back\\slash", "dot.ted")]
    many = [f"ghost-{n}" for n in range(IDS_PER_REQUEST * 2)]
    asked = [*many[:150], *reversed(odd), *many[150:]]

    assert [i.id for i in store.get_images("alpha", asked)] == list(reversed(odd))
    assert store.get_image('q"uote') is not None
    saved, _ = store.save_collection("alpha", "Odd", odd)
    assert store.get_collection("alpha", saved.id) == saved


def test_errors_name_the_project_and_images(store: SupabaseStore) -> None:
    with pytest.raises(UnknownImage) as missing:
        store.save_collection("alpha", "Ghosts", ["ghost-1", "ghost-2"])
    assert (missing.value.project, missing.value.image_ids) == ("alpha", ["ghost-1", "ghost-2"])
    with pytest.raises(UnknownProject, match="nope"):
        store.image_versions("nope", "x")
    with pytest.raises(UnknownImage):
        store.image_versions("alpha", "x")


def test_writes_are_one_call_each_through_the_functions(store: SupabaseStore, fake_http: FakeSupabaseHTTP) -> None:
    before = len(fake_http.requests)
    image, _ = store.add_image(record())
    store.set_rating("alpha", image.id, rating=5)
    store.save_collection("alpha", "Best", [image.id])
    assert [p for _, p in fake_http.requests[before:]] == [
        "/rest/v1/rpc/fotoflo_add_image", "/rest/v1/rpc/fotoflo_set_rating", "/rest/v1/rpc/fotoflo_save_collection",
    ]  # fmt: skip


# -- selected by the settings -------------------------------------------------------------------


def test_serve_and_ingest_take_the_supabase_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    parser = build_parser()
    args = parser.parse_args(["serve", "--supabase-url", "https://ref.supabase.co", "--supabase-key", "k"])
    assert (args.supabase_url, args.supabase_key) == ("https://ref.supabase.co", "k")
    args = parser.parse_args(["ingest", "x.jpg", "--supabase-url", "https://ref.supabase.co", "--supabase-key", "k"])
    assert args.supabase_url == "https://ref.supabase.co"
    monkeypatch.setenv("SUPABASE_URL", "https://env.supabase.co")
    monkeypatch.setenv("SUPABASE_KEY", "env-key")
    settings = Settings.from_env(data=tmp_path)
    assert supabase_project(settings) == ("https://env.supabase.co", "env-key")
    assert supabase_project(Settings.from_env(data=tmp_path, supabase_url="https://cli.supabase.co")) == (
        "https://cli.supabase.co",
        "env-key",
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"supabase_url": "https://ref.supabase.co"}, "go together"),
        ({"supabase_key": "k"}, "go together"),
        ({"supabase_url": "https://ref.supabase.co", "supabase_key": "k", "db": "postgresql://db/x"}, "give one"),
    ],
)
def test_incomplete_or_conflicting_settings_are_refused(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        supabase_project(Settings(**values))  # type: ignore[arg-type]


def test_the_settings_open_the_supabase_store_and_blobs(fake_http: FakeSupabaseHTTP, tmp_path: Path) -> None:
    settings = Settings(data=tmp_path / "data", supabase_url=FAKE_URL, supabase_key=SERVICE_KEY)
    store, blobs = store_for(settings, transport=fake_http), blobs_for(settings, transport=fake_http)
    try:
        assert isinstance(store, SupabaseStore) and isinstance(blobs, SupabaseBlobs)
        assert store_kind(store) == "supabase"
        assert hot_folder_lock(store, "k") is None  # every server watches; ingest is idempotent by content
        assert blobs.cache.root == tmp_path / "data" / "blob-cache"
    finally:
        store.close()
        blobs.close()


def test_the_settings_open_realtime_as_the_bus(fake_realtime: Any) -> None:
    from dashboard.backends import bus_for
    from dashboard.bus import LocalBus
    from dashboard.supabase.bus import SupabaseBus

    settings = Settings(supabase_url=fake_realtime.url, supabase_key=SERVICE_KEY)
    assert isinstance(bus_for(settings, server=False), LocalBus)  # `fotoflo ingest`: Realtime announces its rows
    bus = bus_for(settings)
    try:
        assert isinstance(bus, SupabaseBus) and bus_kind(bus) == "supabase" and bus.connected
    finally:
        bus.close()


def test_long_lists_are_read_in_pages(store: SupabaseStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Supabase's PostgREST cuts every answer at its "Max rows" (1000): lists that can be longer page.
    monkeypatch.setattr("dashboard.supabase.store.PAGE_ROWS", 2)
    for project in ("gamma", "beta", "delta"):
        store.ensure_project(project)
    made = [store.save_collection("alpha", f"C{n}", [])[0] for n in range(5)]

    assert store.projects() == ["alpha", "beta", "delta", "gamma"]
    assert store.list_collections("alpha") == made[::-1]
