"""Hostile input, at `dashboard.untrusted` and at a real server: names, traversal, bombs, polyglots, huge bodies.

Every refusal is a 4xx JSON error (never a 5xx, never a traceback), nothing lands outside the data
directory, and the server is healthy afterwards.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from PIL import Image

from dashboard.untrusted import MAX_NAME_CHARS, BadForm, FormParser, TooManyFiles, clean_filename
from tests.support.api import assert_json_error, upload
from tests.support.images import jpeg_bytes, png_bytes, small_jpeg
from tests.support.servers import Server

MAX_BYTES = 2_000_000
UPLOAD_CAP = MAX_BYTES * 4 + 1024 * 1024  # what the server lets an upload body be
MAX_FILES = 5
MAX_PIXELS = 4_000_000


# -- names ----------------------------------------------------------------------------------

ODD_NAMES = [
    ("IMG_0001.JPG", "IMG_0001.JPG"),
    ("../../../../etc/passwd.jpg", "passwd.jpg"),
    ("C:\\Users\\anna\\Pictures\\IMG_2.jpg", "IMG_2.jpg"),
    ("IMG_3\u202egpj.exe", "IMG_3gpj.exe"),  # a right-to-left override would show "IMG_3exe.jpg"
    ("cafe\u0301.jpg", "caf\u00e9.jpg"),  # a Mac's decomposed é, composed
    ("\ufeff\u200bzero\u200ewidth.jpg", "zerowidth.jpg"),
    ("\U0001f468\u200d\U0001f469\u200d\U0001f467 family.jpg", "\U0001f468\u200d\U0001f469\u200d\U0001f467 family.jpg"),
    ("日本語の写真.jpg", "日本語の写真.jpg"),
    ("nul\x00and\x07bell.jpg", "nulandbell.jpg"),
    ("line\r\nbreak\tand tab.jpg", "line  break and tab.jpg"),
    ("  spaced  .jpg ", "spaced  .jpg"),
    ("", "upload"),
    (".", "upload"),
    ("..", "upload"),
    ("/", "upload"),
    ("\u202e", "upload"),
    ("x" * 1000 + ".jpeg", "x" * (MAX_NAME_CHARS - 5) + ".jpeg"),
]


@pytest.mark.parametrize(("raw", "clean"), ODD_NAMES)
def test_clean_filename(raw: str, clean: str) -> None:
    assert clean_filename(raw) == clean
    assert clean_filename(clean) == clean  # idempotent
    assert len(clean_filename(raw)) <= MAX_NAME_CHARS


def test_clean_filename_of_nothing() -> None:
    assert clean_filename(None) == "upload"
    assert clean_filename("y" * 400) == "y" * MAX_NAME_CHARS


# -- the streaming form parser --------------------------------------------------------------

TRICKY = b"\r\n--xy" * 300 + b"\n--xyz" + b"--xyz"  # starts of delimiters that are not one
FORM = (
    b'preamble, ignored\r\n--xyz\r\nContent-Disposition: form-data; name="sha256"\r\n\r\nabc\r\n'
    b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    + TRICKY
    + b'\r\n--xyz\r\nContent-Disposition: form-data; name="file"; filename="b.jpg"\r\n\r\nB\r\n--xyz--\r\nepilogue'
)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 4096, len(FORM)])
def test_the_form_parser_reads_the_same_form_however_the_body_is_cut(tmp_path: Path, step: int) -> None:
    parser = FormParser("multipart/form-data; boundary=xyz", spool_dir=tmp_path, max_files=2, max_part_bytes=10**6)
    for at in range(0, len(FORM), step):
        parser.feed(FORM[at : at + step])
    form = parser.close()
    assert form.fields == {"sha256": [b"abc"]}
    assert [(f.field, f.filename, f.path.read_bytes()) for f in form.files] == [
        ("file", "a.jpg", TRICKY), ("file", "b.jpg", b"B")]  # fmt: skip
    assert all(f.path.parent == tmp_path and f.path.stat().st_mode & 0o777 == 0o600 for f in form.files)
    parser.remove()
    assert list(tmp_path.iterdir()) == []


def test_the_form_parser_s_limits(tmp_path: Path) -> None:
    parsers: list[FormParser] = []

    def parse(body: bytes, **limits: int) -> FormParser:
        parser = FormParser("multipart/form-data; boundary=xyz", spool_dir=tmp_path,
                            **{"max_files": 5, "max_part_bytes": 10**6, **limits})  # fmt: skip
        parsers.append(parser)
        parser.feed(body)
        parser.close()
        return parser

    big, small = parse(FORM, max_part_bytes=100).form.files
    assert big.too_large and big.size_bytes == len(TRICKY) and big.path.stat().st_size == 100
    assert not small.too_large
    with pytest.raises(TooManyFiles):
        parse(FORM, max_files=1)
    with pytest.raises(BadForm, match="form fields"):
        parse(FORM, max_fields=0)
    with pytest.raises(BadForm, match="final boundary"):
        parse(FORM[: FORM.index(b"--xyz--")])
    with pytest.raises(BadForm, match="headers are over"):
        parse(b"--xyz\r\nX-Padding: " + b"p" * 20_000)  # refused before the headers end
    for parser in parsers:  # what the upload handler does after every request, refused or not
        parser.remove()
    assert list(tmp_path.iterdir()) == []
    for content_type in ("multipart/form-data", "multipart/form-data; boundary=", "text/plain; boundary=xyz"):
        with pytest.raises(BadForm):
            FormParser(content_type, spool_dir=tmp_path, max_files=1, max_part_bytes=1)


# -- a server with small limits -------------------------------------------------------------


SERVER_ARGS = ("--max-bytes", str(MAX_BYTES), "--max-files", str(MAX_FILES), "--max-pixels", str(MAX_PIXELS))


@pytest.fixture
def server(shared_server: Server, shared_project: Server) -> Iterator[Server]:
    """A project of this test's own; the server must log no traceback and stay healthy."""
    yield shared_project
    assert list((shared_server.data / "tmp").glob("upload-*")) == []  # every upload's temp files are gone
    health = httpx.get(f"{shared_server.url}/healthz", timeout=10).json()
    assert health["status"] == "ok", health


