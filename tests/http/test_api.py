"""The HTTP API of a real `fotoflo serve` on loopback: every endpoint, every refusal as JSON, signed files."""

from __future__ import annotations

import hashlib
import io
import os
import time
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from dashboard.blobs import FileBlobs
from dashboard.bus import LocalBus
from dashboard.events import IMAGE_CREATED
from dashboard.ingest import Ingestor
from dashboard.samples import photo_jpeg, raw_dng
from dashboard.signing import DEFAULT_TTL_S, UrlSigner
from dashboard.store.sqlite import SQLiteStore
from tests.support.api import assert_json_error, checked_client, upload, upload_new
from tests.support.images import jpeg_bytes, png_bytes, small_jpeg
from tests.support.servers import Server, ServerFactory
from tests.support.waiting import wait_until

IMAGE_FIELDS = {
    "id", "project", "filename", "sha256", "size_bytes", "width", "height", "format", "mime", "captured_at",
    "camera_make", "camera_model", "created_at", "seq", "url", "preview_url", "thumbnail_url",
}  # fmt: skip


@pytest.fixture
def server(shared_project: Server) -> Server:
    """The module's real server, seen through a project of this test's own."""
    return shared_project


def signer_of(server: Server) -> UrlSigner:
    return UrlSigner((server.data / "secret.key").read_bytes().strip())


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bmp_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "BMP")
    return out.getvalue()


# -- projects, health, unknown paths --------------------------------------------------------


