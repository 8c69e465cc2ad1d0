"""`/files/…` from a real `fotoflo serve` whose files are on disk or in S3: whole files, byte ranges, refusals.

S3 is moto's standalone server on loopback (tests/support/services.py), standing in for AWS S3, R2, B2
or MinIO; the server reaches it through the standard AWS variables, as in production.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dashboard.http.files import byte_range
from dashboard.samples import photo_jpeg, raw_dng
from dashboard.signing import UrlSigner
from tests.support.api import assert_json_error, checked_client, upload
from tests.support.images import jpeg_bytes
from tests.support.servers import Server, ServerFactory, free_port, serve_command
from tests.support.services import S3Server

KIND_OF = {"url": "original", "preview_url": "preview", "thumbnail_url": "thumb"}


@pytest.fixture(params=["file", "s3"])
def blobs_server(request: pytest.FixtureRequest, server_factory: ServerFactory) -> tuple[Server, str | None]:
    """A server with its files in `DATA/blobs`, and one with them in a bucket of the S3 stand-in (and its name)."""
    if request.param == "file":
        return server_factory(), None
    s3: S3Server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return server_factory(extra_args=("--blobs", f"s3://{bucket}/studio"), env=s3.env), bucket


def test_every_kind_whole_and_in_ranges(
    blobs_server: tuple[Server, str | None], request: pytest.FixtureRequest
) -> None:
    server, bucket = blobs_server
    data = jpeg_bytes((1600, 1200), seed=5)
    with checked_client() as client:
        image: dict[str, Any] = upload(client, server, ("big.jpg", data)).json()["images"][0]
        health = client.get(f"{server.url}/healthz").json()
        assert health["blobs_kind"] == ("s3" if bucket else "file")

        bodies = {}
        for field, kind in KIND_OF.items():
            url = server.url + image[field]
            whole = client.get(url)
            assert whole.status_code == 200, whole.text
            assert whole.headers["accept-ranges"] == "bytes" and "content-range" not in whole.headers
            assert int(whole.headers["content-length"]) == len(whole.content)
            body = bodies[kind] = whole.content
            size = len(body)

            for header, (start, stop) in [
                ("bytes=0-99", (0, 100)),
                (f"bytes=100-{size + 50}", (100, size)),  # past the end: to the end
                ("bytes=-10", (size - 10, size)),
                (f"bytes={size - 1}-", (size - 1, size)),
            ]:
                part = client.get(url, headers={"Range": header})
                assert part.status_code == 206, (kind, header, part.text)
                assert part.content == body[start:stop], (kind, header)
                assert part.headers["content-range"] == f"bytes {start}-{stop - 1}/{size}"
                assert int(part.headers["content-length"]) == stop - start
                assert part.headers["etag"] == whole.headers["etag"]
                assert part.headers["content-security-policy"] == "default-src 'none'; sandbox"

            # The whole file when a range cannot be served in part, or the If-Range names another version.
            for headers in (
                {"Range": "bytes=0-1,5-9"},
                {"Range": "items=0-5"},
                {"Range": "bytes=9-3"},
                {"Range": "bytes=0-"},
                {"Range": "bytes=0-9", "If-Range": '"another-etag"'},
            ):
                full = client.get(url, headers=headers)
                assert (full.status_code, full.content) == (200, body), headers
            unsatisfiable = client.get(url, headers={"Range": f"bytes={size}-"})
            assert_json_error(unsatisfiable, 416, "bad_range")
            assert unsatisfiable.headers["content-range"] == f"bytes */{size}"

        assert bodies["original"] == data
        assert {body[:3] for body in bodies.values()} == {b"\xff\xd8\xff"}
        # A range is no way around the signature.
        unsigned = server.url + image["url"].split("?")[0]
        assert_json_error(client.get(unsigned, headers={"Range": "bytes=0-9"}), 403, "bad_signature")

        if bucket is not None:
            # A file gone from the bucket (removed by hand, a lifecycle rule) is a 404, not a 500.
            other = upload(client, server, ("other.jpg", jpeg_bytes(seed=6))).json()["images"][0]
            s3 = request.getfixturevalue("s3_server").client()
            try:
                s3.delete_object(Bucket=bucket, Key=f"studio/preview/{other['sha256'][:2]}/{other['sha256']}")
            finally:
                s3.close()
            assert_json_error(client.get(server.url + other["preview_url"]), 404, "missing_file")
            assert client.get(server.url + other["thumbnail_url"]).status_code == 200

    if bucket is not None:
        # Every file is in the bucket, none on the server's disk.
        sha = hashlib.sha256(data).hexdigest()
        objects = request.getfixturevalue("s3_server").objects(bucket)
        assert {k: v for k, v in objects.items() if sha in k} == {
            f"studio/{kind}/{sha[:2]}/{sha}": body for kind, body in bodies.items()
        }
        assert [p for p in (server.data / "blobs").rglob("*") if p.is_file()] == []


def test_a_pairs_raw_whole_in_a_range_and_cached(blobs_server: tuple[Server, str | None]) -> None:
    """`/files/{id}/raw`: a RAW + JPEG pair's RAW, served as an original is, from files or S3."""
    server, _ = blobs_server
    taken = "2026:11:20 14:03:09"
    raw, jpeg = raw_dng(1200, 800, seed=41, captured=taken), photo_jpeg(41, (1200, 800), captured=taken)
    with checked_client() as client:
        upload(client, server, ("IMG_0041.JPG", jpeg))
        image: dict[str, Any] = upload(client, server, ("IMG_0041.NEF", raw)).json()["images"][0]
        url = server.url + image["files"][1]["url"]
        assert "/raw?" in url

        whole = client.get(url)
        assert (whole.status_code, whole.content) == (200, raw)
        assert whole.headers["content-type"] == "image/x-adobe-dng"
        assert whole.headers["content-disposition"] == "inline; filename*=UTF-8''IMG_0041.NEF"
        assert whole.headers["content-security-policy"] == "default-src 'none'; sandbox"
        part = client.get(url, headers={"Range": "bytes=100-199"})
        assert (part.status_code, part.content) == (206, raw[100:200])
        assert part.headers["content-range"] == f"bytes 100-199/{len(raw)}"
        assert client.get(url, headers={"If-None-Match": whole.headers["etag"]}).status_code == 304
        assert whole.headers["etag"] != client.get(server.url + image["url"]).headers["etag"]

        single = upload(client, server, ("IMG_0042.JPG", jpeg_bytes(seed=42))).json()["images"][0]
        assert [f["role"] for f in single["files"]] == ["jpeg"]
        signer = UrlSigner((server.data / "secret.key").read_bytes().strip())
        assert_json_error(client.get(server.url + signer.url(single["id"], "raw")), 404, "missing_file")
        forged = image["files"][1]["url"].replace(image["id"], single["id"])
        assert_json_error(client.get(server.url + forged), 403, "bad_signature")


