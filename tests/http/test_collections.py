"""Ratings, collections and exports through a real `fotoflo serve`: every endpoint, every refusal, SSE, convergence."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from PIL import Image

from dashboard.events import (
    COLLECTION_DELETED,
    COLLECTION_SAVED,
    COLLECTION_UPDATED,
    IMAGE_CREATED,
    RATING_CHANGED,
    apply_collection_change,
)
from dashboard.export import CSV_COLUMNS
from dashboard.http.base import MAX_IDS
from tests.support.api import assert_json_error, checked_client, upload, upload_new
from tests.support.images import jpeg_bytes, png_bytes, small_jpeg
from tests.support.servers import Server, fresh_project
from tests.support.sse import SseStream, sse

IMAGE_FIELDS = {
    "id", "project", "filename", "sha256", "size_bytes", "width", "height", "format", "mime", "captured_at",
    "camera_make", "camera_model", "created_at", "seq", "exif", "rating", "flag", "label", "version", "conflict_of",
    "raw_sha256", "raw_filename", "raw_size_bytes", "raw_format", "url", "preview_url", "thumbnail_url", "files",
}  # fmt: skip
CARD_FIELDS = {
    "id", "project", "name", "count", "cover_image_id", "cover_thumbnail_url", "created_at", "updated_at",
    "version", "deleted",
}  # fmt: skip
EVENT_CARD_FIELDS = {
    "collection_id", "name", "count", "cover_image_id", "cover_thumbnail_url", "version", "created_at", "updated_at",
    "deleted", "op",
}  # fmt: skip


@pytest.fixture
def server(shared_project: Server) -> Server:
    """The module's real server, seen through a project of this test's own."""
    return shared_project


def ids_of(images: list[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in images]


def rate(client: httpx.Client, server: Server, image_id: str, **values: Any) -> httpx.Response:
    return client.post(server.api(f"/images/{image_id}/rating"), json=values)


def save(client: httpx.Client, server: Server, name: str, image_ids: list[str]) -> dict[str, Any]:
    response = client.post(server.api("/collections"), json={"name": name, "image_ids": image_ids})
    assert response.status_code == 201, response.text
    return response.json()


def patch(client: httpx.Client, server: Server, collection_id: str, **op: Any) -> httpx.Response:
    return client.patch(server.api(f"/collections/{collection_id}"), json=op)


def changes(client: httpx.Client, server: Server, after: int = 0) -> list[dict[str, Any]]:
    return client.get(server.api(f"/changes?after={after}")).json()["changes"]


# -- ratings --------------------------------------------------------------------------------


def test_a_rating_is_set_shown_everywhere_and_in_the_feed(server: Server, client: httpx.Client) -> None:
    first, second = upload_new(client, server, 2)
    assert (first["rating"], first["flag"], first["label"]) == (0, "none", "none")

    response = rate(client, server, first["id"], rating=4, flag="pick")

    assert response.status_code == 200
    image = response.json()
    assert set(image) == IMAGE_FIELDS
    assert (image["id"], image["rating"], image["flag"], image["label"]) == (first["id"], 4, "pick", "none")
    assert client.get(server.api(f"/images/{first['id']}")).json()["rating"] == 4
    listed = client.get(server.api("/images")).json()["images"]
    assert [(i["id"], i["rating"], i["flag"]) for i in listed] == [(second["id"], 0, "none"), (first["id"], 4, "pick")]
    feed = changes(client, server)
    assert [c["kind"] for c in feed] == [IMAGE_CREATED, IMAGE_CREATED, RATING_CHANGED]
    assert feed[2]["image"] is None
    assert feed[2]["data"] == {"image_id": first["id"], "rating": 4, "flag": "pick", "label": "none"}
    assert feed[0]["image"]["rating"] == 4  # the image in the feed is the image as it is now

    labelled = client.post(server.api(f"/images/{first['id']}/rating/"), json={"label": "blue"}).json()
    assert (labelled["rating"], labelled["flag"], labelled["label"]) == (4, "pick", "blue")
    # The same values again: answered, but nothing new in the feed.
    assert rate(client, server, first["id"], label="blue").status_code == 200
    assert len(changes(client, server)) == 4


def test_rating_refusals_are_json_and_change_nothing(server: Server, client: httpx.Client) -> None:
    [image] = upload_new(client, server, 1)
    url = server.api(f"/images/{image['id']}/rating")
    for body in (b"{", b"[1]", b'"x"', b"\xff"):
        assert_json_error(client.post(url, content=body), 400, "bad_json")
    for values in (
        {},
        {"stars": 3},
        {"rating": None},
        {"rating": 6},
        {"rating": -1},
        {"rating": 2.5},
        {"rating": "3"},
        {"rating": True},
        {"flag": "maybe"},
        {"label": "orange"},
        {"label": ["red"]},
    ):
        error = assert_json_error(client.post(url, json=values), 400, "bad_argument")
        assert any(word in error["message"] for word in ("rating", "flag", "label")), (values, error)
    assert_json_error(client.post(url), 400, "bad_argument")  # no body at all
    assert_json_error(rate(client, server, "NoSuchImage", rating=1), 404, "unknown_image")
    other = fresh_project(server, "other")
    [theirs] = upload_new(client, other, 1, first_seed=50)
    assert_json_error(rate(client, server, theirs["id"], rating=1), 404, "unknown_image")
    missing = client.post(f"{server.url}/api/projects/nope/images/{image['id']}/rating", json={"rating": 1})
    assert_json_error(missing, 404, "unknown_project")
    assert_json_error(client.get(url), 405)
    assert len(changes(client, server)) == 1
    assert client.get(server.api(f"/images/{image['id']}")).json()["rating"] == 0


def test_image_filters_page_newest_first(server: Server, client: httpx.Client) -> None:
    images = upload_new(client, server, 7)
    values = [(5, "pick", "red"), (0, "reject", "none"), (3, "pick", "none"), (4, "none", "red"),
              (1, "pick", "red"), (5, "pick", "green"), (4, "pick", "red")]  # fmt: skip
    for image, (rating, flag, label) in zip(images, values, strict=True):
        assert rate(client, server, image["id"], rating=rating, flag=flag, label=label).status_code == 200

    def listed(query: str) -> list[str]:
        out, url = [], server.api(f"/images?{query}&limit=2")
        while True:
            body = client.get(url).json()
            out += ids_of(body["images"])
            if body["next"] is None:
                return out
            assert "total" not in client.get(server.api(f"/images?{query}&before={body['next']}")).json()
            url = server.api(f"/images?{query}&limit=2&before={body['next']}")

    ids = ids_of(images)
    assert listed("min_rating=4") == [ids[6], ids[5], ids[3], ids[0]]
    assert listed("flag=pick") == [ids[6], ids[5], ids[4], ids[2], ids[0]]
    assert listed("flag=pick&label=red&min_rating=2") == [ids[6], ids[0]]
    assert listed("flag=reject") == [ids[1]]
    assert listed("label=green") == [ids[5]]
    assert listed("min_rating=&flag=&label=") == ids[::-1]
    assert client.get(server.api("/images?flag=pick")).json()["total"] == 5
    assert client.get(server.api("/images?min_rating=5&label=red")).json()["total"] == 1
    for query in ("min_rating=6", "min_rating=-1", "min_rating=abc", "flag=maybe", "flag=PICK", "label=orange"):
        error = assert_json_error(client.get(server.api(f"/images?{query}")), 400, "bad_argument")
        assert query.split("=")[0] in error["message"]


# -- collections ----------------------------------------------------------------------------


def test_save_list_read_edit_delete_undelete_duplicate(server: Server, client: httpx.Client) -> None:
    a, b, c, d = ids_of(upload_new(client, server, 4))

    saved = save(client, server, " Selects ", [c, a, b])
    assert set(saved) == CARD_FIELDS | {"image_ids"}
    assert (saved["name"], saved["image_ids"], saved["count"], saved["version"]) == ("Selects", [c, a, b], 3, 1)
    assert saved["cover_image_id"] == c and saved["deleted"] is False
    assert saved["cover_thumbnail_url"].startswith(f"/files/{c}/thumb?")
    cover = client.get(server.url + saved["cover_thumbnail_url"])
    assert cover.status_code == 200 and cover.headers["content-type"] == "image/jpeg"
    cid = saved["id"]

    listing = client.get(server.api("/collections")).json()
    assert listing["last_seq"] == 5
    [card] = listing["collections"]
    assert set(card) == CARD_FIELDS and card["id"] == cid and card["count"] == 3

    full = client.get(server.api(f"/collections/{cid}")).json()
    assert full["image_ids"] == [c, a, b] and ids_of(full["images"]) == [c, a, b]
    assert all(set(i) == IMAGE_FIELDS for i in full["images"])
    assert client.get(server.api(f"/collections/{cid}/")).json()["id"] == cid

    steps: list[tuple[dict[str, Any], list[str]]] = [
        ({"op": "add", "image_ids": [d], "before": a}, [c, d, a, b]),
        ({"op": "move", "image_ids": [b], "before": c}, [b, c, d, a]),
        ({"op": "move", "image_ids": [b]}, [c, d, a, b]),
        ({"op": "remove", "image_ids": [d, a]}, [c, b]),
        ({"op": "add", "image_ids": [a], "index": 0}, [a, c, b]),
        ({"op": "add", "image_ids": [d]}, [a, c, b, d]),
        ({"op": "cover", "image_id": b}, [a, c, b, d]),
        ({"op": "rename", "name": "Final selects"}, [a, c, b, d]),
    ]
    for version, (op, expected) in enumerate(steps, start=2):
        response = patch(client, server, cid, **op)
        assert response.status_code == 200, (op, response.text)
        body = response.json()
        assert (body["image_ids"], body["version"]) == (expected, version), op
    assert (body["name"], body["cover_image_id"]) == ("Final selects", b)

    # No-ops answer the collection as it is, and add nothing to the feed.
    seq = client.get(server.api("/changes")).json()["last_seq"]
    for op in ({"op": "add", "image_ids": [a]}, {"op": "remove", "image_ids": []}, {"op": "cover", "image_id": b}):
        assert patch(client, server, cid, **op).json()["version"] == 9
    assert client.get(server.api("/changes")).json()["last_seq"] == seq

    copy = client.post(server.api(f"/collections/{cid}/duplicate"))
    assert copy.status_code == 201
    assert (copy.json()["name"], copy.json()["image_ids"], copy.json()["cover_image_id"]) == (
        "Final selects copy", [a, c, b, d], b
    )  # fmt: skip
    named = client.post(server.api(f"/collections/{cid}/duplicate/"), json={"name": "For the client"})
    assert named.status_code == 201 and named.json()["name"] == "For the client"

    deleted = client.delete(server.api(f"/collections/{cid}"))
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert client.delete(server.api(f"/collections/{cid}")).status_code == 200  # again: no-op
    names = [x["name"] for x in client.get(server.api("/collections")).json()["collections"]]
    assert names == ["For the client", "Final selects copy"]
    for response in (
        client.get(server.api(f"/collections/{cid}")),
        patch(client, server, cid, op="rename", name="x"),
        client.post(server.api(f"/collections/{cid}/duplicate")),
        client.get(server.api(f"/collections/{cid}/export.txt")),
        client.get(server.api(f"/collections/{cid}/export.zip")),
    ):
        assert_json_error(response, 410, "collection_deleted")

    back = client.post(server.api(f"/collections/{cid}/undelete"))
    assert back.status_code == 200
    restored = back.json()
    assert (restored["deleted"], restored["image_ids"], restored["name"]) == (False, [a, c, b, d], "Final selects")
    assert client.get(server.api(f"/collections/{cid}")).status_code == 200
    assert len(client.get(server.api("/collections")).json()["collections"]) == 3


def test_collection_refusals_are_json(server: Server, client: httpx.Client) -> None:
    a, b = ids_of(upload_new(client, server, 2))
    other = fresh_project(server, "other")
    [theirs] = ids_of(upload_new(client, other, 1, first_seed=70))
    cid = save(client, server, "Strict", [a])["id"]
    url = server.api(f"/collections/{cid}")
    seq = client.get(server.api("/changes")).json()["last_seq"]

    for body in (
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": 3},
        {},
        {"name": "ok", "image_ids": "abc"},
        {"name": "ok", "image_ids": [1, 2]},
        {"name": "ok", "extra": 1},
        {"name": "ok", "image_ids": ["a"] * (MAX_IDS + 1)},
    ):
        assert_json_error(client.post(server.api("/collections"), json=body), 400, "bad_argument")
    assert_json_error(client.post(server.api("/collections"), content=b"nope"), 400, "bad_json")
    assert_json_error(client.post(server.api("/collections"), json={"name": "x", "image_ids": [a, theirs]}), 404,
                      "unknown_image")  # fmt: skip
    assert_json_error(client.post(server.api("/collections"), json={"name": "x", "image_ids": ["ghost"]}), 404)

    for op in (
        {},
        {"op": "explode"},
        {"op": "delete"},  # DELETE is the method for that
        {"op": "rename"},
        {"op": "rename", "name": ""},
        {"op": "cover"},
        {"op": "add"},
        {"op": "add", "image_ids": a},
        {"op": "add", "image_ids": [b], "index": True},
        {"op": "add", "image_ids": [b], "index": "1"},
        {"op": "add", "image_ids": [b], "before": 3},
        {"op": "add", "image_ids": [b], "before": a, "index": 0},
        {"op": "move", "image_ids": [a], "before": a},
        {"op": "move", "image_ids": [a], "index": 0},
        {"op": "remove", "image_ids": [a], "name": "x"},
    ):
        assert_json_error(client.patch(url, json=op), 400, "bad_argument")
    assert_json_error(client.patch(url, content=b"[]"), 400, "bad_json")
    assert_json_error(patch(client, server, cid, op="add", image_ids=[theirs]), 404, "unknown_image")
    assert_json_error(patch(client, server, cid, op="remove", image_ids=["ghost"]), 404, "unknown_image")
    assert_json_error(patch(client, server, cid, op="move", image_ids=[a], before="ghost"), 404, "unknown_image")
    assert_json_error(patch(client, server, cid, op="cover", image_id=b), 409, "not_in_collection")
    assert_json_error(client.put(url, json={}), 405)
    assert_json_error(client.post(url, json={}), 405)
    assert_json_error(client.get(server.api(f"/collections/{cid}/undelete")), 405)

    for method, path in [
        ("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/undelete"), ("POST", "/duplicate"),
        ("GET", "/export.txt"), ("GET", "/export.csv"), ("GET", "/export.zip"),
    ]:  # fmt: skip
        body = {"op": "rename", "name": "x"} if method == "PATCH" else None
        response = client.request(method, server.api(f"/collections/NoSuchCollection{path}"), json=body)
        assert_json_error(response, 404, "unknown_collection")
        # A collection is not reachable through another project.
        response = client.request(method, other.api(f"/collections/{cid}{path}"), json=body)
        assert_json_error(response, 404, "unknown_collection")
        response = client.request(method, f"{server.url}/api/projects/nope/collections/{cid}{path}", json=body)
        assert_json_error(response, 404, "unknown_project")
    for method in ("GET", "POST"):
        response = client.request(method, f"{server.url}/api/projects/nope/collections", json={"name": "x"})
        assert_json_error(response, 404, "unknown_project")
    assert_json_error(client.get(server.api(f"/collections/{cid}/export.pdf")), 404, "not_found")

    assert client.get(server.api("/changes")).json()["last_seq"] == seq
    assert client.get(url).json()["image_ids"] == [a]
    assert "nope" not in client.get(f"{server.url}/api/projects").json()["projects"]


def test_concurrent_saves_with_one_name_are_all_kept(server: Server, client: httpx.Client) -> None:
    ids = ids_of(upload_new(client, server, 2))
    start = threading.Barrier(5)

    def save_one(_: int) -> str:
        with checked_client() as own:
            start.wait()
            return str(save(own, server, "Client picks", ids)["name"])

    with ThreadPoolExecutor(max_workers=5) as pool:
        names = list(pool.map(save_one, range(5)))

    assert sorted(names) == ["Client picks"] + [f"Client picks ({n})" for n in range(2, 6)]
    cards = client.get(server.api("/collections")).json()["collections"]
    assert sorted(c["name"] for c in cards) == sorted(names) and all(c["count"] == 2 for c in cards)


def test_a_new_image_never_appears_in_a_saved_collection(server: Server, client: httpx.Client) -> None:
    ids = ids_of(upload_new(client, server, 3))
    saved = save(client, server, "Before lunch", ids[:2])
    upload_new(client, server, 2, first_seed=100)
    upload(client, server, ("late.jpg", small_jpeg(200)))

    now = client.get(server.api(f"/collections/{saved['id']}")).json()
    assert now["image_ids"] == ids[:2] and now["version"] == 1 and now["updated_at"] == saved["updated_at"]
    [card] = client.get(server.api("/collections")).json()["collections"]
    assert card["count"] == 2
    text = client.get(server.api(f"/collections/{saved['id']}/export.txt")).text
    assert text.splitlines() == ["img-000.jpg", "img-001.jpg"]
    # In the feed, after the save, only the new images: nothing touched the collection.
    kinds = [c["kind"] for c in changes(client, server)]
    assert kinds == [IMAGE_CREATED] * 3 + [COLLECTION_SAVED] + [IMAGE_CREATED] * 3


# -- the feed and SSE -----------------------------------------------------------------------


def test_sse_delivers_rating_and_collection_changes_in_order(server: Server, client: httpx.Client) -> None:
    a, b, c = ids_of(upload_new(client, server, 3))
    with sse(server.api("/events")) as stream:
        rate(client, server, a, rating=5, flag="pick")
        cid = save(client, server, "Live", [a, b])["id"]
        patch(client, server, cid, op="add", image_ids=[c], before=b)
        patch(client, server, cid, op="add", image_ids=[c])  # no-op: no event
        patch(client, server, cid, op="remove", image_ids=[a])
        client.delete(server.api(f"/collections/{cid}"))
        client.post(server.api(f"/collections/{cid}/undelete"))
        copy = client.post(server.api(f"/collections/{cid}/duplicate")).json()
        rate(client, server, b, label="purple")

        events = stream.take(8)
        assert [e.event for e in events] == [
            RATING_CHANGED, COLLECTION_SAVED, COLLECTION_UPDATED, COLLECTION_UPDATED, COLLECTION_DELETED,
            COLLECTION_UPDATED, COLLECTION_SAVED, RATING_CHANGED,
        ]  # fmt: skip
        assert [e.id for e in events] == [str(seq) for seq in range(4, 12)]
        data = [e.json() for e in events]
        assert data[0] == {"image_id": a, "rating": 5, "flag": "pick", "label": "none"}
        assert data[7] == {"image_id": b, "rating": 0, "flag": "none", "label": "purple"}
        for event in data[1:7]:
            assert set(event) >= EVENT_CARD_FIELDS and event["collection_id"] in (cid, copy["id"])
            assert event["cover_thumbnail_url"].startswith(f"/files/{event['cover_image_id']}/thumb?")
        assert [d["op"] for d in data[1:7]] == ["save", "add", "remove", "delete", "undelete", "duplicate"]
        assert [d["version"] for d in data[1:7]] == [1, 2, 3, 4, 5, 1]
        assert (data[2]["image_ids"], data[2]["index"]) == ([c], 1)
        assert data[6]["source_id"] == cid and data[6]["image_ids"] == [c, b]
        assert stream.pending() == 0

    # /changes has the same entries, with the same data.
    feed = changes(client, server, after=3)
    assert [(c["kind"], c["image"]) for c in feed] == [(e.event, None) for e in events]
    assert [c["data"] for c in feed] == data


def test_two_windows_editing_one_collection_converge(server: Server, client: httpx.Client) -> None:
    """Two windows send their edits at once; each applies the events it receives and ends where the server is."""
    names = ["x1", "x2", "x3", "x4", "x5", "n1", "n2", "n3", "n4", "n5"]
    real = dict(zip(names, ids_of(upload_new(client, server, len(names))), strict=True))
    window_a = [
        {"op": "add", "image_ids": ["n1", "n2"], "before": "x3"},
        {"op": "move", "image_ids": ["x5"], "before": "x1"},
        {"op": "remove", "image_ids": ["x2"]},
        {"op": "add", "image_ids": ["n5"], "index": 2},
        {"op": "move", "image_ids": ["n1"]},
    ]
    window_b = [
        {"op": "remove", "image_ids": ["x3", "x4"]},
        {"op": "add", "image_ids": ["n3"], "index": 0},
        {"op": "move", "image_ids": ["x2", "x1"], "before": "x5"},
        {"op": "add", "image_ids": ["n2", "n4"]},
        {"op": "remove", "image_ids": ["n3"]},
    ]

    def real_op(op: dict[str, Any]) -> dict[str, Any]:
        return {k: [real[i] for i in v] if k == "image_ids" else real.get(v, v) for k, v in op.items()}

    for round_number in range(3):
        start_ids = [real[n] for n in ("x1", "x2", "x3", "x4", "x5")]
        with sse(server.api("/events")) as window_a_stream, sse(server.api("/events")) as window_b_stream:
            cid = save(client, server, f"Shared {round_number}", start_ids)["id"]
            edit_at_once(server, cid, [real_op(op) for op in window_a], [real_op(op) for op in window_b])
            final = client.get(server.api(f"/collections/{cid}")).json()
            views = [follow(stream, cid, final["version"]) for stream in (window_a_stream, window_b_stream)]

        # No add or remove is lost, whatever order the server took them in...
        assert set(final["image_ids"]) == {real[n] for n in ("x1", "x5", "n1", "n2", "n4", "n5")}
        # ...and both windows, from the events alone, see exactly the server's collection.
        assert views == [final["image_ids"], final["image_ids"]]


def edit_at_once(server: Server, collection_id: str, *windows: list[dict[str, Any]]) -> None:
    """Each window's edits in order from its own thread and connection, all windows starting together."""
    start = threading.Barrier(len(windows))

    def run(ops: list[dict[str, Any]]) -> None:
        with checked_client() as own:
            start.wait()
            for op in ops:
                response = patch(own, server, collection_id, **op)
                assert response.status_code == 200, response.text

    with ThreadPoolExecutor(max_workers=len(windows)) as pool:
        for done in [pool.submit(run, ops) for ops in windows]:
            done.result()


