"""Previews made after publishing, over HTTP on a real `fotoflo serve`: asked for early, made on demand, once."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from dashboard.events import IMAGE_CREATED, IMAGE_UPDATED, PREVIEW_MADE
from dashboard.previews import TEST_DELAY_ENV
from tests.support.images import jpeg_bytes
from tests.support.servers import Server, ServerFactory
from tests.support.sse import sse
from tests.support.waiting import wait_until


def held_server(server_factory: ServerFactory) -> Server:
    """A server whose background previews start a minute late: every preview asked for is made on demand."""
    return server_factory(env={TEST_DELAY_ENV: "60"})


def upload(client: httpx.Client, server: Server, name: str, data: bytes) -> dict[str, Any]:
    response = client.post(server.api("/upload"), files=[("file", (name, data, "image/jpeg"))])
    assert response.status_code == 201, response.text
    image: dict[str, Any] = response.json()["images"][0]
    return image


def feed(client: httpx.Client, server: Server) -> list[tuple[str, dict[str, Any]]]:
    changes = client.get(server.api("/changes")).json()["changes"]
    return [(c["kind"], c["data"]) for c in changes]


def test_a_preview_asked_for_before_it_is_made_is_made_on_demand_once(
    server_factory: ServerFactory, client: httpx.Client
) -> None:
    server = held_server(server_factory)
    with sse(server.api("/events")) as stream:
        image = upload(client, server, "IMG_0001.JPG", jpeg_bytes((4000, 3000), seed=1))
        assert stream.next().event == IMAGE_CREATED
        assert feed(client, server) == [(IMAGE_CREATED, {})]  # published; its preview is not made yet

        with ThreadPoolExecutor(max_workers=6) as sessions:
            answers = list(sessions.map(lambda _: client.get(server.url + image["preview_url"]), range(6)))

        announced = stream.next()
    assert [a.status_code for a in answers] == [200] * 6
    assert len({a.content for a in answers}) == 1
    assert answers[0].headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(answers[0].content)) as preview:
        assert preview.size == (2000, 1500)
    # Made once, announced once: the open lightboxes and walls hear of it; the image is as it was.
    assert feed(client, server) == [(IMAGE_CREATED, {}), (IMAGE_UPDATED, PREVIEW_MADE)]
    assert (announced.event, announced.id) == (IMAGE_UPDATED, str(image["seq"] + 1))
    listed = client.get(server.api(f"/images/{image['id']}")).json()
    assert announced.json() == listed
    assert {k: listed[k] for k in ("width", "height", "exif", "preview_url")} == {
        k: image[k] for k in ("width", "height", "exif", "preview_url")
    }


def test_the_background_preview_is_announced_after_publishing(
    server_factory: ServerFactory, client: httpx.Client
) -> None:
    server = server_factory()
    with sse(server.api("/events")) as stream:
        image = upload(client, server, "IMG_0002.JPG", jpeg_bytes((4000, 3000), seed=2))
        created, updated = stream.next(), stream.next(timeout_s=30)
    assert (created.event, created.id) == (IMAGE_CREATED, str(image["seq"]))
    assert (updated.event, updated.id) == (IMAGE_UPDATED, str(image["seq"] + 1))
    assert client.get(server.url + image["preview_url"]).status_code == 200
    assert feed(client, server) == [(IMAGE_CREATED, {}), (IMAGE_UPDATED, PREVIEW_MADE)]


def test_a_preview_a_stop_left_unmade_is_made_after_the_restart_unasked(
    server_factory: ServerFactory, client: httpx.Client, tmp_path: Path
) -> None:
    held = held_server(server_factory)
    image = upload(client, held, "IMG_0003.JPG", jpeg_bytes((4000, 3000), seed=3))
    held.stop()  # its background preview was still waiting: dropped

    server = server_factory(data=tmp_path / "data")  # the same data directory, previews made at once
    wait_until(lambda: feed(client, server) == [(IMAGE_CREATED, {}), (IMAGE_UPDATED, PREVIEW_MADE)], timeout_s=60)
    assert (tmp_path / "data" / "blobs" / "preview" / image["sha256"][:2] / image["sha256"]).is_file()
