"""`/files/{image_id}/{kind}`: an image's bytes by signed URL, for `<img>` and downloads (no token).

The bytes are proxied from the blobs (local files or an S3 bucket), one byte range when asked
(`Range: bytes=…`), never by a redirect to the bucket: docs/several-servers.md says why. A preview asked
for before it is made (a large JPEG is published with its thumbnail, its preview follows:
`dashboard.previews`) is made on demand, once however many ask, and then served.

A URL signed for a watermarked share link (`&l={link id}.{version}`, dashboard/signing.py) serves that
link's watermarked preview or thumbnail (dashboard/watermarks.py) while the link is active, never the
file without it, and never an original unless the link may download originals.
"""

from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import quote

from tornado import iostream

from dashboard.auth.store import ShareRecord
from dashboard.events import ImageRecord
from dashboard.http.base import ApiError, ApiHandler
from dashboard.http.rules import SIGNED_URL
from dashboard.imaging.errors import IngestError
from dashboard.imaging.formats import MIME_BY_FORMAT
from dashboard.previews import PreviewJob

ORIGINAL, RAW = "original", "raw"
#: The kinds that are an image's own bytes, as uploaded (whoever may download originals may download
#: these): the file shown and a RAW + JPEG pair's RAW. Both are read from the blobs' originals.
DOWNLOADS = (ORIGINAL, RAW)


