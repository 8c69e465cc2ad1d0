"""`SupabaseBlobs` against the FAKE Storage API (`tests/supabase/fakes/fake_http.py`).

Content-addressed objects in the private bucket, a read-through cache for serving, signed URLs that
expire, keys it refuses, and the whole ingest through Supabase: store, Storage and the feed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from storage3.exceptions import StorageApiError

from dashboard.blobs import KINDS
from dashboard.bus import LocalBus
from dashboard.ingest import Ingestor
from dashboard.supabase.blobs import SupabaseBlobs
from dashboard.supabase.store import SupabaseStore
from tests.supabase.fakes.common import ANON_KEY, FAKE_URL, SERVICE_KEY
from tests.supabase.fakes.fake_http import FakeSupabaseHTTP
from tests.support.images import ImageFactory
from tests.support.waiting import wait_until


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def blobs(fake_http: FakeSupabaseHTTP, tmp_path: Path) -> Iterator[SupabaseBlobs]:
    blobs = SupabaseBlobs(FAKE_URL, SERVICE_KEY, tmp_path / "cache", transport=fake_http)
    yield blobs
    blobs.close()


def test_put_uploads_under_kind_and_sha_and_keeps_a_cached_copy(
    blobs: SupabaseBlobs, fake_http: FakeSupabaseHTTP, make_jpeg: ImageFactory
) -> None:
    data = make_jpeg((64, 48))
    key = sha(data)

    blobs.put("original", key, data)

    assert (fake_http.storage_dir / "fotoflo" / "original" / key[:2] / key).read_bytes() == data
    assert blobs.path("original", key).read_bytes() == data
    assert blobs.exists("original", key)
    assert not blobs.exists("thumb", key)


def test_another_server_fetches_a_blob_once_and_then_serves_it_from_its_cache(
    blobs: SupabaseBlobs, fake_http: FakeSupabaseHTTP, tmp_path: Path
) -> None:
    data = b"\x89PNG\r\n\x1a\n not a real png"
    blobs.put("preview", sha(data), data)
    other = SupabaseBlobs(FAKE_URL, SERVICE_KEY, tmp_path / "other-cache", transport=fake_http)
    try:
        assert other.exists("preview", sha(data))
        assert other.path("preview", sha(data)).read_bytes() == data
        downloads = sum(1 for method, path in fake_http.requests if method == "GET" and "/object/fotoflo/" in path)
        other.path("preview", sha(data))
        assert sum(1 for m, p in fake_http.requests if m == "GET" and "/object/fotoflo/" in p) == downloads == 1
        # A missing blob is a path with no file, as on disk: the file handler answers 404 missing_file.
        assert not other.path("original", "f" * 64).exists()
    finally:
        other.close()


def test_putting_the_same_key_twice_is_one_object(
    blobs: SupabaseBlobs, fake_http: FakeSupabaseHTTP, tmp_path: Path
) -> None:
    data = b"same content"
    blobs.put("thumb", sha(data), data)
    fresh = SupabaseBlobs(FAKE_URL, SERVICE_KEY, tmp_path / "fresh-cache", transport=fake_http)
    try:
        fresh.put("thumb", sha(data), data)  # Storage answers "Duplicate": content-addressed, so done
    finally:
        fresh.close()
    assert [p.name for p in (fake_http.storage_dir / "fotoflo").rglob("*") if p.is_file()] == [sha(data)]


def test_a_signed_url_serves_the_bytes_to_anyone_until_it_expires(
    blobs: SupabaseBlobs, fake_http: FakeSupabaseHTTP
) -> None:
    data = b"\xff\xd8\xff a jpeg, they say"
    blobs.put("original", sha(data), data)
    lasting, short = blobs.signed_url("original", sha(data), 3600), blobs.signed_url("original", sha(data), 1)
    with httpx.Client(transport=fake_http) as anyone:  # no key at all
        answer = anyone.get(lasting)
        assert (answer.status_code, answer.content, answer.headers["content-type"]) == (200, data, "image/jpeg")
        assert anyone.get(lasting.replace("/original/", "/thumb/")).status_code == 400  # the token names one object
        wait_until(lambda: anyone.get(short).status_code == 400, timeout_s=5)
        assert anyone.get(lasting).status_code == 200


@pytest.mark.parametrize("kind", ["../x", "originals", "", "thumb/.."])
def test_untrusted_keys_are_refused_before_any_request(
    blobs: SupabaseBlobs, fake_http: FakeSupabaseHTTP, kind: str
) -> None:
    before = len(fake_http.requests)
    for bad in ((kind, "ab" * 32), ("original", "AB" * 32), ("original", "../" + "a" * 61)):
        with pytest.raises(ValueError):
            blobs.put(*bad, b"x")
        with pytest.raises(ValueError):
            blobs.path(*bad)
    assert len(fake_http.requests) == before


def test_the_anon_key_cannot_upload_or_sign_unshared_files(
    blobs: SupabaseBlobs, fake_http: FakeSupabaseHTTP, tmp_path: Path
) -> None:
    data = b"private bytes"
    blobs.put("original", sha(data), data)
    anon = SupabaseBlobs(FAKE_URL, ANON_KEY, tmp_path / "anon-cache", transport=fake_http)
    try:
        with pytest.raises(StorageApiError):
            anon.put("original", sha(b"mine"), b"mine")
        with pytest.raises(StorageApiError):
            anon.signed_url("original", sha(data))
        assert not anon.exists("original", sha(data))  # hidden by the storage policy
    finally:
        anon.close()


def test_an_outage_raises_and_the_next_call_works(blobs: SupabaseBlobs, fake_http: FakeSupabaseHTTP) -> None:
    fake_http.outage = True
    with pytest.raises(StorageApiError):
        blobs.put("original", sha(b"during"), b"during")
    fake_http.outage = False
    blobs.put("original", sha(b"after"), b"after")
    assert blobs.exists("original", sha(b"after"))


def test_clean_temp_removes_cache_leftovers(blobs: SupabaseBlobs, tmp_path: Path) -> None:
    leftover = tmp_path / "cache" / "original" / "ab" / ("ab" * 32 + ".tmp-dead")
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half")
    assert blobs.clean_temp() == 1
    assert not leftover.exists()


def test_ingest_through_supabase_stores_files_rows_and_the_feed(
    fake_http: FakeSupabaseHTTP, blobs: SupabaseBlobs, make_jpeg: ImageFactory
) -> None:
    store = SupabaseStore(FAKE_URL, SERVICE_KEY, transport=fake_http)
    try:
        store.ensure_project("shoot")
        ingestor = Ingestor(store, blobs, LocalBus())
        first = ingestor.ingest(make_jpeg((800, 600), make="Canon", model="EOS R6"), "shoot", filename="a.jpg")
        again = ingestor.ingest(make_jpeg((800, 600), make="Canon", model="EOS R6"), "shoot", filename="b.jpg")

        assert first.created and not again.created and again.image.id == first.image.id
        assert [c.kind for c in store.changes("shoot")] == ["image.created"]
        for kind in KINDS:
            assert blobs.exists(kind, first.image.sha256)
        assert store.get_image(first.image.id) == first.image
        assert first.image.camera_model == "EOS R6"
    finally:
        store.close()
