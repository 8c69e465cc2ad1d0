"""Thumbnail first in the browser: the lightbox and the wall show a large JPEG's thumbnail in the preview's place,
then swap to the preview when it lands, without a flash or a jump."""

from __future__ import annotations

import httpx

from dashboard.events import PREVIEW_MADE
from tests.e2e.conftest import photo_jpeg
from tests.e2e.helpers import drop_file, tile_ids
from tests.support.waiting import wait_until

# Notes what the picture shows each time it changes: which rendition, its box, whether it is faded out.
RECORD = """img => {
  window.__shown = [];
  const note = () => {
    const r = img.getBoundingClientRect();
    window.__shown.push({ showing: img.dataset.showing || null, loaded: img.classList.contains("ff-loaded"),
      box: [Math.round(r.left), Math.round(r.top), Math.round(r.width), Math.round(r.height)] });
  };
  new MutationObserver(note).observe(img, { attributes: true, attributeFilter: ["data-showing", "class", "src"] });
}"""


def preview_announced(server, image_id: str) -> bool:
    changes = httpx.get(server.api("/changes")).json()["changes"]
    return any(c["data"] == PREVIEW_MADE and c["image"]["id"] == image_id for c in changes)


def test_the_open_lightbox_swaps_the_thumbnail_for_the_preview_when_it_lands(server, open_page):
    page = open_page(server.url)
    held = []  # the browser's requests for previews, answered when the test says
    page.route("**/files/*/preview*", lambda route: held.append(route))
    drop_file(server.watch, "IMG_0001.JPG", photo_jpeg(7, (4000, 3000)))
    wait_until(lambda: len(tile_ids(page)) == 1, timeout_s=15)
    [image_id] = tile_ids(page)

    page.locator(f"[data-image-id='{image_id}']").click()
    img = page.locator("[data-testid=lightbox] .ff-lb-img")
    wait_until(lambda: img.get_attribute("data-showing") == "thumb" and "ff-loaded" in img.get_attribute("class"))
    img.evaluate(RECORD)
    thumb_box = img.bounding_box()
    assert thumb_box["width"] > 600, "the thumbnail fills the preview's place, scaled"
    wait_until(lambda: preview_announced(server, image_id), timeout_s=30)  # made in the background meanwhile
    wait_until(lambda: len(held) >= 1)
    for route in held:
        route.continue_()

    wait_until(lambda: img.get_attribute("data-showing") == "preview", timeout_s=10)
    assert img.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [2000, 1500]
    assert img.bounding_box() == thumb_box, "the preview takes the thumbnail's place: no jump"
    shown = page.evaluate("window.__shown")
    assert shown and all(s["loaded"] for s in shown), f"never faded out (no flash): {shown}"
    assert page.console.errors == []


def test_the_wall_shows_the_thumbnail_then_the_preview_in_its_place(server, open_page):
    page = open_page(server.url + "/?mode=wall")
    main = page.locator(".ff-wall-main")
    drop_file(server.watch, "IMG_0002.JPG", photo_jpeg(8, (4000, 3000)))

    wait_until(lambda: main.get_attribute("data-showing") == "preview", timeout_s=30)
    assert main.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [2000, 1500]
    assert main.evaluate("img => [img.width, img.height]") != [0, 0]
    assert page.console.errors == []