def images_of(client: httpx.Client, server: Server) -> list[dict]:
    return list(client.get(server.api("/images")).json()["images"])


def test_odd_names_are_stored_clean_and_served_safely(server: Server, client: httpx.Client) -> None:
    # Names with control characters arrive %-encoded (as browsers send them), and a part without a name
    # is a form field, not a file: test_clean_filename covers those.
    names = [(raw, clean) for raw, clean in ODD_NAMES if raw and not any(ord(c) < 32 for c in raw)]
    sent = [(raw, small_jpeg(i + 500)) for i, (raw, _) in enumerate(names)]
    for (raw, data), (_, clean) in zip(sent, names, strict=True):
        response = client.post(server.api("/upload"), files={"file": (raw, data, "image/jpeg")})
        assert response.status_code == 201, (raw, response.text)
        image = response.json()["images"][0]
        assert image["filename"] == clean
        original = client.get(server.url + image["url"])
        assert original.status_code == 200 and original.content == data
        disposition = original.headers["Content-Disposition"]
        assert disposition.isascii() and disposition == f"inline; filename*=UTF-8''{quote(clean)}"
    collection = client.post(server.api("/collections"), json={"name": "../odd\u202e", "image_ids": [
        i["id"] for i in images_of(client, server)]}).json()  # fmt: skip
    archive = client.get(server.api(f"/collections/{collection['id']}/export.zip"))
    assert archive.status_code == 200 and archive.headers["Content-Disposition"].isascii()
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        members = zf.namelist()
    assert len(members) == len(sent) and len({n.casefold() for n in members}) == len(members)
    assert all("/" not in n and "\\" not in n and n != ".." for n in members)


