"""`/files/{image_id}/{kind}`: an image's bytes by signed URL, for `<img>` and downloads (no token).

A preview asked for before it is made (a large JPEG is published with its thumbnail, its preview follows:
`dashboard.previews`) is made on demand, once however many ask, and then served.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from dashboard.http.base import ApiError, ApiHandler
from dashboard.http.rules import SIGNED_URL
from dashboard.imaging.errors import IngestError
from dashboard.previews import PreviewJob


class FileHandler(ApiHandler):
    """Signed image files: originals byte-for-byte, previews and thumbnails as JPEG."""

    ACTIONS = {"get": SIGNED_URL}  # no token: the URL's signature (`dashboard.signing`) is the capability
    CHUNK_BYTES = 256 * 1024

    async def get(self, image_id: str, kind: str) -> None:
        if not self.app.signer.verify(image_id, kind, self.get_argument("exp", None), self.get_argument("sig", None)):
            raise ApiError(403, "bad_signature", "this file URL is unsigned, forged or expired")
        image = await asyncio.to_thread(self.app.store.get_image, image_id)
        if image is None:
            raise ApiError(404, "unknown_image", f"no image {image_id!r}")
        sha256, mime, filename = image.sha256, image.mime, image.filename
        version = self.int_arg("v", 1, low=1)
        if version != image.version:
            # Each URL names one version (no `v` is the first), so it can be cached as immutable.
            versions = await asyncio.to_thread(self.app.store.image_versions, image.project, image.id)
            match = [v for v in versions if v.version == version]
            if not match:
                raise ApiError(404, "unknown_version", f"image {image_id!r} has no version {version}")
            sha256, mime, filename = match[0].sha256, match[0].mime, match[0].filename
        path = self.app.blobs.path(kind, sha256)
        exp = int(self.get_argument("exp"))
        self.set_header("Content-Type", mime if kind == "original" else "image/jpeg")
        self.set_header("Cache-Control", f"private, max-age={max(0, exp - int(time.time()))}, immutable")
        self.set_header("ETag", f'"{sha256[:32]}-{kind}"')
        # Bytes as uploaded (a polyglot is a valid image too): never rendered as anything but an image.
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        if kind == "original":
            self.set_header("Content-Disposition", f"inline; filename*=UTF-8''{quote(filename)}")
        if self.request.headers.get("If-None-Match") == self._headers.get("ETag"):
            self.set_status(304)
            self.finish()
            return
        try:
            fh: BinaryIO = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            if kind != "preview":
                raise ApiError(404, "missing_file", f"the {kind} of {image_id!r} is missing") from None
            fh = await self._made_preview(PreviewJob(image.project, image.id, sha256, filename), path)
        with fh:
            self.set_header("Content-Length", str(path.stat().st_size))
            while chunk := await asyncio.to_thread(fh.read, self.CHUNK_BYTES):
                self.write(chunk)
                await self.flush()
        self.finish()

    async def _made_preview(self, job: PreviewJob, path: Path) -> BinaryIO:
        """The preview made now (or by whoever is making it already), opened; 404 if it cannot be made."""
        try:
            await asyncio.to_thread(self.app.ingestor.previews.ensure, job)
            return await asyncio.to_thread(open, path, "rb")
        except (IngestError, OSError) as exc:
            why = exc.reason if isinstance(exc, IngestError) else exc.strerror or str(exc)
            raise ApiError(404, "missing_file", f"the preview of {job.image_id!r} cannot be made ({why})") from None
