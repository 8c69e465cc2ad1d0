"""The German page: a browser that asks for German (`locale="de-DE"`, so `Accept-Language: de-DE`) gets the
gallery, its first paint and the sign-in page in German, numbers and dates as Germans write them, and the
header's language switch takes it back to English for good."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from dashboard.auth import Role, SQLiteAuthStore
from tests.e2e.conftest import photo_jpeg
from tests.support.servers import ServerFactory
from tests.support.waiting import wait_until

BADGE = "[data-testid=live-indicator]"
UPLOAD_LABEL = ".ff-header label.ff-button"


def german_page(browser: Any, url: str) -> Any:
    context = browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url)
    return page


def test_the_gallery_in_german_and_the_switch_to_english(server_factory: ServerFactory, browser: Any) -> None:
    server = server_factory(extra_args=("--no-watch",))
    for seed in range(3):
        sent = httpx.post(server.api("/upload"), files={"file": (f"p{seed}.jpg", photo_jpeg(seed, exif=False))})
        assert sent.status_code == 201, sent.text
    # The first paint is German already, before the bundles run.
    html = httpx.get(server.url + "/", headers={"Accept-Language": "de-DE,de;q=0.9"}, timeout=30).text
    assert '<span class="ff-count">3 Bilder</span>' in html and 'documentElement.lang = "de"' in html
    assert '<label class="ff-button">Hochladen</label>' in html
    assert '<label class="ff-button">Upload</label>' in httpx.get(server.url + "/", timeout=30).text
    page = german_page(browser, server.url + "/")
    try:
        page.wait_for_selector(f"{BADGE}[data-state=live]", timeout=20_000)
        assert page.evaluate("() => document.documentElement.lang") == "de"
        assert page.locator("[data-testid=image-count]").inner_text() == "3 Bilder"
        assert page.locator(BADGE).text_content() == "Live"
        assert page.locator(BADGE).get_attribute("title") == "Verbunden: neue Bilder erscheinen sofort"
        assert page.locator(UPLOAD_LABEL).inner_text().strip() == "Hochladen"
        assert page.locator("[data-testid=mode] [data-mode=grid]").inner_text() == "Einzeln"
        assert page.locator("[data-testid=filter-flag]").get_attribute("aria-label") == (
            "Ausgewählte, abgelehnte oder unmarkierte Bilder zeigen"
        )
        tile = page.locator(".ff-grid [data-image-id]").first
        assert tile.locator(".ff-check").get_attribute("aria-label").endswith(".jpg auswählen")
        # Dates as Germans write them: the tile's time is de-DE's, not en-US's.
        captured = httpx.get(server.api("/images?limit=1")).json()["images"][0]["captured_at"]
        german, american = page.evaluate(
            "iso => ['de-DE', 'en-US'].map((l) => new Date(iso).toLocaleString(l))",
            captured if captured.endswith("Z") or "+" in captured[10:] else captured + "Z",
        )
        assert german != american
        assert tile.locator(".ff-time").inner_text() == german

        # The lightbox's details are German.
        tile.locator(".ff-box").click()
        page.locator("[data-testid=lightbox]").wait_for()
        details = page.locator("[data-testid=lightbox] dt").all_inner_texts()
        assert "Aufgenommen" in details and "Größe" in details
        assert page.locator("[data-testid=download]").inner_text() == "Original herunterladen"
        page.keyboard.press("Escape")
        page.locator("[data-testid=lightbox]").wait_for(state="hidden")

        # New arrivals are announced in German, and counted in German.
        # (In one request: two uploads one after the other may come more than the announcer's quiet second
        # apart on a busy machine, and are then rightly told as two.)
        both = [("file", (f"n{seed}.jpg", photo_jpeg(seed, exif=False))) for seed in range(10, 12)]
        assert httpx.post(server.api("/upload"), files=both, timeout=30).status_code == 201
        announcer = page.locator("[data-testid=announcer]")
        wait_until(lambda: announcer.inner_text() == "2 neue Fotos", timeout_s=10)
        wait_until(lambda: page.locator("[data-testid=image-count]").inner_text() == "5 Bilder", timeout_s=10)
        # A refused upload's reason in German; the server's own words, naming the cause, on hover.
        page.locator("[data-testid=upload]").set_input_files(
            files=[{"name": "notiz.jpg", "mimeType": "image/jpeg", "buffer": b"kein Foto"}]
        )
        refused = page.locator("[data-testid=upload-error] .ff-up-status")
        refused.wait_for(timeout=10_000)
        assert refused.inner_text() == "das ist kein Bild"
        assert "content is not JPEG" in refused.get_attribute("title")
        # A number with its thousands: grouped as in German (the page's own formatter).
        assert page.evaluate("() => new Intl.NumberFormat(document.documentElement.lang).format(12345)") == "12.345"

        # The switch in the header: English now, and after a reload too (the cookie wins over Accept-Language).
        switch = page.locator("[data-testid=language]")
        assert switch.get_attribute("aria-label") == "Sprache"
        switch.select_option("en")
        wait_until(lambda: page.locator(UPLOAD_LABEL).inner_text().strip() == "Upload", timeout_s=10)
        # The gallery is built again in the new language: its count comes with its first page, a moment later.
        wait_until(lambda: page.locator("[data-testid=image-count]").inner_text() == "5 images", timeout_s=10)
        assert page.evaluate("() => document.documentElement.lang") == "en"
        cookie = {c["name"]: c for c in page.context.cookies()}["fotoflo_lang"]
        assert cookie["value"] == "en" and cookie["sameSite"] == "Lax"
        page.reload()
        page.wait_for_selector(f"{BADGE}[data-state=live]", timeout=20_000)
        assert page.locator(UPLOAD_LABEL).inner_text().strip() == "Upload"
        assert page.locator("[data-testid=mode] [data-mode=grid]").inner_text() == "Single"
        assert page.locator("[data-testid=language]").input_value() == "en"
        assert page.evaluate("() => document.documentElement.lang") == "en"
        assert not page.errors, page.errors
    finally:
        page.context.close()


def test_the_sign_in_page_in_german(server_factory: ServerFactory, tmp_path: Path, browser: Any) -> None:
    store = SQLiteAuthStore(tmp_path / "data" / "auth.sqlite")
    editor = store.create_token(name="editor", role=Role.EDITOR)[1]
    store.close()
    server = server_factory(extra_args=("--auth", "--no-watch"))
    page = german_page(browser, server.url + "/")
    try:
        assert "/login" in page.url
        assert page.evaluate("() => document.documentElement.lang") == "de"
        assert page.title() == "Anmelden · Fotoflo"
        assert page.locator("label").inner_text().strip() == "Zugangstoken"
        assert page.locator("button[type=submit]").inner_text() == "Anmelden"
        page.fill("input[name=token]", editor)
        page.click("button[type=submit]")
        page.wait_for_selector(f"{BADGE}[data-state=live]", timeout=20_000)
        assert page.locator(UPLOAD_LABEL).inner_text().strip() == "Hochladen"
        assert not page.errors, page.errors
    finally:
        page.context.close()
