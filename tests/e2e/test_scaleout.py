"""Two servers on one PostgreSQL and Redis: an upload in a window of A appears in a window of B, live."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import photo_jpeg
from tests.e2e.helpers import badge_state, tile_ids
from tests.support.waiting import wait_until


def test_an_upload_on_server_a_appears_in_a_browser_on_server_b(server_factory, pg_url, redis_server, open_page):
    args = ("--db", pg_url, "--bus", redis_server.url)
    a, b = server_factory(extra_args=args), server_factory(extra_args=args)
    on_a, on_b = open_page(a.url), open_page(b.url)
    assert tile_ids(on_a) == tile_ids(on_b) == []

    on_a.locator("[data-testid=upload]").set_input_files(
        files=[{"name": "from-server-a.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg(7)}]
    )

    wait_until(lambda: len(tile_ids(on_b)) == 1, timeout_s=15)
    [image] = httpx.get(b.api("/images")).json()["images"]
    assert image["filename"] == "from-server-a.jpg"
    assert tile_ids(on_b) == [image["id"]]
    # The tile's thumbnail, signed by B, loads from B (the blob directory is shared).
    wait_until(lambda: on_b.locator(f"[data-image-id='{image['id']}'] img").evaluate("i => i.naturalWidth") > 0)
    assert badge_state(on_a) == badge_state(on_b) == "live"
