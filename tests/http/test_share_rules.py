"""Share links' download rules, watermarks and QR codes on a real `fotoflo serve --auth`.

Through a `none` or `preview` link no URL leads to an original (lists, one image, versions, conflict
copies, the feed, collections, ZIPs, forged URLs); a watermarked link's previews and thumbnails have
the watermark in their pixels, made once and then served from the cache; an uploaded watermark PNG is
checked like any untrusted image; every link's QR code encodes its URL.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import segno
from PIL import Image

from dashboard import qrcodes
from dashboard.auth import SQLiteAuthStore
from dashboard.cli import main
from dashboard.samples import photo_jpeg as samples_jpeg
from dashboard.samples import raw_dng
from dashboard.signing import UrlSigner, load_or_create_secret
from tests.support.api import assert_json_error, checked_client, file_urls, upload
from tests.support.auth import guest, new_images
from tests.support.images import changed, jpeg_bytes, pixels, png_bytes
from tests.support.servers import Server


@pytest.fixture
def server(auth_project: Server) -> Server:
    """This module's tests run on the server with authentication on."""
    return auth_project


def make(owner: httpx.Client, server: Server, **fields: Any) -> dict[str, Any]:
    made = owner.post(server.api("/shares"), json={"role": "client", **fields})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def photo(seed: int) -> tuple[str, bytes]:
    """A sky-blue photo: neither the white text nor the tests' red watermark PNG is near its colour."""
    return f"photo-{seed}.jpg", jpeg_bytes((480, 320), (90, 140, 200), seed=seed)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the default changes nothing ------------------------------------------------------------------


def test_a_link_made_without_rules_downloads_originals_as_before(server: Server, owner: httpx.Client) -> None:
    (image_id,) = new_images(owner, server, 1)
    body = make(owner, server)
    assert body["share"]["download"] == "original" and body["share"]["watermark"] is None
    with guest(server, body["path"], "Anna") as anna:
        image = anna.client.get(server.api(f"/images/{image_id}")).json()
        assert "/original?" in image["url"] and "l=" not in image["thumbnail_url"]
        assert anna.client.get(server.url + image["url"]).status_code == 200
        collection = owner.post(server.api("/collections"), json={"name": "All", "image_ids": [image_id]}).json()
        assert anna.client.get(server.api(f"/collections/{collection['id']}/export.zip")).status_code == 200


@pytest.mark.parametrize("download", ["none", "preview"])
def test_no_original_is_reachable_through_a_none_or_preview_link(
    download: str, server: Server, owner: httpx.Client
) -> None:
    name, data = photo(1)
    image = upload(owner, server, (name, data)).json()["images"][0]
    second = jpeg_bytes((480, 320), seed=2)
    versioned = owner.post(server.api("/upload"), data={"replaces": image["id"], "base_sha256": sha(data)},
                           files=[("file", (name, second, "image/jpeg"))])  # fmt: skip
    assert versioned.status_code == 201, versioned.text
    collection = owner.post(server.api("/collections"), json={"name": "Selects", "image_ids": [image["id"]]}).json()
    body = make(owner, server, download=download, watermark="© Studio" if download == "preview" else None)
    assert body["share"]["download"] == download
    with guest(server, body["path"], "Anna") as anna:
        answers = [
            anna.client.get(server.api("/images")).json(),
            anna.client.get(server.api(f"/images/{image['id']}")).json(),
            anna.client.get(server.api(f"/images/by-sha256/{sha(second)}")).json(),
            anna.client.get(server.api(f"/images/{image['id']}/versions")).json(),
            anna.client.get(server.api(f"/collections/{collection['id']}")).json(),
            anna.client.get(server.api("/collections")).json(),
            anna.client.get(server.api("/changes")).json(),
        ]
        found = [u for answer in answers for u in file_urls(answer)]
        assert found and not [u for u in found if "/original" in u], found
        shown = answers[1]
        if download == "none":
            assert shown["url"] is None and "download_name" not in shown
            assert all(v["url"] is None for v in answers[3]["versions"])
        else:
            assert "/preview?" in shown["url"] and shown["download_name"] == "photo-1.jpg"
            assert "&l=" in shown["url"] and "&l=" in shown["thumbnail_url"]  # the watermarked preview
        with checked_client() as anyone:
            for url in found:
                answer = anyone.get(server.url + url)
                assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/jpeg", url
                # The signature names the kind: the same URL made to ask for the original is refused.
                forged = re.sub(r"/(preview|thumb)\?", "/original?", url)
                assert_json_error(anyone.get(server.url + forged), 403, "bad_signature")
            # Even a URL the server itself signed for this link and the original (it never gives one out).
            share_id = body["share"]["id"]
            signer = UrlSigner(load_or_create_secret(server.data))
            signed = signer.url(image["id"], "original", link=f"{share_id}.1")
            assert_json_error(anyone.get(server.url + signed), 403, "download_forbidden")
        # The ZIP holds originals: refused; the names and the metadata are not files.
        zipped = anna.client.get(server.api(f"/collections/{collection['id']}/export.zip"))
        assert_json_error(zipped, 403, "download_forbidden")
        assert anna.client.get(server.api(f"/collections/{collection['id']}/export.csv")).status_code == 200
    # The owner's own URLs are untouched.
    mine = owner.get(server.api(f"/images/{image['id']}")).json()
    assert "/original?" in mine["url"] and owner.get(server.url + mine["url"]).content == second