def test_projects_and_healthz(server: Server, client: httpx.Client) -> None:
    for path in ("/api/projects", "/api/projects/"):
        response = client.get(server.url + path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        projects = response.json()["projects"]
        assert {"default", server.project} <= set(projects) and projects == sorted(projects)
    health = client.get(f"{server.url}/healthz")
    assert health.status_code == 200 and health.headers["content-type"].startswith("application/json")
    body = health.json()
    assert (body["status"], body["store"], body["bus"]) == ("ok", "ok", "connected")
    assert body["watcher"] == str(server.watch.resolve())
    assert body["subscribers"] == 0


def test_every_project_in_the_store_is_served_and_kept_apart(server_factory: ServerFactory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = SQLiteStore(data / "fotoflo.sqlite")
    store.ensure_project("archive")
    other = Ingestor(store, FileBlobs(data / "blobs"), LocalBus()).ingest(small_jpeg(1), "archive", filename="old.jpg")
    store.close()
    server = server_factory(data=data, project="studio")
    with checked_client() as client:
        assert client.get(f"{server.url}/api/projects").json() == {"projects": ["archive", "studio"]}
        listed = client.get(f"{server.url}/api/projects/archive/images").json()["images"]
        assert [i["id"] for i in listed] == [other.image.id]
        assert client.get(f"{server.url}/api/projects/archive/images/{other.image.id}").status_code == 200
        # An image of one project is not reachable under another.
        assert_json_error(client.get(server.api(f"/images/{other.image.id}")), 404, "unknown_image")
        assert client.get(server.api("/images")).json()["images"] == []


def test_unknown_paths_and_methods_answer_json(server: Server, client: httpx.Client) -> None:
    for path in ("/api/whatever", "/api/projects/default/nope", "/api/projects/default/images/a/b", "/api/"):
        assert_json_error(client.get(server.url + path), 404, "not_found")
    assert_json_error(client.post(server.url + "/api/whatever"), 404, "not_found")
    assert_json_error(client.delete(server.api("/images")), 405)
    assert_json_error(client.get(server.api("/upload")), 405)


def test_unknown_project_is_404_json_on_every_project_endpoint(server: Server, client: httpx.Client) -> None:
    base = f"{server.url}/api/projects/nope"
    requests = [
        client.build_request("GET", f"{base}/images"),
        client.build_request("GET", f"{base}/images?limit=5&before=3"),
        client.build_request("GET", f"{base}/images/abcdef"),
        client.build_request("GET", f"{base}/changes"),
        client.build_request("GET", f"{base}/changes?after=1"),
        client.build_request("POST", f"{base}/upload", files={"file": ("a.jpg", small_jpeg(1))}),
        client.build_request("GET", f"{base}/events"),
    ]
    for request in requests:
        assert_json_error(client.send(request), 404, "unknown_project")
    # The unknown project was not created on the way.
    assert "nope" not in client.get(f"{server.url}/api/projects").json()["projects"]


def test_bad_query_arguments_are_400_json(server: Server, client: httpx.Client) -> None:
    bad = [
        "/images?limit=abc",
        "/images?limit=0",
        "/images?limit=-3",
        "/images?limit=501",
        "/images?limit=1.5",
        "/images?before=-1",
        "/images?before=0",
        "/images?before=x",
        "/images?before=" + "9" * 30,
        "/changes?after=-1",
        "/changes?after=abc",
        "/changes?limit=0",
        "/changes?limit=abc",
        "/events?after=abc",
    ]
    for path in bad:
        error = assert_json_error(client.get(server.api(path)), 400, "bad_argument")
        name = path.split("?")[1].split("=")[0]
        assert name in error["message"], (path, error)


# -- listing and reading images -------------------------------------------------------------


def test_a_listed_image_is_the_image_as_read_alone_on_every_page(server: Server, client: httpx.Client) -> None:
    uploaded = upload_new(client, server, 5)
    for image, rating in zip(uploaded, (5, 0, 4, 2, 5), strict=True):
        assert client.post(server.api(f"/images/{image['id']}/rating"), json={"rating": rating}).status_code == 200
    alone = {i["id"]: client.get(server.api(f"/images/{i['id']}")).json() for i in uploaded}
    assert all(i["camera_model"] and "exif" in i for i in alone.values())
    first = client.get(server.api("/images?limit=2&min_rating=4")).json()
    rest = client.get(server.api(f"/images?limit=2&min_rating=4&before={first['next']}")).json()
    assert (first["total"], "total" not in rest, rest["next"]) == (3, True, None)
    listed = first["images"] + rest["images"]
    assert [i["id"] for i in listed] == [uploaded[4]["id"], uploaded[2]["id"], uploaded[0]["id"]]
    assert listed == [alone[i["id"]] for i in listed]  # every field, EXIF and signed URLs included
    assert first["last_seq"] == rest["last_seq"] == 9  # 5 uploads, 4 ratings (0 was already 0)


def test_images_page_newest_first_with_cursors(server: Server, client: httpx.Client) -> None:
    uploaded = upload_new(client, server, 7)
    assert [i["seq"] for i in uploaded] == list(range(1, 8))
    pages, url = [], server.api("/images?limit=3")
    while True:
        body = client.get(url).json()
        pages.append(body["images"])
        if body["next"] is None:
            break
        assert isinstance(body["next"], str)
        url = server.api(f"/images?limit=3&before={body['next']}")
    assert [len(p) for p in pages] == [3, 3, 1]
    seqs = [i["seq"] for page in pages for i in page]
    assert seqs == list(range(7, 0, -1))
    assert [i["id"] for page in pages for i in page] == [i["id"] for i in reversed(uploaded)]
    # The default page holds them all; `limit` at its maximum is accepted.
    assert len(client.get(server.api("/images")).json()["images"]) == 7
    assert len(client.get(server.api("/images?limit=500")).json()["images"]) == 7
    last_page = client.get(server.api("/images?before=1")).json()
    assert (last_page["images"], last_page["next"]) == ([], None)


def test_get_one_image_has_every_field(server: Server, client: httpx.Client) -> None:
    data = jpeg_bytes((800, 600), orientation=6, taken="2024:05:01 10:20:30", make="Canon", model="EOS R5")
    created = upload(client, server, ("portrait.jpg", data)).json()["images"][0]
    image = client.get(server.api(f"/images/{created['id']}")).json()
    assert set(image) >= IMAGE_FIELDS, IMAGE_FIELDS - set(image)
    assert image["id"] == created["id"] and image["project"] == server.project
    assert image["filename"] == "portrait.jpg"
    assert image["sha256"] == hashlib.sha256(data).hexdigest()
    assert image["size_bytes"] == len(data)
    assert (image["width"], image["height"]) == (600, 800)  # EXIF orientation 6: shown upright
    assert (image["format"], image["mime"]) == ("JPEG", "image/jpeg")
    assert image["captured_at"] == "2024-05-01T10:20:30"
    assert (image["camera_make"], image["camera_model"]) == ("Canon", "EOS R5")
    assert image["created_at"] and image["seq"] == 1
    for key, kind in (("url", "original"), ("preview_url", "preview"), ("thumbnail_url", "thumb")):
        assert image[key].startswith(f"/files/{image['id']}/{kind}?"), image[key]
    assert client.get(server.api(f"/images/{image['id']}/")).json()["id"] == image["id"]
    assert_json_error(client.get(server.api("/images/NoSuchImage")), 404, "unknown_image")


# -- upload ---------------------------------------------------------------------------------


def test_upload_one_then_many(server: Server, client: httpx.Client) -> None:
    one = upload(client, server, ("one.jpg", small_jpeg(1)))
    assert one.status_code == 201
    body = one.json()
    assert body["errors"] == [] and len(body["images"]) == 1
    assert body["images"][0]["created"] is True and body["images"][0]["filename"] == "one.jpg"
    assert set(body["images"][0]) >= IMAGE_FIELDS

    many = upload(client, server, ("a.jpg", small_jpeg(2)), ("b.png", png_bytes()), ("c.jpg", small_jpeg(3)))
    assert many.status_code == 201
    images = many.json()["images"]
    assert [i["filename"] for i in images] == ["a.jpg", "b.png", "c.jpg"]
    assert all(i["created"] for i in images)
    assert images[1]["mime"] == "image/png"
    assert len(client.get(server.api("/images")).json()["images"]) == 4


def test_duplicate_upload_returns_the_existing_image(server: Server, client: httpx.Client) -> None:
    data = small_jpeg(5)
    first = upload(client, server, ("first.jpg", data)).json()["images"][0]
    again = upload(client, server, ("renamed.jpg", data))
    assert again.status_code == 200
    image = again.json()["images"][0]
    assert image["id"] == first["id"] and image["created"] is False and image["filename"] == "first.jpg"
    changes = client.get(server.api("/changes")).json()
    assert changes["last_seq"] == 1 and len(changes["changes"]) == 1  # nothing new in the feed
    # A new image beside a duplicate is still "created".
    mixed = upload(client, server, ("dup.jpg", data), ("new.jpg", small_jpeg(6)))
    assert mixed.status_code == 201
    assert [(i["filename"], i["created"]) for i in mixed.json()["images"]] == [("new.jpg", True), ("first.jpg", False)]


def test_refused_uploads_name_the_file_and_the_reason(server: Server, client: httpx.Client) -> None:
    cases = [
        ("notes.txt", b"call the client at noon\n", 415, "not_an_image"),
        ("fake.jpg", b"<html>not a jpeg</html>", 415, "not_an_image"),
        ("bitmap.bmp", bmp_bytes(), 415, "unsupported_format"),
        ("cut.jpg", jpeg_bytes((400, 300))[:900], 422, "corrupt"),
        ("empty.jpg", b"", 422, "empty"),
    ]
    for name, data, status, code in cases:
        response = upload(client, server, (name, data))
        assert response.status_code == status, (name, response.text)
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["images"] == []
        [error] = body["errors"]
        assert (error["filename"], error["code"]) == (name, code)
        assert error["reason"]
    mixed = upload(client, server, ("good.jpg", small_jpeg(1)), ("notes.txt", b"hello"))
    assert mixed.status_code == 201
    body = mixed.json()
    assert [i["filename"] for i in body["images"]] == ["good.jpg"]
    assert [(e["filename"], e["code"]) for e in body["errors"]] == [("notes.txt", "not_an_image")]
    # Only the good file was stored.
    assert [i["filename"] for i in client.get(server.api("/images")).json()["images"]] == ["good.jpg"]


def test_upload_without_a_file_field_is_400(server: Server, client: httpx.Client) -> None:
    assert_json_error(upload(client, server, ("a.jpg", small_jpeg(1)), field_name="image"), 400, "no_file")
    assert_json_error(client.post(server.api("/upload"), data={"file": "not a file"}), 400, "no_file")
    assert_json_error(client.post(server.api("/upload")), 400, "no_file")
    # A multipart body without its boundary is refused by tornado's parser: still a 400 in our JSON shape.
    broken = client.post(server.api("/upload"), content=b"garbage", headers={"content-type": "multipart/form-data"})
    assert_json_error(broken, 400)
    assert client.get(server.api("/images")).json()["images"] == []


def test_a_raw_and_its_jpeg_uploaded_apart_are_one_image_with_two_downloads(
    server: Server, client: httpx.Client
) -> None:
    raw = raw_dng(1200, 800, seed=21, captured="2026:11:20 14:03:09")
    jpeg = photo_jpeg(21, (1200, 800), captured="2026:11:20 14:03:09")

    first = upload(client, server, ("IMG_0001.CR3", raw))
    assert first.status_code == 201, first.text
    shown = first.json()["images"][0]
    assert [(f["role"], f["filename"], f["format"]) for f in shown["files"]] == [("raw", "IMG_0001.CR3", "DNG")]
    second = upload(client, server, ("IMG_0001.JPG", jpeg))
    assert second.status_code == 201, second.text
    paired = second.json()["images"][0]
    assert (paired["id"], paired["created"], paired["updated"]) == (shown["id"], False, True)

    image = client.get(server.api(f"/images/{shown['id']}")).json()
    assert [i["id"] for i in client.get(server.api("/images")).json()["images"]] == [shown["id"]]
    assert (image["format"], image["filename"], image["sha256"]) == ("JPEG", "IMG_0001.JPG", sha256_hex(jpeg))
    files = image["files"]
    assert [(f["role"], f["filename"], f["size_bytes"], f["format"]) for f in files] == [
        ("jpeg", "IMG_0001.JPG", len(jpeg), "JPEG"),
        ("raw", "IMG_0001.CR3", len(raw), "DNG"),
    ]
    assert files[0]["url"] == image["url"]
    for file, data, mime in ((files[0], jpeg, "image/jpeg"), (files[1], raw, "image/x-adobe-dng")):
        download = client.get(server.url + file["url"])
        assert download.status_code == 200 and download.content == data
        assert download.headers["content-type"] == mime
        assert download.headers["content-disposition"].endswith(f"''{file['filename']}")
    # Sent again, both files together: nothing new.
    again = upload(client, server, ("IMG_0001.CR3", raw), ("IMG_0001.JPG", jpeg))
    assert again.status_code == 200, again.text
    assert {i["id"] for i in again.json()["images"]} == {shown["id"]}
    assert client.get(server.api("/images")).json()["total"] == 1
    # The collection's ZIP has both originals.
    saved = client.post(server.api("/collections"), json={"name": "Pair", "image_ids": [shown["id"]]}).json()
    with zipfile.ZipFile(io.BytesIO(client.get(server.api(f"/collections/{saved['id']}/export.zip")).content)) as z:
        assert [(m.filename, z.read(m)) for m in z.infolist()] == [("IMG_0001.JPG", jpeg), ("IMG_0001.CR3", raw)]


def test_a_sync_upload_pairs_only_within_the_folder_it_names(server: Server, client: httpx.Client) -> None:
    taken = "2026:11:20 14:03:09"
    raw, jpeg = raw_dng(1200, 800, seed=22, captured=taken), photo_jpeg(22, (1200, 800), captured=taken)

    def send(name: str, data: bytes, folder: str) -> httpx.Response:
        files = {"file": (name, data, "application/octet-stream")}
        return client.post(server.api("/upload"), data={"sha256": sha256_hex(data), "folder": folder}, files=files)

    assert send("IMG_0001.CR3", raw, "card-a/DCIM").status_code == 201
    other = send("IMG_0001.JPG", jpeg, "card-b/DCIM")
    assert other.status_code == 201 and other.json()["images"][0]["created"] is True  # another folder
    assert client.get(server.api("/images")).json()["total"] == 2
    # The RAW's own folder, as Windows writes it: its JPEG joins it.
    same = send("IMG_0001.JPG", photo_jpeg(24, (1200, 800), captured=taken), "card-a\\DCIM")
    assert same.status_code == 201, same.text
    paired = same.json()["images"][0]
    assert (paired["created"], paired["updated"], paired["raw_filename"]) == (False, True, "IMG_0001.CR3")
    assert client.get(server.api("/images")).json()["total"] == 2
    bad = send("IMG_0002.JPG", photo_jpeg(23, (64, 48)), "card-a\nDCIM")
    assert_json_error(bad, 400, "bad_argument")


# -- change feed ----------------------------------------------------------------------------


def test_changes_after_and_limit(server: Server, client: httpx.Client) -> None:
    empty = client.get(server.api("/changes")).json()
    assert empty == {"changes": [], "last_seq": 0}
    uploaded = upload_new(client, server, 5)
    everything = client.get(server.api("/changes?after=&limit=")).json()
    assert [c["seq"] for c in everything["changes"]] == [1, 2, 3, 4, 5] and everything["last_seq"] == 5
    page = client.get(server.api("/changes?after=1&limit=2")).json()
    assert [c["seq"] for c in page["changes"]] == [2, 3] and page["last_seq"] == 5
    change = page["changes"][0]
    assert change["v"] == 1 and change["project"] == server.project and change["kind"] == IMAGE_CREATED
    assert change["created_at"] and change["data"] == {}
    assert change["image"]["id"] == uploaded[1]["id"]
    assert change["image"]["thumbnail_url"].startswith(f"/files/{uploaded[1]['id']}/thumb?")
    assert client.get(server.api("/changes?after=5")).json() == {"changes": [], "last_seq": 5}
    assert client.get(server.api("/changes?after=99")).json() == {"changes": [], "last_seq": 5}


# -- signed files ---------------------------------------------------------------------------


def test_signed_files_serve_the_original_and_jpeg_renditions(server: Server, client: httpx.Client) -> None:
    original = png_bytes((3200, 1600))  # halved once for the preview
    image = upload(client, server, ("wide shot.png", original)).json()["images"][0]

    got = client.get(server.url + image["url"])
    assert got.status_code == 200
    assert got.content == original
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-length"] == str(len(original))
    assert "immutable" in got.headers["cache-control"]
    assert "wide%20shot.png" in got.headers["content-disposition"]

    for key, edge_px in (("preview_url", 1600), ("thumbnail_url", 480)):
        rendition = client.get(server.url + image[key])
        assert rendition.status_code == 200, key
        assert rendition.headers["content-type"] == "image/jpeg"
        assert "immutable" in rendition.headers["cache-control"]
        with Image.open(io.BytesIO(rendition.content)) as im:
            assert im.format == "JPEG"
            assert max(im.size) == edge_px and im.size == (edge_px, edge_px // 2)

    # Revalidation by ETag answers 304 without a body.
    etag = got.headers["etag"]
    again = client.get(server.url + image["url"], headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""

    # The same file keeps the same URL for a while (cacheable), and our own signer agrees with it.
    assert client.get(server.api(f"/images/{image['id']}")).json()["url"] == image["url"]
    assert signer_of(server).url(image["id"], "original") == image["url"]


def test_unsigned_forged_tampered_or_expired_file_urls_are_403(server: Server, client: httpx.Client) -> None:
    image = upload(client, server, ("a.jpg", small_jpeg(1))).json()["images"][0]
    url = image["url"]
    path, query = url.split("?")
    exp, sig = (parse_qs(query)[k][0] for k in ("exp", "sig"))
    other_sig = parse_qs(urlsplit(image["thumbnail_url"]).query)["sig"][0]
    forged = ("A" if sig[0] != "A" else "B") + sig[1:]
    expired = signer_of(server).url(image["id"], "original", now_s=time.time() - 3 * DEFAULT_TTL_S)
    refused = [
        path,  # unsigned
        f"{path}?exp={exp}",
        f"{path}?sig={sig}",
        f"{path}?exp={exp}&sig={forged}",
        f"{path}?exp={int(exp) + 3600}&sig={sig}",  # tampered expiry
        f"{path}?exp={exp}&sig={other_sig}",  # the thumbnail's signature
        f"/files/{image['id']}/thumb?exp={exp}&sig={sig}",  # the original's signature on the thumbnail
        expired,
        f"{path}?exp=%C2%B2&sig={sig}",  # a digit int() does not read
        f"{path}?exp={exp}&sig=%C3%A9t%C3%A9",  # non-ASCII signature
        f"{path}?exp={'9' * 5000}&sig={sig}",
        f"{path}?exp=-1&sig={sig}",
    ]
    for bad in refused:
        assert_json_error(client.get(server.url + bad), 403, "bad_signature")
    assert client.get(server.url + url).status_code == 200  # the genuine URL still works
    # A valid signature for an image that does not exist is a 404, not a crash.
    ghost = signer_of(server).url("NoSuchImage", "original")
    assert_json_error(client.get(server.url + ghost), 404, "unknown_image")


# -- the hot folder -------------------------------------------------------------------------


def test_file_dropped_into_the_hot_folder_is_listed(shared_server: Server, client: httpx.Client) -> None:
    server = shared_server  # the hot folder feeds the project the server was started for
    data = jpeg_bytes((320, 240), seed=9, model="hot")
    temp = server.watch / ".incoming-drop.jpg"
    temp.write_bytes(data)
    os.rename(temp, server.watch / "drop.jpg")

    def listed() -> list[dict]:
        return [i for i in client.get(server.api("/images")).json()["images"] if i["filename"] == "drop.jpg"]

    [image] = wait_until(listed, timeout_s=15)  # type: ignore[misc]
    assert image["sha256"] == hashlib.sha256(data).hexdigest()
    assert client.get(server.url + image["url"]).content == data
