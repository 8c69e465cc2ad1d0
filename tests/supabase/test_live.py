"""Against a REAL Supabase project: only when `SUPABASE_URL` and `SUPABASE_KEY` are set (skipped otherwise).

The project needs `supabase/migrations/*.sql` applied (docs/supabase.md, "Set up a Supabase project for
Fotoflo"); the key is its service role key. Everything is written into a project of its own, `live-test-…`,
which is deleted again at the end (its Storage objects are content-addressed random bytes, also removed).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dashboard.events import ImageRecord
from dashboard.supabase import BUCKET, sync_client
from dashboard.supabase.blobs import SupabaseBlobs
from dashboard.supabase.bus import SupabaseBus
from dashboard.supabase.store import SupabaseStore
from tests.support.waiting import wait_until
from tests.test_bus_contract import Heard

URL, KEY = os.environ.get("SUPABASE_URL", ""), os.environ.get("SUPABASE_KEY", "")
pytestmark = pytest.mark.skipif(
    not (URL and KEY),
    reason="live Supabase test: set SUPABASE_URL and SUPABASE_KEY (the service role key of a project with "
    "supabase/migrations applied) to run it",
)


@pytest.fixture
def project() -> Iterator[str]:
    name = f"live-test-{secrets.token_hex(4)}"
    yield name
    client, http = sync_client(URL, KEY)
    try:
        collections = client.table("collections").select("id").eq("project", name).execute().data
        if collections:
            client.table("collection_items").delete().in_("collection_id", [c["id"] for c in collections]).execute()
        for table in ("changes", "collections", "image_versions", "images"):
            client.table(table).delete().eq("project", name).execute()
        client.table("projects").delete().eq("name", name).execute()
    finally:
        http.close()


def test_store_blobs_and_bus_on_a_real_project(project: str, tmp_path: Path) -> None:
    store = SupabaseStore(URL, KEY)
    blobs = SupabaseBlobs(URL, KEY, tmp_path / "cache")
    listener, publisher = SupabaseBus(URL, KEY, connect_wait_s=20), SupabaseBus(URL, KEY, connect_wait_s=20)
    heard = Heard()
    listener.subscribe(heard)
    data = secrets.token_bytes(256)
    sha = hashlib.sha256(data).hexdigest()
    try:
        assert listener.connected and publisher.connected
        # Realtime: a broadcast from another server, and the feed's own INSERT.
        publisher.publish(project, 999)
        wait_until(lambda: (project, 999) in heard.news(), timeout_s=20)
        store.ensure_project(project)
        image, change = store.add_image(
            ImageRecord(
                id=secrets.token_urlsafe(9), project=project, filename="live.jpg", sha256=sha, size_bytes=len(data),
                width=1, height=1, format="JPEG", mime="image/jpeg", captured_at="2025-01-01T00:00:00",
                camera_make=None, camera_model=None, created_at="2025-01-01T00:00:00.000Z",
            )
        )  # fmt: skip
        assert change is not None and store.changes(project) == [change]
        wait_until(lambda: (project, 1) in heard.news(), timeout_s=20)
        # Storage: upload, read back through a fresh cache, a signed URL anyone can fetch.
        blobs.put("original", sha, data)
        other = SupabaseBlobs(URL, KEY, tmp_path / "other-cache")
        try:
            assert other.path("original", sha).read_bytes() == data
        finally:
            other.close()
        assert httpx.get(blobs.signed_url("original", sha, 60), timeout=20).content == data
        assert store.set_rating(project, image.id, rating=5)[1] is not None
    finally:
        listener.close()
        publisher.close()
        client, http = sync_client(URL, KEY)
        try:
            client.storage.from_(BUCKET).remove([blobs.key("original", sha)])
        finally:
            http.close()
        blobs.close()
        store.close()