@pytest.mark.parametrize("download", ["original", "preview", "none"])
def test_a_pairs_raw_is_downloadable_only_where_originals_are(
    download: str, server: Server, owner: httpx.Client
) -> None:
    taken = "2026:11:20 14:03:09"
    raw = raw_dng(1200, 800, seed=51, captured=taken)
    upload(owner, server, ("IMG_0051.JPG", samples_jpeg(51, (1200, 800), captured=taken)))
    image = upload(owner, server, ("IMG_0051.CR3", raw)).json()["images"][0]
    assert [f["role"] for f in image["files"]] == ["jpeg", "raw"]
    collection = owner.post(server.api("/collections"), json={"name": "Pair", "image_ids": [image["id"]]}).json()
    body = make(owner, server, download=download)
    with guest(server, body["path"], "Anna") as anna:
        seen = anna.client.get(server.api(f"/images/{image['id']}")).json()
        found = list(file_urls(anna.client.get(server.api("/changes")).json())) + list(file_urls(seen))
        zipped = anna.client.get(server.api(f"/collections/{collection['id']}/export.zip"))
        if download == "original":
            assert [(f["role"], f["filename"]) for f in seen["files"]] == [
                ("jpeg", "IMG_0051.JPG"),
                ("raw", "IMG_0051.CR3"),
            ]
            assert anna.client.get(server.url + seen["files"][1]["url"]).content == raw
            assert zipped.status_code == 200
        else:
            assert seen["files"] == [] and not [u for u in found if "/raw?" in u or "/original?" in u], found
            assert_json_error(zipped, 403, "download_forbidden")
            share_id = body["share"]["id"]
            signed = UrlSigner(load_or_create_secret(server.data)).url(image["id"], "raw", link=f"{share_id}.0")
            with checked_client() as anyone:
                assert_json_error(anyone.get(server.url + signed), 403, "download_forbidden")


def test_an_editor_link_without_downloads_gets_no_original_of_a_conflict_copy(
    server: Server, owner: httpx.Client
) -> None:
    base, studio, laptop = (jpeg_bytes((100, 80), seed=s) for s in (30, 31, 32))
    image = upload(owner, server, ("IMG_7.JPG", base)).json()["images"][0]
    first = owner.post(server.api("/upload"), data={"replaces": image["id"], "base_sha256": sha(base),
                       "device_id": "studio", "device_name": "Studio"},
                       files=[("file", ("IMG_7.JPG", studio, "image/jpeg"))])  # fmt: skip
    assert first.status_code == 201
    body = make(owner, server, role="editor", download="none")
    with guest(server, body["path"], "Second shooter") as shooter:
        fields = {"replaces": image["id"], "base_sha256": sha(base), "device_id": "laptop", "device_name": "Laptop"}
        second = shooter.client.post(server.api("/upload"), data=fields, headers=shooter.csrf,
                                     files=[("file", ("IMG_7.JPG", laptop, "image/jpeg"))])  # fmt: skip
        assert second.status_code == 201, second.text
        current = second.json()["images"][0]
        assert current["url"] is None and current["conflict_copy"]["url"] is None
        assert not [u for u in file_urls(second.json()) if "/original" in u]


# -- watermarks -----------------------------------------------------------------------------------