def test_no_request_path_reaches_the_filesystem(server: Server, client: httpx.Client, tmp_path: Path) -> None:
    marker = f"fotoflo-escape-{uuid.uuid4().hex}.jpg"
    escape = "../" * 12 + f"tmp/{marker}"
    response = client.post(server.api("/upload"), files={"file": (escape, small_jpeg(900))})
    assert response.status_code == 201 and response.json()["images"][0]["filename"] == marker
    assert not (Path("/tmp") / marker).exists()
    # Every stored file is a content-addressed blob inside the data directory.
    for path in server.data.rglob("*"):
        assert path.resolve().is_relative_to(server.data.resolve())
    secret = (server.data / "secret.key").read_bytes()
    probes = [
        "/files/..%2F..%2Fsecret.key/original",
        "/files/%2e%2e/original?exp=9999999999&sig=x",
        "/files/" + "..%2F" * 8 + "etc%2Fpasswd/original",
        "/api/projects/..%2F..%2Fetc/images",
        "/api/projects/%2e%2e/images",
        f"/api/projects/{server.project}/exports/..%2F..%2Fsecret.key",
        f"/api/projects/{server.project}/collections/..%2Fx/export.zip",
        "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/s/..%2Fsecret.key",
        "/login/..%2F..%2Fsecret.key",
    ]
    with httpx.Client(timeout=15) as raw:  # no path normalisation on the way: exactly these bytes
        for probe in probes:
            response = raw.get(httpx.URL(server.url + probe))
            assert 400 <= response.status_code < 500, (probe, response.status_code)
            assert secret not in response.content and b"root:" not in response.content, probe
            if urlsplit(probe).path.startswith("/api/"):
                assert_json_error(response, response.status_code)


# -- images that are not what they seem -----------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A tiny 1-bit PNG that declares a huge canvas, as Pillow's decompression-bomb tests craft them."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + (width + 7) // 8) * min(height, 64), 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def gif_bomb() -> bytes:
    out = io.BytesIO()
    Image.new("P", (1, 1)).save(out, "GIF")
    data = bytearray(out.getvalue())
    data[6:10] = struct.pack("<HH", 65535, 65535)  # the logical screen
    return bytes(data)


