"""Signing in, in a real browser against `fotoflo serve --auth`: the page needs a session, a share link
shows only its collection, and the page's writes (a rating, an upload) carry the CSRF token."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from dashboard.auth import Role, SQLiteAuthStore
from tests.e2e.conftest import photo_jpeg
from tests.e2e.helpers import tile_ids
from tests.support.servers import ServerFactory
from tests.support.waiting import wait_until

POOL = "[data-testid=collection-pool]"


def pool_ids(page: Any) -> list[str]:
    return list(page.eval_on_selector_all(f"{POOL} [data-image-id]", "ts => ts.map(t => t.dataset.imageId)"))


def test_login_and_a_client_s_share_link_in_the_browser(
    server_factory: ServerFactory, tmp_path: Path, browser: Any, open_page: Callable[..., Any]
) -> None:
    store = SQLiteAuthStore(tmp_path / "data" / "auth.sqlite")
    owner, editor = (store.create_token(name=r.label, role=r)[1] for r in (Role.OWNER, Role.EDITOR))
    store.close()
    server = server_factory(extra_args=("--auth", "--no-watch"))
    with httpx.Client(timeout=15, headers={"Authorization": f"Bearer {owner}"}) as api:
        ids = []
        for seed in range(3):
            sent = api.post(server.api("/upload"), files={"file": (f"p{seed}.jpg", photo_jpeg(seed))})
            ids.append(sent.json()["images"][0]["id"])
        proofs = api.post(server.api("/collections"), json={"name": "Proofs", "image_ids": ids[:2]}).json()
        link = api.post(server.api("/shares"), json={"role": "client", "collection_id": proofs["id"]}).json()

        # No session: the page is the login form; an editor signs in and uploads through the page.
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(server.url + "/")
            assert "/login" in page.url
            page.fill("input[name=token]", editor)
            page.click("button[type=submit]")
            page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=20_000)
            assert sorted(tile_ids(page)) == sorted(ids)
            page.locator("[data-testid=upload]").set_input_files(
                files=[{"name": "signed-in.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg(50)}]
            )
            wait_until(lambda: len(tile_ids(page)) == 4, timeout_s=15)
            assert api.get(server.api("/images?limit=1")).json()["images"][0]["filename"] == "signed-in.jpg"
        finally:
            context.close()

        # The client's link: Collection mode on the collection's images alone, and their rating sticks.
        client = open_page(server.url + link["path"], guest="Anna")
        assert "mode=collection" in client.url
        wait_until(lambda: sorted(pool_ids(client)) == sorted(ids[:2]), timeout_s=15)
        client.locator(f"{POOL} [data-image-id='{ids[0]}']").hover()
        client.keyboard.press("4")
        wait_until(lambda: api.get(server.api(f"/images/{ids[0]}")).json()["rating"] == 4, timeout_s=10)
        assert not client.console.errors, client.console.errors