def test_a_watermarked_link_s_previews_and_thumbnails_differ_in_pixels_and_are_cached(
    server: Server, owner: httpx.Client
) -> None:
    image = upload(owner, server, photo(3)).json()["images"][0]
    body = make(owner, server, download="preview", watermark="© Studio")
    assert body["share"]["watermark"] == {"text": "© Studio", "png": False}
    with guest(server, body["path"], "Anna") as anna:
        seen = anna.client.get(server.api(f"/images/{image['id']}")).json()
    with checked_client() as anyone:
        for kind in ("preview_url", "thumbnail_url"):
            plain = anyone.get(server.url + image[kind])
            first = anyone.get(server.url + seen[kind])
            again = anyone.get(server.url + seen[kind])
            assert first.status_code == again.status_code == 200
            assert first.headers["X-Fotoflo-Watermark-Cache"] == "miss"
            assert again.headers["X-Fotoflo-Watermark-Cache"] == "hit" and again.content == first.content
            assert "X-Fotoflo-Watermark-Cache" not in plain.headers
            assert changed(plain.content, first.content) > 0.005, kind  # burned in, not laid over
            part = anyone.get(server.url + seen[kind], headers={"Range": "bytes=0-9"})
            assert part.status_code == 206 and part.content == first.content[:10]
    cached = sorted(p.name for p in (server.data / "cache" / "watermarks").iterdir())
    share_id = body["share"]["id"]
    assert [n for n in cached if n.startswith(f"{share_id}-1-{image['sha256']}-")] == [
        f"{share_id}-1-{image['sha256']}-preview.jpg",
        f"{share_id}-1-{image['sha256']}-thumb.jpg",
    ]


