"""RAW + JPEG pairs: a camera's RAW file and its JPEG (or HEIF) of one capture become one image.

The rule is here, in one place; the stores apply it inside the transaction that adds a file
(`Store.add_image(..., pair_key=)`), so two files of a pair arriving at once (two uploads, two
hot-folder workers) still end as one image. docs/usage.md ("RAW + JPEG pairs") explains it to users.

Two files pair when they are in the same project and folder, their names have the same stem
(case-insensitively: `IMG_0001.CR3` and `img_0001.jpg`), one is a RAW and the other a JPEG or
HEIF, the image already stored has no partner yet, and they are of one capture: their capture
times are equal to the second (both files of a capture carry the same EXIF DateTimeOriginal; a
file without EXIF has its modification time, which a camera writes alike for both), or the
first arrived at most `PAIR_WINDOW_S` before the second (a file whose capture time is off).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from dashboard.events import ImageRecord
from dashboard.imaging.formats import MIME_BY_KIND

#: in seconds: how long after the first file of a pair the second still pairs with it whatever its capture time
PAIR_WINDOW_S = 120.0

#: `files[].role` of a pair's files (docs/http-api.md): the camera's processed picture and its RAW.
JPEG, RAW = "jpeg", "raw"

_SHOWN_FORMATS = frozenset({"JPEG", "HEIF"})


def role(format: str) -> str | None:
    """`RAW` for a camera RAW format, `JPEG` for JPEG and HEIF, `None` for formats that never pair."""
    if format in MIME_BY_KIND:
        return RAW
    return JPEG if format in _SHOWN_FORMATS else None


def pair_key(folder: str, filename: str, format: str) -> str | None:
    """What two files of a pair share: their folder and their name's stem (case-folded); `None` if it never pairs.

    `folder` is the file's directory relative to what is watched or synced (`""` for a web upload;
    `fotoflo ingest`: its absolute directory). The key holds a digest of the folder, never its name: the
    key is stored on the image's row, which a share's guests can read on Supabase.
    """
    if role(format) is None:
        return None
    stem, dot, _ = filename.rpartition(".")
    stem = stem if dot and stem else filename
    folder = folder.strip("/")
    if folder == ".":
        folder = ""
    tag = hashlib.sha256(folder.encode("utf-8", "surrogateescape")).hexdigest()[:20] if folder else ""
    return f"{tag}/{stem.casefold()}"


def folder_of(path: Path, root: Path) -> str:
    """The `folder` of a file under a watched `root` (`""` at its top; a path outside it: its own directory)."""
    parent = path.parent
    return parent.relative_to(root).as_posix() if parent.is_relative_to(root) else parent.as_posix()


def pairs_with(stored: ImageRecord, new: ImageRecord, *, now: str) -> bool:
    """Whether the `new` file (not stored yet, arriving at `now`) is the partner of the `stored` image.

    Both must have the same `pair_key` (the caller looked the image up by it).
    """
    roles = {role(stored.format), role(new.format)}
    if roles != {JPEG, RAW} or stored.raw_sha256 is not None or stored.conflict_of is not None:
        return False
    if stored.captured_at[:19] == new.captured_at[:19]:
        return True
    return 0 <= _seconds(now) - _seconds(stored.created_at) <= PAIR_WINDOW_S


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