def jpeg_bomb() -> bytes:
    data = bytearray(jpeg_bytes((16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    return bytes(data)


def test_decompression_bombs_are_refused_before_decoding(server: Server, client: httpx.Client) -> None:
    bombs = {
        "huge.png": png_bomb(100_000, 100_000),  # beyond Pillow's own hard limit
        "big.png": png_bomb(3000, 2000),  # 6 Mpx: within Pillow's, over this server's --max-pixels
        "screen.gif": gif_bomb(),
        "sof.jpg": jpeg_bomb(),
    }
    for name, data in bombs.items():
        assert len(data) < 20_000
        response = upload(client, server, (name, data))
        assert response.status_code == 413, (name, response.text)
        assert response.json()["errors"][0]["code"] == "too_many_pixels"
    assert images_of(client, server) == []


def test_truncated_and_empty_files_are_refused(server: Server, client: httpx.Client) -> None:
    whole_jpeg, whole_png = jpeg_bytes((640, 480), seed=3), png_bytes((300, 200))
    cases = {
        "half.jpg": (whole_jpeg[: len(whole_jpeg) // 2], "corrupt"),
        "head.jpg": (whole_jpeg[:200], "corrupt"),
        "half.png": (whole_png[: len(whole_png) // 2], "corrupt"),
        "magic.png": (b"\x89PNG\r\n\x1a\n", "corrupt"),
        "empty.jpg": (b"", "empty"),
    }
    for name, (data, code) in cases.items():
        response = upload(client, server, (name, data))
        assert 400 <= response.status_code < 500, (name, response.status_code)
        errors = response.json()["errors"]
        assert errors[0]["code"] in (code, "not_an_image"), (name, errors)
    assert images_of(client, server) == []


def test_polyglots_are_kept_as_images_and_never_served_as_anything_else(server: Server, client: httpx.Client) -> None:
    payload = b"<html><script>alert(document.cookie)</script></html>"
    jpeg_html = jpeg_bytes((64, 64), seed=77) + payload
    jpeg_zip = io.BytesIO()
    jpeg_zip.write(jpeg_bytes((64, 64), seed=78))
    with zipfile.ZipFile(jpeg_zip, "a") as zf:
        zf.writestr("evil.html", payload)
    for name, data in (("polyglot.jpg", jpeg_html), ("polyglot.html", jpeg_zip.getvalue())):
        response = upload(client, server, (name, data))
        assert response.status_code == 201, response.text
        image = response.json()["images"][0]
        assert image["mime"] == "image/jpeg"
        original = client.get(server.url + image["url"])
        assert original.content == data  # byte for byte, as promised
        assert original.headers["Content-Type"] == "image/jpeg"
        assert original.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in original.headers["Content-Security-Policy"]
    pretenders = {
        "gif-html.gif": b"GIF89a" + payload,
        "page.jpg": payload,
        "archive.jpg": _zip_bytes(),
        "vector.png": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        "doc.jpg": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
    }
    for name, data in pretenders.items():
        response = upload(client, server, (name, data))
        assert response.status_code in (415, 422), (name, response.text)
    assert len(images_of(client, server)) == 2


def _zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("a.txt", "hello")
    return out.getvalue()


# -- bodies too big, too many, malformed ----------------------------------------------------


def raw_request(server: Server, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send exactly these bytes on a socket; the status, headers and body of the answer."""
    port = int(urlsplit(server.url).port or 80)
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        received = b""
        while b"\r\n\r\n" not in received or not _complete(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head_bytes, _, rest = received.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, rest


def _complete(received: bytes) -> bool:
    head, _, rest = received.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n"):
        if line.lower().startswith("content-length:"):
            return len(rest) >= int(line.split(":", 1)[1])
    return False


def test_a_huge_declared_body_is_refused_before_it_is_read(server: Server) -> None:
    path = urlsplit(server.api("/upload")).path
    head = (f"POST {path} HTTP/1.1\nHost: 127.0.0.1\nContent-Type: multipart/form-data; boundary=xyz\n"
            f"Content-Length: {50 * 1024**3}\n")  # fmt: skip
    status, headers, body = raw_request(server, head, b"--xyz\r\n")
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "body_too_large"
    rating = urlsplit(server.api("/images/x/rating")).path
    status, _, body = raw_request(
        server, f"POST {rating} HTTP/1.1\nHost: localhost\nContent-Length: {2 * 1024**2}\n", b"{"
    )
    assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"


def test_a_chunked_body_is_cut_off_at_the_limit(server: Server) -> None:
    path = urlsplit(server.api("/upload")).path
    head = (f"POST {path} HTTP/1.1\nHost: localhost\nContent-Type: multipart/form-data; boundary=xyz\n"
            "Transfer-Encoding: chunked\n")  # fmt: skip
    piece = b"a" * 65536
    # Just past the limit, and no more (bytes the server never reads would make it reset the connection).
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(UPLOAD_CAP // len(piece)))
    status, headers, body = raw_request(server, head, chunks + b"%x\r\n%s" % (len(piece), piece))
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "body_too_large"


def test_json_bodies_over_a_mebibyte_are_413(server: Server, client: httpx.Client) -> None:
    ids = ["a" * 12] * 120_000
    response = client.post(server.api("/collections"), json={"name": "big", "image_ids": ids})
    assert_json_error(response, 413, "body_too_large")


def test_too_many_files_or_parts_and_malformed_forms(server: Server, client: httpx.Client) -> None:
    many = [(f"f{i}.jpg", small_jpeg(700 + i)) for i in range(MAX_FILES + 1)]
    assert_json_error(upload(client, server, *many), 413, "too_many_files")
    assert images_of(client, server) == []
    assert upload(client, server, *many[:MAX_FILES]).status_code == 201
    fields = {f"field{i}": "x" for i in range(150)}
    crowded = client.post(server.api("/upload"), data=fields, files={"file": ("a.jpg", small_jpeg(1))})
    assert_json_error(crowded, 400, "bad_multipart")
    headers = {"Content-Type": "multipart/form-data; boundary=xyz"}
    malformed = [
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\nabc',  # no final boundary
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="\xff\xfe.jpg"\r\n\r\nabc\r\n--xyz--\r\n',
        b"--xyz\r\nX-Padding: " + b"p" * 20_000 + b"\r\n\r\nabc\r\n--xyz--\r\n",
        b"--xyz\r\n\r\nno headers\r\n--xyz--\r\n",
    ]
    for body in malformed:
        response = client.post(server.api("/upload"), content=body, headers=headers)
        assert response.status_code == 400, (body[:60], response.text)
        assert response.json()["error"]["code"] in ("bad_multipart", "no_file")
    for content_type in ("multipart/form-data", "multipart/form-dataxyz; boundary=xyz", "application/json"):
        response = client.post(server.api("/upload"), content=b"{}", headers={"Content-Type": content_type})
        assert response.status_code == 400, (content_type, response.text)
