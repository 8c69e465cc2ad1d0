"""A share link's rules and QR code in a real browser: the wall (and the slideshow) shows a chosen link's QR
code in a corner, and a `preview` link's guest is offered the preview, never the original."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from axe_playwright_python.sync_playwright import Axe

from dashboard import qrcodes
from dashboard.auth import Role, SQLiteAuthStore
from tests.e2e.conftest import photo_jpeg
from tests.support.servers import ServerFactory
from tests.support.waiting import wait_until

QR = "[data-testid=wall-qr]"


def test_the_wall_shows_a_link_s_qr_code_and_a_preview_link_offers_no_original(
    server_factory: ServerFactory, tmp_path: Path, browser: Any, open_page: Callable[..., Any]
) -> None:
    store = SQLiteAuthStore(tmp_path / "data" / "auth.sqlite")
    owner = store.create_token(name="owner", role=Role.OWNER)[1]
    store.close()
    server = server_factory(extra_args=("--auth", "--no-watch"))
    with httpx.Client(timeout=15, headers={"Authorization": f"Bearer {owner}"}) as api:
        sent = api.post(server.api("/upload"), files={"file": ("IMG_0001.JPG", photo_jpeg(1))})
        image_id = sent.json()["images"][0]["id"]
        link = api.post(server.api("/shares"), json={"role": "client", "download": "preview"}).json()

    # The owner's wall, named the link: its QR code in a corner, the link's URL on this server.
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(server.url + "/login")
        page.fill("input[name=token]", owner)
        page.click("button[type=submit]")
        page.wait_for_selector("[data-testid=live-indicator]", timeout=20_000)
        page.goto(f"{server.url}/?mode=wall&qr={link['path']}")
        qr = page.locator(QR)
        qr.wait_for(state="visible", timeout=20_000)
        assert qr.inner_text() == "Scan to see the live gallery"
        assert qr.locator("img").get_attribute("src") == qrcodes.svg_data_url(server.url + link["path"])
        page.set_viewport_size({"width": 390, "height": 844})
        wait_until(lambda: (box := qr.bounding_box()) is not None and box["x"] + box["width"] <= 390)
        box = qr.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 844 and box["width"] >= 100
        found = Axe().run(page).response["violations"]
        bad = [v["id"] for v in found if v["impact"] in ("serious", "critical")]
        assert not bad, bad
        # The slideshow, for the same room, shows it too.
        page.goto(f"{server.url}/?mode=slideshow&qr={link['path']}")
        page.locator(QR).wait_for(state="visible", timeout=20_000)
        assert page.locator(f"{QR} img").get_attribute("src") == qrcodes.svg_data_url(server.url + link["path"])
        # A secret that is no link's shows nothing (and the wall still runs).
        page.goto(f"{server.url}/?mode=wall&qr=/s/not-a-link")
        page.wait_for_selector("[data-testid=live-indicator]", timeout=20_000)
        assert page.locator(QR).count() == 0
    finally:
        context.close()

    # The preview link's guest: the lightbox offers the preview (a JPEG's name), not the original.
    guest = open_page(server.url + link["path"], guest="Anna")
    guest.locator(f"[data-image-id='{image_id}']").first.click()
    download = guest.locator("[data-testid=download]")
    wait_until(lambda: download.is_visible())
    href = download.get_attribute("href") or ""
    assert "/preview?" in href and "/original" not in href
    assert download.inner_text() == "Download preview" and download.get_attribute("download") == "IMG_0001.jpg"
    assert not guest.console.errors, guest.console.errors
