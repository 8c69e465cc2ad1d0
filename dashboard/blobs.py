"""The `Blobs` protocol and its filesystem implementation: content-addressed image files.

Keys are `kind/sha256` (kind: original, thumb, preview). Writes go to a temp name beside the
target, are fsynced and renamed into place, so a reader never sees half a file and a crash
leaves at most a temp file that `clean_temp` removes on the next start. Folders are made 0700 and
files 0600 (whatever the umask): the photos are nobody else's on a shared machine.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from dashboard.datadir import private_dir, write_private_file

KINDS = ("original", "thumb", "preview")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TEMP_MARK = ".tmp-"


class Blobs(Protocol):
    def put(self, kind: str, sha256: str, data: bytes) -> None: ...

    def exists(self, kind: str, sha256: str) -> bool: ...

    def path(self, kind: str, sha256: str) -> Path:
        """Where the blob lives on local disk (serving reads it from there)."""

    def clean_temp(self) -> int:
        """Remove temp files a crash left behind; returns how many."""


class FileBlobs:
    """Blobs in a directory tree: `<root>/<kind>/<ab>/<sha256>`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for kind in KINDS:
            private_dir(self.root / kind)

    def path(self, kind: str, sha256: str) -> Path:
        if kind not in KINDS or not _SHA256.fullmatch(sha256):
            raise ValueError(f"bad blob key {kind}/{sha256}")
        return self.root / kind / sha256[:2] / sha256

    def exists(self, kind: str, sha256: str) -> bool:
        return self.path(kind, sha256).is_file()

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
