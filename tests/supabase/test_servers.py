"""Two Fotoflo servers on one Supabase project (the FAKES of `tests/supabase/fakes/`), through the HTTP API.

Uploads land on server A; a gallery's event stream on server B gets each one exactly once, in order,
while Realtime errors its channel and drops the subscription of a reconnect; B serves the files it
never stored, from Storage.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dashboard.app import App
from dashboard.config import Settings
from dashboard.embedded import BackgroundServer
from dashboard.supabase.blobs import SupabaseBlobs
from dashboard.supabase.bus import SupabaseBus
from dashboard.supabase.store import SupabaseStore
from tests.supabase.fakes.common import FAKE_URL, SERVICE_KEY
from tests.supabase.fakes.fake_http import FakeSupabaseHTTP
from tests.supabase.fakes.fake_realtime import FakeRealtime
from tests.support.images import jpeg_bytes
from tests.support.sse import sse
from tests.support.waiting import wait_until

PROJECT = "shoot"


@pytest.fixture
def servers(supabase_db: str, fake_realtime: FakeRealtime, tmp_path: Path) -> Iterator[list[BackgroundServer]]:
    fake = FakeSupabaseHTTP(supabase_db, tmp_path / "storage")
    started: list[BackgroundServer] = []
    blobs: list[SupabaseBlobs] = []
    try:
        for name in ("a", "b"):
            data = tmp_path / name
            settings = Settings(data=data, watch=None, project=PROJECT, secret="s" * 32, auth=False)
            blobs.append(SupabaseBlobs(FAKE_URL, SERVICE_KEY, data / "blob-cache", transport=fake))
            fotoflo = App(
                settings,
                store=SupabaseStore(FAKE_URL, SERVICE_KEY, transport=fake),
                blobs=blobs[-1],
                bus=SupabaseBus(fake_realtime.url, SERVICE_KEY, settle_s=0.3, confirm_timeout_s=0.5),
            )
            started.append(BackgroundServer(fotoflo).start())
        yield started
    finally:
        for server in started:
            server.stop()
        for b in blobs:
            b.close()
        fake.shutdown()


def token(server: BackgroundServer) -> dict[str, str]:
    """A background server answers only requests with its process token (see dashboard/embedded.py)."""
    return {"Authorization": f"Bearer {server.token}"}


def upload(client: httpx.Client, server: BackgroundServer, *seeds: int) -> list[int]:
    files = [("file", (f"{n}.jpg", jpeg_bytes((48, 32), seed=n), "image/jpeg")) for n in seeds]
    answer = client.post(f"{server.url}/api/projects/{PROJECT}/upload", files=files, headers=token(server))
    assert answer.status_code == 201, answer.text
    return [image["seq"] for image in answer.json()["images"]]


def test_uploads_on_a_stream_to_b_exactly_once_whatever_realtime_does(
    servers: list[BackgroundServer], fake_realtime: FakeRealtime
) -> None:
    a, b = servers
    events = f"{b.url}/api/projects/{PROJECT}/events?after=0"
    with httpx.Client(timeout=30) as client, sse(events, headers=token(b)) as stream:
        sent = upload(client, a, 1, 2, 3)
        fake_realtime.channel_error_all()
        sent += upload(client, a, 4, 5)
        fake_realtime.drop_next_subscriptions(1)
        fake_realtime.disconnect_all()
        sent += upload(client, a, 6, 7)
        received = stream.take(len(sent), timeout_s=20)
        sent += upload(client, a, 8)  # a repeat of anything before would arrive before this one
        received += stream.take(1, timeout_s=20)

        assert [int(e.id or 0) for e in received] == sent == list(range(1, 9))
        wait_until(lambda: fake_realtime.joins >= 5, timeout_s=10)  # 2, 2 after the error, the dropped one, …
        last = received[-1].json()
        thumb = client.get(f"{b.url}{last['thumbnail_url']}")  # B never stored it: fetched from Storage
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
