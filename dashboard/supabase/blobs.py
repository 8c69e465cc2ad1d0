"""`SupabaseBlobs`: content-addressed image files in a Supabase Storage bucket.

Objects are named like `FileBlobs`' files, `kind/ab/sha256`, in the private bucket the migrations
create. The same key always holds the same bytes, so an upload that finds the object already there
is done. The server streams files from local disk (`Blobs.path`), so each server keeps a
read-through cache of the files it has served or stored; `signed_url` gives a URL of Storage's own,
valid for `expires_s`, for clients that may fetch straight from Supabase.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from storage3.exceptions import StorageApiError

from dashboard.blobs import BlobReader, FileBlobs, check_key, content_type
from dashboard.supabase import BUCKET, sync_client


class SupabaseBlobs:
    """`Blobs` in the Storage bucket `bucket` of the Supabase project at `url`, cached under `cache_dir`.

    `key` must be allowed to write the bucket (the service role). `transport` replaces the network.
    """

    def __init__(
        self,
        url: str,
        key: str,
        cache_dir: str | Path,
        *,
        bucket: str = BUCKET,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self._client, self._http = sync_client(url, key, transport=transport, timeout_s=timeout_s)
        self._bucket = self._client.storage.from_(bucket)
        self.cache = FileBlobs(cache_dir)  # same layout, same key checks, atomic writes

    @staticmethod
    def key(kind: str, sha256: str) -> str:
        """The object name of a blob (`ValueError` for a kind or hash that is not one)."""
        check_key(kind, sha256)
        return f"{kind}/{sha256[:2]}/{sha256}"

    def put(self, kind: str, sha256: str, data: bytes) -> None:
        key = self.key(kind, sha256)
        try:
            self._bucket.upload(key, data, {"content-type": content_type(kind, data), "cache-control": "31536000"})
        except StorageApiError as exc:
            if not _duplicate(exc):
                raise
        self.cache.put(kind, sha256, data)

    def exists(self, kind: str, sha256: str) -> bool:
        return self.cache.exists(kind, sha256) or self._bucket.exists(self.key(kind, sha256))

    def path(self, kind: str, sha256: str) -> Path:
        """The cached file, fetched from Storage first if this server has not got it.

        For a blob Storage does not have either, a path where no file is (as `FileBlobs` does).
        """
        target = self.cache.path(kind, sha256)
        if not target.is_file():
            try:
                data = self._bucket.download(self.key(kind, sha256))
            except StorageApiError as exc:
                if str(exc.status) in ("400", "404"):
                    return target
                raise
            self.cache.put(kind, sha256, data)
        return target

    def size(self, kind: str, sha256: str) -> int | None:
        path = self.path(kind, sha256)
        return path.stat().st_size if path.is_file() else None

    def open(self, kind: str, sha256: str, start: int = 0, stop: int | None = None) -> BlobReader:
        self.path(kind, sha256)  # fetched into the cache first, if Storage has it
        return self.cache.open(kind, sha256, start, stop)

    def signed_url(self, kind: str, sha256: str, expires_s: int = 3600) -> str:
        """A URL of Storage's that serves the blob to anyone who has it, for `expires_s` seconds."""
        signed = self._bucket.create_signed_url(self.key(kind, sha256), expires_s)
        url = signed["signedURL"]
        if not url:
            raise LookupError(f"Storage gave no signed URL for {kind}/{sha256}")
        return url

    def clean_temp(self) -> int:
        return self.cache.clean_temp()

    def close(self) -> None:
        self._http.close()


def _duplicate(exc: StorageApiError) -> bool:
    return str(exc.status) == "409" or exc.code in ("Duplicate", "409")
