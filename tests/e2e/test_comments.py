"""Comments in two browsers against `fotoflo serve --auth`: a guest of a share link comments on an image
from the lightbox, by keyboard on a phone; the photographer's window counts it on the tile live, reads
it, replies in its thread and resolves it, and the guest's open lightbox follows live."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.helpers import tile_ids
from tests.e2e.proofing import COMMENTS, comment_badge, studio_server, thread
from tests.e2e.test_responsive import PHONE, audit
from tests.support.servers import Server, ServerFactory
from tests.support.waiting import wait_until


@pytest.fixture
def proofing(server_factory: ServerFactory, tmp_path: Path) -> Iterator[tuple[Server, str, httpx.Client]]:
    """A server with sign-in, two images, its owner token (named "Studio") and an API client with it."""
    with studio_server(server_factory, tmp_path, images=2) as made:
        yield made


def test_a_guest_comments_and_the_photographer_sees_it_live_and_replies(
    proofing: tuple[Server, str, httpx.Client], open_page: Callable[..., Any]
) -> None:
    server, token, api = proofing
    link = api.post(server.api("/shares"), json={"role": "client"}).json()["path"]

    studio = open_page(server.url + "/login", token=token)
    wait_until(lambda: len(tile_ids(studio)) == 2, timeout_s=15)

    # The guest, on a phone, by keyboard: Tab to the grid, an arrow to the first image, Enter opens it;
    # the comment box, a comment with markup in it, Ctrl+Enter sends it.
    anna = open_page(server.url + link, width=PHONE[0], height=PHONE[1], guest="Anna")
    wait_until(lambda: len(tile_ids(anna)) == 2, timeout_s=15)
    image = tile_ids(anna)[0]
    anna.locator("[data-testid=gallery] .ff-scroll").focus()
    anna.keyboard.press("ArrowRight")
    anna.keyboard.press("Enter")
    anna.locator(f"[data-testid=lightbox][data-image-id='{image}']").wait_for(timeout=5_000)
    box = anna.locator("[data-testid=comment-text]")
    box.wait_for(timeout=5_000)  # shown once the thread says she may write
    box.focus()
    anna.keyboard.type("Could we crop <b>tighter</b>?")
    anna.keyboard.press("Control+Enter")
    wait_until(lambda: thread(anna) == [("Anna", "Could we crop <b>tighter</b>?", False, False)], timeout_s=10)
    assert box.input_value() == ""
    assert anna.locator(f"{COMMENTS} b").count() == 0  # plain text, never markup
    # Her own: she may reply and delete it, not resolve it (that is the photographer's).
    mine = anna.locator(f"{COMMENTS} [data-testid=comment]").first
    assert mine.locator("[data-testid=comment-delete]").count() == 1
    assert mine.locator("[data-testid=comment-resolve]").count() == 0

    # The photographer's tile counts it, live; the lightbox shows who wrote what.
    wait_until(lambda: comment_badge(studio, image) == "1", timeout_s=10)
    assert comment_badge(studio, tile_ids(studio)[1]) == "0"
    studio.locator(f".ff-grid [data-image-id='{image}'] img").click()
    wait_until(lambda: thread(studio) == [("Anna", "Could we crop <b>tighter</b>?", False, False)], timeout_s=10)

    # A reply in its thread, and the thread resolved: both reach the guest's open lightbox live.
    studio.locator(f"{COMMENTS} [data-testid=comment-reply]").first.click()
    assert studio.locator("[data-testid=comment-text]").evaluate("el => el.getRootNode().activeElement === el")
    studio.keyboard.type("Yes, I'll send a tighter crop.")
    studio.locator("[data-testid=comment-send]").click()
    reply = ("Studio", "Yes, I'll send a tighter crop.", True, False)
    wait_until(lambda: thread(anna) == [("Anna", "Could we crop <b>tighter</b>?", False, False), reply],
               timeout_s=10)  # fmt: skip
    wait_until(lambda: comment_badge(studio, image) == "2" and comment_badge(anna, image) == "2", timeout_s=10)
    studio.locator(f"{COMMENTS} [data-testid=comment-resolve]").click()
    wait_until(lambda: thread(anna)[0][3], timeout_s=10)
    screenshot(studio, "comments-lightbox")

    # The guest's page, with the thread open, fits a phone and passes axe at each size.
    audit(anna, "comments")
    assert not studio.console.errors, studio.console.errors
    assert not anna.console.errors, anna.console.errors
