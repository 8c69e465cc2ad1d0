"""File versions over HTTP on a real `fotoflo serve`: ask by SHA-256, upload a version, conflicts, versioned URLs."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx
import pytest

from dashboard.events import IMAGE_CREATED, IMAGE_UPDATED
from tests.support.api import assert_json_error
from tests.support.images import jpeg_bytes, small_jpeg
from tests.support.servers import Server
from tests.support.sse import sse


@pytest.fixture
def server(shared_project: Server) -> Server:
    """The module's real server, seen through a project of this test's own."""
    return shared_project


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def send(client: httpx.Client, server: Server, name: str, data: bytes, **fields: str) -> httpx.Response:
    """One file as a sync client sends it: the form fields beside the file."""
    return client.post(server.api("/upload"), data=fields, files=[("file", (name, data, "application/octet-stream"))])


def created(client: httpx.Client, server: Server, name: str, data: bytes, **fields: str) -> dict[str, Any]:
    response = send(client, server, name, data, **fields)
    assert response.status_code == 201, response.text
    image: dict[str, Any] = response.json()["images"][0]
    return image


def test_ask_by_sha256_before_sending_the_bytes(server: Server, client: httpx.Client) -> None:
    data = small_jpeg(1)
    assert_json_error(client.get(server.api(f"/images/by-sha256/{sha(data)}")), 404, "unknown_image")

    image = created(client, server, "a.jpg", data)

    found = client.get(server.api(f"/images/by-sha256/{sha(data).upper()}"))
    assert found.status_code == 200
    assert (found.json()["id"], found.json()["current"], found.json()["url"]) == (image["id"], True, image["url"])
    assert_json_error(client.get(server.api("/images/by-sha256/abc")), 400, "bad_argument")
    assert_json_error(
        client.get(server.url + f"/api/projects/nope/images/by-sha256/{sha(data)}"), 404, "unknown_project"
    )


def test_a_version_keeps_the_id_and_is_announced_as_image_updated(server: Server, client: httpx.Client) -> None:
    v1, v2 = jpeg_bytes((120, 90), seed=1), jpeg_bytes((90, 120), seed=2)
    device = {"device_id": "dev-a", "device_name": "Zoë's laptop"}
    image = created(client, server, "IMG_1.JPG", v1, sha256=sha(v1), **device)
    assert image["version"] == 1 and "v=" not in image["url"]

    with sse(server.api("/events")) as stream:
        response = send(client, server, "IMG_1.JPG", v2, replaces=image["id"], base_sha256=sha(v1), **device)
        event = stream.next()

    assert response.status_code == 201, response.text
    updated = response.json()["images"][0]
    assert (updated["id"], updated["created"], updated["updated"]) == (image["id"], False, True)
    assert (updated["version"], updated["sha256"], updated["seq"]) == (2, sha(v2), image["seq"])
    assert (updated["width"], updated["height"]) == (90, 120)
    # Galleries update the tile in place: same id, new bytes behind new URLs.
    assert (event.event, event.id) == (IMAGE_UPDATED, str(image["seq"] + 1))
    assert event.json() == {k: v for k, v in updated.items() if k not in ("created", "updated")}
    for key in ("url", "preview_url", "thumbnail_url"):
        assert updated[key] != image[key] and updated[key].endswith("&v=2")
    assert client.get(server.url + updated["url"]).content == v2
    assert client.get(server.url + image["url"]).content == v1  # the first version's URL still gives it
    assert client.get(server.api("/images")).json()["total"] == 1

    versions = client.get(server.api(f"/images/{image['id']}/versions")).json()
    assert versions["image_id"] == image["id"]
    assert [(v["version"], v["sha256"], v["device_name"]) for v in versions["versions"]] == [
        (1, sha(v1), "Zoë's laptop"),
        (2, sha(v2), "Zoë's laptop"),
    ]
    assert client.get(server.url + versions["versions"][0]["thumbnail_url"]).status_code == 200
    gone = versions["versions"][1]["url"].replace("&v=2", "&v=9")
    assert_json_error(client.get(server.url + gone), 404, "unknown_version")
    assert_json_error(client.get(server.api("/images/NoSuchImage/versions")), 404, "unknown_image")

    # Sending the same version again (a client retrying after a crash) changes nothing.
    again = send(client, server, "IMG_1.JPG", v2, replaces=image["id"], base_sha256=sha(v1), **device)
    assert again.status_code == 200 and again.json()["images"][0]["updated"] is False
    assert client.get(server.api("/changes")).json()["last_seq"] == image["seq"] + 1


def test_two_devices_changing_the_same_base_keep_both(server: Server, client: httpx.Client) -> None:
    base, studio, laptop = (jpeg_bytes((100, 80), seed=s) for s in (10, 11, 12))
    image = created(client, server, "IMG_7.JPG", base, device_id="studio", device_name="Studio")
    first = send(client, server, "IMG_7.JPG", studio, replaces=image["id"], base_sha256=sha(base),
                 device_id="studio", device_name="Studio")  # fmt: skip
    assert first.status_code == 201

    second = send(client, server, "IMG_7.JPG", laptop, replaces=image["id"], base_sha256=sha(base),
                  device_id="laptop", device_name="Laptop")  # fmt: skip

    assert second.status_code == 201, second.text
    current = second.json()["images"][0]
    copy = current["conflict_copy"]
    assert (current["id"], current["sha256"], current["version"]) == (image["id"], sha(laptop), 3)
    assert copy["sha256"] == sha(studio) and copy["conflict_of"] == image["id"]
    assert re.fullmatch(r"IMG_7 \(conflict Studio \d{4}-\d\d-\d\d \d{6}\)\.JPG", copy["filename"]), copy["filename"]
    assert client.get(server.url + copy["url"]).content == studio
    listed = {i["sha256"] for i in client.get(server.api("/images")).json()["images"]}
    assert listed == {sha(laptop), sha(studio)}
    kinds = [c["kind"] for c in client.get(server.api("/changes")).json()["changes"]]
    assert kinds == [IMAGE_CREATED, IMAGE_UPDATED, IMAGE_UPDATED, IMAGE_CREATED]


def test_sync_fields_are_checked(server: Server, client: httpx.Client) -> None:
    data, other = small_jpeg(20), small_jpeg(21)
    image = created(client, server, "a.jpg", data)

    mismatch = send(client, server, "b.jpg", other, sha256=sha(data))
    assert mismatch.status_code == 400
    assert mismatch.json()["errors"] == [
        {"filename": "b.jpg", "code": "sha256_mismatch", "reason": f"the bytes received hash to {sha(other)}, "
         f"not {sha(data)}"}
    ]  # fmt: skip
    assert_json_error(send(client, server, "b.jpg", other, replaces="NoSuchImage", base_sha256=sha(data)), 404,
                      "unknown_image")  # fmt: skip
    bad = [
        {"replaces": image["id"]},  # no base
        {"base_sha256": sha(data)},  # no image
        {"replaces": image["id"], "base_sha256": "xyz"},
        {"replaces": "../etc", "base_sha256": sha(data)},
        {"sha256": "not-hex"},
        {"device_name": "no id"},
        {"device_id": "has space"},
        {"device_id": "ok", "device_name": "n" * 101},
    ]
    for fields in bad:
        assert_json_error(send(client, server, "b.jpg", other, **fields), 400, "bad_argument")
    two = client.post(
        server.api("/upload"),
        data={"sha256": sha(other)},
        files=[("file", ("b.jpg", other, "image/jpeg")), ("file", ("c.jpg", small_jpeg(22), "image/jpeg"))],
    )
    assert_json_error(two, 400, "bad_argument")
    assert client.get(server.api("/images")).json()["total"] == 1


# -- deleting an image ----------------------------------------------------------------------------


def test_delete_an_image_only_while_it_is_the_version_asked(server: Server, client: httpx.Client):
    first = small_jpeg(1)
    image = send(client, server, "keep.jpg", first).json()["images"][0]
    other = send(client, server, "other.jpg", small_jpeg(2)).json()["images"][0]
    collection = client.post(server.api("/collections"), json={"name": "Both", "image_ids": [image["id"], other["id"]]})

    assert_json_error(client.delete(server.api(f"/images/{image['id']}?if_sha256={sha(b'x')}")), 409, "changed")
    assert_json_error(client.delete(server.api(f"/images/{image['id']}?if_sha256=nothex")), 400, "bad_argument")
    assert client.get(server.api(f"/images/{image['id']}")).status_code == 200

    gone = client.delete(server.api(f"/images/{image['id']}?if_sha256={sha(first)}"))
    assert gone.status_code == 200 and gone.json()["id"] == image["id"] and gone.json()["deleted"] is True
    assert_json_error(client.get(server.api(f"/images/{image['id']}")), 404, "unknown_image")
    assert_json_error(client.delete(server.api(f"/images/{image['id']}")), 404, "unknown_image")
    assert_json_error(client.get(server.api(f"/images/by-sha256/{sha(first)}")), 404, "unknown_image")
    both = client.get(server.api(f"/collections/{collection.json()['id']}")).json()
    assert both["image_ids"] == [other["id"]] and [i["id"] for i in both["images"]] == [other["id"]]
    assert [i["id"] for i in client.get(server.api("/images")).json()["images"]] == [other["id"]]


def test_the_stream_says_deleted_and_a_replay_skips_what_is_gone(server: Server, client: httpx.Client):
    url = server.api("/events")
    with sse(url) as live:
        image = send(client, server, "soon-gone.jpg", small_jpeg(3)).json()["images"][0]
        assert live.next().event == IMAGE_CREATED
        client.delete(server.api(f"/images/{image['id']}"))
        event = live.next()
        assert (event.event, event.json()) == ("image.deleted", {"image_id": image["id"], "filename": "soon-gone.jpg"})
    # A client that was away replays from before: the creation of a deleted image is not sent, its deletion is.
    with sse(url + "?after=0") as replay:
        events = [replay.next()]
        assert [(e.event, e.json()["image_id"]) for e in events] == [("image.deleted", image["id"])]
