"""QR codes of share links (SVG and PNG, by segno): printed on a card, shown on the wall.

A link's secret is kept only as its hash (dashboard/auth/store.py), so its QR code can be made only by
whoever has the link: when it is made (the API's answer carries `qr_svg`), or later from the link
itself, which `link_secret` reads back out of a URL or path the caller passes (docs/security.md).
"""

from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

import segno

#: Error correction `m` (segno raises it when the version has room): a QR code on a screen or a print.
ERROR = "m"
SCALE_PX = 8  # pixels a module in the PNG
BORDER_MODULES = 4  # the quiet zone the standard asks for
_SECRET = re.compile(r"/s/([A-Za-z0-9_-]{1,128})/?")


def make(url: str) -> segno.QRCode:
    """The QR code of `url` (never a Micro QR: phones' cameras read only full ones)."""
    return segno.make(url, error=ERROR, micro=False)


def svg(url: str) -> bytes:
    """An SVG document of `url`'s QR code, black on white, with a title."""
    out = io.BytesIO()
    make(url).save(
        out, kind="svg", scale=1, border=BORDER_MODULES, xmldecl=False, title="QR code of a share link", light="#fff"
    )
    return out.getvalue()


def png(url: str, scale_px: int = SCALE_PX) -> bytes:
    out = io.BytesIO()
    make(url).save(out, kind="png", scale=scale_px, border=BORDER_MODULES)
    return out.getvalue()


def svg_data_url(url: str) -> str:
    """`url`'s QR code as a `data:` URL, for an `<img>` (no markup of ours goes into a page)."""
    return str(make(url).svg_data_uri(scale=1, border=BORDER_MODULES, light="#fff"))


def link_secret(link: str) -> tuple[str, str | None] | None:
    """(the secret, the origin or None) of a share link given as its path (`/s/SECRET`) or its URL
    (`https://host/s/SECRET`); None for anything else."""
    parts = urlsplit(link.strip())
    match = _SECRET.fullmatch(parts.path)
    if match is None or parts.query or parts.fragment:
        return None
    if parts.scheme or parts.netloc:
        if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
            return None
        return match.group(1), f"{parts.scheme}://{parts.netloc}"
    return match.group(1), None
