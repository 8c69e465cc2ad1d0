"""The `Blobs` protocol and its filesystem implementation: content-addressed image files.

Keys are `kind/sha256` (kind: original, thumb, preview). Writes go to a temp name beside the
target, are fsynced and renamed into place, so a reader never sees half a file and a crash
leaves at most a temp file that `clean_temp` removes on the next start. Folders are made 0700 and
files 0600 (whatever the umask): the photos are nobody else's on a shared machine. The other
implementations: `S3Blobs` (dashboard/s3blobs.py, `--blobs s3://…`) and `SupabaseBlobs`.
"""

from __future__ import annotations

import io
import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO, Protocol

from dashboard.datadir import private_dir, write_private_file

KINDS = ("original", "thumb", "preview")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TEMP_MARK = ".tmp-"


class BlobReader(Protocol):
    """An open blob (or a window of it): `read` until it gives `b""`, then `close`."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class Blobs(Protocol):
    """Content-addressed image files: the same key always holds the same bytes.

    A key is checked before anything is touched: a `kind` not in `KINDS` or a `sha256` that is not
    64 lowercase hex digits is a `ValueError`.
    """

    def put(self, kind: str, sha256: str, data: bytes) -> None:
        """Store the blob; a blob already there is left alone (two writers of one key are harmless)."""

    def exists(self, kind: str, sha256: str) -> bool: ...

    def size(self, kind: str, sha256: str) -> int | None:
        """The blob's length in bytes; `None` when there is no such blob."""

    def open(self, kind: str, sha256: str, start: int = 0, stop: int | None = None) -> BlobReader:
        """The bytes `start` to `stop` (exclusive; `None`: to the end); `FileNotFoundError` for no such blob."""

    def clean_temp(self) -> int:
        """Remove what an interrupted write left behind (temp files, stale uploads); returns how many."""


def check_key(kind: str, sha256: str) -> None:
    """`ValueError` unless `kind/sha256` is a blob key (no path, no other names: keys come from requests)."""
    if kind not in KINDS or not _SHA256.fullmatch(sha256):
        raise ValueError(f"bad blob key {kind}/{sha256}")


_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def content_type(kind: str, data: bytes) -> str:
    """Previews and thumbnails are JPEG; an original's type is sniffed (for object stores' own metadata)."""
    if kind != "original":
        return "image/jpeg"
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "image/heic"
    return "application/octet-stream"


class _Window:
    """`length` bytes of an open file from where it stands (a `BlobReader`)."""

    def __init__(self, fh: BinaryIO, length: int | None) -> None:
        self._fh, self._left = fh, length

    def read(self, size: int = -1, /) -> bytes:
        if self._left is None:
            return self._fh.read(size)
        want = self._left if size < 0 else min(size, self._left)
        data = self._fh.read(want) if want > 0 else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._fh.close()


class FileBlobs:
    """Blobs in a directory tree: `<root>/<kind>/<ab>/<sha256>`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for kind in KINDS:
            private_dir(self.root / kind)

    def path(self, kind: str, sha256: str) -> Path:
        """Where the blob's file is (or would be)."""
        check_key(kind, sha256)
        return self.root / kind / sha256[:2] / sha256

    def exists(self, kind: str, sha256: str) -> bool:
        return self.path(kind, sha256).is_file()

    def size(self, kind: str, sha256: str) -> int | None:
        try:
            return self.path(kind, sha256).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, kind: str, sha256: str, start: int = 0, stop: int | None = None) -> BlobReader:
        fh = open(self.path(kind, sha256), "rb")  # noqa: SIM115 (the reader owns it; the caller closes)
        if start:
            fh.seek(start)
        if stop is not None and stop <= start:
            fh.close()
            return io.BytesIO(b"")
        return _Window(fh, None if stop is None else stop - start)

    def delete(self, kind: str, sha256: str) -> None:
        """Remove the blob, if it is there (no caller deletes yet: the store keeps every version)."""
        self.path(kind, sha256).unlink(missing_ok=True)

    def put(self, kind: str, sha256: str, data: bytes) -> None:
        target = self.path(kind, sha256)
        if target.is_file() and target.stat().st_size == len(data):
            return  # content-addressed: same key, same bytes
        temp = self.put_aside(kind, sha256, data)
        try:
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def put_aside(self, kind: str, sha256: str, data: bytes) -> Path:
        """Write a blob (fsynced) under a temp name of its own beside its place; `keep` moves it in.

        For bytes that may still be refused (`Ingestor` writes an original while it decodes): until
        `keep`, nothing can see or refer to the file, so the caller that refuses them unlinks it and
        never takes away a blob another image has. A crash leaves it to `clean_temp`.
        """
        target = self.path(kind, sha256)
        private_dir(target.parent)
        temp = target.with_name(f"{target.name}{_TEMP_MARK}{secrets.token_hex(4)}")
        try:
            write_private_file(temp, data)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp

    def keep(self, kind: str, sha256: str, temp: Path) -> None:
        """Move a blob written by `put_aside` into its place (the same bytes if someone put them there meanwhile)."""
        os.replace(temp, self.path(kind, sha256))

    def clean_temp(self) -> int:
        removed = 0
        for temp in self.root.glob(f"*/*/*{_TEMP_MARK}*"):
            temp.unlink(missing_ok=True)
            removed += 1
        return removed
