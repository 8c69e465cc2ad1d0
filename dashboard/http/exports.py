"""A collection as a file to save (names, metadata, or the originals as a streamed ZIP), and a ZIP's progress.

The ZIP holds originals: a share link whose download rule is `none` or `preview` is refused it
(`403 download_forbidden`); its names and metadata it may still save.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING

from tornado import iostream

from dashboard import export
from dashboard.auth.roles import Action, Principal
from dashboard.events import CollectionRecord, ImageRecord
from dashboard.http.base import ApiError
from dashboard.http.project import ProjectHandler
from dashboard.http.rules import SEEN, Allow

if TYPE_CHECKING:
    from dashboard.app import App

log = logging.getLogger("fotoflo.api")


def export_key(principal: Principal, token: str) -> str:
    """Where an export's progress is kept: a share link's apart, so it sees only those it started."""
    return token if principal.collection_id is None else f"{principal.key}/{token}"


class ExportHandler(ProjectHandler):
    """A collection as a file to save: names (`txt`), metadata (`csv`) or the originals (`zip`)."""

    export_format: str
    ACTIONS = {"get": Allow(Action.VIEW, project=True, collection=SEEN)}  # a link: only the images it shows

    def initialize(self, app: App, export_format: str = "txt") -> None:
        super().initialize(app)
        self.export_format = export_format

    async def get(self, project: str, collection_id: str) -> None:
        await self.admit()
        if self.export_format == "zip" and self.principal.download != "original":
            # A ZIP holds the originals; this link's holder may not have them (names and metadata they may).
            raise ApiError(403, "download_forbidden", "this share link does not let its holder download originals")
        collection = await self.live_collection(project, collection_id)
        scope = await self.scope(project)
        ids = collection.image_ids if scope is None else scope.image_ids(collection.image_ids)
        images = await self.run(self.app.store.get_images, project, ids)
        self.set_header("Content-Disposition", export.attachment(collection.name, self.export_format))
        self.set_header("Cache-Control", "no-store")
        if self.export_format == "txt":
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(export.filenames_txt(images).encode())
        elif self.export_format == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.finish(export.metadata_csv(images).encode())
        else:
            await self.stream_zip(collection, images)

    async def stream_zip(self, collection: CollectionRecord, images: list[ImageRecord]) -> None:
        token = self.get_argument("progress", None)
        if token is not None and not export.Downloads.TOKEN.fullmatch(token):
            raise ApiError(400, "bad_argument", "progress must be 8 to 64 letters, digits, '-' or '_'")
        archive = export.StoredZip(await asyncio.to_thread(self.zip_members, images))
        size, files = archive.size_bytes, len(archive.members)
        # Without a token the progress is still counted, just not findable.
        progress = (
            self.app.downloads.start(export_key(self.principal, token), size, files)
            if token
            else export.Download(size, files)
        )
        self.set_header("Content-Type", "application/zip")
        self.set_header("Content-Length", str(archive.size_bytes))
        peer = self.client
        log.info("ZIP of %s (%d files, %d bytes) to %s", collection.id, len(images), archive.size_bytes, peer)
        chunks = archive.chunks()
        try:
            # Each read (and CRC) in a worker thread; each flush waits for the socket: memory stays one chunk.
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                self.write(chunk)
                await self.flush()
                progress.bytes_sent += len(chunk)
            self.finish()
            progress.state = "done"
        except iostream.StreamClosedError:
            log.info("ZIP of %s: %s went away", collection.id, peer)
        except OSError:
            # The headers are out: cut the connection, so the client sees a short download, not a bad file.
            log.exception("ZIP of %s failed while streaming", collection.id)
            self.request.connection.close()  # type: ignore[union-attr]
        finally:
            chunks.close()
            if progress.state != "done":
                progress.state = "aborted"

    def zip_members(self, images: list[ImageRecord]) -> list[export.ZipMember]:
        """The originals of the images, a RAW + JPEG pair's RAW after its JPEG (dashboard/pairs.py)."""
        files: list[tuple[ImageRecord, str, str]] = []
        for image in images:
            files.append((image, image.filename, image.sha256))
            if image.raw_sha256 is not None:
                files.append((image, image.raw_filename or image.filename, image.raw_sha256))
        members = []
        for name, (image, _, sha256) in zip(export.member_names(f[1] for f in files), files, strict=True):
            size = self.app.blobs.size("original", sha256)
            if size is None:
                raise ApiError(404, "missing_file", f"the original of {image.id!r} is missing")
            source = functools.partial(self.app.blobs.open, "original", sha256)
            members.append(export.ZipMember(name, source, size, export.zip_date_time(image.captured_at)))
        return members


class DownloadHandler(ProjectHandler):
    """How far a streamed ZIP export started with `?progress=TOKEN` has gone."""

    ACTIONS = {"get": Allow(Action.VIEW)}  # a share link sees only the exports it started

    async def get(self, project: str, token: str) -> None:
        download = self.app.downloads.get(export_key(self.principal, token))
        if download is None:
            raise ApiError(404, "unknown_export", f"no export {token!r} (not started yet, or long ago)")
        self.write_json(download.to_dict())
