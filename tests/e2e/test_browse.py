"""Browsing: large projects page as you scroll, live inserts never move what you look at, lightbox, wall."""

from __future__ import annotations

import httpx

from tests.conftest import wait_until
from tests.e2e.conftest import photo_jpeg, screenshot, seed_project
from tests.e2e.helpers import dom_report, drop_file, gallery, tile_ids, watch_dom

SCROLLER = ".ff-scroll"


def _scroll_top(page) -> float:
    return gallery(page).evaluate(f"root => root.querySelector('{SCROLLER}').scrollTop")


def _first_visible(page) -> dict:
    return gallery(page).evaluate(
        """root => {
          const box = root.querySelector('.ff-scroll').getBoundingClientRect();
          for (const t of root.querySelectorAll('.ff-grid [data-image-id]')) {
            const r = t.getBoundingClientRect();
            if (r.top >= box.top) return { id: t.dataset.imageId, top: r.top, left: r.left };
          }
          return null;
        }"""
    )


def test_insert_while_scrolled_down_keeps_position_and_offers_a_pill(tmp_path, server_factory, open_page):
    data = tmp_path / "data"
    seed_project(data, "default", 300)
    server = server_factory(data=data)
    page = open_page(server.url)
    gallery(page).evaluate(f"root => root.querySelector('{SCROLLER}').scrollTo(0, 1000)")
    wait_until(lambda: _scroll_top(page) >= 1000)
    before = _first_visible(page)
    watch_dom(page)

    drop_file(server.watch, "new-1.jpg", photo_jpeg(1, (600, 400)))
    drop_file(server.watch, "new-2.jpg", photo_jpeg(2, (600, 400)))
    pill = page.locator("[data-testid=new-pill]")
    wait_until(lambda: pill.is_visible() and "2 new" in pill.inner_text(), timeout_s=10)
    assert _scroll_top(page) >= 1000
    assert _first_visible(page) == before, "what the user looks at did not move"
    screenshot(page, "new-pill")

    pill.click()
    wait_until(lambda: _scroll_top(page) == 0, timeout_s=10)
    newest = [i["id"] for i in httpx.get(server.api("/images?limit=2")).json()["images"]]
    assert tile_ids(page)[:2] == newest
    assert not pill.is_visible()
    assert dom_report(page)["removed"] == []


def test_five_thousand_images_open_paged_and_scroll(tmp_path, server_factory, open_page):
    data = tmp_path / "data"
    seed_project(data, "default", 5000)
    server = server_factory(data=data)
    requests: list[str] = []
    page = open_page(server.url)
    page.on("request", lambda r: requests.append(r.url) if "/images?" in r.url else None)
    first = len(tile_ids(page))
    assert 0 < first <= 120, f"the page loaded {first} tiles up front instead of a page"
    for _ in range(6):
        gallery(page).evaluate(f"root => {{ const s = root.querySelector('{SCROLLER}'); s.scrollTo(0, 1e9); }}")
        page.wait_for_timeout(300)
    wait_until(lambda: len(tile_ids(page)) > first * 3, timeout_s=15)
    assert all("before=" in url for url in requests), "scrolling fetches older pages only"
    ids = tile_ids(page)
    assert len(ids) == len(set(ids))
    listed = httpx.get(server.api(f"/images?limit={len(ids)}")).json()["images"]
    assert ids == [i["id"] for i in listed]


def test_lightbox_shows_exif_and_follows_the_keyboard(server, open_page):
    for i in range(3):
        drop_file(server.watch, f"DSCF{i:04d}.jpg", photo_jpeg(20 + i))
    wait_until(lambda: len(httpx.get(server.api("/images")).json()["images"]) == 3)
    page = open_page(server.url)
    ids = tile_ids(page)
    lightbox = page.locator("[data-testid=lightbox]")

    page.locator(f"[data-image-id='{ids[0]}']").click()
    lightbox.wait_for(state="visible")
    assert lightbox.get_attribute("data-image-id") == ids[0]
    exif = page.locator("[data-testid=lightbox-exif]").inner_text()
    assert "Fujifilm X-T5" in exif and "XF 33mm" in exif and "400" in exif and "f/2.8" in exif
    assert "1/250 s" in exif
    href = page.locator("[data-testid=download]").get_attribute("href")
    assert f"/files/{ids[0]}/original" in href
    original = httpx.get(server.url + href)
    assert original.status_code == 200 and original.content[:2] == b"\xff\xd8"
    screenshot(page, "lightbox", docs=True)

    page.keyboard.press("ArrowRight")
    wait_until(lambda: lightbox.get_attribute("data-image-id") == ids[1])
    page.keyboard.press("ArrowRight")
    wait_until(lambda: lightbox.get_attribute("data-image-id") == ids[2])
    page.keyboard.press("ArrowLeft")
    wait_until(lambda: lightbox.get_attribute("data-image-id") == ids[1])
    page.keyboard.press("Escape")
    lightbox.wait_for(state="hidden")


def test_gallery_screenshot(server, open_page):
    for i in range(12):
        drop_file(server.watch, f"DSCF{i:04d}.jpg", photo_jpeg(40 + i, (1200, 800) if i % 4 else (800, 1200)))
    wait_until(lambda: len(httpx.get(server.api("/images")).json()["images"]) == 12)
    page = open_page(server.url)
    gallery(page).evaluate(
        "root => Promise.all(Array.from(root.querySelectorAll('img'))"
        ".map(i => i.complete ? 0 : new Promise(r => { i.onload = r; })))"
    )
    page.wait_for_timeout(400)
    screenshot(page, "gallery", docs=True)


def test_wall_mode_follows_new_arrivals_with_a_bounded_strip(server, open_page):
    drop_file(server.watch, "wall-0.jpg", photo_jpeg(60))
    wait_until(lambda: len(httpx.get(server.api("/images")).json()["images"]) == 1)
    page = open_page(server.url + "/?mode=wall")
    main = page.locator(".ff-wall-main")
    first = httpx.get(server.api("/images")).json()["images"][0]["id"]
    wait_until(lambda: main.get_attribute("data-image-id") == first)
    for i in range(1, 16):
        drop_file(server.watch, f"wall-{i}.jpg", photo_jpeg(60 + i))
    newest = lambda: httpx.get(server.api("/images?limit=1")).json()["images"][0]  # noqa: E731
    wait_until(lambda: len(httpx.get(server.api("/images")).json()["images"]) == 16, timeout_s=20)
    wait_until(lambda: main.get_attribute("data-image-id") == newest()["id"], timeout_s=10)
    strip = tile_ids(page)
    assert 0 < len(strip) <= 12, "a wall that runs for days keeps a bounded strip"
    assert newest()["id"] not in strip
    assert page.locator("[data-testid=upload]").count() == 0, "no chrome on the wall"
    page.wait_for_timeout(800)
    screenshot(page, "wall", docs=True)