def follow(stream: SseStream, collection_id: str, version: int) -> list[str]:
    """The collection's order as a window that applies its events builds it, up to `version`."""
    state: list[str] = []
    while True:
        data = stream.next().json()
        if data.get("collection_id") != collection_id:
            continue
        state = apply_collection_change(state, data)
        if data["version"] == version:
            return state


# -- exports --------------------------------------------------------------------------------


def noise_png(size: tuple[int, int] = (1100, 1000)) -> bytes:
    """A PNG of noise, several MiB: it does not compress, so the ZIP streams many chunks."""
    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, "PNG", compress_level=0)
    return out.getvalue()


TAKEN = "2024:05:01 10:20:30"


def test_exports_match_the_originals_byte_for_byte(server: Server, client: httpx.Client) -> None:
    originals = [
        ("DSC_0001.JPG", jpeg_bytes((320, 240), seed=1, make="Canon", model="Canon EOS R6", taken=TAKEN)),
        ("DSC_0001.JPG", jpeg_bytes((320, 240), seed=2, make="NIKON", model="Z 8")),  # another file, same name
        ("dsc_0001.jpg", jpeg_bytes((320, 240), seed=3)),
        ("Mariée, 12:30.jpg", jpeg_bytes((240, 320), seed=4)),  # a comma to quote, a colon Windows refuses
        ("scan.png", png_bytes((200, 100))),
        ("big noise.png", noise_png()),
    ]  # fmt: skip
    images = []
    for name, data in originals:
        response = upload(client, server, (name, data))
        assert response.status_code == 201, response.text
        images.append(response.json()["images"][0])
    order = [5, 0, 3, 1, 4, 2]
    rate(client, server, images[0]["id"], rating=5, flag="pick", label="red")
    saved = save(client, server, 'Wedding / "Selects"', [images[i]["id"] for i in order])
    base = server.api(f"/collections/{saved['id']}")
    names = [originals[i][0] for i in order]
    assert [images[i]["filename"] for i in order] == names

    text = client.get(base + "/export.txt")
    assert text.status_code == 200 and text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.headers["content-disposition"].startswith('attachment; filename="Wedding _ _Selects_.txt"; ')
    assert text.headers["content-disposition"].endswith("filename*=UTF-8''Wedding%20_%20_Selects_.txt")
    assert text.content.decode("utf-8").split("\n") == [*names, ""]

    table = client.get(base + "/export.csv")
    assert table.status_code == 200 and table.headers["content-type"] == "text/csv; charset=utf-8"
    assert "Wedding _ _Selects_.csv" in table.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(table.content.decode("utf-8"), newline="")))
    assert list(rows[0]) == list(CSV_COLUMNS)
    for row, i in zip(rows, order, strict=True):
        image = images[i]
        assert (row["filename"], row["id"], row["sha256"]) == (originals[i][0], image["id"], image["sha256"])
        assert (row["width"], row["height"]) == (str(image["width"]), str(image["height"]))
        assert row["captured_at"] == image["captured_at"]
    first = rows[order.index(0)]
    assert (first["camera"], first["rating"], first["flag"], first["label"]) == ("Canon EOS R6", "5", "pick", "red")
    assert rows[order.index(1)]["camera"] == "NIKON Z 8"
    assert rows[order.index(4)]["camera"] == "" and rows[order.index(4)]["flag"] == "none"

    # A plain client: checked_client reads every body whole in its hook, this one reads the stream as it comes.
    with httpx.Client(timeout=15) as plain, plain.stream("GET", base + "/export.zip") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/zip"
        assert "chunked" not in response.headers.get("transfer-encoding", "")
        assert "Wedding _ _Selects_.zip" in response.headers["content-disposition"]
        announced = int(response.headers["content-length"])
        pieces = list(response.iter_raw())
    body = b"".join(pieces)
    assert len(body) == announced > sum(len(d) for _, d in originals)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        members = archive.infolist()
        assert [m.filename for m in members] == [
            "big noise.png", "DSC_0001.JPG", "Mariée, 12_30.jpg", "DSC_0001 (2).JPG", "scan.png",
            "dsc_0001 (3).jpg",
        ]  # fmt: skip
        for member, i in zip(members, order, strict=True):
            data = archive.read(member)
            assert data == originals[i][1], member.filename
            assert hashlib.sha256(data).hexdigest() == images[i]["sha256"]
            assert member.compress_type == zipfile.ZIP_STORED
        assert members[1].date_time == (2024, 5, 1, 10, 20, 30)  # the capture time


def test_exports_of_an_empty_collection(server: Server, client: httpx.Client) -> None:
    cid = save(client, server, "Empty", [])["id"]
    assert client.get(server.api(f"/collections/{cid}/export.txt")).content == b""
    assert client.get(server.api(f"/collections/{cid}/export.csv")).text.strip() == ",".join(CSV_COLUMNS)
    empty = client.get(server.api(f"/collections/{cid}/export.zip"))
    assert empty.headers["content-length"] == "22"
    with zipfile.ZipFile(io.BytesIO(empty.content)) as archive:
        assert archive.namelist() == []


def test_a_missing_original_is_404_before_the_zip_starts(server: Server, client: httpx.Client) -> None:
    data = jpeg_bytes((64, 48), seed=987_654, model="only-in-this-test")
    [image] = upload(client, server, ("lost.jpg", data)).json()["images"]
    cid = save(client, server, "Lost", [image["id"]])["id"]
    sha = image["sha256"]
    (server.data / "blobs" / "original" / sha[:2] / sha).unlink()
    assert_json_error(client.get(server.api(f"/collections/{cid}/export.zip")), 404, "missing_file")
    # The lists do not need the files.
    assert client.get(server.api(f"/collections/{cid}/export.txt")).text == "lost.jpg\n"
