"""Browsing: large projects page as you scroll, live inserts never move what you look at, lightbox, wall."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import httpx

from tests.e2e.conftest import photo_jpeg, screenshot, seed_project
from tests.e2e.helpers import dom_report, drop_file, gallery, tile_ids, watch_dom
from tests.support.waiting import wait_until

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


# -- a project too big for the DOM: the grid keeps only the tiles near the viewport ---------------------

DOM_TILES_MAX = 800  # KEEP_BEHIND + two screens and MAKE_AHEAD below, in whole rows (dashboard/assets/grid.js)

WINDOW_JS = """root => {
  const s = root.querySelector('.ff-scroll');
  const box = s.getBoundingClientRect();
  const tiles = Array.from(root.querySelectorAll('.ff-grid:not(.ff-fresh-grid) [data-image-id]'));
  const middle = box.top + box.height / 2;
  return {
    ids: tiles.map(t => t.dataset.imageId),
    top: s.scrollTop,
    bottom: s.scrollTop + s.clientHeight >= s.scrollHeight - 2,
    height: s.scrollHeight,
    covered: tiles.some(t => {
      const r = t.getBoundingClientRect();
      return r.top <= middle && r.bottom + 12 >= middle;
    }),
  };
}"""


def _window(page) -> dict:
    return gallery(page).evaluate(WINDOW_JS)


def _scroll_by_screens(page, screens: float) -> None:
    gallery(page).evaluate(
        f"root => {{ const s = root.querySelector('{SCROLLER}'); s.scrollBy(0, {screens} * s.clientHeight); }}"
    )


def _listing(server) -> list[str]:
    """Every image id, newest first, through the API's own keyset pages."""
    ids: list[str] = []
    cursor = None
    while True:
        params = {"limit": "500", **({"before": cursor} if cursor else {})}
        page = httpx.get(server.api("/images"), params=params).json()
        assert "images" in page, page
        ids += [i["id"] for i in page["images"]]
        cursor = page["next"]
        if not cursor:
            return ids


def _seeded_server(tmp_path, server_factory, count: int):
    """A real server on a project of `count` seeded images, and their ids newest first."""
    data = tmp_path / "data"
    seed_project(data, "default", count)
    server = server_factory(data=data)
    return server, _listing(server)


def _list_requests(page) -> list[str]:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/images?" in r.url else None)
    return requests


def _scroll_until(page, done, *, screens: float = 2.0, steps: int = 500) -> list[dict]:
    """Scroll down `screens` at a time, each time until tiles cover the middle of the view (at the end of
    what is loaded: until the next page made the grid taller); every window seen, until `done(window)`."""
    seen = []
    for _ in range(steps):
        state = _window(page)
        seen.append(state)
        if done(state):
            return seen
        _scroll_by_screens(page, screens)
        after = _window(page)
        if after["top"] == state["top"]:
            wait_until(lambda s=state: _window(page)["height"] > s["height"] or done(_window(page)), timeout_s=20)
        wait_until(lambda: _window(page)["covered"], timeout_s=20)
    raise AssertionError(f"not done after {steps} steps")


def _scroll_far_down(page, listing: list[str]) -> None:
    """Scroll until the first images' tiles (and records) have left the page: 700 images down at least."""
    _scroll_until(page, lambda w: listing[0] not in w["ids"] and listing.index(w["ids"][0]) > 700, screens=4)


