"""`dashboard.qrcodes`: a share link's QR code, and its secret read back only out of a link."""

from __future__ import annotations

import base64
from xml.etree import ElementTree

import pytest
import segno

from dashboard import qrcodes

URL = "https://photos.example/s/AbC_d-12"


def test_the_svg_and_png_encode_the_url() -> None:
    root = ElementTree.fromstring(qrcodes.svg(URL))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert qrcodes.png(URL).startswith(b"\x89PNG\r\n\x1a\n")
    assert not qrcodes.make(URL).is_micro and qrcodes.make(URL).matrix == segno.make(URL, error="m").matrix
    data_url = qrcodes.svg_data_url(URL)
    assert data_url.startswith("data:image/svg+xml")


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("/s/AbC_d-12", ("AbC_d-12", None)),
        (" /s/AbC_d-12/ ", ("AbC_d-12", None)),
        (URL, ("AbC_d-12", "https://photos.example")),
        ("http://127.0.0.1:5006/s/AbC_d-12", ("AbC_d-12", "http://127.0.0.1:5006")),
        ("", None),
        ("/s/", None),
        ("/x/AbC", None),
        ("/s/AbC/more", None),
        ("/s/AbC?x=1", None),
        ("/s/AbC#x", None),
        ("javascript:/s/AbC", None),
        ("https://user@photos.example/s/AbC", None),
        ("//photos.example/s/AbC", None),
        ("/s/" + "a" * 129, None),
        ("/s/a%2Fb", None),
    ],
)
def test_a_secret_is_read_only_out_of_a_share_link(link: str, expected: tuple[str, str | None] | None) -> None:
    assert qrcodes.link_secret(link) == expected


def test_the_data_url_is_an_svg_image() -> None:
    header, _, body = qrcodes.svg_data_url(URL).partition(",")
    text = base64.b64decode(body).decode() if header.endswith(";base64") else body
    assert "svg" in text