def test_an_uploaded_watermark_png_is_burned_in_and_changes_the_file_urls(server: Server, owner: httpx.Client) -> None:
    image = upload(owner, server, photo(4)).json()["images"][0]
    body = make(owner, server, download="none", watermark="Proof")
    share_id = body["share"]["id"]
    with guest(server, body["path"], "Anna") as anna:
        before = anna.client.get(server.api(f"/images/{image['id']}")).json()
    mark = io.BytesIO()
    Image.new("RGBA", (200, 200), (255, 0, 0, 255)).save(mark, "PNG")
    put = owner.put(server.api(f"/shares/{share_id}/watermark"), content=mark.getvalue(),
                    headers={"Content-Type": "image/png"})  # fmt: skip
    assert put.status_code == 200, put.text
    assert put.json()["share"]["watermark"] == {"text": "Proof", "png": True}
    with guest(server, body["path"], "Anna") as anna:
        after = anna.client.get(server.api(f"/images/{image['id']}")).json()
    assert f"l={share_id}.1" in before["preview_url"] and f"l={share_id}.2" in after["preview_url"]
    with checked_client() as anyone:
        text_only = anyone.get(server.url + before["preview_url"]).content  # its URL now serves the new mark
        with_png = anyone.get(server.url + after["preview_url"]).content
        plain = anyone.get(server.url + image["preview_url"]).content
    marked = pixels(with_png)
    centre = marked.getpixel((marked.width // 2, marked.height // 2))
    assert isinstance(centre, tuple) and centre[0] > 150 > centre[1]  # the red square, in the middle
    assert changed(plain, with_png) > 0.05
    assert text_only == with_png
    assert owner.delete(server.api(f"/shares/{share_id}/watermark")).json()["share"]["watermark"]["png"] is False


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`×`height` pixels (a pixel bomb), with almost no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "says"),
    [
        (b"GIF89a not a png", "image/png", 415, "bad_watermark", "must be a PNG"),
        (png_claiming(60_000, 60_000), "image/png", 413, "bad_watermark", "at most 4096×4096 pixels"),
        (png_bytes((64, 64))[:60], "image/png", 400, "bad_watermark", "cannot be read"),
        (png_bytes((64, 64)), "image/jpeg", 415, "bad_watermark", "image/png body"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * (3 * 1024 * 1024), "image/png", 413, "body_too_large", "over the limit"),
    ],
    ids=["not-png", "pixel-bomb", "truncated", "wrong-type", "oversize"],
)
def test_a_hostile_or_oversize_watermark_png_is_refused_with_a_clear_error(
    body: bytes, content_type: str, status: int, code: str, says: str, server: Server, owner: httpx.Client
) -> None:
    share_id = make(owner, server)["share"]["id"]
    answer = owner.put(server.api(f"/shares/{share_id}/watermark"), content=body,
                       headers={"Content-Type": content_type})  # fmt: skip
    assert_json_error(answer, status, code)
    assert says in answer.json()["error"]["message"]
    assert owner.get(server.api("/shares")).json()["shares"][-1]["watermark"] is None


def test_share_rules_are_checked(server: Server, owner: httpx.Client) -> None:
    for bad in ({"download": "all"}, {"download": 1}, {"watermark": ""}, {"watermark": "x" * 101}):
        assert_json_error(owner.post(server.api("/shares"), json={"role": "client", **bad}), 400, "bad_argument")


# -- QR codes -------------------------------------------------------------------------------------


def modules_of_png(data: bytes, scale_px: int, border: int) -> list[list[int]]:
    """The dark (1) and light (0) modules of a QR code PNG drawn `scale_px` pixels a module."""
    image = pixels(data).convert("L")
    count = image.width // scale_px - 2 * border
    return [
        [1 if image.getpixel(((border + x) * scale_px + scale_px // 2, (border + y) * scale_px + scale_px // 2)) < 128
         else 0 for x in range(count)]
        for y in range(count)
    ]  # fmt: skip


def test_every_link_has_a_qr_code_of_its_url(server: Server, owner: httpx.Client) -> None:
    body = make(owner, server)
    url, share_id = body["url"], body["share"]["id"]
    expected = [list(row) for row in segno.make(url, error="m", micro=False).matrix]
    # In the answer that made it: the one time the secret is at hand without passing the link back.
    root = ElementTree.fromstring(body["qr_svg"])
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and body["qr_svg"] == qrcodes.svg(url).decode()

    svg = owner.get(server.api(f"/shares/{share_id}/qr.svg"), params={"link": body["path"]})
    assert svg.status_code == 200 and svg.headers["Content-Type"] == "image/svg+xml"
    assert svg.headers["Cache-Control"] == "no-store" and svg.content == qrcodes.svg(url)
    ElementTree.fromstring(svg.content)
    png = owner.get(server.api(f"/shares/{share_id}/qr.png"), params={"link": url})
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert modules_of_png(png.content, qrcodes.SCALE_PX, qrcodes.BORDER_MODULES) == expected
    # A URL given whole keeps its own origin (a server behind a proxy has a public address of its own).
    public = owner.get(server.api(f"/shares/{share_id}/qr.png"),
                       params={"link": "https://photos.example" + body["path"]})  # fmt: skip
    public_matrix = [
        list(r) for r in segno.make("https://photos.example" + body["path"], error="m", micro=False).matrix
    ]
    assert modules_of_png(public.content, qrcodes.SCALE_PX, qrcodes.BORDER_MODULES) == public_matrix

    other = make(owner, server)
    assert_json_error(owner.get(server.api(f"/shares/{share_id}/qr.svg"), params={"link": other["path"]}), 404,
                      "unknown_share")  # fmt: skip
    assert_json_error(owner.get(server.api(f"/shares/{share_id}/qr.svg")), 400, "bad_argument")
    assert_json_error(owner.get(server.api(f"/shares/{share_id}/qr.svg"), params={"link": "/s/nope"}), 404,
                      "unknown_share")  # fmt: skip


# -- the CLI --------------------------------------------------------------------------------------


def test_the_cli_makes_a_link_with_download_rules_a_watermark_and_its_qr_code(
    server: Server, owner: httpx.Client, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    capsys.readouterr()
    qr = tmp_path / "link.svg"
    code = main(["share", "create", "--project", server.project, "--url", server.url, "--data", str(server.data),
                 "--download", "preview", "--watermark", "© Studio", "--qr", str(qr)])  # fmt: skip
    assert code == 0
    out, err = capsys.readouterr()
    url = out.strip()
    assert "download preview, watermark '© Studio'" in err
    assert qr.read_bytes() == qrcodes.svg(url)
    store = SQLiteAuthStore(server.data / "auth.sqlite")
    try:
        share = store.find_share(url.rsplit("/", 1)[1])
    finally:
        store.close()
    assert share is not None and (share.download, share.watermark_text, share.watermark_version) == (
        "preview", "© Studio", 1,
    )  # fmt: skip
    listed = owner.get(server.api("/shares")).json()["shares"]
    assert {"download": "preview", "watermark": {"text": "© Studio", "png": False}}.items() <= listed[-1].items()
    with pytest.raises(SystemExit):
        main(["share", "create", "--project", server.project, "--data", str(server.data), "--download", "all"])
    capsys.readouterr()
    assert main(["share", "create", "--project", server.project, "--data", str(server.data),
                 "--watermark", " "]) == 2  # fmt: skip
    assert "watermark" in capsys.readouterr().err


def test_the_log_never_shows_a_link_passed_back(server: Server, owner: httpx.Client) -> None:
    body = make(owner, server)
    secret = body["path"].rsplit("/", 1)[1]
    owner.get(server.api(f"/shares/{body['share']['id']}/qr.svg"), params={"link": body["path"]})
    assert secret not in server.log()