class FileHandler(ApiHandler):
    """Signed image files: originals (and a pair's RAW) byte-for-byte, previews and thumbnails as JPEG."""

    ACTIONS = {"get": SIGNED_URL}  # no token: the URL's signature (`dashboard.signing`) is the capability
    CHUNK_BYTES = 256 * 1024

    async def get(self, image_id: str, kind: str) -> None:
        link = self.get_argument("l", None)
        if not self.app.signer.verify(
            image_id, kind, self.get_argument("exp", None), self.get_argument("sig", None), link=link
        ):
            raise ApiError(403, "bad_signature", "this file URL is unsigned, forged or expired")
        share = await self._link(link, kind) if link is not None else None
        image = await asyncio.to_thread(self.app.store.get_image, image_id)
        if image is None:
            raise ApiError(404, "unknown_image", f"no image {image_id!r}")
        sha256, mime, filename = image.sha256, image.mime, image.filename
        version = self.int_arg("v", 1, low=1)
        blob_kind = ORIGINAL if kind in DOWNLOADS else kind
        if kind == RAW:
            # A RAW + JPEG pair's RAW (dashboard/pairs.py): an original like the JPEG's, downloaded as one.
            if image.raw_sha256 is None:
                raise ApiError(404, "missing_file", f"image {image_id!r} has no RAW file")
            sha256, filename = image.raw_sha256, image.raw_filename or filename
            mime = MIME_BY_FORMAT.get(image.raw_format or "", "application/octet-stream")
        elif version != image.version:
            # Each URL names one version (no `v` is the first), so it can be cached as immutable.
            versions = await asyncio.to_thread(self.app.store.image_versions, image.project, image.id)
            match = [v for v in versions if v.version == version]
            if not match:
                raise ApiError(404, "unknown_version", f"image {image_id!r} has no version {version}")
            sha256, mime, filename = match[0].sha256, match[0].mime, match[0].filename
        if share is not None and kind not in DOWNLOADS and share.watermarked:
            await self._watermarked(image, share, sha256, kind, filename)
            return
        exp = int(self.get_argument("exp"))
        self.set_header("Content-Type", mime if blob_kind == ORIGINAL else "image/jpeg")
        self.set_header("Cache-Control", f"private, max-age={max(0, exp - int(time.time()))}, immutable")
        self.set_header("ETag", f'"{sha256[:32]}-{kind}"')
        # Bytes as uploaded (a polyglot is a valid image too): never rendered as anything but an image.
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        if blob_kind == ORIGINAL:
            self.set_header("Content-Disposition", f"inline; filename*=UTF-8''{quote(filename)}")
        if self.request.headers.get("If-None-Match") == self._headers.get("ETag"):
            self.set_status(304)
            self.finish()
            return
        size = await asyncio.to_thread(self.app.blobs.size, blob_kind, sha256)
        if size is None and kind == "preview":
            await self._make_preview(PreviewJob(image.project, image.id, sha256, filename))
            size = await asyncio.to_thread(self.app.blobs.size, kind, sha256)
        if size is None:
            raise ApiError(404, "missing_file", f"the {kind} of {image_id!r} is missing")
        self.set_header("Accept-Ranges", "bytes")
        start, stop = 0, size
        wanted = self.request.headers.get("Range")
        if wanted is not None and self.request.headers.get("If-Range", self._headers["ETag"]) == self._headers["ETag"]:
            window = byte_range(wanted, size)
            if window is None:
                why = f"the range {wanted!r} is not within the file's {size} bytes"
                raise ApiError(416, "bad_range", why, headers={"Content-Range": f"bytes */{size}"})
            if window != (0, size):
                start, stop = window
                self.set_status(206)
                self.set_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        try:
            reader = await asyncio.to_thread(self.app.blobs.open, blob_kind, sha256, start, stop)
        except FileNotFoundError:
            raise ApiError(404, "missing_file", f"the {kind} of {image_id!r} is missing") from None
        self.set_header("Content-Length", str(stop - start))
        try:
            left = stop - start
            while left > 0 and (chunk := await asyncio.to_thread(reader.read, min(self.CHUNK_BYTES, left))):
                left -= len(chunk)
                self.write(chunk)
                await self.flush()
        except iostream.StreamClosedError:
            return  # the client went away (a video player seeking, a closed tab)
        finally:
            await asyncio.to_thread(reader.close)
        self.finish()

    async def _link(self, link: str, kind: str) -> ShareRecord:
        """The share link a URL was signed for, while it is active and may have `kind`; else refused."""
        store = self.app.access.store
        share = await asyncio.to_thread(store.get_share, link.partition(".")[0]) if store is not None else None
        if share is None:
            raise ApiError(404, "unknown_share", "the share link of this file URL is gone")
        if (state := share.state()) != "active":
            raise ApiError(410, f"share_{state}", f"the share link of this file URL is {state}")
        if kind in DOWNLOADS and share.download != "original":
            raise ApiError(403, "download_forbidden", "this share link does not let its holder download originals")
        return share

    async def _watermarked(self, image: ImageRecord, share: ShareRecord, sha256: str, kind: str, filename: str) -> None:
        """The link's watermarked `kind` of the version `sha256` (made now on a cache miss), whole or one range."""
        exp = int(self.get_argument("exp"))
        self.set_header("Content-Type", "image/jpeg")
        self.set_header("Cache-Control", f"private, max-age={max(0, exp - int(time.time()))}, immutable")
        self.set_header("ETag", f'"{sha256[:32]}-{kind}-{share.id}.{share.watermark_version}"')
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        if self.request.headers.get("If-None-Match") == self._headers.get("ETag"):
            self.set_status(304)
            self.finish()
            return
        if kind == "preview" and await asyncio.to_thread(self.app.blobs.size, kind, sha256) is None:
            await self._make_preview(PreviewJob(image.project, image.id, sha256, filename))
        store = self.app.access.store
        assert store is not None  # `_link` found the link in it
        try:
            data, hit = await asyncio.to_thread(
                self.app.watermarks.rendition, share, sha256, kind, lambda: store.share_watermark_png(share.id)
            )
        except FileNotFoundError:
            raise ApiError(404, "missing_file", f"the {kind} of {image.id!r} is missing") from None
        except IngestError as exc:
            raise ApiError(500, "watermark_failed", f"the watermark could not be applied ({exc.reason})") from None
        self.set_header("X-Fotoflo-Watermark-Cache", "hit" if hit else "miss")
        self.set_header("Accept-Ranges", "bytes")
        start, stop = 0, len(data)
        wanted = self.request.headers.get("Range")
        if wanted is not None and self.request.headers.get("If-Range", self._headers["ETag"]) == self._headers["ETag"]:
            window = byte_range(wanted, len(data))
            if window is None:
                why = f"the range {wanted!r} is not within the file's {len(data)} bytes"
                raise ApiError(416, "bad_range", why, headers={"Content-Range": f"bytes */{len(data)}"})
            if window != (0, len(data)):
                start, stop = window
                self.set_status(206)
                self.set_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
        self.set_header("Content-Length", str(stop - start))
        self.finish(data[start:stop])

    async def _make_preview(self, job: PreviewJob) -> None:
        """Make the preview now (or wait for whoever is making it already); 404 if it cannot be made."""
        try:
            await asyncio.to_thread(self.app.ingestor.previews.ensure, job)
        except (IngestError, OSError) as exc:
            why = exc.reason if isinstance(exc, IngestError) else exc.strerror or str(exc)
            raise ApiError(404, "missing_file", f"the preview of {job.image_id!r} cannot be made ({why})") from None


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The [start, stop) that one `Range: bytes=…` asks of `size` bytes; `(0, size)` for what is not served in
    part (several ranges, another unit, a malformed header: RFC 9110 lets a server send the whole file then);
    `None` when unsatisfiable (it starts past the end)."""
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return (0, size)
    first, last = match.groups()
    if not first and not last:
        return (0, size)
    if not first:  # the last N bytes
        return (max(0, size - int(last)), size) if int(last) > 0 else None
    start = int(first)
    stop = size if not last else min(size, int(last) + 1)
    if last and int(last) < start:
        return (0, size)  # invalid: ignored, as RFC 9110 says
    return (start, stop) if start < size else None