def test_a_server_with_an_unreachable_bucket_does_not_start(s3_server: S3Server, tmp_path: Path) -> None:
    command = serve_command(tmp_path / "data", free_port(), args=("--no-watch", "--blobs", "s3://no-such-bucket/p"))
    done = subprocess.run(command, env={**os.environ, **s3_server.env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == ["fotoflo serve: --blobs s3://no-such-bucket/p/: no such bucket"]
    assert s3_server.env["AWS_SECRET_ACCESS_KEY"] not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("header", "window"),
    [
        ("bytes=0-0", (0, 1)),
        ("bytes=0-", (0, 10)),
        ("bytes=3-5", (3, 6)),
        (" bytes=3-5 ", (3, 6)),
        ("bytes=-3", (7, 10)),
        ("bytes=-30", (0, 10)),
        ("bytes=-0", None),
        ("bytes=10-", None),
        ("bytes=99-100", None),
        ("bytes=5-2", (0, 10)),
        ("bytes=-", (0, 10)),
        ("bytes=1-2,4-5", (0, 10)),
        ("bytes=a-b", (0, 10)),
        ("pages=1-2", (0, 10)),
        ("bytes=" + "9" * 400 + "-", None),
    ],
)
def test_byte_range(header: str, window: tuple[int, int] | None) -> None:
    assert byte_range(header, 10) == window
