"""Cache headers of the page's fingerprinted files: Bokeh's and Panel's bundles, kept for good."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from tornado import httputil
from tornado.web import OutputTransform

#: A year, the longest `max-age` caches are asked to honour (RFC 9111 suggests no more).
IMMUTABLE_S = 365 * 24 * 3600


class ImmutableAssets(OutputTransform):
    """`Cache-Control: public, max-age=…, immutable` on `/static/…?v=<hash>` (the page names them so).

    Bokeh and Panel serve their bundles (2.9 MB) with a 10-year `max-age` when the URL carries its
    version hash, but without `immutable`, so a reload may ask for each again. Only answers that are
    cacheable already (200 or 304 with a `max-age`) change; a file without its hash keeps tornado's
    revalidation by ETag.
    """

    def __init__(self, request: httputil.HTTPServerRequest) -> None:
        super().__init__(request)
        self._fingerprinted = request.path.startswith("/static/") and "v" in parse_qs(request.query)

    def transform_first_chunk(
        self, status_code: int, headers: httputil.HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, httputil.HTTPHeaders, bytes]:
        if self._fingerprinted and status_code in (200, 304) and "max-age" in headers.get("Cache-Control", ""):
            headers["Cache-Control"] = f"public, max-age={IMMUTABLE_S}, immutable"
        return status_code, headers, chunk


def cache_fingerprinted(tornado_app: Any) -> None:
    """Make the fingerprinted static files of `tornado_app` (a Bokeh server's) immutable in caches."""
    tornado_app.add_transform(ImmutableAssets)
