"""Client proofing end to end (issue 20's walk-through), in two browsers on one real `fotoflo serve --auth`
with notifications on: a real webhook receiver and a real SMTP server (aiosmtpd) on loopback.

The guest opens a watermarked `preview` share link and names themself, hearts and comments; the photographer
sees both live and replies; the guest sends their picks, and the webhook and the mailbox each get one digest.
The guest's preview carries the watermark and no URL of theirs leads to an original; a RAW and its JPEG
uploaded apart are one tile."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard.samples import photo_jpeg, raw_dng
from tests.e2e.helpers import tile_ids
from tests.e2e.proofing import comment_badge, heart_count, studio_server, thread, tile
from tests.support.api import file_urls
from tests.support.images import changed
from tests.support.notify import Mailbox, WebhookReceiver, smtp_server, webhook_receiver
from tests.support.servers import Server, ServerFactory
from tests.support.waiting import wait_until

INTERVAL_S = 1  # --notify-interval-s: digests come quickly, and a second one would come within a few seconds


@pytest.fixture
def studio(
    server_factory: ServerFactory, tmp_path: Path
) -> Iterator[tuple[Server, str, httpx.Client, WebhookReceiver, Mailbox]]:
    with webhook_receiver() as hook, smtp_server() as mailbox:
        args = ("--notify-interval-s", str(INTERVAL_S), "--smtp", mailbox.url)
        with studio_server(server_factory, tmp_path, images=2, extra_args=args) as (server, token, api):
            yield server, token, api, hook, mailbox


def upload(api: httpx.Client, server: Server, name: str, data: bytes) -> dict[str, Any]:
    sent = api.post(server.api("/upload"), files={"file": (name, data)})
    assert sent.status_code == 201, sent.text
    image: dict[str, Any] = sent.json()["images"][0]
    return image


def test_a_guest_proofs_and_the_photographer_follows_live(
    studio: tuple[Server, str, httpx.Client, WebhookReceiver, Mailbox], open_page: Callable[..., Any]
) -> None:
    server, token, api, hook, mailbox = studio
    # A RAW and its JPEG from one capture, uploaded apart (RAW first): one image with two files.
    taken = "2026:12:07 14:05:00"
    raw = raw_dng(1200, 800, seed=800, captured=taken)
    upload(api, server, "IMG_0800.CR3", raw)
    pair = upload(api, server, "IMG_0800.JPG", photo_jpeg(800))
    images = api.get(server.api("/images")).json()["images"]
    assert len(images) == 3, [i["filename"] for i in images]
    pair = api.get(server.api(f"/images/{pair['id']}")).json()
    assert sorted(f["role"] for f in pair["files"]) == ["jpeg", "raw"]

    made = api.post(server.api("/shares"), json={"role": "client", "download": "preview", "watermark": "PROOF"})
    assert made.status_code == 201, made.text
    link = made.json()["path"]

    desk = open_page(server.url + "/login", token=token)
    wait_until(lambda: len(tile_ids(desk)) == 3, timeout_s=15)

    # The guest names themself on the link and sees the same three tiles: the pair is one.
    anna = open_page(server.url + link, guest="Anna")
    wait_until(lambda: len(tile_ids(anna)) == 3, timeout_s=15)
    assert set(tile_ids(anna)) == {i["id"] for i in images}

    # A heart on the pair: the photographer's count follows live, with her name.
    tile(anna, pair["id"]).hover()
    tile(anna, pair["id"], "[data-testid=heart]").click()
    wait_until(lambda: heart_count(desk, pair["id"]) == "1", timeout_s=10)
    assert tile(desk, pair["id"], "[data-testid=heart-count]").get_attribute("title") == "Anna"

    # A comment from her lightbox, which shows the watermarked preview and offers no RAW.
    tile(anna, pair["id"], "img").click()
    shown = anna.locator("[data-testid=lightbox] .ff-lb-img")
    wait_until(lambda: "/preview" in (shown.get_attribute("src") or ""), timeout_s=10)
    assert not anna.locator("[data-testid=download-raw]").is_visible()
    anna.locator("[data-testid=comment-text]").fill("Can we have this one in black and white?")
    anna.locator("[data-testid=comment-send]").click()
    question = ("Anna", "Can we have this one in black and white?", False, False)
    wait_until(lambda: thread(anna) == [question], timeout_s=10)

    # The photographer sees it counted on the tile live, opens it (the RAW is theirs to download), replies.
    wait_until(lambda: comment_badge(desk, pair["id"]) == "1", timeout_s=10)
    tile(desk, pair["id"], "img").click()
    wait_until(lambda: thread(desk) == [question], timeout_s=10)
    raw_link = desk.locator("[data-testid=download-raw]")
    assert raw_link.is_visible() and raw_link.get_attribute("download") == "IMG_0800.CR3"
    desk.locator("[data-testid=comment-reply]").first.click()
    desk.locator("[data-testid=comment-text]").fill("Yes, both versions are coming.")
    desk.locator("[data-testid=comment-send]").click()
    answer = ("Studio", "Yes, both versions are coming.", True, False)
    wait_until(lambda: thread(anna) == [question, answer], timeout_s=10)

    # Her preview carries the watermark in its pixels: it differs from the photographer's.
    with httpx.Client(timeout=15) as anyone:
        hers = anyone.get(server.url + str(shown.get_attribute("src")))
        mine = anyone.get(server.url + pair["preview_url"])
    assert hers.status_code == mine.status_code == 200
    assert changed(mine.content, hers.content) > 0.005

    # No URL of hers leads to an original: none is given, one made to ask for it is refused, and so is a ZIP.
    seen = anna.request.get(server.api(f"/images/{pair['id']}"))
    assert seen.ok, seen.text()
    urls = file_urls(seen.json())
    assert urls and not [u for u in urls if "/original" in u], urls
    with httpx.Client(timeout=15) as anyone:
        for url in urls:
            forged = re.sub(r"/(preview|thumb)\?", "/original?", url)
            assert anyone.get(server.url + forged).status_code == 403, forged
    collection = api.post(server.api("/collections"), json={"name": "Selects", "image_ids": [pair["id"]]})
    zipped = anna.request.get(server.api(f"/collections/{collection.json()['id']}/export.zip"))
    assert zipped.status == 403

    # The photographer asks to be told: a webhook and an e-mail recipient, from here on.
    added = api.post(server.api("/webhooks"), json={"url": hook.url})
    assert added.status_code == 201, added.text
    secret = added.json()["secret"]
    assert api.post(server.api("/emails"), json={"address": "desk@studio.example"}).status_code == 201

    # She sends her picks: the photographer's window says so, and one digest reaches each receiver.
    anna.keyboard.press("Escape")
    anna.once("dialog", lambda dialog: dialog.accept())
    anna.locator("[data-testid=send-picks]").click()
    anna.locator("[data-testid=toast]", has_text="Sent — 1 pick").wait_for(timeout=10_000)
    desk.locator("[role=status] [data-testid=toast]", has_text="Anna sent 1 pick").wait_for(timeout=10_000)
    wait_until(lambda: len(hook.received) == 1 and len(mailbox.messages) == 1, timeout_s=30)
    time.sleep(4 * INTERVAL_S)  # a few more intervals: nothing else is sent
    assert len(hook.received) == 1 and len(mailbox.messages) == 1

    delivery = hook.received[0]
    stamp = delivery.headers["x-fotoflo-timestamp"]
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["x-fotoflo-signature"] == f"sha256={expected}"
    assert json.loads(delivery.body)["summary"] == ["Anna sent 1 pick"]
    mail = mailbox.messages[0]
    assert mail["To"] == "desk@studio.example" and "Anna sent 1 pick" in str(mail["Subject"])
    assert not desk.console.errors, desk.console.errors
    assert not anna.console.errors, anna.console.errors