def test_scrolling_to_the_end_pages_every_image_in_order_with_a_bounded_dom(tmp_path, server_factory, open_page):
    server, listing = _seeded_server(tmp_path, server_factory, 3000)
    position = {image_id: i for i, image_id in enumerate(listing)}
    page = open_page(server.url)
    requests = _list_requests(page)

    windows = _scroll_until(page, lambda w: w["bottom"] and listing[-1] in w["ids"])

    for w in windows:
        ids = w["ids"]
        assert ids, "tiles are always there"
        start = position[ids[0]]
        assert ids == listing[start : start + len(ids)], "each window is a run of the listing: newest first, no gap"
    reached = {image_id for w in windows for image_id in w["ids"]}
    assert reached == set(listing), f"{len(set(listing) - reached)} images were never reachable"
    most = max(len(w["ids"]) for w in windows)
    assert most <= DOM_TILES_MAX, f"the DOM held {most} tiles at once"
    assert len(windows[-1]["ids"]) < len(listing) / 3 and listing[0] not in windows[-1]["ids"]
    limits = [int(parse_qs(urlparse(url).query)["limit"][0]) for url in requests]
    assert all("before=" in url for url in requests), "pages only: nothing reloads from the top"
    assert max(limits) <= 500 and len(requests) <= len(listing) / 60 + 10, f"{len(requests)} list requests"
    assert gallery(page).locator("[data-testid=image-count]").inner_text() == "3,000 images"
    assert page.console.errors == []


def test_far_down_a_live_insert_moves_nothing_and_a_delete_above_is_applied(tmp_path, server_factory, open_page):
    server, listing = _seeded_server(tmp_path, server_factory, 2000)
    page = open_page(server.url)
    _scroll_far_down(page, listing)
    page.wait_for_timeout(300)  # a page still loading at the bottom grows the grid below, never above
    gone = listing[5]
    assert gone not in tile_ids(page)
    before, top = _first_visible(page), _scroll_top(page)

    drop_file(server.watch, "far-new.jpg", photo_jpeg(7, (600, 400)))
    pill = page.locator("[data-testid=new-pill]")
    wait_until(lambda: pill.is_visible() and "1 new" in pill.inner_text(), timeout_s=10)
    assert _first_visible(page) == before, "what the user looks at did not move"
    assert _scroll_top(page) == top

    # An image deleted far above, its tile long gone from the page: it leaves the list all the same.
    count = gallery(page).locator("[data-testid=image-count]")
    assert count.inner_text() == "2,001 images"
    assert httpx.delete(server.api(f"/images/{gone}")).status_code == 200
    wait_until(lambda: count.inner_text() == "2,000 images", timeout_s=10)

    pill.click()
    wait_until(lambda: _scroll_top(page) == 0, timeout_s=10)
    newest = httpx.get(server.api("/images?limit=1")).json()["images"][0]
    assert newest["filename"] == "far-new.jpg"
    ids = tile_ids(page)
    assert ids[0] == newest["id"] and gone not in ids
    assert ids == [newest["id"], *[i for i in listing if i != gone]][: len(ids)]
    assert page.console.errors == []


def test_a_selection_outlives_its_tiles_leaving_the_page(tmp_path, server_factory, open_page):
    server, listing = _seeded_server(tmp_path, server_factory, 2000)
    page = open_page(server.url + "/?mode=collection")
    pool = "[data-testid=collection-pool]"
    page.locator(f"{pool} [data-image-id='{listing[0]}']").click()
    page.locator(f"{pool} [data-image-id='{listing[2]}']").click(modifiers=["Shift"])
    count = page.locator("[data-testid=selection-count]")
    assert count.inner_text() == "3 selected"

    _scroll_far_down(page, listing)
    far = _first_visible(page)["id"]
    page.locator(f"{pool} [data-image-id='{far}']").click(modifiers=["Control"])
    assert count.inner_text() == "4 selected"

    gallery(page).evaluate(f"root => root.querySelector('{SCROLLER}').scrollTo(0, 0)")
    wait_until(lambda: listing[0] in tile_ids(page))
    selected = page.eval_on_selector_all(f"{pool} [data-selected=true]", "ts => ts.map(t => t.dataset.imageId)")
    assert selected == listing[:3], "the tiles made again show the selection"
    page.keyboard.press("Control+a")
    wait_until(lambda: int(count.inner_text().split()[0]) >= listing.index(far) + 1)
    assert page.console.errors == []
