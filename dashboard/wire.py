"""The JSON the API sends: images, versions, collections, feed entries and SSE payloads, with signed file URLs.

One `Wire` per server, made from its `UrlSigner`; every handler writes its records through it. The
records read it back with `from_dict` / `from_json` (dashboard/events.py), which ignore what only the
wire adds (the signed URLs). A share link's `scope` narrows what a collection says of its images.

A share link with download rules or a watermark sees the records through `seen_by(principal)`: its
`url` (the download) is the original's, the preview's (`preview` links, with `download_name`) or null
(`none`), and a watermarked link's preview and thumbnail URLs are its own (see dashboard/signing.py), so
no URL it is given leads to a file it may not have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dashboard import pairs
from dashboard.events import Change, CollectionRecord, ImageRecord, ImageVersion
from dashboard.signing import UrlSigner

if TYPE_CHECKING:
    from dashboard.auth.access import Scope
    from dashboard.auth.roles import Principal


class Wire:
    """The JSON shapes of one server's records; file URLs are signed with its `signer` as they are written."""

    def __init__(self, signer: UrlSigner) -> None:
        self.signer = signer

    def seen_by(self, principal: Principal) -> Wire:
        """This wire as `principal` is served: a share link with download rules or a watermark gets its own."""
        if principal.kind != "share" or (principal.download == "original" and not principal.watermark):
            return self
        link = f"{principal.id}.{principal.watermark}" if principal.watermark else None
        return LinkWire(self.signer, principal.download, link)

    def file_url(self, image_id: str, kind: str, version: int = 1) -> str | None:
        """A signed file URL; each version has its own (`&v=N` after the first), so each can be cached for good."""
        url = self.signer.url(image_id, kind)
        return url if version == 1 else f"{url}&v={version}"

    def _files(self, out: dict[str, Any], image_id: str, version: int) -> dict[str, Any]:
        out["url"] = self.file_url(image_id, "original", version)
        out["preview_url"] = self.file_url(image_id, "preview", version)
        out["thumbnail_url"] = self.file_url(image_id, "thumb", version)
        return out

    def image(self, image: ImageRecord, **extra: Any) -> dict[str, Any]:
        """An image with the signed URLs of its current version and its `files`; `extra` keys are added last.

        `files` lists the originals that can be downloaded: the file shown, then a RAW + JPEG pair's RAW
        (dashboard/pairs.py), each with its role, name, size, format and signed URL.
        """
        out = self._files(image.to_dict(), image.id, image.version)
        out["files"] = self.files(image, out["url"])
        out.update(extra)
        return out

    def files(self, image: ImageRecord, url: str | None = None) -> list[dict[str, Any]]:
        """The image's files as the API lists them (`url`: the original's, if already signed)."""
        shown = {
            "role": pairs.role(image.format) or "image",
            "filename": image.filename,
            "size_bytes": image.size_bytes,
            "format": image.format,
            "url": url or self.file_url(image.id, "original", image.version),
        }
        if image.raw_sha256 is None:
            return [shown]
        raw = {
            "role": pairs.RAW,
            "filename": image.raw_filename,
            "size_bytes": image.raw_size_bytes,
            "format": image.raw_format,
            "url": self.file_url(image.id, "raw"),  # one RAW per image, for good: one URL
        }
        return [shown, raw]

    def version(self, version: ImageVersion) -> dict[str, Any]:
        """One stored version of an image, with the signed URLs of that version's files."""
        return self._files(version.to_dict(), version.image_id, version.version)

    def collection(
        self,
        collection: CollectionRecord,
        *,
        images: list[ImageRecord] | None = None,
        card: bool = False,
        scope: Scope | None = None,
    ) -> dict[str, Any]:
        """A collection: its card (`card=True`: no ids), else with `image_ids`, and `images` when given.

        With a share link's `scope`, only its images: the ids, count and cover say nothing of the rest.
        The collection's `seq` is not sent (its `version` counts the edits).
        """
        image_ids, cover = collection.image_ids, collection.cover_image_id
        if scope is not None:
            image_ids, cover = tuple(scope.image_ids(image_ids)), scope.cover(cover)
        out = {
            "id": collection.id,
            "project": collection.project,
            "name": collection.name,
            "count": len(image_ids),
            "cover_image_id": cover,
            "cover_thumbnail_url": self._thumb(cover),
            "created_at": collection.created_at,
            "updated_at": collection.updated_at,
            "version": collection.version,
            "deleted": collection.deleted,
        }
        if not card:
            out["image_ids"] = list(image_ids)
        if images is not None:
            out["images"] = [self.image(i) for i in images if scope is None or i.id in scope.images]
        return out

    def change(self, change: Change, scope: Scope | None = None) -> dict[str, Any]:
        """A feed entry for `/changes`; with a share link's `scope`, as it sees it (see `_data`)."""
        out = change.to_dict()
        if change.image is not None:
            out["image"] = self.image(change.image)
        out["data"] = self._data(change.data, scope)
        return out

    def change_payload(self, change: Change, scope: Scope | None = None) -> dict[str, Any]:
        """The `data:` of an SSE event (its `id:` is the seq, its `event:` the kind): the image for
        image events, else the change's data."""
        if change.image is not None:
            return self.image(change.image)
        return self._data(change.data, scope)

    def _data(self, data: dict[str, Any], scope: Scope | None = None) -> dict[str, Any]:
        # A collection change names its cover; the signed thumbnail URL is made as it is sent, and
        # only for a cover the receiver may see (a share link's scope narrows the data first).
        if "cover_image_id" not in data:
            return data
        if scope is not None:
            data = scope.collection_data(data)
        return {**data, "cover_thumbnail_url": self._thumb(data["cover_image_id"])}

    def _thumb(self, image_id: str | None) -> str | None:
        return self.file_url(image_id, "thumb") if image_id else None


class LinkWire(Wire):
    """The wire of a share link with download rules (`download`) or a watermark (`link`: `{id}.{version}`)."""

    def __init__(self, signer: UrlSigner, download: str, link: str | None) -> None:
        super().__init__(signer)
        self.download = download
        self.link = link

    def file_url(self, image_id: str, kind: str, version: int = 1) -> str | None:
        if kind == "raw":  # a RAW + JPEG pair's RAW: an original, never watermarked, never a preview's stand-in
            return super().file_url(image_id, kind, version) if self.download == "original" else None
        if kind == "original" and self.download != "original":
            if self.download == "none":
                return None  # no original, and nothing else to download either
            kind = "preview"
        if kind == "original" or self.link is None:
            return super().file_url(image_id, kind, version)
        url = self.signer.url(image_id, kind, link=self.link)
        return url if version == 1 else f"{url}&v={version}"

    def files(self, image: ImageRecord, url: str | None = None) -> list[dict[str, Any]]:
        # A link that may not download originals lists none: its download, if any, is the image's `url`.
        return super().files(image, url) if self.download == "original" else []

    def _files(self, out: dict[str, Any], image_id: str, version: int) -> dict[str, Any]:
        out = super()._files(out, image_id, version)
        if self.download == "preview":
            # The download is the preview: a JPEG, whatever the original was.
            out["download_name"] = f"{str(out.get('filename') or image_id).rsplit('.', 1)[0]}.jpg"
        return out
