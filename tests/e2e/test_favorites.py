"""Favourites in two browsers against `fotoflo serve --auth`: a guest of a share link hearts images (by mouse
and by keyboard) and sends their picks; the photographer's window counts the hearts live, says who, and
shows the "sent picks" notice, which opens the collection. A viewer link's guest gets no heart."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.helpers import tile_ids
from tests.e2e.proofing import heart_count, studio_server, tile
from tests.e2e.test_responsive import PHONE, audit
from tests.support.servers import Server, ServerFactory
from tests.support.waiting import wait_until

VIEW = "[data-testid=collection-view]"


@pytest.fixture
def proofing(server_factory: ServerFactory, tmp_path: Path) -> Iterator[tuple[Server, str, httpx.Client]]:
    """A server with sign-in, four images, its owner token (named "Studio") and an API client with it."""
    with studio_server(server_factory, tmp_path, images=4) as made:
        yield made


def test_a_guest_hearts_and_sends_picks_and_the_photographer_sees_it_live(
    proofing: tuple[Server, str, httpx.Client], open_page: Callable[..., Any]
) -> None:
    server, token, api = proofing
    link = api.post(server.api("/shares"), json={"role": "client"}).json()["path"]

    # The photographer signs in: four images, no hearts yet, no "Send my picks" (that is a guest's).
    studio = open_page(server.url + "/login", token=token)
    wait_until(lambda: len(tile_ids(studio)) == 4, timeout_s=15)
    assert studio.locator("[data-testid=send-picks]").count() == 0

    # The guest names themself on the link (open_page fills the form) and sees the same four.
    anna = open_page(server.url + link, width=PHONE[0], height=PHONE[1], guest="Anna")
    wait_until(lambda: len(tile_ids(anna)) == 4, timeout_s=15)
    ids = tile_ids(anna)  # newest first
    send = anna.locator("[data-testid=send-picks]")
    assert send.inner_text() == "Send my picks (0)" and send.is_disabled()

    # Two hearts by mouse: pressed at once, and the photographer's counts follow live, with the name.
    for image_id in ids[:2]:
        tile(anna, image_id).hover()
        tile(anna, image_id, "[data-testid=heart]").click()
        assert tile(anna, image_id, "[data-testid=heart]").get_attribute("aria-pressed") == "true"
    for image_id in ids[:2]:
        wait_until(lambda i=image_id: heart_count(studio, i) == "1", timeout_s=10)
        assert tile(studio, image_id, "[data-testid=heart-count]").get_attribute("title") == "Anna"
    assert heart_count(studio, ids[2]) == ""

    # One by keyboard: Tab to the grid, the arrows to the third image, H; the lightbox shows it hearted.
    anna.mouse.move(2, 2)  # off the tiles: the keys act on the focused tile, not the one under the pointer
    anna.locator("[data-testid=gallery] .ff-scroll").focus()
    for _ in range(3):
        anna.keyboard.press("ArrowRight")
    anna.keyboard.press("h")
    assert tile(anna, ids[2], "[data-testid=heart]").get_attribute("aria-pressed") == "true"
    anna.keyboard.press("Enter")
    lightbox_heart = anna.locator("[data-testid=lightbox-heart]")
    wait_until(lambda: lightbox_heart.get_attribute("aria-pressed") == "true", timeout_s=5)
    anna.keyboard.press("Escape")
    wait_until(lambda: heart_count(studio, ids[2]) == "1", timeout_s=10)
    assert send.inner_text() == "Send my picks (3)"
    screenshot(studio, "favorites-counts")

    # The photographer hearts one too: two now, both names; the lightbox says who.
    tile(studio, ids[0]).hover()
    tile(studio, ids[0], "[data-testid=heart]").click()
    wait_until(lambda: heart_count(studio, ids[0]) == "2", timeout_s=10)
    assert tile(studio, ids[0], "[data-testid=heart-count]").get_attribute("title") == "Anna, Studio"
    tile(studio, ids[0], "img").click()
    hearts = studio.locator("[data-testid=lightbox-hearts]")
    wait_until(lambda: hearts.inner_text() == "2 favourites: Anna, Studio", timeout_s=5)
    screenshot(studio, "favorites-lightbox")
    studio.keyboard.press("Escape")

    # A heart the server refuses is taken back, with a message.
    anna.route("**/images/*/favorite", lambda route: route.fulfill(
        status=503, json={"error": {"code": "unavailable", "message": "down for a moment"}}))  # fmt: skip
    tile(anna, ids[3]).hover()
    tile(anna, ids[3], "[data-testid=heart]").click()
    wait_until(lambda: tile(anna, ids[3], "[data-testid=heart]").get_attribute("aria-pressed") == "false")
    toast = anna.locator("[data-testid=toast]", has_text="down for a moment")
    toast.wait_for(timeout=5_000)
    assert toast.inner_text().startswith("Could not mark p")
    anna.unroute("**/images/*/favorite")
    assert send.inner_text() == "Send my picks (3)"

    # The guest's page with its hearts and the button passes axe, at a phone's size and larger.
    anna.mouse.move(2, 2)
    audit(anna, "favorites")

    # Send: confirmed, then "Sent — 3 picks"; the photographer is told, and opens the collection.
    anna.once("dialog", lambda dialog: dialog.accept())
    send.click()
    anna.locator("[data-testid=toast]", has_text="Sent — 3 picks").wait_for(timeout=10_000)
    [sent] = api.get(server.api("/collections")).json()["collections"]
    assert sent["name"] == "Anna" and sent["count"] == 3
    assert sorted(api.get(server.api(f"/collections/{sent['id']}")).json()["image_ids"]) == sorted(ids[:3])
    notice = studio.locator("[role=status] [data-testid=toast]", has_text="Anna sent 3 picks")
    notice.wait_for(timeout=10_000)
    notice.locator("[data-testid=open-picks]").click()
    studio.locator(f"{VIEW}[data-collection-id='{sent['id']}']").wait_for(timeout=10_000)
    assert "mode=collection" in studio.url
    assert not studio.console.errors, studio.console.errors
    assert not anna.console.errors, anna.console.errors


def test_a_viewer_link_s_guest_sees_no_heart(
    proofing: tuple[Server, str, httpx.Client], open_page: Callable[..., Any]
) -> None:
    server, _, api = proofing
    link = api.post(server.api("/shares"), json={"role": "viewer"}).json()["path"]
    vera = open_page(server.url + link)  # a viewer's link asks no name
    wait_until(lambda: len(tile_ids(vera)) == 4, timeout_s=15)
    tile(vera, tile_ids(vera)[0]).hover()
    assert vera.locator("[data-testid=heart], [data-testid=heart-count], [data-testid=send-picks]").count() == 0
    tile(vera, tile_ids(vera)[0], "img").click()
    vera.locator("[data-testid=lightbox]").wait_for()
    assert vera.locator("[data-testid=lightbox-heart]").count() == 0
    assert not vera.console.errors, vera.console.errors
