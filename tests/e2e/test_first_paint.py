"""The page's first tiles are in its HTML (dashboard/first_paint.py): seen before Bokeh's document arrives,
taken over in place by the gallery, scoped like the images API, escaped; the bundles come from the cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from dashboard.auth import Role, SQLiteAuthStore
from tests.e2e.conftest import photo_jpeg
from tests.e2e.helpers import gallery, tile_ids
from tests.support.servers import ServerFactory
from tests.support.waiting import wait_until

PAINTED = "[data-testid=first-page]"
# Closes an attribute and the tag, opens a comment in a script block, and an element that runs code (a
# double quote is sent as %22 by httpx's multipart, so the quote here is the other one).
HOSTILE = "'><img src=x onerror=window.__pwned=1><!--<script>&amp; x.jpg"

PAINTED_BOXES = f"""() => Object.fromEntries([...document.querySelectorAll('{PAINTED} [data-first-id]')]
  .map(t => [t.dataset.firstId, JSON.stringify(t.getBoundingClientRect())]))"""
GALLERY_BOXES = """root => Object.fromEntries([...root.querySelectorAll('.ff-grid [data-image-id]')]
  .map(t => [t.dataset.imageId, JSON.stringify(t.getBoundingClientRect())]))"""


def open_held(context: Any, url: str) -> tuple[Any, list[Any]]:
    """A page at `url` whose Bokeh websocket is held back (connect it with `held[0].connect_to_server()`)."""
    page = context.new_page()
    held: list[Any] = []
    page.route_web_socket("**/ws*", lambda ws: held.append(ws))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(url)
    return page, held


def wait_for_socket(page: Any, held: list[Any]) -> None:
    """Until the page's websocket is held. Playwright hands its events over only while one of its calls
    runs, so the wait is Playwright's own (a plain sleep would never see the socket arrive)."""
    wait_until(lambda: page.wait_for_timeout(50) or len(held) == 1, timeout_s=20)


def painted_ids(page: Any) -> list[str]:
    return list(page.eval_on_selector_all(f"{PAINTED} [data-first-id]", "ts => ts.map(t => t.dataset.firstId)"))


def wait_painted(page: Any) -> None:
    """Until the painted tiles show their first picture: what a user sees while the bundles load."""
    page.wait_for_function(
        f"() => {{ const img = document.querySelector('{PAINTED} [data-first-id] img');"
        " return img && img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width > 0; }",
        timeout=20_000,
    )


def test_first_tiles_show_before_the_document_and_the_gallery_takes_them_over_in_place(
    server: Any, browser: Any
) -> None:
    names = [f"first-{i}.jpg" for i in range(7)] + [HOSTILE]
    with httpx.Client(timeout=15) as api:
        for seed, name in enumerate(names):
            api.post(server.api("/upload"), files={"file": (name, photo_jpeg(seed))}).raise_for_status()
        listed = api.get(server.api("/images?limit=60")).json()["images"]
    assert len(listed) == len(names)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page, held = open_held(context, server.url + "/")
        wait_painted(page)

        # No document yet (the websocket is held): the tiles on screen are the page's own.
        assert gallery(page).count() == 0
        assert painted_ids(page) == [image["id"] for image in listed]
        names_shown = page.eval_on_selector_all(f"{PAINTED} .ff-name", "ns => ns.map(n => n.textContent)")
        assert names_shown == [image["filename"] for image in listed]
        assert HOSTILE in names_shown, "the hostile name is shown as text"
        assert page.eval_on_selector_all(f"{PAINTED} img", "is => is.length") == len(names), "no injected element"
        assert page.evaluate("window.__pwned") is None
        before = page.evaluate(PAINTED_BOXES)

        wait_for_socket(page, held)
        held[0].connect_to_server()
        page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=20_000)
        page.wait_for_selector(PAINTED, state="detached", timeout=10_000)

        # The gallery's own tiles, once each, exactly where the painted ones were.
        assert tile_ids(page) == [image["id"] for image in listed]
        after = gallery(page).evaluate(GALLERY_BOXES)
        assert after == before
        assert page.locator("[data-first-id]").count() == 0
        assert gallery(page).locator("[data-image-id]").count() == len(names)
        assert page.evaluate("window.__pwned") is None
        assert not page.errors, page.errors
    finally:
        context.close()


def test_a_share_link_s_painted_tiles_are_its_collection_only(
    server_factory: ServerFactory, tmp_path: Path, browser: Any
) -> None:
    store = SQLiteAuthStore(tmp_path / "data" / "auth.sqlite")
    owner = store.create_token(name="owner", role=Role.OWNER)[1]
    store.close()
    server = server_factory(extra_args=("--auth", "--no-watch"))
    with httpx.Client(timeout=15, headers={"Authorization": f"Bearer {owner}"}) as api:
        ids = []
        for seed in range(4):
            sent = api.post(server.api("/upload"), files={"file": (f"s{seed}.jpg", photo_jpeg(seed))})
            ids.append(sent.json()["images"][0]["id"])
        shared = api.post(server.api("/collections"), json={"name": "Shared", "image_ids": ids[1:3]}).json()
        link = api.post(server.api("/shares"), json={"role": "viewer", "collection_id": shared["id"]}).json()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page, held = open_held(context, server.url + link["path"])
        wait_painted(page)
        assert sorted(painted_ids(page)) == sorted(ids[1:3])
        html = page.content()
        for hidden in (ids[0], ids[3], "s0.jpg", "s3.jpg"):
            assert hidden not in html, f"{hidden} is outside the link's collection"

        wait_for_socket(page, held)
        held[0].connect_to_server()
        page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=20_000)
        page.wait_for_selector(PAINTED, state="detached", timeout=10_000)
        assert sorted(tile_ids(page)) == sorted(ids[1:3])
    finally:
        context.close()


def test_a_second_visit_takes_the_bundles_from_the_cache(server: Any, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        visits: list[dict[str, bool]] = []
        for _ in range(2):
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            seen: dict[str, bool] = {}
            visits.append(seen)

            def received(event: dict[str, Any], seen: dict[str, bool] = seen) -> None:
                response = event["response"]
                if "/static/" in response["url"] and "?v=" in response["url"]:
                    cached = bool(response.get("fromDiskCache") or response.get("fromMemoryCache"))
                    seen[response["url"]] = cached and response["status"] == 200

            cdp.on("Network.responseReceived", received)
            page.goto(server.url + "/")
            page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=20_000)
            page.close()
        first, second = visits
        assert any("bokeh.min.js" in url for url in first) and not any(first.values()), "the first visit downloads"
        assert set(second) == set(first), "the second visit uses the same bundles"
        assert all(second.values()), f"not from the cache: {[url for url, hit in second.items() if not hit]}"
        bundle = next(url for url in first if "bokeh.min.js" in url)
        assert "immutable" in httpx.get(bundle).headers["Cache-Control"]
    finally:
        context.close()


def test_pages_that_paint_nothing_still_open(server: Any, open_page: Callable[..., Any]) -> None:
    # The wall and Collection mode are not painted ahead: they open as before.
    for query in ("?mode=wall", "?mode=collection"):
        page = open_page(server.url + "/" + query)
        assert page.locator(PAINTED).count() == 0
        assert not page.console.errors, page.console.errors
